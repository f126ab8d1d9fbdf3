// bench/backup: backupDatabase and restoreDatabase side by side with the plain tools, in one run, at
// two database sizes: `mariadb-dump --single-transaction | gzip > /dev/null` against this project's
// backup into MinIO (dump, gzip, sha256, multipart upload, checksums, HeadObject), and
// `gunzip | mariadb` against this project's restore (S3 read, sha256, gunzip, mariadb). The worker
// runs as its own process (the built dist/worker/main.js), so its peak RSS is the worker's alone.
//   npm run bench:backup [-- --sizes 256,1024]     sizes in MB of table data (default 256 and 1024)
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import type { BackupDatabaseResult } from '../workflows/backupDatabase';
import { searchAttributes } from '../workflows/definitions';
import type { RestoreDatabaseResult } from '../workflows/restoreDatabase';
import { backupClusterYaml } from '../test/helpers/backup';
import { REPO_ROOT, stackSecrets, TEMPORAL_BINARY } from '../test/helpers/stack';

const run = promisify(execFile);
const ROWS_PER_INSERT = 500_000;

function argSizes(): number[] {
  const i = process.argv.indexOf('--sizes');
  return (i > 0 ? process.argv[i + 1]! : '256,1024').split(',').map(Number);
}

function ms(t: temporal.api.history.v1.IHistoryEvent): number {
  return Number(t.eventTime!.seconds) * 1000 + Math.floor((t.eventTime!.nanos ?? 0) / 1e6);
}

/** Seconds the named activity ran (its last attempt's start to its completion), from the history. */
function activitySeconds(events: temporal.api.history.v1.IHistoryEvent[], type: string): number {
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type)!;
  const started = events.filter((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled.eventId)).pop()!;
  const done = events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled.eventId))!;
  return (ms(done) - ms(started)) / 1000;
}

