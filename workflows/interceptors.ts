// Every log line a workflow writes carries the runbook and the cluster it acts on, read from the
// run's search attributes (set at start by the client and by the runbook's tracker).
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { searchAttributes } from './definitions';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      getLogAttributes(input, next) {
        const info = workflowInfo();
        return next({
          ...input,
          runbook: info.typedSearchAttributes.get(searchAttributes.runbook) ?? info.workflowType,
          cluster: info.typedSearchAttributes.get(searchAttributes.cluster) ?? null,
        });
      },
    },
  ],
});
