// Versioned SQL schema migrations on a MySQL / MariaDB node: pre-flight, a dry-run in a scratch
// database under the target's own sql_mode and time_zone, a resumable apply that records every
// statement in a ledger table, and a verify. Each is a separate activity with plain inputs and
// outputs, so that the migrateSchema runbook and the upgrade runbook's migrate step share them.
//
// The migration files come from a directory the worker can read (the profile names it per set;
// in Kubernetes a mounted ConfigMap or volume). Workflows only ever see names, versions and
// checksums: the activities read and checksum the files themselves, every time.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import mysql from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ProfileSource } from './cluster';
import {
  compareSchemas,
  fileRef,
  LEDGER_PRIVILEGES,
  missingPrivileges,
  normalizeCreateTable,
  orderMigrationFiles,
  planMigrations,
  readMigrationFile,
  sameFiles,
  SCRATCH_PRIVILEGES,
  SQL_IDENTIFIER,
  statementPrivileges,
  type Grant,
  type LedgerRow,
  type MigrationFile,
  type MigrationFileRef,
  type MigrationPlan,
  type MigrationProblem,
  type PendingVersion,
  type PlannedStatement,
} from './migration-plan';
import type { MysqlConnector } from './mysql';
import type { MigrationSetProfile } from './profile';
import { describeEffect, statementPreview, type Effect } from './sql-script';

// ---------------------------------------------------------------------------- where the files come from

export interface MigrationFileSource {
  /** The `.sql` files of a directory: name and content. */
  read(directory: string): Promise<{ name: string; bytes: Buffer }[]>;
}

const MAX_FILE_BYTES = 16 * 1024 * 1024;
const MAX_FILES = 2000;

/** Reads a directory on the worker's file system (a ConfigMap mount's `..data` entries are hidden names, skipped). */
export function createDirectorySource(): MigrationFileSource {
  return {
    async read(directory) {
      let names: string[];
      try {
        names = await readdir(directory);
      } catch (err) {
        // Retryable: another worker of the fleet may have the directory (a volume still being mounted).
        throw ApplicationFailure.retryable(
          `migration directory ${directory} cannot be read on this worker (${(err as NodeJS.ErrnoException).code ?? 'error'}): mount it on every worker`,
          'MigrationSetUnavailable',
        );
      }
      const sql = names.filter((n) => n.endsWith('.sql') && !n.startsWith('.')).sort();
      if (sql.length > MAX_FILES) throw ApplicationFailure.nonRetryable(`migration directory ${directory} has ${sql.length} files, more than ${MAX_FILES}`, 'MigrationInvalid');
      const files: { name: string; bytes: Buffer }[] = [];
      for (const name of sql) {
        const file = path.join(directory, name);
        const info = await stat(file);
        if (!info.isFile()) continue;
        if (info.size > MAX_FILE_BYTES) throw ApplicationFailure.nonRetryable(`${name}: ${info.size} bytes, more than ${MAX_FILE_BYTES}`, 'MigrationInvalid');
        files.push({ name, bytes: await readFile(file) });
      }
      return files;
    },
  };
}

// ---------------------------------------------------------------------------- inputs and outputs

export interface MigrationTarget {
  cluster: string;
  /** A migration set the cluster's profile names (mysql.migrations.<set>). */
  set: string;
  /** Overrides the set's database from the profile. */
  database?: string;
}

export interface MigrationSession {
  sqlMode: string;
  timeZone: string;
}

export interface MigrationPreflight {
  cluster: string;
  set: string;
  node: string;
  address: string;
  database: string;
  databaseExists: boolean;
  ledgerTable: string;
  server: { flavor: 'MariaDB' | 'MySQL'; version: string; readOnly: boolean; galeraState?: string };
  /** The server's settings, and the session the migration runs in (the set may override them). */
  globals: { sqlMode: string; timeZone: string; systemTimeZone: string };
  session: MigrationSession;
  files: MigrationFileRef[];
  plan: MigrationPlan;
  pendingStatements: number;
  privileges: { user: string; needed: string[]; missing: string[] };
  problems: MigrationProblem[];
  warnings: string[];
}

export type StatementOutcome = 'ok' | 'already in effect' | 'failed';

export interface StatementReport {
  version: number;
  file: string;
  statement: number;
  line: number;
  kind: string;
  sql: string;
  outcome: StatementOutcome;
  detail?: string;
  error?: { code: string; errno?: number; message: string };
}

export interface DryRunReport {
  passed: boolean;
  scratchDatabase: string;
  session: MigrationSession;
  statements: StatementReport[];
  failures: number;
  /** Table name → fingerprint of its definition, before and after the pending migrations. */
  sourceSchema: Record<string, string>;
  resultSchema: Record<string, string>;
  summary: string;
}

export interface ApplyReport {
  database: string;
  fromVersion: number | null;
  toVersion: number;
  attempt: number;
  /** Where this attempt started, from the ledger, and what the previous attempt's heartbeat said. */
  resumedAt: { version: number; statement: number } | null;
  lastHeartbeat: ApplyProgress | null;
  applied: number;
  recognised: StatementReport[];
  versions: { version: number; file: string; statements: number; applied: number; recognised: number }[];
  summary: string;
}

export interface ApplyProgress {
  version: number;
  file: string;
  /** The last statement recorded in the ledger. */
  statement: number;
  applied: number;
  recognised: number;
}