async function timed(command: string): Promise<number> {
  const t0 = performance.now();
  await run('bash', ['-o', 'pipefail', '-c', command], { maxBuffer: 1024 * 1024 });
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  Object.assign(process.env, stackSecrets());
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const id = randomUUID().slice(0, 8);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-bench-backup-'));
  const optionFile = path.join(dir, 'client.cnf');
  writeFileSync(optionFile, `[client]\nhost=127.0.0.1\nport=3310\nprotocol=TCP\nuser=runbook\npassword="${process.env.DBR_LOCAL_MYSQL_PASSWORD}"\n`, { mode: 0o600 });
  const sql = await mysql.createConnection({ host: '127.0.0.1', port: 3310, user: 'runbook', password: process.env.DBR_LOCAL_MYSQL_PASSWORD, multipleStatements: true });
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: TEMPORAL_BINARY }, ip: '127.0.0.1', searchAttributes: Object.values(searchAttributes), extraArgs: ['--log-level', 'error'] },
  });
  const rows: string[] = [
    '| data | SQL | plain dump \\| gzip | backupDatabase dump | backup ratio | plain gunzip \\| mariadb | restore load | restore ratio | restore incl. checksums | worker peak RSS |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const notes: string[] = [];
  try {
    let generated = 0;
    const database = `bench_backup_${id}`;
    await sql.query(`CREATE DATABASE ${database};
      CREATE TABLE ${database}.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer INT NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(16) NOT NULL,
        created DATETIME NOT NULL, note VARCHAR(255), payload VARBINARY(128), KEY (customer)) ENGINE=InnoDB`);
    for (const [n, megabytes] of argSizes().sort((a, b) => a - b).entries()) {
      // Grow the same table to the size: INSERT ... SELECT from the sequence engine, half a million rows a statement.
      const genStarted = performance.now();
      for (;;) {
        await sql.query(`ANALYZE TABLE ${database}.orders`);
        const [[size]] = await sql.query<RowDataPacket[]>('SELECT DATA_LENGTH AS d FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, 'orders']);
        if (Number(size!.d) >= megabytes * 1024 * 1024) break;
        await sql.query(`INSERT INTO ${database}.orders (customer, amount, status, created, note, payload)
          SELECT FLOOR(RAND() * 100000), ROUND(RAND() * 1000, 2), ELT(1 + FLOOR(RAND() * 4), 'new', 'paid', 'shipped', 'cancelled'),
            '2026-01-01' + INTERVAL FLOOR(RAND() * 30000000) SECOND, CONCAT('order note ', MD5(seq), ' ', SHA1(RAND())), RANDOM_BYTES(32)
          FROM ${database}.seq_1_to_${ROWS_PER_INSERT}`);
        generated += ROWS_PER_INSERT;
      }
      const [[facts]] = await sql.query<RowDataPacket[]>('SELECT DATA_LENGTH AS d, INDEX_LENGTH AS i FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, 'orders']);
      notes.push(`${megabytes} MB: ${generated} rows generated by INSERT ... SELECT in ${((performance.now() - genStarted) / 1000).toFixed(1)} s (data ${(Number(facts!.d) / 2 ** 20).toFixed(0)} MiB, indexes ${(Number(facts!.i) / 2 ** 20).toFixed(0)} MiB)`);

      // The plain pipelines, on the same database, in the same run.
      const dumpArgs = `--defaults-extra-file=${optionFile} --single-transaction --hex-blob ${database}`;
      const plainDump = await timed(`mariadb-dump ${dumpArgs} | gzip > /dev/null`);
      await timed(`mariadb-dump ${dumpArgs} | gzip > ${dir}/dump.sql.gz`);
      const plainTarget = `${database}_plain`;
      await sql.query(`DROP DATABASE IF EXISTS ${plainTarget}; CREATE DATABASE ${plainTarget}`);
      const plainRestore = await timed(`gunzip -c ${dir}/dump.sql.gz | mariadb --defaults-extra-file=${optionFile} --binary-mode ${plainTarget}`);
      await sql.query(`DROP DATABASE ${plainTarget}`);
      rmSync(`${dir}/dump.sql.gz`);

      // This project's runbooks, on a worker process of their own.
      const cluster = `bench-backup-${id}-${n}`;
      const profiles = path.join(dir, `clusters-${n}.yaml`);
      writeFileSync(profiles, `clusters:\n${backupClusterYaml(cluster, `bench-backup-${id}/`, `{ databases: [${database}], compression: gzip, verifyEvery: 0 }`)}`);
      const taskQueue = `bench-backup-${id}-${n}`;
      const worker = spawn(process.execPath, [path.join(REPO_ROOT, 'dist', 'worker', 'main.js')], {
        cwd: REPO_ROOT,
        env: { ...process.env, TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue, DBR_PROFILES: profiles, DBR_METRICS_ADDRESS: 'off', DBR_HEALTH_ADDRESS: 'off', DBR_LOG_LEVEL: 'INFO' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      worker.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const memory = () => {
        const status = readFileSync(`/proc/${worker.pid}/status`, 'utf8');
        return { peak: Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024, now: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024 };
      };
      try {
        const deadline = Date.now() + 60_000;
        while (!output.includes('"state":"RUNNING"')) {
          if (Date.now() > deadline) throw new Error(`the worker did not start:\n${output}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        await new Promise((r) => setTimeout(r, 2000));
        const idle = memory();
        const backupHandle = await env.client.workflow.start('backupDatabase', { taskQueue, workflowId: `backupDatabase/${cluster}`, args: [{ cluster }] });
        const backup = (await backupHandle.result()) as BackupDatabaseResult;
        const dumpSeconds = activitySeconds((await backupHandle.fetchHistory()).events!, 'dumpDatabases');
        const restoreTarget = `${database}_restored`;
        const restoreHandle = await env.client.workflow.start('restoreDatabase', {
          taskQueue,
          workflowId: `restoreDatabase/${cluster}`,
          args: [{ cluster, targetDatabase: restoreTarget, allowUnverified: true }],
        });
        const restore = (await restoreHandle.result()) as RestoreDatabaseResult;
        await sql.query(`DROP DATABASE ${restoreTarget}`);
        const after = memory();
        const sqlBytes = backup.databases![0]!.sqlBytes;
        const mbps = (s: number) => `${(sqlBytes / 2 ** 20 / s).toFixed(1)} MiB/s`;
        rows.push(
          `| ${(Number(facts!.d) / 2 ** 20).toFixed(0)} MiB | ${(sqlBytes / 2 ** 20).toFixed(0)} MiB | ${plainDump.toFixed(1)} s (${mbps(plainDump)}) | ${dumpSeconds.toFixed(1)} s (${mbps(dumpSeconds)}) | ${(plainDump / dumpSeconds).toFixed(2)} | ` +
            `${plainRestore.toFixed(1)} s (${mbps(plainRestore)}) | ${restore.restore.loadSeconds.toFixed(1)} s (${mbps(restore.restore.loadSeconds)}) | ${(plainRestore / restore.restore.loadSeconds).toFixed(2)} | ` +
            `${restore.restore.durationSeconds.toFixed(1)} s | ${after.peak.toFixed(0)} MiB (idle: ${idle.now.toFixed(0)} MiB, ${idle.peak.toFixed(0)} MiB peak at start) |`,
        );
        notes.push(`${megabytes} MB: backup ${backup.backupId}: ${(backup.databases![0]!.bytes / 2 ** 20).toFixed(0)} MiB gzipped; whole backupDatabase run ${backup.durationSeconds?.toFixed(1)} s; restore checksums ${restore.restore.differences.length === 0 ? 'equal' : 'DIFFERENT'}`);
      } finally {
        worker.kill('SIGTERM');
        await new Promise((r) => worker.once('exit', r));
      }
    }
    await sql.query(`DROP DATABASE ${database}`);
  } finally {
    await env.teardown();
    await sql.end();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nbench/backup — ${new Date().toISOString()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${os.totalmem() / 2 ** 30 | 0} GiB RAM`);
  console.log('ratio = plain time / this project\'s time (1.00: as fast as the plain pipeline); throughput in MiB of SQL per second');
  console.log(rows.join('\n'));
  for (const note of notes) console.log(`- ${note}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
