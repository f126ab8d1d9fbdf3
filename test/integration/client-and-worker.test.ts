// The command-line client and the worker process as an operator runs them, against a real
// Temporal dev server and the local stack.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { cli as runCli } from '../helpers/cli';
import { LOCAL_PROFILES } from '../helpers/stack';
import { startTemporal } from '../helpers/temporal';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

let env: TestWorkflowEnvironment;
const taskQueue = `cli-${process.pid}`;

beforeAll(async () => {
  env = await startTemporal();
});
afterAll(async () => {
  await env?.teardown();
});

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return runCli(args, { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue, ...extraEnv });
}

test('a worker with a bad profile file stops at once with one line naming the file and field', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-worker-'));
  const profiles = path.join(dir, 'clusters.yaml');
  writeFileSync(profiles, 'clusters:\n  local:\n    s3: { bucket: backups, region: 7 }\n');
  const worker = spawnWorkerProcess({ DBR_PROFILES: profiles, TEMPORAL_ADDRESS: env.address });
  expect(await worker.exited).toBe(2);
  expect(worker.output().trim()).toBe(`db-runbooks worker: configuration error: ${profiles}: clusters.local.s3.region: expected a string, got number 7`);
});

describe('with a worker process running', () => {
  let worker: WorkerProcess;

  beforeAll(async () => {
    worker = spawnWorkerProcess({ DBR_PROFILES: LOCAL_PROFILES, TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue });
    await worker.waitUntilPolling();
  });

  afterAll(async () => {
    await worker.kill();
  });

  test('runbook clusterHealth follows the steps and prints the report', async () => {
    const { code, out, err } = await cli(['clusterHealth', '--cluster', 'local']);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^started clusterHealth on cluster local: clusterHealth\/local\//);
    expect(out).toContain('http://127.0.0.1:8233/namespaces/default/workflows/clusterHealth%2Flocal%2F');
    expect(out).toMatch(/✓ check components/);
    expect(out).toContain('cluster local: HEALTHY');
    expect(out).toMatch(/mysql mariadb \(primary, 127\.0\.0\.1:3310\): MariaDB 10\.11/);
    expect(out).toContain('s3 http://127.0.0.1:9000 bucket db-runbooks: reachable and writable');
  });

  test('list and status show the run', async () => {
    const started = await cli(['clusterHealth', '--cluster', 'pair', '--detach']);
    const workflowId = /: (clusterHealth\/pair\/\S+)/.exec(started.out)![1]!;
    await env.client.workflow.getHandle(workflowId).result();
    const listed = await cli(['list', '--cluster', 'pair']);
    expect(listed.code).toBe(0);
    expect(listed.out).toContain(workflowId);
    const status = await cli(['status', workflowId]);
    expect(status.code).toBe(0);
    expect(status.out).toContain(`${workflowId}: clusterHealth COMPLETED`);
    expect(status.out).toContain('cluster pair: HEALTHY');
  });

  test('an unknown cluster is one line and exit code 2', async () => {
    const { code, err } = await cli(['clusterHealth', '--cluster', 'atlantis']);
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/^runbook failed: cluster: unknown cluster "atlantis"/);
  });

  test('the worker shuts down gracefully on SIGTERM', async () => {
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(worker.output()).toContain('"message":"worker stopped"');
  });
});

test.each([
  [['clusterHealth'], 2, 'runbook: --cluster: required (or "cluster" in --input)'],
  [['clusterHealth', '--cluster', 'local', '--input', '{nope'], 2, 'runbook: --input: not valid JSON'],
  [['frobnicate', '--cluster', 'local'], 2, 'runbook: unknown runbook "frobnicate"; runbooks: clusterHealth'],
  [['status'], 2, 'runbook: status: a workflow id or --cluster NAME is required'],
])('usage error %j is one line with exit code %i', async (args, expectedCode, message) => {
  const { code, err } = await cli(args);
  expect(code).toBe(expectedCode);
  expect(err).toContain(message);
  expect(err.trim().split('\n')).toHaveLength(1);
});

test('Temporal unreachable is one line and exit code 3', async () => {
  const { code, err } = await cli(['clusterHealth', '--cluster', 'local'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(code).toBe(3);
  expect(err).toMatch(/^runbook: cannot reach Temporal at 127\.0\.0\.1:1: /);
  expect(err.trim().split('\n')).toHaveLength(1);
});
