// The worker's configuration: environment variables plus the cluster profile file, read once at
// start. A bad value stops the worker with one line naming the variable or the file and field.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadProfiles, type ClusterProfile } from '../activities/profile';
import { TASK_QUEUE_DEFAULT } from '../workflows/definitions';
import { loadCodecKeys, type CodecKeys } from './codec';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The shape both NativeConnection (worker) and Connection (client) take. */
export interface TlsConfig {
  clientCertPair: { crt: Buffer; key: Buffer };
  serverRootCACertificate?: Buffer;
  serverNameOverride?: string;
}

export interface TemporalConnectionConfig {
  address: string;
  namespace: string;
  tls?: TlsConfig;
}

export interface WorkerConfig {
  temporal: TemporalConnectionConfig;
  taskQueue: string;
  profilesPath: string;
  profiles: Map<string, ClusterProfile>;
  workflowBundlePath?: string;
  maxConcurrentActivities: number;
  maxConcurrentWorkflowTasks: number;
  maxCachedWorkflows: number;
  shutdownGraceSeconds: number;
  kubeconfigPath?: string;
  codecKeys?: CodecKeys;
  /** host:port of the Prometheus endpoint, or undefined when turned off. */
  metricsAddress?: string;
  /** host:port of the /healthz and /readyz endpoint for Kubernetes probes, or undefined when off. */
  healthAddress?: string;
  /** How long the pod watcher's leader holds its Lease without renewing (others take over after it). */
  addressWatchLeaseSeconds: number;
}

type Env = Record<string, string | undefined>;

function wholeNumber(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) {
    throw new ConfigError(`${name}: expected a whole number >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function readFileVar(env: Env, name: string): Buffer | undefined {
  const file = env[name];
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Temporal address, namespace and optional mTLS, shared by the worker and the command-line client. */
export function loadTemporalConnectionConfig(env: Env = process.env): TemporalConnectionConfig {
  const address = env.TEMPORAL_ADDRESS || '127.0.0.1:7233';
  if (!/^[A-Za-z0-9.\-[\]:]+:\d+$/.test(address)) {
    throw new ConfigError(`TEMPORAL_ADDRESS: expected host:port, got ${JSON.stringify(address)}`);
  }
  const clientCert = readFileVar(env, 'TEMPORAL_TLS_CERT');
  const clientKey = readFileVar(env, 'TEMPORAL_TLS_KEY');
  if (Boolean(clientCert) !== Boolean(clientKey)) {
    throw new ConfigError(`${clientCert ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT'}: required when ${clientCert ? 'TEMPORAL_TLS_CERT' : 'TEMPORAL_TLS_KEY'} is set (mTLS needs both)`);
  }
  const tls: TlsConfig | undefined =
    clientCert && clientKey
      ? {
          clientCertPair: { crt: clientCert, key: clientKey },
          serverRootCACertificate: readFileVar(env, 'TEMPORAL_TLS_CA'),
          serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME || undefined,
        }
      : undefined;
  return { address, namespace: env.TEMPORAL_NAMESPACE || 'default', tls };
}

function listenAddress(env: Env, name: string, fallback: string): string | undefined {
  const raw = env[name] ?? fallback;
  if (raw === 'off' || raw === '') return undefined;
  if (!/^[A-Za-z0-9.\-[\]:]+:\d+$/.test(raw)) throw new ConfigError(`${name}: expected host:port or off, got ${JSON.stringify(raw)}`);
  return raw;
}

export function loadWorkerConfig(env: Env = process.env, cwd = process.cwd()): WorkerConfig {
  const temporal = loadTemporalConnectionConfig(env);
  const taskQueue = env.DBR_TASK_QUEUE || TASK_QUEUE_DEFAULT;
  const profilesPath = path.resolve(cwd, env.DBR_PROFILES || 'config/clusters.local.yaml');
  let profiles: Map<string, ClusterProfile>;
  try {
    profiles = loadProfiles(profilesPath);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const bundle = env.DBR_WORKFLOW_BUNDLE;
  if (bundle && !existsSync(bundle)) throw new ConfigError(`DBR_WORKFLOW_BUNDLE: no file at ${bundle} (build it with npm run build)`);
  const kubeconfigPath = env.DBR_KUBECONFIG || undefined;
  if (kubeconfigPath && !existsSync(kubeconfigPath)) throw new ConfigError(`DBR_KUBECONFIG: no file at ${kubeconfigPath}`);
  return {
    temporal,
    taskQueue,
    profilesPath,
    profiles,
    workflowBundlePath: bundle || undefined,
    maxConcurrentActivities: wholeNumber(env, 'DBR_MAX_CONCURRENT_ACTIVITIES', 20, 1),
    maxConcurrentWorkflowTasks: wholeNumber(env, 'DBR_MAX_CONCURRENT_WORKFLOW_TASKS', 10, 2),
    maxCachedWorkflows: wholeNumber(env, 'DBR_MAX_CACHED_WORKFLOWS', 200),
    shutdownGraceSeconds: wholeNumber(env, 'DBR_SHUTDOWN_GRACE_SECONDS', 30),
    kubeconfigPath,
    codecKeys: loadCodecKeys(env),
    metricsAddress: listenAddress(env, 'DBR_METRICS_ADDRESS', '0.0.0.0:9464'),
    healthAddress: listenAddress(env, 'DBR_HEALTH_ADDRESS', '0.0.0.0:8080'),
    addressWatchLeaseSeconds: wholeNumber(env, 'DBR_ADDRESS_WATCH_LEASE_SECONDS', 15, 3),
  };
}
