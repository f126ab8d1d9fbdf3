// Payload encryption: AES-256-GCM with the key id in each payload's metadata, so that keys can be
// rotated (new payloads use the first key, old ones still decrypt with theirs). Shared by the
// worker, the command-line client and the codec server the Temporal UI calls.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ConfigError } from './config';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface CodecKeys {
  activeKeyId: string;
  keys: Map<string, Buffer>;
}

export class AesGcmCodec implements PayloadCodec {
  constructor(private readonly codecKeys: CodecKeys) {}

  encode(payloads: Payload[]): Promise<Payload[]> {
    const { activeKeyId, keys } = this.codecKeys;
    const key = keys.get(activeKeyId)!;
    return new Promise((resolve) =>
      resolve(payloads.map((payload) => {
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        const plain = temporal.api.common.v1.Payload.encode(payload).finish();
        const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: {
            encoding: Buffer.from(ENCRYPTED_ENCODING),
            'encryption-key-id': Buffer.from(activeKeyId),
            'encryption-cipher': Buffer.from('AES-256-GCM'),
          },
          data,
        };
      })),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    // A throw inside the executor rejects the promise, as PayloadCodec callers expect.
    return new Promise((resolve) =>
      resolve(payloads.map((payload) => {
        if (Buffer.from(payload.metadata?.encoding ?? []).toString() !== ENCRYPTED_ENCODING) return payload;
        const keyId = Buffer.from(payload.metadata?.['encryption-key-id'] ?? []).toString();
        const key = this.codecKeys.keys.get(keyId);
        if (!key) throw new Error(`payload is encrypted with key id "${keyId}", which this process does not have (DBR_CODEC_KEYS)`);
        const data = Buffer.from(payload.data ?? []);
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
        return temporal.api.common.v1.Payload.decode(plain);
      })),
    );
  }
}

/**
 * Keys from DBR_CODEC_KEYS, or from the file DBR_CODEC_KEYS_FILE (a mounted Secret), as
 * `id=base64key,id2=base64key` (commas or newlines); the first key encrypts, all decrypt.
 * No keys configured: no encryption.
 */
export function loadCodecKeys(env: Record<string, string | undefined> = process.env): CodecKeys | undefined {
  let spec = env.DBR_CODEC_KEYS;
  let source = 'DBR_CODEC_KEYS';
  if (!spec && env.DBR_CODEC_KEYS_FILE) {
    source = 'DBR_CODEC_KEYS_FILE';
    try {
      spec = readFileSync(env.DBR_CODEC_KEYS_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(`DBR_CODEC_KEYS_FILE: cannot read ${env.DBR_CODEC_KEYS_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (!spec || !spec.trim()) return undefined;
  const keys = new Map<string, Buffer>();
  let activeKeyId = '';
  for (const [index, entry] of spec.split(/[,\n]/).map((e) => e.trim()).filter(Boolean).entries()) {
    const at = entry.indexOf('=');
    const id = at > 0 ? entry.slice(0, at) : '';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new ConfigError(`${source}: entry ${index + 1}: expected id=base64key with an id of letters, digits, "_", "." or "-"`);
    const key = Buffer.from(entry.slice(at + 1), 'base64');
    if (key.length !== 32) throw new ConfigError(`${source}: key "${id}": expected 32 bytes (base64 of a 256-bit key), got ${key.length}`);
    if (keys.has(id)) throw new ConfigError(`${source}: key id "${id}" appears twice`);
    keys.set(id, key);
    if (!activeKeyId) activeKeyId = id;
  }
  return { activeKeyId, keys };
}
