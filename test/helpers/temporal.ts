// A real Temporal dev server per test file (the CLI binary the stack script installed, started by
// the SDK's test environment) and a worker running the project's activities against real servers.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { createActivities, createConnectors, type Activities } from '../../activities';
import { createKubernetesActivities, type KubernetesClientSource } from '../../activities/kubernetes';
import { createMysqlActivities } from '../../activities/mysql';
import { createNodeControlActivities } from '../../activities/nodes';
import { parseProfiles, type ClusterProfile } from '../../activities/profile';
import type { CodecKeys } from '../../worker/codec';
import { workerOptions } from '../../worker/options';
import { searchAttributes } from '../../workflows/definitions';
import { stackCredentials } from './history-secrets';
import { LOCAL_PROFILES, TEMPORAL_BINARY } from './stack';

let runtimeInstalled = false;

/** A dev server on a free port; with uiPort, its Web UI too. */
export async function startTemporal(options: { uiPort?: number } = {}): Promise<TestWorkflowEnvironment> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger((process.env.DBR_TEST_LOG_LEVEL as 'WARN' | 'INFO' | undefined) ?? 'ERROR') });
    runtimeInstalled = true;
  }
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: TEMPORAL_BINARY },
      ip: '127.0.0.1',
      searchAttributes: Object.values(searchAttributes),
      extraArgs: ['--log-level', 'error'],
      ...(options.uiPort ? { ui: true, uiPort: options.uiPort } : {}),
    },
  });
  // Every history a test file produced is checked for the stack's credentials before its server
  // goes: across the suite that is every runbook, on its success and failure paths.
  const teardown = env.teardown.bind(env);
  env.teardown = async () => {
    try {
      await expectNoCredentialsInHistories(env);
    } finally {
      await teardown();
    }
  };
  return env;
}

async function expectNoCredentialsInHistories(env: TestWorkflowEnvironment): Promise<void> {
  const credentials = Object.entries(stackCredentials());
  const leaks: string[] = [];
  // The raw service call: the client's list would decode memos, and some tests encrypt them.
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await env.client.workflowService.listWorkflowExecutions({ namespace: env.namespace ?? 'default', nextPageToken });
    for (const { execution } of page.executions) {
      const workflowId = execution?.workflowId ?? '';
      const history = await env.client.workflow.getHandle(workflowId, execution?.runId ?? undefined).fetchHistory();
      // Payloads are raw bytes in the binary form: a credential would appear as it is.
      const bytes = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()).toString('latin1');
      for (const [name, secret] of credentials) if (bytes.includes(secret)) leaks.push(`${name} in the history of ${workflowId}`);
    }
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  if (leaks.length) throw new Error(`credentials found in workflow histories: ${leaks.join('; ')}`);
}

/** The local stack's profiles, plus clusters a test defines in YAML (parsed by the real parser). */
export function testProfiles(extraYaml = ''): Map<string, ClusterProfile> {
  // Relative node-control directories resolve against config/, as the worker resolves them for the file.
  const profiles = parseProfiles(readFileSync(LOCAL_PROFILES, 'utf8'), LOCAL_PROFILES, path.dirname(LOCAL_PROFILES));
  if (extraYaml) for (const [name, profile] of parseProfiles(extraYaml, 'test profile', path.dirname(LOCAL_PROFILES))) profiles.set(name, profile);
  return profiles;
}

/**
 * The project's activities over real clients, with the test's Temporal client for the ones that
 * start or signal workflows. Kubernetes activities need a kubeconfig (the stack's admin or worker
 * one, see ./kubernetes) or ready-made clients; they poll quickly in tests.
 */
export function realActivities(
  env: TestWorkflowEnvironment,
  profiles: Map<string, ClusterProfile> = testProfiles(),
  kubernetes: KubernetesAccess = {},
): Activities {
  return createActivities({ ...createConnectors({ profiles, profileSource: 'test profiles', ...kubernetes }), client: env.client }, { kubernetesPollIntervalMs: 200 });
}

export interface KubernetesAccess {
  kubeconfigPath?: string;
  kubernetesClients?: KubernetesClientSource;
}

/**
 * The MySQL, Kubernetes and node-control activities alone, for tests that call them directly in an activity
 * context rather than through a workflow: they need no Temporal server.
 */
export function serverActivities(profiles: Map<string, ClusterProfile>, kubernetes: KubernetesAccess) {
  const connectors = createConnectors({ profiles, profileSource: 'test profiles', ...kubernetes });
  return {
    ...createMysqlActivities({ mysql: connectors.mysql }),
    ...createKubernetesActivities({ kubernetes: connectors.kubernetes, pollIntervalMs: 200 }),
    ...createNodeControlActivities({ profiles: connectors.profiles, runner: connectors.commands, kubernetes: connectors.kubernetes, mysql: connectors.mysql, pollIntervalMs: 200 }),
  };
}

export type ServerActivities = ReturnType<typeof serverActivities>;

export interface RunningWorker {
  worker: Worker;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startWorker(env: TestWorkflowEnvironment, activities: Activities, options: { codecKeys?: CodecKeys } = {}): Promise<RunningWorker> {
  const bundle = process.env.DBR_TEST_WORKFLOW_BUNDLE;
  if (!bundle) throw new Error('DBR_TEST_WORKFLOW_BUNDLE is not set: run integration tests through jest (test/helpers/global-setup.ts)');
  const taskQueue = `test-${randomUUID()}`;
  const worker = await Worker.create(
    workerOptions({
      connection: env.nativeConnection,
      config: {
        temporal: { address: env.address, namespace: env.namespace ?? 'default' },
        taskQueue,
        maxConcurrentActivities: 20,
        maxConcurrentWorkflowTasks: 10,
        maxCachedWorkflows: 100,
        shutdownGraceSeconds: 5,
      },
      activities,
      workflowBundlePath: bundle,
      codecKeys: options.codecKeys,
    }),
  );
  const running = worker.run();
  return {
    worker,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}

/** Runs fn as an activity would run (its context, heartbeats, logger), without a worker: an activity called directly against the real servers. */
export function inActivity<R>(fn: () => Promise<R>, environment = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') })): Promise<R> {
  return environment.run(fn);
}
