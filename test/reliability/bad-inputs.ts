// The catalogue of bad inputs per runbook: for every field, values of the wrong type, out of range,
// hostile or oversized, generated with fast-check. test/unit/bad-input.test.ts runs the generated
// cases against each runbook's validation in-process; test/reliability/bad-input.test.ts runs a
// sample through a real worker and checks that no activity ran.
import fc from 'fast-check';
import { CLUSTER_NAME, DATABASE_NAME } from '../../workflows/validation';

type Arb = fc.Arbitrary<unknown>;

/** Hostile strings: injection, paths, control characters, shell and YAML metacharacters, huge. */
const hostile = fc.constantFrom(
  "x'; DROP TABLE users; --", '../../etc/passwd', 'a/b', '-rf', '$(reboot)', '`id`', 'a b', 'ö', '\u0000', 'line\nbreak', '{"$ne": null}', '*', '', ' ',
  'x'.repeat(100_000),
);
const wrongType = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }));

/** A string the pattern refuses, or a value that is not a string. */
function badString(pattern: RegExp): Arb {
  return fc.oneof(wrongType, hostile.filter((s) => !pattern.test(s)), fc.string({ maxLength: 80 }).filter((s) => !pattern.test(s)));
}

function badNumber(min: number, max: number, integer: boolean): Arb {
  return fc.oneof(
    wrongType.filter((v) => typeof v !== 'number'),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, min - 1, max + 1, -1e15, 1e15, '10'),
    // fast-check orders -0 below 0, but -0 is not out of range (and JSON turns it into 0).
    fc.double({ max: min, maxExcluded: true, noNaN: true }).filter((n) => n < min),
    fc.double({ min: max, minExcluded: true, noNaN: true }).filter((n) => n > max),
    ...(integer ? [fc.double({ min, max, noNaN: true }).filter((n) => !Number.isInteger(n))] : []),
  );
}

const badBoolean: Arb = fc.oneof(wrongType.filter((v) => typeof v !== 'boolean'), fc.constantFrom('true', 0, 1));
const badCluster = badString(CLUSTER_NAME);
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const lockWait = badNumber(0, 7 * 86400, true);

export interface RunbookInputs {
  /** A valid input; each case changes one field of it. */
  valid: Record<string, unknown>;
  /** Bad values per field. */
  fields: Record<string, Arb>;
  /** Fields the input must have. */
  required: string[];
}

