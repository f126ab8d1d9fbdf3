// The reliability suite's table: one entry per runbook and main path. An entry says how to bring
// its cluster to the starting state, the input, and what a user checks afterwards; the harness
// (harness.ts) runs it undisturbed, crashed at its activity boundaries, and with servers stopped.
// A new runbook is one more entry here (and its faults in reliability.test.ts).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Etcd3 } from 'etcd3';
import type { BackupDatabaseResult } from '../../workflows/backupDatabase';
import type { BackupEtcdResult } from '../../workflows/backupEtcd';
import { applyMigration, type EtcdMigrationSpec } from '../../workflows/etcd-migration';
import type { FailoverResult } from '../../workflows/failover';
import type { GaleraRecoverResult } from '../../workflows/galeraRecover';
import type { ClusterHealthReport } from '../../workflows/health';
import type { MigrateSchemaResult } from '../../workflows/migrateSchema';
import type { RefreshNodeAddressesResult } from '../../workflows/refreshNodeAddresses';
import type { RestoreDatabaseResult } from '../../workflows/restoreDatabase';
import type { SwitchoverResult } from '../../workflows/switchover';
import type { ClusterChangeResult } from '../../workflows/upgrade-engine';
import { DRAIN_ANNOTATION, type VitessDrainResult } from '../../workflows/vitessDrain';
import { GALERA_NODE_NAMES, GALERA_NODES, galeraStatus, restoreGaleraCluster } from '../helpers/galera';
import { Kubelet } from '../helpers/kubelet';
import { adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, podRoles, setPodRoles, type AdminClients } from '../helpers/kubernetes';
import { facts, FAILOVER_SET, FAILOVER_SET_MYSQL, FAILOVER_TABLE, idsOf, insertIds, PAIR, resetFailoverSet, restorePair, seedFailoverSet, sql } from '../helpers/replication';
import { REPO_ROOT, stack, STACK_STATE } from '../helpers/stack';
import { startRecordingWebhook, type RecordingWebhook } from '../helpers/webhook';
import type { Scenario } from './harness';
import { s3Client } from '../helpers/backup';

const run = randomBytes(3).toString('hex');
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

// ------------------------------------------------------------------ shared clients, made on first use

let kube: { admin: AdminClients; namespace: string; kubelet: Kubelet; stops: (() => Promise<void>)[] } | undefined;
async function kubernetes(): Promise<NonNullable<typeof kube>> {
  if (!kube) {
    const admin = adminClients();
    kube = { admin, namespace: await createTestNamespace(admin, 'dbr-reliability'), kubelet: new Kubelet(admin), stops: [] };
  }
  return kube;
}

