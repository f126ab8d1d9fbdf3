// Logical backups that restore exactly, on the real stack (MariaDB 10.11 on 3310, MinIO, Temporal):
// the values mariadb-dump's text does not give back (FLOAT, ENUM and SET with a '' member), next to
// those it does (DOUBLE, DECIMAL(65,30), BIT(64)), each verified by the backup's own restore and
// restored byte-equal; and routines, triggers, views and events kept, compared by definition, with
// events that never run in a scratch database or a copy.
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { compareObjects, readObjectDefinitions } from '../../activities/backup-objects';
import type { BackupDatabaseResult } from '../../workflows/backupDatabase';
import type { RestoreDatabaseResult } from '../../workflows/restoreDatabase';
import { backupClusterYaml, connectMariadb, readManifest, s3Client, tableFacts } from '../helpers/backup';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const run = randomUUID().slice(0, 8);
const cluster = `bkx-${run}`;
const s3Prefix = `test-backup-fidelity-${run}/`;
const databases: string[] = [];

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let sql: Connection;
const s3 = s3Client();

beforeAll(async () => {
  sql = await connectMariadb();
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, testProfiles(`clusters:\n${backupClusterYaml(cluster, s3Prefix, '{ verifyEvery: 1 }')}`)));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  for (const database of databases) await sql?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await sql?.end();
  s3.destroy();
});

function backup(database: string): Promise<BackupDatabaseResult> {
  return env.client.workflow.execute('backupDatabase', { taskQueue: worker.taskQueue, workflowId: `backupDatabase/${cluster}/${randomUUID()}`, args: [{ cluster, databases: [database] }] });
}

function restore(input: Record<string, unknown>): Promise<RestoreDatabaseResult> {
  return env.client.workflow.execute('restoreDatabase', { taskQueue: worker.taskQueue, workflowId: `restoreDatabase/${cluster}/${randomUUID()}`, args: [{ cluster, ...input }] });
}

