// Worker options from configuration, shared by the production entrypoint and the tests.
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import type { Activities } from '../activities';
import type { WorkerConfig } from './config';

export function workerOptions(params: {
  connection: NativeConnection;
  config: Pick<WorkerConfig, 'temporal' | 'taskQueue' | 'maxConcurrentActivities' | 'maxConcurrentWorkflowTasks' | 'maxCachedWorkflows' | 'shutdownGraceSeconds'>;
  activities: Activities;
  workflowBundlePath?: string;
}): WorkerOptions {
  const { connection, config, activities, workflowBundlePath } = params;
  return {
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    activities,
    ...(workflowBundlePath ? { workflowBundle: { codePath: workflowBundlePath } } : { workflowsPath: require.resolve('../workflows') }),
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.maxConcurrentWorkflowTasks,
    maxCachedWorkflows: config.maxCachedWorkflows,
    shutdownGraceTime: `${config.shutdownGraceSeconds} seconds`,
  };
}
