import type { ClusterPlan } from '../../activities/cluster';
import type { PodFacts, WorkloadFacts } from '../../activities/kubernetes';
import type { GaleraFacts, MysqlNodeFacts } from '../../activities/mysql';
import { assessHealth } from '../../workflows/health';

const health = { maxReplicationLagSeconds: 30, maxGaleraRecvQueueAvg: 0.5, maxEtcdDbSizeBytes: 1000, recentRestartSeconds: 3600 };
const at = '2026-11-23T00:00:00.000Z';
const lock = { waitSeconds: 600, leaseSeconds: 120 };
const failover = { maxLagSeconds: 30, maxTransactionSeconds: 30, writerGraceSeconds: 2, catchUpTimeoutSeconds: 60, drainTimeoutSeconds: 600 };

function node(name: string, extra: Partial<MysqlNodeFacts> = {}): MysqlNodeFacts {
  return { node: name, role: null, address: `${name}:3306`, reachable: true, version: '10.11.9-MariaDB', flavor: 'MariaDB', readOnly: false, logBin: true, innodbFlushLogAtTrxCommit: 1, syncBinlog: 1, ...extra };
}

const synced: GaleraFacts = { ready: 'ON', connected: 'ON', clusterSize: 3, clusterStatus: 'Primary', localState: 'Synced', recvQueueAvg: 0 };

function plan(topology: 'standalone' | 'replication' | 'galera', nodes: string[]): ClusterPlan {
  return { cluster: 'c', mysql: { topology, nodes: nodes.map((n) => ({ name: n, address: `${n}:3306` })), replicationAccount: false }, notifications: false, failover, health, lock };
}

const replicating = { sourceHost: 'p', sourcePort: 3306, ioRunning: 'Yes', sqlRunning: 'Yes', secondsBehindSource: 0, lastIoError: '', lastSqlError: '', gtidIoPos: '0-1-5' };

describe('replication pair', () => {
  const p = plan('replication', ['p', 'r']);

  test('healthy when the replica replicates within the lag bound', () => {
    const report = assessHealth(p, { mysql: [node('p', { role: 'primary' }), node('r', { role: 'replica', readOnly: true, replication: replicating })] }, at);
    expect(report.verdict).toBe('healthy');
    expect(report.summary).toBe('healthy: 2 replication MySQL node(s)');
  });

  test('down when the primary is unreachable, degraded when only the replica is', () => {
    const primaryDown = assessHealth(p, { mysql: [node('p', { role: 'primary', reachable: false, error: 'connect ECONNREFUSED' }), node('r', { role: 'replica', readOnly: true, replication: replicating })] }, at);
    expect(primaryDown.verdict).toBe('down');
    expect(primaryDown.reasons).toEqual(['primary p (p:3306) is unreachable: connect ECONNREFUSED']);
    const replicaDown = assessHealth(p, { mysql: [node('p', { role: 'primary' }), node('r', { role: 'replica', reachable: false })] }, at);
    expect(replicaDown.verdict).toBe('degraded');
  });

  test('lag above the bound, a broken I/O thread and a read-only primary are named', () => {
    const report = assessHealth(p, {
      mysql: [
        node('p', { role: 'primary', readOnly: true }),
        node('r', { role: 'replica', readOnly: false, replication: { ...replicating, ioRunning: 'Connecting', lastIoError: 'error connecting to master', secondsBehindSource: 45 } }),
      ],
    }, at);
    expect(report.verdict).toBe('degraded');
    expect(report.reasons).toEqual([
      'primary p is read-only (read_only=ON): writes are refused',
      'replica r: replication I/O thread is Connecting: error connecting to master',
      'replica r is 45s behind its primary (limit 30s)',
    ]);
    expect(report.warnings).toEqual(['replica r is writable (read_only=OFF): writes there diverge from the primary']);
  });

  test('a replica without replication configured is degraded', () => {
    const report = assessHealth(p, { mysql: [node('p', { role: 'primary' }), node('r', { role: 'replica', readOnly: true, replication: null })] }, at);
    expect(report.reasons).toEqual(['replica r has no replication configured']);
  });
});

