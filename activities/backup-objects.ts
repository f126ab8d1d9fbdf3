// The objects of a database besides its tables' rows: routines, triggers, views and events. A backup
// records a fingerprint of each one's definition (what a user would compare: the text, sql_mode,
// definer, character sets, schedule), and a restore is compared with them, not only counted.
//
// Events are written into the dump by us, not by mariadb-dump: every event is created DISABLED, so a
// dump restored into a scratch database (the verification) or a copy never starts running the
// original's schedule there. The manifest records each event's status, and restoreDatabase puts it
// back when it restores a database under its own name.
import { createHash } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';

export type ObjectKind = 'routine' | 'trigger' | 'view' | 'event';

export interface ObjectRecord {
  kind: ObjectKind;
  name: string;
  /** sha256 of the definition, with the database's own name left out (a restore may rename it). */
  sha256: string;
  /** Events: ENABLED, DISABLED or SLAVESIDE_DISABLED when dumped (a restore creates them DISABLED). */
  status?: string;
  /**
   * Events with ON COMPLETION NOT PRESERVE whose schedule ends (AT, or ENDS) at this UTC time: the
   * server drops such an event as it is created once the time has passed. Null when it never ends
   * or the event's time zone is not known to the server.
   */
  endsAtUtc?: string | null;
}

/** What a database holds, of every kind a restore would otherwise drop unseen. */
export interface ObjectCounts {
  tables: number;
  views: number;
  sequences: number;
  routines: number;
  triggers: number;
  events: number;
}

function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

async function rows<T>(connection: Connection, sql: string, values?: unknown[]): Promise<T[]> {
  const [result] = await connection.query<RowDataPacket[]>(sql, values);
  return result as T[];
}

