// Logical backups of MySQL / MariaDB databases to S3, and their restore. The dump is mariadb-dump
// (or mysqldump) driven as a child process, credentials in a private option file: its C client
// outruns a dumper written over mysql2 and keeps the rows out of the worker's heap (README,
// "Benchmarks"). Its output streams through the compressor and a sha256 into a multipart upload;
// the worker holds the upload's parts and nothing else, whatever the database size.
//
// Consistency: a connection of our own takes FLUSH TABLES WITH READ LOCK, opens its consistent
// snapshot and reads its binlog position, then starts the dump and keeps the lock until the dump
// prints the binlog position of its own snapshot (--master-data=2). Equal positions with commits
// blocked in between prove both transactions see the same data, so the row counts and CHECKSUM
// TABLE that our connection takes in its snapshot (while the dump runs) describe the dump exactly.
// The rows of tables whose values the dump's text would not give back (backup-exact.ts) are read
// in that same snapshot by our connection.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip, createZstdCompress, createZstdDecompress } from 'node:zlib';
import { AbortMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { planRetention, type RetentionPolicy } from '../workflows/backup-retention';
import { exactRows, tablesNeedingExactRows, type ExactTable } from './backup-exact';
import {
  compareObjects,
  countObjects,
  describeCounts,
  eventsSection,
  readObjectDefinitions,
  restoreEventStatus,
  serverUtcNow,
  totalObjects,
  type ObjectCounts,
  type ObjectRecord,
} from './backup-objects';
import type { ProfileSource } from './cluster';
import { withConnection, type MysqlConnector } from './mysql';
import type { BackupProfile, MysqlNodeProfile } from './profile';
import { readVerified, uploadVerified, withS3Target, type S3Connector, type S3Target } from './s3';
import type { SecretResolver } from './secrets';

export type Compression = 'gzip' | 'zstd';

export interface TableRecord {
  name: string;
  rows: number;
  /** CHECKSUM TABLE in the dump's snapshot (null for tables the server cannot checksum). */
  checksum: string | null;
}

export interface DatabaseDump {
  name: string;
  objectKey: string;
  /** Bytes and sha256 of the compressed object, as stored in its metadata. */
  bytes: number;
  sha256: string;
  /** Bytes of SQL before compression. */
  sqlBytes: number;
  characterSet: string;
  collation: string;
  /** The dump's snapshot: binary log coordinates and the GTID position they correspond to. */
  binlog: { file: string; position: number };
  gtidPosition: string;
  tables: TableRecord[];
  /** Routines, triggers, views and events with their definitions' fingerprints (absent in backups made before they were kept). */
  objects?: ObjectRecord[];
  /** Tables whose rows were written by us in an exact form, and the columns that needed it (backup-exact.ts). */
  exactTables?: ExactTable[];
  durationSeconds: number;
}

export interface VerificationRecord {
  outcome: 'passed' | 'failed';
  at: string;
  scratchDatabase: string;
  tables: number;
  /** Routines, triggers, views and events whose definitions were compared. */
  objects?: number;
  rows: number;
  differences: string[];
  durationSeconds: number;
}

export interface BackupManifest {
  format: 1;
  id: string;
  cluster: string;
  workflowId: string;
  runId: string;
  node: string;
  server: { version: string; flavor: 'MariaDB' | 'MySQL' };
  compression: Compression;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  /** The GTID position of the first database's snapshot (each database's own is in `databases`). */
  gtidPosition: string;
  bytes: number;
  databases: DatabaseDump[];
  /** Restored into a scratch database and compared; null when this run was not due for it. */
  verification: VerificationRecord | null;
}

export interface BackupSummary {
  id: string;
  manifestKey: string;
  workflowId: string;
  startedAt: string;
  verified: boolean;
  verification: 'passed' | 'failed' | 'not run';
  databases: string[];
  gtidPosition: string;
  bytes: number;
}

export interface DumpResult {
  node: string;
  server: BackupManifest['server'];
  databases: DatabaseDump[];
}

export interface LoadResult {
  database: string;
  tables: number;
  /** Routines, triggers, views and events whose definitions were compared. */
  objects?: number;
  rows: number;
  differences: string[];
  /** What the target held and the restore replaced (overwrite), in words; null when it held nothing. */
  replaced?: string | null;
  /** Events enabled again as the backup recorded them (a database restored under its own name). */
  eventsEnabled?: number;
  /** Events that were enabled in the backup and stay disabled (a copy under another name). */
  eventsDisabled?: number;
  sqlBytes: number;
  /** The load alone, before the comparison. */
  loadSeconds: number;
  durationSeconds: number;
}

export interface BackupDeps {
  profiles: ProfileSource;
  mysql: MysqlConnector;
  s3: S3Connector;
  secrets: SecretResolver;
}

const SYSTEM_DATABASES = ['mysql', 'information_schema', 'performance_schema', 'sys'];
const POSITION_LINE = /MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)/;
/** The dump prints its position in its first lines; past this much output it never will. */
const POSITION_SEARCH_BYTES = 256 * 1024;
const HEARTBEAT_MS = 2000;

