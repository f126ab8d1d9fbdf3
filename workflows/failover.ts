// failover: the primary of a MariaDB GTID replication cluster is down. The most advanced replica
// (by GTID, refusing diverged or lagging candidates unless forced) applies what it received, is
// promoted, routing moves to it, the old primary is fenced (its pod is no longer routed to, and it
// comes back read-only should it return), and the other replicas follow the new primary.
//
// Before the promotion, the only change (replicas stop receiving) is undone on failure or
// cancellation. From the promotion on, the runbook rolls forward: there is no old primary to go
// back to, and stopping halfway (promoted, but routing still pointing at a dead server and the old
// primary unfenced) is the worst place to stop. Those steps run to their end even when cancelled,
// and one that fails (routing, fencing) does not stop the others: the run then ends
// FailoverIncomplete, its message saying what was done and what was not.
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClusterPlan } from '../activities/cluster';
import { kubernetesCall, lookup, mysqlCall, mysqlWait, nodeControl } from './activity-profiles';
import { Compensations, type CompensationReport } from './compensation';
import { withClusterLock } from './lock';
import { describeCandidate, planFailover, type CandidateRow } from './replication-plan';
import { NODE_NAME } from './switchover';
import { failureMessage, RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export interface FailoverInput {
  cluster: string;
  /** The replica to promote; default: the most advanced. */
  newPrimary?: string;
  /** Promote although replicas diverged, the chosen one is behind another, lags or the old primary cannot be fenced. */
  force?: boolean;
  /** Overrides the profile's failover.catchUpTimeoutSeconds. */
  catchUpTimeoutSeconds?: number;
  lockWaitSeconds?: number;
}

export interface FailoverResult {
  cluster: string;
  oldPrimary: string;
  newPrimary: string;
  /** Why this replica: the decision and every candidate's position. */
  reason: string;
  candidates: CandidateRow[];
  position: string;
  replicas: string[];
  routing: string;
  fencing: string;
  /** Replicas that could not follow the new primary, and other things an operator must look at. */
  problems: string[];
  warnings: string[];
  summary: string;
}

export const FENCED_ROLE = 'fenced';

const { describeCluster } = proxyActivities<Activities>(lookup);
const { readReplicationState, promoteReplica, resumeReplication, writeReplicationProbe, readReplicationProbe } = proxyActivities<Activities>(mysqlCall);
const { applyRelayLog, waitForGtid, replicateFrom, makeReadOnly } = proxyActivities<Activities>(mysqlWait);
const { setPodRole } = proxyActivities<Activities>(kubernetesCall);
const { controlNode } = proxyActivities<Activities>(nodeControl);

const STEPS = [
  'read profile',
  'choose the new primary',
  'apply what the new primary received',
  'promote the replica',
  'move routing',
  'fence the old primary',
  'point the other replicas at the new primary',
  'verify replication',
] as const;

function inSeconds(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString();
}

function podOf(plan: ClusterPlan, node: string): string | undefined {
  return plan.mysql?.nodes.find((n) => n.name === node)?.pod;
}

export async function failover(input: FailoverInput): Promise<FailoverResult> {
  const v = new InputValidator(input, 'failover', ['cluster', 'newPrimary', 'force', 'catchUpTimeoutSeconds', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const requested = v.optionalString('newPrimary', NODE_NAME, 'a node name of the cluster profile');
  const force = v.optionalBoolean('force', false);
  const catchUpInput = v.optionalNumber('catchUpTimeoutSeconds', { min: 1, max: 3600, integer: true });
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  v.done();

  const tracker = new RunbookTracker('failover', cluster, STEPS);
  const undo = new Compensations(tracker);
  let rollback: CompensationReport | undefined;

  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      const catchUp = catchUpInput ?? plan.failover.catchUpTimeoutSeconds;
      const locked = await withClusterLock(
        { cluster, runbook: 'failover', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds, priority: 'emergency' },
        async () => {
          const nodes = plan.mysql?.nodes ?? [];
          const fenceable = plan.mysql?.control?.actions.includes('fence') || plan.mysql?.control?.kind === 'kubernetes';
          const decision = await tracker.step(
            'choose the new primary',
            async () => {
              const states = await Promise.all(nodes.map((n) => readReplicationState({ cluster, node: n.name })));
              const planned = planFailover({ plan, states, force, requested });
              if (planned.decision === 'refuse') {
                throw ApplicationFailure.create({
                  type: 'FailoverRefused',
                  nonRetryable: true,
                  message: `failover of ${cluster} refused: ${planned.reason}${planned.table.length ? `. Replicas: ${planned.table.map(describeCandidate).join('; ')}` : ''}`,
                  details: [planned],
                });
              }
              if (!fenceable) {
                const why = `the profile's mysql.control has no fence command: the old primary ${planned.oldPrimary} would come back writable`;
                if (!force) throw ApplicationFailure.create({ type: 'FailoverRefused', nonRetryable: true, message: `failover of ${cluster} refused: ${why}; set force to fail over anyway` });
                planned.warnings.push(`forced: ${why}`);
              }
              if (plan.routing) {
                const missing = [planned.candidate, planned.oldPrimary].filter((n) => !podOf(plan, n));
                if (missing.length) throw ApplicationFailure.nonRetryable(`failover of ${cluster} refused: routing: node(s) ${missing.join(', ')} have no pod in the profile`, 'FailoverRefused');
              }
              return planned;
            },
            (d) => d.reason,
          );
          const { oldPrimary, candidate: newPrimary, otherReplicas } = decision;
          const replicas = [newPrimary, ...otherReplicas];

          let position: string;
          try {
            undo.add('let the replicas receive again', () => Promise.all(replicas.map((node) => resumeReplication({ cluster, node }))));
            position = await tracker.step(
              'apply what the new primary received',
              async () => {
                const [applied] = await Promise.all([
                  applyRelayLog({ cluster, node: newPrimary, deadline: inSeconds(catchUp) }),
                  // The others stop receiving too: an old primary that comes back must not feed them transactions the new one lacks.
                  ...otherReplicas.map((node) => applyRelayLog({ cluster, node, deadline: inSeconds(catchUp) }).catch(() => undefined)),
                ]);
                return applied.position;
              },
              (p) => `${newPrimary} at ${p}`,
            );
          } catch (err) {
            rollback = await undo.run();
            if (isCancellation(err)) throw err;
            throw ApplicationFailure.create({
              type: 'FailoverFailed',
              nonRetryable: true,
              message: `failover of ${cluster} failed before the promotion: ${failureMessage(err)}; nothing was promoted, the replicas receive again`,
              cause: err instanceof Error ? err : undefined,
            });
          }
          undo.clear();

          // From here on: roll forward, and do not stop halfway for a cancellation.
          return CancellationScope.nonCancellable(async () => {
            const problems: string[] = [];
            await tracker.step('promote the replica', () => promoteReplica({ cluster, node: newPrimary }), () => `${newPrimary} is writable`);

            let routing = 'not configured (the profile names no namespace and workload.roleLabel)';
            let routingError: string | undefined;
            if (plan.routing) {
              const label = plan.routing.roleLabel;
              const newPod = podOf(plan, newPrimary)!;
              const oldPod = podOf(plan, oldPrimary)!;
              // A routing failure must not stop the fence and the replicas (the new primary already
              // takes writes): it is reported, with the rest, as FailoverIncomplete at the end.
              routing = await tracker
                .step('move routing', async () => {
                  // The old pod first, so that no client is sent to it; failing, it still must not keep clients from the new primary.
                  const notFenced = await setPodRole({ cluster, pod: oldPod, role: FENCED_ROLE }).then(
                    () => undefined,
                    (err: unknown) => failureMessage(err),
                  );
                  await setPodRole({ cluster, pod: newPod, role: 'primary' });
                  if (notFenced) throw ApplicationFailure.nonRetryable(`${label}=primary is on pod ${newPod}, but pod ${oldPod} could not be set to ${label}=${FENCED_ROLE}: ${notFenced}`, 'RoutingIncomplete');
                })
                .then(
                  () => `${label}=primary on pod ${newPod}; pod ${oldPod} is ${label}=${FENCED_ROLE}`,
                  (err: unknown) => {
                    routingError = failureMessage(err);
                    return `NOT moved as planned: ${routingError}`;
                  },
                );
            } else {
              tracker.skip('move routing', routing);
            }

            let fenceError: string | undefined;
            const fencing = await tracker
              .step('fence the old primary', async () => {
                const done: string[] = [];
                if (fenceable) {
                  await controlNode({ cluster, node: oldPrimary, action: 'fence' });
                  done.push(plan.mysql?.control?.kind === 'kubernetes' ? `pod annotated read-only` : 'starts read-only from now on');
                }
                // Back already? Then it is read-only now, not only at its next start.
                const now = await readReplicationState({ cluster, node: oldPrimary });
                if (now.reachable) {
                  await makeReadOnly({ cluster, node: oldPrimary, graceSeconds: 0 });
                  done.push('is reachable again and was made read-only');
                }
                return done.length ? `${oldPrimary} ${done.join(', ')}` : `${oldPrimary} is not fenced at the database (no fence command; forced)`;
              })
              .catch((err: unknown) => {
                // The other steps still run: routing already excludes it, and the replicas need their new primary.
                fenceError = failureMessage(err);
                return `${oldPrimary} is NOT fenced: ${fenceError}`;
              });

            const following: string[] = [];
            if (otherReplicas.length > 0) {
              await tracker.step(
                'point the other replicas at the new primary',
                async () => {
                  await Promise.all(
                    otherReplicas.map((node) =>
                      replicateFrom({ cluster, node, source: newPrimary, deadline: inSeconds(catchUp) }).then(
                        () => following.push(node),
                        (err: unknown) => problems.push(`${node} does not follow ${newPrimary}: ${failureMessage(err)}`),
                      ),
                    ),
                  );
                  if (problems.length) throw ApplicationFailure.nonRetryable(problems.join('; '), 'ReplicationBroken');
                },
                () => `${otherReplicas.join(', ')} replicate from ${newPrimary}`,
              ).catch(() => undefined);
            } else {
              tracker.skip('point the other replicas at the new primary', 'no other replica');
            }

            if (following.length > 0) {
              await tracker.step(
                'verify replication',
                async () => {
                  const probeId = `failover/${workflowInfo().workflowId}/${workflowInfo().runId}`;
                  const written = await writeReplicationProbe({ cluster, node: newPrimary, probeId });
                  await Promise.all(
                    following.map(async (node) => {
                      await waitForGtid({ cluster, node, position: written.gtidBinlogPos, deadline: inSeconds(catchUp) });
                      if (!(await readReplicationProbe({ cluster, node, probeId })).found) throw ApplicationFailure.nonRetryable(`replica ${node} has no probe row ${probeId}`, 'ReplicationBroken');
                    }),
                  );
                },
                () => `a write on ${newPrimary} reached ${following.join(', ')}`,
              ).catch((err: unknown) => problems.push(`verification: ${failureMessage(err)}`));
            } else {
              tracker.skip('verify replication', 'no replica follows the new primary');
            }

            const summary = `${newPrimary} is the primary of ${cluster} (${oldPrimary} was down); ${decision.reason}; routing: ${routing}; fencing: ${fencing}${
              following.length ? `; ${following.join(', ')} follow it` : ''
            }${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : ''}`;
            if (fenceError || routingError) {
              throw ApplicationFailure.create({ type: 'FailoverIncomplete', nonRetryable: true, message: `failover of ${cluster}: ${summary}` });
            }
            return {
              cluster,
              oldPrimary,
              newPrimary,
              reason: decision.reason,
              candidates: decision.table,
              position,
              replicas: following,
              routing,
              fencing,
              problems,
              warnings: decision.warnings,
              summary,
            } satisfies FailoverResult;
          });
        },
      );
      if (locked.status !== 'done') throw ApplicationFailure.nonRetryable(`failover of ${cluster} did not get the cluster lock`, 'ClusterLocked');
      return locked.value;
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
    (err) => (rollback && !isCancellation(err) && rollback.failed.length === 0 ? { outcome: 'rolled back', summary: failureMessage(err) } : undefined),
  );
}
