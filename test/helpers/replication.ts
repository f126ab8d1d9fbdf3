// The stack's GTID servers as the switchover and failover tests use them: SQL as the runbook user,
// the replication facts a user would look at, putting the shared pair back as it began, and
// rebuilding the failover set (fo1 primary, fo2 and fo3 its replicas) from scratch between tests.
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { parseGtidPosition, reaches } from '../../workflows/gtid';
import { REPO_ROOT, stack } from './stack';

export const PAIR = { primary: 3311, replica: 3312 } as const;
export const FAILOVER_SET = { fo1: 3331, fo2: 3332, fo3: 3333 } as const;

/**
 * The failover set as a profile's mysql section (under `  <cluster>:`), each node with its pod of a
 * StatefulSet fo-db, and node control through the stack script: what the failover tests and the
 * reliability entry run against.
 */
export const FAILOVER_SET_MYSQL = `    mysql:
      topology: replication
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      replicationUser: repl
      replicationPassword: { env: DBR_LOCAL_REPL_PASSWORD }
      nodes:
        - { name: fo1, host: 127.0.0.1, port: ${FAILOVER_SET.fo1}, pod: fo-db-0 }
        - { name: fo2, host: 127.0.0.1, port: ${FAILOVER_SET.fo2}, pod: fo-db-1 }
        - { name: fo3, host: 127.0.0.1, port: ${FAILOVER_SET.fo3}, pod: fo-db-2 }
      control:
        kind: process
        cwd: ${REPO_ROOT}
        start: [bash, scripts/stack.sh, start, '{node}']
        stop: [bash, scripts/stack.sh, stop, '{node}']
        fence: [bash, scripts/stack.sh, fence, '{node}']
        unfence: [bash, scripts/stack.sh, unfence, '{node}']
`;

/** The test table the failover tests write to on the failover set. */
export const FAILOVER_TABLE = 'dbr_failover.t';

export function connectAs(port: number, user = 'runbook', password = process.env.DBR_LOCAL_MYSQL_PASSWORD!): Promise<Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port, user, password, connectTimeout: 3000 });
}

