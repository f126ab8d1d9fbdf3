// Payload encryption end to end on a real Temporal dev server: what the server stores is
// ciphertext (inputs, results, activity arguments, failure messages), the project's client reads
// it back, and the codec server decrypts it for the UI only with the token.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import { Client, WorkflowFailedError } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AesGcmCodec, loadCodecKeys } from '../../worker/codec';
import { createCodecServer } from '../../worker/codec-server';
import { dataConverter } from '../../worker/data-converter';
import { clusterHealth } from '../../workflows';
import type { ClusterHealthReport } from '../../workflows/health';
import { realActivities, startTemporal, startWorker, type RunningWorker } from '../helpers/temporal';

const keys = loadCodecKeys({ DBR_CODEC_KEYS: `k1=${randomBytes(32).toString('base64')}` })!;
const token = randomBytes(24).toString('hex');
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let client: Client;
let codecServer: http.Server;
let codecUrl: string;

beforeAll(async () => {
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env), { codecKeys: keys });
  client = new Client({ connection: env.connection, dataConverter: dataConverter(keys) });
  codecServer = createCodecServer({ codec: new AesGcmCodec(keys), token, allowedOrigins: ['http://127.0.0.1:8233'] });
  await new Promise<void>((resolve) => codecServer.listen(0, '127.0.0.1', resolve));
  codecUrl = `http://127.0.0.1:${(codecServer.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => codecServer?.close(resolve));
  await worker?.stop();
  await env?.teardown();
});

function payloadsOf(history: temporal.api.history.v1.IHistory): temporal.api.common.v1.IPayload[] {
  const found: temporal.api.common.v1.IPayload[] = [];
  const walk = (value: unknown) => {
    if (!value || typeof value !== 'object') return;
    if (Array.isArray(value)) return value.forEach(walk);
    const v = value as Record<string, unknown>;
    if (v.metadata && typeof v.metadata === 'object' && 'encoding' in (v.metadata)) {
      found.push(v);
      return;
    }
    Object.values(v).forEach(walk);
  };
  walk(history.events);
  return found;
}

function rawText(history: temporal.api.history.v1.IHistory): string {
  return payloadsOf(history).map((p) => Buffer.from(p.data ?? []).toString('latin1')).join('\n');
}

test('inputs, results and activity payloads are stored encrypted; the project client reads them', async () => {
  const workflowId = `clusterHealth/enc-${Date.now()}`;
  const report: ClusterHealthReport = await client.workflow.execute(clusterHealth, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: 'local' }] });
  expect(report.verdict).toBe('healthy');

  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const payloads = payloadsOf(history);
  // input, three activity inputs and results at least, the result, the memo
  expect(payloads.length).toBeGreaterThanOrEqual(8);
  const encodings = payloads.map((p) => Buffer.from(p.metadata!.encoding!).toString());
  // Search attributes are indexed by the server, so they stay in clear; everything else is ciphertext.
  expect(encodings.filter((e) => e !== 'binary/encrypted').every((e) => e === 'json/plain')).toBe(true);
  const cipher = payloads.filter((p) => Buffer.from(p.metadata!.encoding!).toString() === 'binary/encrypted');
  expect(cipher.length).toBeGreaterThanOrEqual(8);
  const text = rawText({ events: history.events!.filter((e) => !e.upsertWorkflowSearchAttributesEventAttributes) });
  for (const clear of ['"cluster":"local"', 'mariadb', 'MariaDB', 'verdict', 'db-runbooks-probe']) expect(text).not.toContain(clear);
});

test('failure messages are encrypted too, and decoded for the client', async () => {
  const workflowId = `clusterHealth/enc-fail-${Date.now()}`;
  const err = await client.workflow
    .execute(clusterHealth, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: 'atlantis' }] })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(((err as WorkflowFailedError).cause?.cause as Error | undefined)?.message).toContain('unknown cluster');
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  expect(JSON.stringify(history.events)).not.toContain('unknown cluster');
  expect(JSON.stringify(history.events)).not.toContain('atlantis"');
});

test('the codec server decrypts for the UI only with the token', async () => {
  const workflowId = `clusterHealth/enc-codec-${Date.now()}`;
  await client.workflow.execute(clusterHealth, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: 'pair' }] });
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  const body = JSON.stringify({
    payloads: [
      {
        metadata: Object.fromEntries(Object.entries(input.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        data: Buffer.from(input.data!).toString('base64'),
      },
    ],
  });
  const post = (headers: Record<string, string>) =>
    fetch(`${codecUrl}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });

  expect((await post({})).status).toBe(401);
  expect((await post({ Authorization: 'Bearer wrong-token-of-some-length' })).status).toBe(401);
  const ok = await post({ Authorization: `Bearer ${token}`, Origin: 'http://127.0.0.1:8233' });
  expect(ok.status).toBe(200);
  expect(ok.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
  const decoded = (await ok.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
  expect(Buffer.from(decoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  expect(JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString())).toEqual({ cluster: 'pair' });

  const preflight = await fetch(`${codecUrl}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://127.0.0.1:8233' } });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
});
