import {
  compareSchemas,
  fileRef,
  missingPrivileges,
  normalizeCreateTable,
  orderMigrationFiles,
  planMigrations,
  readMigrationFile,
  sameFiles,
  schemaPatternMatches,
  type LedgerRow,
  type MigrationFileRef,
} from '../../activities/migration-plan';

const file = (version: number, name: string, checksum = `sum${version}`, statements = 3): MigrationFileRef => ({ version, name, checksum, statements });
const set = [file(1, '0001_create_tables.sql'), file(2, '0002_cluster_metadata.sql'), file(3, '0003_add_columns.sql')];

function row(version: number, extra: Partial<LedgerRow> = {}): LedgerRow {
  return {
    version,
    fileName: set[version - 1]!.name,
    checksum: `sum${version}`,
    statementCount: 3,
    lastApplied: 3,
    recognised: [],
    inFlight: null,
    completedAt: '2026-11-23 00:00:00.000000',
    appliedBy: 'migrateSchema/x',
    ...extra,
  };
}

describe('readMigrationFile', () => {
  test('reads the version from the name and classifies every statement', () => {
    const { file: parsed, problems } = readMigrationFile('0007_add_index.sql', 'CREATE INDEX ix ON t (a);\nINSERT INTO t VALUES (1);', 'abc');
    expect(problems).toEqual([]);
    expect(parsed!.version).toBe(7);
    expect(parsed!.statements.map((s) => [s.index, s.class.kind])).toEqual([
      [1, 'ddl'],
      [2, 'dml'],
    ]);
    expect(fileRef(parsed!)).toEqual({ version: 7, name: '0007_add_index.sql', checksum: 'abc', statements: 2 });
  });

  test('a bad name, a bad script and refused statements are problems naming the file and line', () => {
    expect(readMigrationFile('create.sql', '', 'x').problems[0]!.message).toMatch(/^create\.sql: not a migration file name/);
    expect(readMigrationFile('0001_a.sql', "SELECT 'x", 'x').problems[0]!.message).toBe('0001_a.sql: line 1: unterminated string that starts here');
    expect(readMigrationFile('0001_a.sql', 'SELECT 1;\nUSE other;', 'x').problems).toEqual([
      { type: 'MigrationInvalid', message: '0001_a.sql: statement 2 (line 2): refused: USE: migrations run inside the target database, which the profile names' },
    ]);
  });

  test('two files with one version are a problem', () => {
    const a = readMigrationFile('0002_a.sql', 'SELECT 1;', 'a').file!;
    const b = readMigrationFile('02_b.sql', 'SELECT 1;', 'b').file!;
    expect(orderMigrationFiles([b, a]).problems).toEqual([{ type: 'MigrationInvalid', message: '0002_a.sql and 02_b.sql have the same version 2' }]);
  });
});