export interface VerifyReport {
  currentVersion: number | null;
  ledgerComplete: boolean;
  ledgerProblems: string[];
  schemaMatches: boolean;
  differences: string[];
  tables: number;
}

interface ResolvedSet extends MigrationSetProfile {
  cluster: string;
  name: string;
  database: string;
}

// ---------------------------------------------------------------------------- helpers

const INSPECTION_SESSION = "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'";

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The scratch database of one dry-run, derived from the run so that a retry finds and replaces it. */
export function scratchDatabaseName(runKey: string): string {
  return `dbr_dryrun_${sha256(runKey).slice(0, 16)}`;
}

function id(name: string): string {
  return mysql.escapeId(name);
}

function checkIdentifier(value: string, field: string): string {
  if (!SQL_IDENTIFIER.test(value)) {
    throw ApplicationFailure.nonRetryable(`${field}: ${JSON.stringify(value)} is not an allowed name (letters, digits and "_", at most 64)`, 'InvalidInput');
  }
  return value;
}

interface SqlError {
  code: string;
  errno?: number;
  message: string;
}

function sqlError(err: unknown): SqlError {
  const e = err as { code?: string; errno?: number; sqlMessage?: string; message?: string };
  return { code: e.code ?? 'ERROR', errno: e.errno, message: e.sqlMessage ?? e.message ?? String(err) };
}

// Lock waits, deadlocks, a killed query or a lost connection can pass; anything else will fail again.
const TRANSIENT_ERRNOS = new Set([1053, 1205, 1213, 1317, 1927, 2006, 2013]);

function isConnectionError(err: SqlError): boolean {
  return err.errno === undefined || err.errno < 1000 || err.errno === 2006 || err.errno === 2013 || /^(PROTOCOL_|E[A-Z]+$)/.test(err.code);
}

function isTransient(err: SqlError): boolean {
  return isConnectionError(err) || (err.errno !== undefined && TRANSIENT_ERRNOS.has(err.errno));
}

function where(file: string, s: PlannedStatement): string {
  return `${file} statement ${s.index} (line ${s.line}, ${s.class.verb})`;
}

function checkCancelled(): void {
  if (Context.current().cancellationSignal.aborted) throw new CancelledFailure('migration cancelled between two statements; the ledger records how far it got');
}

