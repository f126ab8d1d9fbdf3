// Planning SQL schema migrations: which files make up a set, what the ledger says was applied,
// where a run resumes, which privileges it needs, and whether two schemas are the same.
// Pure: the activities in migrations.ts do the I/O; unit-tested in test/unit/migration-plan.test.ts.
import { classifyStatement, splitSqlScript, SqlScriptError, type StatementClass, type SqlStatement } from './sql-script';

/** `0001_create_tables.sql`: a version number, an underscore, a description. */
export const MIGRATION_FILE = /^(\d{1,9})_([A-Za-z0-9][A-Za-z0-9_.-]*)\.sql$/;

/** Database, ledger table and migration set names that may appear in SQL (always escaped as well). */
export const SQL_IDENTIFIER = /^[A-Za-z0-9_]{1,64}$/;
export const MIGRATION_SET_NAME = /^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/;

export interface PlannedStatement extends SqlStatement {
  class: StatementClass;
}

export interface MigrationFile {
  version: number;
  name: string;
  /** sha256 of the file's bytes, hex. */
  checksum: string;
  statements: PlannedStatement[];
}

/** What the activities pass between them to be sure they act on the files pre-flight checked. */
export interface MigrationFileRef {
  version: number;
  name: string;
  checksum: string;
  statements: number;
}

export interface MigrationProblem {
  type: 'MigrationInvalid' | 'MigrationChecksumMismatch' | 'MigrationPreflightFailed';
  message: string;
}

/** One row of the ledger table: per version, its checksum and how far it got. */
export interface LedgerRow {
  version: number;
  fileName: string;
  checksum: string;
  statementCount: number;
  /** 1-based index of the last statement applied (0: none yet). */
  lastApplied: number;
  /** Statements found already in effect (applied by hand) and recorded without running them. */
  recognised: number[];
  /** Set while a statement runs; left behind when the worker died during it. */
  inFlight: { statement: number; connection: number; server: string; before: string | null } | null;
  completedAt: string | null;
  appliedBy: string;
}

export interface PendingVersion {
  version: number;
  name: string;
  checksum: string;
  statementCount: number;
  /** 1-based index of the first statement still to apply. */
  fromStatement: number;
  /** Whether the ledger already has a row for this version (a run stopped inside it). */
  started: boolean;
}

export interface MigrationPlan {
  /** The highest version the ledger records as complete; null for a database never migrated. */
  currentVersion: number | null;
  targetVersion: number;
  pending: PendingVersion[];
  problems: MigrationProblem[];
  warnings: string[];
}

export function fileRef(file: MigrationFile): MigrationFileRef {
  return { version: file.version, name: file.name, checksum: file.checksum, statements: file.statements.length };
}

/** Parses one file of a set; a problem names the file and the line. */
export function readMigrationFile(name: string, text: string, checksum: string): { file?: MigrationFile; problems: MigrationProblem[] } {
  const match = MIGRATION_FILE.exec(name);
  if (!match) {
    return { problems: [{ type: 'MigrationInvalid', message: `${name}: not a migration file name: expected <version>_<description>.sql, e.g. 0001_create_tables.sql` }] };
  }
  let statements: SqlStatement[];
  try {
    statements = splitSqlScript(text);
  } catch (err) {
    if (!(err instanceof SqlScriptError)) throw err;
    return { problems: [{ type: 'MigrationInvalid', message: `${name}: ${err.message}` }] };
  }
  const planned = statements.map((s) => ({ ...s, class: classifyStatement(s.sql) }));
  const problems: MigrationProblem[] = planned
    .filter((s) => s.class.refused)
    .map((s) => ({ type: 'MigrationInvalid', message: `${name}: statement ${s.index} (line ${s.line}): refused: ${s.class.refused!}` }));
  return { file: { version: Number(match[1]), name, checksum, statements: planned }, problems };
}

/** Orders the files of a set by version and reports duplicate versions. */
export function orderMigrationFiles(files: MigrationFile[]): { files: MigrationFile[]; problems: MigrationProblem[] } {
  const sorted = [...files].sort((a, b) => a.version - b.version || a.name.localeCompare(b.name));
  const problems: MigrationProblem[] = [];
  for (let i = 1; i < sorted.length; i += 1) {
    if (sorted[i]!.version === sorted[i - 1]!.version) {
      problems.push({ type: 'MigrationInvalid', message: `${sorted[i - 1]!.name} and ${sorted[i]!.name} have the same version ${sorted[i]!.version}` });
    }
  }
  return { files: sorted, problems };
}

/**
 * Compares the set with the ledger: what is pending up to the target version, where each pending
 * version resumes, and what must stop the run (an applied file that changed, a version out of order).
 */
