// clusterHealth against the real local stack: standalone MariaDB, the GTID pair, the 3-node Galera
// cluster, etcd and MinIO, with faults injected by stopping the real servers.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import mysql from 'mysql2/promise';
import { clusterHealth } from '../../workflows';
import { getProgressQuery } from '../../workflows/definitions';
import type { ClusterHealthReport } from '../../workflows/health';
import { stack } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { s3Client } from '../helpers/backup';

const extraClusters = `
clusters:
  no-bucket:
    s3:
      endpoint: http://127.0.0.1:9000
      bucket: no-such-bucket-dbr
      forcePathStyle: true
      accessKeyId: { env: DBR_LOCAL_S3_ACCESS_KEY }
      secretAccessKey: { env: DBR_LOCAL_S3_SECRET_KEY }
  etcd-only:
    etcd:
      endpoints: [http://127.0.0.1:2379]
`;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let runs = 0;

beforeAll(async () => {
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, testProfiles(extraClusters)));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function runHealth(input: unknown): Promise<ClusterHealthReport> {
  return env.client.workflow.execute(clusterHealth, {
    taskQueue: worker.taskQueue,
    workflowId: `clusterHealth/test-${++runs}-${Date.now()}`,
    args: [input as { cluster: string }],
  });
}

async function sql(port: number, statement: string): Promise<unknown[]> {
  const connection = await mysql.createConnection({ host: '127.0.0.1', port, user: 'runbook', password: process.env.DBR_LOCAL_MYSQL_PASSWORD });
  try {
    const [rows] = await connection.query(statement);
    return rows as unknown[];
  } finally {
    await connection.end();
  }
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => {
      throw new Error('expected the runbook to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

test('the local cluster is healthy, with every part checked and the S3 probe cleaned up', async () => {
  const report = await runHealth({ cluster: 'local' });
  expect(report.verdict).toBe('healthy');
  expect(report.reasons).toEqual([]);
  const [node] = report.mysql!;
  expect(node).toMatchObject({ node: 'mariadb', reachable: true, flavor: 'MariaDB', readOnly: false, innodbFlushLogAtTrxCommit: 1 });
  expect(node!.version).toMatch(/^10\.11\./);
  expect(report.etcd!.endpoints[0]).toMatchObject({ endpoint: 'http://127.0.0.1:2379', reachable: true });
  expect(report.etcd!.members).toHaveLength(1);
  expect(report.s3).toMatchObject({ bucket: 'db-runbooks', reachable: true, bucketExists: true, writable: true });

  const s3 = s3Client();
  const left = await s3.send(new ListObjectsV2Command({ Bucket: 'db-runbooks', Prefix: 'local/.db-runbooks-probe/' }));
  s3.destroy();
  expect(left.KeyCount ?? 0).toBe(0);
});

test('progress is queryable and the outcome is recorded in search attributes and memo', async () => {
  const workflowId = `clusterHealth/progress-${Date.now()}`;
  const handle = await env.client.workflow.start(clusterHealth, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: 'pair' }] });
  await handle.result();
  const progress = await handle.query(getProgressQuery);
  expect(progress.outcome).toBe('succeeded');
  expect(progress.steps.map((s) => [s.name, s.state])).toEqual([
    ['read profile', 'done'],
    ['check components', 'done'],
    ['assess', 'done'],
  ]);
  const description = await handle.describe();
  expect(description.searchAttributes).toMatchObject({ RunbookCluster: ['pair'], RunbookName: ['clusterHealth'], RunbookOutcome: ['succeeded'] });
  expect(String(await description.memo?.summary)).toMatch(/^healthy: 2 replication MySQL node/);
});

test('a durability setting that loses acknowledged writes is a warning, not a failure', async () => {
  await sql(3310, 'SET GLOBAL innodb_flush_log_at_trx_commit = 2');
  try {
    const report = await runHealth({ cluster: 'local' });
    expect(report.verdict).toBe('healthy');
    expect(report.warnings).toEqual([expect.stringContaining('mariadb: innodb_flush_log_at_trx_commit=2')]);
  } finally {
    await sql(3310, 'SET GLOBAL innodb_flush_log_at_trx_commit = 1');
  }
});

test('the replica with its SQL thread stopped makes the pair degraded, naming the replica', async () => {
  await sql(3312, 'STOP SLAVE SQL_THREAD');
  try {
    const report = await runHealth({ cluster: 'pair' });
    expect(report.verdict).toBe('degraded');
    expect(report.reasons).toEqual(['replica replica: replication SQL thread is stopped (No)']);
    expect(report.mysql!.find((n) => n.node === 'replica')!.replication).toMatchObject({ ioRunning: 'Yes', sqlRunning: 'No' });
  } finally {
    await sql(3312, 'START SLAVE SQL_THREAD');
  }
  expect((await runHealth({ cluster: 'pair' })).verdict).toBe('healthy');
});

test('the Galera cluster is healthy, then degraded with one node stopped, naming it', async () => {
  const healthy = await runHealth({ cluster: 'galera' });
  expect(healthy.verdict).toBe('healthy');
  expect(healthy.mysql!.map((n) => [n.node, n.galera?.localState, n.galera?.clusterSize])).toEqual([
    ['galera1', 'Synced', 3],
    ['galera2', 'Synced', 3],
    ['galera3', 'Synced', 3],
  ]);

  await stack('stop', 'galera3');
  try {
    const report = await runHealth({ cluster: 'galera' });
    expect(report.verdict).toBe('degraded');
    expect(report.reasons).toEqual([
      expect.stringMatching(/^galera node galera3 \(127\.0\.0\.1:3323\) is unreachable: /),
      'galera cluster size is 2, expected 3',
    ]);
  } finally {
    await stack('start', 'galera3');
  }
  expect((await runHealth({ cluster: 'galera' })).verdict).toBe('healthy');
});

test('etcd stopped makes the cluster down, naming etcd', async () => {
  await stack('stop', 'etcd');
  try {
    const report = await runHealth({ cluster: 'etcd-only' });
    expect(report.verdict).toBe('down');
    expect(report.reasons).toEqual([expect.stringMatching(/^etcd is unreachable at http:\/\/127\.0\.0\.1:2379 /)]);
  } finally {
    await stack('start', 'etcd');
  }
  expect((await runHealth({ cluster: 'etcd-only' })).verdict).toBe('healthy');
});

test('a bucket that does not exist makes the cluster down, naming the bucket', async () => {
  const report = await runHealth({ cluster: 'no-bucket' });
  expect(report.verdict).toBe('down');
  expect(report.reasons).toEqual(['S3 bucket no-such-bucket-dbr does not exist']);
});

test('an unknown cluster fails at once with a non-retryable error naming the field', async () => {
  const failure = await failureOf(runHealth({ cluster: 'atlantis' }));
  expect(failure.type).toBe('UnknownCluster');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toMatch(/^cluster: unknown cluster "atlantis" .*known clusters: .*local/);
});

test.each([
  [{}, 'cluster: required'],
  [{ cluster: 'Bad Name' }, 'cluster: expected a cluster name'],
  [{ cluster: 'local', extra: 1 }, 'extra: unknown field'],
  ['local', '(input): expected an object'],
])('bad input %j is refused before any activity, naming the field', async (input, expected) => {
  const workflowId = `clusterHealth/bad-${++runs}-${Date.now()}`;
  const failure = await failureOf(
    env.client.workflow.execute(clusterHealth, { taskQueue: worker.taskQueue, workflowId, args: [input as { cluster: string }] }),
  );
  expect(failure.type).toBe('InvalidInput');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toContain(expected);
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  expect(history.events!.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
});
