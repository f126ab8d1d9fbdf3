// Every log line an activity writes carries the runbook (its workflow type) and the cluster, which
// every activity's single argument names. Lines the SDK writes before the arguments are seen
// ("Activity started") take the cluster from the workflow id, which the client derives as
// <runbook>/<cluster>[/...].
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

export const WORKFLOW_INTERCEPTOR_MODULES = [require.resolve('../workflows/interceptors')];

export const activityLogContext: ActivityInterceptorsFactory = (ctx) => {
  const fromWorkflowId = /^[A-Za-z]+\/([a-z0-9-]+)(\/|$)/.exec(ctx.info.workflowExecution?.workflowId ?? '')?.[1] ?? null;
  let cluster: unknown = fromWorkflowId;
  return {
    inbound: {
      execute(input, next) {
        const [first] = input.args as [unknown];
        if (first && typeof first === 'object' && 'cluster' in first) cluster = (first).cluster;
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(input, next) {
        return next({ ...input, runbook: ctx.info.workflowType, cluster });
      },
    },
  };
};
