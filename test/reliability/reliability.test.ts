// The reliability suite (npm run test:reliability; part of scripts/test.sh): every entry of
// scenarios.ts runs undisturbed, then once per chosen activity boundary with its worker SIGKILLed
// there, then with each server it uses stopped mid-run. Each ends as the undisturbed run did (or
// fails with a clear error, having put back what it changed), with each side effect done once, and
// no credential in any history. table-reporter.js prints the table of every run.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporal } from '../helpers/temporal';
import { ReliabilityHarness, type Fault, type RunRecord, type Scenario } from './harness';
import {
  backupDatabaseSuccess,
  backupEtcdSuccess,
  closeScenarios,
  clusterHealthLocal,
  downgradeSuccess,
  failoverPrimaryKilled,
  galeraRecoverFullOutage,
  migrateSchemaSuccess,
  refreshNodeAddressesSuccess,
  restoreDatabaseSuccess,
  scenarioProfiles,
  switchoverSuccess,
  upgradeRollback,
  upgradeSuccess,
  vitessDrainSuccess,
  vitessDrainTimeout,
} from './scenarios';

const SIDE_EFFECTS = new Set([
  'checkS3', 'requestClusterLock', 'annotatePod', 'removePodAnnotation', 'makeReadOnly', 'promoteReplica', 'replicateFrom', 'writeReplicationProbe',
  'dryRunSqlMigration', 'applySqlMigration', 'scaleWorkload', 'setWorkloadImage', 'dumpMetadata', 'snapshotEtcdToS3', 'applyEtcdMigration', 'restoreMetadata', 'writeUpgradeManifest',
  'sendNotification', 'dumpDatabases', 'verifyBackup', 'writeBackupManifest', 'applyBackupRetention', 'restoreBackup', 'writeEtcdBackupManifest', 'deleteEtcdBackups',
  'clearMigrationLedger', 'applyAddressUpdates', 'setPodRole', 'controlNode',
]);
const sideEffecting = (boundary: string) => SIDE_EFFECTS.has(boundary.slice(0, boundary.indexOf('#')));

/** Entries and where their workers are killed: every boundary of the cheap ones, the side-effecting ones of the others. */
const ENTRIES: { entry: Scenario<never>; crash: 'all' | 'side effects' | 'none'; faults: Fault[] }[] = [
  {
    // Read-only: crash points prove nothing a fault does not; the faults are what matters.
    entry: clusterHealthLocal,
    crash: 'none',
    faults: [
      { part: 'mariadb', at: 'start', downSeconds: 0, expect: 'down' },
      { part: 'etcd', at: 'start', downSeconds: 0, expect: 'down' },
      { part: 'minio', at: 'start', downSeconds: 0, expect: 'down' },
    ],
  },
  { entry: vitessDrainSuccess, crash: 'side effects', faults: [{ part: 'kube-apiserver', at: 'start', downSeconds: 3 }] },
  { entry: vitessDrainTimeout, crash: 'none', faults: [] },
  // Crashes wait for a setup that switches the pair back: restorePair() cannot after a successful switchover (MASTER_GTID_WAIT on the old primary's own GTIDs).
  { entry: switchoverSuccess, crash: 'none', faults: [{ part: 'replica', at: 'start', downSeconds: 2 }] },
  // Routing is the one step that needs the kube-apiserver, and it follows the promotion within a
  // second: an outage from the start meets it for sure (a step that short can end before a stop
  // noticed at its start takes effect). The runbook must retry it and finish as the reference did.
  { entry: failoverPrimaryKilled, crash: 'side effects', faults: [{ part: 'kube-apiserver', at: 'start', downSeconds: 3 }] },
  // The nodes are the only servers it uses, and stopping one mid-recovery is a second outage, not a
  // retry's business: crashes only.
  { entry: galeraRecoverFullOutage, crash: 'side effects', faults: [] },
  { entry: migrateSchemaSuccess, crash: 'side effects', faults: [{ part: 'mariadb', at: 'start', downSeconds: 3 }] },
  {
    entry: upgradeSuccess,
    crash: 'side effects',
    // The outage during the deploy first: the pre-flight of a run right after a server came back
    // may still find it starting.
    faults: [
      { part: 'kube-apiserver', at: 'deploy', downSeconds: 3 },
      { part: 'etcd', at: 'start', downSeconds: 2 },
      { part: 'minio', at: 'start', downSeconds: 2 },
    ],
  },
  { entry: upgradeRollback, crash: 'none', faults: [] },
  {
    entry: backupEtcdSuccess,
    crash: 'all',
    faults: [
      { part: 'minio', at: 'snapshot', downSeconds: 3 },
      { part: 'etcd', at: 'start', downSeconds: 2 },
    ],
  },
  {
    entry: backupDatabaseSuccess,
    crash: 'all',
    faults: [
      { part: 'mariadb', at: 'start', downSeconds: 3 },
      { part: 'minio', at: 'start', downSeconds: 3 },
    ],
  },
  {
    entry: restoreDatabaseSuccess,
    crash: 'side effects',
    faults: [
      { part: 'minio', at: 'start', downSeconds: 3 },
      { part: 'mariadb', at: 'start', downSeconds: 3 },
    ],
  },
  { entry: downgradeSuccess, crash: 'side effects', faults: [{ part: 'etcd', at: 'back up metadata', downSeconds: 2 }] },
  {
    entry: refreshNodeAddressesSuccess,
    crash: 'side effects',
    faults: [
      { part: 'mariadb', at: 'start', downSeconds: 3 },
      { part: 'kube-apiserver', at: 'start', downSeconds: 3 },
    ],
  },
];

