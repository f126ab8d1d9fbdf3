// The cluster lock on a real Temporal dev server: order, emergencies, budgets, skipping, vanished
// holders, a holder past its maximum hold, a worker killed while holding, load across clusters, and
// continue-as-new. Rare interleavings and hours-long holds: test/workflows/clusterLock.test.ts.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { getLockStateQuery, lockWorkflowId, type LockState } from '../../workflows/definitions';
import { cli } from '../helpers/cli';
import { realActivities, startTemporal, startWorker, type RunningWorker } from '../helpers/temporal';
import { freePort } from '../helpers/stack';
import { startRecordingWebhook } from '../helpers/webhook';
import { spawnWorkerProcess } from '../helpers/worker-process';
import type { LockProbeInput } from '../workflows/lockProbe';

let env: TestWorkflowEnvironment;
let worker: RunningWorker;

beforeAll(async () => {
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env));
});
afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

type ProbeResult = { status: string; grantedAt?: string; releasedAt?: string; holder?: string | null };

function uniqueCluster(): string {
  return `c-${randomUUID().slice(0, 8)}`;
}

function startProbe(input: LockProbeInput, taskQueue = worker.taskQueue): Promise<WorkflowHandle> {
  return env.client.workflow.start('lockProbe', { taskQueue, workflowId: `lockProbe/${input.cluster}/${randomUUID()}`, args: [input] });
}

