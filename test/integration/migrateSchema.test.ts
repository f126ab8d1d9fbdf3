// migrateSchema against the real standalone MariaDB and a real Temporal dev server: a migration set
// modelled on Temporal's MySQL persistence schema, a failure in the middle of a version and the
// resume, a statement applied by hand, strict sql_mode and a +08:00 time zone caught by the
// dry-run, a changed checksum, the approval gate, and the worker killed during the apply.
import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import mysql from 'mysql2/promise';
import { scratchDatabaseName, type DryRunReport } from '../../activities/migrations';
import { getProgressQuery } from '../../workflows/definitions';
import type { MigrateSchemaInput, MigrateSchemaResult } from '../../workflows/migrateSchema';
import { cli } from '../helpers/cli';
import { LOCAL_PROFILES, REPO_ROOT } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { spawnWorkerProcess } from '../helpers/worker-process';

const EXAMPLE_SET = path.join(REPO_ROOT, 'examples', 'migrations', 'temporal-mysql');
const suffix = randomUUID().slice(0, 8);
const cluster = `mig-${suffix}`;
const sets = mkdtempSync(path.join(os.tmpdir(), 'dbr-migrations-'));
const databases: string[] = [];
let env: TestWorkflowEnvironment;
let worker: RunningWorker;

// A version added to the Temporal-style set in these tests: an audit table, a unique index that
// existing rows can violate (the failure a dry-run on an empty copy cannot see), a trigger whose
// body needs DELIMITER, and a row.
const AUDIT_VERSION = `-- Version 5: audit of membership changes; one member per RPC endpoint.
CREATE TABLE membership_audit (
  id         BIGINT AUTO_INCREMENT PRIMARY KEY,
  host_id    BINARY(16) NOT NULL,
  changed_at DATETIME(6) NOT NULL,
  note       VARCHAR(255) NOT NULL DEFAULT ''
);
ALTER TABLE cluster_membership ADD UNIQUE INDEX uk_rpc_endpoint (rpc_address, rpc_port);
ALTER TABLE membership_audit ADD COLUMN source VARCHAR(64) NOT NULL DEFAULT 'runbook', ADD INDEX ix_audit_host (host_id);
INSERT INTO membership_audit (host_id, changed_at, note) VALUES (UNHEX(REPEAT('00', 16)), '2026-01-01 00:00:00', 'created by 0005; once');
DELIMITER //
CREATE TRIGGER membership_audit_insert AFTER INSERT ON cluster_membership FOR EACH ROW
BEGIN
  INSERT INTO membership_audit (host_id, changed_at, note) VALUES (NEW.host_id, UTC_TIMESTAMP(6), CONCAT('joined; ', NEW.rpc_address));
END //
DELIMITER ;
`;

const ZERO_DATE_VERSION = `-- Version 5: a default that MySQL 8's strict sql_mode (NO_ZERO_DATE) refuses.
CREATE TABLE membership_history (host_id BINARY(16) NOT NULL, left_at TIMESTAMP NOT NULL DEFAULT '0000-00-00 00:00:00', PRIMARY KEY (host_id));
ALTER TABLE cluster_membership ADD COLUMN left_at TIMESTAMP NOT NULL DEFAULT '0000-00-00 00:00:00';
`;

// Statements that fail or insert twice if re-run. Two are slow: they outlast the worker's heartbeat
// throttle (0.8 × the 20 s heartbeat timeout), so the test sees the heartbeat before it kills.
const BACKFILL_VERSION = `-- Version 5: a backfill whose statements must each run exactly once.
CREATE TABLE backfill_marks (statement INT NOT NULL, PRIMARY KEY (statement));
INSERT INTO backfill_marks (statement) VALUES (2);
ALTER TABLE backfill_marks ADD COLUMN note VARCHAR(64) NULL;
INSERT INTO backfill_marks (statement, note) SELECT 4, 'slow insert' FROM (SELECT SLEEP(20)) AS pause;
ALTER TABLE backfill_marks ADD INDEX ix_note (note);
CREATE TABLE backfill_snapshot AS SELECT statement, note, SLEEP(10) AS pause FROM backfill_marks;
INSERT INTO backfill_marks (statement) VALUES (7);
`;

/** A migration set directory: the example Temporal-style set, plus extra versions. */
function makeSet(name: string, extra: Record<string, string> = {}): string {
  const dir = path.join(sets, name);
  cpSync(EXAMPLE_SET, dir, { recursive: true });
  for (const [file, text] of Object.entries(extra)) writeFileSync(path.join(dir, file), text);
  return dir;
}

