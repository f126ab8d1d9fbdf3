// The metadata an etcd-backed database keeps under its profile's metadata prefix, as the upgrade
// runbook handles it: a logical dump (JSON lines: key, value, version; bytes kept exactly as
// base64) streamed to S3, a restore through the API, the declared migration applied with a
// ledger, and verification that the keys are exactly the dump plus the declared changes.
// Everything streams: memory stays bounded by the keys a migration touches, not the metadata size.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Context, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Etcd3, IRequestOp } from 'etcd3';
import { applyMigration, diffKeys, rebaseStep, stepChanges, type EtcdMigrationSpec, type EtcdMigrationStep } from '../workflows/etcd-migration';
import { upgradeObjectName } from '../workflows/object-names';
import type { EtcdConnector } from './etcd';
import { readVerified, uploadVerified, type S3Connector } from './s3';

export interface MetadataRecord {
  key: Buffer;
  value: Buffer;
  version: string;
}

export interface MetadataDigest {
  keyCount: number;
  /** sha256 over every key and value, in key order, length-prefixed. */
  digest: string;
}

/** Where the upgrade keeps its migration ledger: outside the metadata prefix, so it never shows in the data. */
export const LEDGER_ROOT = '/__db_runbooks/migrations/';
export const PROBE_ROOT = '/__db_runbooks/probe/';
export const SCRATCH_ROOT = '/__db_runbooks/scratch/';

const PAGE = 1000;
/** etcd refuses transactions of more than 128 operations by default (--max-txn-ops). */
const TXN_OPS = 100;

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i -= 1) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Every key under prefix, in key order, at one revision (a consistent view while it pages). */
export async function* readPrefix(client: Etcd3, prefix: string, atRevision?: string): AsyncGenerator<MetadataRecord> {
  const end = prefixEnd(Buffer.from(prefix));
  let from = Buffer.from(prefix);
  let revision = atRevision;
  for (;;) {
    const page = await client.kv.range({ key: from, range_end: end, limit: PAGE, revision });
    revision ??= page.header.revision;
    for (const kv of page.kvs) yield { key: kv.key, value: kv.value, version: kv.version };
    if (!page.more || page.kvs.length === 0) return;
    from = Buffer.concat([page.kvs[page.kvs.length - 1]!.key, Buffer.from([0])]);
  }
}

export async function currentRevision(client: Etcd3): Promise<string> {
  return (await client.kv.range({ key: Buffer.from([0]), limit: 1 })).header.revision;
}

class Digester {
  private readonly hash = createHash('sha256');
  keyCount = 0;
  add(key: Buffer, value: Buffer): void {
    const lengths = Buffer.alloc(8);
    lengths.writeUInt32BE(key.length, 0);
    lengths.writeUInt32BE(value.length, 4);
    this.hash.update(lengths).update(key).update(value);
    this.keyCount += 1;
  }
  result(): MetadataDigest {
    return { keyCount: this.keyCount, digest: this.hash.digest('hex') };
  }
}

function rebaseKey(key: Buffer, from: string, to: string): Buffer {
  return Buffer.concat([Buffer.from(to), key.subarray(Buffer.byteLength(from))]);
}

/** The keys a migration reads or writes: exact keys and whole prefixes. Everything else must not change. */
export function touchedBy(steps: readonly EtcdMigrationStep[]): { keys: Set<string>; prefixes: string[] } {
  const keys = new Set<string>();
  const prefixes: string[] = [];
  for (const step of steps) {
    if (step.op === 'renamePrefix') prefixes.push(step.from, step.to);
    else keys.add(step.key);
  }
  return { keys, prefixes };
}

function isTouched(key: string, touched: { keys: Set<string>; prefixes: string[] }): boolean {
  return touched.keys.has(key) || touched.prefixes.some((p) => key.startsWith(p));
}

function dumpObjectKey(prefix: string, workflowId: string, name: string): string {
  return `${prefix}${upgradeObjectName(workflowId, name)}`;
}

export interface UpgradeManifest {
  cluster: string;
  workflowId: string;
  runbook: 'upgradeCluster' | 'downgradeCluster';
  fromImage: string;
  toImage: string;
  replicas: number;
  /** The logical dump of the metadata before the change, and its digest. */
  dump: { objectKey: string; keyCount: number; digest: string; sha256: string; bytes: number };
  /** The full etcd snapshot taken with the dump, for `etcdctl snapshot restore`. */
  snapshot?: { objectKey: string; bytes: number; sha256: string; revision: string };
  migration?: { kind: string; version: string };
  outcome: 'upgraded' | 'downgraded' | 'rolled back' | 'dry-run' | 'in progress';
  at: string;
}

export interface MetadataDeps {
  etcd: EtcdConnector;
  s3: S3Connector;
}

