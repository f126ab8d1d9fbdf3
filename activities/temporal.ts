// Temporal itself as an external system: starting or signalling the cluster lock workflow and
// reading the state of runs. Workflows cannot signal-with-start, so an activity does it.
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  getLockStateQuery,
  lockWorkflowId,
  requestLockSignal,
  searchAttributes,
  type LockRequest,
  type LockState,
} from '../workflows/definitions';

export interface TemporalDeps {
  client: Client;
}

export function createTemporalActivities(deps: TemporalDeps) {
  return {
    /** Starts the cluster's lock workflow if it is not running, and queues the request. */
    async requestClusterLock(params: { cluster: string; request: LockRequest }): Promise<void> {
      await deps.client.workflow.signalWithStart('clusterLock', {
        workflowId: lockWorkflowId(params.cluster),
        taskQueue: Context.current().info.taskQueue,
        args: [{ cluster: params.cluster }],
        signal: requestLockSignal,
        signalArgs: [params.request],
        typedSearchAttributes: [
          { key: searchAttributes.cluster, value: params.cluster },
          { key: searchAttributes.runbook, value: 'clusterLock' },
        ],
      });
    },

    /** The lock's holder and queue, or null when no lock workflow runs for the cluster. */
    async readClusterLock(params: { cluster: string }): Promise<LockState | null> {
      try {
        return await deps.client.workflow.getHandle(lockWorkflowId(params.cluster)).query(getLockStateQuery);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      }
    },

    /** The status of one run (RUNNING, COMPLETED, TERMINATED, ...), NOT_FOUND when it is gone. */
    async describeRunbookRun(params: { workflowId: string; runId: string }): Promise<string> {
      try {
        return (await deps.client.workflow.getHandle(params.workflowId, params.runId).describe()).status.name;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
        throw err;
      }
    },
  };
}
