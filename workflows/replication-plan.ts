// The decisions of switchover and failover, from the facts the activities read: who is the
// primary now, which replica may take over, and why not. Pure and unit-tested; the workflows act.
import type { ClusterPlan } from '../activities/cluster';
import type { ReplicationState, SessionFacts } from '../activities/mysql';
import { comparePositions, formatGtidPosition, mergePositions, parseGtidPosition, transactionsBetween, type Gtid } from './gtid';
import type { ClusterHealthReport } from './health';

export interface Topology {
  /** The one reachable node that replicates from nobody, when there is exactly one. */
  primary: string | null;
  /** Reachable nodes that replicate, and from which node of the profile (null: an address the profile does not name). */
  replicas: { node: string; source: string | null }[];
  unreachable: string[];
  problems: string[];
}

type Nodes = NonNullable<ClusterPlan['mysql']>['nodes'];

function sourceNode(nodes: Nodes, state: ReplicationState): string | null {
  const r = state.replication;
  if (!r?.sourceHost) return null;
  return nodes.find((n) => n.address === `${r.sourceHost}:${r.sourcePort ?? 3306}`)?.name ?? null;
}

/** The replication topology as the servers report it (the profile's roles are only hints: switchovers change them). */
export function describeTopology(nodes: Nodes, states: ReplicationState[]): Topology {
  const reachable = states.filter((s) => s.reachable && !s.error);
  const unreachable = states.filter((s) => !s.reachable || s.error).map((s) => s.node);
  const replicas = reachable.filter((s) => s.replication).map((s) => ({ node: s.node, source: sourceNode(nodes, s) }));
  const roots = reachable.filter((s) => !s.replication).map((s) => s.node);
  const problems: string[] = [];
  for (const s of states) if (s.reachable && s.error) problems.push(`${s.node}: ${s.error}`);
  if (roots.length > 1) problems.push(`${roots.join(' and ')} all replicate from nobody: more than one primary`);
  for (const r of replicas) if (r.source === null) problems.push(`${r.node} replicates from an address the profile does not name`);
  return { primary: roots.length === 1 ? roots[0]! : null, replicas, unreachable, problems };
}

// ---------------------------------------------------------------- switchover

export type SwitchoverPlan =
  | { ok: true; primary: string; target: string; otherReplicas: string[]; warnings: string[] }
  | { ok: false; reasons: string[] };

/**
 * Whether a planned switchover may start, and to which replica: the health checks pass, there is
 * one primary and it is writable, the target replicates from it with both threads running and
 * within the lag bound, and no transaction on the primary is older than the bound.
 */
export function planSwitchover(params: {
  plan: ClusterPlan;
  states: ReplicationState[];
  health: ClusterHealthReport;
  longTransactions: SessionFacts[];
  requested?: string;
}): SwitchoverPlan {
  const { plan, states, health, longTransactions, requested } = params;
  const reasons: string[] = [];
  const warnings: string[] = [];
  const nodes = plan.mysql?.nodes ?? [];
  if (plan.mysql?.topology !== 'replication') return { ok: false, reasons: [`cluster ${plan.cluster} is not a replication cluster (topology ${plan.mysql?.topology ?? 'none'})`] };
  if (!plan.mysql.replicationAccount) reasons.push('the profile names no mysql.replicationUser / mysql.replicationPassword to point the old primary at the new one');
  if (health.verdict !== 'healthy') reasons.push(...health.reasons.map((r) => `health: ${r}`));

  const topology = describeTopology(nodes, states);
  reasons.push(...topology.problems);
  for (const node of topology.unreachable) if (!reasons.some((r) => r.includes(node))) reasons.push(`${node} is unreachable`);
  const primary = topology.primary;
  if (!primary) {
    if (!topology.problems.length) reasons.push('no node is the primary (every reachable node replicates)');
    return { ok: false, reasons };
  }
  const primaryState = states.find((s) => s.node === primary)!;
  if (primaryState.readOnly) reasons.push(`primary ${primary} is read-only already`);

  const replicasOfPrimary = topology.replicas.filter((r) => r.source === primary).map((r) => r.node);
  let target = requested;
  if (target !== undefined) {
    if (!nodes.some((n) => n.name === target)) return { ok: false, reasons: [...reasons, `newPrimary: cluster ${plan.cluster} has no node ${target}`] };
    if (target === primary) return { ok: false, reasons: [...reasons, `newPrimary: ${target} is the primary already`] };
    if (!replicasOfPrimary.includes(target)) reasons.push(`${target} does not replicate from the primary ${primary}`);
  } else if (replicasOfPrimary.length === 0) {
    reasons.push(`no replica replicates from the primary ${primary}`);
  } else {
    // The most advanced replica (then the least lagging, then the profile's order) needs the shortest catch-up.
    target = [...replicasOfPrimary].sort((a, b) => {
      const sa = states.find((s) => s.node === a)!;
      const sb = states.find((s) => s.node === b)!;
      const cmp = comparePositions(parseGtidPosition(sa.gtidCurrentPos), parseGtidPosition(sb.gtidCurrentPos)).relation;
      if (cmp === 'ahead') return -1;
      if (cmp === 'behind') return 1;
      return (sa.replication?.secondsBehindSource ?? 0) - (sb.replication?.secondsBehindSource ?? 0);
    })[0];
  }
  const targetState = states.find((s) => s.node === target);
  const r = targetState?.replication;
  if (targetState && r) {
    if (r.ioRunning !== 'Yes') reasons.push(`${target}: replication I/O thread is ${r.ioRunning}${r.lastIoError ? `: ${r.lastIoError}` : ''}`);
    if (r.sqlRunning !== 'Yes') reasons.push(`${target}: replication SQL thread is ${r.sqlRunning}${r.lastSqlError ? `: ${r.lastSqlError}` : ''}`);
    const lag = r.secondsBehindSource;
    if (lag === null) reasons.push(`${target}: replication lag unknown (Seconds_Behind_Master is NULL)`);
    else if (lag > plan.failover.maxLagSeconds) reasons.push(`${target} is ${lag}s behind ${primary} (limit ${plan.failover.maxLagSeconds}s)`);
    if (!targetState.logSlaveUpdates) reasons.push(`${target} has log_slave_updates=OFF: its binary log would not hold what the old primary needs to follow it`);
    if (!targetState.gtidStrictMode) warnings.push(`${target} has gtid_strict_mode=OFF: a diverged old primary would not be refused`);
  }
  for (const t of longTransactions) {
    reasons.push(`primary ${primary}: transaction of ${t.user}@${t.host} (session ${t.id}) open for ${t.seconds}s (limit ${plan.failover.maxTransactionSeconds}s, failover.maxTransactionSeconds)`);
  }
  if (plan.routing) {
    for (const n of [primary, target]) {
      if (n && !nodes.find((x) => x.name === n)?.pod) reasons.push(`routing: node ${n} has no pod in the profile, so its role label cannot be moved`);
    }
  }
  if (reasons.length > 0 || !target) return { ok: false, reasons };
  return { ok: true, primary, target, otherReplicas: replicasOfPrimary.filter((n) => n !== target), warnings };
}

