// A workflow interceptor for the time-skipping tests: the lock of a cluster named slow-grants-*
// sends each lockGranted signal only after a workflow timer (an hour of workflow time), as if the
// requester's side were slow to answer. That holds the lock between deciding a grant and its next
// step long enough for a test to send another request in between, deterministically.
import { sleep, workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

export const SLOW_GRANT_CLUSTER_PREFIX = 'slow-grants-';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      async signalWorkflow(input, next) {
        if (input.signalName === 'lockGranted' && workflowInfo().workflowId.startsWith(`clusterLock/${SLOW_GRANT_CLUSTER_PREFIX}`)) await sleep('1 hour');
        return next(input);
      },
    },
  ],
});