describe('galera', () => {
  const p = plan('galera', ['g1', 'g2', 'g3']);
  const member = (name: string, galera: Partial<GaleraFacts> = {}) => node(name, { role: 'member', galera: { ...synced, ...galera } });

  test('a donor node still says ready but is not serving', () => {
    const report = assessHealth(p, { mysql: [member('g1'), member('g2', { localState: 'Donor/Desynced' }), member('g3')] }, at);
    expect(report.verdict).toBe('degraded');
    expect(report.reasons).toEqual(['galera node g2 is not serving: wsrep_local_state_comment=Donor/Desynced']);
  });

  test('below quorum is down; a non-primary component is named', () => {
    const report = assessHealth(p, {
      mysql: [member('g1', { clusterStatus: 'non-Primary', clusterSize: 1, ready: 'OFF' }), node('g2', { reachable: false }), node('g3', { reachable: false })],
    }, at);
    expect(report.verdict).toBe('down');
    expect(report.reasons[0]).toBe('galera cluster has no node in Primary/Synced state (3 checked)');
    expect(report.reasons).toContain('galera node g1 is not serving: wsrep_ready=OFF, wsrep_cluster_status=non-Primary');
  });

  test('a receive queue above the profile threshold is degraded', () => {
    const report = assessHealth(p, { mysql: [member('g1'), member('g2'), member('g3', { recvQueueAvg: 2.5 })] }, at);
    expect(report.reasons).toEqual([expect.stringContaining('g3: wsrep_local_recv_queue_avg=2.5 above 0.5')]);
  });
});

test('durability settings are warnings on a healthy standalone server', () => {
  const report = assessHealth(plan('standalone', ['db']), { mysql: [node('db', { innodbFlushLogAtTrxCommit: 2, syncBinlog: 0 })] }, at);
  expect(report.verdict).toBe('healthy');
  expect(report.warnings).toHaveLength(2);
  expect(report.summary).toBe('healthy: 1 standalone MySQL node(s) (2 warning(s))');
});

describe('etcd and S3', () => {
  const p: ClusterPlan = { cluster: 'c', etcd: { endpoints: ['http://e1', 'http://e2'], metadataPrefix: '/' }, s3: { bucket: 'b', prefix: '' }, notifications: false, failover, health, lock };
  const s3ok = { bucket: 'b', endpoint: 'http://s3', reachable: true, bucketExists: true, writable: true };

  test('one endpoint unreachable is degraded; no leader is down; an oversized database is named', () => {
    const report = assessHealth(p, {
      etcd: { endpoints: [{ endpoint: 'http://e1', reachable: true, leaderId: '0', dbSizeBytes: 5000 }, { endpoint: 'http://e2', reachable: false, error: 'UNAVAILABLE' }], members: [] },
      s3: s3ok,
    }, at);
    expect(report.verdict).toBe('down');
    expect(report.reasons).toEqual([
      'etcd has no leader',
      'etcd endpoint http://e2 is unreachable: UNAVAILABLE',
      'etcd http://e1 database is 5000 bytes, above 1000: compact and defragment',
    ]);
  });

  test('a missing bucket and a read-only bucket are down', () => {
    expect(assessHealth(p, { s3: { ...s3ok, bucketExists: false, error: 'bucket b does not exist' } }, at).reasons).toEqual(['S3 bucket b does not exist']);
    expect(assessHealth(p, { s3: { ...s3ok, writable: false, error: 'AccessDenied' } }, at).reasons).toEqual(['S3 bucket b is not writable: AccessDenied']);
  });
});

