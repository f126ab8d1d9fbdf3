import type { ClusterPlan } from '../../activities/cluster';
import type { GaleraFacts, MysqlNodeFacts } from '../../activities/mysql';
import { assessHealth } from '../../workflows/health';

const health = { maxReplicationLagSeconds: 30, maxGaleraRecvQueueAvg: 0.5, maxEtcdDbSizeBytes: 1000, recentRestartSeconds: 3600 };
const at = '2026-11-23T00:00:00.000Z';

function node(name: string, extra: Partial<MysqlNodeFacts> = {}): MysqlNodeFacts {
  return { node: name, role: null, address: `${name}:3306`, reachable: true, version: '10.11.9-MariaDB', flavor: 'MariaDB', readOnly: false, logBin: true, innodbFlushLogAtTrxCommit: 1, syncBinlog: 1, ...extra };
}

const synced: GaleraFacts = { ready: 'ON', connected: 'ON', clusterSize: 3, clusterStatus: 'Primary', localState: 'Synced', recvQueueAvg: 0 };

function plan(topology: 'standalone' | 'replication' | 'galera', nodes: string[]): ClusterPlan {
  return { cluster: 'c', mysql: { topology, nodes: nodes.map((n) => ({ name: n, address: `${n}:3306` })) }, notifications: false, health };
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
  const p: ClusterPlan = { cluster: 'c', etcd: { endpoints: ['http://e1', 'http://e2'], metadataPrefix: '/' }, s3: { bucket: 'b', prefix: '' }, notifications: false, health };
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
