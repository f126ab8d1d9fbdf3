// Workflow histories must never hold a credential (DESIGN: profiles reference secrets, activities
// resolve them). A history's payloads are base64 in its JSON, so every string is looked at as it is
// and base64-decoded.
import { stackSecrets } from './stack';

/** The local stack's credentials by variable name (MariaDB, replication and S3 keys). */
export function stackCredentials(): Record<string, string> {
  return Object.fromEntries(Object.entries(stackSecrets()).filter(([, value]) => value.length >= 8));
}

/** Where in the history (JSON path) which credential appears; empty when none does. */
export function findCredentials(history: unknown, credentials: Record<string, string>): string[] {
  const found: string[] = [];
  const secrets = Object.entries(credentials);
  const visit = (value: unknown, at: string): void => {
    if (typeof value === 'string') {
      const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(value) && value.length >= 8 ? Buffer.from(value, 'base64').toString('latin1') : '';
      for (const [name, secret] of secrets) if (value.includes(secret) || decoded.includes(secret)) found.push(`${name} at ${at}`);
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, `${at}[${i}]`));
    } else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) visit(item, `${at}.${key}`);
    }
  };
  visit(typeof history === 'string' ? JSON.parse(history) : history, '$');
  return found;
}

/**
 * What a credential looks like without knowing it: the shapes the local stack generates its secrets
 * in (scripts/stack.sh: 16 and 20 random bytes in hex, S3 access keys "dbr" + 12 hex) and fields named
 * for a secret. Workflow payloads hold names, positions, sha256 digests (64 hex) and ids, never these.
 */
const SECRET_SHAPES: [string, RegExp][] = [
  ['32 hex characters (a stack password)', /(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])/],
  ['40 hex characters (a stack S3 secret key)', /(?<![0-9a-fA-F])[0-9a-fA-F]{40}(?![0-9a-fA-F])/],
  ['a stack S3 access key', /(?<![0-9a-zA-Z])dbr[0-9a-f]{12}(?![0-9a-f])/],
  ['a secret-named field with a value', /"(password|passwd|secret|secretAccessKey|accessKeyId|token|apiKey|replicationPassword)"\s*:\s*"[^"]/i],
];

/**
 * Where in a history (as the proto's plain-object form, bytes as base64) a payload or a failure
 * message holds something shaped like a credential. Needs no stack: it looks at shapes, not values.
 */
export function findSecretShapes(history: unknown): string[] {
  const found: string[] = [];
  const check = (text: string, at: string) => {
    for (const [what, shape] of SECRET_SHAPES) if (shape.test(text)) found.push(`${what} at ${at}`);
  };
  const visit = (value: unknown, at: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => visit(item, `${at}[${i}]`));
    } else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (typeof record.data === 'string' && 'metadata' in record) check(Buffer.from(record.data, 'base64').toString('utf8'), `${at}.data`);
      if (typeof record.message === 'string' && 'failureInfo' in record) check(record.message, `${at}.message`);
      for (const [key, item] of Object.entries(record)) visit(item, `${at}.${key}`);
    }
  };
  visit(typeof history === 'string' ? JSON.parse(history) : history, '$');
  return found;
}
