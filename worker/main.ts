// The worker entrypoint: configuration, connection to Temporal, activities with their real
// clients, and a graceful shutdown on SIGTERM / SIGINT (the Runtime's default shutdown signals).
import { existsSync } from 'node:fs';
import http from 'node:http';
import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { createActivities, createConnectors } from '../activities';
import { kubernetesClientSource } from '../activities/kubernetes';
import { startAddressWatchers } from './address-watcher';
import { DEFAULT_BUNDLE_PATH } from './bundle';
import { ConfigError, loadWorkerConfig } from './config';
import { dataConverter } from './data-converter';
import { workerOptions } from './options';

const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

function installRuntime(metricsAddress: string | undefined): void {
  const requested = (process.env.DBR_LOG_LEVEL ?? 'INFO').toUpperCase() as LogLevel;
  const level = LOG_LEVELS.includes(requested) ? requested : 'INFO';
  Runtime.install({
    logger: new DefaultLogger(level, ({ level: entryLevel, message, timestampNanos, meta }) => {
      const time = new Date(Number(timestampNanos / 1_000_000n)).toISOString();
      process.stdout.write(`${JSON.stringify({ time, level: entryLevel.toLowerCase(), message, ...meta })}\n`);
    }),
    telemetryOptions: metricsAddress ? { metrics: { prometheus: { bindAddress: metricsAddress } } } : undefined,
  });
}

/** Liveness: the process answers. Readiness: the worker polls its task queue. */
function serveProbes(address: string, worker: Worker): http.Server {
  const at = address.lastIndexOf(':');
  return http
    .createServer((req, res) => {
      const ready = worker.getState() === 'RUNNING';
      const status = req.url === '/healthz' ? 200 : req.url === '/readyz' ? (ready ? 200 : 503) : 404;
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(`${worker.getState()}\n`);
    })
    .listen(Number(address.slice(at + 1)), address.slice(0, at).replace(/^\[|\]$/g, ''));
}

async function main(): Promise<void> {
  let config;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`db-runbooks worker: configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  installRuntime(config.metricsAddress);
  const logger = Runtime.instance().logger;
  const bundlePath = config.workflowBundlePath ?? (existsSync(DEFAULT_BUNDLE_PATH) ? DEFAULT_BUNDLE_PATH : undefined);
  logger.info('starting worker', {
    temporal: config.temporal.address,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    profiles: config.profilesPath,
    clusters: [...config.profiles.keys()],
    workflowBundle: bundlePath ?? 'bundled at start (run npm run build for a prebuilt bundle)',
    metrics: config.metricsAddress ? `http://${config.metricsAddress}/metrics` : 'off',
    payloadEncryption: config.codecKeys ? `AES-256-GCM, key ${config.codecKeys.activeKeyId} of ${config.codecKeys.keys.size}` : 'off (set DBR_CODEC_KEYS)',
  });

  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: config.temporal.address, tls: config.temporal.tls });
  } catch (err) {
    console.error(`db-runbooks worker: cannot reach Temporal at ${config.temporal.address}: ${(err as Error).message}`);
    process.exit(3);
  }
  // Activities that start or signal other workflows (the cluster lock) use a client connection.
  const clientConnection = await Connection.connect({ address: config.temporal.address, tls: config.temporal.tls });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace, dataConverter: dataConverter(config.codecKeys) });
  const connectors = createConnectors({ profiles: config.profiles, profileSource: config.profilesPath, kubeconfigPath: config.kubeconfigPath });
  const worker = await Worker.create(
    workerOptions({ connection, config, activities: createActivities({ ...connectors, client }), workflowBundlePath: bundlePath, codecKeys: config.codecKeys }),
  );
  const probes = config.healthAddress ? serveProbes(config.healthAddress, worker) : undefined;
  const watchers =
    config.kubeconfigPath || process.env.KUBERNETES_SERVICE_HOST
      ? startAddressWatchers({
          profiles: config.profiles,
          kubernetes: kubernetesClientSource({ kubeconfigPath: config.kubeconfigPath }),
          client,
          taskQueue: config.taskQueue,
          identity: `${hostname()}/${process.pid}`,
          logger,
          leaseSeconds: config.addressWatchLeaseSeconds,
        })
      : undefined;
  try {
    await worker.run();
  } finally {
    await watchers?.stop();
    probes?.close();
    await clientConnection.close();
    await connection.close();
  }
  logger.info('worker stopped');
}

main().catch((err: unknown) => {
  console.error(`db-runbooks worker: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
