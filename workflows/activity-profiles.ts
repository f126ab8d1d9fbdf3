// Named timeout and retry profiles for proxied activities. A runbook picks the profile that fits
// the step instead of inventing numbers at each call site.
import { ActivityCancellationType, type ActivityOptions } from '@temporalio/workflow';

/** Errors that no retry can fix: the caller must see them at once. */
export const NON_RETRYABLE = [
  'InvalidInput',
  'UnknownCluster',
  'UnknownNode',
  'ProfileIncomplete',
  'SecretUnavailable',
  'UnknownMigrationSet',
  'MigrationInvalid',
  'MigrationChecksumMismatch',
  'MigrationFilesChanged',
  'MigrationPreflightFailed',
  'MigrationSessionChanged',
  'MigrationStatementFailed',
  'MigrationConflict',
  'MigrationUncertain',
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
