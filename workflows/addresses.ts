// What an address refresh changes: the difference between where the Kubernetes API says each node
// runs and what the database's catalog has registered. Pure, so the workflow decides it and the
// decision is in the history.

export interface PodAddress {
  /** The node's name in the catalog (the pod name, or the pod annotation the profile names). */
  node: string;
  pod: string;
  host: string;
  port: number;
  role: string | null;
}

export interface RegisteredNode {
  node: string;
  host: string;
  port: number;
  role: string | null;
}

export interface AddressUpdate {
  node: string;
  host: string;
  port: number;
  role: string | null;
  /** What the catalog held when it was read: the update applies only over it (no lost concurrent change). */
  previous: { host: string; port: number; role: string | null };
}

export interface AddressPlan {
  updates: AddressUpdate[];
  unchanged: string[];
  /** Pods whose node the catalog does not know: reported, never added (membership is the database's business). */
  unregistered: string[];
  /** Catalog nodes without a pod: reported, never removed. */
  withoutPod: string[];
}

export function planAddressUpdates(pods: readonly PodAddress[], registered: readonly RegisteredNode[]): AddressPlan {
  const catalog = new Map(registered.map((n) => [n.node, n]));
  const plan: AddressPlan = { updates: [], unchanged: [], unregistered: [], withoutPod: [] };
  const seen = new Set<string>();
  for (const pod of [...pods].sort((a, b) => a.node.localeCompare(b.node))) {
    seen.add(pod.node);
    const current = catalog.get(pod.node);
    if (!current) {
      plan.unregistered.push(pod.node);
      continue;
    }
    // A catalog without a role column keeps its roles as they are.
    const role = current.role === null ? null : (pod.role ?? current.role);
    if (current.host === pod.host && current.port === pod.port && current.role === role) {
      plan.unchanged.push(pod.node);
      continue;
    }
    plan.updates.push({ node: pod.node, host: pod.host, port: pod.port, role, previous: { host: current.host, port: current.port, role: current.role } });
  }
  plan.withoutPod = registered.map((n) => n.node).filter((n) => !seen.has(n)).sort();
  return plan;
}