let s3client: S3Client | undefined;
function s3(): S3Client {
  s3client ??= s3Client();
  return s3client;
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const list = await s3().send(new ListObjectsV2Command({ Bucket: 'db-runbooks', Prefix: prefix }));
  return (list.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

let etcdClient: Etcd3 | undefined;
function etcd(): Etcd3 {
  etcdClient ??= new Etcd3({ hosts: 'http://127.0.0.1:2379' });
  return etcdClient;
}

async function statefulSet(name: string, replicas: number, image: string, container: string, autoReady: string, labels?: Record<string, string>): Promise<void> {
  const k = await kubernetes();
  await createStatefulSet(k.admin, k.namespace, { name, replicas, image, container, labels });
  const node = k.kubelet.autoReady(k.namespace, autoReady, { neverReadyImage: /broken/ });
  k.stops.push(() => node.stop());
  await eventually(`${name} ready`, async () => ((await k.admin.apps.readNamespacedStatefulSet({ name, namespace: k.namespace })).status?.readyReplicas === replicas ? true : undefined));
}

/** Ends what the entries started: simulated kubelets and operators, the namespace, clients. */
export async function closeScenarios(): Promise<void> {
  if (kube) {
    for (const stop of kube.stops) await stop();
    await deleteTestNamespace(kube.admin, kube.namespace);
  }
  etcdClient?.close();
  s3client?.destroy();
  await webhook?.close();
}

// ------------------------------------------------------------------ clusterHealth

export const clusterHealthLocal: Scenario<ClusterHealthReport> = {
  runbook: 'clusterHealth',
  path: 'success',
  cluster: 'local',
  setup: async () => {},
  input: () => ({ cluster: 'local' }),
  outcome: (r) => r.verdict,
  // Read-only: the one thing it writes is the S3 probe object, which it deletes.
  finalState: async () => ({ probeObjectsLeft: (await objectsUnder('local/.db-runbooks-probe/')).length }),
};

// ------------------------------------------------------------------ vitessDrain

const TABLET_TYPE = 'planetscale.com/tablet-type';

async function tablets(app: string): Promise<{ name: string; type?: string; drain?: string }[]> {
  const k = await kubernetes();
  const pods = await k.admin.core.listNamespacedPod({ namespace: k.namespace, labelSelector: `app=${app}` });
  return pods.items
    .map((p) => ({ name: p.metadata!.name!, type: p.metadata?.labels?.[TABLET_TYPE], drain: p.metadata?.annotations?.[DRAIN_ANNOTATION] }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function setTablets(app: string, types: string[]): Promise<void> {
  const k = await kubernetes();
  for (const [i, type] of types.entries()) {
    await k.admin.core.patchNamespacedPod(
      { name: `${app}-${i}`, namespace: k.namespace, body: { metadata: { labels: { [TABLET_TYPE]: type }, annotations: { [DRAIN_ANNOTATION]: null } } } },
      mergePatch,
    );
  }
}

/** The Vitess operator's drain controller: a drained primary hands the primary to the first undrained replica. */
async function playOperator(app: string): Promise<void> {
  const k = await kubernetes();
  let running = true;
  const loop = (async () => {
    while (running) {
      const all = await tablets(app).catch(() => []);
      const drained = all.find((t) => t.type === 'primary' && t.drain !== undefined);
      const next = all.find((t) => t.type === 'replica' && t.drain === undefined);
      if (drained && next) {
        await setTablets(app, all.map((t) => (t === drained ? 'replica' : t === next ? 'primary' : t.type ?? 'replica'))).catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  k.stops.push(async () => {
    running = false;
    await loop;
  });
}

function vitessEntry(pathName: string, app: string, operator: boolean, input: Record<string, unknown>): Scenario<VitessDrainResult> {
  const cluster = `rel-${app}-${run}`;
  return {
    runbook: 'vitessDrain',
    path: pathName,
    cluster,
    profiles: `  ${cluster}:
    namespace: NAMESPACE
    workload: { kind: StatefulSet, name: ${app}, selector: app=${app}, container: vttablet, roleLabel: ${TABLET_TYPE} }
    failover: { strategy: vitess, drainTimeoutSeconds: 60 }
`,
    prepare: async () => {
      await statefulSet(app, 3, 'vitess/lite:v21.0.0', 'vttablet', `app=${app}`);
      if (operator) await playOperator(app);
    },
    setup: () => setTablets(app, ['primary', 'replica', 'replica']),
    input: () => ({ cluster, reason: 'reliability suite', ...input }),
    outcome: (r) => `${r.drainedPod} drained, ${r.newPrimaryPod} primary`,
    finalState: () => tablets(app),
    sideEffects: async () => ({ drainAnnotationsLeft: (await tablets(app)).filter((t) => t.drain !== undefined).length }),
  };
}

export const vitessDrainSuccess = vitessEntry('success', 'tablet', true, {});
/** The operator never moves the primary: the drain times out and the annotation is removed. */
export const vitessDrainTimeout = vitessEntry('timeout', 'stuck', false, { timeoutSeconds: 2 });

// ------------------------------------------------------------------ switchover (the stack's GTID pair)

const switchoverCluster = `rel-so-${run}`;
export const switchoverSuccess: Scenario<SwitchoverResult> = {
  runbook: 'switchover',
  path: 'success',
  cluster: switchoverCluster,
  profiles: `  ${switchoverCluster}:
    mysql:
      topology: replication
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      replicationUser: repl
      replicationPassword: { env: DBR_LOCAL_REPL_PASSWORD }
      nodes:
        - { name: primary, host: 127.0.0.1, port: ${PAIR.primary} }
        - { name: replica, host: 127.0.0.1, port: ${PAIR.replica} }
    health: { maxReplicationLagSeconds: 10 }
    failover: { strategy: gtid, writerGraceSeconds: 1, catchUpTimeoutSeconds: 30 }
`,
  setup: restorePair,
  input: () => ({ cluster: switchoverCluster }),
  outcome: (r) => `${r.oldPrimary} → ${r.newPrimary}`,
  finalState: async () => {
    const [p, r] = await Promise.all([facts(PAIR.primary), facts(PAIR.replica)]);
    const role = (f: typeof p) => ({ readOnly: f.readOnly, source: f.source, running: f.source ? `${f.io}/${f.sqlThread}` : null, error: f.lastError });
    return { primary: role(p), replica: role(r) };
  },
  cleanup: restorePair,
};

// ------------------------------------------------------------------ failover (the stack's failover set, routing on the kube-apiserver)

const failoverCluster = `rel-fo-${run}`;
const FAILOVER_ROWS = 10;
type FailoverPart = keyof typeof FAILOVER_SET;
const FAILOVER_PARTS = Object.keys(FAILOVER_SET) as FailoverPart[];

/** A fenced server's mark: the option file scripts/stack.sh fence writes, so that it starts read-only. */
const fenceMarked = (part: FailoverPart) => existsSync(path.join(STACK_STATE, 'mariadb', part, 'conf.d', 'db-runbooks-fence.cnf'));

async function failoverRoles(): Promise<Record<string, string | undefined>> {
  const k = await kubernetes();
  return podRoles(k.admin, k.namespace, 'app=fo-db');
}

/** The writable server of the set, if one answers. */
async function failoverPrimary(): Promise<number | undefined> {
  for (const port of Object.values(FAILOVER_SET)) if (await facts(port).then((f) => !f.readOnly && f.source === null, () => false)) return port;
  return undefined;
}

/** fo1 killed with fo2 and fo3 caught up: fo2 is promoted (equally advanced, first in the profile), fo3 follows it, fo1 is fenced. */
export const failoverPrimaryKilled: Scenario<FailoverResult> = {
  runbook: 'failover',
  path: 'success',
  cluster: failoverCluster,
  profiles: `  ${failoverCluster}:
    namespace: NAMESPACE
    workload: { kind: StatefulSet, name: fo-db, selector: app=fo-db, container: mariadb, roleLabel: role }
${FAILOVER_SET_MYSQL}    failover: { strategy: gtid, maxLagSeconds: 2, catchUpTimeoutSeconds: 60 }
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`,
  prepare: () => statefulSet('fo-db', 3, 'mariadb:10.11', 'mariadb', 'app=fo-db'),
  setup: async () => {
    await resetFailoverSet();
    const k = await kubernetes();
    await setPodRoles(k.admin, k.namespace, { 'fo-db-0': 'primary', 'fo-db-1': 'replica', 'fo-db-2': 'replica' });
    await seedFailoverSet(FAILOVER_ROWS);
    await stack('kill', 'fo1');
  },
  input: () => ({ cluster: failoverCluster }),
  outcome: (r) => `${r.oldPrimary} → ${r.newPrimary}, ${r.replicas.join(', ') || 'no replica'} follow${r.problems.length ? `; problems: ${r.problems.join('; ')}` : ''}`,
  // What a user checks: where routing points, which server takes writes and which replicates from it, and that no row was lost.
  finalState: async () => {
    const servers = await Promise.all(
      FAILOVER_PARTS.map(async (part): Promise<[string, unknown]> => {
        const port = FAILOVER_SET[part];
        const f = await facts(port).catch(() => undefined);
        if (!f) return [part, 'down'];
        return [part, { readOnly: f.readOnly, source: f.source, running: f.source ? `${f.io}/${f.sqlThread}` : null, error: f.lastError, rows: await idsOf(port, FAILOVER_TABLE) }];
      }),
    );
    return { roles: await failoverRoles(), servers: Object.fromEntries(servers) };
  },
  // Done twice would show as a second fenced pod or mark, or a second replication probe row.
  sideEffects: async () => {
    const primary = await failoverPrimary();
    const probes = primary ? await sql<{ n: number }>(primary, 'SELECT COUNT(*) AS n FROM db_runbooks.replication_probe').catch(() => [{ n: 0 }]) : [{ n: 0 }];
    return {
      fencedPods: Object.values(await failoverRoles()).filter((r) => r === 'fenced').length,
      fenceMarks: FAILOVER_PARTS.filter(fenceMarked).length,
      probeRows: Number(probes[0]?.n ?? 0),
    };
  },
  // Where a repeat would show: the promotion, the routing, the fence, the replica re-pointed, the probe write.
  crashAt: (b) => ['promoteReplica#1', 'setPodRole#2', 'controlNode#1', 'replicateFrom#1', 'writeReplicationProbe#1'].includes(b),
  // fo1 the writable primary again, unfenced, fo2 and fo3 its replicas: as the failover tests expect the set.
  cleanup: resetFailoverSet,
};

// ------------------------------------------------------------------ galeraRecover (the stack's 3-node Galera)

const galeraDatabase = `dbr_rel_galera_${run}`;
const GALERA_TABLE = `${galeraDatabase}.t`;
const GALERA_ROWS = 20;
const { galera1 } = GALERA_NODES;

async function galeraVariables(port: number, names: string[]): Promise<Record<string, string>> {
  const rows = await sql<{ Variable_name: string; Value: string }>(port, `SHOW GLOBAL STATUS WHERE Variable_name IN (${names.map(() => '?').join(', ')})`, names);
  return Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
}

/** A full outage: every node killed at once, each having applied every row, so that every run recovers the same way. */
export const galeraRecoverFullOutage: Scenario<GaleraRecoverResult> = {
  runbook: 'galeraRecover',
  path: 'success',
  // The local profile's cluster: node control through scripts/stack.sh.
  cluster: 'galera',
  prepare: async () => {
    await restoreGaleraCluster();
    await sql(galera1, `CREATE DATABASE IF NOT EXISTS ${galeraDatabase}`);
    await sql(galera1, `CREATE TABLE IF NOT EXISTS ${GALERA_TABLE} (id INT PRIMARY KEY)`);
  },
  setup: async () => {
    await restoreGaleraCluster();
    await sql(galera1, `DELETE FROM ${GALERA_TABLE}`);
    await insertIds(galera1, GALERA_TABLE, 1, GALERA_ROWS);
    // Equal positions everywhere, and killed together (no node sees another leave): no node is ahead,
    // and the profile's order decides the same way each run.
    await eventually('every Galera node applied the rows', async () => {
      const committed = await Promise.all(Object.values(GALERA_NODES).map(async (port) => (await galeraVariables(port, ['wsrep_last_committed'])).wsrep_last_committed));
      return new Set(committed).size === 1 ? true : undefined;
    });
    await Promise.all(GALERA_NODE_NAMES.map((node) => stack('kill', node)));
  },
  input: () => ({ cluster: 'galera' }),
  outcome: (r) => `bootstrapped ${r.bootstrapped}, ${r.clusterSize} Synced`,
  finalState: async () =>
    Object.fromEntries(
      await Promise.all(
        GALERA_NODE_NAMES.map(async (node): Promise<[string, unknown]> => [node, await galeraStatus(node).then(async (status) => ({ ...status, rows: await idsOf(GALERA_NODES[node], GALERA_TABLE) }), () => 'down')]),
      ),
    ),
  // A second bootstrap or a node started twice shows as another history or more membership changes.
  sideEffects: async () => {
    const all = await Promise.all(Object.values(GALERA_NODES).map((port) => galeraVariables(port, ['wsrep_cluster_conf_id', 'wsrep_cluster_state_uuid']).catch((): Record<string, string> => ({}))));
    return {
      histories: new Set(all.map((v) => v.wsrep_cluster_state_uuid)).size,
      membershipChanges: Math.max(...all.map((v) => Number(v.wsrep_cluster_conf_id ?? 0))),
    };
  },
  // The bootstrap and the first join: a repeat would start a second cluster or restart a node.
  crashAt: (b) => ['controlNode#1', 'controlNode#2'].includes(b),
  cleanup: async () => {
    await restoreGaleraCluster();
    await sql(galera1, `DROP DATABASE IF EXISTS ${galeraDatabase}`);
  },
};

/** The stack's standalone MariaDB as a profile's mysql section (a migration set may follow it). */
const LOCAL_MARIADB = `    mysql:
      topology: standalone
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes:
        - { name: mariadb, host: 127.0.0.1, port: 3310 }
`;

// ------------------------------------------------------------------ migrateSchema (the standalone MariaDB)

const migrateCluster = `rel-mig-${run}`;
const migrateDatabase = `dbr_rel_${run}`;
export const migrateSchemaSuccess: Scenario<MigrateSchemaResult> = {
  runbook: 'migrateSchema',
  path: 'success',
  cluster: migrateCluster,
  profiles: `  ${migrateCluster}:
${LOCAL_MARIADB}      migrations:
        temporal: { directory: ${path.join(REPO_ROOT, 'examples', 'migrations', 'temporal-mysql')}, database: ${migrateDatabase}, createDatabase: true }
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`,
  setup: async () => {
    await sql(3310, `DROP DATABASE IF EXISTS ${migrateDatabase}`);
  },
  input: () => ({ cluster: migrateCluster, set: 'temporal' }),
  outcome: (r) => `${r.outcome} to version ${r.toVersion}`,
  finalState: async () => ({
    tables: (await sql<{ t: string }>(3310, 'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? ORDER BY 1', [migrateDatabase])).map((r) => r.t),
    scratch: (await sql<{ s: string }>(3310, "SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbr\\_dryrun\\_%'")).length,
  }),
  sideEffects: async () => {
    const ledger = await sql<{ applied: number; inFlight: number | null }>(
      3310,
      `SELECT last_applied_statement AS applied, in_flight_statement AS inFlight FROM ${migrateDatabase}.db_runbooks_migrations ORDER BY version`,
    ).catch(() => []);
    return { ledgerRows: ledger.length, statementsRecorded: ledger.reduce((n, r) => n + Number(r.applied), 0), inFlight: ledger.filter((r) => r.inFlight !== null).length };
  },
  cleanup: async () => {
    await sql(3310, `DROP DATABASE IF EXISTS ${migrateDatabase}`);
  },
};

/** The local MinIO as a profile's s3 section, under its own prefix. */
const S3_PROFILE = (prefix: string) => `    s3:
      endpoint: http://127.0.0.1:9000
      bucket: db-runbooks
      prefix: ${prefix}
      forcePathStyle: true
      accessKeyId: { env: DBR_LOCAL_S3_ACCESS_KEY }
      secretAccessKey: { env: DBR_LOCAL_S3_SECRET_KEY }
`;

// ------------------------------------------------------------------ upgradeCluster and downgradeCluster (etcd metadata, MinIO, the StatefulSet)

const OLD = 'greptime/greptimedb:v0.11.0';
const NEW = 'greptime/greptimedb:v0.12.0';

/** A GreptimeDB-like cluster of its own: a StatefulSet, its metadata in etcd, its backups in MinIO. */
function metadataCluster(index: number) {
  const cluster = `rel-upg-${index}-${run}`;
  const workload = `meta-${index}`;
  const prefix = `/dbr-rel-${run}-${index}/meta/`;
  const s3Prefix = `rel-upgrade-${run}-${index}/`;
  const ledgerPrefix = `/__db_runbooks/migrations/${cluster}/`;
  const migration: EtcdMigrationSpec = {
    kind: 'etcd',
    version: '0.12.0',
    steps: [
      { op: 'put', key: `${prefix}schema_version`, value: '2' },
      { op: 'renamePrefix', from: `${prefix}legacy/`, to: `${prefix}archive/` },
      { op: 'delete', key: `${prefix}obsolete` },
    ],
  };
  const keysUnder = async (p: string) => new Map(Object.entries(await etcd().getAll().prefix(p).buffers()));
  const workloadState = async () => {
    const k = await kubernetes();
    const sts = await k.admin.apps.readNamespacedStatefulSet({ name: workload, namespace: k.namespace });
    return { image: sts.spec!.template.spec!.containers[0]!.image!, replicas: sts.spec!.replicas! };
  };
  const beforeUpgrade = new Map<string, Buffer>();
  return {
    cluster,
    s3Prefix,
    migration,
    beforeUpgrade,
    keys: () => keysUnder(prefix),
    ledger: () => keysUnder(ledgerPrefix),
    workloadState,
    profiles: `  ${cluster}:
    namespace: NAMESPACE
    workload: { kind: StatefulSet, name: ${workload}, selector: app=${workload}, container: greptimedb }
    etcd: { endpoints: [http://127.0.0.1:2379], metadataPrefix: ${prefix} }
${S3_PROFILE(s3Prefix)}    lock: { waitSeconds: 120, leaseSeconds: 30 }
    notify: { jsonWebhookUrl: WEBHOOK/json/${cluster} }
`,
    create: async () => {
      await statefulSet(workload, 2, OLD, 'greptimedb', `app=${workload}`);
      for (let i = 0; i < 50; i += 1) beforeUpgrade.set(`${prefix}catalog/t${i}`, Buffer.from(JSON.stringify({ id: i })));
      beforeUpgrade.set(`${prefix}schema_version`, Buffer.from('1')).set(`${prefix}legacy/a`, Buffer.from([0, 1, 255])).set(`${prefix}obsolete`, Buffer.from('x'));
    },
    /** The metadata, the migration ledger and the image a run starts from; backup objects other than `keep` deleted. */
    reset: async (state: { metadata: Map<string, Buffer>; ledger: Map<string, Buffer>; image: string; keep?: ReadonlySet<string> }) => {
      await markNotifications(cluster);
      const k = await kubernetes();
      await etcd().delete().prefix(prefix);
      await etcd().delete().prefix(ledgerPrefix);
      await Promise.all([...state.metadata, ...state.ledger].map(([key, value]) => etcd().put(key).value(value).exec()));
      for (const name of await objectsUnder(s3Prefix)) {
        if (!state.keep?.has(name)) await s3().send(new DeleteObjectCommand({ Bucket: 'db-runbooks', Key: `${s3Prefix}${name}` }));
      }
      const sts = await workloadState();
      if (sts.image !== state.image || sts.replicas !== 2) {
        await k.admin.apps.patchNamespacedStatefulSet(
          { name: workload, namespace: k.namespace, body: { spec: { replicas: 2, template: { spec: { containers: [{ name: 'greptimedb', image: state.image }] } } } } },
          setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
        );
      }
      // Ready and rolled out: a rollout still under way reads as degraded at the pre-flight.
      await eventually(`${workload} rolled out and ready`, async () => {
        const sts = await k.admin.apps.readNamespacedStatefulSet({ name: workload, namespace: k.namespace });
        const st = sts.status;
        return st?.readyReplicas === 2 && st.updatedReplicas === 2 && st.currentRevision === st.updateRevision && (st.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 0) ? true : undefined;
      });
    },
    /** Which keys differ from the expected metadata, as a user would compare them byte for byte. */
    metadataAs: async (expected: Map<string, Buffer>) => {
      const now = await keysUnder(prefix);
      const differing = [...new Set([...now.keys(), ...expected.keys()])].filter((k) => !now.get(k)?.equals(expected.get(k) ?? Buffer.alloc(0)) || !expected.has(k));
      return differing.length === 0 ? `as expected (${now.size} keys)` : `differs at ${differing.join(', ')}`;
    },
    // One backup object and one manifest however often a step ran; the migration ledger once or cleared.
    sideEffects: async () => ({
      backupObjects: (await objectsUnder(s3Prefix)).length,
      ledgerEntries: (await etcd().getAll().prefix(ledgerPrefix).keys()).length,
      scratchKeys: (await etcd().getAll().prefix(`/__db_runbooks/scratch/${cluster}/`).keys()).length,
      notifications: notificationsSinceSetup(cluster),
    }),
    cleanup: async () => {
      await etcd().delete().prefix(prefix.slice(0, prefix.indexOf('/meta/') + 1));
      await etcd().delete().prefix(ledgerPrefix);
    },
  };
}

function upgradeEntry(pathName: string, index: number, image: string, extra: Record<string, unknown>): Scenario<ClusterChangeResult> {
  const c = metadataCluster(index);
  return {
    runbook: 'upgradeCluster',
    path: pathName,
    cluster: c.cluster,
    profiles: c.profiles,
    prepare: c.create,
    setup: () => c.reset({ metadata: c.beforeUpgrade, ledger: new Map(), image: OLD }),
    // Room for the StatefulSet controller to catch up after the API server's outage during the deploy.
    input: () => ({ cluster: c.cluster, targetImage: image, migration: c.migration, rolloutTimeoutSeconds: 120, ...extra }),
    outcome: (r) => r.outcome,
    finalState: async () => ({
      metadata: await c.metadataAs(pathName === 'success' ? applyMigration(c.beforeUpgrade, c.migration.steps) : c.beforeUpgrade),
      workload: await c.workloadState(),
    }),
    sideEffects: c.sideEffects,
    // The boundaries where a repeated side effect would show: the started notification, the backup,
    // the migration, the deploy, the final manifest.
    crashAt: (b) => ['sendNotification#1', 'dumpMetadata#1', 'snapshotEtcdToS3#1', 'applyEtcdMigration#1', 'setWorkloadImage#1', 'writeUpgradeManifest#2'].includes(b),
    cleanup: c.cleanup,
  };
}

export const upgradeSuccess = upgradeEntry('success', 0, NEW, {});
/** Pods of the new image never become ready: the deploy times out and everything is rolled back. */
export const upgradeRollback = upgradeEntry('rollback', 1, `${NEW}-broken`, { rolloutTimeoutSeconds: 6 });

/**
 * Undoes an upgrade made once in prepare: every run starts from the upgraded cluster (its metadata,
 * ledger and image as the upgrade left them, the upgrade's backup in place) and ends with the
 * metadata byte for byte as before the upgrade and the old image.
 */
export const downgradeSuccess: Scenario<ClusterChangeResult> = (() => {
  const c = metadataCluster(2);
  let upgradeWorkflowId = '';
  const upgraded = { metadata: new Map<string, Buffer>(), ledger: new Map<string, Buffer>(), keep: new Set<string>() };
  return {
    runbook: 'downgradeCluster',
    path: 'success',
    cluster: c.cluster,
    profiles: c.profiles,
    prepare: async ({ execute }) => {
      await c.create();
      await c.reset({ metadata: c.beforeUpgrade, ledger: new Map(), image: OLD });
      upgradeWorkflowId = await execute('upgradeCluster', { cluster: c.cluster, targetImage: NEW, migration: c.migration, rolloutTimeoutSeconds: 20 });
      upgraded.metadata = await c.keys();
      upgraded.ledger = await c.ledger();
      upgraded.keep = new Set(await objectsUnder(c.s3Prefix));
    },
    setup: () => c.reset({ ...upgraded, image: NEW }),
    input: () => ({ cluster: c.cluster, upgradeWorkflowId, rolloutTimeoutSeconds: 20 }),
    outcome: (r) => r.outcome,
    finalState: async () => ({ metadata: await c.metadataAs(c.beforeUpgrade), workload: await c.workloadState() }),
    sideEffects: c.sideEffects,
    // What the upgrade entry does not cover already (its backup and deploy are the same steps): the metadata restore and the ledger.
    crashAt: (b) => ['restoreMetadata#1', 'clearMigrationLedger#1'].includes(b),
    cleanup: c.cleanup,
  };
})();

// ------------------------------------------------------------------ backups (MariaDB and etcd to MinIO)


/** The objects of every backup under a catalog root (<root><backup id>/...), the id left out: equal whatever the run. */
async function backupShape(prefix: string): Promise<{ backups: number; objects: string[] }> {
  const names = await objectsUnder(prefix);
  return { backups: new Set(names.map((n) => n.split('/')[0])).size, objects: [...new Set(names.map((n) => n.split('/').slice(1).join('/')))].sort() };
}

async function backupCounts(prefix: string): Promise<Record<string, number>> {
  const names = await objectsUnder(prefix);
  return { backups: new Set(names.map((n) => n.split('/')[0])).size, objects: names.length, partialObjects: names.filter((n) => n.endsWith('.partial')).length };
}

const etcdBackupCluster = `rel-etcdbk-${run}`;
const etcdBackupPrefix = `rel-etcd-backup-${run}/`;

/** Each run keeps one backup (retention: today only) and notifies nothing but a failure. */
export const backupEtcdSuccess: Scenario<BackupEtcdResult> = {
  runbook: 'backupEtcd',
  path: 'success',
  cluster: etcdBackupCluster,
  profiles: `  ${etcdBackupCluster}:
    etcd: { endpoints: [http://127.0.0.1:2379] }
${S3_PROFILE(etcdBackupPrefix)}    backup: { retention: { daily: 1, weekly: 0 } }
    notify: { jsonWebhookUrl: WEBHOOK/json/${etcdBackupCluster} }
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`,
  setup: () => markNotifications(etcdBackupCluster),
  input: () => ({ cluster: etcdBackupCluster }),
  outcome: (r) => r.outcome,
  finalState: () => backupShape(`${etcdBackupPrefix}etcd-backups/${etcdBackupCluster}/`),
  sideEffects: async () => ({ ...(await backupCounts(`${etcdBackupPrefix}etcd-backups/${etcdBackupCluster}/`)), notifications: notificationsSinceSetup(etcdBackupCluster) }),
  crashAt: (b) => ['snapshotEtcdToS3#1', 'writeEtcdBackupManifest#1', 'deleteEtcdBackups#1'].includes(b),
};

const dbBackupCluster = `rel-dbbk-${run}`;
const dbBackupPrefix = `rel-db-backup-${run}/`;
const dbBackupDatabase = `rel_backup_${run}`;

export const backupDatabaseSuccess: Scenario<BackupDatabaseResult> = {
  runbook: 'backupDatabase',
  path: 'success',
  cluster: dbBackupCluster,
  profiles: `  ${dbBackupCluster}:
${LOCAL_MARIADB}${S3_PROFILE(dbBackupPrefix)}    backup: { databases: [${dbBackupDatabase}], retention: { daily: 1, weekly: 0 }, verifyEvery: 1 }
    notify: { jsonWebhookUrl: WEBHOOK/json/${dbBackupCluster} }
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`,
  prepare: async () => {
    await sql(3310, `CREATE DATABASE IF NOT EXISTS ${dbBackupDatabase}`);
    await sql(3310, `CREATE TABLE IF NOT EXISTS ${dbBackupDatabase}.orders (id INT PRIMARY KEY, note VARCHAR(64))`);
    await sql(3310, `INSERT IGNORE INTO ${dbBackupDatabase}.orders SELECT seq, CONCAT('order ', seq) FROM ${dbBackupDatabase}.seq_1_to_2000`);
  },
  setup: () => markNotifications(dbBackupCluster),
  input: () => ({ cluster: dbBackupCluster }),
  outcome: (r) => `${r.outcome}, verification ${r.verification?.outcome ?? 'not run'}`,
  finalState: async () => ({
    ...(await backupShape(`${dbBackupPrefix}backups/${dbBackupCluster}/`)),
    scratchDatabases: (await sql<{ s: string }>(3310, "SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'dbr\\_verify\\_%'")).length,
  }),
  sideEffects: async () => ({ ...(await backupCounts(`${dbBackupPrefix}backups/${dbBackupCluster}/`)), notifications: notificationsSinceSetup(dbBackupCluster) }),
  crashAt: (b) => ['dumpDatabases#1', 'verifyBackup#1', 'writeBackupManifest#1', 'applyBackupRetention#1'].includes(b),
  cleanup: async () => {
    await sql(3310, `DROP DATABASE IF EXISTS ${dbBackupDatabase}`);
  },
};

// ------------------------------------------------------------------ restoreDatabase (a backup made in prepare, into another database)

const restoreCluster = `rel-restore-${run}`;
const restorePrefix = `rel-restore-${run}/`;
const restoreSource = `rel_restore_${run}`;
const restoreTarget = `${restoreSource}_copy`;

async function tableChecksum(database: string): Promise<{ rows: number; checksum: string } | null> {
  const [exists] = await sql<{ n: number }>(3310, 'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [database]);
  if (Number(exists?.n) === 0) return null;
  const [count] = await sql<{ n: number }>(3310, `SELECT COUNT(*) AS n FROM ${database}.orders`);
  const [sum] = await sql<{ Checksum: number }>(3310, `CHECKSUM TABLE ${database}.orders`);
  return { rows: Number(count?.n), checksum: String(sum?.Checksum) };
}

export const restoreDatabaseSuccess: Scenario<RestoreDatabaseResult> = {
  runbook: 'restoreDatabase',
  path: 'success',
  cluster: restoreCluster,
  profiles: `  ${restoreCluster}:
${LOCAL_MARIADB}${S3_PROFILE(restorePrefix)}    backup: { databases: [${restoreSource}], verifyEvery: 1 }
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`,
  prepare: async ({ execute }) => {
    await sql(3310, `CREATE DATABASE IF NOT EXISTS ${restoreSource}`);
    await sql(3310, `CREATE TABLE IF NOT EXISTS ${restoreSource}.orders (id INT PRIMARY KEY, note VARCHAR(64))`);
    await sql(3310, `INSERT IGNORE INTO ${restoreSource}.orders SELECT seq, CONCAT('order ', seq) FROM ${restoreSource}.seq_1_to_5000`);
    await execute('backupDatabase', { cluster: restoreCluster });
  },
  setup: async () => {
    await sql(3310, `DROP DATABASE IF EXISTS ${restoreTarget}`);
  },
  input: () => ({ cluster: restoreCluster, targetDatabase: restoreTarget }),
  outcome: (r) => `restored ${r.restore.tables} table(s), ${r.restore.rows} row(s)`,
  // The copy holds what the backup holds: the source's rows and CHECKSUM TABLE.
  finalState: async () => ({ source: await tableChecksum(restoreSource), copy: await tableChecksum(restoreTarget) }),
  // A restore writes one database and nothing to the bucket.
  sideEffects: async () => ({
    databases: (await sql<{ s: string }>(3310, 'SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${restoreSource}%`])).length,
    backupObjects: (await objectsUnder(restorePrefix)).length,
  }),
  crashAt: (b) => ['checkRestoreTarget#1', 'restoreBackup#1'].includes(b),
  cleanup: async () => {
    await sql(3310, `DROP DATABASE IF EXISTS ${restoreTarget}`);
    await sql(3310, `DROP DATABASE IF EXISTS ${restoreSource}`);
  },
};

// ------------------------------------------------------------------ refreshNodeAddresses (a StatefulSet, an SQL catalog in the standalone MariaDB)

const refreshCluster = `rel-refresh-${run}`;
const refreshDatabase = `rel_catalog_${run}`;
const CATALOG_PORT = 5432;

async function podAddresses(app: string): Promise<Record<string, string>> {
  const k = await kubernetes();
  const pods = await k.admin.core.listNamespacedPod({ namespace: k.namespace, labelSelector: `app=${app}` });
  return Object.fromEntries(pods.items.map((p) => [p.metadata!.name!, `${p.status?.podIP ?? ''}:${CATALOG_PORT}`] as const).sort(([a], [b]) => a.localeCompare(b)));
}

async function catalog(): Promise<Record<string, string>> {
  const rows = await sql<{ node: string; host: string; port: number }>(3310, `SELECT node_name AS node, node_host AS host, node_port AS port FROM ${refreshDatabase}.pgxc_node ORDER BY node_name`);
  return Object.fromEntries(rows.map((r) => [r.node, `${r.host}:${r.port}`]));
}

/** A catalog of three nodes registered at an address none of the pods has: every row is rewritten once per run. */
export const refreshNodeAddressesSuccess: Scenario<RefreshNodeAddressesResult> = {
  runbook: 'refreshNodeAddresses',
  path: 'success',
  cluster: refreshCluster,
  profiles: `  ${refreshCluster}:
    namespace: NAMESPACE
    workload: { kind: StatefulSet, name: addr, selector: app=addr, container: antdb, roleLabel: role }
${LOCAL_MARIADB}    addressRefresh:
      registry: { kind: sql, database: ${refreshDatabase}, table: pgxc_node, columns: { name: node_name, host: node_host, port: node_port, role: node_role } }
      port: ${CATALOG_PORT}
      quietSeconds: 0
      waitForAddressSeconds: 30
      watch: false
    lock: { waitSeconds: 60, leaseSeconds: 30 }
`,
  prepare: async () => {
    await statefulSet('addr', 3, 'antdb:7.2', 'antdb', 'app=addr', { role: 'member' });
    await sql(3310, `CREATE DATABASE IF NOT EXISTS ${refreshDatabase}`);
    await sql(3310, `CREATE TABLE IF NOT EXISTS ${refreshDatabase}.pgxc_node (node_name VARCHAR(200) PRIMARY KEY, node_host VARCHAR(64) NOT NULL, node_port INT NOT NULL, node_role VARCHAR(32))`);
    // Every address ever written: a write repeated after a crash shows here.
    await sql(3310, `CREATE TABLE IF NOT EXISTS ${refreshDatabase}.audit (node_name VARCHAR(200), node_host VARCHAR(64))`);
    await sql(3310, `CREATE TRIGGER IF NOT EXISTS ${refreshDatabase}.pgxc_node_audit AFTER UPDATE ON ${refreshDatabase}.pgxc_node FOR EACH ROW INSERT INTO ${refreshDatabase}.audit VALUES (NEW.node_name, NEW.node_host)`);
  },
  setup: async () => {
    await sql(3310, `DELETE FROM ${refreshDatabase}.pgxc_node`);
    await sql(3310, `DELETE FROM ${refreshDatabase}.audit`);
    for (const pod of Object.keys(await podAddresses('addr'))) {
      await sql(3310, `INSERT INTO ${refreshDatabase}.pgxc_node VALUES (?, '10.255.0.1', ?, 'member')`, [pod, CATALOG_PORT]);
    }
  },
  input: () => ({ cluster: refreshCluster, reason: 'reliability suite' }),
  // Updated by this run, in its first attempt or its retry (which finds them already done).
  outcome: (r) => `${new Set(r.rounds.flatMap((round) => [...round.applied, ...round.alreadyDone])).size} address(es) brought in line`,
  finalState: async () => {
    const [pods, registered] = await Promise.all([podAddresses('addr'), catalog()]);
    return { catalogMatchesPods: JSON.stringify(pods) === JSON.stringify(registered), nodes: Object.keys(registered) };
  },
  sideEffects: async () => ({ addressWrites: Number((await sql<{ n: number }>(3310, `SELECT COUNT(*) AS n FROM ${refreshDatabase}.audit`))[0]?.n) }),
  // The catalog write; a crash after the lock request is the same code as in the vitessDrain and migrateSchema entries.
  crashAt: (b) => b === 'applyAddressUpdates#1',
  cleanup: async () => {
    await sql(3310, `DROP DATABASE IF EXISTS ${refreshDatabase}`);
  },
};

// ------------------------------------------------------------------ notifications

let webhook: RecordingWebhook | undefined;
const notificationMarks = new Map<string, number>();

function markNotifications(cluster: string): Promise<void> {
  notificationMarks.set(cluster, webhook?.received.length ?? 0);
  return Promise.resolve();
}

/** Notifications a cluster got since its setup, counted as receivers deduplicate them: by idempotency key. */
function notificationsSinceSetup(cluster: string): number {
  const since = webhook?.received.slice(notificationMarks.get(cluster) ?? 0) ?? [];
  return new Set(since.filter((r) => r.path === `/json/${cluster}`).map((r) => r.idempotencyKey)).size;
}

/** The profile YAML of every entry, with the shared test namespace filled in. */
export async function scenarioProfiles(entries: readonly Scenario<never>[]): Promise<void> {
  const needsKube = entries.some((e) => e.profiles?.includes('NAMESPACE'));
  const namespace = needsKube ? (await kubernetes()).namespace : '';
  if (entries.some((e) => e.profiles?.includes('WEBHOOK'))) webhook ??= await startRecordingWebhook();
  for (const e of entries) if (e.profiles) e.profiles = e.profiles.replaceAll('NAMESPACE', namespace).replaceAll('WEBHOOK', webhook?.url ?? '');
}
