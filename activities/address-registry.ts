// Node addresses: where the Kubernetes API says each pod of a cluster runs, and what the
// database's own catalog has registered, through the adapter the profile chooses: an SQL table
// (mysql2, one transaction), JSON records in etcd (one txn with compares), or the catalog's own
// admin command (argv templates, run without a shell, values escaped or refused).
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import { heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import type { AddressUpdate, PodAddress, RegisteredNode } from '../workflows/addresses';
import type { ProfileSource } from './cluster';
import type { EtcdConnector } from './etcd';
import { listPodFacts, type KubernetesConnector } from './kubernetes';
import { withConnection, type MysqlConnector } from './mysql';
import type { AddressRefreshProfile, AddressRegistryProfile } from './profile';
import type { SecretResolver } from './secrets';

const run = promisify(execFile);

export interface AddressRegistryDeps {
  profiles: ProfileSource;
  kubernetes: KubernetesConnector;
  mysql: MysqlConnector;
  etcd: EtcdConnector;
  secrets: SecretResolver;
  pollIntervalMs?: number;
}

interface Registry {
  read(): Promise<RegisteredNode[]>;
  /** Applies the updates over what the catalog holds; an update already in place counts as done. */
  apply(updates: readonly AddressUpdate[]): Promise<{ applied: string[]; alreadyDone: string[] }>;
}

function conflict(update: AddressUpdate, found: { host: string; port: number; role: string | null }): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `node ${JSON.stringify(update.node)}: the catalog changed while the refresh ran (it held ${update.previous.host}:${update.previous.port}, now ${found.host}:${found.port}); nothing was written`,
    'CatalogConflict',
  );
}

function same(a: { host: string; port: number; role: string | null }, b: { host: string; port: number; role: string | null }): boolean {
  return a.host === b.host && a.port === b.port && a.role === b.role;
}

function sqlRegistry(deps: AddressRegistryDeps, cluster: string, registry: Extract<AddressRegistryProfile, { kind: 'sql' }>): Registry {
  const node = registry.node ?? deps.mysql.nodes(cluster)[0]?.name ?? '';
  const table = `${mysql.escapeId(registry.database)}.${mysql.escapeId(registry.table)}`;
  const c = registry.columns;
  const select = `SELECT ${mysql.escapeId(c.name)} AS node, ${mysql.escapeId(c.host)} AS host, ${mysql.escapeId(c.port)} AS port${c.role ? `, ${mysql.escapeId(c.role)} AS role` : ''} FROM ${table}`;
  const toNode = (r: RowDataPacket): RegisteredNode => ({ node: String(r.node), host: String(r.host), port: Number(r.port), role: c.role ? (r.role === null ? null : String(r.role)) : null });
  return {
    read: () => withConnection(deps.mysql, cluster, node, async (conn) => (await conn.query<RowDataPacket[]>(select))[0].map(toNode)),
    apply: (updates) =>
      withConnection(deps.mysql, cluster, node, async (conn) => {
        const applied: string[] = [];
        const alreadyDone: string[] = [];
        await conn.beginTransaction();
        try {
          const [rows] = await conn.query<RowDataPacket[]>(`${select} WHERE ${mysql.escapeId(c.name)} IN (?) FOR UPDATE`, [updates.map((u) => u.node)]);
          const current = new Map(rows.map((r) => [String(r.node), toNode(r)]));
          for (const u of updates) {
            const found = current.get(u.node);
            if (!found) throw ApplicationFailure.nonRetryable(`node ${JSON.stringify(u.node)} is no longer in ${registry.database}.${registry.table}`, 'CatalogConflict');
            if (same(found, u)) {
              alreadyDone.push(u.node);
              continue;
            }
            if (!same(found, u.previous)) throw conflict(u, found);
            const sets = [`${mysql.escapeId(c.host)} = ?`, `${mysql.escapeId(c.port)} = ?`, ...(c.role ? [`${mysql.escapeId(c.role)} = ?`] : [])];
            await conn.query(`UPDATE ${table} SET ${sets.join(', ')} WHERE ${mysql.escapeId(c.name)} = ?`, [u.host, u.port, ...(c.role ? [u.role] : []), u.node]);
            applied.push(u.node);
          }
          await conn.commit();
        } catch (err) {
          await conn.rollback().catch(() => undefined);
          throw err;
        }
        return { applied, alreadyDone };
      }),
  };
}