describe('planMigrations', () => {
  test('a database never migrated: every version pending from its first statement', () => {
    const plan = planMigrations(set, []);
    expect(plan.currentVersion).toBeNull();
    expect(plan.targetVersion).toBe(3);
    expect(plan.pending.map((p) => [p.version, p.fromStatement, p.started])).toEqual([
      [1, 1, false],
      [2, 1, false],
      [3, 1, false],
    ]);
    expect(plan.problems).toEqual([]);
  });

  test('a version that stopped in the middle resumes at its first unapplied statement', () => {
    const plan = planMigrations(set, [row(1), row(2, { lastApplied: 1, completedAt: null })]);
    expect(plan.currentVersion).toBe(1);
    expect(plan.pending.map((p) => [p.version, p.fromStatement, p.started])).toEqual([
      [2, 2, true],
      [3, 1, false],
    ]);
  });

  test('a target version stops the plan there; a target past the newest file is a problem', () => {
    expect(planMigrations(set, [row(1)], 2).pending.map((p) => p.version)).toEqual([2]);
    expect(planMigrations(set, [], 9).problems).toEqual([{ type: 'MigrationInvalid', message: "targetVersion 9: the set's newest version is 3" }]);
    expect(planMigrations(set, [row(1), row(2)], 1).warnings).toContain('the database is at version 2, above the target 1: nothing to apply (migrations only go forward)');
  });

  test('an applied file whose checksum changed is refused, naming the file', () => {
    const plan = planMigrations(set, [row(1), row(2, { checksum: 'other' })]);
    expect(plan.problems).toHaveLength(1);
    expect(plan.problems[0]!.type).toBe('MigrationChecksumMismatch');
    expect(plan.problems[0]!.message).toMatch(/^0002_cluster_metadata\.sql: changed since it was applied \(the ledger records sha256 other…, the file now has sum2…\)/);
  });

  test('a version added below the applied one is refused; a vanished applied version is a warning', () => {
    const withGap = [set[0]!, file(2, '0002_late.sql', 'late'), set[2]!];
    const plan = planMigrations(withGap, [row(1), row(3)]);
    expect(plan.problems.map((p) => p.message)).toEqual([
      '0002_late.sql: version 2 is older than the applied version 3: versions apply in order, give it a number above 3',
    ]);
    expect(planMigrations([set[1]!, set[2]!], [row(1)]).warnings).toEqual(['version 1 (0001_create_tables.sql) is recorded as applied but is no longer in the set']);
    expect(planMigrations([set[0]!], [row(1), row(2, { completedAt: null, lastApplied: 1 })]).problems[0]!.message).toBe(
      '0002_cluster_metadata.sql: partly applied (statement 1 of 3) but no longer in the set',
    );
  });
});

test('sameFiles names a changed, vanished or added file', () => {
  expect(sameFiles(set, set)).toBeNull();
  expect(sameFiles(set, [set[0]!, { ...set[1]!, checksum: 'new' }, set[2]!])).toMatch(/^0002_cluster_metadata\.sql changed/);
  expect(sameFiles(set, [set[0]!, set[2]!])).toBe('0002_cluster_metadata.sql is gone');
  expect(sameFiles([set[0]!, set[2]!], set)).toBe('0002_cluster_metadata.sql was added');
  // A newer version added after pre-flight is not part of this run.
  expect(sameFiles(set, [...set, file(4, '0004_new.sql')])).toBeNull();
});

describe('privileges', () => {
  test('schema patterns follow LIKE with escapes', () => {
    expect(schemaPatternMatches('temporal', 'temporal')).toBe(true);
    expect(schemaPatternMatches('temp%', 'temporal')).toBe(true);
    expect(schemaPatternMatches('dbr\\_dryrun\\_%', 'dbr_dryrun_0a1b')).toBe(true);
    expect(schemaPatternMatches('dbr\\_dryrun\\_%', 'dbrXdryrun_0a1b')).toBe(false);
    expect(schemaPatternMatches('t_mp', 'temp')).toBe(true);
  });

  test('missing privileges are those no global or matching schema grant gives', () => {
    const grants = [
      { privilege: 'SELECT', schema: null },
      { privilege: 'CREATE', schema: 'temporal' },
      { privilege: 'ALTER', schema: 'temp%' },
      { privilege: 'DROP', schema: 'other' },
    ];
    expect(missingPrivileges(grants, 'temporal', ['SELECT', 'CREATE', 'ALTER', 'DROP', 'INDEX'])).toEqual(['DROP', 'INDEX']);
    expect(missingPrivileges([{ privilege: 'ALL PRIVILEGES', schema: 'temporal' }], 'temporal', ['DROP'])).toEqual([]);
  });
});

describe('schemas', () => {
  test('the next AUTO_INCREMENT value is not part of a definition', () => {
    expect(normalizeCreateTable('CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4')).toBe(
      'CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
    );
  });

  test('compareSchemas names missing, unexpected and different tables', () => {
    expect(compareSchemas({ a: '1', b: '2', c: '3' }, { a: '1', b: 'x', d: '4' })).toEqual([
      'table b has a different definition',
      'table c is missing',
      'table d is not expected',
    ]);
    expect(compareSchemas({ a: '1' }, { a: '1' })).toEqual([]);
  });
});
