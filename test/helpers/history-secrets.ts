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
