// Cluster profiles: the YAML file (a ConfigMap in Kubernetes) that maps a cluster name to its
// endpoints, secret references, bucket and thresholds. Read by activities and the worker, never
// by workflows, so that a workflow input only ever names a cluster.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export const CLUSTER_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const secretRef = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name') }),
    z.strictObject({ file: z.string().min(1) }),
    z.strictObject({ kubernetes: z.strictObject({ name: z.string().min(1), key: z.string().min(1) }) }),
  ],
  { error: 'a secret reference: { env: NAME } or { file: /path } or { kubernetes: { name, key } }' },
);
export type SecretRef = z.infer<typeof secretRef>;

const port = z.number().int().min(1).max(65535);

/** The values a node-control command may name; each is checked against a pattern before it is put in. */
export const COMMAND_PLACEHOLDERS = ['node', 'host', 'port', 'pod'] as const;

/**
 * One command as an argv array, run without a shell. `{node}`, `{host}`, `{port}` and `{pod}` are
 * replaced by the node's values (checked against patterns first); nothing else is interpolated.
 */
const commandArgv = z
  .array(z.string().min(1))
  .min(1)
  .refine(
    (argv) => argv.every((arg) => [...arg.matchAll(/\{([^}]*)\}/g)].every((m) => (COMMAND_PLACEHOLDERS as readonly string[]).includes(m[1]!))),
    { message: `an argv list whose only placeholders are ${COMMAND_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}` },
  );

/**
 * How a runbook starts, stops and inspects the database processes themselves (galeraRecover, the
 * failover's fencing). `process`: commands run by the worker (the local stack, or a wrapper such as
 * ssh); `kubernetes`: the node's pod, through the Kubernetes API.
 */
const processControl = z.strictObject({
  kind: z.literal('process'),
  /** Working directory of the commands; a relative one is relative to the profile file's directory. */
  cwd: z.string().min(1).optional(),
  timeoutSeconds: z.number().int().positive().default(300),
  /** Starts the node so that it joins its cluster (or, for replication, starts it as it is configured). */
  start: commandArgv.optional(),
  /** Starts a Galera node as the first node of a new cluster: sets safe_to_bootstrap, starts with --wsrep-new-cluster. */
  bootstrap: commandArgv.optional(),
  stop: commandArgv.optional(),
  /** Prints the Galera node's grastate.dat. */
  grastate: commandArgv.optional(),
  /** Runs mariadbd --wsrep-recover on the stopped node and prints its log ("WSREP: Recovered position: uuid:seqno"). */
  recover: commandArgv.optional(),
  /** Makes the server start read-only from its next start on (a failed-over primary that comes back). */
  fence: commandArgv.optional(),
  unfence: commandArgv.optional(),
});

const kubernetesControl = z.strictObject({
  kind: z.literal('kubernetes'),
  /** The PersistentVolumeClaim holding a node's data directory; {pod} is the node's pod. */
  dataClaim: z.string().min(1).default('data-{pod}'),
  /** Where the data directory is mounted in the database container. */
  dataDir: z.string().startsWith('/').default('/var/lib/mysql'),
});

const nodeControl = z.discriminatedUnion('kind', [processControl, kubernetesControl], {
  error: 'a node control: { kind: process, ... } or { kind: kubernetes, ... }',
});
export type NodeControlProfile = z.infer<typeof nodeControl>;

export const NODE_ACTIONS = ['start', 'bootstrap', 'stop', 'grastate', 'recover', 'fence', 'unfence'] as const;
export type NodeAction = (typeof NODE_ACTIONS)[number];
export type ProcessControlProfile = z.infer<typeof processControl>;

const mysqlNode = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a node name of letters, digits, "_", "." or "-"'),
  host: z.string().min(1),
  port: port.default(3306),
  role: z.enum(['primary', 'replica', 'member']).optional(),
  /** The pod that runs this node, for routing labels and restarts through the Kubernetes API. */
  pod: z.string().optional(),
});

const sqlIdentifier = z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'a name of letters, digits and "_" (at most 64)');

