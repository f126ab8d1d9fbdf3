// Named timeout and retry profiles for proxied activities. A runbook picks the profile that fits
// the step instead of inventing numbers at each call site.
import type { ActivityOptions } from '@temporalio/workflow';

/** Errors that no retry can fix: the caller must see them at once. */
export const NON_RETRYABLE = ['InvalidInput', 'UnknownCluster', 'UnknownNode', 'ProfileIncomplete', 'SecretUnavailable'];

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
