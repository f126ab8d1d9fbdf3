// The catalog of etcd backups in S3: each backup is a folder <prefix>etcd-backups/<cluster>/<id>/
// with its snapshot and a manifest.json written last, so a folder without a manifest is a backup
// that never finished and is never offered for a restore. (Database backups keep their own
// catalog under backups/<cluster>/, see ./backup.)
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { BackupEntry } from '../workflows/backup-retention';
import { withS3Target, type S3Connector, type S3Target } from './s3';

export interface EtcdBackupManifestBase {
  kind: 'etcd';
  cluster: string;
  id: string;
  workflowId: string;
  /** When the backup was taken (ISO 8601). */
  startedAt: string;
  verified: boolean;
}

const BACKUP_ID = /^[A-Za-z0-9._-]{1,200}$/;

export function etcdBackupRoot(target: S3Target, cluster: string): string {
  return `${target.prefix}etcd-backups/${cluster}/`;
}

function backupFolder(target: S3Target, cluster: string, id: string): string {
  if (!BACKUP_ID.test(id)) throw ApplicationFailure.nonRetryable(`id: ${JSON.stringify(id)} is not a backup id`, 'InvalidInput');
  return `${etcdBackupRoot(target, cluster)}${id}/`;
}

async function keysUnder(target: S3Target, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await target.client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

export function createEtcdBackupCatalogActivities(deps: { s3: S3Connector }) {
  const withTarget = <T>(cluster: string, fn: (target: S3Target) => Promise<T>) => withS3Target(deps.s3, cluster, fn);

  return {
    /** Written last: from now on the backup exists for restores and retention. */
    async writeEtcdBackupManifest({ manifest }: { manifest: EtcdBackupManifestBase }): Promise<{ objectKey: string }> {
      return withTarget(manifest.cluster, async (target) => {
        const objectKey = `${backupFolder(target, manifest.cluster, manifest.id)}manifest.json`;
        await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: objectKey, Body: JSON.stringify(manifest, null, 2), ContentType: 'application/json' }));
        return { objectKey };
      });
    },

    /** Every finished backup of the cluster (those with a manifest), newest first. */
    async listEtcdBackups({ cluster }: { cluster: string }): Promise<(BackupEntry & { objectKeys: number })[]> {
      return withTarget(cluster, async (target) => {
        const root = etcdBackupRoot(target, cluster);
        const byId = new Map<string, string[]>();
        for (const key of await keysUnder(target, root)) {
          const id = key.slice(root.length).split('/')[0]!;
          byId.set(id, [...(byId.get(id) ?? []), key]);
        }
        const entries: (BackupEntry & { objectKeys: number })[] = [];
        for (const [id, keys] of byId) {
          const manifestKey = `${root}${id}/manifest.json`;
          if (!keys.includes(manifestKey)) continue;
          const object = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: manifestKey }));
          const manifest = JSON.parse(await object.Body!.transformToString()) as EtcdBackupManifestBase;
          entries.push({ id, startedAt: manifest.startedAt, verified: manifest.verified, objectKeys: keys.length });
        }
        return entries.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
      });
    },

    /** Deletes whole backups: the manifest first, so a backup half deleted is never offered for a restore. */
    async deleteEtcdBackups({ cluster, ids }: { cluster: string; ids: string[] }): Promise<{ deletedObjects: number }> {
      return withTarget(cluster, async (target) => {
        let deletedObjects = 0;
        for (const id of ids) {
          const folder = backupFolder(target, cluster, id);
          const keys = await keysUnder(target, folder);
          const manifest = keys.filter((k) => k.endsWith('/manifest.json'));
          const rest = keys.filter((k) => !k.endsWith('/manifest.json'));
          for (const batch of [manifest, rest]) {
            for (let i = 0; i < batch.length; i += 1000) {
              const result = await target.client.send(new DeleteObjectsCommand({ Bucket: target.bucket, Delete: { Objects: batch.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
              if (result.Errors?.length) throw new Error(`could not delete ${result.Errors.map((e) => `${e.Key ?? '?'}: ${e.Code ?? '?'}`).join(', ')}`);
              deletedObjects += batch.slice(i, i + 1000).length;
            }
          }
          log.info('etcd backup deleted', { cluster, id, objects: keys.length });
        }
        return { deletedObjects };
      });
    },
  };
}