/** A set of versioned SQL migrations (migrateSchema): where the files are, and where they apply. */
const migrationSet = z.strictObject({
  /** A directory of <version>_<description>.sql files on every worker (a mounted ConfigMap or volume); relative to this file. */
  directory: z.string().min(1),
  database: sqlIdentifier,
  /** The table in that database that records, per version, the checksum and the last applied statement. */
  ledgerTable: sqlIdentifier.default('db_runbooks_migrations'),
  /** Create the database when it does not exist (a fresh install). */
  createDatabase: z.boolean().default(false),
  /** Session settings the application's migrations use, when they differ from the server's globals. */
  session: z
    .strictObject({
      sqlMode: z.string().regex(/^[A-Za-z_,]*$/, 'a sql_mode: comma-separated mode names').optional(),
      timeZone: z.string().regex(/^(SYSTEM|[+-]\d{1,2}:\d{2}|[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*)$/, 'a time zone: SYSTEM, +08:00 or a named zone').optional(),
    })
    .optional(),
});

const mysql = z.strictObject({
  topology: z.enum(['standalone', 'replication', 'galera']),
  user: z.string().min(1),
  password: secretRef,
  nodes: z.array(mysqlNode).min(1),
  connectTimeoutMs: z.number().int().positive().default(5000),
  migrations: z.record(z.string().regex(/^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/, 'a migration set name of lowercase letters, digits, "_" and "-"'), migrationSet).optional(),
  /** The account replicas connect with (CHANGE MASTER TO ... MASTER_USER): switchover and failover point replicas with it. */
  replicationUser: z.string().regex(/^[A-Za-z0-9_.-]{1,80}$/, 'a MySQL user name of letters, digits, "_", "." or "-"').optional(),
  replicationPassword: secretRef.optional(),
  control: nodeControl.optional(),
});

const etcd = z.strictObject({
  endpoints: z.array(z.url()).min(1),
  username: z.string().optional(),
  password: secretRef.optional(),
  /** The keys the database keeps its metadata under: backed up, migrated and validated by the upgrade runbook. */
  metadataPrefix: z.string().min(1).default('/'),
});

const s3 = z.strictObject({
  endpoint: z.url().optional(),
  region: z.string().default('us-east-1'),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
  prefix: z.string().regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, 'empty or a key prefix ending in "/"').default(''),
  forcePathStyle: z.boolean().default(false),
  accessKeyId: secretRef.optional(),
  secretAccessKey: secretRef.optional(),
});

/** backupDatabase and restoreDatabase: what is dumped, how, how long it is kept, how often a backup is restored to check it. */
const backup = z.strictObject({
  /** The databases to back up; default every database except the system ones and the scratch ones. */
  databases: z.array(sqlIdentifier).min(1).optional(),
  /** The MySQL node (of the mysql section) to dump from; default the node with role primary, else the first. */
  node: z.string().optional(),
  compression: z.enum(['gzip', 'zstd']).default('gzip'),
  retention: z
    .strictObject({
      /** Keep the newest backup of each of this many most recent days that have one. */
      daily: z.number().int().min(0).max(3660).default(7),
      /** Keep the newest backup of each of this many most recent ISO weeks that have one. */
      weekly: z.number().int().min(0).max(520).default(4),
    })
    .prefault({}),
  /** Restore every Nth backup into a scratch database and compare it with its manifest (1: every run, 0: never). */
  verifyEvery: z.number().int().min(0).max(1000).default(1),
  /** Scratch databases of the verification are named <prefix>_<run>; never backed up. */
  scratchDatabasePrefix: z.string().regex(/^[A-Za-z0-9_]{1,24}$/, 'a name prefix of letters, digits and "_" (at most 24)').default('dbr_verify'),
  /** The dump and restore clients (Debian mariadb-client); a MySQL server wants mysqldump and mysql. */
  dumpCommand: z.string().min(1).default('mariadb-dump'),
  restoreCommand: z.string().min(1).default('mariadb'),
  /** How long the dump waits for FLUSH TABLES WITH READ LOCK (the instant its snapshot and position are taken). */
  lockWaitTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
});

const workload = z.strictObject({
  kind: z.enum(['StatefulSet', 'Deployment']),
  name: z.string().min(1),
  selector: z.string().min(1),
  container: z.string().min(1),
  /** The pod label that holds a pod's role (for example primary / replica), reported with each pod. */
  roleLabel: z.string().min(1).optional(),
});