// ---------------------------------------------------------------- failover

export interface CandidateRow {
  node: string;
  /** What the replica has applied (gtid_current_pos). */
  applied: string;
  /** What it will have once it has applied all it received (applied merged with Gtid_IO_Pos). */
  position: string;
  /** Seconds behind the old primary's writes it still has to apply; 0 when none; null when unknown. */
  lagSeconds: number | null;
  backlog: number;
  problem?: string;
}

export type FailoverPlan =
  | { decision: 'promote'; oldPrimary: string; candidate: string; otherReplicas: string[]; table: CandidateRow[]; warnings: string[]; reason: string }
  | { decision: 'refuse'; oldPrimary: string | null; reason: string; table: CandidateRow[] };

function rowOf(state: ReplicationState): CandidateRow & { gtids: Gtid[] } {
  const applied = parseGtidPosition(state.gtidCurrentPos);
  const received = parseGtidPosition(state.replication?.gtidIoPos);
  const gtids = mergePositions(applied, received);
  const backlog = transactionsBetween(applied, gtids);
  const r = state.replication;
  let lagSeconds: number | null = 0;
  if (backlog > 0) lagSeconds = r?.sqlRunning === 'Yes' ? (r.sqlThreadSeconds ?? null) : null;
  const row: CandidateRow & { gtids: Gtid[] } = { node: state.node, applied: formatGtidPosition(applied), position: formatGtidPosition(gtids), lagSeconds, backlog, gtids };
  if (r && r.sqlRunning !== 'Yes' && r.lastSqlError) row.problem = `replication SQL thread stopped with an error: ${r.lastSqlError}`;
  return row;
}

export function describeCandidate(row: CandidateRow): string {
  const lag = row.lagSeconds === null ? 'lag unknown (SQL thread stopped)' : `lag ${row.lagSeconds}s`;
  const pending = row.backlog > 0 ? `, ${row.backlog} received transaction(s) still to apply` : '';
  return `${row.node}: at ${row.position || '(empty)'}${row.position !== row.applied ? ` (applied ${row.applied || '(empty)'})` : ''}, ${lag}${pending}${row.problem ? `; ${row.problem}` : ''}`;
}

/**
 * Which replica a failover promotes. The primary must be unreachable and every reachable replica
 * must follow it. The most advanced replica by GTID wins (what it received counts: it applies that
 * before the promotion). Refused, unless forced: two replicas equally advanced with different
 * transactions, or replicas ahead of each other in different domains (their histories diverged);
 * a requested replica behind another; the winner lagging more than the profile allows.
 */
