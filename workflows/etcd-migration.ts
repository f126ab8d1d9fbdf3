// Declarative metadata migrations for etcd: validation (in the workflow, before any side effect)
// and their effect on a set of keys (pure: the dry-run's expectation, and the post-upgrade
// validation "the keys equal the pre-upgrade keys plus exactly the declared changes").
// Keys are UTF-8 and absolute (under the metadata prefix); values are bytes, moved untouched,
// except where a step writes one. Workflows only validate specs; the value functions run in
// activities and tests.

export type EtcdMigrationStep =
  | { op: 'put'; key: string; value: string }
  | { op: 'delete'; key: string }
  | { op: 'renamePrefix'; from: string; to: string }
  | { op: 'setJsonField'; key: string; path: string; value: unknown };

export interface EtcdMigrationSpec {
  kind: 'etcd';
  /** Names the migration in the ledger; a version already applied is not applied again. */
  version: string;
  steps: EtcdMigrationStep[];
}

export interface JobMigrationSpec {
  kind: 'job';
  version: string;
  /** The migration command, run in a Kubernetes Job with the target image. */
  command: string[];
  /** Appended to command for the dry-run Job (for example ["--dry-run"]). */
  dryRunArgs: string[];
}

export type MigrationSpec = EtcdMigrationSpec | JobMigrationSpec;

export const MIGRATION_VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const JSON_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const MAX_STEPS = 1000;

/** Problems with a migration spec, as `field: problem` pairs; empty when it is valid. */
export function migrationSpecProblems(spec: unknown, field: string, metadataPrefix: string | undefined): { field: string; problem: string }[] {
  const problems: { field: string; problem: string }[] = [];
  const fail = (f: string, problem: string) => problems.push({ field: f, problem });
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    fail(field, 'expected an object {kind: "etcd", version, steps} or {kind: "job", version, command, dryRunArgs}');
    return problems;
  }
  const s = spec as Record<string, unknown>;
  if (typeof s.version !== 'string' || !MIGRATION_VERSION.test(s.version)) fail(`${field}.version`, 'expected a version of letters, digits, ".", "_" or "-" (at most 64)');
  if (s.kind === 'job') {
    if (!Array.isArray(s.command) || s.command.length === 0 || !s.command.every((a) => typeof a === 'string')) fail(`${field}.command`, 'expected a non-empty list of strings (argv, no shell)');
    if (!Array.isArray(s.dryRunArgs) || !s.dryRunArgs.every((a) => typeof a === 'string')) fail(`${field}.dryRunArgs`, 'expected a list of strings (may be empty)');
    return problems;
  }
  if (s.kind !== 'etcd') {
    fail(`${field}.kind`, 'expected "etcd" or "job"');
    return problems;
  }
  if (!Array.isArray(s.steps) || s.steps.length === 0 || s.steps.length > MAX_STEPS) {
    fail(`${field}.steps`, `expected a list of 1 to ${MAX_STEPS} steps`);
    return problems;
  }
  const underPrefix = (f: string, key: unknown) => {
    if (typeof key !== 'string' || key.length === 0) fail(f, 'expected a key');
    else if (metadataPrefix && !key.startsWith(metadataPrefix)) fail(f, `expected a key under the metadata prefix ${metadataPrefix}`);
  };
  (s.steps as unknown[]).forEach((raw, i) => {
    const f = `${field}.steps[${i}]`;
    const step = raw as Record<string, unknown>;
    switch (step?.op) {
      case 'put':
        underPrefix(`${f}.key`, step.key);
        if (typeof step.value !== 'string') fail(`${f}.value`, 'expected a string');
        break;
      case 'delete':
        underPrefix(`${f}.key`, step.key);
        break;
      case 'renamePrefix':
        underPrefix(`${f}.from`, step.from);
        underPrefix(`${f}.to`, step.to);
        if (typeof step.from === 'string' && typeof step.to === 'string' && (step.from.startsWith(step.to) || step.to.startsWith(step.from))) {
          fail(`${f}.to`, 'must not overlap with from');
        }
        break;
      case 'setJsonField':
        underPrefix(`${f}.key`, step.key);
        if (typeof step.path !== 'string' || !JSON_PATH.test(step.path)) fail(`${f}.path`, 'expected a dotted field path such as "spec.version"');
        if (step.value === undefined) fail(`${f}.value`, 'required');
        break;
      default:
        fail(`${f}.op`, 'expected "put", "delete", "renamePrefix" or "setJsonField"');
    }
  });
  return problems;
}