function etcdRegistry(deps: AddressRegistryDeps, cluster: string, registry: Extract<AddressRegistryProfile, { kind: 'etcd' }>): Registry {
  const readAll = async () => {
    const client = await deps.etcd.connect(cluster);
    try {
      const page = await client.kv.range({ key: Buffer.from(registry.prefix), range_end: prefixEnd(registry.prefix) });
      return page.kvs.map((kv) => {
        const record = JSON.parse(kv.value.toString()) as Record<string, unknown> & { host: string; port: number; role?: string | null };
        return { key: kv.key, modRevision: kv.mod_revision, record, node: kv.key.toString().slice(registry.prefix.length) };
      });
    } finally {
      client.close();
    }
  };
  return {
    read: async () => (await readAll()).map(({ node, record }) => ({ node, host: String(record.host), port: Number(record.port), role: record.role === undefined || record.role === null ? null : String(record.role) })),
    async apply(updates) {
      const entries = new Map((await readAll()).map((e) => [e.node, e]));
      const applied: string[] = [];
      const alreadyDone: string[] = [];
      const compare: { key: Buffer; target: 'Mod'; result: 'Equal'; mod_revision: string }[] = [];
      const puts: { request_put: { key: Buffer; value: Buffer } }[] = [];
      for (const u of updates) {
        const entry = entries.get(u.node);
        if (!entry) throw ApplicationFailure.nonRetryable(`node ${JSON.stringify(u.node)} is no longer under ${registry.prefix}`, 'CatalogConflict');
        const found = { host: String(entry.record.host), port: Number(entry.record.port), role: entry.record.role ?? null };
        if (same(found, u)) {
          alreadyDone.push(u.node);
          continue;
        }
        if (!same(found, u.previous)) throw conflict(u, found);
        // Only host, port and role change: the rest of the record is the database's.
        const next = { ...entry.record, host: u.host, port: u.port, ...(u.role !== null ? { role: u.role } : {}) };
        compare.push({ key: entry.key, target: 'Mod', result: 'Equal', mod_revision: entry.modRevision });
        puts.push({ request_put: { key: entry.key, value: Buffer.from(JSON.stringify(next)) } });
        applied.push(u.node);
      }
      if (puts.length > 0) {
        const client = await deps.etcd.connect(cluster);
        try {
          const result = await client.kv.txn({ compare, success: puts, failure: [] });
          if (!result.succeeded) {
            throw ApplicationFailure.retryable(`the node records under ${registry.prefix} changed between the read and the write; reading again`, 'CatalogChanged');
          }
        } finally {
          client.close();
        }
      }
      return { applied, alreadyDone };
    },
  };
}

function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1]! += 1;
  return end;
}

/** SQL string literal: quotes doubled, as standard SQL (PostgreSQL, AntDB) reads it. */
export function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

const PLAIN_VALUE = /^[A-Za-z0-9._:-]+$/;

/** An argv element with {field} / {field:sql} / {field:mysql} placeholders filled in. */
export function renderArgument(template: string, values: Record<string, string>, node: string): string {
  return template.replace(/\{(node|host|port|role)(?::(sql|mysql))?\}/g, (_, field: string, escape: string | undefined) => {
    const value = values[field] ?? '';
    if (escape === 'sql') return sqlLiteral(value);
    if (escape === 'mysql') return mysql.escape(value);
    if (!PLAIN_VALUE.test(value)) {
      throw ApplicationFailure.nonRetryable(
        `node ${JSON.stringify(node)}: ${field} ${JSON.stringify(value)} cannot go into the update command as {${field}}: use {${field}:sql} or {${field}:mysql}, which quote it`,
        'UnsafeCommandValue',
      );
    }
    return value;
  });
}