export const BAD_INPUTS: Record<string, RunbookInputs> = {
  clusterHealth: { valid: { cluster: 'local' }, required: ['cluster'], fields: { cluster: badCluster } },
  vitessDrain: {
    valid: { cluster: 'commerce' },
    required: ['cluster'],
    fields: { cluster: badCluster, reason: badString(/^[\x20-\x7e]{1,256}$/), timeoutSeconds: badNumber(1, 86400, true), lockWaitSeconds: lockWait },
  },
  switchover: {
    valid: { cluster: 'pair' },
    required: ['cluster'],
    fields: { cluster: badCluster, newPrimary: badString(NODE_NAME), graceSeconds: badNumber(0, 600, false), catchUpTimeoutSeconds: badNumber(1, 3600, true), lockWaitSeconds: lockWait },
  },
  failover: {
    valid: { cluster: 'failover-set' },
    required: ['cluster'],
    fields: { cluster: badCluster, newPrimary: badString(NODE_NAME), force: badBoolean, catchUpTimeoutSeconds: badNumber(1, 3600, true), lockWaitSeconds: lockWait },
  },
  galeraRecover: {
    valid: { cluster: 'galera' },
    required: ['cluster'],
    fields: { cluster: badCluster, dryRun: badBoolean, nodeTimeoutSeconds: badNumber(10, 86400, true), lockWaitSeconds: lockWait },
  },
  migrateSchema: {
    valid: { cluster: 'local', set: 'temporal' },
    required: ['cluster', 'set'],
    fields: {
      cluster: badCluster,
      set: badString(/^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/),
      targetVersion: badNumber(0, 999_999_999, true),
      database: badString(/^[A-Za-z0-9_]{1,64}$/),
      mode: badString(/^(apply|dry-run)$/),
      requireApproval: badBoolean,
      // Without requireApproval any value is refused, naming the field.
      approvalTimeoutSeconds: fc.oneof(badNumber(1, 7 * 86400, true), fc.integer({ min: 1, max: 7 * 86400 })),
      lockWaitSeconds: lockWait,
    },
  },
  upgradeCluster: {
    valid: { cluster: 'orders', targetImage: 'greptime/greptimedb:v0.12.0' },
    required: ['cluster', 'targetImage'],
    fields: {
      cluster: badCluster,
      targetImage: badString(/^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/),
      migration: fc.oneof(wrongType, fc.constant({ kind: 'etcd', version: '1', steps: [{ op: 'drop-everything' }] }), fc.constant({ kind: 'sql' })),
      dryRunOnly: badBoolean,
      requireApproval: badBoolean,
      approvalTimeoutSeconds: badNumber(10, 7 * 86400, true),
      acceptDegraded: badBoolean,
      stopTimeoutSeconds: badNumber(5, 86400, true),
      rolloutTimeoutSeconds: badNumber(5, 86400, true),
      migrationTimeoutSeconds: badNumber(5, 7 * 86400, true),
      lockWaitSeconds: lockWait,
    },
  },
  downgradeCluster: {
    valid: { cluster: 'orders', upgradeWorkflowId: 'upgradeCluster/orders' },
    required: ['cluster', 'upgradeWorkflowId'],
    fields: {
      cluster: badCluster,
      upgradeWorkflowId: fc.oneof(badString(/^upgradeCluster\/[a-z0-9-]+(\/[A-Za-z0-9._:-]+)?$/), fc.constant('upgradeCluster/other-cluster')),
      requireApproval: badBoolean,
      approvalTimeoutSeconds: badNumber(10, 7 * 86400, true),
      acceptDegraded: badBoolean,
      stopTimeoutSeconds: badNumber(5, 86400, true),
      rolloutTimeoutSeconds: badNumber(5, 86400, true),
      lockWaitSeconds: lockWait,
    },
  },
  backupDatabase: {
    valid: { cluster: 'local' },
    required: ['cluster'],
    fields: {
      cluster: badCluster,
      databases: fc.oneof(wrongType.filter((v) => !Array.isArray(v)), fc.constant([]), badString(DATABASE_NAME).map((d) => [d])),
      compression: badString(/^(gzip|zstd)$/),
      verify: badBoolean,
      whenLocked: badString(/^(skip|wait)$/),
      lockWaitSeconds: lockWait,
    },
  },
  restoreDatabase: {
    valid: { cluster: 'local' },
    required: ['cluster'],
    fields: {
      cluster: badCluster,
      backupId: badString(/^[A-Za-z0-9._/:-]{1,400}$/),
      at: fc.oneof(badString(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/), fc.constantFrom('2026-13-45T99:99:00Z', 'yesterday')),
      database: badString(DATABASE_NAME),
      targetDatabase: badString(DATABASE_NAME),
      overwrite: badBoolean,
      allowUnverified: badBoolean,
      lockWaitSeconds: lockWait,
    },
  },
  backupEtcd: {
    valid: { cluster: 'local' },
    required: ['cluster'],
    fields: { cluster: badCluster, whenLocked: badString(/^(skip|wait)$/), lockWaitSeconds: lockWait },
  },
  refreshNodeAddresses: {
    valid: { cluster: 'antdb' },
    required: ['cluster'],
    fields: { cluster: badCluster, reason: fc.oneof(wrongType, fc.constantFrom('', 'x'.repeat(501), 'x'.repeat(100_000))), lockWaitSeconds: badNumber(0, 86400, true) },
  },
};

/** One bad input of a runbook: the field it names, and the input. */
export function badInput(runbook: string): fc.Arbitrary<{ field: string; input: unknown }> {
  const spec = BAD_INPUTS[runbook]!;
  const known = [...Object.keys(spec.fields)];
  return fc.oneof(
    fc.constantFrom(...Object.keys(spec.fields)).chain((field) => spec.fields[field]!.map((value) => ({ field, input: { ...spec.valid, [field]: value } }))),
    fc.constantFrom(...spec.required).map((field) => {
      const input: Record<string, unknown> = { ...spec.valid };
      delete input[field];
      return { field, input };
    }),
    fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !known.includes(k) && k !== '__proto__').map((field) => ({ field, input: { ...spec.valid, [field]: 1 } })),
    fc.constantFrom(null, 'local', 42, [], ['local']).map((input) => ({ field: '(input)', input })),
  );
}