export function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

export function backupPrefix(target: S3Target, cluster: string): string {
  return `${target.prefix}backups/${cluster}/`;
}

export function dumpObjectKey(target: S3Target, cluster: string, backupId: string, database: string, compression: Compression): string {
  return `${backupPrefix(target, cluster)}${backupId}/${database}.sql.${compression === 'gzip' ? 'gz' : 'zst'}`;
}

export function manifestObjectKey(target: S3Target, cluster: string, backupId: string): string {
  return `${backupPrefix(target, cluster)}${backupId}/manifest.json`;
}

/** The scratch database of one verification: derived from the run, so a retry reuses (and first drops) it. */
export function scratchDatabaseName(prefix: string, runKey: string, database: string): string {
  const hash = createHash('sha256').update(`${runKey}/${database}`).digest('hex').slice(0, 12);
  return `${prefix}_${hash}`;
}

function compressor(compression: Compression): Transform {
  return compression === 'gzip' ? createGzip() : createZstdCompress();
}

function decompressor(compression: Compression): Transform {
  return compression === 'gzip' ? createGunzip() : createZstdDecompress();
}

/** Heartbeats at most every HEARTBEAT_MS with the latest details. */
function throttledHeartbeat(): (details: Record<string, unknown>) => void {
  let last = 0;
  return (details) => {
    const now = Date.now();
    if (now - last < HEARTBEAT_MS) return;
    last = now;
    heartbeat(details);
  };
}

function optionValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

interface ClientTarget {
  node: MysqlNodeProfile;
  user: string;
  password: string;
}

/**
 * Runs fn with a private option file holding the node's address and credentials (mode 0600 in a
 * fresh 0700 directory, removed afterwards): the password never appears on a command line, where
 * `ps` and /proc would show it.
 */
async function withOptionFile<T>(client: ClientTarget, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dbr-client-'));
  const file = path.join(dir, 'client.cnf');
  try {
    await writeFile(
      file,
      `[client]\nhost=${optionValue(client.node.host)}\nport=${client.node.port}\nprotocol=TCP\nuser=${optionValue(client.user)}\npassword=${optionValue(client.password)}\n`,
      { mode: 0o600 },
    );
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Child {
  exited: Promise<void>;
  kill(): void;
}

/** Spawns a client tool; `exited` rejects with its stderr when it fails. */
function runTool(command: string, args: string[], stdio: ['ignore' | 'pipe', 'pipe' | 'ignore', 'pipe']): Child & { stdin: NodeJS.WritableStream | null; stdout: Readable | null } {
  const child = spawn(command, args, { stdio });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(ApplicationFailure.nonRetryable(`${command} is not installed on the worker (backup.dumpCommand / backup.restoreCommand)`, 'BackupToolMissing'));
      else reject(err);
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${signal ? `was stopped by ${signal}` : `exited with code ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no message'}`));
    });
  });
  exited.catch(() => undefined);
  const signal = Context.current().cancellationSignal;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  signal.addEventListener('abort', kill, { once: true });
  void exited.finally(() => signal.removeEventListener('abort', kill)).catch(() => undefined);
  return { exited, kill, stdin: child.stdin, stdout: child.stdout };
}

async function rows<T>(connection: Connection, sql: string, values?: unknown[]): Promise<T[]> {
  const [result] = await connection.query<RowDataPacket[]>(sql, values);
  return result as T[];
}

/**
 * A previous attempt that lost the bucket mid-upload could not abort its multipart upload: its
 * parts would stay stored (never as an object) until a lifecycle rule removes them.
 */
async function abortStaleUploads(target: S3Target, prefix: string): Promise<void> {
  const page = await target.client.send(new ListMultipartUploadsCommand({ Bucket: target.bucket, Prefix: prefix }));
  for (const upload of page.Uploads ?? []) {
    await target.client.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: upload.Key, UploadId: upload.UploadId }));
    log.info('aborted the multipart upload of an earlier attempt', { key: upload.Key });
  }
}

export interface RestoreTargetState {
  exists: boolean;
  /** Base tables (the field older runs recorded). */
  tables: number;
  /** Everything the database holds: tables, views, sequences, routines, triggers and events. */
  objects?: number;
  /** What it holds, in words ("2 tables, 1 event"). */
  holds?: string;
}

