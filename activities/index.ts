// All activities, built from the connectors the worker (or a test) hands in.
import { createClusterActivities, createProfileSource, type ProfileSource } from './cluster';
import { createEtcdActivities, createEtcdConnector, type EtcdConnector } from './etcd';
import { createDirectorySource, createMigrationActivities, type MigrationFileSource } from './migrations';
import { createMysqlActivities, createMysqlConnector, type MysqlConnector } from './mysql';
import type { ClusterProfile } from './profile';
import { createS3Activities, createS3Connector, type S3Connector } from './s3';
import { createSecretResolver, type KubernetesSecretReader } from './secrets';
import { createTemporalActivities, type TemporalDeps } from './temporal';

export interface Connectors {
  profiles: ProfileSource;
  mysql: MysqlConnector;
  etcd: EtcdConnector;
  s3: S3Connector;
  /** Where migration sets' files are read from: the worker's file system. */
  migrationFiles: MigrationFileSource;
}

export function createConnectors(options: {
  profiles: ReadonlyMap<string, ClusterProfile>;
  profileSource: string;
  env?: NodeJS.ProcessEnv;
  kubernetes?: KubernetesSecretReader;
}): Connectors {
  const profiles = createProfileSource(options.profiles, options.profileSource);
  const secrets = createSecretResolver({ env: options.env, kubernetes: options.kubernetes });
  return {
    profiles,
    mysql: createMysqlConnector({ profiles, secrets }),
    etcd: createEtcdConnector({ profiles, secrets }),
    s3: createS3Connector({ profiles, secrets }),
    migrationFiles: createDirectorySource(),
  };
}

export function createActivities(connectors: Connectors & TemporalDeps) {
  return {
    ...createTemporalActivities({ client: connectors.client }),
    ...createClusterActivities({ profiles: connectors.profiles }),
    ...createMysqlActivities({ mysql: connectors.mysql }),
    ...createMigrationActivities({ profiles: connectors.profiles, mysql: connectors.mysql, files: connectors.migrationFiles }),
    ...createEtcdActivities({ etcd: connectors.etcd }),
    ...createS3Activities({ s3: connectors.s3 }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
