// The cluster lock's rare branches on Temporal's time-skipping test server: hours of workflow time
// in seconds, and interleavings a real-time test could only hope for. The lock and the probes are
// the production workflow code; the activities are the project's own (signals and descriptions
// through the test server's client, notifications to a webhook on loopback). The same behaviours
// on the real dev server are in test/integration/clusterLock.test.ts.
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createProfileSource } from '../../activities/cluster';
import { createNotifyActivities } from '../../activities/notify';
import { parseProfiles } from '../../activities/profile';
import { createSecretResolver } from '../../activities/secrets';
import { createTemporalActivities } from '../../activities/temporal';
import { getLockStateQuery, lockWorkflowId, requestLockSignal, type LockRequest, type LockState } from '../../workflows/definitions';
import { cli } from '../helpers/cli';
import { startTimeSkipping, startTimeSkippingWorker, type TimeSkippingWorker } from '../helpers/time-skipping';
import { startRecordingWebhook, type RecordingWebhook } from '../helpers/webhook';
import type { LockProbeInput } from './lockProbe';
import { SLOW_GRANT_CLUSTER_PREFIX } from './slow-grants';

jest.setTimeout(60_000);

const HISTORIES_DIR = path.join(__dirname, '..', 'histories');
const MAX_HOLD_CLUSTER = `max-hold-${randomUUID().slice(0, 8)}`;

let env: TestWorkflowEnvironment;
let webhook: RecordingWebhook;
let worker: TimeSkippingWorker;

function activities() {
  const profiles = parseProfiles(`clusters:\n  ${MAX_HOLD_CLUSTER}:\n    notify: { jsonWebhookUrl: '${webhook.url}/hooks/lock' }\n`, 'test profile', __dirname);
  return {
    ...createTemporalActivities({ client: env.client }),
    ...createNotifyActivities({ profiles: createProfileSource(profiles, 'test profile'), secrets: createSecretResolver({ env: {} }) }),
  };
}

beforeAll(async () => {
  env = await startTimeSkipping();
  webhook = await startRecordingWebhook();
  worker = await startTimeSkippingWorker(env, activities());
});
afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await webhook?.close();
});

type ProbeResult = { status: string; grantedAt?: string; releasedAt?: string; holder?: string | null };

function uniqueCluster(prefix = 'c-'): string {
  return `${prefix}${randomUUID().slice(0, 8)}`;
}

function startProbe(input: LockProbeInput, taskQueue = worker.taskQueue): Promise<WorkflowHandle> {
  return env.client.workflow.start('lockProbe', { taskQueue, workflowId: `lockProbe/${input.cluster}/${randomUUID()}`, args: [input] });
}

function lockState(cluster: string): Promise<LockState> {
  return env.client.workflow.getHandle(lockWorkflowId(cluster)).query(getLockStateQuery);
}

/** Polls in real time (the test server's clock stands still unless a test awaits a result or sleeps). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The payloads of the signals named `name` that the run received, from its history. */
async function signalsReceived(handle: WorkflowHandle, name: string): Promise<unknown[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.workflowExecutionSignaledEventAttributes)
    .filter((a) => a?.signalName === name)
    .map((a) => JSON.parse(Buffer.from(a!.input!.payloads![0]!.data!).toString()) as unknown);
}

/**
 * One result at a time: each wait lets the test server skip time, and waits that overlap unbalance
 * its time-skipping lock ("Unbalanced lock and unlock calls").
 */
async function resultsInTurn(handles: WorkflowHandle[]): Promise<ProbeResult[]> {
  const results: ProbeResult[] = [];
  for (const handle of handles) results.push((await handle.result()) as ProbeResult);
  return results;
}

async function failedSignalsSent(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.signalExternalWorkflowExecutionFailedEventAttributes).length;
}

