// MySQL / MariaDB: connections resolved from the cluster profile, and the facts the runbooks
// decide on. Activities here report what they saw; workflows decide what it means.
import mysql from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { cancellationSignal, cancelled, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { parseGtidPosition, reaches } from '../workflows/gtid';
import type { ProfileSource } from './cluster';
import type { MysqlNodeProfile } from './profile';
import type { SecretResolver } from './secrets';

export interface MysqlConnector {
  /** A new connection to one node of the cluster; the caller ends it. */
  connect(cluster: string, node: string): Promise<Connection>;
  nodes(cluster: string): MysqlNodeProfile[];
}

export function createMysqlConnector(deps: { profiles: ProfileSource; secrets: SecretResolver }): MysqlConnector {
  const mysqlProfile = (cluster: string) => {
    const profile = deps.profiles.get(cluster);
    if (!profile.mysql) {
      throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no mysql section in its profile`, 'ProfileIncomplete');
    }
    return { profile, mysql: profile.mysql };
  };
  return {
    nodes: (cluster) => mysqlProfile(cluster).mysql.nodes,
    async connect(cluster, nodeName) {
      const { profile, mysql: m } = mysqlProfile(cluster);
      const node = m.nodes.find((n) => n.name === nodeName);
      if (!node) {
        throw ApplicationFailure.nonRetryable(`node: cluster "${cluster}" has no MySQL node "${nodeName}"`, 'UnknownNode');
      }
      const password = await deps.secrets.resolve(m.password, { cluster, field: 'mysql.password', namespace: profile.namespace });
      return mysql.createConnection({
        host: node.host,
        port: node.port,
        user: m.user,
        password,
        connectTimeout: m.connectTimeoutMs,
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
      });
    },
  };
}

/** Runs fn with a connection and always ends it. */
export async function withConnection<T>(connector: MysqlConnector, cluster: string, node: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await connector.connect(cluster, node);
  try {
    return await fn(connection);
  } finally {
    await connection.end().catch(() => connection.destroy());
  }
}

export interface ReplicationFacts {
  sourceHost: string | null;
  sourcePort: number | null;
  ioRunning: string;
  sqlRunning: string;
  secondsBehindSource: number | null;
  lastIoError: string;
  lastSqlError: string;
  gtidIoPos: string | null;
}

export interface GaleraFacts {
  ready: string;
  connected: string;
  clusterSize: number;
  clusterStatus: string;
  localState: string;
  recvQueueAvg: number;
}

export interface MysqlNodeFacts {
  node: string;
  role: string | null;
  address: string;
  reachable: boolean;
  error?: string;
  version?: string;
  flavor?: 'MariaDB' | 'MySQL';
  readOnly?: boolean;
  logBin?: boolean;
  innodbFlushLogAtTrxCommit?: number;
  syncBinlog?: number;
  gtidPosition?: string;
  replication?: ReplicationFacts | null;
  galera?: GaleraFacts;
}

type Row = Record<string, unknown>;

function pick(row: Row, ...names: string[]): unknown {
  for (const name of names) if (name in row) return row[name];
  return undefined;
}

function text(value: unknown, fallback: string): string {
  if (value === null || value === undefined) return fallback;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function toNumberOrNull(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** SHOW REPLICA STATUS where the server knows it (MariaDB 10.5+, MySQL 8.0.22+), SHOW SLAVE STATUS before that. */
export async function readReplicationStatus(connection: Connection): Promise<ReplicationFacts | null> {
  let rows: RowDataPacket[];
  try {
    [rows] = await connection.query<RowDataPacket[]>('SHOW REPLICA STATUS');
  } catch {
    [rows] = await connection.query<RowDataPacket[]>('SHOW SLAVE STATUS');
  }
  const row = rows[0] as Row | undefined;
  if (!row) return null;
  return {
    sourceHost: (pick(row, 'Master_Host', 'Source_Host') as string | undefined) ?? null,
    sourcePort: toNumberOrNull(pick(row, 'Master_Port', 'Source_Port')),
    ioRunning: text(pick(row, 'Slave_IO_Running', 'Replica_IO_Running'), 'No'),
    sqlRunning: text(pick(row, 'Slave_SQL_Running', 'Replica_SQL_Running'), 'No'),
    secondsBehindSource: toNumberOrNull(pick(row, 'Seconds_Behind_Master', 'Seconds_Behind_Source')),
    lastIoError: text(pick(row, 'Last_IO_Error'), ''),
    lastSqlError: text(pick(row, 'Last_SQL_Error'), ''),
    gtidIoPos: (pick(row, 'Gtid_IO_Pos', 'Retrieved_Gtid_Set') as string | undefined) ?? null,
  };
}

export async function readGaleraStatus(connection: Connection): Promise<GaleraFacts> {
  const [rows] = await connection.query<RowDataPacket[]>(
    `SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_connected', 'wsrep_cluster_size',
       'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_local_recv_queue_avg')`,
  );
  const status = new Map(rows.map((r) => [String(r.Variable_name), String(r.Value)]));
  return {
    ready: status.get('wsrep_ready') ?? 'OFF',
    connected: status.get('wsrep_connected') ?? 'OFF',
    clusterSize: Number(status.get('wsrep_cluster_size') ?? 0),
    clusterStatus: status.get('wsrep_cluster_status') ?? 'unknown',
    localState: status.get('wsrep_local_state_comment') ?? 'unknown',
    recvQueueAvg: Number(status.get('wsrep_local_recv_queue_avg') ?? 0),
  };
}

function describeConnectError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.message ?? e.code ?? String(err);
}

export function createMysqlActivities(deps: { mysql: MysqlConnector }) {
  return {
    async checkMysqlNode(request: { cluster: string; node: string }): Promise<MysqlNodeFacts> {
      const { cluster, node } = request;
      const profileNode = deps.mysql.nodes(cluster).find((n) => n.name === node);
      const facts: MysqlNodeFacts = {
        node,
        role: profileNode?.role ?? null,
        address: profileNode ? `${profileNode.host}:${profileNode.port}` : 'unknown',
        reachable: false,
      };
      let connection: Connection;
      try {
        connection = await deps.mysql.connect(cluster, node);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        facts.error = describeConnectError(err);
        return facts;
      }
      try {
        facts.reachable = true;
        const [[vars]] = await connection.query<RowDataPacket[]>(
          `SELECT @@version AS version, @@version_comment AS comment, @@read_only AS readOnly, @@log_bin AS logBin,
                  @@innodb_flush_log_at_trx_commit AS flushLog, @@sync_binlog AS syncBinlog,
                  @@global.wsrep_on AS wsrepOn`,
        ).catch(() => connection.query<RowDataPacket[]>(
          `SELECT @@version AS version, @@version_comment AS comment, @@read_only AS readOnly, @@log_bin AS logBin,
                  @@innodb_flush_log_at_trx_commit AS flushLog, @@sync_binlog AS syncBinlog, 0 AS wsrepOn`,
        ));
        const v = vars as Row;
        facts.version = String(v.version);
        facts.flavor = /mariadb/i.test(`${String(v.version)} ${String(v.comment)}`) ? 'MariaDB' : 'MySQL';
        facts.readOnly = Number(v.readOnly) === 1;
        facts.logBin = Number(v.logBin) === 1;
        facts.innodbFlushLogAtTrxCommit = Number(v.flushLog);
        facts.syncBinlog = Number(v.syncBinlog);
        const [[gtid]] = await connection.query<RowDataPacket[]>(
          facts.flavor === 'MariaDB' ? 'SELECT @@gtid_current_pos AS pos' : 'SELECT @@gtid_executed AS pos',
        );
        facts.gtidPosition = text((gtid as Row).pos, '');
        facts.replication = await readReplicationStatus(connection);
        if (Number(v.wsrepOn) === 1) facts.galera = await readGaleraStatus(connection);
      } catch (err) {
        facts.error = describeConnectError(err);
      } finally {
        await connection.end().catch(() => connection.destroy());
      }
      return facts;
    },
  };
}

// ---------------------------------------------------------------- replication: switchover and failover

/** What a switchover or failover decides on, for one node. Unreachable is a fact, not an error. */
export interface ReplicationState {
  node: string;
  address: string;
  reachable: boolean;
  error?: string;
  flavor?: 'MariaDB' | 'MySQL';
  version?: string;
  serverId?: number;
  readOnly?: boolean;
  gtidCurrentPos?: string;
  gtidBinlogPos?: string;
  gtidSlavePos?: string;
  gtidStrictMode?: boolean;
  logSlaveUpdates?: boolean;
  replication: ReplicaFacts | null;
}

export interface ReplicaFacts extends ReplicationFacts {
  sqlThreadState: string | null;
  /**
   * The replication SQL thread's processlist time: while it applies, how old (by the primary's
   * clock) the change it works on is. MariaDB reports Seconds_Behind_Master as NULL as soon as the
   * I/O thread is not reading, which is always the case when the primary is down; this still counts.
   */
  sqlThreadSeconds: number | null;
}

export interface SessionFacts {
  id: number;
  user: string;
  host: string;
  seconds: number;
  rowsModified?: number;
}

const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_NO_SUCH_THREAD = 1094;

function sqlError(err: unknown): { code?: string; errno?: number; message: string } {
  const e = err as { code?: string; errno?: number; sqlMessage?: string; message?: string };
  // sqlMessage is the server's own message; message can carry the statement, and with it a password.
  return { code: e.code, errno: e.errno, message: e.sqlMessage ?? e.code ?? 'error' };
}

async function flavorOf(connection: Connection): Promise<{ flavor: 'MariaDB' | 'MySQL'; version: string }> {
  const [[row]] = await connection.query<RowDataPacket[]>('SELECT @@version AS version, @@version_comment AS comment');
  const r = row as Row;
  const version = String(r.version);
  return { flavor: /mariadb/i.test(`${version} ${String(r.comment)}`) ? 'MariaDB' : 'MySQL', version };
}

function unsupportedFlavor(cluster: string, node: string, version: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `cluster ${cluster}: node ${node} runs MySQL ${version}: switchover and failover support MariaDB GTID replication only (MySQL's GTID sets and statements differ)`,
    'UnsupportedFlavor',
  );
}

/** Client sessions other than this one: not replication threads, not the server's own, not the event scheduler. */
async function clientSessions(connection: Connection): Promise<SessionFacts[]> {
  const [rows] = await connection.query<RowDataPacket[]>(
    `SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.TIME AS seconds, t.trx_rows_modified AS rowsModified
       FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
      WHERE p.ID <> CONNECTION_ID() AND p.USER NOT IN ('system user', 'event_scheduler')
        AND p.COMMAND NOT IN ('Binlog Dump', 'Daemon', 'Slave_IO', 'Slave_SQL', 'Slave_worker')`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    user: String(r.user),
    // The client's port changes with every connection; the host is what an operator recognises.
    host: String(r.host ?? '').replace(/:\d+$/, ''),
    seconds: Number(r.seconds ?? 0),
    rowsModified: r.rowsModified === null || r.rowsModified === undefined ? undefined : Number(r.rowsModified),
  }));
}

