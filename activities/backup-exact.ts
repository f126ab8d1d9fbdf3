// Values that mariadb-dump writes in a form that does not restore to them, and the rows of their
// tables written so that they do. Checked on MariaDB 10.11 against CHECKSUM TABLE (README, "Exact
// values"):
// - FLOAT: the server prints 6 significant digits (3.4028235e38 as 3.40282e38, 16777217 as
//   16777200; 192,614 of 199,235 random FLOAT values came back different), and -0 as 0.
// - ENUM and SET with '' among their members: the error value (index 0, stored under a lax
//   sql_mode) or the empty set prints as '', the same as the member '', which is what comes back.
// DOUBLE (printed with the shortest digits that read back the same; the server stores -0 as 0),
// DECIMAL(65,30), BIT(64) (hex) and an ENUM's error value without a '' member restore exactly.
//
// The rows of such a table are left out of mariadb-dump's output (--ignore-table-data) and written
// from the same snapshot: the server formats each row as an SQL tuple (FLOAT through DOUBLE's
// digits, -0 as a value that rounds to it, ENUM and SET by index, strings and binary data in hex),
// and the worker only joins the tuples into INSERT statements.
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { Readable } from 'node:stream';

export interface ExactTable {
  name: string;
  /** The columns whose values the dump's text would not give back, and why. */
  lossy: { column: string; type: string }[];
}

/** The INSERT statements a table's rows are written in: big enough to load fast, far below max_allowed_packet. */
const STATEMENT_BYTES = 1024 * 1024;

function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** The members of an ENUM or SET column type, as information_schema.COLUMNS.COLUMN_TYPE writes them. */
export function typeMembers(columnType: string): string[] {
  const list = /^(?:enum|set)\((.*)\)$/is.exec(columnType)?.[1] ?? '';
  return [...list.matchAll(/'((?:[^']|'')*)'/g)].map((m) => m[1]!.replace(/''/g, "'"));
}

function isLossy(dataType: string, columnType: string): boolean {
  if (dataType === 'float') return true;
  return (dataType === 'enum' || dataType === 'set') && typeMembers(columnType).includes('');
}

