import type { ClusterPlan } from '../../activities/cluster';
import type { ReplicaFacts, ReplicationState } from '../../activities/mysql';
import { commandFor } from '../../activities/nodes';
import type { ClusterHealthReport } from '../../workflows/health';
import { describeTopology, planFailover, planSwitchover } from '../../workflows/replication-plan';

const failover = { maxLagSeconds: 5, maxTransactionSeconds: 30, writerGraceSeconds: 2, catchUpTimeoutSeconds: 60, drainTimeoutSeconds: 600 };
const health = { maxReplicationLagSeconds: 5, maxGaleraRecvQueueAvg: 0.5, maxEtcdDbSizeBytes: 1000, recentRestartSeconds: 3600 };

function plan(nodes: string[], extra: Partial<ClusterPlan> = {}): ClusterPlan {
  return {
    cluster: 'c',
    mysql: { topology: 'replication', nodes: nodes.map((n, i) => ({ name: n, address: `127.0.0.1:${3331 + i}`, pod: `db-${i}` })), replicationAccount: true },
    notifications: false,
    failover,
    health,
    lock: { waitSeconds: 600, leaseSeconds: 120 },
    ...extra,
  };
}

function replica(sourcePort: number, io: string, extra: Partial<ReplicaFacts> = {}): ReplicaFacts {
  return {
    sourceHost: '127.0.0.1', sourcePort, ioRunning: 'Yes', sqlRunning: 'Yes', secondsBehindSource: 0, lastIoError: '', lastSqlError: '',
    gtidIoPos: io, sqlThreadState: 'Slave has read all relay log; waiting for more updates', sqlThreadSeconds: 40, ...extra,
  };
}

function state(node: string, port: number, current: string, replication: ReplicaFacts | null, extra: Partial<ReplicationState> = {}): ReplicationState {
  return {
    node, address: `127.0.0.1:${port}`, reachable: true, flavor: 'MariaDB', serverId: port, readOnly: replication !== null,
    gtidCurrentPos: current, gtidBinlogPos: current, gtidSlavePos: current, gtidStrictMode: true, logSlaveUpdates: true, replication, ...extra,
  };
}

const down = (node: string, port: number): ReplicationState => ({ node, address: `127.0.0.1:${port}`, reachable: false, error: 'connect ECONNREFUSED', replication: null });
const healthy = { verdict: 'healthy', reasons: [] } as unknown as ClusterHealthReport;

describe('topology', () => {
  test('the primary is the one reachable node that replicates from nobody; sources are named by the profile', () => {
    const t = describeTopology(plan(['a', 'b', 'c']).mysql!.nodes, [state('a', 3331, '0-1-5', null), state('b', 3332, '0-1-5', replica(3331, '0-1-5')), down('c', 3333)]);
    expect(t).toEqual({ primary: 'a', replicas: [{ node: 'b', source: 'a' }], unreachable: ['c'], problems: [] });
  });
});

describe('switchover pre-flight', () => {
  const p = plan(['a', 'b']);
  const ok = [state('a', 3331, '0-1-9', null), state('b', 3332, '0-1-9', replica(3331, '0-1-9'))];

  test('a healthy pair switches to its replica', () => {
    expect(planSwitchover({ plan: p, states: ok, health: healthy, longTransactions: [] })).toEqual({ ok: true, primary: 'a', target: 'b', otherReplicas: [], warnings: [] });
  });

  test('every reason not to switch is named: lag, a stopped thread, a long transaction, an unhealthy cluster, no replication account', () => {
    const lagging = [ok[0]!, state('b', 3332, '0-1-7', replica(3331, '0-1-9', { secondsBehindSource: 12, sqlRunning: 'No', lastSqlError: 'Duplicate entry' }))];
    const result = planSwitchover({
      plan: { ...p, mysql: { ...p.mysql!, replicationAccount: false } },
      states: lagging,
      health: { verdict: 'degraded', reasons: ['replica b: replication SQL thread is stopped (No)'] } as unknown as ClusterHealthReport,
      longTransactions: [{ id: 7, user: 'app', host: '10.0.0.9', seconds: 95, rowsModified: 3 }],
    });
    expect(result).toEqual({
      ok: false,
      reasons: [
        'the profile names no mysql.replicationUser / mysql.replicationPassword to point the old primary at the new one',
        'health: replica b: replication SQL thread is stopped (No)',
        'b: replication SQL thread is No: Duplicate entry',
        'b is 12s behind a (limit 5s)',
        'primary a: transaction of app@10.0.0.9 (session 7) open for 95s (limit 30s, failover.maxTransactionSeconds)',
      ],
    });
  });

  test('a requested node that is the primary, or unknown, is refused', () => {
    expect(planSwitchover({ plan: p, states: ok, health: healthy, longTransactions: [], requested: 'a' })).toEqual({ ok: false, reasons: ['newPrimary: a is the primary already'] });
    expect(planSwitchover({ plan: p, states: ok, health: healthy, longTransactions: [], requested: 'z' })).toEqual({ ok: false, reasons: ['newPrimary: cluster c has no node z'] });
  });
});