export class MigrationStepError extends Error {
  override name = 'MigrationStepError';
}

export type Value = Buffer;

/** Sets path (dotted) in a JSON document, creating objects on the way. */
export function setJsonField(document: string, key: string, path: string, value: unknown): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    throw new MigrationStepError(`setJsonField ${key}: the value is not JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new MigrationStepError(`setJsonField ${key}: the value is not a JSON object`);
  const parts = path.split('.');
  let node = parsed as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === undefined) node[part] = {};
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) throw new MigrationStepError(`setJsonField ${key}: ${part} in ${path} is not an object`);
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
  return JSON.stringify(parsed);
}

/**
 * One step's effect on keys: the puts and deletes it makes. A step whose effect is already there
 * (applied before a crash) yields no change, which makes applying twice the same as once.
 */
export function stepChanges(step: EtcdMigrationStep, read: (key: string) => Value | undefined, keysUnder: (prefix: string) => string[]): { puts: Map<string, Value>; deletes: Set<string> } {
  const puts = new Map<string, Value>();
  const deletes = new Set<string>();
  switch (step.op) {
    case 'put': {
      const value = Buffer.from(step.value);
      if (!read(step.key)?.equals(value)) puts.set(step.key, value);
      break;
    }
    case 'delete':
      if (read(step.key) !== undefined) deletes.add(step.key);
      break;
    case 'renamePrefix':
      for (const key of keysUnder(step.from)) {
        puts.set(step.to + key.slice(step.from.length), read(key)!);
        deletes.add(key);
      }
      break;
    case 'setJsonField': {
      const stored = read(step.key);
      if (stored === undefined) throw new MigrationStepError(`setJsonField ${step.key}: no such key`);
      const current = stored.toString('utf8');
      const next = setJsonField(current, step.key, step.path, step.value);
      // Compared in canonical form: a document already carrying the value is left as it is.
      if (JSON.stringify(JSON.parse(current)) !== next) puts.set(step.key, Buffer.from(next));
      break;
    }
  }
  return { puts, deletes };
}

/** The keys after every step, from the keys before: what a correct migration must produce. */
export function applyMigration(before: ReadonlyMap<string, Value>, steps: readonly EtcdMigrationStep[]): Map<string, Value> {
  const keys = new Map(before);
  for (const step of steps) {
    const { puts, deletes } = stepChanges(
      step,
      (k) => keys.get(k),
      (p) => [...keys.keys()].filter((k) => k.startsWith(p)).sort(),
    );
    for (const k of deletes) keys.delete(k);
    for (const [k, v] of puts) keys.set(k, v);
  }
  return keys;
}

/** What changed between two key sets, for the report. */
export function diffKeys(before: ReadonlyMap<string, Value>, after: ReadonlyMap<string, Value>): { added: string[]; changed: string[]; removed: string[] } {
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [k, v] of after) {
    if (!before.has(k)) added.push(k);
    else if (!before.get(k)!.equals(v)) changed.push(k);
  }
  for (const k of before.keys()) if (!after.has(k)) removed.push(k);
  return { added: added.sort(), changed: changed.sort(), removed: removed.sort() };
}

/** Rewrites a step so that it acts under another prefix: the dry-run's scratch copy. */
export function rebaseStep(step: EtcdMigrationStep, from: string, to: string): EtcdMigrationStep {
  const move = (key: string) => to + key.slice(from.length);
  switch (step.op) {
    case 'put':
      return { ...step, key: move(step.key) };
    case 'delete':
      return { ...step, key: move(step.key) };
    case 'renamePrefix':
      return { ...step, from: move(step.from), to: move(step.to) };
    case 'setJsonField':
      return { ...step, key: move(step.key) };
  }
}