async function killSessions(connection: Connection, sessions: SessionFacts[]): Promise<SessionFacts[]> {
  const killed: SessionFacts[] = [];
  for (const s of sessions) {
    try {
      await connection.query('KILL CONNECTION ?', [s.id]);
      killed.push(s);
    } catch (err) {
      // Gone between the list and the kill: nothing left to do.
      if (sqlError(err).errno !== ER_NO_SUCH_THREAD) throw err;
    }
  }
  return killed;
}

async function readReplicaFacts(connection: Connection): Promise<ReplicaFacts | null> {
  const replication = await readReplicationStatus(connection);
  if (!replication) return null;
  const [threads] = await connection.query<RowDataPacket[]>(
    `SELECT STATE AS state, TIME AS seconds FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_SQL' LIMIT 1`,
  );
  const thread = threads[0] as Row | undefined;
  return {
    ...replication,
    sqlThreadState: thread ? text(thread.state, '') : null,
    sqlThreadSeconds: thread ? toNumberOrNull(thread.seconds) : null,
  };
}

async function readGtidVariables(connection: Connection): Promise<Row> {
  const [[row]] = await connection.query<RowDataPacket[]>(
    `SELECT @@server_id AS serverId, @@read_only AS readOnly, @@gtid_current_pos AS currentPos, @@gtid_binlog_pos AS binlogPos,
            @@gtid_slave_pos AS slavePos, @@gtid_strict_mode AS strictMode, @@log_slave_updates AS logSlaveUpdates`,
  );
  return row as Row;
}

