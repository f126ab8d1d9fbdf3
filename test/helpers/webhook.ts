// A real HTTP server on loopback that records what the runbooks' notifications post to it.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedNotification {
  path: string;
  idempotencyKey: string | undefined;
  body: Record<string, unknown>;
}

export interface RecordingWebhook {
  /** http://127.0.0.1:port */
  url: string;
  received: ReceivedNotification[];
  /** JSON events posted under this path prefix, as {workflowId, kind} pairs. */
  events(pathPrefix: string): { workflowId: string; kind: string }[];
  close(): Promise<void>;
}

/** Paths starting with /broken/ answer 500, to play a webhook that is down. */
export async function startRecordingWebhook(): Promise<RecordingWebhook> {
  const received: ReceivedNotification[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      if (path.startsWith('/broken/')) {
        res.writeHead(500).end('down');
        return;
      }
      received.push({ path, idempotencyKey: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    events: (pathPrefix) =>
      received.filter((r) => r.path.startsWith(pathPrefix) && typeof r.body.kind === 'string').map((r) => ({ workflowId: String(r.body.workflowId), kind: String(r.body.kind) })),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
