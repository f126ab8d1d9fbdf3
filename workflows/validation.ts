// Whole-input validation that runs inside the workflow before its first activity. Every problem
// is collected, so one failure names every bad field; the failure is non-retryable.
import { ApplicationFailure } from '@temporalio/workflow';

export const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface FieldError {
  field: string;
  problem: string;
}

/** A MySQL / MariaDB database name as the runbooks accept it: no quoting needed, nothing to escape. */
export const DATABASE_NAME = /^[A-Za-z0-9_]{1,64}$/;

export class InputValidator {
  private readonly errors: FieldError[] = [];
  private readonly input: Record<string, unknown>;

  constructor(
    input: unknown,
    private readonly runbook: string,
    private readonly knownFields: readonly string[],
  ) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      this.input = {};
      this.errors.push({ field: '(input)', problem: 'expected an object such as {"cluster": "name"}' });
      return;
    }
    this.input = input as Record<string, unknown>;
    for (const key of Object.keys(this.input)) {
      if (!knownFields.includes(key)) this.errors.push({ field: key, problem: `unknown field (known: ${knownFields.join(', ')})` });
    }
  }

  fail(field: string, problem: string): void {
    // When the input is not even an object, one error says it all.
    if (this.errors[0]?.field === '(input)') return;
    this.errors.push({ field, problem });
  }

  clusterName(field = 'cluster'): string {
    const value = this.input[field];
    if (typeof value !== 'string' || !CLUSTER_NAME.test(value)) {
      this.fail(field, `${value === undefined ? 'required: ' : 'expected '}a cluster name from the profile file (lowercase letters, digits and "-", at most 63), got ${describe(value)}`);
      return '';
    }
    return value;
  }

  optionalBoolean(field: string, fallback: boolean): boolean {
    const value = this.input[field];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.fail(field, `expected true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  optionalNumber(field: string, range: { min: number; max: number; integer?: boolean }): number | undefined {
    const value = this.input[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < range.min || value > range.max || (range.integer && !Number.isInteger(value))) {
      this.fail(field, `expected ${range.integer ? 'a whole number' : 'a number'} from ${range.min} to ${range.max}, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  optionalString(field: string, pattern: RegExp, expectation: string): string | undefined {
    const value = this.input[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !pattern.test(value)) {
      this.fail(field, `expected ${expectation}, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  requiredString(field: string, pattern: RegExp, expectation: string): string {
    if (this.input[field] === undefined) {
      this.fail(field, `required: ${expectation}`);
      return '';
    }
    return this.optionalString(field, pattern, expectation) ?? '';
  }

  raw(field: string): unknown {
    return this.input[field];
  }

  /** Throws one non-retryable InvalidInput failure naming every bad field. */
  done(): void {
    if (this.errors.length === 0) return;
    const message = `${this.runbook}: invalid input: ${this.errors.map((e) => `${e.field}: ${e.problem}`).join('; ')}`;
    throw ApplicationFailure.create({ message, type: 'InvalidInput', nonRetryable: true, details: [this.errors] });
  }
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}