async function withEtcd<T>(deps: MetadataDeps, cluster: string, fn: (client: Etcd3, prefix: string) => Promise<T>): Promise<T> {
  const client = await deps.etcd.connect(cluster);
  try {
    return await fn(client, deps.etcd.profile(cluster).metadataPrefix);
  } finally {
    client.close();
  }
}

/** Dump records as gzipped JSON lines from an S3 object, verifying the stored sha256 as it reads. */
async function* readDump(deps: MetadataDeps, cluster: string, objectKey: string): AsyncGenerator<MetadataRecord> {
  const target = await deps.s3.connect(cluster);
  try {
    const { body } = await readVerified(target, objectKey);
    const lines = createInterface({ input: body.pipe(createGunzip()), crlfDelay: Infinity });
    // A corrupt object fails at the end of the stream: readline swallows that error, so keep it.
    let failure: Error | undefined;
    body.on('error', (err: Error) => (failure = err));
    for await (const line of lines) {
      if (!line) continue;
      const r = JSON.parse(line) as { k: string; v: string; ver: string };
      yield { key: Buffer.from(r.k, 'base64'), value: Buffer.from(r.v, 'base64'), version: r.ver };
    }
    if (failure) throw failure;
  } finally {
    target.client.destroy();
  }
}

async function applyOps(client: Etcd3, ops: IRequestOp[]): Promise<void> {
  for (let i = 0; i < ops.length; i += TXN_OPS) await client.kv.txn({ compare: [], success: ops.slice(i, i + TXN_OPS), failure: [] });
}

export interface MigrationVerification {
  equal: boolean;
  /** Keys that differ from the expectation (at most 20), for the report. */
  differences: string[];
  changes: { added: string[]; changed: string[]; removed: string[] };
  untouched: MetadataDigest;
}