/** The base tables of the database with a column whose values the dump's text would not give back. */
export async function tablesNeedingExactRows(connection: Connection, database: string): Promise<ExactTable[]> {
  const [columns] = await connection.query<RowDataPacket[]>(
    `SELECT c.TABLE_NAME AS tableName, c.COLUMN_NAME AS columnName, c.DATA_TYPE AS dataType, c.COLUMN_TYPE AS columnType
       FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
      WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE' AND c.IS_GENERATED = 'NEVER' AND c.DATA_TYPE IN ('float', 'enum', 'set')
      ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
    [database],
  );
  const tables = new Map<string, ExactTable>();
  for (const c of columns as { tableName: string; columnName: string; dataType: string; columnType: string }[]) {
    if (!isLossy(c.dataType.toLowerCase(), c.columnType)) continue;
    const table = tables.get(c.tableName) ?? { name: c.tableName, lossy: [] };
    table.lossy.push({ column: c.columnName, type: c.columnType });
    tables.set(c.tableName, table);
  }
  return [...tables.values()];
}

const NUMBERS = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'double', 'real']);
const BYTES = new Set([
  'char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'json',
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection',
]);

/** An SQL expression that gives the column's value as an SQL literal that stores exactly it (never NULL itself). */
export function literalExpression(column: string, dataType: string): string {
  const c = quoteIdentifier(column);
  const type = dataType.toLowerCase();
  let literal: string;
  if (type === 'float') {
    // A FLOAT read as DOUBLE is exact, and DOUBLE prints the digits that read back the same; -1e-46
    // rounds to the FLOAT -0 (the server turns a literal -0 into 0).
    literal = `IF(${c} = 0 AND ATAN2(${c}, -1) < 0, '-1e-46', CONCAT(CAST(${c} AS DOUBLE)))`;
  } else if (type === 'enum' || type === 'set' || type === 'bit') {
    // By index (0 is the ENUM's error value under the restore's lax sql_mode) and by bits.
    literal = `CONCAT(${c} + 0)`;
  } else if (NUMBERS.has(type)) {
    literal = `CONCAT(${c})`;
  } else if (BYTES.has(type)) {
    // In hex, the bytes as stored whatever the column's character set.
    literal = `IF(LENGTH(${c}) = 0, '''''', CONCAT('0x', HEX(${c})))`;
  } else {
    // Dates and times (read and written in UTC, as the dump does), and types with a text form of their own.
    literal = `QUOTE(${c})`;
  }
  return `IF(${c} IS NULL, 'NULL', ${literal})`;
}

/**
 * A query whose rows arrive as a stream, paced by the reader: the promise API would hold them all.
 * The promise connection wraps the callback one (typed only on pool connections).
 */
function streamingQuery(connection: Connection, sql: string): Readable {
  return (connection as unknown as { connection: { query(sql: string): { stream(): Readable } } }).connection.query(sql).stream();
}

/** The session an exact section loads in, set and put back around it like the dump's own header. */
const SECTION_HEAD =
  "/*!40101 SET @dbr_old_sql_mode = @@sql_mode, sql_mode = 'NO_AUTO_VALUE_ON_ZERO' */;\n" +
  "/*!40103 SET @dbr_old_time_zone = @@time_zone, time_zone = '+00:00' */;\n" +
  '/*!40014 SET @dbr_old_foreign_key_checks = @@foreign_key_checks, foreign_key_checks = 0 */;\n' +
  '/*!40014 SET @dbr_old_unique_checks = @@unique_checks, unique_checks = 0 */;\n' +
  '/*!40101 SET @dbr_old_cs_client = @@character_set_client, @dbr_old_col_connection = @@collation_connection */;\n' +
  '/*!40101 SET NAMES utf8mb4 */;\n';
const SECTION_TAIL =
  '/*!40101 SET character_set_client = @dbr_old_cs_client, collation_connection = @dbr_old_col_connection */;\n' +
  '/*!40014 SET unique_checks = @dbr_old_unique_checks */;\n/*!40014 SET foreign_key_checks = @dbr_old_foreign_key_checks */;\n' +
  '/*!40103 SET time_zone = @dbr_old_time_zone */;\n/*!40101 SET sql_mode = @dbr_old_sql_mode */;\n';

/**
 * The rows of the tables as INSERT statements, read in the connection's transaction (its snapshot).
 * The connection reads in UTC, as the dump's TIMESTAMP values are written.
 */
export async function* exactRows(connection: Connection, database: string, tables: readonly ExactTable[]): AsyncGenerator<Buffer> {
  if (tables.length === 0) return;
  await connection.query("SET SESSION time_zone = '+00:00'");
  yield Buffer.from(`\n--\n-- Rows written by db-runbooks in a form that restores exactly (FLOAT with all its digits, ENUM and SET by index)\n--\n${SECTION_HEAD}`);
  for (const table of tables) {
    const [columns] = await connection.query<RowDataPacket[]>(
      "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND IS_GENERATED = 'NEVER' ORDER BY ORDINAL_POSITION",
      [database, table.name],
    );
    const list = columns as { name: string; type: string }[];
    const insert = `INSERT INTO ${quoteIdentifier(table.name)} (${list.map((c) => quoteIdentifier(c.name)).join(',')}) VALUES `;
    const select = `SELECT CONCAT('(', CONCAT_WS(',', ${list.map((c) => literalExpression(c.name, c.type)).join(', ')}), ')') AS t FROM ${quoteIdentifier(database)}.${quoteIdentifier(table.name)}`;
    yield Buffer.from(`\n-- ${quoteIdentifier(table.name)}: ${table.lossy.map((l) => `${l.column} ${l.type}`).join(', ')}\nLOCK TABLES ${quoteIdentifier(table.name)} WRITE;\n`);
    const stream = streamingQuery(connection, select);
    let statement: string[] = [];
    let bytes = 0;
    let read = false;
    try {
      for await (const row of stream as AsyncIterable<{ t: string }>) {
        statement.push(row.t);
        bytes += row.t.length + 1;
        if (bytes >= STATEMENT_BYTES) {
          yield Buffer.from(`${insert}${statement.join(',')};\n`);
          statement = [];
          bytes = 0;
        }
      }
      read = true;
    } finally {
      // A reader that stopped early leaves the query half read: the connection can serve nothing else.
      if (!read) connection.destroy();
    }
    if (statement.length) yield Buffer.from(`${insert}${statement.join(',')};\n`);
    yield Buffer.from('UNLOCK TABLES;\n');
  }
  yield Buffer.from(SECTION_TAIL);
}