function deadlineOf(deadline: unknown): number {
  const ms = typeof deadline === 'string' ? Date.parse(deadline) : NaN;
  if (Number.isNaN(ms)) throw ApplicationFailure.nonRetryable(`deadline: expected an ISO 8601 time, got ${JSON.stringify(deadline)}`, 'InvalidInput');
  return ms;
}

async function stopIfCancelled(): Promise<void> {
  if (cancellationSignal().aborted) await cancelled();
}

export const PROBE_SCHEMA = 'db_runbooks';
export const PROBE_TABLE = 'replication_probe';

export function createReplicationActivities(deps: { mysql: MysqlConnector; secrets: SecretResolver; profiles: ProfileSource; pollIntervalMs?: number }) {
  // Short: these polls run while the primary refuses writes, so every one of them is client-visible downtime.
  const pollIntervalMs = deps.pollIntervalMs ?? 25;

  const nodeProfile = (cluster: string, node: string): MysqlNodeProfile => {
    const found = deps.mysql.nodes(cluster).find((n) => n.name === node);
    if (!found) throw ApplicationFailure.nonRetryable(`node: cluster "${cluster}" has no MySQL node "${node}"`, 'UnknownNode');
    return found;
  };

  /** A connection to a MariaDB node; a MySQL server is refused (the statements below are MariaDB's). */
  const withMariaDb = <T>(cluster: string, node: string, fn: (c: Connection) => Promise<T>): Promise<T> =>
    withConnection(deps.mysql, cluster, node, async (c) => {
      const { flavor, version } = await flavorOf(c);
      if (flavor !== 'MariaDB') throw unsupportedFlavor(cluster, node, version);
      return fn(c);
    });

  const replicationAccount = async (cluster: string): Promise<{ user: string; password: string }> => {
    const profile = deps.profiles.get(cluster);
    const m = profile.mysql;
    if (!m?.replicationUser || !m.replicationPassword) {
      throw ApplicationFailure.nonRetryable(
        `cluster ${cluster}: mysql.replicationUser and mysql.replicationPassword are required to point a replica at a new primary`,
        'ProfileIncomplete',
      );
    }
    const password = await deps.secrets.resolve(m.replicationPassword, { cluster, field: 'mysql.replicationPassword', namespace: profile.namespace });
    return { user: m.replicationUser, password };
  };

  return {
    /** GTID positions, read-only flag and replication threads of one node; an unreachable node is reported, not thrown. */
    async readReplicationState(request: { cluster: string; node: string }): Promise<ReplicationState> {
      const { cluster, node } = request;
      const profileNode = nodeProfile(cluster, node);
      const state: ReplicationState = { node, address: `${profileNode.host}:${profileNode.port}`, reachable: false, replication: null };
      let connection: Connection;
      try {
        connection = await deps.mysql.connect(cluster, node);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        state.error = describeConnectError(err);
        return state;
      }
      try {
        state.reachable = true;
        const { flavor, version } = await flavorOf(connection);
        Object.assign(state, { flavor, version });
        if (flavor !== 'MariaDB') {
          state.error = `MySQL ${version}: only MariaDB GTID replication is supported`;
          return state;
        }
        const v = await readGtidVariables(connection);
        state.serverId = Number(v.serverId);
        state.readOnly = Number(v.readOnly) === 1;
        state.gtidCurrentPos = text(v.currentPos, '');
        state.gtidBinlogPos = text(v.binlogPos, '');
        state.gtidSlavePos = text(v.slavePos, '');
        state.gtidStrictMode = Number(v.strictMode) === 1;
        state.logSlaveUpdates = Number(v.logSlaveUpdates) === 1;
        state.replication = await readReplicaFacts(connection);
      } catch (err) {
        state.error = describeConnectError(err);
      } finally {
        await connection.end().catch(() => connection.destroy());
      }
      return state;
    },

    /** Transactions open on the node for longer than the bound: a switchover would have to kill them. */
    async listLongTransactions(request: { cluster: string; node: string; olderThanSeconds: number }): Promise<SessionFacts[]> {
      return withMariaDb(request.cluster, request.node, async (c) => {
        const [rows] = await c.query<RowDataPacket[]>(
          `SELECT t.trx_mysql_thread_id AS id, p.USER AS user, p.HOST AS host, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS seconds,
                  t.trx_rows_modified AS rowsModified
             FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
            WHERE t.trx_started < NOW() - INTERVAL ? SECOND AND t.trx_mysql_thread_id <> CONNECTION_ID()`,
          [request.olderThanSeconds],
        );
        return rows.map((r) => ({
          id: Number(r.id),
          user: text(r.user, '?'),
          host: text(r.host, '').replace(/:\d+$/, ''),
          seconds: Number(r.seconds),
          rowsModified: Number(r.rowsModified),
        }));
      });
    },

    /**
     * Turns the node read-only, gives open write transactions the grace period to end, then kills
     * the sessions still holding one (they cannot commit on a read-only server anyway; killed, their
     * clients reconnect and follow the routing). A client holding a lock that keeps read_only from
     * being set is killed after the grace period too. Returns the binary log position afterwards.
     */
    async makeReadOnly(request: { cluster: string; node: string; graceSeconds: number }): Promise<{ node: string; changed: boolean; killed: SessionFacts[]; gtidBinlogPos: string }> {
      const { cluster, node, graceSeconds } = request;
      return withMariaDb(cluster, node, async (c) => {
        const before = await readGtidVariables(c);
        const changed = Number(before.readOnly) !== 1;
        const killed: SessionFacts[] = [];
        if (changed) {
          await c.query('SET SESSION lock_wait_timeout = ?', [Math.max(1, Math.ceil(graceSeconds))]);
          try {
            await c.query('SET GLOBAL read_only = ON');
          } catch (err) {
            if (sqlError(err).errno !== ER_LOCK_WAIT_TIMEOUT) throw err;
            // Someone holds a table lock or the global read lock past the grace period.
            log.warn('read_only waited past the grace period: killing the client sessions that hold locks', { node });
            killed.push(...(await killSessions(c, await clientSessions(c))));
            await c.query('SET GLOBAL read_only = ON');
          }
          log.info('node made read-only', { node });
        }
        const graceEnds = Date.now() + graceSeconds * 1000;
        for (;;) {
          const writers = (await clientSessions(c)).filter((s) => (s.rowsModified ?? 0) > 0);
          if (writers.length === 0) break;
          if (Date.now() >= graceEnds) {
            killed.push(...(await killSessions(c, writers)));
            log.info('killed sessions with uncommitted writes after the grace period', { node, sessions: killed.length });
            break;
          }
          heartbeat({ writers: writers.length });
          await stopIfCancelled();
          await new Promise((resolve) => setTimeout(resolve, Math.min(pollIntervalMs, Math.max(1, graceEnds - Date.now()))));
        }
        const after = await readGtidVariables(c);
        return { node, changed, killed, gtidBinlogPos: text(after.binlogPos, '') };
      });
    },

    /** Turns read_only off (a switchover that gave up gives the old primary its writes back). */
    async makeWritable(request: { cluster: string; node: string }): Promise<{ node: string; changed: boolean }> {
      return withMariaDb(request.cluster, request.node, async (c) => {
        const v = await readGtidVariables(c);
        if (Number(v.readOnly) !== 1) return { node: request.node, changed: false };
        await c.query('SET GLOBAL read_only = OFF');
        log.info('node made writable', { node: request.node });
        return { node: request.node, changed: true };
      });
    },

    /**
     * Waits until the node has applied the position (in every domain), or the deadline passes
     * (CatchUpTimedOut). A replication thread that stops with an error fails at once (ReplicationBroken).
     */
    async waitForGtid(request: { cluster: string; node: string; position: string; deadline: string }): Promise<{ node: string; position: string }> {
      const { cluster, node } = request;
      const target = parseGtidPosition(request.position);
      const deadlineMs = deadlineOf(request.deadline);
      return withMariaDb(cluster, node, async (c) => {
        for (;;) {
          const v = await readGtidVariables(c);
          const current = text(v.currentPos, '');
          if (reaches(parseGtidPosition(current), target)) return { node, position: current };
          const replica = await readReplicationStatus(c);
          if (replica && replica.sqlRunning !== 'Yes' && replica.lastSqlError) {
            throw ApplicationFailure.nonRetryable(`node ${node}: replication SQL thread stopped: ${replica.lastSqlError} (at ${current}, waiting for ${request.position})`, 'ReplicationBroken');
          }
          const left = deadlineMs - Date.now();
          if (left <= 0) {
            throw ApplicationFailure.create({
              type: 'CatchUpTimedOut',
              nonRetryable: true,
              message: `node ${node} did not reach ${request.position} by ${request.deadline}: it is at ${current || '(empty)'}${replica ? `, replication io=${replica.ioRunning} sql=${replica.sqlRunning}` : ', not replicating'}`,
              details: [{ node, wanted: request.position, reached: current }],
            });
          }
          heartbeat({ node, reached: current });
          await stopIfCancelled();
          // Returns as soon as the position is reached, else after a second: the loop checks errors, the deadline and cancellation.
          await c.query('SELECT MASTER_GTID_WAIT(?, ?)', [request.position, Math.min(1, left / 1000)]);
        }
      });
    },

    /**
     * For a failover: stops receiving (so a primary that comes back cannot feed the replica more),
     * makes sure the SQL thread runs, and waits until the replica has applied everything it
     * received (CatchUpTimedOut past the deadline, ReplicationBroken on an SQL error).
     */
    async applyRelayLog(request: { cluster: string; node: string; deadline: string }): Promise<{ node: string; position: string }> {
      const { cluster, node } = request;
      const deadlineMs = deadlineOf(request.deadline);
      return withMariaDb(cluster, node, async (c) => {
        const before = await readReplicationStatus(c);
        if (!before) {
          const v = await readGtidVariables(c);
          return { node, position: text(v.currentPos, '') };
        }
        if (before.ioRunning !== 'No') await c.query('STOP SLAVE IO_THREAD');
        if (before.sqlRunning !== 'Yes') await c.query('START SLAVE SQL_THREAD');
        const received = parseGtidPosition((await readReplicationStatus(c))?.gtidIoPos);
        for (;;) {
          const current = text((await readGtidVariables(c)).currentPos, '');
          if (reaches(parseGtidPosition(current), received)) return { node, position: current };
          const r = await readReplicationStatus(c);
          if (r && r.sqlRunning !== 'Yes' && r.lastSqlError) {
            throw ApplicationFailure.nonRetryable(`node ${node}: replication SQL thread stopped: ${r.lastSqlError} (applied ${current})`, 'ReplicationBroken');
          }
          if (Date.now() >= deadlineMs) {
            throw ApplicationFailure.create({
              type: 'CatchUpTimedOut',
              nonRetryable: true,
              message: `node ${node} did not apply what it received (${r?.gtidIoPos ?? '?'}) by ${request.deadline}: it is at ${current || '(empty)'}`,
              details: [{ node, reached: current, received: r?.gtidIoPos }],
            });
          }
          heartbeat({ node, applied: current });
          await stopIfCancelled();
          await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
        }
      });
    },

    /** Starts both replication threads again (undoes applyRelayLog's stop). */
    async resumeReplication(request: { cluster: string; node: string }): Promise<{ node: string; changed: boolean }> {
      return withMariaDb(request.cluster, request.node, async (c) => {
        const r = await readReplicationStatus(c);
        if (!r || (r.ioRunning !== 'No' && r.sqlRunning === 'Yes')) return { node: request.node, changed: false };
        await c.query('START SLAVE');
        return { node: request.node, changed: true };
      });
    },

    /** Stops replication on the node, forgets its source (RESET SLAVE ALL) and makes it writable. */
    async promoteReplica(request: { cluster: string; node: string }): Promise<{ node: string; changed: boolean; previousSource: string | null; gtidBinlogPos: string }> {
      const { cluster, node } = request;
      return withMariaDb(cluster, node, async (c) => {
        const replica = await readReplicationStatus(c);
        const v = await readGtidVariables(c);
        const previousSource = replica?.sourceHost ? `${replica.sourceHost}:${replica.sourcePort ?? 3306}` : null;
        let changed = false;
        if (replica) {
          await c.query('STOP SLAVE');
          await c.query('RESET SLAVE ALL');
          changed = true;
        }
        if (Number(v.readOnly) === 1) {
          await c.query('SET GLOBAL read_only = OFF');
          changed = true;
        }
        const after = await readGtidVariables(c);
        log.info('replica promoted', { node, previousSource, changed });
        return { node, changed, previousSource, gtidBinlogPos: text(after.binlogPos, '') };
      });
    },

    /** Stops replication and forgets the source, leaving read_only as it is (undoes replicateFrom). */
    async detachReplica(request: { cluster: string; node: string }): Promise<{ node: string; changed: boolean }> {
      return withMariaDb(request.cluster, request.node, async (c) => {
        if (!(await readReplicationStatus(c))) return { node: request.node, changed: false };
        await c.query('STOP SLAVE');
        await c.query('RESET SLAVE ALL');
        return { node: request.node, changed: true };
      });
    },

    /**
     * Makes the node a read-only replica of `source` (a node of the same cluster), with the
     * profile's replication account, from its own GTID position (MASTER_USE_GTID=current_pos: a node
     * holding a transaction the source lacks is refused by the source instead of silently skipped),
     * and waits until both replication threads run. Already replicating from it: nothing changes.
     */
    async replicateFrom(request: { cluster: string; node: string; source: string; deadline: string }): Promise<{ node: string; source: string; changed: boolean }> {
      const { cluster, node, source } = request;
      const deadlineMs = deadlineOf(request.deadline);
      const from = nodeProfile(cluster, source);
      if (source === node) throw ApplicationFailure.nonRetryable(`source: node ${node} cannot replicate from itself`, 'InvalidInput');
      return withMariaDb(cluster, node, async (c) => {
        const current = await readReplicationStatus(c);
        const already = current?.sourceHost === from.host && current.sourcePort === from.port;
        let changed = false;
        await c.query('SET GLOBAL read_only = ON');
        if (!already) {
          const account = await replicationAccount(cluster);
          if (current) await c.query('STOP SLAVE');
          try {
            await c.query(
              `CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = current_pos, MASTER_CONNECT_RETRY = 1`,
              [from.host, from.port, account.user, account.password],
            );
          } catch (err) {
            const e = sqlError(err);
            throw ApplicationFailure.nonRetryable(`node ${node}: CHANGE MASTER TO ${source} failed: ${e.code ?? ''} ${e.message}`.trim(), 'ReplicationBroken');
          }
          changed = true;
        }
        if (!already || current?.ioRunning !== 'Yes' || current.sqlRunning !== 'Yes') {
          await c.query('START SLAVE');
          changed = true;
        }
        for (;;) {
          const r = await readReplicationStatus(c);
          if (r?.ioRunning === 'Yes' && r.sqlRunning === 'Yes') break;
          if (r && (r.lastIoError || r.lastSqlError) && r.ioRunning !== 'Connecting') {
            throw ApplicationFailure.nonRetryable(`node ${node} cannot replicate from ${source}: ${r.lastIoError || r.lastSqlError}`, 'ReplicationBroken');
          }
          if (Date.now() >= deadlineMs) {
            throw ApplicationFailure.nonRetryable(
              `node ${node} did not start replicating from ${source} by ${request.deadline}: io=${r?.ioRunning ?? '?'} sql=${r?.sqlRunning ?? '?'}${r?.lastIoError ? `: ${r.lastIoError}` : ''}`,
              'ReplicationBroken',
            );
          }
          heartbeat({ node, io: r?.ioRunning, sql: r?.sqlRunning });
          await stopIfCancelled();
          await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
        }
        log.info('replica points at its source', { node, source, changed });
        return { node, source, changed };
      });
    },

    /** Writes (or rewrites) the probe row named probeId on the node; returns the binary log position that holds it. */
    async writeReplicationProbe(request: { cluster: string; node: string; probeId: string }): Promise<{ node: string; gtidBinlogPos: string }> {
      return withMariaDb(request.cluster, request.node, async (c) => {
        await c.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(PROBE_SCHEMA)}`);
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${mysql.escapeId(PROBE_SCHEMA)}.${mysql.escapeId(PROBE_TABLE)} (id VARCHAR(255) PRIMARY KEY, written_at TIMESTAMP(6) NOT NULL)`,
        );
        await c.query(`REPLACE INTO ${mysql.escapeId(PROBE_SCHEMA)}.${mysql.escapeId(PROBE_TABLE)} (id, written_at) VALUES (?, NOW(6))`, [request.probeId]);
        const v = await readGtidVariables(c);
        return { node: request.node, gtidBinlogPos: text(v.binlogPos, '') };
      });
    },

    /** Whether the probe row exists on the node (read after waitForGtid). */
    async readReplicationProbe(request: { cluster: string; node: string; probeId: string }): Promise<{ node: string; found: boolean }> {
      return withMariaDb(request.cluster, request.node, async (c) => {
        try {
          const [rows] = await c.query<RowDataPacket[]>(`SELECT id FROM ${mysql.escapeId(PROBE_SCHEMA)}.${mysql.escapeId(PROBE_TABLE)} WHERE id = ?`, [request.probeId]);
          return { node: request.node, found: rows.length === 1 };
        } catch (err) {
          if (sqlError(err).code === 'ER_NO_SUCH_TABLE' || sqlError(err).code === 'ER_BAD_DB_ERROR') return { node: request.node, found: false };
          throw err;
        }
      });
    },
  };
}