export function createMetadataActivities(deps: MetadataDeps) {
  /**
   * Compares the keys under actualPrefix with the dump plus the migration (its steps rebased from
   * the metadata prefix to actualPrefix when that differs): untouched keys by digest, touched keys
   * exactly, in memory.
   */
  async function verifyAgainstDump(cluster: string, dumpObject: string, steps: readonly EtcdMigrationStep[], actualPrefix?: string): Promise<MigrationVerification> {
    return withEtcd(deps, cluster, async (client, metadataPrefix) => {
      const prefix = actualPrefix ?? metadataPrefix;
      const rebased = steps.map((s) => rebaseStep(s, metadataPrefix, prefix));
      const touched = touchedBy(rebased);
      const expectedUntouched = new Digester();
      const touchedBefore = new Map<string, Buffer>();
      for await (const r of readDump(deps, cluster, dumpObject)) {
        const key = rebaseKey(r.key, metadataPrefix, prefix);
        if (isTouched(key.toString(), touched)) touchedBefore.set(key.toString(), r.value);
        else expectedUntouched.add(key, r.value);
      }
      const actualUntouched = new Digester();
      const touchedNow = new Map<string, Buffer>();
      for await (const r of readPrefix(client, prefix)) {
        if (isTouched(r.key.toString(), touched)) touchedNow.set(r.key.toString(), r.value);
        else actualUntouched.add(r.key, r.value);
        if ((actualUntouched.keyCount + touchedNow.size) % 5000 === 0) heartbeat({ phase: 'verify', read: actualUntouched.keyCount + touchedNow.size });
      }
      const expectedTouched = applyMigration(touchedBefore, rebased);
      const differences: string[] = [];
      for (const key of new Set([...expectedTouched.keys(), ...touchedNow.keys()])) {
        const want = expectedTouched.get(key);
        const got = touchedNow.get(key);
        if (!want || !got || !want.equals(got)) differences.push(key);
      }
      const expected = expectedUntouched.result();
      const actual = actualUntouched.result();
      if (expected.digest !== actual.digest) differences.push(`${Math.abs(expected.keyCount - actual.keyCount)} key(s) outside the migration changed (untouched keys: ${actual.keyCount} now, ${expected.keyCount} in the dump)`);
      const rebase = (k: string) => metadataPrefix + k.slice(prefix.length);
      const changes = diffKeys(touchedBefore, touchedNow);
      return {
        equal: differences.length === 0,
        differences: differences.slice(0, 20).map((d) => (d.startsWith(prefix) ? rebase(d) : d)),
        changes: { added: changes.added.map(rebase), changed: changes.changed.map(rebase), removed: changes.removed.map(rebase) },
        untouched: actual,
      };
    });
  }

  /** Applies the steps under prefix in batches; with a ledger, each batch also records the steps done. */
  async function applySteps(client: Etcd3, steps: readonly EtcdMigrationStep[], where: string, ledgerKey?: string): Promise<{ applied: number; skipped: number }> {
    let done = 0;
    if (ledgerKey) {
      const ledger = await client.get(ledgerKey).string();
      done = ledger ? (JSON.parse(ledger) as { stepsDone: number }).stepsDone : 0;
    }
    let applied = 0;
    for (let i = done; i < steps.length; i += 1) {
      const step = steps[i]!;
      // Re-read before each step: after a crash the step may be half or wholly applied, and
      // stepChanges then yields only what is left to do.
      const values = new Map<string, Buffer>();
      if (step.op === 'renamePrefix') {
        for await (const r of readPrefix(client, step.from)) values.set(r.key.toString(), r.value);
      } else {
        const value = await client.get(step.key).buffer();
        if (value !== null) values.set(step.key, value);
      }
      const needed = [...values.keys()];
      let changes;
      try {
        changes = stepChanges(step, (k) => values.get(k), () => needed);
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`migration step ${i} (${step.op}) failed: ${(err as Error).message}`, 'MigrationFailed');
      }
      const ops: IRequestOp[] = [
        ...[...changes.puts].map(([key, value]) => ({ request_put: { key: Buffer.from(key), value } })),
        ...[...changes.deletes].map((key) => ({ request_delete_range: { key: Buffer.from(key) } })),
      ];
      // Puts before deletes: an interrupted rename leaves both copies, never neither.
      for (let j = 0; j < ops.length; j += TXN_OPS) {
        const batch = ops.slice(j, j + TXN_OPS);
        const last = j + TXN_OPS >= ops.length;
        if (ledgerKey && last) batch.push({ request_put: { key: Buffer.from(ledgerKey), value: Buffer.from(JSON.stringify({ stepsDone: i + 1, of: steps.length })) } });
        await client.kv.txn({ compare: [], success: batch, failure: [] });
      }
      if (ledgerKey && ops.length === 0) await client.put(ledgerKey).value(JSON.stringify({ stepsDone: i + 1, of: steps.length }));
      applied += 1;
      heartbeat({ phase: 'migrate', step: i + 1, of: steps.length, where });
    }
    return { applied, skipped: done };
  }

  return {
    /** Key count and digest of the metadata prefix: the data-validation snapshot. */
    async snapshotMetadata({ cluster }: { cluster: string }): Promise<MetadataDigest & { revision: string }> {
      return withEtcd(deps, cluster, async (client, prefix) => {
        const revision = await currentRevision(client);
        const digest = new Digester();
        for await (const r of readPrefix(client, prefix, revision)) digest.add(r.key, r.value);
        return { ...digest.result(), revision };
      });
    },

    /** Streams the metadata prefix at one revision to S3 as gzipped JSON lines; verified with HeadObject. */
    async dumpMetadata({ cluster, workflowId }: { cluster: string; workflowId: string }): Promise<MetadataDigest & { objectKey: string; bytes: number; sha256: string; revision: string }> {
      return withEtcd(deps, cluster, async (client, prefix) => {
        const target = await deps.s3.connect(cluster);
        const objectKey = dumpObjectKey(target.prefix, workflowId, 'metadata.jsonl.gz');
        try {
          const revision = await currentRevision(client);
          const digest = new Digester();
          const lines = Readable.from(
            (async function* () {
              for await (const r of readPrefix(client, prefix, revision)) {
                digest.add(r.key, r.value);
                if (digest.keyCount % 5000 === 0) heartbeat({ phase: 'dump', keys: digest.keyCount });
                yield `${JSON.stringify({ k: r.key.toString('base64'), v: r.value.toString('base64'), ver: r.version })}\n`;
              }
            })(),
          );
          const uploaded = await uploadVerified(target, objectKey, [lines, createGzip()], () => ({ keys: String(digest.keyCount), revision }));
          return { ...digest.result(), objectKey, bytes: uploaded.bytes, sha256: uploaded.sha256, revision };
        } finally {
          target.client.destroy();
        }
      });
    },

    /**
     * Replaces every key under the target prefix (default: the metadata prefix) with the dump's,
     * then checks the result key for key against the dump. Repeatable: it starts over each time.
     */
    async restoreMetadata({ cluster, objectKey, targetPrefix }: { cluster: string; objectKey: string; targetPrefix?: string }): Promise<MetadataDigest & { equal: boolean }> {
      return withEtcd(deps, cluster, async (client, metadataPrefix) => {
        const prefix = targetPrefix ?? metadataPrefix;
        if (targetPrefix && !targetPrefix.startsWith(SCRATCH_ROOT)) throw ApplicationFailure.nonRetryable(`targetPrefix: must lie under ${SCRATCH_ROOT}`, 'InvalidInput');
        await client.kv.deleteRange({ key: Buffer.from(prefix), range_end: prefixEnd(Buffer.from(prefix)) });
        const expected = new Digester();
        let ops: IRequestOp[] = [];
        for await (const r of readDump(deps, cluster, objectKey)) {
          const key = rebaseKey(r.key, metadataPrefix, prefix);
          expected.add(key, r.value);
          ops.push({ request_put: { key, value: r.value } });
          if (ops.length >= TXN_OPS) {
            await applyOps(client, ops);
            ops = [];
            heartbeat({ phase: 'restore', keys: expected.keyCount });
          }
        }
        await applyOps(client, ops);
        const actual = new Digester();
        for await (const r of readPrefix(client, prefix)) actual.add(r.key, r.value);
        const want = expected.result();
        const got = actual.result();
        if (got.digest !== want.digest) log.error('restored metadata differs from the dump', { cluster, prefix, want, got });
        return { ...got, equal: got.digest === want.digest };
      });
    },

    /** Applies the migration to the metadata prefix, recording each step done in the ledger. */
    async applyEtcdMigration({ cluster, spec }: { cluster: string; spec: EtcdMigrationSpec }): Promise<{ applied: number; skipped: number }> {
      return withEtcd(deps, cluster, (client, prefix) => applySteps(client, spec.steps, prefix, `${LEDGER_ROOT}${cluster}/${spec.version}`));
    },

    /** Forgets a migration's ledger, after the metadata it recorded was rolled back. */
    async clearMigrationLedger({ cluster, version }: { cluster: string; version: string }): Promise<void> {
      await withEtcd(deps, cluster, (client) => client.delete().key(`${LEDGER_ROOT}${cluster}/${version}`).exec());
    },

    /**
     * The dry-run: the dump restored under a scratch prefix, the migration applied there, the
     * result checked against the declared changes; the scratch prefix is removed in every case.
     */
    async dryRunEtcdMigration({ cluster, objectKey, spec, runId }: { cluster: string; objectKey: string; spec: EtcdMigrationSpec; runId: string }): Promise<MigrationVerification> {
      const scratch = `${SCRATCH_ROOT}${cluster}/${runId}/`;
      const self = createMetadataActivities(deps);
      try {
        await self.restoreMetadata({ cluster, objectKey, targetPrefix: scratch });
        await withEtcd(deps, cluster, async (client, metadataPrefix) => {
          await applySteps(client, spec.steps.map((s) => rebaseStep(s, metadataPrefix, scratch)), scratch);
        });
        return await verifyAgainstDump(cluster, objectKey, spec.steps, scratch);
      } finally {
        await withEtcd(deps, cluster, (client) => client.kv.deleteRange({ key: Buffer.from(scratch), range_end: prefixEnd(Buffer.from(scratch)) }));
      }
    },

    /** After the upgrade: the metadata equals the pre-upgrade dump plus exactly the declared changes. */
    async verifyMetadata({ cluster, objectKey, steps }: { cluster: string; objectKey: string; steps: EtcdMigrationStep[] }): Promise<MigrationVerification> {
      return verifyAgainstDump(cluster, objectKey, steps);
    },

    /** The record of an upgrade, next to its backups: what a downgrade needs to undo it. */
    async writeUpgradeManifest({ cluster, manifest }: { cluster: string; manifest: UpgradeManifest }): Promise<{ objectKey: string }> {
      const target = await deps.s3.connect(cluster);
      try {
        const objectKey = dumpObjectKey(target.prefix, manifest.workflowId, 'manifest.json');
        await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: objectKey, Body: JSON.stringify(manifest, null, 2), ContentType: 'application/json' }));
        return { objectKey };
      } finally {
        target.client.destroy();
      }
    },

    async readUpgradeManifest({ cluster, upgradeWorkflowId }: { cluster: string; upgradeWorkflowId: string }): Promise<UpgradeManifest> {
      const target = await deps.s3.connect(cluster);
      const objectKey = dumpObjectKey(target.prefix, upgradeWorkflowId, 'manifest.json');
      try {
        const object = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: objectKey }));
        return JSON.parse(await object.Body!.transformToString()) as UpgradeManifest;
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') {
          throw ApplicationFailure.nonRetryable(`upgradeWorkflowId: no upgrade manifest at s3://${target.bucket}/${objectKey}`, 'UnknownUpgrade');
        }
        throw err;
      } finally {
        target.client.destroy();
      }
    },

    /** A write, a read-back and a delete against etcd, outside the metadata prefix. */
    async metadataReadWriteProbe({ cluster, probeId }: { cluster: string; probeId: string }): Promise<{ ok: boolean; error?: string }> {
      return withEtcd(deps, cluster, async (client) => {
        const key = `${PROBE_ROOT}${probeId}`;
        const value = `probe ${Context.current().info.activityId}`;
        try {
          await client.put(key).value(value);
          const read = await client.get(key).string();
          await client.delete().key(key);
          return read === value ? { ok: true } : { ok: false, error: `read back ${JSON.stringify(read)}` };
        } catch (err) {
          return { ok: false, error: (err as Error).message };
        }
      });
    },
  };
}
