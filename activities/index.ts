// All activities, built from the connectors the worker (or a test) hands in.
import { createAddressRegistryActivities } from './address-registry';
import { createEtcdBackupCatalogActivities } from './backup-catalog';
import { createBackupActivities } from './backup';
import { createClusterActivities, createProfileSource, type ProfileSource } from './cluster';
import { createEtcdActivities, createEtcdConnector, createEtcdSnapshotActivities, type EtcdConnector } from './etcd';
import {
  createKubernetesActivities,
  createKubernetesConnector,
  createKubernetesSecretReader,
  kubernetesClientSource,
  type KubernetesClientSource,
  type KubernetesConnector,
} from './kubernetes';
import { createMetadataActivities } from './metadata';
import { createDirectorySource, createMigrationActivities, type MigrationFileSource } from './migrations';
import { createGaleraActivities, createMysqlActivities, createMysqlConnector, createReplicationActivities, type MysqlConnector } from './mysql';
import { createNotifyActivities } from './notify';
import { createCommandRunner, createNodeControlActivities, type CommandRunner } from './nodes';
import type { ClusterProfile } from './profile';
import { createS3Activities, createS3Connector, type S3Connector } from './s3';
import { createSecretResolver, type SecretResolver } from './secrets';
import { createTemporalActivities, type TemporalDeps } from './temporal';

export interface Connectors {
  profiles: ProfileSource;
  mysql: MysqlConnector;
  etcd: EtcdConnector;
  s3: S3Connector;
  kubernetes: KubernetesConnector;
  secrets: SecretResolver;
  /** Where migration sets' files are read from: the worker's file system. */
  migrationFiles: MigrationFileSource;
  /** Runs the node-control commands of `control: { kind: process }` profiles. */
  commands: CommandRunner;
}

export function createConnectors(options: {
  profiles: ReadonlyMap<string, ClusterProfile>;
  profileSource: string;
  env?: NodeJS.ProcessEnv;
  /** The worker's DBR_KUBECONFIG; without it, the service account of the pod the worker runs in. */
  kubeconfigPath?: string;
  /** Ready-made API clients instead (tests that observe or interfere with the calls). */
  kubernetesClients?: KubernetesClientSource;
}): Connectors {
  const profiles = createProfileSource(options.profiles, options.profileSource);
  const kubernetesClients = options.kubernetesClients ?? kubernetesClientSource({ kubeconfigPath: options.kubeconfigPath, env: options.env });
  const secrets = createSecretResolver({ env: options.env, kubernetes: createKubernetesSecretReader(kubernetesClients) });
  return {
    profiles,
    mysql: createMysqlConnector({ profiles, secrets }),
    etcd: createEtcdConnector({ profiles, secrets }),
    s3: createS3Connector({ profiles, secrets }),
    kubernetes: createKubernetesConnector({ profiles, clients: kubernetesClients }),
    secrets,
    migrationFiles: createDirectorySource(),
    commands: createCommandRunner(),
  };
}

export function createActivities(connectors: Connectors & TemporalDeps, options: { kubernetesPollIntervalMs?: number } = {}) {
  return {
    ...createTemporalActivities({ client: connectors.client }),
    ...createClusterActivities({ profiles: connectors.profiles }),
    ...createMysqlActivities({ mysql: connectors.mysql }),
    ...createMigrationActivities({ profiles: connectors.profiles, mysql: connectors.mysql, files: connectors.migrationFiles }),
    ...createReplicationActivities({ mysql: connectors.mysql, secrets: connectors.secrets, profiles: connectors.profiles }),
    ...createGaleraActivities({ mysql: connectors.mysql }),
    ...createNodeControlActivities({ profiles: connectors.profiles, runner: connectors.commands, kubernetes: connectors.kubernetes, mysql: connectors.mysql }),
    ...createEtcdActivities({ etcd: connectors.etcd }),
    ...createEtcdSnapshotActivities({ etcd: connectors.etcd, s3: connectors.s3 }),
    ...createS3Activities({ s3: connectors.s3 }),
    ...createEtcdBackupCatalogActivities({ s3: connectors.s3 }),
    ...createNotifyActivities({ profiles: connectors.profiles, secrets: connectors.secrets }),
    ...createMetadataActivities({ etcd: connectors.etcd, s3: connectors.s3 }),
    ...createBackupActivities({ profiles: connectors.profiles, mysql: connectors.mysql, s3: connectors.s3, secrets: connectors.secrets }),
    ...createAddressRegistryActivities({ ...connectors, pollIntervalMs: options.kubernetesPollIntervalMs }),
    ...createKubernetesActivities({ kubernetes: connectors.kubernetes, pollIntervalMs: options.kubernetesPollIntervalMs }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