/** Runs fn while heartbeating the latest details, so a long statement does not look like a dead worker. */
async function heartbeating<T>(details: () => unknown, fn: () => Promise<T>): Promise<T> {
  heartbeat(details());
  const timer = setInterval(() => heartbeat(details()), 2000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

async function rows(connection: Connection, sql: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const [result] = await connection.query<RowDataPacket[]>(sql, values);
  return result;
}

async function databaseExists(connection: Connection, database: string): Promise<boolean> {
  return (await rows(connection, 'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database])).length > 0;
}

async function tableExists(connection: Connection, database: string, table: string): Promise<boolean> {
  return (await rows(connection, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE <> 'VIEW'", [database, table])).length > 0;
}

/** The fingerprint of a table's definition, or 'absent'. The connection must be an inspection session. */
async function tableFingerprint(inspect: Connection, database: string, table: string): Promise<string> {
  if (!(await tableExists(inspect, database, table))) return 'absent';
  const [row] = await rows(inspect, `SHOW CREATE TABLE ${id(database)}.${id(table)}`);
  return sha256(normalizeCreateTable(String(row!['Create Table'])));
}

async function baseTables(connection: Connection, database: string): Promise<string[]> {
  const found = await rows(
    connection,
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' ORDER BY TABLE_NAME",
    [database],
  );
  return found.map((r) => String(r.name));
}

async function schemaFingerprints(inspect: Connection, database: string, exclude?: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const table of await baseTables(inspect, database)) {
    if (table === exclude) continue;
    const [row] = await rows(inspect, `SHOW CREATE TABLE ${id(database)}.${id(table)}`);
    result[table] = sha256(normalizeCreateTable(String(row!['Create Table'])));
  }
  return result;
}

async function effectHolds(connection: Connection, database: string, effect: Effect): Promise<boolean> {
  let found: RowDataPacket[];
  switch (effect.object) {
    case 'table':
    case 'view':
      found = await rows(
        connection,
        `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE ${effect.object === 'view' ? '=' : '<>'} 'VIEW'`,
        [database, effect.name],
      );
      break;
    case 'column':
      found = await rows(connection, 'SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?', [database, effect.table, effect.name]);
      break;
    case 'index':
      found = await rows(connection, 'SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = ? LIMIT 1', [database, effect.table, effect.name]);
      break;
    case 'constraint':
      found = await rows(connection, 'SELECT 1 FROM information_schema.TABLE_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?', [database, effect.table, effect.name]);
      break;
    case 'procedure':
    case 'function':
      found = await rows(connection, 'SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_NAME = ? AND ROUTINE_TYPE = ?', [database, effect.name, effect.object.toUpperCase()]);
      break;
    case 'trigger':
      found = await rows(connection, 'SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?', [database, effect.name]);
      break;
  }
  return found.length > 0 === effect.exists;
}

type Decision = { action: 'run' } | { action: 'skip'; detail: string } | { action: 'refuse'; type: 'MigrationConflict' | 'MigrationUncertain'; message: string };

/**
 * Whether a statement still has to run. A DDL statement whose effects are all in place was applied
 * already (by hand, or by a worker that died before it could record it): it is recorded, not re-run.
 */
async function decide(
  statement: PlannedStatement,
  fileName: string,
  row: LedgerRow | undefined,
  connection: Connection,
  inspect: Connection,
  database: string,
): Promise<Decision> {
  const { kind, effects, table } = statement.class;
  const inFlight = row?.inFlight?.statement === statement.index ? row.inFlight : null;
  // Its transaction ended with the dead connection, or it changes nothing that lasts.
  if (kind === 'dml' || kind === 'read' || kind === 'session') return { action: 'run' };
  if (effects.length > 0) {
    const held = await Promise.all(effects.map((e) => effectHolds(connection, database, e)));
    if (held.every(Boolean)) {
      const facts = effects.map(describeEffect).join('; ');
      return { action: 'skip', detail: inFlight ? `ran before the worker stopped (${facts})` : `already in effect, applied outside this runbook (${facts})` };
    }
    if (held.some(Boolean)) {
      const state = effects.map((e, i) => `${describeEffect(e)}: ${held[i] ? 'yes' : 'no'}`).join('; ');
      return {
        action: 'refuse',
        type: 'MigrationConflict',
        message: `${where(fileName, statement)} is partly in effect already (${state}): finish or undo it by hand, then run the runbook again`,
      };
    }
    return { action: 'run' };
  }
  if (!inFlight) return { action: 'run' };
  if (table && inFlight.before) {
    const now = await tableFingerprint(inspect, database, table);
    if (now !== inFlight.before) return { action: 'skip', detail: `ran before the worker stopped (the definition of table ${table} changed since it started)` };
    return { action: 'run' };
  }
  return {
    action: 'refuse',
    type: 'MigrationUncertain',
    message:
      `${where(fileName, statement)} was running when the previous attempt stopped, and whether it took effect cannot be checked: ` +
      `look at the database, then set last_applied_statement (to ${statement.index} if it ran, else ${statement.index - 1}) and in_flight_statement = NULL ` +
      `in the ledger row of version ${row!.version}, and run the runbook again`,
  };
}

// ---------------------------------------------------------------------------- the ledger table

async function ensureLedger(connection: Connection, database: string, ledger: string): Promise<void> {
  await connection.query(
    `CREATE TABLE IF NOT EXISTS ${id(database)}.${id(ledger)} (
       version BIGINT UNSIGNED NOT NULL,
       file_name VARCHAR(255) NOT NULL,
       checksum CHAR(64) NOT NULL,
       statement_count INT UNSIGNED NOT NULL,
       last_applied_statement INT UNSIGNED NOT NULL,
       recognised_statements TEXT NULL,
       in_flight_statement INT UNSIGNED NULL,
       in_flight_connection BIGINT UNSIGNED NULL,
       in_flight_server VARCHAR(255) NULL,
       in_flight_before CHAR(64) NULL,
       applied_by VARCHAR(255) NOT NULL,
       started_at DATETIME(6) NOT NULL,
       updated_at DATETIME(6) NOT NULL,
       completed_at DATETIME(6) NULL,
       PRIMARY KEY (version)
     ) ENGINE=InnoDB COMMENT='db-runbooks migration ledger: one row per version'`,
  );
}

async function readLedger(connection: Connection, database: string, ledger: string): Promise<LedgerRow[]> {
  if (!(await tableExists(connection, database, ledger))) return [];
  const found = await rows(connection, `SELECT * FROM ${id(database)}.${id(ledger)} ORDER BY version`);
  return found.map((r) => ({
    version: Number(r.version),
    fileName: String(r.file_name),
    checksum: String(r.checksum),
    statementCount: Number(r.statement_count),
    lastApplied: Number(r.last_applied_statement),
    recognised: r.recognised_statements ? String(r.recognised_statements).split(',').filter(Boolean).map(Number) : [],
    inFlight:
      r.in_flight_statement === null
        ? null
        : {
            statement: Number(r.in_flight_statement),
            connection: Number(r.in_flight_connection),
            server: String(r.in_flight_server ?? ''),
            before: r.in_flight_before === null ? null : String(r.in_flight_before),
          },
    completedAt: r.completed_at === null ? null : String(r.completed_at),
    appliedBy: String(r.applied_by),
  }));
}

// ---------------------------------------------------------------------------- the activities

export function createMigrationActivities(deps: { profiles: ProfileSource; mysql: MysqlConnector; files: MigrationFileSource }) {
  function resolveSet(target: MigrationTarget): ResolvedSet {
    const profile = deps.profiles.get(target.cluster);
    if (!profile.mysql) throw ApplicationFailure.nonRetryable(`cluster: cluster "${target.cluster}" has no mysql section in its profile`, 'ProfileIncomplete');
    const sets = profile.mysql.migrations ?? {};
    const set = sets[target.set];
    if (!set) {
      throw ApplicationFailure.nonRetryable(
        `set: cluster "${target.cluster}" has no migration set "${target.set}" (mysql.migrations in its profile names: ${Object.keys(sets).sort().join(', ') || 'none'})`,
        'UnknownMigrationSet',
      );
    }
    return {
      ...set,
      cluster: target.cluster,
      name: target.set,
      directory: path.resolve(set.directory),
      database: checkIdentifier(target.database ?? set.database, target.database ? 'database' : `mysql.migrations.${target.set}.database`),
      ledgerTable: checkIdentifier(set.ledgerTable, `mysql.migrations.${target.set}.ledgerTable`),
    };
  }

  async function loadFiles(set: ResolvedSet): Promise<{ files: MigrationFile[]; problems: MigrationProblem[] }> {
    const problems: MigrationProblem[] = [];
    const parsed: MigrationFile[] = [];
    for (const { name, bytes } of await deps.files.read(set.directory)) {
      const { file, problems: fileProblems } = readMigrationFile(name, bytes.toString('utf8'), sha256(bytes));
      problems.push(...fileProblems);
      if (file) parsed.push(file);
    }
    const ordered = orderMigrationFiles(parsed);
    if (ordered.files.length === 0) problems.push({ type: 'MigrationInvalid', message: `migration set ${set.name}: no <version>_<description>.sql files in ${set.directory}` });
    return { files: ordered.files, problems: [...problems, ...ordered.problems] };
  }

  /** The files as they are now, refused when they differ from what pre-flight checked. */
  async function filesAsChecked(set: ResolvedSet, expected: MigrationFileRef[]): Promise<MigrationFile[]> {
    const { files, problems } = await loadFiles(set);
    const changed = sameFiles(expected, files.map(fileRef)) ?? (problems[0]?.message ? `${problems[0].message}` : null);
    if (changed) {
      throw ApplicationFailure.nonRetryable(`migration set ${set.name} changed since pre-flight: ${changed}; start the runbook again to check the new files`, 'MigrationFilesChanged');
    }
    return files;
  }

  /** Applies the set's session settings (else the server's own) and returns what the server made of them. */
  async function openMigrationSession(connection: Connection, set: ResolvedSet): Promise<{ globals: MigrationPreflight['globals']; session: MigrationSession }> {
    const [g] = await rows(connection, 'SELECT @@GLOBAL.sql_mode AS sqlMode, @@GLOBAL.time_zone AS timeZone, @@system_time_zone AS systemTimeZone');
    const globals = { sqlMode: String(g!.sqlMode), timeZone: String(g!.timeZone), systemTimeZone: String(g!.systemTimeZone) };
    try {
      await connection.query('SET SESSION sql_mode = ?, time_zone = ?', [set.session?.sqlMode ?? globals.sqlMode, set.session?.timeZone ?? globals.timeZone]);
    } catch (err) {
      const e = sqlError(err);
      throw ApplicationFailure.nonRetryable(`mysql.migrations.${set.name}.session: the server refuses it: ${e.code}: ${e.message}`, 'MigrationPreflightFailed');
    }
    const [s] = await rows(connection, 'SELECT @@SESSION.sql_mode AS sqlMode, @@SESSION.time_zone AS timeZone');
    return { globals, session: { sqlMode: String(s!.sqlMode), timeZone: String(s!.timeZone) } };
  }

  async function openInspection(cluster: string, node: string): Promise<Connection> {
    const inspect = await deps.mysql.connect(cluster, node);
    await inspect.query(INSPECTION_SESSION);
    return inspect;
  }

  /**
   * A per-database advisory lock: a second applier (a previous attempt whose worker lost contact
   * but whose statement still runs on the server) finishes before this one reads anything.
   */
  async function takeMigrationLock(connection: Connection, database: string, progress: () => unknown): Promise<string> {
    const name = `dbr_migrate_${sha256(database).slice(0, 40)}`;
    await heartbeating(progress, async () => {
      for (;;) {
        const [row] = await rows(connection, 'SELECT GET_LOCK(?, 2) AS got, IS_USED_LOCK(?) AS holder', [name, name]);
        if (Number(row!.got) === 1) return;
        log.info('waiting for the migration lock held by another connection', { database, holder: String(row!.holder) });
        checkCancelled();
      }
    });
    return name;
  }

  async function serverIdentity(connection: Connection): Promise<string> {
    const [row] = await rows(connection, "SELECT CONCAT(@@hostname, ':', @@port) AS server");
    return String(row!.server);
  }

  async function currentGrants(connection: Connection): Promise<{ user: string; grants: Grant[] }> {
    const [who] = await rows(connection, 'SELECT CURRENT_USER() AS user');
    const user = String(who!.user);
    const at = user.lastIndexOf('@');
    const grantees = [`'${user.slice(0, at)}'@'${user.slice(at + 1)}'`];
    try {
      const [role] = await rows(connection, 'SELECT CURRENT_ROLE() AS role');
      for (const r of String(role!.role ?? '').split(',').filter((x) => x && x !== 'NONE' && x !== 'null')) grantees.push(`'${r.replace(/`/g, '')}'`, r.replace(/`/g, ''));
    } catch {
      // A server without roles.
    }
    const found = await rows(
      connection,
      `SELECT PRIVILEGE_TYPE AS privilege, NULL AS schemaName FROM information_schema.USER_PRIVILEGES WHERE GRANTEE IN (?)
       UNION ALL
       SELECT PRIVILEGE_TYPE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE IN (?)`,
      [grantees, grantees],
    );
    return { user, grants: found.map((r) => ({ privilege: String(r.privilege), schema: r.schemaName === null ? null : String(r.schemaName) })) };
  }

  /** The node migrations run on: the primary, or for Galera the first member that is Synced in a Primary component. */
  async function chooseNode(cluster: string): Promise<{ node?: string; problems: string[] }> {
    const profile = deps.profiles.get(cluster).mysql!;
    const problems: string[] = [];
    if (profile.topology !== 'galera') {
      const primaries = profile.topology === 'standalone' && profile.nodes.length === 1 ? profile.nodes : profile.nodes.filter((n) => n.role === 'primary');
      if (primaries.length !== 1) return { problems: [`cluster ${cluster}: the profile must mark exactly one mysql node as role: primary (found ${primaries.length})`] };
      return { node: primaries[0]!.name, problems };
    }
    for (const n of profile.nodes) {
      try {
        const connection = await deps.mysql.connect(cluster, n.name);
        try {
          const [row] = await rows(connection, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment')");
          const [status] = await rows(connection, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status')");
          const state = String(row?.Value ?? 'unknown');
          const component = String(status?.Value ?? 'unknown');
          if (state === 'Synced' && component === 'Primary') return { node: n.name, problems: [] };
          problems.push(`galera node ${n.name} is ${state}/${component}`);
        } finally {
          await connection.end().catch(() => connection.destroy());
        }
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        problems.push(`galera node ${n.name} is unreachable: ${sqlError(err).message}`);
      }
    }
    return { problems: [`cluster ${cluster}: no galera member is Synced in a Primary component (${problems.join('; ')})`] };
  }

  function pendingStatements(files: MigrationFile[], plan: MigrationPlan): { pending: PendingVersion; file: MigrationFile }[] {
    const byVersion = new Map(files.map((f) => [f.version, f]));
    return plan.pending.map((pending) => ({ pending, file: byVersion.get(pending.version)! }));
  }

  function report(version: number, file: string, s: PlannedStatement, outcome: StatementOutcome, extra: Partial<StatementReport> = {}): StatementReport {
    return { version, file, statement: s.index, line: s.line, kind: s.class.verb, sql: statementPreview(s.sql), outcome, ...extra };
  }

  function refuse(problems: MigrationProblem[]): never {
    const first = problems[0]!;
    throw ApplicationFailure.nonRetryable(problems.map((p) => p.message).join('; '), first.type);
  }

  return {
    /** Server, session, privileges, files and ledger: everything a run depends on, checked before anything changes. */
    async preflightSqlMigration(request: MigrationTarget & { targetVersion?: number }): Promise<MigrationPreflight> {
      const set = resolveSet(request);
      const { files, problems } = await loadFiles(set);
      const warnings: string[] = [];
      const chosen = await chooseNode(request.cluster);
      const nodeProfile = deps.mysql.nodes(request.cluster).find((n) => n.name === chosen.node);
      if (!chosen.node || !nodeProfile) throw ApplicationFailure.nonRetryable(chosen.problems.join('; '), 'MigrationPreflightFailed');
      const node = chosen.node;
      const connection = await deps.mysql.connect(request.cluster, node);
      try {
        const [v] = await rows(connection, 'SELECT @@version AS version, @@version_comment AS comment, @@read_only AS readOnly');
        const version = String(v!.version);
        const flavor = /mariadb/i.test(`${version} ${String(v!.comment)}`) ? 'MariaDB' : 'MySQL';
        const server: MigrationPreflight['server'] = { flavor, version, readOnly: Number(v!.readOnly) === 1 };
        const profileTopology = deps.profiles.get(request.cluster).mysql!.topology;
        if (profileTopology === 'galera') {
          const [state] = await rows(connection, "SHOW GLOBAL STATUS WHERE Variable_name = 'wsrep_local_state_comment'");
          server.galeraState = String(state?.Value ?? 'unknown');
        }
        const [major, minor] = version.split('.').map(Number);
        if ((flavor === 'MariaDB' && (major! < 10 || (major === 10 && minor! < 6))) || (flavor === 'MySQL' && major! < 8)) {
          warnings.push(`${flavor} ${version} has no atomic DDL: a statement interrupted by a crash can leave a half-made table behind`);
        }
        const { globals, session } = await openMigrationSession(connection, set);
        const exists = await databaseExists(connection, set.database);
        const ledger = exists ? await readLedger(connection, set.database, set.ledgerTable) : [];
        const refs = files.map(fileRef);
        const plan = planMigrations(refs, ledger, request.targetVersion);
        const pending = pendingStatements(files, plan);
        const statements = pending.flatMap(({ pending: p, file }) => file.statements.slice(p.fromStatement - 1));
        const { user, grants } = await currentGrants(connection);
        const needed = [...new Set([...statementPrivileges(statements), ...LEDGER_PRIVILEGES])].sort();
        // Grouped by where they are needed, so that one line says what to grant.
        const scratchNeeds = [...new Set([...SCRATCH_PRIVILEGES, ...statementPrivileges(statements)])].sort();
        const groups: { lacking: string[]; where: string }[] = [
          { lacking: missingPrivileges(grants, set.database, needed), where: `on ${set.database}` },
          { lacking: missingPrivileges(grants, scratchDatabaseName(`${request.cluster}/preflight`), scratchNeeds), where: 'on the dry-run scratch databases dbr_dryrun_*' },
          { lacking: !exists && set.createDatabase ? missingPrivileges(grants, set.database, ['CREATE']) : [], where: `to create ${set.database}` },
        ];
        const missing = groups.filter((g) => g.lacking.length > 0).map((g) => `${g.lacking.join(', ')} ${g.where}`);

        const all: MigrationProblem[] = [...problems, ...plan.problems];
        const fail = (message: string) => all.push({ type: 'MigrationPreflightFailed', message });
        if (server.readOnly) fail(`node ${node} is read-only (read_only=ON): it cannot take schema changes`);
        if (!exists && !set.createDatabase && plan.pending.length > 0) {
          fail(`database ${set.database} does not exist on ${node}; create it, or set mysql.migrations.${set.name}.createDatabase: true`);
        }
        if (missing.length > 0) fail(`user ${user} lacks ${missing.join('; ')}`);
        const inFlight = ledger.find((r) => r.inFlight);
        if (inFlight) {
          warnings.push(`a previous run stopped during version ${inFlight.version} statement ${inFlight.inFlight!.statement} (connection ${inFlight.inFlight!.connection} on ${inFlight.inFlight!.server}): the run checks whether it took effect`);
        }
        const leftovers = await rows(connection, "SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbr\\_dryrun\\_%'");
        for (const l of leftovers) warnings.push(`scratch database ${String(l.name)} is left from a dry-run that did not finish: drop it when no runbook runs`);
        warnings.push(...plan.warnings);
        return {
          cluster: request.cluster,
          set: set.name,
          node,
          address: `${nodeProfile.host}:${nodeProfile.port}`,
          database: set.database,
          databaseExists: exists,
          ledgerTable: set.ledgerTable,
          server,
          globals,
          session,
          files: refs,
          plan,
          pendingStatements: statements.length,
          privileges: { user, needed, missing },
          problems: all,
          warnings,
        };
      } finally {
        await connection.end().catch(() => connection.destroy());
      }
    },

    /**
     * Copies the current schema (SHOW CREATE TABLE of every table) into a scratch database, applies
     * the pending statements there in the migration's own session (the target's sql_mode and
     * time_zone), reports each statement's outcome with the server's error, and drops the scratch
     * database however it ends.
     */
    async dryRunSqlMigration(
      request: MigrationTarget & { node: string; targetVersion: number; files: MigrationFileRef[]; runKey: string },
    ): Promise<DryRunReport> {
      const set = resolveSet(request);
      const files = await filesAsChecked(set, request.files);
      const scratch = scratchDatabaseName(request.runKey);
      const statements: StatementReport[] = [];
      const progress = () => ({ phase: 'dry-run', statements: statements.length });
      const connection = await deps.mysql.connect(request.cluster, request.node);
      const inspect = await openInspection(request.cluster, request.node);
      try {
        const { session } = await openMigrationSession(connection, set);
        const lock = await takeMigrationLock(connection, set.database, progress);
        const exists = await databaseExists(connection, set.database);
        const ledger = exists ? await readLedger(connection, set.database, set.ledgerTable) : [];
        const plan = planMigrations(files.map(fileRef), ledger, request.targetVersion);
        if (plan.problems.length > 0) refuse(plan.problems);
        const rowsByVersion = new Map(ledger.map((r) => [r.version, r]));

        await inspect.query(`DROP DATABASE IF EXISTS ${id(scratch)}`);
        const [charset] = exists
          ? await rows(inspect, 'SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [set.database])
          : [];
        if (charset) await inspect.query(`CREATE DATABASE ${id(scratch)} CHARACTER SET ? COLLATE ?`, [String(charset.cs), String(charset.co)]);
        else await inspect.query(`CREATE DATABASE ${id(scratch)}`);
        try {
          // The copy is made in a fixed session, so a definition the server already holds is copied
          // as it is, even one that today's sql_mode would refuse: only pending statements are judged.
          await inspect.query('SET SESSION foreign_key_checks = 0');
          const tables = exists ? (await baseTables(inspect, set.database)).filter((t) => t !== set.ledgerTable) : [];
          await inspect.query(`USE ${id(scratch)}`);
          for (const table of tables) {
            const [row] = await rows(inspect, `SHOW CREATE TABLE ${id(set.database)}.${id(table)}`);
            await inspect.query(String(row!['Create Table']));
          }
          await inspect.query('SET SESSION foreign_key_checks = 1');
          const sourceSchema = exists ? await schemaFingerprints(inspect, set.database, set.ledgerTable) : {};

          await connection.query(`USE ${id(scratch)}`);
          let failures = 0;
          await heartbeating(progress, async () => {
            for (const { pending, file } of pendingStatements(files, plan)) {
              const row = rowsByVersion.get(pending.version);
              for (const s of file.statements.slice(0, pending.fromStatement - 1)) if (s.class.kind === 'session') await connection.query(s.sql);
              for (const s of file.statements.slice(pending.fromStatement - 1)) {
                checkCancelled();
                const decision = await decide(s, file.name, row, connection, inspect, scratch);
                if (decision.action === 'skip') {
                  statements.push(report(file.version, file.name, s, 'already in effect', { detail: decision.detail }));
                  continue;
                }
                if (decision.action === 'refuse') {
                  failures += 1;
                  statements.push(report(file.version, file.name, s, 'failed', { error: { code: decision.type, message: decision.message } }));
                  continue;
                }
                try {
                  await connection.query(s.sql);
                  statements.push(report(file.version, file.name, s, 'ok'));
                } catch (err) {
                  const e = sqlError(err);
                  // A lost connection says nothing about the statement: the activity is retried.
                  if (isConnectionError(e)) throw err;
                  failures += 1;
                  statements.push(report(file.version, file.name, s, 'failed', { error: e, detail: failures > 1 ? 'may follow from an earlier failure' : undefined }));
                }
              }
            }
          });
          const resultSchema = await schemaFingerprints(inspect, scratch);
          const first = statements.find((s) => s.outcome === 'failed');
          const summary = first
            ? `${failures} of ${statements.length} statement(s) would fail; first: ${first.file} statement ${first.statement} (line ${first.line}): ${first.error!.code}${first.error!.errno ? ` (${first.error!.errno})` : ''}: ${first.error!.message}`
            : `${statements.length} statement(s) pass in time_zone ${session.timeZone}, sql_mode ${session.sqlMode || "''"}` +
              (statements.some((s) => s.outcome === 'already in effect') ? `, ${statements.filter((s) => s.outcome === 'already in effect').length} already in effect` : '');
          return { passed: failures === 0, scratchDatabase: scratch, session, statements, failures, sourceSchema, resultSchema, summary };
        } finally {
          await inspect.query(`DROP DATABASE IF EXISTS ${id(scratch)}`);
          await connection.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => undefined);
        }
      } finally {
        await Promise.all([connection.end().catch(() => connection.destroy()), inspect.end().catch(() => inspect.destroy())]);
      }
    },

    /** Drops a dry-run's scratch database; the runbook's cleanup when the dry-run activity itself could not. */
    async dropSqlMigrationScratch(request: { cluster: string; node: string; runKey: string }): Promise<{ dropped: string }> {
      const scratch = scratchDatabaseName(request.runKey);
      const connection = await deps.mysql.connect(request.cluster, request.node);
      try {
        await connection.query(`DROP DATABASE IF EXISTS ${id(scratch)}`);
        return { dropped: scratch };
      } finally {
        await connection.end().catch(() => connection.destroy());
      }
    },

    /**
     * Applies the pending statements, each recorded in the ledger as it completes: DML in one
     * transaction with its ledger entry, DDL (which commits by itself) between an in-flight mark and
     * the entry. A retry (a killed worker, a lost connection) resumes at the first unrecorded
     * statement and checks whether the one in flight took effect.
     */
    async applySqlMigration(
      request: MigrationTarget & { node: string; targetVersion: number; files: MigrationFileRef[]; session: MigrationSession; appliedBy: string },
    ): Promise<ApplyReport> {
      const set = resolveSet(request);
      const info = Context.current().info;
      const details0: unknown = info.heartbeatDetails;
      const lastHeartbeat = details0 && typeof details0 === 'object' && 'statement' in details0 ? (details0 as ApplyProgress) : null;
      const files = await filesAsChecked(set, request.files);
      const connection = await deps.mysql.connect(request.cluster, request.node);
      const inspect = await openInspection(request.cluster, request.node);
      let progress: ApplyProgress | null = lastHeartbeat;
      const details = () => progress ?? { phase: 'starting' };
      try {
        const { session } = await openMigrationSession(connection, set);
        if (session.sqlMode !== request.session.sqlMode || session.timeZone !== request.session.timeZone) {
          throw ApplicationFailure.nonRetryable(
            `the migration session changed since the dry-run: sql_mode ${request.session.sqlMode} → ${session.sqlMode}, time_zone ${request.session.timeZone} → ${session.timeZone}; run the runbook again for a new dry-run`,
            'MigrationSessionChanged',
          );
        }
        if (!(await databaseExists(connection, set.database))) {
          if (!set.createDatabase) throw ApplicationFailure.nonRetryable(`database ${set.database} does not exist on ${request.node}`, 'MigrationPreflightFailed');
          await connection.query(`CREATE DATABASE IF NOT EXISTS ${id(set.database)}`);
        }
        await connection.query(`USE ${id(set.database)}`);
        const lock = await takeMigrationLock(connection, set.database, details);
        try {
          await ensureLedger(connection, set.database, set.ledgerTable);
          const ledger = await readLedger(connection, set.database, set.ledgerTable);
          const plan = planMigrations(files.map(fileRef), ledger, request.targetVersion);
          if (plan.problems.length > 0) refuse(plan.problems);
          const server = await serverIdentity(connection);
          const table = `${id(set.database)}.${id(set.ledgerTable)}`;
          const rowsByVersion = new Map(ledger.map((r) => [r.version, r]));
          const recognised: StatementReport[] = [];
          const versions: ApplyReport['versions'] = [];
          let applied = 0;
          const first = plan.pending[0];
          const resumedAt = first && first.fromStatement > 1 ? { version: first.version, statement: first.fromStatement } : null;

          await heartbeating(details, async () => {
            for (const { pending, file } of pendingStatements(files, plan)) {
              const row = rowsByVersion.get(pending.version);
              const counts = { version: file.version, file: file.name, statements: file.statements.length, applied: 0, recognised: 0 };
              versions.push(counts);
              if (!row) {
                await connection.query(
                  `INSERT INTO ${table} (version, file_name, checksum, statement_count, last_applied_statement, recognised_statements, applied_by, started_at, updated_at, completed_at)
                   VALUES (?, ?, ?, ?, 0, '', ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), IF(? = 0, UTC_TIMESTAMP(6), NULL))`,
                  [file.version, file.name, file.checksum, file.statements.length, request.appliedBy, file.statements.length],
                );
              }
              // Session settings made earlier in the file hold for the statements after them.
              for (const s of file.statements.slice(0, pending.fromStatement - 1)) if (s.class.kind === 'session') await connection.query(s.sql);
              const record = (s: PlannedStatement, recognisedToo: boolean) =>
                connection.query(
                  `UPDATE ${table} SET last_applied_statement = ?,
                     recognised_statements = IF(?, CONCAT_WS(',', NULLIF(recognised_statements, ''), ?), recognised_statements),
                     in_flight_statement = NULL, in_flight_connection = NULL, in_flight_server = NULL, in_flight_before = NULL,
                     updated_at = UTC_TIMESTAMP(6), completed_at = IF(? = statement_count, UTC_TIMESTAMP(6), NULL)
                   WHERE version = ?`,
                  [s.index, recognisedToo, String(s.index), s.index, file.version],
                );
              for (const s of file.statements.slice(pending.fromStatement - 1)) {
                checkCancelled();
                const decision = await decide(s, file.name, row, connection, inspect, set.database);
                if (decision.action === 'refuse') throw ApplicationFailure.nonRetryable(decision.message, decision.type);
                if (decision.action === 'skip') {
                  await record(s, true);
                  counts.recognised += 1;
                  recognised.push(report(file.version, file.name, s, 'already in effect', { detail: decision.detail }));
                  log.info('statement already in effect: recorded, not run', { file: file.name, statement: s.index, detail: decision.detail });
                } else {
                  const before = s.class.kind === 'ddl' && s.class.table ? await tableFingerprint(inspect, set.database, s.class.table) : null;
                  await connection.query(
                    `UPDATE ${table} SET in_flight_statement = ?, in_flight_connection = CONNECTION_ID(), in_flight_server = ?, in_flight_before = ?, updated_at = UTC_TIMESTAMP(6) WHERE version = ?`,
                    [s.index, server, before, file.version],
                  );
                  const transactional = s.class.kind === 'dml';
                  try {
                    if (transactional) await connection.query('START TRANSACTION');
                    await connection.query(s.sql);
                    await record(s, false);
                    if (transactional) await connection.query('COMMIT');
                  } catch (err) {
                    const e = sqlError(err);
                    if (transactional) await connection.query('ROLLBACK').catch(() => undefined);
                    if (isTransient(e)) throw err;
                    // The server refused it: nothing is in flight any more.
                    await connection.query(`UPDATE ${table} SET in_flight_statement = NULL, in_flight_connection = NULL, in_flight_server = NULL, in_flight_before = NULL WHERE version = ?`, [file.version]);
                    throw ApplicationFailure.create({
                      type: 'MigrationStatementFailed',
                      nonRetryable: true,
                      message: `${where(file.name, s)}: ${e.code}${e.errno ? ` (${e.errno})` : ''}: ${e.message}; statements before it are recorded in ${set.ledgerTable}, a new run resumes here`,
                      details: [{ version: file.version, file: file.name, statement: s.index, line: s.line, error: e }],
                    });
                  }
                  counts.applied += 1;
                  applied += 1;
                }
                progress = { version: file.version, file: file.name, statement: s.index, applied, recognised: recognised.length };
                heartbeat(progress);
              }
            }
          });
          const done = await readLedger(connection, set.database, set.ledgerTable);
          const after = planMigrations(files.map(fileRef), done, request.targetVersion);
          const summary =
            `applied ${applied} statement(s) of ${versions.length} version(s) to ${set.database}` +
            (recognised.length > 0 ? `; ${recognised.length} already in effect, recorded without running` : '') +
            (resumedAt ? `; resumed at version ${resumedAt.version} statement ${resumedAt.statement}` : '') +
            `; now at version ${after.currentVersion ?? 'none'}`;
          return {
            database: set.database,
            fromVersion: plan.currentVersion,
            toVersion: after.currentVersion ?? 0,
            attempt: info.attempt,
            resumedAt,
            lastHeartbeat,
            applied,
            recognised,
            versions,
            summary,
          };
        } finally {
          await connection.query('SELECT RELEASE_LOCK(?)', [lock]).catch(() => undefined);
        }
      } finally {
        await Promise.all([connection.end().catch(() => connection.destroy()), inspect.end().catch(() => inspect.destroy())]);
      }
    },

    /** The ledger is complete up to the target, and the schema is the one the dry-run produced. */
    async verifySqlMigration(
      request: MigrationTarget & { node: string; targetVersion: number; files: MigrationFileRef[]; expectedSchema?: Record<string, string> },
    ): Promise<VerifyReport> {
      const set = resolveSet(request);
      const inspect = await openInspection(request.cluster, request.node);
      try {
        const exists = await databaseExists(inspect, set.database);
        const ledger = exists ? await readLedger(inspect, set.database, set.ledgerTable) : [];
        const plan = planMigrations(request.files, ledger, request.targetVersion);
        const ledgerProblems = [
          ...plan.problems.map((p) => p.message),
          ...plan.pending.map((p) => `version ${p.version} (${p.name}) is not complete: ${p.fromStatement - 1} of ${p.statementCount} statement(s) recorded`),
          ...ledger.filter((r) => r.inFlight).map((r) => `version ${r.version} has statement ${r.inFlight!.statement} marked in flight`),
        ];
        const actual = exists ? await schemaFingerprints(inspect, set.database, set.ledgerTable) : {};
        const differences = request.expectedSchema ? compareSchemas(request.expectedSchema, actual) : [];
        return {
          currentVersion: plan.currentVersion,
          ledgerComplete: ledgerProblems.length === 0,
          ledgerProblems,
          schemaMatches: differences.length === 0,
          differences,
          tables: Object.keys(actual).length,
        };
      } finally {
        await inspect.end().catch(() => inspect.destroy());
      }
    },
  };
}