/** Webhook URLs carry their own credentials (Slack's do): give them as secret references in production. */
const notify = z.strictObject({
  slackWebhookUrl: z.union([z.url(), secretRef]).optional(),
  jsonWebhookUrl: z.union([z.url(), secretRef]).optional(),
});

const health = z.strictObject({
  maxReplicationLagSeconds: z.number().nonnegative().default(30),
  maxGaleraRecvQueueAvg: z.number().nonnegative().default(0.5),
  expectedGaleraClusterSize: z.number().int().positive().optional(),
  maxEtcdDbSizeBytes: z.number().int().positive().default(2 * 1024 * 1024 * 1024),
  /** A container restart within this many seconds of the check is reported as a warning. */
  recentRestartSeconds: z.number().int().positive().default(3600),
});

const addressRegistry = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('sql'),
      /** The MySQL node (of the mysql section) that holds the catalog; default the first one. */
      node: z.string().optional(),
      database: sqlIdentifier,
      table: sqlIdentifier,
      columns: z.strictObject({ name: sqlIdentifier, host: sqlIdentifier, port: sqlIdentifier, role: sqlIdentifier.optional() }),
    }),
    z.strictObject({
      kind: z.literal('etcd'),
      /** Each node is a JSON record {name, host, port, role} at <prefix><node name>. */
      prefix: z.string().min(1),
    }),
    z.strictObject({
      kind: z.literal('command'),
      /** argv printing one registered node per line: name, host, port[, role], tab-separated. */
      list: z.array(z.string()).min(1),
      /** argv run once per node to change: {node} {host} {port} {role}, or {node:sql} etc. for an SQL string literal. */
      update: z.array(z.string()).min(1),
      /** Environment of both commands: plain values, or secret references (never in argv, where `ps` shows them). */
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.union([z.string(), secretRef])).default({}),
      timeoutSeconds: z.number().int().positive().max(3600).default(60),
    }),
  ],
  { error: 'a registry: { kind: sql, ... } or { kind: etcd, prefix } or { kind: command, list, update }' },
);

const addressRefresh = z.strictObject({
  registry: addressRegistry,
  /** The port each pod's database listens on: what the catalog records next to the pod's address. */
  port,
  /** A pod annotation that holds the node's name in the catalog; default the pod name. */
  nodeNameAnnotation: z.string().min(1).optional(),
  /** How long the refresh waits after the last pod change before it reads and writes (several pods restarting at once make one run). */
  quietSeconds: z.number().min(0).max(600).default(5),
  /** How long it waits for a pod that has no address yet. */
  waitForAddressSeconds: z.number().int().min(0).max(3600).default(300),
  /** Whether the worker watches this cluster's pods and starts a refresh on a change. */
  watch: z.boolean().default(true),
});

const clusterProfile = z.strictObject({
  description: z.string().optional(),
  namespace: z.string().regex(CLUSTER_NAME_PATTERN, 'a Kubernetes namespace name').optional(),
  workload: workload.optional(),
  mysql: mysql.optional(),
  etcd: etcd.optional(),
  s3: s3.optional(),
  notify: notify.optional(),
  backup: backup.prefault({}),
  health: health.prefault({}),
  failover: z
    .strictObject({
      strategy: z.enum(['gtid', 'galera', 'vitess']).optional(),
      /** The most a replica may lag to be promoted (default: health.maxReplicationLagSeconds). */
      maxLagSeconds: z.number().nonnegative().optional(),
      /** A transaction open longer than this on the primary stops a switchover at its pre-flight. */
      maxTransactionSeconds: z.number().int().positive().default(30),
      /** After the primary turns read-only, how long open write transactions get before their sessions are killed. */
      writerGraceSeconds: z.number().nonnegative().max(600).default(2),
      /** How long a replica gets to apply everything its primary had before the switch is given up. */
      catchUpTimeoutSeconds: z.number().int().positive().max(3600).default(60),
      /** vitessDrain: how long the operator gets to move the primary away from the drained tablet. */
      drainTimeoutSeconds: z.number().int().positive().max(24 * 3600).default(600),
    })
    .prefault({}),
  addressRefresh: addressRefresh.optional(),
  lock: z
    .strictObject({
      /** How long a runbook waits for the cluster lock before it fails naming the holder. */
      waitSeconds: z.number().int().min(0).max(7 * 24 * 3600).default(600),
      /** How long a lease lasts without renewal (the holder renews every third of it). */
      leaseSeconds: z.number().int().min(3).max(3600).default(120),
      /**
       * Held longer than this, the holder is reported once (metric, webhooks, runbook status), and
       * keeps the lock. Above the longest run expected: a long backup or an approval wait.
       */
      maxHoldSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(4 * 3600),
    })
    .prefault({}),
});

