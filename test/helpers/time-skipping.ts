// Temporal's time-skipping test server (the native test server scripts/setup.sh installs from a
// package registry) and a worker on it, for workflow tests of branches that take hours of workflow
// time or an unlucky interleaving: lease expiry, the maximum hold, a failed renewal, continue-as-new.
// Activities are the project's own over the test server's client (the lock's signals and
// descriptions) and over loopback (webhooks); none of these tests needs the stack.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { dataConverter } from '../../worker/data-converter';
import { searchAttributes } from '../../workflows/definitions';

export const TEST_SERVER_BINARY = path.join(process.env.DBR_CACHE ?? path.join(os.homedir(), '.cache', 'db-runbooks'), 'bin', 'temporal-test-server');

let runtimeInstalled = false;

export async function startTimeSkipping(): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger((process.env.DBR_TEST_LOG_LEVEL as 'WARN' | 'INFO' | undefined) ?? 'ERROR') });
    runtimeInstalled = true;
  }
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: TEST_SERVER_BINARY } } });
  // The runbooks' search attributes, as the stack's dev server has them.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(Object.values(searchAttributes).map((key) => [key.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  return env;
}

export interface TimeSkippingWorker {
  taskQueue: string;
  stop(): Promise<void>;
}

/** A worker of the test workflows (bundled by the project's globalSetup) with the given activities. */
export async function startTimeSkippingWorker(env: TestWorkflowEnvironment, activities: object, taskQueue = `ts-${randomUUID()}`): Promise<TimeSkippingWorker> {
  const bundle = process.env.DBR_TIME_SKIPPING_BUNDLE;
  if (!bundle) throw new Error('DBR_TIME_SKIPPING_BUNDLE is not set: run the workflow tests through jest (--selectProjects workflows)');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    activities,
    dataConverter: dataConverter(undefined),
    workflowBundle: { codePath: bundle },
  });
  const running = worker.run();
  return {
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}
