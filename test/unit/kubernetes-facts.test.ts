// The pure parts of activities/kubernetes.ts: how an apiserver answer becomes a failure, when a
// rollout counts as done, and what a pod's status says about why it is not ready.
import { ApiException, type V1Deployment, type V1Pod, type V1StatefulSet } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { kubernetesFailure, podFacts, rolloutComplete, scaleComplete, workloadStatus } from '../../activities/kubernetes';

const action = { verb: 'patch', resource: 'statefulsets/db', namespace: 'databases' };

function apiError(code: number, reason: string, message: string): ApiException<unknown> {
  return new ApiException(code, 'Unknown API Status Code!', { kind: 'Status', code, reason, message }, {});
}

describe('failures', () => {
  test.each([
    [400, 'BadRequest', 'KubernetesInvalid'],
    [401, 'Unauthorized', 'KubernetesUnauthorized'],
    [403, 'Forbidden', 'KubernetesForbidden'],
    [404, 'NotFound', 'KubernetesNotFound'],
    [422, 'Invalid', 'KubernetesInvalid'],
  ])('HTTP %i is a non-retryable failure naming the verb, resource and namespace', (code, reason, type) => {
    const failure = kubernetesFailure(apiError(code, reason, 'the apiserver says no'), action) as ApplicationFailure;
    expect(failure).toMatchObject({ type, nonRetryable: true });
    expect(failure.message).toBe(`patch statefulsets/db in namespace databases: ${reason}: the apiserver says no`);
  });

  test('a conflict and a server error are retryable; a name taken is told apart from a stale resourceVersion', () => {
    expect(kubernetesFailure(apiError(409, 'Conflict', 'the object has been modified'), action)).toMatchObject({ type: 'KubernetesConflict', nonRetryable: false });
    expect(kubernetesFailure(apiError(409, 'AlreadyExists', 'jobs.batch "x" already exists'), action)).toMatchObject({ type: 'KubernetesAlreadyExists', nonRetryable: false });
    expect(kubernetesFailure(apiError(503, 'ServiceUnavailable', 'etcd leader changed'), action)).toMatchObject({ type: 'KubernetesUnavailable', nonRetryable: false });
  });

  test('a network error or the watch timing out is a retryable KubernetesUnavailable, not an HTTP status', () => {
    const refused = new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') });
    expect(kubernetesFailure(refused, action)).toMatchObject({
      type: 'KubernetesUnavailable',
      nonRetryable: false,
      message: 'patch statefulsets/db in namespace databases: the Kubernetes API did not answer: fetch failed (connect ECONNREFUSED 127.0.0.1:6443)',
    });
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(kubernetesFailure(timeout, action)).toMatchObject({ type: 'KubernetesUnavailable', message: expect.stringContaining('did not answer: The operation was aborted') as string });
  });

  test('a failure already decided on passes through unchanged', () => {
    const decided = ApplicationFailure.nonRetryable('no', 'SecretUnavailable');
    expect(kubernetesFailure(decided, action)).toBe(decided);
  });
});