function setsYaml(): string {
  const line = (name: string, dir: string, extra = '') => `        ${name}: { directory: ${dir}, database: unused_${suffix}, createDatabase: true${extra} }`;
  return [
    line('temporal', makeSet('temporal')),
    line('audit', makeSet('audit', { '0005_membership_audit.sql': AUDIT_VERSION }), ', ledgerTable: schema_ledger'),
    line('zero-date', makeSet('zero-date', { '0005_legacy_defaults.sql': ZERO_DATE_VERSION })),
    line('mutable', makeSet('mutable')),
    line('temporal-cn', path.join(sets, 'temporal'), ", session: { timeZone: '+08:00' }"),
    line('backfill', makeSet('backfill', { '0005_backfill.sql': BACKFILL_VERSION })),
  ].join('\n');
}

function clusterYaml(name: string): string {
  return `
  ${name}:
    mysql:
      topology: standalone
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes:
        - { name: mariadb, host: 127.0.0.1, port: 3310, role: primary }
      migrations:
${setsYaml()}
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`;
}

function newDatabase(): string {
  const name = `dbr_mig_${suffix}_${databases.length + 1}`;
  databases.push(name);
  return name;
}

async function sql<T = mysql.RowDataPacket[]>(statement: string, values: unknown[] = [], database?: string): Promise<T> {
  const connection = await mysql.createConnection({
    host: '127.0.0.1',
    port: 3310,
    user: 'runbook',
    password: process.env.DBR_LOCAL_MYSQL_PASSWORD,
    database,
    dateStrings: true,
  });
  try {
    const [rows] = await connection.query(statement, values);
    return rows as T;
  } finally {
    await connection.end();
  }
}

/** Every table's definition (the next AUTO_INCREMENT aside) and every trigger, as a user would compare them. */
async function schemaOf(database: string, ledger = 'db_runbooks_migrations'): Promise<Record<string, string>> {
  const schema: Record<string, string> = {};
  const tables = await sql("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME <> ? ORDER BY 1", [database, ledger]);
  for (const { t } of tables) {
    const [row] = await sql(`SHOW CREATE TABLE ${mysql.escapeId(database)}.${mysql.escapeId(String(t))}`);
    schema[String(t)] = String(row!['Create Table']).replace(/ AUTO_INCREMENT=\d+/, '');
  }
  const triggers = await sql('SELECT TRIGGER_NAME AS n, ACTION_STATEMENT AS s FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?', [database]);
  for (const { n, s } of triggers) schema[`trigger ${String(n)}`] = String(s);
  return schema;
}

async function ledgerOf(database: string, ledger = 'db_runbooks_migrations') {
  return sql<
    { version: number; file_name: string; checksum: string; statement_count: number; last_applied_statement: number; recognised_statements: string | null; in_flight_statement: number | null; completed_at: string | null }[]
  >(`SELECT * FROM ${mysql.escapeId(database)}.${mysql.escapeId(ledger)} ORDER BY version`);
}