async function query<T>(text: string, values?: unknown[]): Promise<T[]> {
  const [rows] = await sql.query<RowDataPacket[]>(text, values);
  return rows as T[];
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh database for one test, dropped after the file. */
async function freshDatabase(kind: string): Promise<string> {
  const database = `bkx_${run}_${kind}`;
  databases.push(database, `${database}_copy`);
  await sql.query(`DROP DATABASE IF EXISTS ${database}; DROP DATABASE IF EXISTS ${database}_copy; CREATE DATABASE ${database}`);
  return database;
}

// Each column with the values a user would call extreme, written as a user would (under a lax
// sql_mode where the value needs it); `exact` reads a value back in a form that shows every bit.
const TYPES: { type: string; column: string; values: string[]; exact: string; needsExactForm: boolean }[] = [
  {
    type: 'FLOAT',
    column: 'v FLOAT',
    // FLOAT's extremes, its smallest normal and subnormal, values whose 7th digit matters, and -0
    // (a FLOAT -0 is written through a DOUBLE that rounds to it: the server stores a -0 literal as 0).
    values: ['3.4028234e38', '-3.4028234e38', '1.17549435e-38', '1.4e-45', '16777217', '1.0000001', '0.1', '-1e-46', '0', 'NULL'],
    exact: "CONCAT(CAST(v AS DOUBLE), IF(ATAN2(v, -1) < 0, ' negative', ''))",
    needsExactForm: true,
  },
  {
    type: 'ENUM',
    column: "v ENUM('', 'a', 'b') NOT NULL, w ENUM('x', 'y')",
    // 'zzz' under a lax sql_mode stores the error value (index 0), which prints as '' like the member ''.
    values: ["'', 'x'", "'zzz', 'zzz'", "'a', NULL", "'b', 'y'"],
    exact: "CONCAT(v + 0, '/', IFNULL(w + 0, 'null'))",
    needsExactForm: true,
  },
  {
    type: 'SET',
    column: "v SET('', 'a', 'b')",
    // 1 is the member '' alone; 0 the empty set: both print as ''.
    values: ['1', '0', '3', "'a,b'", 'NULL'],
    exact: "IFNULL(v + 0, 'null')",
    needsExactForm: true,
  },
  {
    type: 'DOUBLE',
    column: 'v DOUBLE',
    values: ['1.7976931348623157e308', '-1.7976931348623157e308', '2.2250738585072014e-308', '4.9e-324', '0.30000000000000004', '9007199254740993', '-0e0', 'NULL'],
    exact: "CONCAT(v, IF(ATAN2(v, -1) < 0, ' negative', ''))",
    needsExactForm: false,
  },
  {
    type: 'DECIMAL',
    column: 'v DECIMAL(65,30)',
    values: [
      "'99999999999999999999999999999999999.999999999999999999999999999999'",
      "'-99999999999999999999999999999999999.999999999999999999999999999999'",
      "'0.000000000000000000000000000001'",
      "'-0.0'",
      'NULL',
    ],
    exact: 'CONCAT(v)',
    needsExactForm: false,
  },
  {
    type: 'BIT',
    column: 'v BIT(64)',
    values: ["b'1111111111111111111111111111111111111111111111111111111111111111'", "b'1000000000000000000000000000000000000000000000000000000000000000'", '0', '1', 'NULL'],
    exact: 'HEX(v)',
    needsExactForm: false,
  },
];

describe.each(TYPES)('$type', ({ type, column, values, exact, needsExactForm }) => {
  test('is verified by the backup and restored byte-equal', async () => {
    const database = await freshDatabase(type.toLowerCase());
    await sql.query(`CREATE TABLE ${database}.t (id INT PRIMARY KEY, ${column})`);
    await sql.query(`SET SESSION sql_mode = ''; INSERT INTO ${database}.t VALUES ${values.map((v, i) => `(${i + 1}, ${v})`).join(', ')}; SET SESSION sql_mode = DEFAULT`);
    const readExact = (db: string) => query<{ id: number; v: string }>(`SELECT id, ${exact} AS v FROM ${db}.t ORDER BY id`);
    const before = await readExact(database);
    const facts = await tableFacts(sql, database);

    const result = await backup(database);
    expect(result.verification).toMatchObject({ outcome: 'passed', differences: [] });
    const manifest = await readManifest(s3, result.manifestKey!);
    // Only the columns the dump's text loses are written by the runbook itself.
    expect(manifest.databases[0]!.exactTables!.map((t) => t.name)).toEqual(needsExactForm ? ['t'] : []);

    const restored = await restore({ backupId: manifest.id, targetDatabase: `${database}_copy` });
    expect(restored.restore.differences).toEqual([]);
    expect(await readExact(`${database}_copy`)).toEqual(before);
    expect(await tableFacts(sql, `${database}_copy`)).toEqual(facts);
  });
});

test('a FLOAT table next to triggers and other tables: the trigger never fires on a restored row', async () => {
  const database = await freshDatabase('floattrigger');
  await sql.query(`
    CREATE TABLE ${database}.readings (id INT PRIMARY KEY, v FLOAT);
    CREATE TABLE ${database}.audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40));
    USE ${database};
    CREATE TRIGGER readings_ai AFTER INSERT ON readings FOR EACH ROW INSERT INTO audit (note) VALUES (CONCAT('reading ', NEW.id));
    INSERT INTO readings SELECT seq, seq / 3 FROM seq_1_to_5000;
    USE mysql;
  `);
  const facts = await tableFacts(sql, database);
  expect(facts.audit!.rows).toBe(5000);
  const result = await backup(database);
  expect(result.verification).toMatchObject({ outcome: 'passed', differences: [] });
  await restore({ backupId: result.backupId, targetDatabase: `${database}_copy` });
  expect(await tableFacts(sql, `${database}_copy`)).toEqual(facts);
  // The trigger is there and works in the copy.
  await sql.query(`INSERT INTO ${database}_copy.readings VALUES (9999, 1)`);
  expect(await query(`SELECT note FROM ${database}_copy.audit WHERE id > 5000`)).toEqual([{ note: 'reading 9999' }]);
});

describe('routines, triggers, views and events', () => {
  let database: string;
  let observer: string;
  let schedulerWas: string;

  /** What a user compares after a restore: each object's definition, without the database's name. */
  async function definitions(db: string): Promise<Record<string, unknown>> {
    return {
      routines: await query(`SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, DTD_IDENTIFIER, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE, DEFINER, ROUTINE_COMMENT
        FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME`, [db]),
      parameters: await query('SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = ? ORDER BY 1, 2', [db]),
      triggers: await query(`SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT, ACTION_TIMING, SQL_MODE, DEFINER
        FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME`, [db]),
      views: (await query<{ TABLE_NAME: string; VIEW_DEFINITION: string; CHECK_OPTION: string; SECURITY_TYPE: string }>(
        'SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME', [db],
      )).map((v) => ({ ...v, VIEW_DEFINITION: v.VIEW_DEFINITION.split(`\`${db}\`.`).join('') })),
      events: await query(`SELECT EVENT_NAME, DEFINER, TIME_ZONE, EVENT_DEFINITION, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, SQL_MODE, STARTS, ENDS, ON_COMPLETION, EVENT_COMMENT
        FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`, [db]),
    };
  }

  const eventStatus = (db: string) => query<{ EVENT_NAME: string; STATUS: string }>('SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1', [db]);
  const firedIn = async () => Object.fromEntries((await query<{ db: string; n: number }>(`SELECT db, COUNT(*) AS n FROM ${observer}.fired GROUP BY db`)).map((r) => [r.db, Number(r.n)]));

  beforeAll(async () => {
    database = await freshDatabase('objects');
    observer = await freshDatabase('observer');
    // Events write down the database they ran in: a copy's events would show up here.
    await sql.query(`CREATE TABLE ${observer}.fired (id INT AUTO_INCREMENT PRIMARY KEY, db VARCHAR(64) NOT NULL, at DATETIME(6) NOT NULL)`);
    await sql.query(`
      CREATE TABLE ${database}.orders (id INT PRIMARY KEY, total DECIMAL(10,2), placed DATETIME);
      INSERT INTO ${database}.orders SELECT seq, seq * 2.5, '2026-01-01' + INTERVAL seq HOUR FROM ${database}.seq_1_to_100;
      CREATE TABLE ${database}.order_log (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, what VARCHAR(20));
    `);
    // Definitions as a user writes them: unqualified names, a body of several statements, a comment,
    // an sql_mode of its own.
    await sql.query(`USE ${database}`);
    await sql.query(`CREATE FUNCTION with_tax(amount DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC COMMENT 'adds 19 %' RETURN amount * 1.19`);
    await sql.query(`CREATE PROCEDURE purge_before(IN cutoff DATETIME, OUT removed INT)
      BEGIN
        DELETE FROM orders WHERE placed < cutoff;
        SET removed = ROW_COUNT();
      END`);
    await sql.query(`CREATE TRIGGER orders_bi BEFORE INSERT ON orders FOR EACH ROW SET NEW.total = ROUND(NEW.total, 1)`);
    await sql.query(`CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW INSERT INTO order_log (order_id, what) VALUES (NEW.id, 'insert')`);
    await sql.query(`CREATE TRIGGER orders_ai_second AFTER INSERT ON orders FOR EACH ROW FOLLOWS orders_ai INSERT INTO order_log (order_id, what) VALUES (NEW.id, 'second')`);
    await sql.query(`CREATE ALGORITHM=MERGE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100 WITH CHECK OPTION`);
    await sql.query(`CREATE SQL SECURITY INVOKER VIEW gross_orders AS SELECT id, with_tax(total) AS gross FROM big_orders`);
    await sql.query(`SET SESSION time_zone = '+05:00', sql_mode = 'ANSI_QUOTES,NO_ZERO_DATE'`);
    await sql.query(`CREATE EVENT tick ON SCHEDULE EVERY 1 SECOND STARTS NOW() COMMENT 'writes where it runs' DO INSERT INTO ${observer}.fired (db, at) VALUES (DATABASE(), NOW(6))`);
    await sql.query(`CREATE EVENT nightly ON SCHEDULE EVERY '1:30' HOUR_MINUTE STARTS '2026-01-01 02:00:00' ENDS '2036-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO CALL purge_before(NOW() - INTERVAL 1 YEAR, @removed)`);
    // A one-time event whose time passes unrun (it is disabled): created again after that time, the
    // server drops it at once (ON COMPLETION NOT PRESERVE). It must not make the backup fail.
    await sql.query(`CREATE EVENT once ON SCHEDULE AT NOW() + INTERVAL 1 SECOND ON COMPLETION NOT PRESERVE DISABLE DO INSERT INTO ${observer}.fired (db, at) VALUES ('once', NOW(6))`);
    await sql.query(`SET SESSION time_zone = DEFAULT, sql_mode = DEFAULT`);
    await sql.query('USE mysql');
    await until('the one-time event to be past', async () => (await query<{ past: number }>(`SELECT UTC_TIMESTAMP() > CONVERT_TZ(EXECUTE_AT, TIME_ZONE, '+00:00') AS past FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_NAME = 'once'`, [database]))[0]?.past === 1);

    // The scheduler is off on the stack; on for this test, so an event that was enabled would run.
    schedulerWas = (await query<{ s: string }>('SELECT @@GLOBAL.event_scheduler AS s'))[0]!.s;
    await sql.query('SET GLOBAL event_scheduler = ON');
    await until('the source\'s enabled event to run', async () => ((await firedIn())[database] ?? 0) > 0);
  });

  afterAll(async () => {
    if (schedulerWas) await sql.query(`SET GLOBAL event_scheduler = ${schedulerWas === 'ON' ? 'ON' : 'OFF'}`);
  });

  test('are in the backup, compared by definition, and a copy\'s events stay disabled and never run', async () => {
    const before = await definitions(database);
    const result = await backup(database);
    // 2 routines, 3 triggers, 2 views, 3 events.
    expect(result.verification).toMatchObject({ outcome: 'passed', differences: [], objects: 10 });
    const manifest = await readManifest(s3, result.manifestKey!);
    expect(manifest.databases[0]!.objects!.filter((o) => o.kind === 'event').map((o) => [o.name, o.status])).toEqual([
      ['nightly', 'DISABLED'],
      ['once', 'DISABLED'],
      ['tick', 'ENABLED'],
    ]);

    const copy = `${database}_copy`;
    const restored = await restore({ backupId: manifest.id, targetDatabase: copy });
    expect(restored.restore).toMatchObject({ differences: [], objects: 10, eventsEnabled: 0, eventsDisabled: 1 });
    expect(restored.summary).toContain('1 event(s) left disabled in the copy');
    // The one-time event is over: the server dropped it as it was created, in the copy as it would anywhere.
    const { events: sourceEvents, ...rest } = before;
    expect(await definitions(copy)).toEqual({ ...rest, events: (sourceEvents as { EVENT_NAME: string }[]).filter((e) => e.EVENT_NAME !== 'once') });
    expect(await eventStatus(copy)).toEqual([
      { EVENT_NAME: 'nightly', STATUS: 'DISABLED' },
      { EVENT_NAME: 'tick', STATUS: 'DISABLED' },
    ]);
    // The routines, the view and the triggers (in their order) work in the copy.
    await sql.query(`INSERT INTO ${copy}.orders VALUES (1000, 99.96, NOW())`);
    expect(await query(`SELECT what FROM ${copy}.order_log ORDER BY id`)).toEqual([{ what: 'insert' }, { what: 'second' }]);
    expect(await query(`SELECT total, ${copy}.with_tax(total) AS gross FROM ${copy}.orders WHERE id = 1000`)).toEqual([{ total: '100.00', gross: '119.00' }]);
    expect(await query(`SELECT COUNT(*) AS n, MAX(gross) AS top FROM ${copy}.gross_orders`)).toEqual([{ n: 60, top: '297.50' }]);

    // While the source's event keeps running, nothing ever ran in the copy or the verification's scratch database.
    const runs = (await firedIn())[database]!;
    await until('the source\'s event to run twice more', async () => ((await firedIn())[database] ?? 0) >= runs + 2);
    expect(Object.keys(await firedIn())).toEqual([database]);
  });

  test('restored under its own name, its events are enabled again as they were', async () => {
    const before = await definitions(database);
    const status = await eventStatus(database);
    const result = await backup(database);
    expect(result.verification?.outcome).toBe('passed');
    await sql.query(`DROP DATABASE ${database}`);
    const restored = await restore({ backupId: result.backupId });
    expect(restored.restore).toMatchObject({ differences: [], eventsEnabled: 1, eventsDisabled: 0 });
    expect(restored.summary).toContain('1 event(s) enabled again as backed up');
    const { events: sourceEvents, ...rest } = before;
    expect(await definitions(database)).toEqual({ ...rest, events: (sourceEvents as { EVENT_NAME: string }[]).filter((e) => e.EVENT_NAME !== 'once') });
    expect(await eventStatus(database)).toEqual(status.filter((e) => e.EVENT_NAME !== 'once'));
  });

  test('a definition that differs from the backup\'s is named by the comparison', async () => {
    const copy = `${database}_copy`;
    const expected = await readObjectDefinitions(sql, database);
    await sql.query(`USE ${copy}`);
    await sql.query('CREATE OR REPLACE FUNCTION with_tax(amount DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC COMMENT \'adds 19 %\' RETURN amount * 1.2');
    await sql.query('DROP TRIGGER orders_ai_second');
    await sql.query('CREATE VIEW extra AS SELECT 1 AS one');
    await sql.query('USE mysql');
    const now = (await query<{ now: string }>('SELECT CAST(UTC_TIMESTAMP() AS CHAR) AS now'))[0]!.now;
    expect(compareObjects(expected, await readObjectDefinitions(sql, copy), { nowUtc: now, enabledAsRecorded: false })).toEqual([
      "routine function with_tax: its definition differs from the backup's",
      'trigger orders_ai_second: missing',
      'view extra: not in the backup',
    ]);
  });
});