function targetState(found: ObjectCounts & { exists: boolean }): RestoreTargetState {
  return { exists: found.exists, tables: found.tables, objects: totalObjects(found), holds: describeCounts(found) };
}

const MARKER_PREFIX = 'db-runbooks restore ';

/**
 * The comment a restore gives the database it writes into: how a retried attempt of the same run
 * knows that what it finds there is its own (and may be replaced), and how the next restore tells
 * the operator where the database came from.
 */
export function restoreMarker(runKey: string, backupId: string): string {
  const run = createHash('sha256').update(runKey).digest('hex').slice(0, 20);
  return `${MARKER_PREFIX}${run} of backup ${backupId}`.slice(0, 1024);
}

function targetNotEmpty(database: string, node: string, found: ObjectCounts & { comment: string }): ApplicationFailure {
  const origin = found.comment.startsWith(MARKER_PREFIX) ? ` (written by an earlier restore: ${found.comment})` : '';
  return ApplicationFailure.nonRetryable(
    `targetDatabase: ${database} on node ${node} holds ${describeCounts(found)}${origin}; restore into an empty database, or set "overwrite": true to replace it`,
    'TargetNotEmpty',
  );
}

/**
 * Checks the restore's target and makes it ready, on the connection the restore then uses, with
 * nothing in between: absent, it is created; empty, it is kept (nothing to drop); holding anything,
 * it is refused unless overwrite, and then dropped with exactly what was just counted. What an
 * earlier attempt of this same run left (the marker) is replaced. A database created by someone
 * else between the count and CREATE DATABASE fails the CREATE, and the retry counts again.
 * `overwrite` undefined: a run from before this check, whose workflow checked the target itself.
 * Returns what was replaced, if anything.
 */
async function claimTarget(
  connection: Connection,
  target: { database: string; node: string; overwrite: boolean | undefined; marker: string; characterSet: string; collation: string },
): Promise<ObjectCounts | null> {
  const name = quoteIdentifier(target.database);
  const create = () => connection.query(`CREATE DATABASE ${name} CHARACTER SET ? COLLATE ? COMMENT ?`, [target.characterSet, target.collation, target.marker]);
  const found = await countObjects(connection, target.database);
  const ours = found.comment === target.marker;
  const objects = totalObjects(found);
  if (!found.exists) {
    await create();
    return null;
  }
  if (objects > 0 && !ours && target.overwrite === false) throw targetNotEmpty(target.database, target.node, found);
  if (objects > 0 || ours || target.overwrite === undefined) {
    await connection.query(`DROP DATABASE ${name}`);
    await create();
    return objects > 0 && !ours ? found : null;
  }
  await connection.query(`ALTER DATABASE ${name} CHARACTER SET ? COLLATE ? COMMENT ?`, [target.characterSet, target.collation, target.marker]);
  return null;
}

