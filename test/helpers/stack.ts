// The local stack the integration tests run against (scripts/stack.sh). Tests stop and start its
// parts to inject faults, through the same script an operator uses.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const STACK_STATE = process.env.DBR_STATE ?? path.join(os.homedir(), '.cache', 'db-runbooks', 'stack');
export const TEMPORAL_BINARY = path.join(process.env.DBR_CACHE ?? path.join(os.homedir(), '.cache', 'db-runbooks'), 'bin', 'temporal');
export const LOCAL_PROFILES = path.join(REPO_ROOT, 'config', 'clusters.local.yaml');

export type StackPart =
  | 'temporal' | 'mariadb' | 'primary' | 'replica' | 'fo1' | 'fo2' | 'fo3' | 'galera1' | 'galera2' | 'galera3'
  | 'etcd' | 'minio' | 'kube-etcd' | 'kube-apiserver' | 'kube-controller-manager';

/** start / stop (SIGTERM) / kill (SIGKILL) a part; fence / unfence: a MariaDB part starts read-only from its next start (or not). */
export async function stack(command: 'start' | 'stop' | 'kill' | 'fence' | 'unfence', part: StackPart): Promise<void> {
  await run('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), command, part], { cwd: REPO_ROOT, timeout: 300_000 });
}

/** The generated credentials of the local stack, as the worker would get them from its environment. */
export function stackSecrets(): Record<string, string> {
  const file = path.join(STACK_STATE, 'secrets.env');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`no stack credentials at ${file}: run scripts/stack.sh up first`);
  }
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/** A loopback port nobody listens on right now, for a server a test starts. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