export function planFailover(params: { plan: ClusterPlan; states: ReplicationState[]; force: boolean; requested?: string }): FailoverPlan {
  const { plan, states, force, requested } = params;
  const nodes = plan.mysql?.nodes ?? [];
  const order = (name: string) => nodes.findIndex((n) => n.name === name);
  const refuse = (oldPrimary: string | null, reason: string, table: CandidateRow[] = []): FailoverPlan => ({ decision: 'refuse', oldPrimary, reason, table });
  if (plan.mysql?.topology !== 'replication') return refuse(null, `cluster ${plan.cluster} is not a replication cluster (topology ${plan.mysql?.topology ?? 'none'})`);
  if (!plan.mysql.replicationAccount) return refuse(null, 'the profile names no mysql.replicationUser / mysql.replicationPassword to point the other replicas at the new primary');

  const topology = describeTopology(nodes, states);
  const sources = [...new Set(topology.replicas.map((r) => r.source))];
  if (topology.replicas.length === 0) return refuse(null, `no reachable node replicates (unreachable: ${topology.unreachable.join(', ') || 'none'}): nothing to promote`);
  if (sources.length !== 1 || sources[0] === null) {
    return refuse(null, `the replicas do not follow one primary of the profile: ${topology.replicas.map((r) => `${r.node} → ${r.source ?? 'unknown address'}`).join(', ')}`);
  }
  const oldPrimary = sources[0]!;
  const primaryState = states.find((s) => s.node === oldPrimary);
  if (primaryState?.reachable) {
    return refuse(oldPrimary, `the primary ${oldPrimary} is reachable (${primaryState.readOnly ? 'read-only' : 'writable'}): a failover is for a primary that is down; use switchover`);
  }
  const strays = states.filter((s) => s.reachable && !s.error && !s.replication && s.node !== oldPrimary).map((s) => s.node);
  if (strays.length > 0) return refuse(oldPrimary, `${strays.join(', ')} replicate${strays.length === 1 ? 's' : ''} from nobody while the replicas follow ${oldPrimary}: was a replica promoted already?`);

  const rows = topology.replicas.map((r) => rowOf(states.find((s) => s.node === r.node)!));
  const table = rows.map(({ gtids: _, ...row }) => row);
  const eligible = rows.filter((r) => !r.problem);
  if (eligible.length === 0) return refuse(oldPrimary, `no replica can be promoted: ${table.map(describeCandidate).join('; ')}`, table);

  const warnings: string[] = [];
  const behindSomeone = (r: (typeof rows)[number]) => eligible.some((o) => o !== r && comparePositions(r.gtids, o.gtids).relation === 'behind');
  const maximal = eligible.filter((r) => !behindSomeone(r)).sort((a, b) => order(a.node) - order(b.node));
  for (let i = 0; i < maximal.length; i += 1) {
    for (let j = i + 1; j < maximal.length; j += 1) {
      const a = maximal[i]!;
      const b = maximal[j]!;
      const { relation, detail } = comparePositions(a.gtids, b.gtids);
      if (relation !== 'diverged') continue;
      const message = `${a.node} (${a.position}) and ${b.node} (${b.position}) are equally advanced but their histories diverged (${detail}): promoting either one loses the other's transactions`;
      if (!force) return refuse(oldPrimary, `${message}; set force to promote anyway (newPrimary chooses which)`, table);
      warnings.push(`forced: ${message}`);
    }
  }
  let chosen = maximal[0]!;
  if (requested !== undefined) {
    const wanted = rows.find((r) => r.node === requested);
    if (!wanted) return refuse(oldPrimary, `newPrimary: ${requested} is not a reachable replica of ${oldPrimary}`, table);
    if (wanted.problem) return refuse(oldPrimary, `newPrimary: ${describeCandidate(wanted)}`, table);
    if (!maximal.includes(wanted)) {
      const ahead = maximal[0]!;
      const message = `${requested} (${wanted.position}) is behind ${ahead.node} (${ahead.position}) by ${transactionsBetween(wanted.gtids, ahead.gtids)} transaction(s): promoting it loses them`;
      if (!force) return refuse(oldPrimary, `${message}; set force to promote it anyway`, table);
      warnings.push(`forced: ${message}`);
    }
    chosen = wanted;
  }
  const limit = plan.failover.maxLagSeconds;
  if (chosen.lagSeconds === null || chosen.lagSeconds > limit) {
    const why =
      chosen.lagSeconds === null
        ? `the most advanced replica ${chosen.node} has ${chosen.backlog} transaction(s) to apply and its SQL thread is stopped: its lag is unknown`
        : `the most advanced replica ${chosen.node} lags ${chosen.lagSeconds}s: it still applies changes its primary made ${chosen.lagSeconds}s ago (limit ${limit}s, failover.maxLagSeconds)`;
    if (!force) return refuse(oldPrimary, `${why}; set force to promote it once it has applied what it received`, table);
    warnings.push(`forced: ${why}`);
  }
  const others = rows.filter((r) => r !== chosen).map((r) => r.node);
  const reason =
    maximal.length > 1 && !warnings.some((w) => w.includes('diverged'))
      ? `${chosen.node} is the most advanced replica (${chosen.position}, as far as ${maximal.filter((r) => r !== chosen).map((r) => r.node).join(', ')})`
      : `${chosen.node} is the most advanced replica (${chosen.position})`;
  return { decision: 'promote', oldPrimary, candidate: chosen.node, otherReplicas: others, table, warnings, reason };
}