async function lockState(cluster: string): Promise<LockState> {
  return env.client.workflow.getHandle(lockWorkflowId(cluster)).query(getLockStateQuery);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(() => new Error('expected a failure'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
  return cause as ApplicationFailure;
}

/** [granted, released] of every lease the lock workflow gave, from its recorded histories (all runs). */
async function leasesFromLockHistory(cluster: string): Promise<{ holder: string; granted: number; released: number | null }[]> {
  const leases: { holder: string; granted: number; released: number | null }[] = [];
  const runs: string[] = [];
  for await (const run of env.client.workflow.list({ query: `WorkflowId = "${lockWorkflowId(cluster)}"` })) runs.push(run.runId);
  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  for (const runId of runs) {
    const history = await env.client.workflow.getHandle(lockWorkflowId(cluster), runId).fetchHistory();
    events.push(...(history.events ?? []));
  }
  events.sort((a, b) => Number(a.eventTime!.seconds) * 1e9 + a.eventTime!.nanos! - (Number(b.eventTime!.seconds) * 1e9 + b.eventTime!.nanos!));
  const payloadOf = (p: temporal.api.common.v1.IPayloads | null | undefined) =>
    JSON.parse(Buffer.from(p!.payloads![0]!.data!).toString()) as { requestId: string; workflowId?: string };
  for (const e of events) {
    const at = Number(e.eventTime!.seconds) * 1000 + Math.floor(e.eventTime!.nanos! / 1e6);
    const out = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (out?.signalName === 'lockGranted') leases.push({ holder: payloadOf(out.input).requestId, granted: at, released: null });
    const incoming = e.workflowExecutionSignaledEventAttributes;
    if (incoming?.signalName === 'releaseLock') {
      const lease = leases.find((l) => l.holder === payloadOf(incoming.input).requestId && l.released === null);
      if (lease) lease.released = at;
    }
  }
  return leases;
}

test('a second runbook on the same cluster waits, then runs after the first releases', async () => {
  const cluster = uniqueCluster();
  const first = await startProbe({ cluster, holdMs: 3000, waitSeconds: 60, leaseSeconds: 30 });
  await until('the first to hold the lock', async () => (await lockState(cluster)).holder?.workflowId === first.workflowId);
  const second = await startProbe({ cluster, holdMs: 10, waitSeconds: 60, leaseSeconds: 30 });
  await until('the second to queue', async () => (await lockState(cluster)).queue.length === 1);
  expect((await lockState(cluster)).queue[0]!.workflowId).toBe(second.workflowId);

  const [a, b] = (await Promise.all([first.result(), second.result()])) as ProbeResult[];
  expect(a!.status).toBe('done');
  expect(b!.status).toBe('done');
  expect(Date.parse(b!.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(a!.releasedAt!));
  const state = await lockState(cluster);
  expect(state).toMatchObject({ holder: null, queue: [], granted: 2, released: 2, expired: 0 });
});

test('a failover waits ahead of the runbooks already waiting, not ahead of the holder; runbook status says who went ahead of whom', async () => {
  const cluster = uniqueCluster();
  const holder = await startProbe({ cluster, runbook: 'upgradeCluster', holdMs: 4000, waitSeconds: 60, leaseSeconds: 30 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const restore = await startProbe({ cluster, runbook: 'restoreDatabase', holdMs: 10, waitSeconds: 60, leaseSeconds: 30 });
  await until('the restore to wait', async () => (await lockState(cluster)).queue.length === 1);
  const failover = await startProbe({ cluster, runbook: 'failover', holdMs: 10, waitSeconds: 60, leaseSeconds: 30, priority: 'emergency' });
  await until('the failover to wait', async () => (await lockState(cluster)).queue.length === 2);

  const state = await lockState(cluster);
  expect(state.holder?.workflowId).toBe(holder.workflowId);
  expect(state.queue.map((r) => r.workflowId)).toEqual([failover.workflowId, restore.workflowId]);
  const jumpedAt = state.queueJumps![0]!.at;
  const shown = await cli(['status', '--cluster', cluster], { TEMPORAL_ADDRESS: env.address });
  expect(shown.out.split('\n').slice(1, 4).map((line) => line.replace(/ since \S+$/, ''))).toEqual([
    `  waiting 1: failover ${failover.workflowId} (emergency)`,
    `  waiting 2: restoreDatabase ${restore.workflowId}`,
    `  emergency failover ${failover.workflowId} went ahead of ${restore.workflowId} at ${jumpedAt}`,
  ]);

  const [held, emergency, after] = (await Promise.all([holder.result(), failover.result(), restore.result()])) as ProbeResult[];
  expect(Date.parse(emergency!.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(held!.releasedAt!));
  expect(Date.parse(after!.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(emergency!.releasedAt!));
});

test('a holder past its maximum hold: one notification, the worker\'s metric, runbook status; it keeps the lock', async () => {
  const cluster = uniqueCluster();
  const webhook = await startRecordingWebhook();
  const profiles = path.join(mkdtempSync(path.join(os.tmpdir(), 'dbr-lock-')), 'clusters.yaml');
  writeFileSync(profiles, `clusters:\n  ${cluster}:\n    notify: { jsonWebhookUrl: '${webhook.url}/lock' }\n`);
  const metricsPort = await freePort();
  const taskQueue = `lock-overdue-${randomUUID()}`;
  const process1 = spawnWorkerProcess({ TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue, DBR_PROFILES: profiles, DBR_METRICS_ADDRESS: `127.0.0.1:${metricsPort}` });
  try {
    await process1.waitUntilPolling();
    const holder = await startProbe({ cluster, runbook: 'upgradeCluster', holdMs: 8000, waitSeconds: 60, leaseSeconds: 3, maxHoldSeconds: 2 }, taskQueue);
    await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
    const waiter = await startProbe({ cluster, runbook: 'switchover', holdMs: 10, waitSeconds: 60, leaseSeconds: 3 }, taskQueue);
    await until('the notification', () => Promise.resolve(webhook.events('/lock').length > 0));

    const state = await lockState(cluster);
    expect(state.holder?.workflowId).toBe(holder.workflowId);
    expect(state.queue.map((r) => r.workflowId)).toEqual([waiter.workflowId]);
    const shown = await cli(['status', '--cluster', cluster], { TEMPORAL_ADDRESS: env.address });
    expect(shown.out).toContain(`  HELD PAST ITS MAXIMUM: lock.maxHoldSeconds is 2; held longer since ${state.holder!.overdueSince}`);
    await until('the metric', async () => /^runbook_lock_overdue\{[^}]*cluster="[^"]+"[^}]*\} 1$/m.test(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()));
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics.split('\n').filter((l) => l.startsWith('runbook_lock_overdue{') && l.includes(`cluster="${cluster}"`) && l.includes('runbook="upgradeCluster"'))).toHaveLength(1);

    const [held, after] = (await Promise.all([holder.result(), waiter.result()])) as ProbeResult[];
    expect(held!.status).toBe('done');
    expect(Date.parse(after!.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(held!.releasedAt!));
    // Renewed several times past the maximum, reported once.
    expect(webhook.events('/lock')).toEqual([{ workflowId: holder.workflowId, kind: 'held too long' }]);
  } finally {
    await process1.kill();
    await webhook.close();
  }
});

test('past its wait budget a runbook fails, non-retryable, naming the holder and since when', async () => {
  const cluster = uniqueCluster();
  const holder = await startProbe({ cluster, runbook: 'upgrade', holdMs: 30_000, waitSeconds: 60, leaseSeconds: 30 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const grantedAt = (await lockState(cluster)).holder!.grantedAt;
  const waiter = await startProbe({ cluster, holdMs: 10, waitSeconds: 2, leaseSeconds: 30 });
  const failure = await failureOf(waiter.result());
  expect(failure.type).toBe('ClusterLocked');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toBe(`cluster ${cluster} is locked by upgrade ${holder.workflowId} since ${grantedAt}; waited 2s (lockWaitSeconds)`);
  // The failed waiter withdrew its request: it does not get the lock later.
  expect((await lockState(cluster)).queue).toEqual([]);
  const shown = await cli(['status', '--cluster', cluster], { TEMPORAL_ADDRESS: env.address });
  expect(shown.code).toBe(0);
  expect(shown.out).toContain(`cluster ${cluster}: locked by upgrade ${holder.workflowId} since ${grantedAt}`);
  await holder.terminate('test done');
});

test('with ifHeld skip a runbook does not queue: it is skipped and told who holds the lock', async () => {
  const cluster = uniqueCluster();
  const holder = await startProbe({ cluster, runbook: 'upgrade', holdMs: 5000, waitSeconds: 60, leaseSeconds: 30 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const backup = await startProbe({ cluster, runbook: 'backupDatabase', holdMs: 10, waitSeconds: 600, leaseSeconds: 30, ifHeld: 'skip' });
  expect(await backup.result()).toEqual({ status: 'skipped', holder: holder.workflowId });
  expect((await lockState(cluster)).queue).toEqual([]);
  await holder.result();
  // Once free, the same request is granted at once.
  const later = await startProbe({ cluster, runbook: 'backupDatabase', holdMs: 10, waitSeconds: 600, leaseSeconds: 30, ifHeld: 'skip' });
  expect((await later.result()) as ProbeResult).toMatchObject({ status: 'done' });
});

test('a holder terminated from outside loses the lock when its lease runs out, and the next runs', async () => {
  const cluster = uniqueCluster();
  const holder = await startProbe({ cluster, holdMs: 600_000, waitSeconds: 60, leaseSeconds: 3 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const next = await startProbe({ cluster, holdMs: 10, waitSeconds: 120, leaseSeconds: 30 });
  await until('the next to queue', async () => (await lockState(cluster)).queue.length === 1);
  await holder.terminate('operator terminated it');
  const result = (await next.result()) as ProbeResult;
  expect(result.status).toBe('done');
  expect(await lockState(cluster)).toMatchObject({ holder: null, granted: 2, released: 1, expired: 1 });
});

test('the worker killed while a runbook holds the lock: the lease survives the restart, the work completes, the lock is released once', async () => {
  const cluster = uniqueCluster();
  const taskQueue = `lock-kill-${randomUUID()}`;
  const workerEnv = { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue };
  let process1 = spawnWorkerProcess(workerEnv);
  await process1.waitUntilPolling();
  const holder = await startProbe({ cluster, holdMs: 8000, waitSeconds: 120, leaseSeconds: 3 }, taskQueue);
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const next = await startProbe({ cluster, holdMs: 10, waitSeconds: 120, leaseSeconds: 30 }, taskQueue);
  await until('the next to queue', async () => (await lockState(cluster)).queue.length === 1);

  await process1.kill('SIGKILL');
  // Longer than the lease: nobody can renew it or run the lock while no worker runs.
  await new Promise((r) => setTimeout(r, 5000));
  process1 = spawnWorkerProcess(workerEnv);
  await process1.waitUntilPolling();
  try {
    const held = (await holder.result()) as ProbeResult;
    const after = (await next.result()) as ProbeResult;
    expect(held.status).toBe('done');
    expect(Date.parse(after.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(held.releasedAt!));
    expect(await lockState(cluster)).toMatchObject({ holder: null, granted: 2, released: 2, expired: 0 });
    const leases = await leasesFromLockHistory(cluster);
    expect(leases.map((l) => l.holder.split('/')[2])).toEqual([holder.workflowId.split('/')[2], next.workflowId.split('/')[2]]);
    expect(leases.every((l) => l.released !== null)).toBe(true);
  } finally {
    await process1.kill();
  }
});

test('200 lock requests across 20 clusters at once: never two holders of one cluster', async () => {
  const clusters = Array.from({ length: 20 }, uniqueCluster);
  const handles = await Promise.all(
    Array.from({ length: 200 }, (_, i) => startProbe({ cluster: clusters[i % 20]!, holdMs: 100, waitSeconds: 600, leaseSeconds: 30 })),
  );
  const results = (await Promise.all(handles.map((h) => h.result()))) as ProbeResult[];
  expect(results.every((r) => r.status === 'done')).toBe(true);
  for (const cluster of clusters) {
    const leases = await leasesFromLockHistory(cluster);
    expect(leases).toHaveLength(10);
    for (let i = 1; i < leases.length; i += 1) {
      // The next grant is recorded only after the previous holder's release was received.
      expect(leases[i - 1]!.released).not.toBeNull();
      expect(leases[i]!.granted).toBeGreaterThanOrEqual(leases[i - 1]!.released!);
    }
    // The holders' own view agrees: their [granted, released] intervals never overlap.
    const own = results
      .filter((_, i) => clusters[i % 20] === cluster)
      .map((r) => [Date.parse(r.grantedAt!), Date.parse(r.releasedAt!)] as const)
      .sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < own.length; i += 1) expect(own[i]![0]).toBeGreaterThanOrEqual(own[i - 1]![1]);
  }
});

test('continue-as-new under load keeps the queue and its order', async () => {
  const cluster = uniqueCluster();
  // Start the lock with a small history budget so that it continues as new several times.
  await env.client.workflow.start('clusterLock', {
    taskQueue: worker.taskQueue,
    workflowId: lockWorkflowId(cluster),
    args: [{ cluster, maxHistoryEvents: 40 }],
  });
  const first = await startProbe({ cluster, holdMs: 3000, waitSeconds: 300, leaseSeconds: 30 });
  await until('the first to hold', async () => (await lockState(cluster)).holder?.workflowId === first.workflowId);
  const queued: WorkflowHandle[] = [];
  for (let i = 0; i < 12; i += 1) {
    const probe = await startProbe({ cluster, holdMs: 50, waitSeconds: 300, leaseSeconds: 30 });
    queued.push(probe);
    await until(`request ${i} to queue`, async () => (await lockState(cluster)).queue.length === i + 1);
  }
  const results = (await Promise.all([first, ...queued].map((h) => h.result()))) as ProbeResult[];
  const grantOrder = results.map((r, i) => [i, Date.parse(r.grantedAt!)] as const).sort((a, b) => a[1] - b[1]).map(([i]) => i);
  expect(grantOrder).toEqual(Array.from({ length: 13 }, (_, i) => i));

  const runs: string[] = [];
  for await (const run of env.client.workflow.list({ query: `WorkflowId = "${lockWorkflowId(cluster)}"` })) runs.push(run.status.name);
  expect(runs.filter((s) => s === 'CONTINUED_AS_NEW').length).toBeGreaterThanOrEqual(2);
  expect(await lockState(cluster)).toMatchObject({ holder: null, queue: [], granted: 13, released: 13 });
});