async function scratchDatabasesOf(handle: WorkflowHandle): Promise<string[]> {
  const { runId } = await handle.describe();
  const scratch = scratchDatabaseName(`${handle.workflowId}/${runId}`);
  return (await sql('SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [scratch])).map((r) => String(r.s));
}

function start(input: MigrateSchemaInput, taskQueue = worker.taskQueue): Promise<WorkflowHandle> {
  return env.client.workflow.start('migrateSchema', { taskQueue, workflowId: `migrateSchema/${input.cluster}`, args: [input] });
}

async function migrate(input: Omit<MigrateSchemaInput, 'cluster'>): Promise<MigrateSchemaResult> {
  return (await start({ cluster, ...input })).result() as Promise<MigrateSchemaResult>;
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => new Error('expected the runbook to fail'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sha256File = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

// A MySQL user with too few privileges, for the pre-flight check (created and dropped by the test).
const limitedUser = `dbr_lim_${suffix}`;
const limitedCluster = `mig-limited-${suffix}`;
const limitedYaml = `
  ${limitedCluster}:
    mysql:
      topology: standalone
      user: ${limitedUser}
      password: { env: DBR_MIG_LIMITED_PASSWORD }
      nodes:
        - { name: mariadb, host: 127.0.0.1, port: 3310, role: primary }
      migrations:
        temporal: { directory: ${path.join(sets, 'temporal')}, database: unused_${suffix} }
`;

beforeAll(async () => {
  // Set before anything replaces process.env (the cli helper restores a copy): the worker's secret
  // resolver reads the object it was created with.
  process.env.DBR_MIG_LIMITED_PASSWORD = randomUUID();
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, testProfiles(`clusters:${clusterYaml(cluster)}${limitedYaml}`)));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  for (const database of databases) await sql(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`).catch(() => undefined);
  rmSync(sets, { recursive: true, force: true });
});

test('the Temporal-style set on a fresh database: pre-flight, dry-run, apply, verify; a second run finds it up to date', async () => {
  const database = newDatabase();
  const handle = await start({ cluster, set: 'temporal', database });
  const result = (await handle.result()) as MigrateSchemaResult;
  expect(result).toMatchObject({ outcome: 'applied', database, node: 'mariadb', fromVersion: null, toVersion: 4 });
  expect(result.server).toMatch(/^MariaDB 10\.11\.\d+.* on mariadb \(127\.0\.0\.1:3310\)$/);
  expect(result.dryRun!.statements.every((s) => s.outcome === 'ok')).toBe(true);
  expect(result.apply!.applied).toBe(result.dryRun!.statements.length);
  expect(result.verify).toMatchObject({ ledgerComplete: true, schemaMatches: true, currentVersion: 4 });
  expect(result.summary).toBe(`${database} on cluster ${cluster} migrated from version none to 4 (set temporal): ${result.apply!.applied} statement(s) applied; verified`);

  // What a user checks: the tables, the timestamp defaults, the seed row once, and the ledger.
  const [membership] = await sql(`SHOW CREATE TABLE ${database}.cluster_membership`);
  expect(String(membership!['Create Table'])).toContain("`session_start` timestamp NULL DEFAULT '1970-01-01 00:00:01'");
  expect(await sql(`SELECT * FROM ${database}.namespace_metadata`)).toEqual([{ partition_id: 54321, notification_version: 1 }]);
  const ledger = await ledgerOf(database);
  const files = readdirSync(EXAMPLE_SET).sort();
  expect(ledger.map((r) => [r.version, r.file_name, r.checksum, r.last_applied_statement === r.statement_count, r.completed_at !== null, r.in_flight_statement])).toEqual(
    files.map((f, i) => [i + 1, f, sha256File(path.join(EXAMPLE_SET, f)), true, true, null]),
  );
  expect(await scratchDatabasesOf(handle)).toEqual([]);
  const progress = await handle.query(getProgressQuery);
  expect(progress.steps.map((s) => `${s.name}:${s.state}`)).toEqual([
    'read profile:done',
    'cluster lock:done',
    'pre-flight:done',
    'dry-run:done',
    'approval:skipped',
    'apply:done',
    'verify:done',
  ]);
  expect(progress.outcome).toBe('succeeded');

  const again = await migrate({ set: 'temporal', database });
  expect(again).toMatchObject({ outcome: 'up to date', fromVersion: 4, toVersion: 4 });
  expect(again.summary).toBe(`${database} on cluster ${cluster} is up to date at version 4 (set temporal)`);
});

/** Version 4 applied, then two members on one RPC endpoint: version 5's unique index cannot be built. */
async function databaseWithDuplicateEndpoints(): Promise<string> {
  const database = newDatabase();
  await migrate({ set: 'audit', database, targetVersion: 4 });
  await sql(
    `INSERT INTO ${database}.cluster_membership (membership_partition, host_id, rpc_address, rpc_port, role) VALUES (0, UNHEX(REPEAT('01', 16)), '10.0.0.1', 7233, 1), (0, UNHEX(REPEAT('02', 16)), '10.0.0.1', 7233, 1)`,
  );
  return database;
}

async function failsInsideVersion5(database: string): Promise<void> {
  const failure = await failureOf(migrate({ set: 'audit', database }));
  expect(failure.type).toBe('MigrationStatementFailed');
  expect(failure.message).toBe(
    "0005_membership_audit.sql statement 2 (line 8, ALTER TABLE): ER_DUP_ENTRY (1062): Duplicate entry '10.0.0.1-7233' for key 'uk_rpc_endpoint'; " +
      'statements before it are recorded in schema_ledger, a new run resumes here',
  );
  const v5 = (await ledgerOf(database, 'schema_ledger')).find((r) => r.version === 5)!;
  expect(v5).toMatchObject({ last_applied_statement: 1, statement_count: 5, completed_at: null, in_flight_statement: null });
}

describe('a version that fails in the middle', () => {
  let clean: Record<string, string>;

  beforeAll(async () => {
    const database = newDatabase();
    await migrate({ set: 'audit', database });
    clean = await schemaOf(database, 'schema_ledger');
    expect(Object.keys(clean)).toContain('trigger membership_audit_insert');
  });

  test('resumes at the failed statement: the statements before it are never re-run, and the schema equals a clean run', async () => {
    const database = await databaseWithDuplicateEndpoints();
    await failsInsideVersion5(database);
    // The published failure: a re-run that starts the version over fails on "table already exists".
    // Here the re-run resumes at statement 2 and fails on the same duplicate, nothing else.
    await failsInsideVersion5(database);

    await sql(`DELETE FROM ${database}.cluster_membership WHERE host_id = UNHEX(REPEAT('02', 16))`);
    const result = await migrate({ set: 'audit', database });
    expect(result.outcome).toBe('applied');
    expect(result.apply).toMatchObject({ resumedAt: { version: 5, statement: 2 }, applied: 4, recognised: [], fromVersion: 4, toVersion: 5 });
    expect(result.summary).toContain('4 statement(s) applied, resumed at version 5 statement 2; verified');
    expect(await schemaOf(database, 'schema_ledger')).toEqual(clean);
    expect(await sql(`SELECT note FROM ${database}.membership_audit WHERE note LIKE 'created by 0005%'`)).toEqual([{ note: 'created by 0005; once' }]);
    // The trigger split out of its DELIMITER block works.
    await sql(`INSERT INTO ${database}.cluster_membership (membership_partition, host_id, rpc_address, rpc_port, role) VALUES (0, UNHEX(REPEAT('03', 16)), '10.0.0.3', 7233, 1)`);
    expect(await sql(`SELECT note FROM ${database}.membership_audit WHERE note LIKE 'joined%'`)).toEqual([{ note: 'joined; 10.0.0.3' }]);
  });

  test('statements applied by hand before the resume are recognised, recorded and not re-run', async () => {
    const database = await databaseWithDuplicateEndpoints();
    await failsInsideVersion5(database);
    // The operator fixes the data and runs the next two statements by hand.
    await sql(`DELETE FROM ${database}.cluster_membership WHERE host_id = UNHEX(REPEAT('02', 16))`);
    await sql(`ALTER TABLE ${database}.cluster_membership ADD UNIQUE INDEX uk_rpc_endpoint (rpc_address, rpc_port)`);
    await sql(`ALTER TABLE ${database}.membership_audit ADD COLUMN source VARCHAR(64) NOT NULL DEFAULT 'runbook', ADD INDEX ix_audit_host (host_id)`);

    // This time from the command-line client, as an operator would.
    const shown = await cli(['migrateSchema', '--cluster', cluster, '--input', JSON.stringify({ set: 'audit', database })], {
      TEMPORAL_ADDRESS: env.address,
      DBR_TASK_QUEUE: worker.taskQueue,
    });
    expect(shown.err).toBe('');
    expect(shown.code).toBe(0);
    expect(shown.out).toContain(`started migrateSchema on cluster ${cluster}: migrateSchema/${cluster}\n`);
    expect(shown.out).toMatch(/✓ dry-run: 4 statement\(s\) pass in time_zone SYSTEM, sql_mode STRICT_TRANS_TABLES,\S+, 2 already in effect/);
    expect(shown.out).toContain('  = 0005_membership_audit.sql statement 2 (line 8) recorded without running: already in effect, applied outside this runbook');
    const result = (await env.client.workflow.getHandle(`migrateSchema/${cluster}`).result()) as MigrateSchemaResult;
    expect(result.dryRun!.statements.map((s) => [s.statement, s.outcome])).toEqual([
      [2, 'already in effect'],
      [3, 'already in effect'],
      [4, 'ok'],
      [5, 'ok'],
    ]);
    expect(result.apply!.applied).toBe(2);
    expect(result.apply!.recognised.map((s) => [s.file, s.statement, s.detail])).toEqual([
      ['0005_membership_audit.sql', 2, 'already in effect, applied outside this runbook (index uk_rpc_endpoint on cluster_membership exists)'],
      ['0005_membership_audit.sql', 3, 'already in effect, applied outside this runbook (column source on membership_audit exists; index ix_audit_host on membership_audit exists)'],
    ]);
    expect(result.summary).toContain('2 statement(s) applied, 2 already in effect and recorded without running, resumed at version 5 statement 2; verified');
    const v5 = (await ledgerOf(database, 'schema_ledger')).find((r) => r.version === 5)!;
    expect(v5).toMatchObject({ last_applied_statement: 5, recognised_statements: '2,3', in_flight_statement: null });
    expect(v5.completed_at).not.toBeNull();
    expect(await schemaOf(database, 'schema_ledger')).toEqual(clean);
  });
});

describe('the dry-run judges pending statements by the target server\'s own settings', () => {
  const MYSQL8_SQL_MODE = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

  async function withGlobal(variable: 'sql_mode' | 'time_zone', value: string, fn: () => Promise<void>): Promise<void> {
    const [{ saved }] = await sql<[{ saved: string }]>(`SELECT @@GLOBAL.${variable} AS saved`);
    await sql(`SET GLOBAL ${variable} = ?`, [value]);
    try {
      await fn();
    } finally {
      await sql(`SET GLOBAL ${variable} = ?`, [saved]);
    }
  }

  test('strict sql_mode: the zero-date default is reported with the server\'s error, and the real schema is untouched', async () => {
    const database = newDatabase();
    await migrate({ set: 'zero-date', database, targetVersion: 4 });
    const before = { schema: await schemaOf(database), ledger: await ledgerOf(database) };

    await withGlobal('sql_mode', MYSQL8_SQL_MODE, async () => {
      const handle = await start({ cluster, set: 'zero-date', database });
      const failure = await failureOf(handle.result());
      expect(failure.type).toBe('DryRunFailed');
      const report = failure.details![0] as DryRunReport;
      expect(report.session.sqlMode).toBe(MYSQL8_SQL_MODE);
      expect(report.statements.map((s) => [s.file, s.statement, s.outcome, s.error?.code, s.error?.errno, s.error?.message])).toEqual([
        ['0005_legacy_defaults.sql', 1, 'failed', 'ER_INVALID_DEFAULT', 1067, "Invalid default value for 'left_at'"],
        ['0005_legacy_defaults.sql', 2, 'failed', 'ER_INVALID_DEFAULT', 1067, "Invalid default value for 'left_at'"],
      ]);
      expect(failure.message).toBe(
        "dry-run: 2 of 2 statement(s) would fail; first: 0005_legacy_defaults.sql statement 1 (line 2): ER_INVALID_DEFAULT (1067): Invalid default value for 'left_at'; " +
          `nothing was changed on ${database}`,
      );
      expect({ schema: await schemaOf(database), ledger: await ledgerOf(database) }).toEqual(before);
      expect(await scratchDatabasesOf(handle)).toEqual([]);
      const progress = await handle.query(getProgressQuery);
      expect(progress.steps.find((s) => s.name === 'dry-run')).toMatchObject({ state: 'failed' });
      expect(progress.steps.find((s) => s.name === 'apply')).toMatchObject({ state: 'pending' });
      expect(progress.outcome).toBe('failed');
    });

    // Under the server's own, lax sql_mode the same version passes and applies.
    expect(await migrate({ set: 'zero-date', database })).toMatchObject({ outcome: 'applied', toVersion: 5 });
  });

  test('time zone +08:00 on the server: cluster_membership\'s 1970-01-01 00:00:01 default is reported, and no database is created', async () => {
    const database = newDatabase();
    await withGlobal('time_zone', '+08:00', async () => {
      const failure = await failureOf(migrate({ set: 'temporal', database }));
      expect(failure.type).toBe('DryRunFailed');
      const report = failure.details![0] as DryRunReport;
      expect(report.session.timeZone).toBe('+08:00');
      const failed = report.statements.filter((s) => s.outcome === 'failed');
      expect(failed[0]).toMatchObject({ file: '0001_create_tables.sql', kind: 'CREATE TABLE', error: { code: 'ER_INVALID_DEFAULT', errno: 1067, message: "Invalid default value for 'session_start'" } });
      expect(failed[0]!.sql).toMatch(/^CREATE TABLE cluster_membership \(/);
    });
    expect(await sql('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).toEqual([]);
  });

  test('time zone +08:00 in the session the migration uses (the set overrides the server\'s): reported the same way', async () => {
    const database = newDatabase();
    const failure = await failureOf(migrate({ set: 'temporal-cn', database }));
    expect(failure.type).toBe('DryRunFailed');
    expect(failure.message).toMatch(/0001_create_tables\.sql statement \d+ \(line \d+\): ER_INVALID_DEFAULT \(1067\): Invalid default value for 'session_start'/);
    expect((failure.details![0] as DryRunReport).session.timeZone).toBe('+08:00');
  });

  test('mode dry-run reports and changes nothing', async () => {
    const database = newDatabase();
    const result = await migrate({ set: 'temporal', database, mode: 'dry-run' });
    expect(result.outcome).toBe('dry-run passed');
    expect(result.dryRun!.statements.length).toBeGreaterThan(20);
    expect(result.summary).toBe(`dry-run of set temporal on ${database} (cluster ${cluster}) passed: ${result.dryRun!.statements.length} statement(s) up to version 4; nothing was changed`);
    expect(await sql('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).toEqual([]);
  });
});

test('an applied file whose checksum changed is refused at pre-flight, naming the file; nothing is applied', async () => {
  const database = newDatabase();
  await migrate({ set: 'mutable', database, targetVersion: 3 });
  const file = path.join(sets, 'mutable', '0002_cluster_metadata_info.sql');
  const original = readFileSync(file);
  appendFileSync(file, '\n-- edited after it was applied\n');
  try {
    const failure = await failureOf(migrate({ set: 'mutable', database }));
    expect(failure.type).toBe('MigrationChecksumMismatch');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(
      /^0002_cluster_metadata_info\.sql: changed since it was applied \(the ledger records sha256 [0-9a-f]{12}…, the file now has [0-9a-f]{12}…\): an applied migration must not change; restore the file and add a new version instead$/,
    );
    expect((await ledgerOf(database)).map((r) => r.version)).toEqual([1, 2, 3]);
    expect(await sql('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, 'nexus_endpoints'])).toEqual([]);
  } finally {
    writeFileSync(file, original);
  }
  expect(await migrate({ set: 'mutable', database })).toMatchObject({ outcome: 'applied', toVersion: 4 });
});

describe('the approval gate', () => {
  const cliEnv = () => ({ TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: worker.taskQueue });

  async function waitingForApproval(handle: WorkflowHandle): Promise<void> {
    await until('the approval to be requested', async () => (await handle.query(getProgressQuery)).approval?.state === 'waiting');
  }

  test('waits after the dry-run, shows its state in getProgress, and applies once approved from the client', async () => {
    const database = newDatabase();
    const handle = await start({ cluster, set: 'temporal', database, targetVersion: 1, requireApproval: true });
    await waitingForApproval(handle);
    const progress = await handle.query(getProgressQuery);
    expect(progress.currentStep).toBe('approval');
    expect(progress.approval!.request).toMatch(new RegExp(`^apply \\d+ statement\\(s\\) of set temporal to ${database} on cluster ${cluster} up to version 1; dry-run: \\d+ statement`));
    expect(Date.parse(progress.approval!.deadline!) - Date.parse(progress.approval!.requestedAt!)).toBe(3600_000);
    expect(progress.steps.find((s) => s.name === 'approval')!.detail).toContain(`runbook approve ${handle.workflowId}`);
    // Nothing is applied while it waits.
    expect(await sql('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).toEqual([]);

    const approved = await cli(['approve', handle.workflowId, '--comment', 'dry-run looks right', '--by', 'alice'], cliEnv());
    expect(approved.err).toBe('');
    expect(approved.code).toBe(0);
    expect(approved.out).toMatch(new RegExp(`^${handle.workflowId}: approved by alice at \\S+: dry-run looks right\\n$`));
    const result = (await handle.result()) as MigrateSchemaResult;
    expect(result).toMatchObject({ outcome: 'applied', toVersion: 1, approval: { state: 'approved', by: 'alice', comment: 'dry-run looks right' } });
    expect((await ledgerOf(database)).map((r) => r.version)).toEqual([1]);

    const late = await cli(['approve', handle.workflowId], cliEnv());
    expect(late).toMatchObject({ code: 1, err: `runbook: approve refused: ${handle.workflowId} has ended (COMPLETED)\n` });
  });

  test('a rejection ends the run with the reason, applies nothing and releases the lock', async () => {
    const database = newDatabase();
    const handle = await start({ cluster, set: 'temporal', database, requireApproval: true });
    await waitingForApproval(handle);
    const usage = await cli(['reject', handle.workflowId], cliEnv());
    expect(usage).toMatchObject({ code: 2, err: 'runbook: reject: --reason TEXT is required\n' });
    const rejected = await cli(['reject', handle.workflowId, '--reason', 'not during the peak', '--by', 'bob'], cliEnv());
    expect(rejected.code).toBe(0);
    const failure = await failureOf(handle.result());
    expect(failure).toMatchObject({ type: 'ApprovalRejected', message: 'rejected by bob: not during the peak' });
    expect((await handle.query(getProgressQuery)).approval).toMatchObject({ state: 'rejected', by: 'bob', comment: 'not during the peak' });
    expect(await sql('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).toEqual([]);
    expect(await scratchDatabasesOf(handle)).toEqual([]);
    const status = await cli(['status', '--cluster', cluster], cliEnv());
    expect(status.out).toBe(`cluster ${cluster}: lock free\n`);
  });

  test('past its deadline the approval expires and nothing is applied', async () => {
    const database = newDatabase();
    const failure = await failureOf(migrate({ set: 'temporal', database, requireApproval: true, approvalTimeoutSeconds: 2 }));
    expect(failure.type).toBe('ApprovalExpired');
    expect(failure.message).toMatch(/^no approval within 2s \(approvalTimeoutSeconds\): the deadline \S+ passed$/);
    expect(await sql('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).toEqual([]);
  });
});

test('on the GTID pair the runbook migrates the primary, and the replica receives the same schema', async () => {
  const pairCluster = `mig-pair-${suffix}`;
  const database = newDatabase();
  const pairWorker = await startWorker(
    env,
    realActivities(
      env,
      testProfiles(`clusters:
  ${pairCluster}:
    mysql:
      topology: replication
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes:
        - { name: replica, host: 127.0.0.1, port: 3312, role: replica }
        - { name: primary, host: 127.0.0.1, port: 3311, role: primary }
      migrations:
        temporal: { directory: ${path.join(sets, 'temporal')}, database: ${database}, createDatabase: true }
`),
    ),
  );
  const onNode = async (port: number, statement: string, values: unknown[] = []) => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'runbook', password: process.env.DBR_LOCAL_MYSQL_PASSWORD });
    try {
      return (await c.query(statement, values))[0] as mysql.RowDataPacket[];
    } finally {
      await c.end();
    }
  };
  try {
    const result = (await (await start({ cluster: pairCluster, set: 'temporal', targetVersion: 2 }, pairWorker.taskQueue)).result()) as MigrateSchemaResult;
    expect(result).toMatchObject({ outcome: 'applied', node: 'primary', toVersion: 2 });
    const definition = async (port: number) => (await onNode(port, `SHOW CREATE TABLE ${database}.cluster_metadata_info`))[0]!['Create Table'] as string;
    await until('the replica to have version 2', async () => (await onNode(3312, `SELECT version FROM ${database}.db_runbooks_migrations WHERE version = 2`)).length === 1);
    expect(await definition(3312)).toBe(await definition(3311));
    expect(await onNode(3312, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbr\\_dryrun\\_%'")).toEqual([]);
  } finally {
    await pairWorker.stop();
    await onNode(3311, `DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
  }
});

test('pre-flight names the privileges the profile\'s user lacks, before anything changes', async () => {
  const database = newDatabase();
  await sql(`CREATE DATABASE ${database}`);
  await sql(`CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?`, [limitedUser, process.env.DBR_MIG_LIMITED_PASSWORD]);
  try {
    await sql(`GRANT SELECT, INSERT, UPDATE, CREATE ON ${mysql.escapeId(database)}.* TO ?@'127.0.0.1'`, [limitedUser]);
    const failure = await failureOf((await start({ cluster: limitedCluster, set: 'temporal', database })).result());
    expect(failure.type).toBe('MigrationPreflightFailed');
    expect(failure.message).toBe(
      `user ${limitedUser}@127.0.0.1 lacks ALTER on ${database}; ALTER, CREATE, DROP, INSERT on the dry-run scratch databases dbr_dryrun_*`,
    );
    expect(await sql('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [database])).toEqual([]);
  } finally {
    await sql(`DROP USER IF EXISTS ?@'127.0.0.1'`, [limitedUser]);
  }
});

test('bad input fails at once naming every bad field', async () => {
  const failure = await failureOf(
    migrate({ set: 'No Such Set', database: 'x; DROP TABLE y', targetVersion: -1, mode: 'yolo' as 'apply', approvalTimeoutSeconds: 5 }),
  );
  expect(failure.type).toBe('InvalidInput');
  expect(failure.message).toBe(
    'migrateSchema: invalid input: set: expected a migration set name from the profile (mysql.migrations), got "No Such Set"; ' +
      'targetVersion: expected a whole number from 0 to 999999999, got number -1; ' +
      'database: expected a database name of letters, digits and "_" (at most 64), got "x; DROP TABLE y"; ' +
      'mode: expected "apply" or "dry-run", got "yolo"; approvalTimeoutSeconds: only with "requireApproval": true',
  );
  const unknownSet = await failureOf(migrate({ set: 'nope' }));
  expect(unknownSet.type).toBe('UnknownMigrationSet');
  expect(unknownSet.message).toBe(`set: cluster "${cluster}" has no migration set "nope" (mysql.migrations in its profile names: audit, backfill, mutable, temporal, temporal-cn, zero-date)`);
});

test('the worker killed twice during the apply: the run completes after each restart and no statement is applied twice', async () => {
  const killCluster = `mig-kill-${suffix}`;
  const database = newDatabase();
  const profileDir = mkdtempSync(path.join(os.tmpdir(), 'dbr-profiles-'));
  const profiles = path.join(profileDir, 'clusters.yaml');
  writeFileSync(profiles, `${readFileSync(LOCAL_PROFILES, 'utf8').replace(/\.\.\/examples/g, path.join(REPO_ROOT, 'examples'))}${clusterYaml(killCluster)}`);
  const taskQueue = `migrate-kill-${suffix}`;
  const workerEnv = { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue, DBR_PROFILES: profiles };
  mkdirSync(profileDir, { recursive: true });

  let process1 = spawnWorkerProcess(workerEnv);
  try {
    await process1.waitUntilPolling();
    await (await start({ cluster: killCluster, set: 'backfill', database, targetVersion: 4 }, taskQueue)).result();
    const handle = await start({ cluster: killCluster, set: 'backfill', database }, taskQueue);
    const runningStatement = (text: string) =>
      until(`"${text}" to run`, async () => (await sql("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE ?", [database, `${text}%`])).length > 0);
    const heartbeat = async () => {
      const { raw } = await handle.describe();
      const payload = raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
      return payload ? (JSON.parse(Buffer.from(payload.data!).toString()) as { statement?: number }) : null;
    };

    // Killed inside a slow INSERT (statement 4): its transaction dies with the connection.
    await runningStatement("INSERT INTO backfill_marks (statement, note) SELECT 4");
    await until('the heartbeat to report statement 3', async () => (await heartbeat())?.statement === 3);
    expect(await sql(`SELECT statement FROM ${database}.backfill_marks`)).toEqual([{ statement: 2 }]);
    await process1.kill('SIGKILL');
    expect((await ledgerOf(database)).find((r) => r.version === 5)).toMatchObject({ last_applied_statement: 3, in_flight_statement: 4 });
    process1 = spawnWorkerProcess(workerEnv);
    await process1.waitUntilPolling();

    // Killed again inside a slow CREATE TABLE ... SELECT (statement 6), which the server finishes on its own.
    await runningStatement('CREATE TABLE backfill_snapshot');
    await until('the heartbeat to report statement 5', async () => (await heartbeat())?.statement === 5);
    await process1.kill('SIGKILL');
    expect((await ledgerOf(database)).find((r) => r.version === 5)).toMatchObject({ last_applied_statement: 5, in_flight_statement: 6 });
    process1 = spawnWorkerProcess(workerEnv);
    await process1.waitUntilPolling();

    const result = (await handle.result()) as MigrateSchemaResult;
    expect(result.outcome).toBe('applied');
    expect(result.apply).toMatchObject({ attempt: 3, resumedAt: { version: 5, statement: 6 }, lastHeartbeat: { version: 5, statement: 5 }, applied: 1 });
    expect(result.apply!.recognised.map((s) => [s.statement, s.detail])).toEqual([[6, 'ran before the worker stopped (table backfill_snapshot exists)']]);
    // What the database shows: each insert once (the key would have refused a second), the
    // snapshot made once (before statement 7), the ledger complete with nothing in flight.
    expect(await sql(`SELECT statement, note FROM ${database}.backfill_marks ORDER BY statement`)).toEqual([
      { statement: 2, note: null },
      { statement: 4, note: 'slow insert' },
      { statement: 7, note: null },
    ]);
    expect(await sql(`SELECT statement FROM ${database}.backfill_snapshot ORDER BY statement`)).toEqual([{ statement: 2 }, { statement: 4 }]);
    expect((await ledgerOf(database)).find((r) => r.version === 5)).toMatchObject({ last_applied_statement: 7, in_flight_statement: null, recognised_statements: '6' });
    expect(result.verify).toMatchObject({ ledgerComplete: true, schemaMatches: true });
  } finally {
    await process1.kill();
    rmSync(profileDir, { recursive: true, force: true });
  }
}, 300_000);
