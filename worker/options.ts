// Worker options from configuration, shared by the production entrypoint and the tests.
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities';
import type { CodecKeys } from './codec';
import type { WorkerConfig } from './config';
import { dataConverter } from './data-converter';
import { activityLogContext, WORKFLOW_INTERCEPTOR_MODULES } from './interceptors';

export function workerOptions(params: {
  connection: NativeConnection;
  config: Pick<WorkerConfig, 'temporal' | 'taskQueue' | 'maxConcurrentActivities' | 'maxConcurrentWorkflowTasks' | 'maxCachedWorkflows' | 'shutdownGraceSeconds'>;
  activities: Activities;
  workflowBundlePath?: string;
  codecKeys?: CodecKeys;
}): WorkerOptions {
  const { connection, config, activities, workflowBundlePath, codecKeys } = params;
  return {
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    activities,
    dataConverter: dataConverter(codecKeys),
    interceptors: { activity: [activityLogContext], workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
    ...(workflowBundlePath ? { workflowBundle: { codePath: workflowBundlePath } } : { workflowsPath: require.resolve('../workflows') }),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks,
    maxCachedWorkflows: config.maxCachedWorkflows,
    shutdownGraceTime: `${config.shutdownGraceSeconds} seconds`,
  };
}
