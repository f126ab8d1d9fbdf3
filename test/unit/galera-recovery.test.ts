import { parseGrastate, parseRecoveredPosition } from '../../activities/galera-state';
import type { GaleraNodeState } from '../../activities/nodes';
import { planGaleraRecovery } from '../../workflows/galera-plan';

// As a node of the local stack writes it (scripts/stack.sh grastate galera1).
const GRASTATE = `# GALERA saved state
version: 2.1
uuid:    e4a9cd34-e701-11f1-a2e6-73427e49ef77
seqno:   -1
safe_to_bootstrap: 0
`;

const UUID = 'e4a9cd34-e701-11f1-a2e6-73427e49ef77';
const OTHER = '0f0e0d0c-0b0a-11f1-a2e6-73427e49ef77';

test('grastate.dat and the --wsrep-recover log parse', () => {
  expect(parseGrastate(GRASTATE)).toEqual({ version: '2.1', uuid: UUID, seqno: -1, safeToBootstrap: false });
  expect(parseGrastate(GRASTATE.replace('seqno:   -1', 'seqno:   42').replace('safe_to_bootstrap: 0', 'safe_to_bootstrap: 1'))).toMatchObject({ seqno: 42, safeToBootstrap: true });
  expect(() => parseGrastate('# GALERA saved state\nversion: 2.1\n')).toThrow('grastate.dat has no valid uuid line (got null)');
  expect(() => parseGrastate(GRASTATE.replace('seqno:   -1', 'seqno:'))).toThrow('grastate.dat has no valid seqno line');
  const log = `2026-11-23  8:10:01 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=46846
2026-11-23  8:10:01 0 [Note] WSREP: Recovered position: ${UUID}:1234
`;
  expect(parseRecoveredPosition(log)).toEqual({ uuid: UUID, seqno: 1234 });
  expect(parseRecoveredPosition('[Note] InnoDB: Starting shutdown...')).toBeNull();
});

function node(name: string, seqno: number, extra: Partial<GaleraNodeState> = {}): GaleraNodeState {
  return { node: name, uuid: UUID, seqno, safeToBootstrap: false, seqnoSource: 'wsrep-recover', grastateSeqno: -1, ...extra };
}

const ORDER = ['galera1', 'galera2', 'galera3'];

test('the node with the highest committed seqno is bootstrapped, the others join most advanced first', () => {
  const plan = planGaleraRecovery([node('galera1', 10), node('galera2', 12, { seqnoSource: 'grastate', grastateSeqno: 12 }), node('galera3', 15)], ORDER);
  expect(plan).toMatchObject({ decision: 'bootstrap', bootstrap: 'galera3', joinOrder: ['galera2', 'galera1'] });
  if (plan.decision !== 'bootstrap') throw new Error('expected a bootstrap');
  expect(plan.reason).toBe('galera3 has the highest committed seqno, 15 (from --wsrep-recover); galera1 10, galera2 12');
  expect(plan.table).toEqual([
    'node     uuid                                  seqno  seqno from                          safe_to_bootstrap',
    `galera1  ${UUID}  10     --wsrep-recover (grastate.dat: -1)  0`,
    `galera2  ${UUID}  12     grastate.dat                        0`,
    `galera3  ${UUID}  15     --wsrep-recover (grastate.dat: -1)  0`,
  ]);
});

test('a tie goes to the node marked safe_to_bootstrap, then to the profile order; a safe but older node is a warning', () => {
  expect(planGaleraRecovery([node('galera1', 7), node('galera2', 7, { safeToBootstrap: true }), node('galera3', 7)], ORDER)).toMatchObject({ bootstrap: 'galera2' });
  expect(planGaleraRecovery([node('galera1', 7), node('galera2', 7), node('galera3', 7)], ORDER)).toMatchObject({ bootstrap: 'galera1', joinOrder: ['galera2', 'galera3'] });
  expect(planGaleraRecovery([node('galera1', 9, { safeToBootstrap: true }), node('galera2', 11), node('galera3', 3)], ORDER)).toMatchObject({
    bootstrap: 'galera2',
    warnings: ['galera1 is marked safe_to_bootstrap but galera2 is more advanced (seqno 11 against 9)'],
  });
});

test('different histories are refused with the per-node table; a node that never joined has none', () => {
  const refused = planGaleraRecovery([node('galera1', 10), node('galera2', 30, { uuid: OTHER }), node('galera3', 12)], ORDER);
  expect(refused.decision).toBe('refuse');
  expect(refused.reason).toContain(`the nodes hold different histories: ${UUID} (galera1, galera3) and ${OTHER} (galera2)`);
  expect(refused.table).toHaveLength(4);
  const fresh = planGaleraRecovery([node('galera1', 10), node('galera2', -1, { uuid: '00000000-0000-0000-0000-000000000000' }), node('galera3', 12)], ORDER);
  expect(fresh).toMatchObject({ decision: 'bootstrap', bootstrap: 'galera3', joinOrder: ['galera1', 'galera2'] });
  const unknown = planGaleraRecovery([node('galera1', -1), node('galera2', -1)], ORDER);
  expect(unknown.decision).toBe('refuse');
  expect(unknown.reason).toContain('no node knows its last committed transaction');
});
