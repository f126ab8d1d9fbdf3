// refreshNodeAddresses: after pods restart with new IPs, bring the database's own catalog in line
// with what the Kubernetes API says, instead of a postStart hook per pod that races the others and
// runs before the catalog is reachable. The pod watcher starts it (signal-with-start) when an
// address changes; it waits for the changes to settle, so pods restarting together make one run,
// and refreshes again if more changes arrive while it works. A Schedule runs it as a safety net.
import { condition, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { addressRead, catalogWrite, lookup } from './activity-profiles';
import { planAddressUpdates, type AddressPlan } from './addresses';
import { podsChangedSignal } from './definitions';
import { withClusterLock } from './lock';
import { RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export interface RefreshNodeAddressesInput {
  cluster: string;
  /** Why it runs (shown in the report): the watcher says which pods moved; a schedule says so. */
  reason?: string;
  lockWaitSeconds?: number;
}

export interface RefreshRound extends AddressPlan {
  applied: string[];
  alreadyDone: string[];
  waitedFor: string[];
  withoutAddress: string[];
}

export interface RefreshNodeAddressesResult {
  cluster: string;
  reason: string;
  changedPods: string[];
  rounds: RefreshRound[];
  summary: string;
}

/** More rounds than this means the pods keep moving: the next change starts a new run. */
const MAX_ROUNDS = 5;

const { describeCluster } = proxyActivities<Activities>(lookup);
const { readPodAddresses, readRegisteredNodes } = proxyActivities<Activities>(addressRead);
const { applyAddressUpdates } = proxyActivities<Activities>(catalogWrite);

export async function refreshNodeAddresses(input: RefreshNodeAddressesInput): Promise<RefreshNodeAddressesResult> {
  const v = new InputValidator(input, 'refreshNodeAddresses', ['cluster', 'reason', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const reason = v.optionalString('reason', /^[\s\S]{1,500}$/, 'a text of at most 500 characters') ?? 'requested';
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 86400, integer: true });
  v.done();

  let changes = 0;
  const changedPods = new Set<string>();
  // Registered before the first await: the signal that started the run is not lost.
  setHandler(podsChangedSignal, ({ pods }) => {
    changes += 1;
    pods.forEach((p) => changedPods.add(p));
  });

  const tracker = new RunbookTracker('refreshNodeAddresses', cluster, ['read profile', 'settle', 'cluster lock', 'read pods', 'read catalog', 'apply']);
  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      const settings = plan.addressRefresh;
      const later = new InputValidator(input, 'refreshNodeAddresses', ['cluster', 'reason', 'lockWaitSeconds']);
      if (!settings || !plan.workload) later.fail('cluster', `the profile of ${cluster} needs addressRefresh and workload sections`);
      later.done();
      const quietMs = settings!.quietSeconds * 1000;

      const settle = () =>
        tracker.step('settle', async () => {
          // Until no pod has changed for quietSeconds: pods restarting together make one round.
          for (;;) {
            const seen = changes;
            if (!(await condition(() => changes !== seen, quietMs))) return changes;
          }
        }, () => `no pod change for ${settings!.quietSeconds}s`);

      await settle();
      tracker.begin('cluster lock');
      const rounds: RefreshRound[] = [];
      const held = await withClusterLock(
        { cluster, runbook: 'refreshNodeAddresses', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds },
        async (lease) => {
          tracker.end('cluster lock', 'done', `held since ${lease.grantedAt}`);
          for (let round = 1; round <= MAX_ROUNDS; round += 1) {
            const handled = changes;
            const pods = await tracker.step('read pods', () => readPodAddresses({ cluster }), (r) =>
              `${r.pods.length} pod(s) with an address${r.waitedFor.length ? `; waited for ${r.waitedFor.join(', ')}` : ''}${r.withoutAddress.length ? `; still none: ${r.withoutAddress.join(', ')}` : ''}`,
            );
            const registered = await tracker.step('read catalog', () => readRegisteredNodes({ cluster }), (r) => `${r.length} registered node(s)`);
            const planned = planAddressUpdates(pods.pods, registered);
            const result = planned.updates.length > 0
              ? await tracker.step('apply', () => applyAddressUpdates({ cluster, updates: planned.updates }), (r) => `updated ${r.applied.join(', ') || 'nothing'}`)
              : (tracker.skip('apply', 'every address matches'), { applied: [], alreadyDone: [] });
            rounds.push({ ...planned, ...result, waitedFor: pods.waitedFor, withoutAddress: pods.withoutAddress });
            if (changes === handled) return;
            // Pods moved while this round ran: settle again and read again.
            await settle();
          }
        },
      );
      if (held.status !== 'done') throw new Error('a refresh waits for the lock; it is never skipped');
      return { cluster, reason, changedPods: [...changedPods].sort(), rounds, summary: summarize(cluster, rounds) };
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
  );
}

function summarize(cluster: string, rounds: readonly RefreshRound[]): string {
  const updated = [...new Set(rounds.flatMap((r) => r.applied))];
  const last = rounds[rounds.length - 1];
  const notes: string[] = [];
  if (last?.withoutAddress.length) notes.push(`no address yet, not written: ${last.withoutAddress.join(', ')}`);
  if (last?.unregistered.length) notes.push(`not in the catalog: ${last.unregistered.join(', ')}`);
  if (last?.withoutPod.length) notes.push(`in the catalog without a pod: ${last.withoutPod.join(', ')}`);
  const head = updated.length ? `${cluster}: updated ${updated.length} node address(es): ${updated.join(', ')}` : `${cluster}: every registered address already matches its pod`;
  return notes.length ? `${head} (${notes.join('; ')})` : head;
}
