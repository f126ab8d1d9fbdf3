// The profile lookup every runbook starts with. Returns only what a workflow may see: names,
// roles and thresholds, never endpoints' credentials.
import { ApplicationFailure } from '@temporalio/common';
import { NODE_ACTIONS, type ClusterProfile, type HealthThresholds, type NodeAction, type NodeControlProfile } from './profile';

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
  mysql?: {
    topology: 'standalone' | 'replication' | 'galera';
    nodes: { name: string; role?: string; address: string; pod?: string }[];
    /** Whether the profile names the account replicas connect with (needed to point a replica at a new primary). */
    replicationAccount: boolean;
    /** How the database processes are started, stopped and inspected, and which of those the profile provides. */
    control?: { kind: NodeControlProfile['kind']; actions: NodeAction[] };
  };
  /** Where the role label that routes clients lives: a Service selecting `<roleLabel>=primary` follows it. */
  routing?: { namespace: string; roleLabel: string };
  etcd?: { endpoints: string[]; metadataPrefix: string };
  s3?: { bucket: string; prefix: string };
  /** What backupDatabase does when its input leaves it to the profile. */
  backup?: { compression: 'gzip' | 'zstd'; databases?: string[]; retention: { daily: number; weekly: number }; verifyEvery: number };
  notifications: boolean;
  failoverStrategy?: string;
  failover: {
    maxLagSeconds: number;
    maxTransactionSeconds: number;
    writerGraceSeconds: number;
    catchUpTimeoutSeconds: number;
    drainTimeoutSeconds: number;
  };
  health: HealthThresholds;
  /** maxHoldSeconds is absent from plans in histories recorded before it. */
  lock: { waitSeconds: number; leaseSeconds: number; maxHoldSeconds?: number };
  addressRefresh?: { registry: 'sql' | 'etcd' | 'command'; quietSeconds: number; watch: boolean };
}

/** The actions a node control can carry out as the profile configures it. */
export function controlActions(control: NodeControlProfile): NodeAction[] {
  if (control.kind === 'process') return NODE_ACTIONS.filter((action) => control[action] !== undefined);
  return [];
}

export function planOf(cluster: string, profile: ClusterProfile): ClusterPlan {
  const { failover } = profile;
  return {
    cluster,
    namespace: profile.namespace,
    workload: profile.workload && { kind: profile.workload.kind, name: profile.workload.name },
    mysql: profile.mysql && {
      topology: profile.mysql.topology,
      nodes: profile.mysql.nodes.map((n) => ({ name: n.name, role: n.role, address: `${n.host}:${n.port}`, pod: n.pod })),
      replicationAccount: Boolean(profile.mysql.replicationUser && profile.mysql.replicationPassword),
      control: profile.mysql.control && { kind: profile.mysql.control.kind, actions: controlActions(profile.mysql.control) },
    },
    routing: profile.namespace && profile.workload?.roleLabel ? { namespace: profile.namespace, roleLabel: profile.workload.roleLabel } : undefined,
    etcd: profile.etcd && { endpoints: profile.etcd.endpoints, metadataPrefix: profile.etcd.metadataPrefix },
    s3: profile.s3 && { bucket: profile.s3.bucket, prefix: profile.s3.prefix },
    backup: { compression: profile.backup.compression, databases: profile.backup.databases, retention: profile.backup.retention, verifyEvery: profile.backup.verifyEvery },
    notifications: Boolean(profile.notify?.slackWebhookUrl ?? profile.notify?.jsonWebhookUrl),
    failoverStrategy: failover.strategy,
    failover: {
      maxLagSeconds: failover.maxLagSeconds ?? profile.health.maxReplicationLagSeconds,
      maxTransactionSeconds: failover.maxTransactionSeconds,
      writerGraceSeconds: failover.writerGraceSeconds,
      catchUpTimeoutSeconds: failover.catchUpTimeoutSeconds,
      drainTimeoutSeconds: failover.drainTimeoutSeconds,
    },
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
