// vitessDrain: the Vitess operator's drain protocol. The primary tablet's pod is annotated
// `drain.planetscale.com/started=<reason>`; the operator's drain controller reparents the shard
// away from it; once another pod's tablet-type label says primary, the annotation is removed. The
// annotation is removed however the runbook ends: success, failure, timeout or cancellation.
import { ApplicationFailure, CancellationScope, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { kubernetesCall, kubernetesWait, lookup } from './activity-profiles';
import { withClusterLock } from './lock';
import { failureMessage, RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export const DRAIN_ANNOTATION = 'drain.planetscale.com/started';

export interface VitessDrainInput {
  cluster: string;
  /** The annotation's value, shown by the operator; default "db-runbooks <workflow id>". */
  reason?: string;
  /** Overrides the profile's failover.drainTimeoutSeconds. */
  timeoutSeconds?: number;
  lockWaitSeconds?: number;
}

export interface VitessDrainResult {
  cluster: string;
  drainedPod: string;
  newPrimaryPod: string;
  annotationRemoved: boolean;
  summary: string;
}

const { describeCluster } = proxyActivities<Activities>(lookup);
const { listPods, annotatePod, removePodAnnotation } = proxyActivities<Activities>(kubernetesCall);
const { waitForPodRole } = proxyActivities<Activities>(kubernetesWait);

const STEPS = ['read profile', 'find the primary tablet', 'annotate it for drain', 'wait for the operator to move the primary', 'remove the annotation'] as const;

export async function vitessDrain(input: VitessDrainInput): Promise<VitessDrainResult> {
  const v = new InputValidator(input, 'vitessDrain', ['cluster', 'reason', 'timeoutSeconds', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const reasonInput = v.optionalString('reason', /^[\x20-\x7e]{1,256}$/, 'printable text of at most 256 characters');
  const timeoutInput = v.optionalNumber('timeoutSeconds', { min: 1, max: 24 * 3600, integer: true });
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  v.done();

  const tracker = new RunbookTracker('vitessDrain', cluster, STEPS);
  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      if (!plan.routing) {
        throw ApplicationFailure.nonRetryable(`cluster ${cluster}: vitessDrain needs namespace and workload.roleLabel (the tablet-type label) in the profile`, 'ProfileIncomplete');
      }
      const { roleLabel } = plan.routing;
      const timeoutSeconds = timeoutInput ?? plan.failover.drainTimeoutSeconds;
      const locked = await withClusterLock(
        { cluster, runbook: 'vitessDrain', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds },
        async () => {
          const pod = await tracker.step(
            'find the primary tablet',
            async () => {
              const { pods } = await listPods({ cluster });
              const primaries = pods.filter((p) => p.role === 'primary' && !p.terminating);
              if (primaries.length !== 1) {
                throw ApplicationFailure.nonRetryable(
                  `cluster ${cluster}: expected exactly one pod with ${roleLabel}=primary, found ${primaries.length}: ${pods.map((p) => `${p.name}=${p.role ?? '(none)'}`).join(', ') || 'no pods'}`,
                  'PreflightFailed',
                );
              }
              return primaries[0]!.name;
            },
            (name) => name,
          );

          const reason = reasonInput ?? `db-runbooks ${workflowInfo().workflowId}`;
          let annotationRemoved = false;
          const removeAnnotation = () =>
            CancellationScope.nonCancellable(() =>
              tracker.step('remove the annotation', async () => {
                await removePodAnnotation({ cluster, pod, key: DRAIN_ANNOTATION });
                annotationRemoved = true;
              }),
            );
          let newPrimaryPod: string;
          try {
            await tracker.step('annotate it for drain', () => annotatePod({ cluster, pod, key: DRAIN_ANNOTATION, value: reason }), () => `${DRAIN_ANNOTATION}=${reason}`);
            const moved = await tracker.step(
              'wait for the operator to move the primary',
              () => waitForPodRole({ cluster, role: 'primary', notPod: pod, deadline: new Date(Date.now() + timeoutSeconds * 1000).toISOString() }),
              (r) => `${r.pod} is primary`,
            );
            newPrimaryPod = moved.pod;
          } catch (err) {
            // The drain must never be left behind: the operator would keep the tablet drained forever.
            await removeAnnotation().catch((removal: unknown) => {
              throw ApplicationFailure.create({
                type: 'AnnotationLeft',
                nonRetryable: true,
                message: `${failureMessage(err)}; and the annotation ${DRAIN_ANNOTATION} could NOT be removed from pod ${pod}: ${failureMessage(removal)}`,
              });
            });
            throw err;
          }
          await removeAnnotation();
          return {
            cluster,
            drainedPod: pod,
            newPrimaryPod,
            annotationRemoved,
            summary: `the primary of ${cluster} moved from pod ${pod} to pod ${newPrimaryPod}; the drain annotation is removed`,
          } satisfies VitessDrainResult;
        },
      );
      if (locked.status !== 'done') throw ApplicationFailure.nonRetryable(`vitessDrain of ${cluster} did not get the cluster lock`, 'ClusterLocked');
      return locked.value;
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
  );
}