describe('kubernetes workload', () => {
  const p: ClusterPlan = { cluster: 'c', namespace: 'databases', workload: { kind: 'StatefulSet', name: 'db' }, notifications: false, failover, health, lock };
  const minutesBefore = (minutes: number) => new Date(Date.parse(at) - minutes * 60_000).toISOString();

  function pod(name: string, extra: Partial<PodFacts> = {}): PodFacts {
    return {
      name, ip: '10.0.0.1', phase: 'Running', ready: true, role: null, labels: {}, annotations: {}, node: 'n1', terminating: false,
      restartCount: 0, lastRestartAt: null, lastRestartReason: null, notReadyReasons: [], containers: [], ...extra,
    };
  }

  function workload(extra: Partial<WorkloadFacts> = {}): WorkloadFacts {
    return {
      kind: 'StatefulSet', name: 'db', namespace: 'databases', selector: 'app=db', reachable: true, exists: true,
      generation: 2, observedGeneration: 2, desired: 3, current: 3, ready: 3, updated: 3, available: 3,
      pods: [pod('db-0'), pod('db-1'), pod('db-2')], ...extra,
    };
  }

  test('healthy when every desired replica is ready; a restart older than the window is not mentioned', () => {
    const report = assessHealth(p, { workload: workload({ pods: [pod('db-0', { restartCount: 4, lastRestartAt: minutesBefore(61), lastRestartReason: 'OOMKilled' }), pod('db-1'), pod('db-2')] }) }, at);
    expect(report.verdict).toBe('healthy');
    expect(report.warnings).toEqual([]);
    expect(report.summary).toBe('healthy: StatefulSet db (3/3 ready)');
  });

  test('a pod not ready makes it degraded, naming the pod and why; a recent restart is a warning', () => {
    const crashing = pod('db-2', {
      ready: false, restartCount: 3, lastRestartAt: minutesBefore(2), lastRestartReason: 'OOMKilled',
      notReadyReasons: ['container mariadb waiting: CrashLoopBackOff: back-off 40s restarting failed container=mariadb'],
    });
    const report = assessHealth(p, { workload: workload({ ready: 2, pods: [pod('db-0'), pod('db-1'), crashing] }) }, at);
    expect(report.verdict).toBe('degraded');
    expect(report.reasons).toEqual([
      'StatefulSet db: 2 of 3 replicas ready',
      'pod db-2 is not ready: container mariadb waiting: CrashLoopBackOff: back-off 40s restarting failed container=mariadb',
    ]);
    expect(report.warnings).toEqual([`pod db-2 restarted recently: 3 restart(s), the last at ${minutesBefore(2)} (OOMKilled)`]);
  });

  test('a pod that flips to not ready while the counts still say ready is degraded too', () => {
    const report = assessHealth(p, { workload: workload({ pods: [pod('db-0'), pod('db-1', { ready: false, notReadyReasons: ['container mariadb running but not ready'] }), pod('db-2')] }) }, at);
    expect(report.verdict).toBe('degraded');
    expect(report.reasons).toEqual(['pod db-1 is not ready: container mariadb running but not ready']);
  });

  test('no ready replica of those desired is down', () => {
    const pending = (name: string) => pod(name, { ready: false, ip: null, phase: 'Pending', notReadyReasons: ['not scheduled to a node yet'] });
    const report = assessHealth(p, { workload: workload({ ready: 0, pods: [pending('db-0')] }) }, at);
    expect(report.verdict).toBe('down');
    expect(report.reasons).toEqual(['StatefulSet db: 0 of 3 replicas ready', 'pod db-0 is not ready: not scheduled to a node yet']);
  });

  test('a workload that does not exist is down; one whose status cannot be read is degraded', () => {
    const missing = assessHealth(p, { workload: workload({ exists: false, desired: 0, ready: 0, pods: [] }) }, at);
    expect(missing.verdict).toBe('down');
    expect(missing.reasons).toEqual(['StatefulSet db does not exist in namespace databases']);
    const unknown = assessHealth(p, { workload: workload({ reachable: false, exists: false, error: 'get statefulsets/db in namespace databases: the Kubernetes API did not answer: fetch failed', pods: [] }) }, at);
    expect(unknown.verdict).toBe('degraded');
    expect(unknown.reasons).toEqual(['StatefulSet db: status unknown: get statefulsets/db in namespace databases: the Kubernetes API did not answer: fetch failed']);
  });

  test('scaled to zero on purpose is healthy with a warning', () => {
    const report = assessHealth(p, { workload: workload({ desired: 0, current: 0, ready: 0, pods: [] }) }, at);
    expect(report.verdict).toBe('healthy');
    expect(report.warnings).toEqual(['StatefulSet db is scaled to 0 replicas']);
  });

  test('the recent-restart window is the profile threshold', () => {
    const restarted = workload({ pods: [pod('db-0', { restartCount: 1, lastRestartAt: minutesBefore(20), lastRestartReason: 'Error' }), pod('db-1'), pod('db-2')] });
    expect(assessHealth(p, { workload: restarted }, at).warnings).toHaveLength(1);
    expect(assessHealth({ ...p, health: { ...health, recentRestartSeconds: 600 } }, { workload: restarted }, at).warnings).toEqual([]);
  });
});