test('an emergency request goes ahead of every waiting non-emergency request, never ahead of the holder; the jump is recorded', async () => {
  const cluster = uniqueCluster();
  const holder = await startProbe({ cluster, runbook: 'upgradeCluster', holdMs: 3_600_000, waitSeconds: 36_000, leaseSeconds: 120 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const backup = await startProbe({ cluster, runbook: 'restoreDatabase', holdMs: 60_000, waitSeconds: 36_000, leaseSeconds: 120 });
  await until('the restore to wait', async () => (await lockState(cluster)).queue.length === 1);
  const switchover = await startProbe({ cluster, runbook: 'switchover', holdMs: 60_000, waitSeconds: 36_000, leaseSeconds: 120 });
  await until('two requests to wait', async () => (await lockState(cluster)).queue.length === 2);
  const failover = await startProbe({ cluster, runbook: 'failover', holdMs: 60_000, waitSeconds: 36_000, leaseSeconds: 120, priority: 'emergency' });
  await until('the failover to wait', async () => (await lockState(cluster)).queue.length === 3);
  const recovery = await startProbe({ cluster, runbook: 'galeraRecover', holdMs: 60_000, waitSeconds: 36_000, leaseSeconds: 120, priority: 'emergency' });
  await until('the recovery to wait', async () => (await lockState(cluster)).queue.length === 4);

  const state = await lockState(cluster);
  // The holder keeps the lock: an emergency never takes it from a runbook in the middle of its work.
  expect(state.holder?.workflowId).toBe(holder.workflowId);
  expect(state.queue.map((r) => r.workflowId)).toEqual([failover.workflowId, recovery.workflowId, backup.workflowId, switchover.workflowId]);
  expect(state.queueJumps?.map((j) => [j.workflowId, j.runbook, j.ahead])).toEqual([
    [failover.workflowId, 'failover', [backup.workflowId, switchover.workflowId]],
    [recovery.workflowId, 'galeraRecover', [backup.workflowId, switchover.workflowId]],
  ]);

  const results = await resultsInTurn([holder, failover, recovery, backup, switchover]);
  const granted = results.map((r) => Date.parse(r.grantedAt!));
  expect([...granted].sort((a, b) => a - b)).toEqual(granted);
  expect(await lockState(cluster)).toMatchObject({ holder: null, queue: [], granted: 5, released: 5 });
});

test('past its maximum hold the holder is reported once (webhook, lock state, runbook status) and keeps the lock', async () => {
  const cluster = MAX_HOLD_CLUSTER;
  const holder = await startProbe({ cluster, runbook: 'upgradeCluster', holdMs: 3 * 3_600_000, waitSeconds: 36_000, leaseSeconds: 120, maxHoldSeconds: 3600 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const waiter = await startProbe({ cluster, runbook: 'failover', holdMs: 1000, waitSeconds: 36_000, leaseSeconds: 120, priority: 'emergency' });
  await until('the failover to wait', async () => (await lockState(cluster)).queue.length === 1);
  const grantedAt = (await lockState(cluster)).holder!.grantedAt;

  await env.sleep('90 minutes');
  await until('the notification', () => Promise.resolve(webhook.events('/hooks/lock').length > 0));
  const state = await lockState(cluster);
  expect(state.holder).toMatchObject({ workflowId: holder.workflowId, maxHoldSeconds: 3600 });
  expect(Date.parse(state.holder!.overdueSince!) - Date.parse(grantedAt)).toBe(3_600_000);
  expect(state.queue.map((r) => r.workflowId)).toEqual([waiter.workflowId]);
  expect(state.overdue).toBe(1);
  const shown = await cli(['status', '--cluster', cluster], { TEMPORAL_ADDRESS: env.address });
  expect(shown.out).toContain(`cluster ${cluster}: locked by upgradeCluster ${holder.workflowId} since ${grantedAt}`);
  expect(shown.out).toContain(`  HELD PAST ITS MAXIMUM: lock.maxHoldSeconds is 3600; held longer since ${state.holder!.overdueSince} (it keeps the lock: end or cancel it to free the cluster)`);
  expect(shown.out).toContain(`  waiting 1: failover ${waiter.workflowId} (emergency) since`);

  // Another hour: still held, and reported once only.
  await env.sleep('1 hour');
  expect((await lockState(cluster)).holder?.workflowId).toBe(holder.workflowId);
  const [held, after] = await resultsInTurn([holder, waiter]);
  expect(Date.parse(after!.grantedAt!)).toBeGreaterThanOrEqual(Date.parse(held!.releasedAt!));
  const received = webhook.received.filter((r) => r.path === '/hooks/lock');
  expect(received).toHaveLength(1);
  expect(received[0]!.body).toMatchObject({ cluster, runbook: 'upgradeCluster', workflowId: holder.workflowId, kind: 'held too long' });
  expect(received[0]!.body.summary).toBe(
    `holds the cluster lock since ${grantedAt}, past lock.maxHoldSeconds (3600 s); waiting: failover ${waiter.workflowId} (emergency). It keeps the lock until it ends: finish, cancel or terminate it to free the cluster`,
  );
});

test('a lease that runs out: a holder that still runs keeps the lock, a terminated one loses it to the next', async () => {
  const cluster = uniqueCluster();
  // A holder that never renews: RUNNING, as a runbook is whose workers are all down.
  const holder = await env.client.workflow.start('silentHolder', { taskQueue: worker.taskQueue, workflowId: `silentHolder/${cluster}` });
  const request: LockRequest = {
    requestId: `${holder.workflowId}/${holder.firstExecutionRunId}`,
    workflowId: holder.workflowId,
    runId: holder.firstExecutionRunId,
    runbook: 'upgradeCluster',
    requestedAt: new Date().toISOString(),
    leaseSeconds: 60,
    ifHeld: 'wait',
  };
  await env.client.workflow.signalWithStart('clusterLock', { taskQueue: worker.taskQueue, workflowId: lockWorkflowId(cluster), args: [{ cluster }], signal: requestLockSignal, signalArgs: [request] });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const next = await startProbe({ cluster, holdMs: 1000, waitSeconds: 36_000, leaseSeconds: 60 });
  await until('the next to wait', async () => (await lockState(cluster)).queue.length === 1);

  await env.sleep('5 minutes');
  expect(await lockState(cluster)).toMatchObject({ holder: { workflowId: holder.workflowId }, expired: 0 });
  await holder.terminate('operator terminated it');
  expect(((await next.result()) as ProbeResult).status).toBe('done');
  expect(await lockState(cluster)).toMatchObject({ holder: null, granted: 2, released: 1, expired: 1 });
});

test('a renewal that fails once does not end the renewals: the lock, restarted with its state, hears from the holder again', async () => {
  const cluster = uniqueCluster();
  const holder = await startProbe({ cluster, holdMs: 36_000_000, waitSeconds: 600, leaseSeconds: 30 });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const state = await lockState(cluster);
  // The lock workflow is gone for a while (an operator terminated it): the next renewal signal fails.
  await env.client.workflow.getHandle(lockWorkflowId(cluster)).terminate('operator restarts the lock');
  await env.sleep('15 seconds');
  await until('a renewal to fail', async () => (await failedSignalsSent(holder)) > 0);

  const restarted = await env.client.workflow.start('clusterLock', { taskQueue: worker.taskQueue, workflowId: lockWorkflowId(cluster), args: [{ cluster, state }] });
  await env.sleep('30 seconds');
  await until('a renewal to reach the restarted lock', async () => (await signalsReceived(restarted, 'renewLease')).length > 0, 10_000);
  expect(await signalsReceived(restarted, 'renewLease')).toContainEqual({ requestId: state.holder!.requestId });
  await holder.cancel();
});

test('a "skip if held" request that arrives while the lock continues as new is still answered', async () => {
  const cluster = uniqueCluster(SLOW_GRANT_CLUSTER_PREFIX);
  // A small history budget: the lock continues as new right after each grant below.
  await env.client.workflow.start('clusterLock', { taskQueue: worker.taskQueue, workflowId: lockWorkflowId(cluster), args: [{ cluster, maxHistoryEvents: 12 }] });
  const first = await startProbe({ cluster, holdMs: 36_000_000, waitSeconds: 36_000, leaseSeconds: 7200 });
  await until('the first to be chosen', async () => (await lockState(cluster)).holder?.workflowId === first.workflowId);
  await env.sleep('61 minutes'); // the slow grant reaches it
  await until('the first to hold', async () => (await signalsReceived(first, 'lockGranted')).length === 1);
  const second = await startProbe({ cluster, holdMs: 1000, waitSeconds: 36_000, leaseSeconds: 7200 });
  await until('the second to wait', async () => (await lockState(cluster)).queue.length === 1);
  await first.cancel();
  // The lock has chosen the second and waits on its slow grant; then it will continue as new.
  await until('the second to be chosen', async () => (await lockState(cluster)).holder?.workflowId === second.workflowId);
  const backup = await startProbe({ cluster, runbook: 'backupDatabase', holdMs: 1000, waitSeconds: 36_000, leaseSeconds: 7200, ifHeld: 'skip' });
  await until('the lock to receive the backup\'s request', async () =>
    (await signalsReceived(env.client.workflow.getHandle(lockWorkflowId(cluster)), 'requestLock')).some((r) => (r as { workflowId: string }).workflowId === backup.workflowId),
  );

  // Before pending denials were carried across continue-as-new, the backup waited out its budget and failed.
  const answered = await backup.result().then(
    (r) => r as ProbeResult,
    (err: unknown) => {
      if (err instanceof WorkflowFailedError) return { status: `failed: ${err.cause?.message}` };
      throw err;
    },
  );
  expect(answered).toEqual({ status: 'skipped', holder: second.workflowId });
  expect(((await second.result()) as ProbeResult).status).toBe('done');
});

test("a lock's life: a grant, a denial, a lease run out and extended, a holder terminated, the next granted, idle end", async () => {
  const cluster = uniqueCluster('life-');
  const holder = await env.client.workflow.start('silentHolder', { taskQueue: worker.taskQueue, workflowId: `silentHolder/${cluster}` });
  const request: LockRequest = {
    requestId: `${holder.workflowId}/${holder.firstExecutionRunId}`,
    workflowId: holder.workflowId,
    runId: holder.firstExecutionRunId,
    runbook: 'upgradeCluster',
    requestedAt: new Date().toISOString(),
    leaseSeconds: 60,
    ifHeld: 'wait',
  };
  const lock = await env.client.workflow.signalWithStart('clusterLock', {
    taskQueue: worker.taskQueue,
    workflowId: lockWorkflowId(cluster),
    args: [{ cluster, idleSeconds: 600 }],
    signal: requestLockSignal,
    signalArgs: [request],
  });
  await until('the holder to hold', async () => (await lockState(cluster)).holder?.workflowId === holder.workflowId);
  const skipped = await startProbe({ cluster, runbook: 'backupDatabase', holdMs: 1000, waitSeconds: 600, leaseSeconds: 60, ifHeld: 'skip' });
  expect(await skipped.result()).toEqual({ status: 'skipped', holder: holder.workflowId });
  const next = await startProbe({ cluster, runbook: 'switchover', holdMs: 300_000, waitSeconds: 36_000, leaseSeconds: 60 });
  await until('the next to wait', async () => (await lockState(cluster)).queue.length === 1);
  await env.sleep('3 minutes');
  await holder.terminate('operator terminated it');
  expect(((await next.result()) as ProbeResult).status).toBe('done');
  expect(await lock.result()).toMatchObject({ holder: null, queue: [], granted: 2, released: 1, expired: 1 });

  if (process.env.DBR_RECORD_HISTORIES === '1') {
    // Replayed by test/unit/replay.test.ts: a lock in flight must survive a deploy of the lock's code.
    const file = 'clusterLock-life.binpb';
    writeFileSync(path.join(HISTORIES_DIR, file), temporal.api.history.v1.History.encode(await lock.fetchHistory()).finish());
    const index = path.join(HISTORIES_DIR, 'workflow-ids.json');
    const ids = JSON.parse(readFileSync(index, 'utf8')) as Record<string, string>;
    ids[file] = lock.workflowId;
    writeFileSync(index, `${JSON.stringify(Object.fromEntries(Object.entries(ids).sort()), null, 2)}\n`);
  }
});