describe('rollout completion', () => {
  const statefulSet = (status: Partial<NonNullable<V1StatefulSet['status']>>, generation = 2): V1StatefulSet => ({
    metadata: { name: 'db', generation },
    spec: { replicas: 3, selector: {}, serviceName: 'db', template: {} },
    status: { replicas: 3, readyReplicas: 3, updatedReplicas: 3, observedGeneration: 2, currentRevision: 'db-2', updateRevision: 'db-2', ...status },
  });

  test('a StatefulSet is rolled out when every pod is updated and ready and the revisions agree', () => {
    const done = statefulSet({});
    expect(rolloutComplete(workloadStatus('StatefulSet', 'ns', done), done)).toBe(true);
    for (const unfinished of [statefulSet({ currentRevision: 'db-1' }), statefulSet({ updatedReplicas: 2 }), statefulSet({ readyReplicas: 2 }), statefulSet({}, 3)]) {
      expect(rolloutComplete(workloadStatus('StatefulSet', 'ns', unfinished), unfinished)).toBe(false);
    }
  });

  test('a Deployment is rolled out only when no old pod is left and the new ones are available', () => {
    const deployment = (status: Partial<NonNullable<V1Deployment['status']>>): V1Deployment => ({
      metadata: { name: 'web', generation: 5 },
      spec: { replicas: 2, selector: {}, template: {} },
      status: { replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2, observedGeneration: 5, ...status },
    });
    const done = deployment({});
    expect(rolloutComplete(workloadStatus('Deployment', 'ns', done), done)).toBe(true);
    const oldPodLeft = deployment({ replicas: 3, readyReplicas: 3 });
    expect(rolloutComplete(workloadStatus('Deployment', 'ns', oldPodLeft), oldPodLeft)).toBe(false);
    const notAvailable = deployment({ availableReplicas: 1 });
    expect(rolloutComplete(workloadStatus('Deployment', 'ns', notAvailable), notAvailable)).toBe(false);
  });

  test('a scale is done when exactly the desired pods exist and are ready', () => {
    expect(scaleComplete(workloadStatus('StatefulSet', 'ns', statefulSet({})))).toBe(true);
    expect(scaleComplete(workloadStatus('StatefulSet', 'ns', statefulSet({ replicas: 4 })))).toBe(false);
  });
});

describe('pod facts', () => {
  const base = (extra: Partial<V1Pod>): V1Pod => ({ metadata: { name: 'db-0', labels: { app: 'db', role: 'replica' } }, spec: { containers: [{ name: 'mariadb', image: 'mariadb:11.4' }] }, ...extra });

  test('an unschedulable pod says why', () => {
    const pod = base({ status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available: insufficient memory' }] } });
    expect(podFacts(pod, 'role')).toMatchObject({ ready: false, ip: null, role: 'replica', notReadyReasons: ['not scheduled: Unschedulable: 0/3 nodes are available: insufficient memory'] });
  });

  test('a scheduled pod whose container has not started, and one whose container exited, say so', () => {
    const starting = base({ spec: { nodeName: 'n1', containers: [{ name: 'mariadb' }] }, status: { phase: 'Pending' } });
    expect(podFacts(starting).notReadyReasons).toEqual(['container mariadb has not started']);
    const exited = base({
      spec: { nodeName: 'n1', containers: [{ name: 'mariadb' }] },
      status: {
        phase: 'Running',
        containerStatuses: [{ name: 'mariadb', image: 'mariadb:11.4', imageID: '', ready: false, restartCount: 2, state: { terminated: { exitCode: 1, reason: 'Error' } } }],
      },
    });
    expect(podFacts(exited).notReadyReasons).toEqual(['container mariadb terminated: Error (exit code 1)']);
  });

  test('the latest restart of any container is the one reported, and restarts add up', () => {
    const pod = base({
      spec: { nodeName: 'n1', containers: [{ name: 'mariadb' }, { name: 'exporter' }] },
      status: {
        phase: 'Running',
        podIP: '10.0.0.7',
        conditions: [{ type: 'Ready', status: 'True' }],
        containerStatuses: [
          { name: 'mariadb', image: 'm', imageID: '', ready: true, restartCount: 1, state: { running: {} }, lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: new Date('2026-11-23T01:00:00Z') } } },
          { name: 'exporter', image: 'e', imageID: '', ready: true, restartCount: 3, state: { running: {} }, lastState: { terminated: { exitCode: 2, finishedAt: new Date('2026-11-23T02:00:00Z') } } },
        ],
      },
    });
    expect(podFacts(pod)).toMatchObject({ ready: true, ip: '10.0.0.7', restartCount: 4, lastRestartAt: '2026-11-23T02:00:00.000Z', lastRestartReason: 'exit code 2', notReadyReasons: [] });
  });
});
