// etcd: clients resolved from the cluster profile, and the facts the runbooks decide on.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { noop } from 'cockatiel';
import { Etcd3, type IOptions } from 'etcd3';
import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ProfileSource } from './cluster';
import type { EtcdProfile } from './profile';
import type { SecretResolver } from './secrets';
import { uploadVerified, withS3Target, type S3Connector, type VerifiedObject } from './s3';

export interface EtcdConnector {
  /** A client for the cluster's etcd, or for one of its endpoints only; the caller closes it. */
  connect(cluster: string, endpoint?: string): Promise<Etcd3>;
  profile(cluster: string): EtcdProfile;
}

/** etcd3 retries a dead host for a long time by default; a runbook's own retry policy decides instead. */
const CALL_TIMEOUT_MS = 10_000;

export function createEtcdConnector(deps: { profiles: ProfileSource; secrets: SecretResolver }): EtcdConnector {
  const etcdProfile = (cluster: string) => {
    const profile = deps.profiles.get(cluster);
    if (!profile.etcd) {
      throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no etcd section in its profile`, 'ProfileIncomplete');
    }
    return { profile, etcd: profile.etcd };
  };
  return {
    profile: (cluster) => etcdProfile(cluster).etcd,
    async connect(cluster, endpoint) {
      const { profile, etcd } = etcdProfile(cluster);
      const options: IOptions = {
        hosts: endpoint ? [endpoint] : etcd.endpoints,
        dialTimeout: 5_000,
        defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
        faultHandling: { global: noop, host: () => noop },
      };
      if (etcd.username && etcd.password) {
        options.auth = {
          username: etcd.username,
          password: await deps.secrets.resolve(etcd.password, { cluster, field: 'etcd.password', namespace: profile.namespace }),
        };
      }
      return new Etcd3(options);
    },
  };
}

export interface EtcdEndpointFacts {
  endpoint: string;
  reachable: boolean;
  error?: string;
  version?: string;
  dbSizeBytes?: number;
  memberId?: string;
  leaderId?: string;
  raftIndex?: string;
}

export interface EtcdFacts {
  endpoints: EtcdEndpointFacts[];
  members: { id: string; name: string; clientUrls: string[] }[];
}

export function createEtcdActivities(deps: { etcd: EtcdConnector }) {
  return {
    async checkEtcd(request: { cluster: string }): Promise<EtcdFacts> {
      const { cluster } = request;
      const endpoints = deps.etcd.profile(cluster).endpoints;
      const facts: EtcdFacts = { endpoints: [], members: [] };
      for (const endpoint of endpoints) {
        const client = await deps.etcd.connect(cluster, endpoint);
        try {
          const status = await client.maintenance.status();
          // A linearizable read proves the member can serve a quorum read, as `etcdctl endpoint health` does.
          await client.get('health');
          facts.endpoints.push({
            endpoint,
            reachable: true,
            version: status.version,
            dbSizeBytes: Number(status.dbSize),
            memberId: status.header.member_id,
            leaderId: status.leader,
            raftIndex: status.raftIndex,
          });
          if (facts.members.length === 0) {
            const list = await client.cluster.memberList({});
            facts.members = list.members.map((m) => ({ id: m.ID, name: m.name, clientUrls: m.clientURLs }));
          }
        } catch (err) {
          facts.endpoints.push({ endpoint, reachable: false, error: (err as Error).message });
        } finally {
          client.close();
        }
      }
      return facts;
    },
  };
}

const SHA256_BYTES = 32;

/**
 * etcd's Maintenance.Snapshot stream as bytes, exactly as `etcdctl snapshot save` stores them (the
 * bbolt file, then a SHA-256 of it, which `etcdctl snapshot restore` checks). The stream fails
 * with BackupCorrupt at its end when that trailing hash does not match what came before it.
 */
export async function etcdSnapshotStream(client: Etcd3, onRevision?: (revision: string) => void): Promise<Readable> {
  // etcd3 types the call as an event emitter; underneath it is a gRPC object-mode Readable,
  // which gives backpressure when piped.
  const source = (await client.maintenance.snapshot()) as unknown as Readable;
  const hash = createHash('sha256');
  let tail = Buffer.alloc(0);
  const verifying = new Transform({
    writableObjectMode: true,
    transform(message: { blob: Buffer; header?: { revision?: string } }, _encoding, callback) {
      if (message.header?.revision && message.header.revision !== '0') onRevision?.(message.header.revision);
      const joined = Buffer.concat([tail, message.blob]);
      const split = Math.max(0, joined.length - SHA256_BYTES);
      hash.update(joined.subarray(0, split));
      tail = joined.subarray(split);
      callback(null, message.blob);
    },
    flush(callback) {
      const expected = tail.toString('hex');
      const actual = hash.digest('hex');
      callback(tail.length === SHA256_BYTES && expected === actual ? null : ApplicationFailure.nonRetryable(`the etcd snapshot stream does not end with the SHA-256 of its content (${actual} computed, ${expected || 'nothing'} sent)`, 'BackupCorrupt'));
    },
  });
  source.on('error', (err) => verifying.destroy(err));
  // A consumer that stops early (a failed upload) must end the RPC too: a paused gRPC stream keeps
  // its call, and with it the client's connection, open after the client is closed.
  verifying.on('close', () => {
    if (!source.readableEnded) (source as Readable & { cancel?: () => void }).cancel?.();
  });
  return source.pipe(verifying);
}

export interface EtcdSnapshotResult extends VerifiedObject {
  /** The revision the snapshot holds: the stream's header where etcd sends one, else the revision as the stream began. */
  revision: string;
}

export function createEtcdSnapshotActivities(deps: { etcd: EtcdConnector; s3: S3Connector }) {
  return {
    /**
     * A full snapshot of the cluster's etcd streamed to s3://bucket/<prefix><relativeKey>, checked
     * against etcd's own trailing hash on the way and with HeadObject after. Repeatable: a retry
     * writes the same object again.
     */
    async snapshotEtcdToS3({ cluster, relativeKey }: { cluster: string; relativeKey: string }): Promise<EtcdSnapshotResult> {
      if (!/^[A-Za-z0-9!_.*'()/-]+$/.test(relativeKey) || relativeKey.includes('..')) {
        throw ApplicationFailure.nonRetryable(`relativeKey: ${JSON.stringify(relativeKey)} is not a safe object name`, 'InvalidInput');
      }
      const client = await deps.etcd.connect(cluster);
      try {
        return await withS3Target(deps.s3, cluster, async (target) => {
          // etcd 3.4 sends no header with the snapshot's chunks: the revision just before the stream
          // starts is the one the snapshot holds at least.
          let revision = (await client.maintenance.status()).header.revision;
          const stream = await etcdSnapshotStream(client, (r) => (revision = r));
          let reported = 0;
          const uploaded = await uploadVerified(target, `${target.prefix}${relativeKey}`, stream, () => ({ cluster, revision, kind: 'etcd-snapshot' }), (bytes) => {
            if (bytes - reported >= 8 * 1024 * 1024) {
              reported = bytes;
              heartbeat({ phase: 'etcd snapshot', bytes });
            }
          });
          return { ...uploaded, revision };
        });
      } finally {
        client.close();
      }
    },
  };
}