function commandRegistry(deps: AddressRegistryDeps, cluster: string, registry: Extract<AddressRegistryProfile, { kind: 'command' }>): Registry {
  const environment = async () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const [name, value] of Object.entries(registry.env)) {
      env[name] = typeof value === 'string' ? value : await deps.secrets.resolve(value, { cluster, field: `addressRefresh.registry.env.${name}` });
    }
    return env;
  };
  const exec = async (argv: string[], env: Record<string, string>) => {
    try {
      return (await run(argv[0]!, argv.slice(1), { env, timeout: registry.timeoutSeconds * 1000, maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (err) {
      const e = err as { code?: string | number; stderr?: string; message: string };
      // The command's own last words lead the message; its argv (values, no secrets) stays in the cause.
      throw new Error(`${argv[0]!} exited with ${String(e.code ?? 'an error')}: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' / ')}`, { cause: err });
    }
  };
  const read = async () => {
    const out = await exec(registry.list, await environment());
    return out
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [node = '', host = '', port = '', role] = line.split('\t');
        return { node, host, port: Number(port), role: role === undefined || role === '' || role === 'NULL' ? null : role };
      });
  };
  return {
    read,
    async apply(updates) {
      const env = await environment();
      const current = new Map((await read()).map((n) => [n.node, n]));
      const applied: string[] = [];
      const alreadyDone: string[] = [];
      // Commands cannot share a transaction: each node is checked and changed on its own.
      for (const u of updates) {
        const found = current.get(u.node);
        if (!found) throw ApplicationFailure.nonRetryable(`node ${JSON.stringify(u.node)} is no longer listed by the catalog command`, 'CatalogConflict');
        if (same(found, u)) {
          alreadyDone.push(u.node);
          continue;
        }
        if (!same(found, u.previous)) throw conflict(u, found);
        const values = { node: u.node, host: u.host, port: String(u.port), role: u.role ?? '' };
        await exec(registry.update.map((arg) => renderArgument(arg, values, u.node)), env);
        applied.push(u.node);
        heartbeat({ applied });
      }
      return { applied, alreadyDone };
    },
  };
}

function refreshProfile(deps: AddressRegistryDeps, cluster: string): AddressRefreshProfile {
  const profile = deps.profiles.get(cluster).addressRefresh;
  if (!profile) throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no addressRefresh section in its profile`, 'ProfileIncomplete');
  return profile;
}

function registryFor(deps: AddressRegistryDeps, cluster: string): Registry {
  const { registry } = refreshProfile(deps, cluster);
  if (registry.kind === 'sql') return sqlRegistry(deps, cluster, registry);
  if (registry.kind === 'etcd') return etcdRegistry(deps, cluster, registry);
  return commandRegistry(deps, cluster, registry);
}

export function createAddressRegistryActivities(deps: AddressRegistryDeps) {
  const pollIntervalMs = deps.pollIntervalMs ?? 1000;
  return {
    /**
     * Every pod of the workload with its address and role. A pod with no address yet is waited for
     * (up to waitForAddressSeconds); one still without an address then is reported, never used.
     */
    async readPodAddresses({ cluster }: { cluster: string }): Promise<{ pods: PodAddress[]; waitedFor: string[]; withoutAddress: string[] }> {
      const profile = refreshProfile(deps, cluster);
      const t = deps.kubernetes.workload(cluster);
      const deadline = Date.now() + profile.waitForAddressSeconds * 1000;
      const waitedFor = new Set<string>();
      for (;;) {
        const pods = (await listPodFacts(t, t.workload.selector)).filter((p) => !p.terminating);
        const missing = pods.filter((p) => !p.ip).map((p) => p.name);
        missing.forEach((p) => waitedFor.add(p));
        if (missing.length === 0 || Date.now() >= deadline) {
          if (missing.length > 0) log.warn('pods still without an address: not written', { cluster, pods: missing });
          const withAddress = pods.filter((p) => p.ip);
          return {
            pods: withAddress.map((p) => {
              const node = profile.nodeNameAnnotation ? p.annotations[profile.nodeNameAnnotation] : p.name;
              if (!node) throw ApplicationFailure.nonRetryable(`pod ${p.name} has no annotation ${profile.nodeNameAnnotation ?? ''} naming its catalog node`, 'CatalogConflict');
              return { node, pod: p.name, host: p.ip!, port: profile.port, role: p.role };
            }),
            waitedFor: [...waitedFor].sort(),
            withoutAddress: missing,
          };
        }
        heartbeat({ waitingFor: missing });
        await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
      }
    },

    async readRegisteredNodes({ cluster }: { cluster: string }): Promise<RegisteredNode[]> {
      return (await registryFor(deps, cluster).read()).sort((a, b) => a.node.localeCompare(b.node));
    },

    /** Applies the updates (one transaction where the catalog has them), then reads back and checks. */
    async applyAddressUpdates({ cluster, updates }: { cluster: string; updates: AddressUpdate[] }): Promise<{ applied: string[]; alreadyDone: string[] }> {
      for (const u of updates) {
        if (!isIP(u.host)) throw ApplicationFailure.nonRetryable(`node ${JSON.stringify(u.node)}: host ${JSON.stringify(u.host)} is not an IP address`, 'InvalidInput');
        if (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535) throw ApplicationFailure.nonRetryable(`node ${JSON.stringify(u.node)}: port ${u.port} is out of range`, 'InvalidInput');
      }
      const registry = registryFor(deps, cluster);
      const result = await registry.apply(updates);
      const after = new Map((await registry.read()).map((n) => [n.node, n]));
      const wrong = updates.filter((u) => {
        const found = after.get(u.node);
        return !found || found.host !== u.host || found.port !== u.port || (u.role !== null && found.role !== u.role);
      });
      if (wrong.length > 0) {
        throw ApplicationFailure.nonRetryable(`the catalog reads back other addresses than written for ${wrong.map((u) => JSON.stringify(u.node)).join(', ')}`, 'CatalogVerifyFailed');
      }
      log.info('node addresses refreshed', { cluster, applied: result.applied, alreadyDone: result.alreadyDone });
      return result;
    },
  };
}
