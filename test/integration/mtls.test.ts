// mTLS to Temporal: the worker process and the client connect with a client certificate, a CA and
// a server name from their configuration. The dev server speaks plaintext only, so a TLS
// terminator that demands a client certificate signed by the test CA stands in front of it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { cli } from '../helpers/cli';
import { startTemporal } from '../helpers/temporal';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-mtls-'));
const file = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });

function issue(name: string, subject: string, extensions: string): void {
  openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', file(`${name}.key`), '-subj', subject, '-out', file(`${name}.csr`));
  writeFileSync(file(`${name}.ext`), extensions);
  openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`));
}

let env: TestWorkflowEnvironment;
let terminator: tls.Server;
let tlsAddress: string;
let worker: WorkerProcess;
const taskQueue = `mtls-${process.pid}`;

beforeAll(async () => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('ca.key'), '-subj', '/CN=dbr-test-ca', '-days', '2', '-out', file('ca.crt'));
  issue('server', '/CN=temporal.test', 'subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=db-runbooks-worker', 'extendedKeyUsage=clientAuth\n');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', file('rogue.key'), '-subj', '/CN=rogue', '-days', '2', '-out', file('rogue.crt'));

  env = await startTemporal();
  const [host, port] = env.address.split(':') as [string, string];
  terminator = tls.createServer(
    {
      key: readFileSync(file('server.key')),
      cert: readFileSync(file('server.crt')),
      ca: readFileSync(file('ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      const upstream = net.connect(Number(port), host === 'localhost' ? '127.0.0.1' : host);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
    },
  );
  await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  tlsAddress = `127.0.0.1:${(terminator.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await worker?.kill();
  await new Promise((resolve) => terminator?.close(resolve));
  await env?.teardown();
});

const tlsEnv = (cert = 'client') => ({
  TEMPORAL_ADDRESS: tlsAddress,
  TEMPORAL_TLS_CERT: file(`${cert}.crt`),
  TEMPORAL_TLS_KEY: file(`${cert}.key`),
  TEMPORAL_TLS_CA: file('ca.crt'),
  TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  DBR_TASK_QUEUE: taskQueue,
});

test('the worker and the client run a runbook over mTLS', async () => {
  worker = spawnWorkerProcess(tlsEnv());
  await worker.waitUntilPolling();
  const { code, out, err } = await cli(['clusterHealth', '--cluster', 'local'], tlsEnv());
  expect(err).toBe('');
  expect(code).toBe(0);
  expect(out).toContain('cluster local: HEALTHY');
});

test('a client certificate the CA did not sign is refused', async () => {
  const { code, err } = await cli(['list'], tlsEnv('rogue'));
  expect(code).toBe(3);
  expect(err).toMatch(/^runbook: cannot reach Temporal at 127\.0\.0\.1:\d+: /);
});

test('a client without TLS and a client certificate is refused', async () => {
  const { code, err } = await cli(['list'], { TEMPORAL_ADDRESS: tlsAddress, TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' });
  expect(code).toBe(3);
  expect(err).toMatch(/^runbook: cannot reach Temporal/);
});