export function createBackupActivities(deps: BackupDeps) {
  const settings = (cluster: string): BackupProfile => deps.profiles.get(cluster).backup;

  function dumpNode(cluster: string): MysqlNodeProfile {
    const nodes = deps.mysql.nodes(cluster);
    const name = settings(cluster).node;
    const node = name ? nodes.find((n) => n.name === name) : (nodes.find((n) => n.role === 'primary') ?? nodes[0]);
    if (!node) throw ApplicationFailure.nonRetryable(`backup.node: cluster "${cluster}" has no MySQL node "${name ?? ''}"`, 'ProfileIncomplete');
    return node;
  }

  async function clientTarget(cluster: string, node: MysqlNodeProfile): Promise<ClientTarget> {
    const profile = deps.profiles.get(cluster);
    const password = await deps.secrets.resolve(profile.mysql!.password, { cluster, field: 'mysql.password', namespace: profile.namespace });
    return { node, user: profile.mysql!.user, password };
  }

  const withS3 = <T>(cluster: string, fn: (target: S3Target) => Promise<T>) => withS3Target(deps.s3, cluster, fn);

  /** One database, in its own consistent snapshot, to one object. */
  async function dumpOne(
    connection: Connection,
    client: ClientTarget,
    options: { cluster: string; database: string; objectKey: string; compression: Compression; target: S3Target; profile: BackupProfile; beat: (d: Record<string, unknown>) => void },
  ): Promise<DatabaseDump> {
    const { database, profile } = options;
    const started = Date.now();
    return withOptionFile(client, async (optionFile) => {
      // Identifiers in SHOW CREATE output are quoted as the session's sql_mode says: backticks.
      await connection.query("SET SESSION sql_mode = ''");
      await connection.query('SET SESSION lock_wait_timeout = ?', [profile.lockWaitTimeoutSeconds]);
      await connection.query('FLUSH TABLES WITH READ LOCK');
      let locked = true;
      let dump: ReturnType<typeof runTool> | undefined;
      let upload: Promise<{ bytes: number; sha256: string }> | undefined;
      // What the dump's tail needs from our connection, read once the lock is released.
      let tail!: { resolve: (t: { events: Buffer; triggers: boolean }) => void; reject: (err: unknown) => void };
      const tailRead = new Promise<{ events: Buffer; triggers: boolean }>((resolve, reject) => (tail = { resolve, reject }));
      tailRead.catch(() => undefined);
      try {
        await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
        const status = await rows<{ Variable_name: string; Value: string }>(connection, "SHOW STATUS LIKE 'binlog_snapshot_%'");
        const file = status.find((r) => r.Variable_name.toLowerCase() === 'binlog_snapshot_file')?.Value ?? '';
        const position = Number(status.find((r) => r.Variable_name.toLowerCase() === 'binlog_snapshot_position')?.Value ?? 0);
        if (!file) throw ApplicationFailure.nonRetryable(`node ${client.node.name}: the binary log is off (log_bin): a backup records the binlog and GTID position it was taken at`, 'BinlogRequired');
        const [gtid] = await rows<{ gtid: string | null }>(connection, 'SELECT BINLOG_GTID_POS(?, ?) AS gtid', [file, position]);
        const [db] = await rows<{ cs: string; co: string }>(
          connection,
          'SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
          [database],
        );
        if (!db) throw ApplicationFailure.nonRetryable(`databases: there is no database ${database} on node ${client.node.name}`, 'UnknownDatabase');
        const tables = await rows<{ name: string }>(
          connection,
          "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
          [database],
        );
        const exact = await tablesNeedingExactRows(connection, database);

        // The dump in four parts, one object: mariadb-dump's (tables, the rows it writes exactly,
        // routines, views); the rows of the tables it would not, from our snapshot; the triggers,
        // after every row so that none fires on a restored row (as mariadb-dump orders them);
        // the events, disabled (backup-objects.ts).
        dump = runTool(
          profile.dumpCommand,
          [
            `--defaults-extra-file=${optionFile}`, '--single-transaction', '--master-data=2', '--gtid', '--hex-blob', '--routines', '--skip-triggers', '--skip-dump-date',
            '--max-allowed-packet=1073741824', ...exact.map((t) => `--ignore-table-data=${database}.${t.name}`), database,
          ],
          ['ignore', 'pipe', 'pipe'],
        );
        const main = dump;
        let sqlBytes = 0;
        let found: { file: string; position: number } | undefined;
        let head = '';
        let announce: (p: { file: string; position: number }) => void = () => undefined;
        const positionSeen = new Promise<{ file: string; position: number }>((resolve) => (announce = resolve));
        const sniff = (chunk: Buffer) => {
          if (found || head.length >= POSITION_SEARCH_BYTES) return;
          head += chunk.toString('latin1');
          const m = POSITION_LINE.exec(head);
          if (m) {
            found = { file: m[1]!, position: Number(m[2]) };
            head = '';
            announce(found);
          }
        };
        async function* sql(): AsyncGenerator<Buffer> {
          for await (const chunk of main.stdout! as AsyncIterable<Buffer>) {
            sniff(chunk);
            yield chunk;
          }
          // A dump process that failed fails the stream before it ends: a truncated dump never uploads whole.
          await main.exited;
          if (!found) throw new Error(`${profile.dumpCommand} printed no binlog position (--master-data)`);
          const { events, triggers } = await tailRead;
          yield* exactRows(connection, database, exact);
          if (triggers) {
            const triggerDump = runTool(
              profile.dumpCommand,
              [`--defaults-extra-file=${optionFile}`, '--single-transaction', '--no-create-info', '--no-data', '--skip-routines', '--triggers', '--skip-dump-date', database],
              ['ignore', 'pipe', 'pipe'],
            );
            try {
              yield* triggerDump.stdout! as AsyncIterable<Buffer>;
              await triggerDump.exited;
            } finally {
              triggerDump.kill();
            }
          }
          if (events.length > 0) yield events;
        }
        const counted = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            sqlBytes += chunk.length;
            callback(null, chunk);
          },
        });
        upload = uploadVerified(
          options.target,
          options.objectKey,
          [Readable.from(sql()), counted, compressor(options.compression)],
          () => ({ database, sqlbytes: String(sqlBytes), gtid: gtid?.gtid ?? '', binlog: `${file}:${position}` }),
          (bytes) => options.beat({ phase: 'dump', database, sqlBytes, bytes }),
        );
        upload.catch(() => undefined);
        // Commits stay blocked until the dump's snapshot is open: then both see the same data.
        const theirs = await Promise.race([positionSeen, upload.then(() => found!)]);
        if (theirs.file !== file || theirs.position !== position) {
          throw new Error(`the dump's snapshot is at ${theirs.file}:${theirs.position}, ours at ${file}:${position}: not the same snapshot`);
        }
        await connection.query('UNLOCK TABLES');
        locked = false;

        const objects = await readObjectDefinitions(connection, database);
        tail.resolve({ events: await eventsSection(connection, database), triggers: objects.some((o) => o.kind === 'trigger') });
        const records: TableRecord[] = [];
        for (const { name } of tables) {
          const qualified = `${quoteIdentifier(database)}.${quoteIdentifier(name)}`;
          const [count] = await rows<{ n: string | number }>(connection, `SELECT COUNT(*) AS n FROM ${qualified}`);
          const [sum] = await rows<{ Checksum: string | number | null }>(connection, `CHECKSUM TABLE ${qualified}`);
          records.push({ name, rows: Number(count?.n ?? 0), checksum: sum?.Checksum === null || sum?.Checksum === undefined ? null : String(sum.Checksum) });
          options.beat({ phase: 'checksums', database, table: name, sqlBytes });
        }
        const uploaded = await upload;
        await dump.exited;
        await connection.query('COMMIT');
        return {
          name: database,
          objectKey: options.objectKey,
          bytes: uploaded.bytes,
          sha256: uploaded.sha256,
          sqlBytes,
          characterSet: db.cs,
          collation: db.co,
          binlog: { file, position },
          gtidPosition: gtid?.gtid ?? '',
          tables: records,
          objects,
          exactTables: exact,
          durationSeconds: (Date.now() - started) / 1000,
        };
      } catch (err) {
        tail.reject(err);
        dump?.kill();
        await upload?.catch(() => undefined);
        throw err;
      } finally {
        if (locked) await connection.query('UNLOCK TABLES').catch(() => undefined);
      }
    });
  }

  /** Streams one dump object into a database through the mysql client; the object's sha256 is checked as it reads. */
  async function load(cluster: string, node: MysqlNodeProfile, objectKey: string, compression: Compression, database: string, binlog: boolean): Promise<number> {
    const profile = settings(cluster);
    const client = await clientTarget(cluster, node);
    const beat = throttledHeartbeat();
    return withS3(cluster, (target) =>
      withOptionFile(client, async (optionFile) => {
        const source = await readVerified(target, objectKey);
        const args = [`--defaults-extra-file=${optionFile}`, `--database=${database}`, '--binary-mode', '--max-allowed-packet=1073741824'];
        // A scratch restore stays out of the binary log: replicas never see it.
        if (!binlog) args.push('--init-command=SET SESSION sql_log_bin = 0');
        const restore = runTool(profile.restoreCommand, args, ['pipe', 'ignore', 'pipe']);
        let sqlBytes = 0;
        const counting = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            sqlBytes += chunk.length;
            beat({ phase: 'restore', database, sqlBytes, of: source.bytes });
            callback(null, chunk);
          },
        });
        try {
          await pipeline(source.body, decompressor(compression), counting, restore.stdin!);
        } catch (err) {
          // The client's own error (a refused statement) explains a broken pipe better than EPIPE.
          if ((err as NodeJS.ErrnoException).code === 'EPIPE') await restore.exited;
          restore.kill();
          throw err;
        }
        await restore.exited;
        return sqlBytes;
      }),
    );
  }

  async function canSkipBinlog(connection: Connection): Promise<boolean> {
    try {
      await connection.query('SET SESSION sql_log_bin = 0');
      await connection.query('SET SESSION sql_log_bin = 1');
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Row counts and CHECKSUM TABLE of a restored database's tables, and the definitions of its
   * routines, triggers, views and events (still disabled), against the manifest's.
   */
  async function compare(connection: Connection, database: string, expected: Pick<DatabaseDump, 'tables' | 'objects'>): Promise<{ rows: number; objects: number; differences: string[] }> {
    const differences: string[] = [];
    let total = 0;
    const present = await rows<{ name: string }>(connection, "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", [database]);
    const names = new Set(present.map((r) => r.name));
    for (const table of expected.tables) {
      if (!names.delete(table.name)) {
        differences.push(`${table.name}: missing`);
        continue;
      }
      const qualified = `${quoteIdentifier(database)}.${quoteIdentifier(table.name)}`;
      const [count] = await rows<{ n: string | number }>(connection, `SELECT COUNT(*) AS n FROM ${qualified}`);
      const [sum] = await rows<{ Checksum: string | number | null }>(connection, `CHECKSUM TABLE ${qualified}`);
      const n = Number(count?.n ?? 0);
      const checksum = sum?.Checksum === null || sum?.Checksum === undefined ? null : String(sum.Checksum);
      total += n;
      if (n !== table.rows) differences.push(`${table.name}: ${n} rows, the manifest says ${table.rows}`);
      else if (checksum !== table.checksum) differences.push(`${table.name}: CHECKSUM TABLE ${checksum ?? 'NULL'}, the manifest says ${table.checksum ?? 'NULL'}`);
      heartbeat({ phase: 'compare', database, table: table.name });
    }
    for (const extra of names) differences.push(`${extra}: not in the backup`);
    if (!expected.objects) return { rows: total, objects: 0, differences };
    const objects = await readObjectDefinitions(connection, database);
    differences.push(...compareObjects(expected.objects, objects, { nowUtc: await serverUtcNow(connection), enabledAsRecorded: false }));
    return { rows: total, objects: expected.objects.length, differences };
  }

  async function readManifest(target: S3Target, key: string): Promise<BackupManifest> {
    const object = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
    return JSON.parse(await object.Body!.transformToString()) as BackupManifest;
  }

  /** Every backup of the cluster with a manifest (newest first), and the ids of objects without one. */
  async function listAll(cluster: string, target: S3Target): Promise<{ manifests: BackupManifest[]; orphans: Map<string, { keys: string[]; newest: number }> }> {
    const prefix = backupPrefix(target, cluster);
    const byId = new Map<string, { keys: string[]; newest: number; manifest: boolean }>();
    let token: string | undefined;
    do {
      const page = await target.client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        const rest = object.Key!.slice(prefix.length);
        const id = rest.split('/')[0]!;
        const entry = byId.get(id) ?? { keys: [], newest: 0, manifest: false };
        entry.keys.push(object.Key!);
        entry.newest = Math.max(entry.newest, object.LastModified?.getTime() ?? 0);
        if (rest === `${id}/manifest.json`) entry.manifest = true;
        byId.set(id, entry);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const manifests: BackupManifest[] = [];
    const orphans = new Map<string, { keys: string[]; newest: number }>();
    for (const [id, entry] of byId) {
      if (entry.manifest) manifests.push(await readManifest(target, manifestObjectKey(target, cluster, id)));
      else orphans.set(id, entry);
    }
    manifests.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    return { manifests, orphans };
  }

  function summarize(target: S3Target, m: BackupManifest): BackupSummary {
    return {
      id: m.id,
      manifestKey: manifestObjectKey(target, m.cluster, m.id),
      workflowId: m.workflowId,
      startedAt: m.startedAt,
      verified: m.verification?.outcome === 'passed',
      verification: m.verification?.outcome ?? 'not run',
      databases: m.databases.map((d) => d.name),
      gtidPosition: m.gtidPosition,
      bytes: m.bytes,
    };
  }

  return {
    /** The cluster's backups with a manifest, newest first. */
    async listBackups({ cluster }: { cluster: string }): Promise<BackupSummary[]> {
      return withS3(cluster, async (target) => (await listAll(cluster, target)).manifests.map((m) => summarize(target, m)));
    },

    /**
     * Dumps each database in its own consistent snapshot to `backups/<cluster>/<backup id>/`, with
     * row counts and checksums from that snapshot. Repeatable: the objects are named after the
     * backup id, so a retried attempt writes the same objects again.
     */
    async dumpDatabases({ cluster, backupId, databases, compression }: { cluster: string; backupId: string; databases?: string[]; compression: Compression }): Promise<DumpResult> {
      const profile = settings(cluster);
      const node = dumpNode(cluster);
      const client = await clientTarget(cluster, node);
      const beat = throttledHeartbeat();
      return withConnection(deps.mysql, cluster, node.name, (connection) =>
        withS3(cluster, async (target) => {
          const [version] = await rows<{ v: string }>(connection, 'SELECT VERSION() AS v');
          const server = { version: version!.v, flavor: /mariadb/i.test(version!.v) ? ('MariaDB' as const) : ('MySQL' as const) };
          let names = databases ?? profile.databases;
          if (!names) {
            const all = await rows<{ name: string }>(connection, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME');
            names = all.map((r) => r.name).filter((n) => !SYSTEM_DATABASES.includes(n) && !n.startsWith(`${profile.scratchDatabasePrefix}_`) && !n.startsWith('dbr_'));
          }
          await abortStaleUploads(target, `${backupPrefix(target, cluster)}${backupId}/`);
          const dumps: DatabaseDump[] = [];
          for (const database of names) {
            const objectKey = dumpObjectKey(target, cluster, backupId, database, compression);
            const dump = await dumpOne(connection, client, { cluster, database, objectKey, compression, target, profile, beat });
            log.info('database dumped', { cluster, database, bytes: dump.bytes, sqlBytes: dump.sqlBytes, tables: dump.tables.length, seconds: dump.durationSeconds });
            dumps.push(dump);
          }
          return { node: node.name, server, databases: dumps };
        }),
      );
    },

    /**
     * Restores each dump of the backup into a scratch database (outside the binary log where the
     * account may), compares row counts and CHECKSUM TABLE with the dump's, and drops the scratch
     * database however it ends.
     */
    async verifyBackup({ cluster, runKey, compression, databases }: { cluster: string; runKey: string; compression: Compression; databases: DatabaseDump[] }): Promise<VerificationRecord> {
      const profile = settings(cluster);
      const node = dumpNode(cluster);
      const started = Date.now();
      const differences: string[] = [];
      let tables = 0;
      let objects = 0;
      let total = 0;
      let scratch = '';
      await withConnection(deps.mysql, cluster, node.name, async (connection) => {
        const binlog = !(await canSkipBinlog(connection));
        for (const dump of databases) {
          scratch = scratchDatabaseName(profile.scratchDatabasePrefix, runKey, dump.name);
          if (!binlog) await connection.query('SET SESSION sql_log_bin = 0');
          await connection.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(scratch)}`);
          await connection.query(`CREATE DATABASE ${quoteIdentifier(scratch)} CHARACTER SET ? COLLATE ?`, [dump.characterSet, dump.collation]);
          try {
            await load(cluster, node, dump.objectKey, compression, scratch, binlog);
            const result = await compare(connection, scratch, dump);
            tables += dump.tables.length;
            objects += result.objects;
            total += result.rows;
            differences.push(...result.differences.map((d) => `${dump.name}.${d}`));
          } finally {
            await connection.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(scratch)}`);
          }
        }
      });
      return { outcome: differences.length === 0 ? 'passed' : 'failed', at: new Date().toISOString(), scratchDatabase: scratch, tables, objects, rows: total, differences, durationSeconds: (Date.now() - started) / 1000 };
    },

    /** Written last: a backup without its manifest is incomplete, and no restore picks it. */
    async writeBackupManifest({ manifest }: { manifest: BackupManifest }): Promise<{ manifestKey: string }> {
      return withS3(manifest.cluster, async (target) => {
        const key = manifestObjectKey(target, manifest.cluster, manifest.id);
        await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: JSON.stringify(manifest, null, 2), ContentType: 'application/json' }));
        return { manifestKey: key };
      });
    },

    /**
     * Deletes the backups the retention policy lets go (dumps and manifest), never the newest
     * verified one nor the current run's; objects without a manifest older than a day (a run that
     * failed) go too.
     */
    async applyBackupRetention({ cluster, policy, currentId, now }: { cluster: string; policy: RetentionPolicy; currentId: string; now: string }): Promise<{ kept: string[]; deleted: string[]; objects: number }> {
      return withS3(cluster, async (target) => {
        const { manifests, orphans } = await listAll(cluster, target);
        const plan = planRetention(
          manifests.map((m) => ({ id: m.id, startedAt: m.startedAt, verified: m.verification?.outcome === 'passed' })),
          policy,
        );
        const expired = plan.expire.filter((id) => id !== currentId);
        const staleOrphans = [...orphans].filter(([id, o]) => id !== currentId && Date.parse(now) - o.newest > 24 * 3600 * 1000).map(([id]) => id);
        const prefix = backupPrefix(target, cluster);
        const keys: string[] = [];
        // Dumps before the manifest: an interrupted deletion leaves a backup that looks incomplete, never one that looks whole.
        const dataKeys: string[] = [];
        const manifestKeys: string[] = [];
        for (const id of expired) {
          const m = manifests.find((x) => x.id === id)!;
          dataKeys.push(...m.databases.map((d) => d.objectKey));
          manifestKeys.push(manifestObjectKey(target, cluster, id));
        }
        for (const id of staleOrphans) dataKeys.push(...orphans.get(id)!.keys);
        for (const batch of [dataKeys, manifestKeys]) {
          for (let i = 0; i < batch.length; i += 1000) {
            const chunk = batch.slice(i, i + 1000);
            const result = await target.client.send(new DeleteObjectsCommand({ Bucket: target.bucket, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } }));
            if (result.Errors?.length) throw new Error(`could not delete ${result.Errors.length} object(s) under ${prefix}: ${result.Errors[0]?.Key ?? ''} ${result.Errors[0]?.Message ?? ''}`);
            keys.push(...chunk);
          }
        }
        return { kept: plan.keep.map((k) => k.id), deleted: [...expired, ...staleOrphans], objects: keys.length };
      });
    },

    /** The backup a restore starts from: by id, else the newest started at or before `at`; verified ones only unless told otherwise. */
    async findBackup({ cluster, backupId, at, verifiedOnly }: { cluster: string; backupId?: string; at?: string; verifiedOnly: boolean }): Promise<BackupSummary> {
      return withS3(cluster, async (target) => {
        const { manifests } = await listAll(cluster, target);
        const candidates = manifests.filter((m) => (!backupId || m.id === backupId || m.workflowId === backupId) && (!at || m.startedAt <= at) && (!verifiedOnly || m.verification?.outcome === 'passed'));
        const found = candidates[0];
        if (!found) {
          const what = [backupId ? `id ${backupId}` : null, at ? `started at or before ${at}` : null, verifiedOnly ? 'verified' : null].filter(Boolean).join(', ');
          throw ApplicationFailure.nonRetryable(`cluster ${cluster}: no backup${what ? ` (${what})` : ''} under s3://${target.bucket}/${backupPrefix(target, cluster)} (${manifests.length} backup(s) in all)`, 'UnknownBackup');
        }
        return summarize(target, found);
      });
    },

    /**
     * Whether a restore may write into the target database: it must be absent or hold nothing (no
     * table, view, sequence, routine, trigger or event), unless overwrite. Read only: the restore
     * checks again, on its own connection, right before it changes anything.
     */
    async checkRestoreTarget({ cluster, database, overwrite }: { cluster: string; database: string; overwrite: boolean }): Promise<RestoreTargetState> {
      const node = dumpNode(cluster);
      return withConnection(deps.mysql, cluster, node.name, async (connection) => {
        const found = await countObjects(connection, database);
        const state = targetState(found);
        if (totalObjects(found) > 0 && !overwrite) throw targetNotEmpty(database, node.name, found);
        return state;
      });
    },

    /**
     * Restores one database of a backup into targetDatabase, then compares row counts and CHECKSUM
     * TABLE of every table and the definitions of its routines, triggers, views and events with the
     * manifest. The target is checked and claimed on this connection right before anything changes
     * (see claimTarget); events come back disabled, and enabled as recorded only when the database
     * is restored under its own name and compares equal.
     */
    async restoreBackup({ cluster, manifestKey, database, targetDatabase, overwrite }: { cluster: string; manifestKey: string; database: string; targetDatabase: string; overwrite?: boolean }): Promise<LoadResult> {
      const node = dumpNode(cluster);
      const started = Date.now();
      const manifest = await withS3(cluster, (target) => readManifest(target, manifestKey));
      const dump = manifest.databases.find((d) => d.name === database);
      if (!dump) throw ApplicationFailure.nonRetryable(`database: backup ${manifest.id} holds ${manifest.databases.map((d) => d.name).join(', ')}, not ${database}`, 'UnknownBackup');
      const { workflowExecution, activityId } = Context.current().info;
      const marker = restoreMarker(workflowExecution ? `${workflowExecution.workflowId}/${workflowExecution.runId}` : activityId, manifest.id);
      return withConnection(deps.mysql, cluster, node.name, async (connection) => {
        const replaced = await claimTarget(connection, { database: targetDatabase, node: node.name, overwrite, marker, characterSet: dump.characterSet, collation: dump.collation });
        const loadStarted = Date.now();
        const sqlBytes = await load(cluster, node, dump.objectKey, manifest.compression, targetDatabase, true);
        const loadSeconds = (Date.now() - loadStarted) / 1000;
        const result = await compare(connection, targetDatabase, dump);
        // A copy under another name does not run the original's schedule; the database itself does.
        const eventsEnabled = result.differences.length === 0 && targetDatabase === database && dump.objects ? await restoreEventStatus(connection, targetDatabase, dump.objects) : 0;
        return {
          database: targetDatabase,
          tables: dump.tables.length,
          objects: result.objects,
          rows: result.rows,
          differences: result.differences,
          replaced: replaced ? describeCounts(replaced) : null,
          eventsEnabled,
          eventsDisabled: (dump.objects ?? []).filter((o) => o.kind === 'event' && o.status !== 'DISABLED').length - eventsEnabled,
          sqlBytes,
          loadSeconds,
          durationSeconds: (Date.now() - started) / 1000,
        };
      });
    },

    /** Removes a verification's scratch databases when the verify activity could not. */
    async dropBackupScratch({ cluster, runKey, databases }: { cluster: string; runKey: string; databases: string[] }): Promise<void> {
      const profile = settings(cluster);
      const node = dumpNode(cluster);
      await withConnection(deps.mysql, cluster, node.name, async (connection) => {
        for (const database of databases) await connection.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(scratchDatabaseName(profile.scratchDatabasePrefix, runKey, database))}`);
      });
    },
  };
}

