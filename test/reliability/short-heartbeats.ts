// Bundled into the crash workers' workflow code only (test/reliability/harness.ts): every activity
// gets a 3 s heartbeat timeout, so Temporal notices within seconds that the worker running it died.
// The crash worker heartbeats for every activity it runs (crash-worker.ts). Production timeouts
// stay what workflows/activity-profiles.ts says; this changes how fast a loss is seen, not what
// happens after it.
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

const HEARTBEAT_MS = 3000;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        return next({ ...input, options: { ...input.options, heartbeatTimeout: HEARTBEAT_MS } });
      },
    },
  ],
});