export async function sql<T = RowDataPacket>(port: number, statement: string, values: unknown[] = []): Promise<T[]> {
  const c = await connectAs(port);
  try {
    const [rows] = await c.query(statement, values);
    return rows as T[];
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

export interface ServerFacts {
  readOnly: boolean;
  gtidCurrentPos: string;
  gtidBinlogPos: string;
  /** host:port it replicates from, or null. */
  source: string | null;
  /** The account it replicates with. */
  user: string | null;
  io: string | null;
  sqlThread: string | null;
  lastError: string;
}

export async function facts(port: number): Promise<ServerFacts> {
  const c = await connectAs(port);
  try {
    const [[v]] = await c.query<RowDataPacket[]>('SELECT @@read_only AS ro, @@gtid_current_pos AS cur, @@gtid_binlog_pos AS bin');
    const [status] = await c.query<RowDataPacket[]>('SHOW SLAVE STATUS');
    const s = status[0];
    return {
      readOnly: Number(v!.ro) === 1,
      gtidCurrentPos: String(v!.cur),
      gtidBinlogPos: String(v!.bin),
      source: s ? `${String(s.Master_Host)}:${String(s.Master_Port)}` : null,
      user: s ? String(s.Master_User) : null,
      io: s ? String(s.Slave_IO_Running) : null,
      sqlThread: s ? String(s.Slave_SQL_Running) : null,
      lastError: s ? `${String(s.Last_IO_Error ?? '')}${String(s.Last_SQL_Error ?? '')}` : '',
    };
  } finally {
    await c.end().catch(() => c.destroy());
  }
}

/**
 * Waits until the server's gtid_current_pos reaches the position, or fails after the timeout.
 * Not MASTER_GTID_WAIT: that looks at gtid_slave_pos only, which never holds the transactions a
 * server wrote itself while it was primary, so after a switch back it would wait forever.
 */
export async function waitForPosition(port: number, position: string, timeoutSeconds = 30): Promise<void> {
  const target = parseGtidPosition(position);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const now = await facts(port);
    if (reaches(parseGtidPosition(now.gtidCurrentPos), target)) return;
    if (Date.now() > deadline) throw new Error(`127.0.0.1:${port} did not reach ${position} within ${timeoutSeconds}s: ${JSON.stringify(now)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Rows with ids from..to, one transaction each. */
export async function insertIds(port: number, table: string, from: number, to: number): Promise<void> {
  for (let id = from; id <= to; id += 1) await sql(port, `INSERT INTO ${table} (id) VALUES (?)`, [id]);
}

export async function idsOf(port: number, table: string): Promise<number[]> {
  return (await sql<{ id: number }>(port, `SELECT id FROM ${table} ORDER BY id`)).map((r) => Number(r.id));
}

async function pointAt(port: number, sourcePort: number): Promise<void> {
  await sql(port, 'SET GLOBAL read_only = ON');
  await sql(port, 'STOP SLAVE');
  await sql(port, `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ?, MASTER_USER = 'repl', MASTER_PASSWORD = ?, MASTER_USE_GTID = current_pos, MASTER_CONNECT_RETRY = 1`, [
    sourcePort,
    process.env.DBR_LOCAL_REPL_PASSWORD,
  ]);
  await sql(port, 'START SLAVE');
}

/**
 * Puts the shared pair back as the other tests expect it: 3311 the writable primary, 3312 a
 * read-only replica of it with both threads running. A pair left switched is switched back
 * without losing a transaction (3311 first applies everything 3312 has).
 */
export async function restorePair(): Promise<void> {
  const [p, r] = await Promise.all([facts(PAIR.primary), facts(PAIR.replica)]);
  const primaryIsPrimary = p.source === null && !p.readOnly && r.source === `127.0.0.1:${PAIR.primary}` && r.user === 'repl' && r.io === 'Yes' && r.sqlThread === 'Yes' && r.readOnly;
  if (primaryIsPrimary) return;
  if (p.source === `127.0.0.1:${PAIR.replica}` || r.source === null) {
    await sql(PAIR.replica, 'SET GLOBAL read_only = ON');
    if (p.source === `127.0.0.1:${PAIR.replica}`) await waitForPosition(PAIR.primary, (await facts(PAIR.replica)).gtidBinlogPos);
    await sql(PAIR.primary, 'STOP SLAVE');
    await sql(PAIR.primary, 'RESET SLAVE ALL');
  }
  await sql(PAIR.primary, 'SET GLOBAL read_only = OFF');
  const now = await facts(PAIR.replica);
  if (now.source !== `127.0.0.1:${PAIR.primary}` || now.user !== 'repl') await pointAt(PAIR.replica, PAIR.primary);
  else if (now.io !== 'Yes' || now.sqlThread !== 'Yes') await sql(PAIR.replica, 'START SLAVE');
  await sql(PAIR.replica, 'SET GLOBAL read_only = ON');
  await waitForPosition(PAIR.replica, (await facts(PAIR.primary)).gtidBinlogPos);
}

const SYSTEM_SCHEMAS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

/**
 * The failover set rebuilt from scratch: every part running and unfenced, its test data and GTID
 * history wiped (RESET MASTER), fo1 the writable primary, fo2 and fo3 read-only replicas of it.
 * The accounts (runbook, repl) stay: they live in the mysql schema, which is not touched.
 */
export async function resetFailoverSet(): Promise<void> {
  const parts = Object.keys(FAILOVER_SET) as (keyof typeof FAILOVER_SET)[];
  for (const part of parts) {
    await stack('unfence', part);
    await stack('start', part);
  }
  for (const part of parts) {
    const port = FAILOVER_SET[part];
    await sql(port, 'STOP SLAVE');
    await sql(port, 'RESET SLAVE ALL');
  }
  for (const part of parts) {
    const port = FAILOVER_SET[part];
    const schemas = (await sql<{ name: string }>(port, 'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((s) => s.name).filter((s) => !SYSTEM_SCHEMAS.has(s));
    const c = await connectAs(port);
    try {
      await c.query('SET SESSION sql_log_bin = 0');
      for (const schema of schemas) await c.query(`DROP DATABASE ${mysql.escapeId(schema)}`);
    } finally {
      await c.end();
    }
    await sql(port, 'RESET MASTER');
    await sql(port, "SET GLOBAL gtid_slave_pos = ''");
    await sql(port, part === 'fo1' ? 'SET GLOBAL read_only = OFF' : 'SET GLOBAL read_only = ON');
  }
  for (const part of ['fo2', 'fo3'] as const) {
    await sql(FAILOVER_SET[part], `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ?, MASTER_USER = 'repl', MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1`, [
      FAILOVER_SET.fo1,
      process.env.DBR_LOCAL_REPL_PASSWORD,
    ]);
    await sql(FAILOVER_SET[part], 'START SLAVE');
  }
  for (const part of ['fo2', 'fo3'] as const) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const f = await facts(FAILOVER_SET[part]);
      if (f.io === 'Yes' && f.sqlThread === 'Yes') break;
      if (Date.now() > deadline) throw new Error(`${part} did not start replicating from fo1: ${JSON.stringify(f)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** fo2 and fo3 have applied everything fo1 wrote. */
export async function failoverReplicasCaughtUp(): Promise<void> {
  const position = (await facts(FAILOVER_SET.fo1)).gtidBinlogPos;
  await Promise.all([waitForPosition(FAILOVER_SET.fo2, position), waitForPosition(FAILOVER_SET.fo3, position)]);
}

/** The rebuilt set with FAILOVER_TABLE holding rows 1..rows, written on fo1 and replicated to both replicas. */
export async function seedFailoverSet(rows: number): Promise<void> {
  await sql(FAILOVER_SET.fo1, 'CREATE DATABASE dbr_failover');
  await sql(FAILOVER_SET.fo1, `CREATE TABLE ${FAILOVER_TABLE} (id INT PRIMARY KEY)`);
  await insertIds(FAILOVER_SET.fo1, FAILOVER_TABLE, 1, rows);
  await failoverReplicasCaughtUp();
}
