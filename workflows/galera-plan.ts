// Which Galera node to bootstrap after a full outage, from what every node says about its history.
// Pure and unit-tested; galeraRecover acts on it.
import type { GaleraNodeState } from '../activities/nodes';

/** The state UUID of a node that never joined a cluster: it has no history to lose or to give. */
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export type GaleraRecoveryPlan =
  | { decision: 'bootstrap'; bootstrap: string; joinOrder: string[]; reason: string; warnings: string[]; table: string[] }
  | { decision: 'refuse'; reason: string; table: string[] };

/** One line per node: name, history UUID, last committed seqno and where it comes from, safe_to_bootstrap. */
export function galeraStateTable(states: GaleraNodeState[]): string[] {
  const rows = states.map((s) => [
    s.node,
    s.uuid,
    String(s.seqno),
    s.seqnoSource === 'wsrep-recover' ? `--wsrep-recover (grastate.dat: ${s.grastateSeqno})` : 'grastate.dat',
    s.safeToBootstrap ? '1' : '0',
  ]);
  const header = ['node', 'uuid', 'seqno', 'seqno from', 'safe_to_bootstrap'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * The node with the highest committed seqno is bootstrapped: it holds every transaction any node
 * committed, so the others can catch up from it (IST or SST) without losing one. Ties prefer the
 * node Galera marked safe_to_bootstrap, then the profile's order. The others join one at a time,
 * the most advanced first (the smallest transfers). Refused when the nodes hold different histories
 * (different cluster state UUIDs): bootstrapping one would throw the other history away.
 */
export function planGaleraRecovery(states: GaleraNodeState[], profileOrder: string[]): GaleraRecoveryPlan {
  const table = galeraStateTable(states);
  const withHistory = states.filter((s) => !(s.uuid === NIL_UUID && s.seqno === -1));
  const histories = [...new Set(withHistory.map((s) => s.uuid))];
  if (histories.length > 1) {
    const groups = histories.map((uuid) => `${uuid} (${withHistory.filter((s) => s.uuid === uuid).map((s) => s.node).join(', ')})`);
    return {
      decision: 'refuse',
      reason: `the nodes hold different histories: ${groups.join(' and ')}; bootstrapping one would discard the others' transactions: decide which history to keep, then wipe the other nodes' data so that they rejoin by SST`,
      table,
    };
  }
  const known = withHistory.filter((s) => s.seqno >= 0);
  if (known.length === 0) {
    return { decision: 'refuse', reason: 'no node knows its last committed transaction (every seqno is -1, even after --wsrep-recover)', table };
  }
  const rank = (s: GaleraNodeState) => profileOrder.indexOf(s.node);
  const ordered = [...known].sort((a, b) => b.seqno - a.seqno || Number(b.safeToBootstrap) - Number(a.safeToBootstrap) || rank(a) - rank(b));
  const chosen = ordered[0]!;
  const warnings: string[] = [];
  for (const s of states) {
    if (s.safeToBootstrap && s.node !== chosen.node) warnings.push(`${s.node} is marked safe_to_bootstrap but ${chosen.node} is more advanced (seqno ${chosen.seqno} against ${s.seqno})`);
  }
  const joinOrder = [...states]
    .filter((s) => s.node !== chosen.node)
    .sort((a, b) => b.seqno - a.seqno || rank(a) - rank(b))
    .map((s) => s.node);
  const others = states.filter((s) => s.node !== chosen.node);
  const reason = `${chosen.node} has the highest committed seqno, ${chosen.seqno}${chosen.seqnoSource === 'wsrep-recover' ? ' (from --wsrep-recover)' : ''}${
    others.length ? `; ${others.map((s) => `${s.node} ${s.seqno}`).join(', ')}` : ''
  }`;
  return { decision: 'bootstrap', bootstrap: chosen.node, joinOrder, reason, warnings, table };
}
