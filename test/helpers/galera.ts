// The stack's 3-node Galera cluster as the galeraRecover tests and the reliability entry use it:
// what a user reads of each node, and bringing the cluster back whole (every node started and Synced).
import { eventually } from './kubernetes';
import { sql } from './replication';
import { stack } from './stack';

export const GALERA_NODES = { galera1: 3321, galera2: 3322, galera3: 3323 } as const;
export type GaleraNode = keyof typeof GALERA_NODES;
export const GALERA_NODE_NAMES = Object.keys(GALERA_NODES) as GaleraNode[];

/** wsrep_cluster_size, wsrep_cluster_status, wsrep_local_state_comment and wsrep_ready of the node. */
export async function galeraStatus(node: GaleraNode): Promise<Record<string, string>> {
  const rows = await sql<{ Variable_name: string; Value: string }>(
    GALERA_NODES[node],
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_local_state_comment', 'wsrep_ready')",
  );
  return Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
}

export async function wholeGaleraCluster(): Promise<void> {
  await eventually(
    'three Synced Galera nodes',
    async () => {
      const all = await Promise.all(GALERA_NODE_NAMES.map(galeraStatus));
      return all.every((s) => s.wsrep_cluster_size === '3' && s.wsrep_local_state_comment === 'Synced' && s.wsrep_ready === 'ON') ? true : undefined;
    },
    180_000,
  );
}

/** Every node running again (the stack script joins a node to a running one, or bootstraps the best one) and Synced. */
export async function restoreGaleraCluster(): Promise<void> {
  for (const node of GALERA_NODE_NAMES) await stack('start', node);
  await wholeGaleraCluster();
}
