// The profile lookup every runbook starts with. Returns only what a workflow may see: names,
// roles and thresholds, never endpoints' credentials.
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterProfile, HealthThresholds } from './profile';

export interface ProfileSource {
  /** The cluster's profile; a non-retryable UnknownCluster failure names the field when there is none. */
  get(cluster: string): ClusterProfile;
}

export function createProfileSource(profiles: ReadonlyMap<string, ClusterProfile>, sourceName: string): ProfileSource {
  return {
    get(cluster) {
      const profile = profiles.get(cluster);
      if (!profile) {
        const known = [...profiles.keys()].sort().join(', ') || 'none';
        throw ApplicationFailure.nonRetryable(
          `cluster: unknown cluster "${cluster}" (not in ${sourceName}; known clusters: ${known})`,
          'UnknownCluster',
        );
      }
      return profile;
    },
  };
}

export interface ClusterPlan {
  cluster: string;
  namespace?: string;
  workload?: { kind: string; name: string };
  mysql?: { topology: 'standalone' | 'replication' | 'galera'; nodes: { name: string; role?: string; address: string }[] };
  etcd?: { endpoints: string[]; metadataPrefix: string };
  s3?: { bucket: string; prefix: string };
  notifications: boolean;
  failoverStrategy?: string;
  health: HealthThresholds;
  lock: { waitSeconds: number; leaseSeconds: number };
  addressRefresh?: { registry: 'sql' | 'etcd' | 'command'; quietSeconds: number; watch: boolean };
}

export function planOf(cluster: string, profile: ClusterProfile): ClusterPlan {
  return {
    cluster,
    namespace: profile.namespace,
    workload: profile.workload && { kind: profile.workload.kind, name: profile.workload.name },
    mysql: profile.mysql && {
      topology: profile.mysql.topology,
      nodes: profile.mysql.nodes.map((n) => ({ name: n.name, role: n.role, address: `${n.host}:${n.port}` })),
    },
    etcd: profile.etcd && { endpoints: profile.etcd.endpoints, metadataPrefix: profile.etcd.metadataPrefix },
    s3: profile.s3 && { bucket: profile.s3.bucket, prefix: profile.s3.prefix },
    notifications: Boolean(profile.notify?.slackWebhookUrl ?? profile.notify?.jsonWebhookUrl),
    failoverStrategy: profile.failover?.strategy,
    health: profile.health,
    lock: profile.lock,
    addressRefresh: profile.addressRefresh && {
      registry: profile.addressRefresh.registry.kind,
      quietSeconds: profile.addressRefresh.quietSeconds,
      watch: profile.addressRefresh.watch,
    },
  };
}

export function createClusterActivities(deps: { profiles: ProfileSource }) {
  return {
    describeCluster({ cluster }: { cluster: string }): Promise<ClusterPlan> {
      return Promise.resolve(planOf(cluster, deps.profiles.get(cluster)));
    },
  };
}
