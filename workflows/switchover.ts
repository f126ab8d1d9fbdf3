// switchover: a planned change of primary in a MariaDB GTID replication cluster. The old primary is
// made read-only, the replica applies everything the old primary had, is promoted, the old primary
// (and any other replica) follows it, routing moves, and a write on the new primary is seen on every
// replica. Every step has its compensation: a switchover that fails or is cancelled ends with the
// old primary writable and routing unchanged.
import { ApplicationFailure, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClusterPlan } from '../activities/cluster';
import type { SessionFacts } from '../activities/mysql';
import { kubernetesCall, lookup, mysqlCall, mysqlWait } from './activity-profiles';
import { Compensations, type CompensationReport } from './compensation';
import { parseGtidPosition, reaches } from './gtid';
import { assessHealth, gatherHealthFacts } from './health';
import { withClusterLock } from './lock';
import { planSwitchover } from './replication-plan';
import { failureMessage, RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export interface SwitchoverInput {
  cluster: string;
  /** The replica to promote; default: the most advanced replica of the primary. */
  newPrimary?: string;
  /** Overrides the profile's failover.writerGraceSeconds. */
  graceSeconds?: number;
  /** Overrides the profile's failover.catchUpTimeoutSeconds. */
  catchUpTimeoutSeconds?: number;
  lockWaitSeconds?: number;
}

export interface SwitchoverResult {
  cluster: string;
  oldPrimary: string;
  newPrimary: string;
  /** The GTID position of the old primary when it stopped taking writes: the new primary started from it. */
  position: string;
  killedSessions: SessionFacts[];
  /** Nodes now replicating from the new primary. */
  replicas: string[];
  routing: string;
  warnings: string[];
  summary: string;
}

export const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const { describeCluster } = proxyActivities<Activities>(lookup);
const { readReplicationState, listLongTransactions, makeWritable, promoteReplica, detachReplica, writeReplicationProbe, readReplicationProbe } =
  proxyActivities<Activities>(mysqlCall);
const { makeReadOnly, waitForGtid, replicateFrom } = proxyActivities<Activities>(mysqlWait);
const { setPodRole } = proxyActivities<Activities>(kubernetesCall);

const STEPS = [
  'read profile',
  'pre-flight',
  'make the primary read-only',
  'wait for the replica to catch up',
  'promote the replica',
  'point the old primary at the new one',
  'point the other replicas at the new primary',
  'move routing',
  'verify replication',
] as const;

function inSeconds(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString();
}

function podOf(plan: ClusterPlan, node: string): string {
  const pod = plan.mysql?.nodes.find((n) => n.name === node)?.pod;
  if (!pod) throw ApplicationFailure.nonRetryable(`routing: node ${node} has no pod in the profile`, 'ProfileIncomplete');
  return pod;
}

export async function switchover(input: SwitchoverInput): Promise<SwitchoverResult> {
  const v = new InputValidator(input, 'switchover', ['cluster', 'newPrimary', 'graceSeconds', 'catchUpTimeoutSeconds', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const requested = v.optionalString('newPrimary', NODE_NAME, 'a node name of the cluster profile');
  const graceInput = v.optionalNumber('graceSeconds', { min: 0, max: 600 });
  const catchUpInput = v.optionalNumber('catchUpTimeoutSeconds', { min: 1, max: 3600, integer: true });
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  v.done();

  const tracker = new RunbookTracker('switchover', cluster, STEPS);
  const undo = new Compensations(tracker);
  let rollback: CompensationReport | undefined;
  let failedStep: string | undefined;

  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      const locked = await withClusterLock(
        { cluster, runbook: 'switchover', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds },
        async () => {
          const nodes = plan.mysql?.nodes ?? [];
          const decision = await tracker.step(
            'pre-flight',
            async () => {
              const [facts, states] = await Promise.all([gatherHealthFacts(plan), Promise.all(nodes.map((n) => readReplicationState({ cluster, node: n.name })))]);
              const health = assessHealth(plan, facts, new Date().toISOString());
              const primary = states.find((s) => s.reachable && !s.error && !s.replication)?.node;
              const longTransactions = primary ? await listLongTransactions({ cluster, node: primary, olderThanSeconds: plan.failover.maxTransactionSeconds }) : [];
              const planned = planSwitchover({ plan, states, health, longTransactions, requested });
              if (!planned.ok) {
                throw ApplicationFailure.create({
                  type: 'PreflightFailed',
                  nonRetryable: true,
                  message: `switchover of ${cluster} refused: ${planned.reasons.join('; ')}`,
                  details: [{ reasons: planned.reasons }],
                });
              }
              return planned;
            },
            (d) => `${d.primary} → ${d.target}`,
          );
          const { primary: oldPrimary, target: newPrimary, otherReplicas } = decision;
          const grace = graceInput ?? plan.failover.writerGraceSeconds;
          const catchUp = catchUpInput ?? plan.failover.catchUpTimeoutSeconds;
          const runStep = async <T>(name: (typeof STEPS)[number], fn: () => Promise<T>, describe?: (r: T) => string | undefined): Promise<T> => {
            failedStep = name;
            const result = await tracker.step(name, fn, describe);
            failedStep = undefined;
            return result;
          };

          try {
            undo.add('give the old primary its writes back', () => makeWritable({ cluster, node: oldPrimary }));
            const fenced = await runStep(
              'make the primary read-only',
              () => makeReadOnly({ cluster, node: oldPrimary, graceSeconds: grace }),
              (r) => `${oldPrimary} read-only at ${r.gtidBinlogPos}${r.killed.length ? `, ${r.killed.length} session(s) killed` : ''}`,
            );

            const position = await runStep(
              'wait for the replica to catch up',
              async () => {
                // A client with READ ONLY ADMIN can still write: wait until the old primary's position holds still.
                let target = fenced.gtidBinlogPos;
                for (;;) {
                  await waitForGtid({ cluster, node: newPrimary, position: target, deadline: inSeconds(catchUp) });
                  const now = (await readReplicationState({ cluster, node: oldPrimary })).gtidBinlogPos ?? target;
                  if (now === target) return target;
                  target = now;
                }
              },
              (p) => `${newPrimary} has applied ${p}`,
            );

            undo.add('make the new primary a replica of the old one again', async () => {
              const [oldState, newState] = await Promise.all([readReplicationState({ cluster, node: oldPrimary }), readReplicationState({ cluster, node: newPrimary })]);
              if (!reaches(parseGtidPosition(oldState.gtidCurrentPos), parseGtidPosition(newState.gtidCurrentPos))) {
                throw ApplicationFailure.nonRetryable(
                  `cannot make ${newPrimary} a replica of ${oldPrimary} again: it holds transactions ${oldPrimary} lacks (${newState.gtidCurrentPos} against ${oldState.gtidCurrentPos}); both are left as they are for an operator`,
                  'RollbackUnsafe',
                );
              }
              await replicateFrom({ cluster, node: newPrimary, source: oldPrimary, deadline: inSeconds(catchUp) });
            });
            await runStep('promote the replica', () => promoteReplica({ cluster, node: newPrimary }), () => `${newPrimary} is writable and replicates from nobody`);

            undo.add('stop the old primary following the new one', async () => {
              // What reached the new primary since the promotion must reach the old one before it leads again.
              const newState = await readReplicationState({ cluster, node: newPrimary });
              await waitForGtid({ cluster, node: oldPrimary, position: newState.gtidBinlogPos ?? '', deadline: inSeconds(catchUp) });
              await detachReplica({ cluster, node: oldPrimary });
            });
            await runStep('point the old primary at the new one', () => replicateFrom({ cluster, node: oldPrimary, source: newPrimary, deadline: inSeconds(catchUp) }), () => `${oldPrimary} replicates from ${newPrimary}`);

            if (otherReplicas.length > 0) {
              undo.add('point the other replicas back at the old primary', () =>
                Promise.all(otherReplicas.map((node) => replicateFrom({ cluster, node, source: oldPrimary, deadline: inSeconds(catchUp) }))),
              );
              await runStep('point the other replicas at the new primary', () =>
                Promise.all(otherReplicas.map((node) => replicateFrom({ cluster, node, source: newPrimary, deadline: inSeconds(catchUp) }))),
              );
            } else {
              tracker.skip('point the other replicas at the new primary', 'no other replica');
            }

            let routing = 'not configured (the profile names no namespace and workload.roleLabel)';
            if (plan.routing) {
              const oldPod = podOf(plan, oldPrimary);
              const newPod = podOf(plan, newPrimary);
              undo.add('move routing back', async () => {
                await setPodRole({ cluster, pod: newPod, role: 'replica' });
                await setPodRole({ cluster, pod: oldPod, role: 'primary' });
              });
              // The old pod stops being primary first: at no moment do two pods say primary.
              await runStep('move routing', async () => {
                await setPodRole({ cluster, pod: oldPod, role: 'replica' });
                await setPodRole({ cluster, pod: newPod, role: 'primary' });
              });
              routing = `${plan.routing.roleLabel}=primary moved from pod ${oldPod} to pod ${newPod}`;
            } else {
              tracker.skip('move routing', routing);
            }

            const replicas = [oldPrimary, ...otherReplicas];
            await runStep(
              'verify replication',
              async () => {
                const probeId = `switchover/${workflowInfo().workflowId}/${workflowInfo().runId}`;
                const written = await writeReplicationProbe({ cluster, node: newPrimary, probeId });
                await Promise.all(
                  replicas.map(async (node) => {
                    await waitForGtid({ cluster, node, position: written.gtidBinlogPos, deadline: inSeconds(catchUp) });
                    const { found } = await readReplicationProbe({ cluster, node, probeId });
                    if (!found) throw ApplicationFailure.nonRetryable(`replica ${node} reached ${written.gtidBinlogPos} but has no probe row ${probeId}`, 'ReplicationBroken');
                  }),
                );
              },
              () => `a write on ${newPrimary} reached ${replicas.join(', ')}`,
            );
            undo.clear();
            const summary = `${newPrimary} is the primary of ${cluster} (was ${oldPrimary}) from ${position}; ${replicas.join(', ')} replicate from it; routing: ${routing}${
              fenced.killed.length ? `; ${fenced.killed.length} session(s) with uncommitted writes killed on ${oldPrimary}` : ''
            }`;
            return { cluster, oldPrimary, newPrimary, position, killedSessions: fenced.killed, replicas, routing, warnings: decision.warnings, summary } satisfies SwitchoverResult;
          } catch (err) {
            if (undo.pending === 0) throw err;
            rollback = await undo.run();
            const cause = failureMessage(err);
            const undone = rollback.failed.length === 0
              ? `rolled back: ${oldPrimary} is the writable primary again and routing is unchanged`
              : `ROLLBACK INCOMPLETE: ${rollback.failed.map((f) => `${f.step}: ${f.error}`).join('; ')}`;
            if (isCancellation(err)) throw err;
            throw ApplicationFailure.create({
              type: 'SwitchoverFailed',
              nonRetryable: true,
              message: `switchover of ${cluster} from ${oldPrimary} to ${newPrimary} failed at "${failedStep ?? 'unknown step'}": ${cause}; ${undone}`,
              details: [{ rollback }],
              cause: err instanceof Error ? err : undefined,
            });
          }
        },
      );
      if (locked.status !== 'done') throw ApplicationFailure.nonRetryable(`switchover of ${cluster} did not get the cluster lock`, 'ClusterLocked');
      return locked.value;
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
    (err) => {
      if (!rollback) return undefined;
      const summary = failureMessage(err);
      if (rollback.failed.length > 0) return { outcome: 'failed', summary };
      return { outcome: isCancellation(err) ? 'cancelled' : 'rolled back', summary: isCancellation(err) ? `cancelled; rolled back: the old primary is writable again and routing is unchanged` : summary };
    },
  );
}