// ---------------------------------------------------------------- Galera

export function createGaleraActivities(deps: { mysql: MysqlConnector; pollIntervalMs?: number }) {
  const pollIntervalMs = deps.pollIntervalMs ?? 500;
  return {
    /**
     * Waits until the Galera node serves: wsrep_ready ON, connected, in the Primary component and
     * Synced. Unreachable is waited through (the node is starting). Past the deadline: GaleraNodeNotReady.
     */
    async waitGaleraNodeReady(request: { cluster: string; node: string; deadline: string }): Promise<{ node: string } & GaleraFacts> {
      const { cluster, node } = request;
      const deadlineMs = deadlineOf(request.deadline);
      let last: string;
      for (;;) {
        try {
          const facts = await withConnection(deps.mysql, cluster, node, (c) => readGaleraStatus(c));
          if (facts.ready === 'ON' && facts.connected === 'ON' && facts.clusterStatus === 'Primary' && facts.localState === 'Synced') return { node, ...facts };
          last = `wsrep_ready=${facts.ready}, wsrep_connected=${facts.connected}, wsrep_cluster_status=${facts.clusterStatus}, wsrep_local_state_comment=${facts.localState}, wsrep_cluster_size=${facts.clusterSize}`;
        } catch (err) {
          if (err instanceof ApplicationFailure) throw err;
          last = `unreachable: ${describeConnectError(err)}`;
        }
        if (Date.now() >= deadlineMs) {
          throw ApplicationFailure.nonRetryable(`galera node ${node} was not ready and Synced by ${request.deadline}: ${last}`, 'GaleraNodeNotReady');
        }
        heartbeat({ node, last });
        await stopIfCancelled();
        await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
      }
    },
  };
}
