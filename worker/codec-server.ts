// The codec server the Temporal UI (and `temporal` CLI) call to show encrypted payloads in clear:
// POST /encode and /decode with {"payloads": [...]} in proto3 JSON. Requests without the
// configured bearer token are refused.
//   DBR_CODEC_KEYS (or DBR_CODEC_KEYS_FILE), DBR_CODEC_SERVER_TOKEN, DBR_CODEC_SERVER_PORT (8888),
//   DBR_CODEC_SERVER_ORIGINS (http://127.0.0.1:8233,http://localhost:8233)
import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { AesGcmCodec, loadCodecKeys } from './codec';
import { ConfigError } from './config';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  };
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.replace(/^Bearer\s+/i, '') ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function createCodecServer(options: { codec: PayloadCodec; token: string; allowedOrigins: string[] }): http.Server {
  return http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin && options.allowedOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Namespace');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    }
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204);
      res.end();
      return;
    }
    const route = req.url?.split('?')[0]?.replace(/\/+$/, '');
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode')) {
      reply(404, { message: 'POST /encode or /decode' });
      return;
    }
    if (!tokenMatches(req.headers.authorization, options.token)) {
      reply(401, { message: 'missing or wrong bearer token' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { payloads?: JsonPayload[] };
          const payloads = (body.payloads ?? []).map(fromJson);
          const result = route === '/encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
          reply(200, { payloads: result.map(toJson) });
        } catch (err) {
          reply(400, { message: (err as Error).message });
        }
      })();
    });
  });
}

if (require.main === module) {
  try {
    const keys = loadCodecKeys();
    if (!keys) throw new ConfigError('DBR_CODEC_KEYS: required: the codec server decrypts with the same keys as the worker');
    const token = process.env.DBR_CODEC_SERVER_TOKEN;
    if (!token || token.length < 16) throw new ConfigError('DBR_CODEC_SERVER_TOKEN: required, at least 16 characters');
    const port = Number(process.env.DBR_CODEC_SERVER_PORT ?? 8888);
    const origins = (process.env.DBR_CODEC_SERVER_ORIGINS ?? 'http://127.0.0.1:8233,http://localhost:8233').split(',');
    createCodecServer({ codec: new AesGcmCodec(keys), token, allowedOrigins: origins }).listen(port, () => {
      console.log(JSON.stringify({ time: new Date().toISOString(), level: 'info', message: 'codec server listening', port, origins }));
    });
  } catch (err) {
    console.error(`db-runbooks codec server: ${(err as Error).message}`);
    process.exit(2);
  }
}