function fingerprint(fields: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

export async function countObjects(connection: Connection, database: string): Promise<ObjectCounts & { exists: boolean; comment: string }> {
  const [schema] = await rows<{ comment: string }>(connection, 'SELECT SCHEMA_COMMENT AS comment FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [database]);
  const [counts] = await rows<Record<keyof ObjectCounts, string | number>>(
    connection,
    `SELECT
       (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE NOT IN ('VIEW', 'SEQUENCE')) AS tables,
       (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'VIEW') AS views,
       (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'SEQUENCE') AS sequences,
       (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) AS routines,
       (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?) AS triggers,
       (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) AS events`,
    [database, database, database, database, database, database],
  );
  const n = (k: keyof ObjectCounts) => Number(counts?.[k] ?? 0);
  return {
    exists: schema !== undefined,
    comment: schema?.comment ?? '',
    tables: n('tables'),
    views: n('views'),
    sequences: n('sequences'),
    routines: n('routines'),
    triggers: n('triggers'),
    events: n('events'),
  };
}

export function totalObjects(counts: ObjectCounts): number {
  return counts.tables + counts.views + counts.sequences + counts.routines + counts.triggers + counts.events;
}

export function describeCounts(counts: ObjectCounts): string {
  const kinds: (keyof ObjectCounts)[] = ['tables', 'views', 'sequences', 'routines', 'triggers', 'events'];
  const parts = kinds
    .map((kind) => [kind, counts[kind]] as const)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${n === 1 ? kind.replace(/s$/, '') : kind}`);
  return parts.length ? parts.join(', ') : 'nothing';
}

/** The definitions of the database's routines, triggers, views and events. */
export async function readObjectDefinitions(connection: Connection, database: string): Promise<ObjectRecord[]> {
  const records: ObjectRecord[] = [];
  const own = `${quoteIdentifier(database)}.`;

  const routines = await rows<{ name: string; type: string }>(
    connection,
    'SELECT ROUTINE_NAME AS name, ROUTINE_TYPE AS type FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME',
    [database],
  );
  for (const routine of routines) {
    const [shown] = await rows<Record<string, string | null>>(connection, `SHOW CREATE ${routine.type} ${own}${quoteIdentifier(routine.name)}`);
    const create = Object.entries(shown ?? {}).find(([key]) => key.startsWith('Create '))?.[1] ?? null;
    records.push({
      kind: 'routine',
      name: `${routine.type.toLowerCase()} ${routine.name}`,
      sha256: fingerprint([routine.type, create, shown?.sql_mode, shown?.character_set_client, shown?.collation_connection]),
    });
  }

  const triggers = await rows<Record<string, string | number | null>>(
    connection,
    `SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, ACTION_ORIENTATION, ACTION_STATEMENT,
            SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION
       FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME`,
    [database],
  );
  for (const { name, ...fields } of triggers) records.push({ kind: 'trigger', name: String(name), sha256: fingerprint(Object.values(fields).map(String)) });

  // The server writes a view's definition with every name qualified, its own database's included.
  const views = await rows<Record<string, string | null>>(
    connection,
    `SELECT TABLE_NAME AS name, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ALGORITHM
       FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME`,
    [database],
  );
  for (const { name, VIEW_DEFINITION: definition, ...fields } of views) {
    records.push({ kind: 'view', name: String(name), sha256: fingerprint([(definition ?? '').split(own).join(''), ...Object.values(fields)]) });
  }

  // STATUS, ORIGINATOR (the server id) and the timestamps of creation and execution describe where
  // and when the event ran, not what it is.
  const events = await rows<Record<string, string | null>>(
    connection,
    `SELECT EVENT_NAME AS name, STATUS AS status,
            CASE WHEN ON_COMPLETION = 'NOT PRESERVE' AND COALESCE(EXECUTE_AT, ENDS) IS NOT NULL
                 THEN CAST(CONVERT_TZ(COALESCE(EXECUTE_AT, ENDS), TIME_ZONE, '+00:00') AS CHAR) END AS endsAtUtc,
            DEFINER, TIME_ZONE, EVENT_BODY, EVENT_DEFINITION, EVENT_TYPE, CAST(EXECUTE_AT AS CHAR) AS EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD,
            SQL_MODE, CAST(STARTS AS CHAR) AS STARTS, CAST(ENDS AS CHAR) AS ENDS, ON_COMPLETION, EVENT_COMMENT, CHARACTER_SET_CLIENT, COLLATION_CONNECTION
       FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME`,
    [database],
  );
  for (const { name, status, endsAtUtc, ...fields } of events) {
    records.push({ kind: 'event', name: String(name), sha256: fingerprint(Object.values(fields)), status: status ?? undefined, endsAtUtc: endsAtUtc ?? null });
  }
  return records;
}

/**
 * The differences between the objects a backup recorded and those a restored database holds. A
 * restored event must be DISABLED unless `enabledAsRecorded`; an event the server dropped as it was
 * created (its schedule over, ON COMPLETION NOT PRESERVE) is no difference.
 */
export function compareObjects(expected: readonly ObjectRecord[], actual: readonly ObjectRecord[], options: { nowUtc: string; enabledAsRecorded: boolean }): string[] {
  const differences: string[] = [];
  const key = (o: ObjectRecord) => `${o.kind} ${o.name}`;
  const found = new Map(actual.map((o) => [key(o), o]));
  for (const want of expected) {
    const got = found.get(key(want));
    found.delete(key(want));
    if (!got) {
      const over = want.kind === 'event' && want.endsAtUtc && want.endsAtUtc <= options.nowUtc;
      if (!over) differences.push(`${key(want)}: missing`);
      continue;
    }
    if (got.sha256 !== want.sha256) differences.push(`${key(want)}: its definition differs from the backup's`);
    if (want.kind === 'event') {
      const status = options.enabledAsRecorded ? want.status : 'DISABLED';
      if (got.status !== status) differences.push(`${key(want)}: ${got.status ?? 'no status'}, expected ${status ?? 'no status'}`);
    }
  }
  for (const extra of found.keys()) differences.push(`${extra}: not in the backup`);
  return differences;
}

/** The current UTC time of the server, in the form of `endsAtUtc`. */
export async function serverUtcNow(connection: Connection): Promise<string> {
  const [now] = await rows<{ now: string }>(connection, 'SELECT CAST(UTC_TIMESTAMP() AS CHAR) AS now');
  return now!.now;
}

/**
 * SHOW CREATE EVENT's statement with its status replaced by DISABLE. The server writes the status
 * right after ON COMPLETION [NOT] PRESERVE, which follows the schedule (numbers, keywords and
 * quoted times only), which follows the event's name: the first ON COMPLETION after the name is it.
 */
export function disabledCreateEvent(create: Buffer, name: string): Buffer {
  const text = create.toString('latin1');
  const head = ` EVENT ${Buffer.from(quoteIdentifier(name), 'utf8').toString('latin1')} ON SCHEDULE `;
  const at = text.indexOf(head);
  const completion = at < 0 ? -1 : text.indexOf(' ON COMPLETION ', at + head.length);
  const status = completion < 0 ? null : /^ ON COMPLETION (?:NOT )?PRESERVE (ENABLE|DISABLE ON SLAVE|DISABLE)(?= COMMENT | DO )/.exec(text.slice(completion));
  if (!status) throw new Error(`SHOW CREATE EVENT ${name}: no status where the server writes it: ${text.slice(0, 200)}`);
  const start = completion + status[0].length - status[1]!.length;
  return Buffer.from(`${text.slice(0, start)}DISABLE${text.slice(start + status[1]!.length)}`, 'latin1');
}

function sessionName(value: string, what: string): string {
  if (!/^\w+$/.test(value)) throw new Error(`${what} ${JSON.stringify(value)} is not a character set or collation name`);
  return value;
}

/**
 * The events section of a dump: each event as the server describes it (in its own sql_mode, time
 * zone and character set, byte for byte), created DISABLED.
 */
export async function eventsSection(connection: Connection, database: string): Promise<Buffer> {
  const names = await rows<{ name: string }>(connection, 'SELECT EVENT_NAME AS name FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME', [database]);
  if (names.length === 0) return Buffer.alloc(0);
  const parts: Buffer[] = [
    Buffer.from(
      '\n--\n-- Events (db-runbooks): each is created DISABLED, so that a restore never starts it; the manifest\n' +
        '-- records which were enabled, and restoreDatabase enables them again when it restores the database\n' +
        '-- under its own name.\n--\n' +
        '/*!50106 SET @dbr_saved_time_zone = @@time_zone */;\n/*!50003 SET @dbr_saved_sql_mode = @@sql_mode */;\n' +
        '/*!50003 SET @dbr_saved_cs_client = @@character_set_client */;\n/*!50003 SET @dbr_saved_cs_results = @@character_set_results */;\n' +
        '/*!50003 SET @dbr_saved_col_connection = @@collation_connection */;\nDELIMITER ;;\n',
    ),
  ];
  // Byte for byte: a body written in another character set than ours comes back unconverted.
  await connection.query('SET SESSION character_set_results = binary');
  try {
    for (const { name } of names) {
      const [shown] = await rows<Record<string, Buffer | string>>(connection, `SHOW CREATE EVENT ${quoteIdentifier(database)}.${quoteIdentifier(name)}`);
      const text = (field: string) => {
        const value = shown?.[field];
        return Buffer.isBuffer(value) ? value.toString('utf8') : String(value ?? '');
      };
      const createValue = shown?.['Create Event'];
      const create = Buffer.isBuffer(createValue) ? createValue : Buffer.from(String(createValue ?? ''), 'utf8');
      parts.push(
        Buffer.from(
          `/*!50106 DROP EVENT IF EXISTS ${quoteIdentifier(name)} */ ;;\n` +
            `SET character_set_client = ${sessionName(text('character_set_client'), 'character_set_client')} ;;\n` +
            `SET character_set_results = ${sessionName(text('character_set_client'), 'character_set_client')} ;;\n` +
            `SET collation_connection = ${sessionName(text('collation_connection'), 'collation_connection')} ;;\n` +
            `SET sql_mode = ${quoteString(text('sql_mode'))} ;;\n` +
            `SET time_zone = ${quoteString(text('time_zone'))} ;;\n`,
          'utf8',
        ),
        disabledCreateEvent(create, name),
        Buffer.from('\n;;\n'),
      );
    }
  } finally {
    await connection.query('SET SESSION character_set_results = utf8mb4');
  }
  parts.push(
    Buffer.from(
      'DELIMITER ;\n/*!50106 SET time_zone = @dbr_saved_time_zone */;\n/*!50003 SET sql_mode = @dbr_saved_sql_mode */;\n' +
        '/*!50003 SET character_set_client = @dbr_saved_cs_client */;\n/*!50003 SET character_set_results = @dbr_saved_cs_results */;\n' +
        '/*!50003 SET collation_connection = @dbr_saved_col_connection */;\n',
    ),
  );
  return Buffer.concat(parts);
}

function quoteDefiner(definer: string): string {
  // user@host, or a role's name alone; a host holds no "@", a user name may.
  const at = definer.lastIndexOf('@');
  return at < 0 ? quoteIdentifier(definer) : `${quoteIdentifier(definer.slice(0, at))}@${quoteIdentifier(definer.slice(at + 1))}`;
}

/**
 * Gives the restored events of the database the status the backup recorded. ALTER EVENT makes the
 * caller the definer and stores the session's character sets unless told otherwise: both are set
 * to the event's, so only the status changes.
 */
export async function restoreEventStatus(connection: Connection, database: string, expected: readonly ObjectRecord[]): Promise<number> {
  const wanted = expected.filter((o) => o.kind === 'event' && o.status && o.status !== 'DISABLED');
  if (wanted.length === 0) return 0;
  const present = await rows<{ name: string; definer: string; cs: string; co: string }>(
    connection,
    'SELECT EVENT_NAME AS name, DEFINER AS definer, CHARACTER_SET_CLIENT AS cs, COLLATION_CONNECTION AS co FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?',
    [database],
  );
  let changed = 0;
  try {
    for (const event of wanted) {
      const found = present.find((p) => p.name === event.name);
      if (!found) continue;
      await connection.query(`SET SESSION character_set_client = ${sessionName(found.cs, 'character_set_client')}, collation_connection = ${sessionName(found.co, 'collation_connection')}`);
      const status = event.status === 'SLAVESIDE_DISABLED' ? 'DISABLE ON SLAVE' : 'ENABLE';
      await connection.query(`ALTER DEFINER=${quoteDefiner(found.definer)} EVENT ${quoteIdentifier(database)}.${quoteIdentifier(event.name)} ${status}`);
      changed += 1;
    }
  } finally {
    await connection.query('SET NAMES utf8mb4');
  }
  return changed;
}
