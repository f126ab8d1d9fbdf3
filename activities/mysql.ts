// MySQL / MariaDB: connections resolved from the cluster profile, and the facts the runbooks
// decide on. Activities here report what they saw; workflows decide what it means.
import mysql from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ApplicationFailure } from '@temporalio/common';
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
