// Named timeout and retry profiles for proxied activities. A runbook picks the profile that fits
// the step instead of inventing numbers at each call site.
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

/** Errors that no retry can fix: the caller must see them at once. */
export const NON_RETRYABLE = [
  'InvalidInput', 'UnknownCluster', 'UnknownNode', 'ProfileIncomplete', 'SecretUnavailable',
  // The Kubernetes API refused the call (RBAC, a missing object, an invalid change) or the worker has no access to it.
  'KubernetesUnconfigured', 'KubernetesUnauthorized', 'KubernetesForbidden', 'KubernetesNotFound', 'KubernetesInvalid',
  // A wait ended without the state it waited for: the runbook decides (roll back, investigate), a retry would not.
  'RolloutTimedOut', 'JobFailed', 'JobTimedOut', 'JobConflict',
  // A schema migration that a retry cannot fix: bad files or set, a refused statement, a state to look at by hand.
  'UnknownMigrationSet', 'MigrationInvalid', 'MigrationChecksumMismatch', 'MigrationFilesChanged', 'MigrationPreflightFailed',
  'MigrationSessionChanged', 'MigrationStatementFailed', 'MigrationConflict', 'MigrationUncertain',
  // A switchover, failover or Galera recovery wait that ended without the state it waited for.
  'RoleNotMoved', 'CatchUpTimedOut', 'GaleraNodeNotReady',
  // The database refused what a switchover, failover or recovery needs from it; retrying changes nothing.
  'UnsupportedFlavor', 'ReplicationBroken', 'GaleraStateUnreadable',
  // Node control: the profile's command failed, the control kind cannot do the action, or a bootstrap
  // would start a second Galera cluster beside a Primary component.
  'NodeControlUnsupported', 'NodeCommandFailed', 'BootstrapRefused',
];

/** Reading the profile: local, fast, retried a few times only for worker-side hiccups. */
export const lookup: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
};

/** Health probes report an unreachable server as a fact, so a retry only covers the probe itself failing. */
export const probe: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * One Kubernetes call, or a read-compare-write (list pods, annotate): quick and idempotent, so it is
 * retried through an apiserver restart or a run of resourceVersion conflicts.
 */
export const kubernetesCall: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * Activities that wait (scale, image rollout, Job, pod address watch). Their own `deadline` input
 * bounds the wait across attempts; the heartbeat timeout notices a lost worker within a minute, and
 * the retry resumes from the last heartbeat. startToClose only caps a wait whose deadline is far off.
 */
export const kubernetesWait: ActivityOptions = {
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * Reading, writing and checking a cluster's metadata (etcd and S3): long streams that heartbeat as
 * they go. A lost worker is noticed within a minute and the step starts over (each is repeatable:
 * object names come from the workflow id, restores start by clearing the target prefix).
 */
export const metadataIo: ActivityOptions = {
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: [...NON_RETRYABLE, 'MigrationFailed', 'BackupCorrupt', 'UnknownUpgrade'] },
};

/** Schema migration pre-flight, verify and scratch cleanup: a handful of queries each. */
export const migrationCheck: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * Schema migration dry-run and apply: as long as the statements take (an ALTER of a large table
 * takes hours), alive while they heartbeat. A retry resumes from the ledger; the workflow waits for
 * a cancelled attempt to stop between two statements before it releases the cluster lock.
 */
export const migrationRun: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '20 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
};

/** Reading pods (which may wait for an address, with heartbeats) and the catalog: retried while it is unreachable. */
export const addressRead: ActivityOptions = {
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 30, nonRetryableErrorTypes: NON_RETRYABLE },
};

/** Writing the catalog: idempotent (an update already in place counts as done), so retried freely. */
export const catalogWrite: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 30, nonRetryableErrorTypes: [...NON_RETRYABLE, 'CatalogConflict', 'CatalogVerifyFailed', 'UnsafeCommandValue'] },
};

/** One short SQL step (read state, read-only on/off, promote): retried a few times through a dropped connection. */
export const mysqlCall: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * SQL steps that wait (a replica catching up, a grace period, a Galera node syncing, replication
 * starting). A `deadline` input bounds the wait across attempts; the heartbeat notices a lost worker.
 */
export const mysqlWait: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * Node control commands (start, bootstrap, stop, fence, --wsrep-recover): the profile's own timeout
 * bounds each run; a failure is reported with the command's output rather than run again blindly.
 * The one retry covers a lost worker: start, stop and fence are idempotent, and a bootstrap reads the
 * cluster's membership before it runs (never twice, never beside a Primary component).
 */
export const nodeControl: ActivityOptions = {
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE },
};

/**
 * A notification: the activity retries each webhook itself and reports failures instead of
 * throwing, so a retry here only covers a lost worker (the receiver gets an idempotency key).
 */
export const notification: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', maximumAttempts: 3 },
};

/**
 * Database dumps, verification restores and restores: streams as long as the database is large,
 * heartbeating every few seconds. A lost worker is noticed within a minute and the step starts
 * over (object names come from the backup id, a restore recreates its target first).
 */
export const backupIo: ActivityOptions = {
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: [...NON_RETRYABLE, 'BackupCorrupt', 'BackupToolMissing', 'BinlogRequired', 'UnknownDatabase', 'UnknownBackup', 'TargetNotEmpty'],
  },
};

/** Listing, manifests and retention in the bucket: short, idempotent calls. */
export const backupCatalog: ActivityOptions = {
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: [...NON_RETRYABLE, 'UnknownBackup', 'TargetNotEmpty'] },
};
