// What an operator scrapes and reads: the worker's Prometheus endpoint (the SDK's worker metrics
// plus runbook metrics) and JSON log lines that name the runbook and the cluster.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { cli } from '../helpers/cli';
import { freePort } from '../helpers/stack';
import { startTemporal } from '../helpers/temporal';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

let env: TestWorkflowEnvironment;
let worker: WorkerProcess;
let metricsUrl: string;
let probesUrl: string;
const taskQueue = `obs-${process.pid}`;

beforeAll(async () => {
  env = await startTemporal();
  const port = await freePort();
  const probesPort = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  probesUrl = `http://127.0.0.1:${probesPort}`;
  worker = spawnWorkerProcess({
    TEMPORAL_ADDRESS: env.address,
    DBR_TASK_QUEUE: taskQueue,
    DBR_METRICS_ADDRESS: `127.0.0.1:${port}`,
    DBR_HEALTH_ADDRESS: `127.0.0.1:${probesPort}`,
    DBR_LOG_LEVEL: 'DEBUG',
  });
  await worker.waitUntilPolling();
  const env_ = { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue };
  expect((await cli(['clusterHealth', '--cluster', 'local'], env_)).code).toBe(0);
  expect((await cli(['clusterHealth', '--cluster', 'pair'], env_)).code).toBe(0);
  expect((await cli(['clusterHealth', '--cluster', 'atlantis'], env_)).code).toBe(2);
  expect((await cli(['backupEtcd', '--cluster', 'local'], env_)).code).toBe(0);
});
afterAll(async () => {
  await worker?.kill();
  await env?.teardown();
});

function sample(metrics: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => inside.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('runbook metrics: started, finished by outcome, step durations', async () => {
  // The exporter publishes on an interval: poll until the last run shows up.
  let metrics = '';
  const deadline = Date.now() + 30_000;
  while (sample(metrics, 'runbook_finished', { runbook: 'backupEtcd', cluster: 'local', outcome: 'succeeded' }) === undefined) {
    if (Date.now() > deadline) throw new Error(`metrics never showed the failed run:\n${metrics.split('\n').filter((l) => l.startsWith('runbook')).join('\n')}`);
    await new Promise((r) => setTimeout(r, 500));
    metrics = await (await fetch(metricsUrl)).text();
  }
  expect(sample(metrics, 'runbook_started', { runbook: 'clusterHealth', cluster: 'local' })).toBe(1);
  expect(sample(metrics, 'runbook_finished', { runbook: 'clusterHealth', cluster: 'local', outcome: 'succeeded' })).toBe(1);
  expect(sample(metrics, 'runbook_finished', { runbook: 'clusterHealth', cluster: 'pair', outcome: 'succeeded' })).toBe(1);
  expect(sample(metrics, 'runbook_finished', { runbook: 'clusterHealth', cluster: 'atlantis', outcome: 'failed' })).toBe(1);
  expect(sample(metrics, 'runbook_step_duration_seconds_count', { runbook: 'clusterHealth', cluster: 'local', step: 'check components', state: 'done' })).toBe(1);
  // What a backup wrote, and how fast.
  expect(sample(metrics, 'runbook_backup_bytes', { runbook: 'backupEtcd', cluster: 'local', kind: 'etcd snapshot' })).toBeGreaterThan(0);
  expect(sample(metrics, 'runbook_backup_throughput_bytes_per_second_count', { runbook: 'backupEtcd', cluster: 'local', kind: 'etcd snapshot' })).toBe(1);
  // And the SDK's own worker metrics are on the same endpoint.
  expect(metrics).toMatch(/^temporal_workflow_completed\{/m);
  expect(metrics).toMatch(/^temporal_activity_execution_latency/m);
});

test('every workflow and activity log line is JSON naming the runbook and the cluster', () => {
  const lines = worker
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const fromRuns = lines.filter((l) => typeof l.workflowId === 'string' && String(l.workflowId).startsWith('clusterHealth/local/'));
  const workflowLines = fromRuns.filter((l) => l.sdkComponent === 'workflow');
  const activityLines = fromRuns.filter((l) => typeof l.activityType === 'string');
  expect(workflowLines.length).toBeGreaterThan(3);
  expect(activityLines.length).toBeGreaterThan(2);
  for (const line of [...workflowLines, ...activityLines]) {
    expect(line).toMatchObject({ runbook: 'clusterHealth', cluster: 'local' });
    expect(typeof line.time).toBe('string');
    expect(typeof line.level).toBe('string');
  }
});

test('the liveness and readiness probes answer while the worker polls', async () => {
  expect((await fetch(`${probesUrl}/healthz`)).status).toBe(200);
  const ready = await fetch(`${probesUrl}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.text()).toBe('RUNNING\n');
  expect((await fetch(`${probesUrl}/other`)).status).toBe(404);
});
