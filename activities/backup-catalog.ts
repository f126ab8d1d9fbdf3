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

async function objectsUnder(target: S3Target, prefix: string): Promise<{ key: string; lastModified: number }[]> {
  const objects: { key: string; lastModified: number }[] = [];
  let token: string | undefined;
  do {
    const page = await target.client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) objects.push({ key: o.Key, lastModified: o.LastModified?.getTime() ?? 0 });
    token = page.NextContinuationToken;
  } while (token);
  return objects;
}

async function keysUnder(target: S3Target, prefix: string): Promise<string[]> {
  return (await objectsUnder(target, prefix)).map((o) => o.key);
}

/** The catalog's folders by backup id: their keys, whether the manifest is among them, and when the newest was written. */
async function foldersUnder(target: S3Target, root: string): Promise<Map<string, { keys: string[]; finished: boolean; newest: number }>> {
  const folders = new Map<string, { keys: string[]; finished: boolean; newest: number }>();
  for (const o of await objectsUnder(target, root)) {
    const id = o.key.slice(root.length).split('/')[0]!;
    const folder = folders.get(id) ?? { keys: [], finished: false, newest: 0 };
    folder.keys.push(o.key);
    folder.finished ||= o.key === `${root}${id}/manifest.json`;
    folder.newest = Math.max(folder.newest, o.lastModified);
    folders.set(id, folder);
  }
  return folders;
}

async function deleteKeys(target: S3Target, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const result = await target.client.send(new DeleteObjectsCommand({ Bucket: target.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    if (result.Errors?.length) throw new Error(`could not delete ${result.Errors.map((e) => `${e.Key ?? '?'}: ${e.Code ?? '?'}`).join(', ')}`);
  }
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
        const entries: (BackupEntry & { objectKeys: number })[] = [];
        for (const [id, folder] of await foldersUnder(target, root)) {
          if (!folder.finished) continue;
          const object = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: `${root}${id}/manifest.json` }));
          const manifest = JSON.parse(await object.Body!.transformToString()) as EtcdBackupManifestBase;
          entries.push({ id, startedAt: manifest.startedAt, verified: manifest.verified, objectKeys: folder.keys.length });
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
          await deleteKeys(target, keys.filter((k) => k.endsWith('/manifest.json')));
          await deleteKeys(target, keys.filter((k) => !k.endsWith('/manifest.json')));
          deletedObjects += keys.length;
          log.info('etcd backup deleted', { cluster, id, objects: keys.length });
        }
        return { deletedObjects };
      });
    },

    /**
     * Deletes the folders of runs that died before their manifest (never offered for a restore, but
     * a whole snapshot each) once their newest object is older than `olderThan`; never the current
     * run's. The age keeps a run still writing, on another worker, out of reach.
     */
    async deleteAbandonedEtcdBackups({ cluster, currentId, olderThan }: { cluster: string; currentId: string; olderThan: string }): Promise<{ deleted: string[] }> {
      return withTarget(cluster, async (target) => {
        const limit = Date.parse(olderThan);
        const folders = await foldersUnder(target, etcdBackupRoot(target, cluster));
        const abandoned = [...folders].filter(([id, f]) => id !== currentId && !f.finished && f.newest < limit);
        for (const [id, f] of abandoned) {
          await deleteKeys(target, f.keys);
          log.info('abandoned etcd backup deleted', { cluster, id, objects: f.keys.length });
        }
        return { deleted: abandoned.map(([id]) => id).sort() };
      });
    },
  };
}
