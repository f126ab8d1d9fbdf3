// A test-only worker entry for the reliability suite: the production worker's activities and
// options, plus two things a crash test needs.
// - DBR_CRASH_AFTER=<activityType>#<n>: the process SIGKILLs itself right after the n-th execution
//   of that activity type in this process has done its work and before its result reaches Temporal.
//   That is the harshest boundary: the side effect happened, Temporal does not know, and the retry
//   on the next worker must not do it twice.
// - Heartbeats for every activity: the bundle this worker runs (see short-heartbeats.ts) gives
//   every activity a 3 s heartbeat timeout, so the activity a dead worker held is retried within
//   seconds instead of after its production timeout (up to a minute). While an activity runs this
//   worker heartbeats for it, re-sending the details the activity itself last sent, so an activity
//   that resumes from its heartbeat still finds its own progress.
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type ActivityInterceptorsFactory } from '@temporalio/worker';
import { createActivities, createConnectors } from '../../activities';
import { loadWorkerConfig } from '../../worker/config';
import { dataConverter } from '../../worker/data-converter';
import { workerOptions } from '../../worker/options';

const crashAfter = /^(.+)#(\d+)$/.exec(process.env.DBR_CRASH_AFTER ?? '');
const completions = new Map<string, number>();

const crashAndHeartbeat: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const writable = ctx as unknown as { heartbeatFn: (details?: unknown) => void };
      const send = writable.heartbeatFn;
      let last: unknown = ctx.info.heartbeatDetails;
      writable.heartbeatFn = (details?: unknown) => {
        last = details;
        send(details);
      };
      const beat = setInterval(() => send(last), 500);
      try {
        const result = await next(input);
        const type = ctx.info.activityType;
        const count = (completions.get(type) ?? 0) + 1;
        completions.set(type, count);
        if (crashAfter && crashAfter[1] === type && Number(crashAfter[2]) === count) {
          process.stdout.write(`${JSON.stringify({ crash: `${type}#${count}`, workflowId: ctx.info.workflowExecution?.workflowId })}\n`);
          process.kill(process.pid, 'SIGKILL');
        }
        return result;
      } finally {
        clearInterval(beat);
      }
    },
  },
});

async function main(): Promise<void> {
  const config = loadWorkerConfig();
  Runtime.install({
    // INFO: waitUntilPolling() of test/helpers/worker-process.ts waits for the SDK's "state":"RUNNING" line.
    logger: new DefaultLogger('INFO', ({ level, message, meta }) => process.stdout.write(`${JSON.stringify({ level, message, ...meta })}\n`)),
  });
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const clientConnection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace, dataConverter: dataConverter(undefined) });
  const connectors = createConnectors({ profiles: config.profiles, profileSource: config.profilesPath, kubeconfigPath: config.kubeconfigPath });
  const options = workerOptions({ connection, config, activities: createActivities({ ...connectors, client }, { kubernetesPollIntervalMs: 200 }), workflowBundlePath: config.workflowBundlePath });
  const worker = await Worker.create({
    ...options,
    interceptors: { ...options.interceptors, activity: [...(options.interceptors?.activity ?? []), crashAndHeartbeat] },
    // The dead worker's sticky queue is given up on after a second, not the default ten.
    stickyQueueScheduleToStartTimeout: '1 second',
  });
  try {
    await worker.run();
  } finally {
    await clientConnection.close();
    await connection.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`crash worker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