export function planMigrations(refs: readonly MigrationFileRef[], ledger: readonly LedgerRow[], targetVersion?: number): MigrationPlan {
  const problems: MigrationProblem[] = [];
  const warnings: string[] = [];
  const rows = new Map(ledger.map((row) => [row.version, row]));
  const newest = refs.at(-1)?.version ?? 0;
  const target = targetVersion ?? newest;
  if (targetVersion !== undefined && targetVersion > newest) {
    problems.push({ type: 'MigrationInvalid', message: `targetVersion ${targetVersion}: the set's newest version is ${newest}` });
  }

  for (const file of refs) {
    const row = rows.get(file.version);
    if (!row) continue;
    if (row.checksum !== file.checksum) {
      problems.push({
        type: 'MigrationChecksumMismatch',
        message:
          `${file.name}: changed since it was ${row.completedAt ? 'applied' : 'partly applied'} ` +
          `(the ledger records sha256 ${row.checksum.slice(0, 12)}…, the file now has ${file.checksum.slice(0, 12)}…): ` +
          'an applied migration must not change; restore the file and add a new version instead',
      });
    } else if (row.fileName !== file.name) {
      warnings.push(`version ${file.version} was applied as ${row.fileName} and is now named ${file.name} (same content)`);
    }
  }
  const known = new Set(refs.map((f) => f.version));
  for (const row of ledger) {
    if (known.has(row.version)) continue;
    if (row.completedAt) warnings.push(`version ${row.version} (${row.fileName}) is recorded as applied but is no longer in the set`);
    else problems.push({ type: 'MigrationInvalid', message: `${row.fileName}: partly applied (statement ${row.lastApplied} of ${row.statementCount}) but no longer in the set` });
  }

  const complete = ledger.filter((r) => r.completedAt !== null).map((r) => r.version);
  const currentVersion = complete.length > 0 ? Math.max(...complete) : null;
  const pending: PendingVersion[] = [];
  for (const file of refs) {
    if (file.version > target) break;
    const row = rows.get(file.version);
    if (row?.completedAt) continue;
    if (!row && currentVersion !== null && file.version < currentVersion) {
      problems.push({
        type: 'MigrationInvalid',
        message: `${file.name}: version ${file.version} is older than the applied version ${currentVersion}: versions apply in order, give it a number above ${currentVersion}`,
      });
      continue;
    }
    pending.push({
      version: file.version,
      name: file.name,
      checksum: file.checksum,
      statementCount: file.statements,
      fromStatement: (row?.lastApplied ?? 0) + 1,
      started: row !== undefined,
    });
  }
  if (currentVersion !== null && currentVersion > target) warnings.push(`the database is at version ${currentVersion}, above the target ${target}: nothing to apply (migrations only go forward)`);
  return { currentVersion, targetVersion: target, pending, problems, warnings };
}

/** Names the first difference between the files pre-flight checked and the files read now. */
export function sameFiles(expected: readonly MigrationFileRef[], actual: readonly MigrationFileRef[]): string | null {
  const now = new Map(actual.map((f) => [f.version, f]));
  for (const e of expected) {
    const a = now.get(e.version);
    if (!a) return `${e.name} is gone`;
    if (a.checksum !== e.checksum) return `${e.name} changed (sha256 ${e.checksum.slice(0, 12)}… then, ${a.checksum.slice(0, 12)}… now)`;
    if (a.name !== e.name) return `version ${e.version} was ${e.name} and is now ${a.name}`;
  }
  const before = new Set(expected.map((f) => f.version));
  const added = actual.find((f) => !before.has(f.version) && f.version <= Math.max(0, ...expected.map((e) => e.version)));
  return added ? `${added.name} was added` : null;
}

// ---------------------------------------------------------------------------- privileges

/** What the engine itself needs: the ledger table, and a scratch database for the dry-run. */
export const LEDGER_PRIVILEGES = ['CREATE', 'SELECT', 'INSERT', 'UPDATE'];
export const SCRATCH_PRIVILEGES = ['CREATE', 'DROP'];

export function statementPrivileges(statements: readonly PlannedStatement[]): string[] {
  return [...new Set(statements.flatMap((s) => s.class.privileges))].sort();
}

export interface Grant {
  privilege: string;
  /** The schema (a LIKE pattern, as SCHEMA_PRIVILEGES stores it) or null for a global grant. */
  schema: string | null;
}

/** Whether a database name matches a grant's schema pattern (`_` and `%` wildcards, `\` escapes). */
export function schemaPatternMatches(pattern: string, database: string): boolean {
  let regex = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) {
      regex += pattern[i + 1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i += 1;
    } else if (ch === '%') regex += '.*';
    else if (ch === '_') regex += '.';
    else regex += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${regex}$`, 'i').test(database);
}

export function missingPrivileges(grants: readonly Grant[], database: string, needed: readonly string[]): string[] {
  const held = (privilege: string) =>
    grants.some((g) => (g.privilege === privilege || g.privilege === 'ALL PRIVILEGES') && (g.schema === null || schemaPatternMatches(g.schema, database)));
  return needed.filter((p) => !held(p));
}

// ---------------------------------------------------------------------------- schemas

/** A table definition as SHOW CREATE TABLE gives it, without what data changes (the next AUTO_INCREMENT). */
export function normalizeCreateTable(ddl: string): string {
  return ddl.replace(/\s+AUTO_INCREMENT=\d+/g, '').trim();
}

/** Differences between two schemas given as table name → definition fingerprint. */
export function compareSchemas(expected: Readonly<Record<string, string>>, actual: Readonly<Record<string, string>>): string[] {
  const differences: string[] = [];
  for (const table of Object.keys(expected).sort()) {
    if (!(table in actual)) differences.push(`table ${table} is missing`);
    else if (actual[table] !== expected[table]) differences.push(`table ${table} has a different definition`);
  }
  for (const table of Object.keys(actual).sort()) if (!(table in expected)) differences.push(`table ${table} is not expected`);
  return differences;
}