// DBR_RELIABILITY_ONLY=<regex> runs the entries whose "<runbook> <path>" matches (and prepares only those).
const only = process.env.DBR_RELIABILITY_ONLY ? new RegExp(process.env.DBR_RELIABILITY_ONLY) : undefined;
const SELECTED = ENTRIES.filter((e) => !only || only.test(`${e.entry.runbook} ${e.entry.path}`));

let env: TestWorkflowEnvironment;
let harness: ReliabilityHarness;
const references = new Map<Scenario<never>, RunRecord>();

beforeAll(async () => {
  const entries = SELECTED.map((e) => e.entry);
  await scenarioProfiles(entries);
  env = await startTemporal();
  harness = new ReliabilityHarness(env, entries);
  await harness.start();
  for (const e of entries) await e.prepare?.(harness.prepareContext);
}, 300_000);

afterAll(async () => {
  try {
    for (const { entry } of SELECTED) await entry.cleanup?.();
  } finally {
    await harness?.stop();
    await env?.teardown();
    await closeScenarios();
  }
});

describe.each(SELECTED.map((e) => [`${e.entry.runbook} ${e.entry.path}`, e] as const))('%s', (_name, { entry, crash, faults }) => {
  test('undisturbed: the reference run, its history recorded and free of credentials', async () => {
    references.set(entry, await harness.undisturbed(entry));
  });

  if (crash !== 'none') {
    test(`worker SIGKILLed at ${crash === 'all' ? 'every activity boundary' : 'each side-effecting activity boundary'}: same end, each side effect once`, async () => {
      const reference = references.get(entry);
      if (!reference) throw new Error('the undisturbed run failed');
      const boundaries = reference.boundaries.filter((b) => crash === 'all' || sideEffecting(b)).filter((b) => entry.crashAt?.(b) ?? true);
      expect(boundaries.length).toBeGreaterThan(0);
      for (const boundary of boundaries) expect([boundary, (await harness.crash(entry, boundary, reference)).crashed]).toEqual([boundary, true]);
    }, 600_000);
  }

  if (faults.length > 0) test.each(faults.map((f) => [`${f.part} down${f.at === 'start' ? ' from the start' : ` during "${f.at}"`}`, f] as const))('%s', async (_f, fault) => {
    const reference = references.get(entry);
    if (!reference) throw new Error('the undisturbed run failed');
    await harness.fault(entry, fault, reference);
  }, 300_000);
});
