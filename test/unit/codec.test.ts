import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec, loadCodecKeys } from '../../worker/codec';

const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');

test('payloads round-trip, carry the key id, and hide their content', async () => {
  const codec = new AesGcmCodec(loadCodecKeys({ DBR_CODEC_KEYS: `a=${keyA}` })!);
  const payload = defaultPayloadConverter.toPayload({ cluster: 'orders', note: 'secret-ish' });
  const [encrypted] = await codec.encode([payload]);
  expect(Buffer.from(encrypted!.metadata!.encoding!).toString()).toBe('binary/encrypted');
  expect(Buffer.from(encrypted!.metadata!['encryption-key-id']!).toString()).toBe('a');
  expect(Buffer.from(encrypted!.data!).toString('latin1')).not.toContain('orders');
  const [decrypted] = await codec.decode([encrypted!]);
  expect(defaultPayloadConverter.fromPayload(decrypted!)).toEqual({ cluster: 'orders', note: 'secret-ish' });
});

test('rotation: new payloads use the first key, old payloads still decrypt with theirs', async () => {
  const old = new AesGcmCodec(loadCodecKeys({ DBR_CODEC_KEYS: `a=${keyA}` })!);
  const rotated = new AesGcmCodec(loadCodecKeys({ DBR_CODEC_KEYS: `b=${keyB},a=${keyA}` })!);
  const [fromOld] = await old.encode([defaultPayloadConverter.toPayload('before rotation')]);
  const [fromNew] = await rotated.encode([defaultPayloadConverter.toPayload('after rotation')]);
  expect(Buffer.from(fromNew!.metadata!['encryption-key-id']!).toString()).toBe('b');
  const decoded = await rotated.decode([fromOld!, fromNew!]);
  expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(['before rotation', 'after rotation']);
  await expect(old.decode([fromNew!])).rejects.toThrow('payload is encrypted with key id "b", which this process does not have');
});

test('a tampered payload is refused; unencrypted payloads pass through', async () => {
  const codec = new AesGcmCodec(loadCodecKeys({ DBR_CODEC_KEYS: `a=${keyA}` })!);
  const [encrypted] = await codec.encode([defaultPayloadConverter.toPayload(42)]);
  const data = Buffer.from(encrypted!.data!);
  data[20] = data[20]! ^ 1;
  await expect(codec.decode([{ ...encrypted!, data }])).rejects.toThrow();
  const plain = defaultPayloadConverter.toPayload('plain');
  expect(await codec.decode([plain])).toEqual([plain]);
});

test.each([
  [{ DBR_CODEC_KEYS: 'nokey' }, 'DBR_CODEC_KEYS: entry 1: expected id=base64key'],
  [{ DBR_CODEC_KEYS: `a=${randomBytes(16).toString('base64')}` }, 'DBR_CODEC_KEYS: key "a": expected 32 bytes (base64 of a 256-bit key), got 16'],
  [{ DBR_CODEC_KEYS: `a=${keyA},a=${keyB}` }, 'DBR_CODEC_KEYS: key id "a" appears twice'],
  [{ DBR_CODEC_KEYS_FILE: '/nonexistent/keys' }, 'DBR_CODEC_KEYS_FILE: cannot read /nonexistent/keys (ENOENT)'],
])('bad key configuration %j names the variable', (env, message) => {
  expect(() => loadCodecKeys(env)).toThrow(message);
});

test('no keys configured: no encryption', () => {
  expect(loadCodecKeys({})).toBeUndefined();
});