describe('failover choice', () => {
  const p = plan(['fo1', 'fo2', 'fo3']);

  test('the most advanced replica is promoted, counting what it received and has yet to apply', () => {
    const states = [down('fo1', 3331), state('fo2', 3332, '0-31-10', replica(3331, '0-31-10')), state('fo3', 3333, '0-31-10', replica(3331, '0-31-14', { sqlThreadSeconds: 1, sqlThreadState: 'Update_rows_log_event::find_row(-1)' }))];
    const decision = planFailover({ plan: p, states, force: false });
    expect(decision).toMatchObject({ decision: 'promote', oldPrimary: 'fo1', candidate: 'fo3', otherReplicas: ['fo2'], warnings: [] });
    if (decision.decision !== 'promote') throw new Error('expected a promotion');
    expect(decision.reason).toBe('fo3 is the most advanced replica (0-31-14)');
    expect(decision.table).toEqual([
      { node: 'fo2', applied: '0-31-10', position: '0-31-10', lagSeconds: 0, backlog: 0 },
      { node: 'fo3', applied: '0-31-10', position: '0-31-14', lagSeconds: 1, backlog: 4 },
    ]);
  });

  test('equal and diverged replicas are refused with an explanation, unless forced', () => {
    const states = [down('fo1', 3331), state('fo2', 3332, '0-32-11', replica(3331, '0-31-10')), state('fo3', 3333, '0-33-11', replica(3331, '0-31-10'))];
    const refused = planFailover({ plan: p, states, force: false });
    expect(refused).toMatchObject({ decision: 'refuse', oldPrimary: 'fo1' });
    expect(refused.reason).toBe(
      'fo2 (0-32-11) and fo3 (0-33-11) are equally advanced but their histories diverged (domain 0: transaction 0-32-11 against 0-33-11, the same sequence number from different servers): promoting either one loses the other\'s transactions; set force to promote anyway (newPrimary chooses which)',
    );
    const forced = planFailover({ plan: p, states, force: true, requested: 'fo3' });
    expect(forced).toMatchObject({ decision: 'promote', candidate: 'fo3', warnings: [expect.stringMatching(/^forced: fo2 \(0-32-11\) and fo3 \(0-33-11\) are equally advanced/)] });
  });

  test('a lagging winner is refused unless forced; a stopped SQL thread with work left means unknown lag', () => {
    const lagging = [down('fo1', 3331), state('fo2', 3332, '0-31-3', replica(3331, '0-31-9', { sqlThreadSeconds: 8, sqlThreadState: 'Waiting for table metadata lock' })), state('fo3', 3333, '0-31-2', replica(3331, '0-31-2'))];
    expect(planFailover({ plan: p, states: lagging, force: false }).reason).toBe(
      'the most advanced replica fo2 lags 8s: it still applies changes its primary made 8s ago (limit 5s, failover.maxLagSeconds); set force to promote it once it has applied what it received',
    );
    expect(planFailover({ plan: p, states: lagging, force: true })).toMatchObject({ decision: 'promote', candidate: 'fo2' });
    const stopped = [down('fo1', 3331), state('fo2', 3332, '0-31-3', replica(3331, '0-31-9', { sqlRunning: 'No' })), state('fo3', 3333, '0-31-2', replica(3331, '0-31-2'))];
    expect(planFailover({ plan: p, states: stopped, force: false }).reason).toMatch(/^the most advanced replica fo2 has 6 transaction\(s\) to apply and its SQL thread is stopped: its lag is unknown/);
  });

  test('a requested replica behind another is refused unless forced; a reachable primary is no failover', () => {
    const states = [down('fo1', 3331), state('fo2', 3332, '0-31-10', replica(3331, '0-31-10')), state('fo3', 3333, '0-31-12', replica(3331, '0-31-12'))];
    expect(planFailover({ plan: p, states, force: false, requested: 'fo2' }).reason).toBe('fo2 (0-31-10) is behind fo3 (0-31-12) by 2 transaction(s): promoting it loses them; set force to promote it anyway');
    const up = [state('fo1', 3331, '0-31-12', null), ...states.slice(1)];
    expect(planFailover({ plan: p, states: up, force: true }).reason).toBe('the primary fo1 is reachable (writable): a failover is for a primary that is down; use switchover');
  });
});

test('node-control commands take checked values only, never a shell', () => {
  const node = { name: 'galera1', host: '127.0.0.1', port: 3321, pod: 'db-0' };
  expect(commandFor(['bash', 'scripts/stack.sh', 'start', '{node}'], node)).toEqual(['bash', 'scripts/stack.sh', 'start', 'galera1']);
  expect(commandFor(['ssh', '{host}', 'cat', '/var/lib/mysql-{port}/grastate.dat'], node)).toEqual(['ssh', '127.0.0.1', 'cat', '/var/lib/mysql-3321/grastate.dat']);
  expect(() => commandFor(['ssh', '{host}'], { ...node, host: '-oProxyCommand=evil' })).toThrow('host "-oProxyCommand=evil" is not safe to put into a command');
  expect(() => commandFor(['kubectl', 'exec', '{pod}'], { ...node, pod: undefined })).toThrow('names {pod}, which the node does not have');
});
