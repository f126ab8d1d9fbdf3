import { applyMigration, diffKeys, migrationSpecProblems, rebaseStep, stepChanges, type EtcdMigrationStep } from '../../workflows/etcd-migration';

const P = '/greptime/';
const before = new Map<string, Buffer>([
  [`${P}catalog/1`, Buffer.from('{"name":"t1","spec":{"version":1}}')],
  [`${P}catalog/2`, Buffer.from('{"name":"t2"}')],
  [`${P}old/a`, Buffer.from('A')],
  [`${P}old/b`, Buffer.from([0, 0xff, 0xfe])],
  [`${P}gone`, Buffer.from('x')],
]);
const text = (m: Map<string, Buffer>) => Object.fromEntries([...m].map(([k, v]) => [k, v.toString('latin1')]));

const steps: EtcdMigrationStep[] = [
  { op: 'put', key: `${P}schema_version`, value: '2' },
  { op: 'delete', key: `${P}gone` },
  { op: 'renamePrefix', from: `${P}old/`, to: `${P}new/` },
  { op: 'setJsonField', key: `${P}catalog/1`, path: 'spec.version', value: 2 },
];

test('a migration transforms the keys as declared, and the diff names every change', () => {
  const after = applyMigration(before, steps);
  expect(text(after)).toEqual({
    [`${P}catalog/1`]: '{"name":"t1","spec":{"version":2}}',
    [`${P}catalog/2`]: '{"name":"t2"}',
    [`${P}new/a`]: 'A',
    // Bytes that are not UTF-8 move unchanged.
    [`${P}new/b`]: '\u0000\u00ff\u00fe',
    [`${P}schema_version`]: '2',
  });
  expect(diffKeys(before, after)).toEqual({
    added: [`${P}new/a`, `${P}new/b`, `${P}schema_version`],
    changed: [`${P}catalog/1`],
    removed: [`${P}gone`, `${P}old/a`, `${P}old/b`],
  });
});

test('applying a migration twice has the effect of applying it once: applied steps change nothing', () => {
  const once = applyMigration(before, steps);
  expect(applyMigration(once, steps)).toEqual(once);
  for (const step of steps) {
    const { puts, deletes } = stepChanges(step, (k) => once.get(k), (p) => [...once.keys()].filter((k) => k.startsWith(p)));
    expect([step.op, puts.size, deletes.size]).toEqual([step.op, 0, 0]);
  }
});

test('setJsonField refuses a missing key or a value that is not a JSON object', () => {
  expect(() => applyMigration(before, [{ op: 'setJsonField', key: `${P}nope`, path: 'a', value: 1 }])).toThrow('setJsonField /greptime/nope: no such key');
  expect(() => applyMigration(before, [{ op: 'setJsonField', key: `${P}old/a`, path: 'a', value: 1 }])).toThrow('setJsonField /greptime/old/a: the value is not JSON');
  expect(() => applyMigration(before, [{ op: 'setJsonField', key: `${P}catalog/2`, path: 'name.first', value: 1 }])).toThrow('name in name.first is not an object');
});

test('steps rebased to a scratch prefix act on the scratch copy only', () => {
  const scratch = '/__dbr_scratch/run1/';
  expect(steps.map((s) => rebaseStep(s, P, scratch))).toEqual([
    { op: 'put', key: `${scratch}schema_version`, value: '2' },
    { op: 'delete', key: `${scratch}gone` },
    { op: 'renamePrefix', from: `${scratch}old/`, to: `${scratch}new/` },
    { op: 'setJsonField', key: `${scratch}catalog/1`, path: 'spec.version', value: 2 },
  ]);
});

test.each([
  [undefined, 'migration: expected an object'],
  [{ kind: 'sql', version: '1' }, 'migration.kind: expected "etcd" or "job"'],
  [{ kind: 'etcd', version: 'v 1', steps: [{ op: 'put', key: `${P}a`, value: 'x' }] }, 'migration.version: expected a version'],
  [{ kind: 'etcd', version: '1', steps: [] }, 'migration.steps: expected a list of 1 to 1000 steps'],
  [{ kind: 'etcd', version: '1', steps: [{ op: 'put', key: '/other/a', value: 'x' }] }, 'migration.steps[0].key: expected a key under the metadata prefix /greptime/'],
  [{ kind: 'etcd', version: '1', steps: [{ op: 'renamePrefix', from: `${P}a/`, to: `${P}a/b/` }] }, 'migration.steps[0].to: must not overlap with from'],
  [{ kind: 'etcd', version: '1', steps: [{ op: 'setJsonField', key: `${P}a`, path: 'a..b', value: 1 }] }, 'migration.steps[0].path: expected a dotted field path'],
  [{ kind: 'etcd', version: '1', steps: [{ op: 'truncate' }] }, 'migration.steps[0].op: expected "put", "delete", "renamePrefix" or "setJsonField"'],
  [{ kind: 'job', version: '1', command: 'migrate --all', dryRunArgs: [] }, 'migration.command: expected a non-empty list of strings (argv, no shell)'],
])('a bad migration spec %j is named by field', (spec, message) => {
  const problems = migrationSpecProblems(spec, 'migration', P);
  expect(problems.map((p) => `${p.field}: ${p.problem}`).join('; ')).toContain(message);
});

test('a valid spec has no problems', () => {
  expect(migrationSpecProblems({ kind: 'etcd', version: '2.0.0', steps }, 'migration', P)).toEqual([]);
  expect(migrationSpecProblems({ kind: 'job', version: '2.0.0', command: ['greptime', 'cli', 'upgrade'], dryRunArgs: ['--dry-run'] }, 'migration', P)).toEqual([]);
});
