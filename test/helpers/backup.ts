// What the backup tests share: a cluster profile on the local MariaDB and MinIO with its own bucket
// prefix, an S3 client to look at what a run left, and the facts a user compares after a restore.
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import type { BackupManifest } from '../../activities/backup';

export const BUCKET = 'db-runbooks';

/** A cluster on the stack's standalone MariaDB (3310) that backs up `database` under `s3Prefix`. */
export function backupClusterYaml(name: string, s3Prefix: string, backup: string): string {
  return `  ${name}:
    mysql:
      topology: standalone
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes: [{ name: mariadb, host: 127.0.0.1, port: 3310, role: primary }]
    s3:
      endpoint: http://127.0.0.1:9000
      bucket: ${BUCKET}
      prefix: ${s3Prefix}
      forcePathStyle: true
      accessKeyId: { env: DBR_LOCAL_S3_ACCESS_KEY }
      secretAccessKey: { env: DBR_LOCAL_S3_SECRET_KEY }
    backup: ${backup}
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`;
}

export function s3Client(): S3Client {
  return new S3Client({
    endpoint: 'http://127.0.0.1:9000',
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.DBR_LOCAL_S3_ACCESS_KEY!, secretAccessKey: process.env.DBR_LOCAL_S3_SECRET_KEY! },
  });
}

export async function listKeys(s3: S3Client, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export async function pendingUploads(s3: S3Client, prefix: string): Promise<string[]> {
  const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return (page.Uploads ?? []).map((u) => u.Key!);
}

export async function readManifest(s3: S3Client, key: string): Promise<BackupManifest> {
  const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return JSON.parse(await object.Body!.transformToString()) as BackupManifest;
}

export function connectMariadb(database?: string): Promise<Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: 3310, user: 'runbook', password: process.env.DBR_LOCAL_MYSQL_PASSWORD, database, multipleStatements: true });
}

/** Every base table's row count and CHECKSUM TABLE, as a user checks a restored database. */
export async function tableFacts(connection: Connection, database: string): Promise<Record<string, { rows: number; checksum: string }>> {
  const [tables] = await connection.query<RowDataPacket[]>("SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1", [database]);
  const facts: Record<string, { rows: number; checksum: string }> = {};
  for (const { name } of tables as { name: string }[]) {
    const [[count]] = await connection.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${database}\`.\`${name}\``);
    const [[sum]] = await connection.query<RowDataPacket[]>(`CHECKSUM TABLE \`${database}\`.\`${name}\``);
    facts[name] = { rows: Number(count!.n), checksum: String(sum!.Checksum) };
  }
  return facts;
}

/** Waits until the dump reads `table` (its SELECT shows in the processlist): the moment to inject a fault. */
export async function untilDumpReads(connection: Connection, database: string, table: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [rows] = await connection.query<RowDataPacket[]>(
      "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE CONCAT('SELECT /*!40001 SQL_NO_CACHE */ %', ?, '%')",
      [database, table],
    );
    if (rows.length > 0) return;
    if (Date.now() > deadline) throw new Error(`the dump never read ${database}.${table}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