const profileFile = z.strictObject({
  clusters: z.record(z.string().regex(CLUSTER_NAME_PATTERN, 'a cluster name of lowercase letters, digits and "-"'), clusterProfile),
});

export type ClusterProfile = z.infer<typeof clusterProfile>;
export type MysqlProfile = z.infer<typeof mysql>;
export type MysqlNodeProfile = z.infer<typeof mysqlNode>;
export type MigrationSetProfile = z.infer<typeof migrationSet>;
export type EtcdProfile = z.infer<typeof etcd>;
export type S3Profile = z.infer<typeof s3>;
export type HealthThresholds = z.infer<typeof health>;
export type BackupProfile = z.infer<typeof backup>;
export type AddressRefreshProfile = z.infer<typeof addressRefresh>;
export type AddressRegistryProfile = z.infer<typeof addressRegistry>;

export class ProfileError extends Error {
  override name = 'ProfileError';
}

const SECRET_FIELDS = new Set(['password', 'replicationPassword', 'accessKeyId', 'secretAccessKey', 'slackWebhookUrl', 'jsonWebhookUrl']);

function describeValue(value: unknown): string {
  if (value === '(value not shown)') return value;
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)), '');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value: unknown = root;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function expectation(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'no such field';
    case 'invalid_key':
      return 'not a valid name: expected lowercase letters, digits and "-"';
    case 'invalid_type':
      return value === undefined ? 'required' : `expected ${issue.expected === 'array' ? 'a list' : issue.expected === 'object' || issue.expected === 'record' ? 'an object' : `a ${issue.expected}`}, got ${describeValue(value)}`;
    case 'too_small':
      return issue.origin === 'array' ? `expected at least ${String(issue.minimum)} item(s)` : `expected ${issue.origin === 'string' ? 'a non-empty string' : `a number >= ${String(issue.minimum)}`}, got ${describeValue(value)}`;
    case 'too_big':
      return `expected at most ${String(issue.maximum)}, got ${describeValue(value)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(value)}`;
    default:
      return `expected ${issue.message.replace(/^Invalid (input|string): /, '').replace(/^Invalid URL$/, 'a URL')}, got ${describeValue(value)}`;
  }
}

/**
 * Parses and validates profile YAML; the error names the file, the field and what was expected.
 * Relative paths in it (node-control working directories, migration directories) are relative to
 * baseDir, the directory of the file they were read from, like the ConfigMap they come with.
 */
export function parseProfiles(text: string, source: string, baseDir: string): Map<string, ClusterProfile> {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ProfileError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = profileFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    // A secret pasted into a secret-reference field must not be echoed into the worker's log.
    const holdsSecret = at.some((part) => typeof part === 'string' && SECRET_FIELDS.has(part));
    const value = holdsSecret ? '(value not shown)' : valueAt(raw, at);
    throw new ProfileError(`${source}: ${fieldPath(at) || '(top level)'}: ${expectation(issue, value)}`);
  }
  const clusters = new Map(Object.entries(parsed.data.clusters));
  for (const profile of clusters.values()) {
    const control = profile.mysql?.control;
    if (control?.kind === 'process' && control.cwd) control.cwd = path.resolve(baseDir, control.cwd);
    for (const set of Object.values(profile.mysql?.migrations ?? {})) set.directory = path.resolve(baseDir, set.directory);
  }
  return clusters;
}

export function loadProfiles(file: string): Map<string, ClusterProfile> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProfileError(`${file}: cannot read the cluster profile file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseProfiles(text, file, path.dirname(path.resolve(file)));
}
