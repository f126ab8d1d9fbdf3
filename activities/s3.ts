// S3: clients resolved from the cluster profile, the facts the runbooks decide on, and the verified
// streaming upload and read every backup goes through.
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
  AbortMultipartUploadCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ApplicationFailure } from '@temporalio/common';
import type { ProfileSource } from './cluster';
import type { S3Profile } from './profile';
import type { SecretResolver } from './secrets';

export interface S3Target {
  client: S3Client;
  bucket: string;
  prefix: string;
  endpoint: string;
}

export interface S3Connector {
  /** A client for the cluster's backup bucket; the caller destroys it. */
  connect(cluster: string): Promise<S3Target>;
}

export function createS3Connector(deps: { profiles: ProfileSource; secrets: SecretResolver }): S3Connector {
  return {
    async connect(cluster) {
      const profile = deps.profiles.get(cluster);
      const s3: S3Profile | undefined = profile.s3;
      if (!s3) throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no s3 section in its profile`, 'ProfileIncomplete');
      const context = (field: string) => ({ cluster, field, namespace: profile.namespace });
      const credentials =
        s3.accessKeyId && s3.secretAccessKey
          ? {
              accessKeyId: await deps.secrets.resolve(s3.accessKeyId, context('s3.accessKeyId')),
              secretAccessKey: await deps.secrets.resolve(s3.secretAccessKey, context('s3.secretAccessKey')),
            }
          : undefined;
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: s3.forcePathStyle,
        credentials,
        maxAttempts: 2,
      });
      return { client, bucket: s3.bucket, prefix: s3.prefix, endpoint: s3.endpoint ?? `s3.${s3.region}.amazonaws.com` };
    },
  };
}

/** Runs fn with a client for the cluster's bucket, destroyed afterwards whatever happens. */
export async function withS3Target<T>(s3: S3Connector, cluster: string, fn: (target: S3Target) => Promise<T>): Promise<T> {
  const target = await s3.connect(cluster);
  try {
    return await fn(target);
  } finally {
    target.client.destroy();
  }
}

export interface S3Facts {
  bucket: string;
  endpoint: string;
  reachable: boolean;
  bucketExists: boolean;
  writable: boolean;
  error?: string;
}

function describeS3Error(err: unknown): { name: string; message: string } {
  const e = err as { name?: string; message?: string; Code?: string };
  return { name: e.name ?? e.Code ?? 'Error', message: e.message || e.name || String(err) };
}

export function createS3Activities(deps: { s3: S3Connector }) {
  return {
    /** Proves the bucket exists and takes a put / get / delete under a reserved prefix. */
    async checkS3(request: { cluster: string; probeId: string }): Promise<S3Facts> {
      const target = await deps.s3.connect(request.cluster);
      const facts: S3Facts = { bucket: target.bucket, endpoint: target.endpoint, reachable: false, bucketExists: false, writable: false };
      try {
        try {
          await target.client.send(new HeadBucketCommand({ Bucket: target.bucket }));
          facts.reachable = true;
          facts.bucketExists = true;
        } catch (err) {
          const { name, message } = describeS3Error(err);
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (status === 404 || name === 'NotFound' || name === 'NoSuchBucket') {
            facts.reachable = true;
            facts.error = `bucket ${target.bucket} does not exist`;
          } else if (status === 403) {
            facts.reachable = true;
            facts.error = `access to bucket ${target.bucket} denied`;
          } else {
            facts.error = `${name}: ${message}`;
          }
          return facts;
        }
        const key = `${target.prefix}.db-runbooks-probe/${request.probeId}`;
        const body = `db-runbooks probe ${request.probeId}`;
        try {
          await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body }));
          const got = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
          const text = await got.Body?.transformToString();
          if (text !== body) throw new Error(`probe object ${key} read back different content`);
          facts.writable = true;
        } catch (err) {
          const { name, message } = describeS3Error(err);
          facts.error = `probe write to ${key} failed: ${name}: ${message}`;
        } finally {
          await target.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key })).catch(() => undefined);
        }
        return facts;
      } finally {
        target.client.destroy();
      }
    },
  };
}

/**
 * lib-storage holds partSize × (queueSize + 1) bytes at most: 8 MiB parts and two in flight keep an
 * upload under 24 MiB whatever the size of the stream (and allow objects up to 80 GB, 10,000 parts).
 */
export const UPLOAD_PART_BYTES = 8 * 1024 * 1024;
const UPLOAD_QUEUE = 2;
/** The largest object a single CopyObject may copy; larger ones are copied part by part. */
const COPY_LIMIT_BYTES = 5 * 1024 * 1024 * 1024;
const COPY_PART_BYTES = 1024 * 1024 * 1024;

export interface VerifiedObject {
  key: string;
  bytes: number;
  sha256: string;
}

/** Where an upload is staged: never a name a restore or a catalog listing picks up. */
export function partialKey(key: string): string {
  return `${key}.partial`;
}

/**
 * Streams body to S3 and makes it appear at key only when whole: the bytes go to key.partial in a
 * multipart upload (aborted by lib-storage on failure), are counted and hashed on the way, then
 * copied to key with sha256 and bytes in the object's metadata, and checked with HeadObject. A
 * retried call with the same key simply writes the same object again.
 */
export async function uploadVerified(
  target: S3Target,
  key: string,
  /** The source, then the transforms it goes through (a compressor): one pipeline, errors included. */
  body: Readable | [Readable, ...Transform[]],
  /** Read once the stream has ended, so it may hold what the stream counted on the way. */
  metadata: () => Record<string, string> = () => ({}),
  onProgress?: (bytes: number) => void,
): Promise<VerifiedObject> {
  const [source, ...through] = Array.isArray(body) ? body : [body];
  const staged = partialKey(key);
  const hash = createHash('sha256');
  let bytes = 0;
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      onProgress?.(bytes);
      callback(null, chunk);
    },
  });
  const sink = new PassThrough();
  const upload = new Upload({
    client: target.client,
    params: { Bucket: target.bucket, Key: staged, Body: sink },
    queueSize: UPLOAD_QUEUE,
    partSize: UPLOAD_PART_BYTES,
    leavePartsOnError: false,
  });
  // A failed upload stops reading: end the producer with it rather than wait on a full pipe.
  await Promise.all([pipeline([source, ...through, counting, sink]), upload.done()]).catch(async (err: unknown) => {
    source.destroy();
    sink.destroy();
    await upload.abort().catch(() => undefined);
    throw err;
  });
  const sha256 = hash.digest('hex');
  const finalMetadata = { ...metadata(), sha256, bytes: String(bytes) };
  await copyWithMetadata(target, staged, key, bytes, finalMetadata);
  await target.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: staged }));
  const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: key }));
  if (head.ContentLength !== bytes || head.Metadata?.sha256 !== sha256) {
    await target.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key })).catch(() => undefined);
    throw new Error(`s3://${target.bucket}/${key} reads back ${head.ContentLength ?? '?'} bytes and sha256 ${head.Metadata?.sha256 ?? 'none'}, expected ${bytes} and ${sha256}`);
  }
  return { key, bytes, sha256 };
}

async function copyWithMetadata(target: S3Target, from: string, to: string, bytes: number, metadata: Record<string, string>): Promise<void> {
  const source = `${target.bucket}/${encodeURI(from)}`;
  if (bytes <= COPY_LIMIT_BYTES) {
    await target.client.send(new CopyObjectCommand({ Bucket: target.bucket, Key: to, CopySource: source, MetadataDirective: 'REPLACE', Metadata: metadata }));
    return;
  }
  const { UploadId } = await target.client.send(new CreateMultipartUploadCommand({ Bucket: target.bucket, Key: to, Metadata: metadata }));
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    for (let start = 0, part = 1; start < bytes; start += COPY_PART_BYTES, part += 1) {
      const end = Math.min(start + COPY_PART_BYTES, bytes) - 1;
      const copied = await target.client.send(
        new UploadPartCopyCommand({ Bucket: target.bucket, Key: to, UploadId, PartNumber: part, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
      );
      parts.push({ ETag: copied.CopyPartResult?.ETag ?? '', PartNumber: part });
    }
    await target.client.send(new CompleteMultipartUploadCommand({ Bucket: target.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await target.client.send(new AbortMultipartUploadCommand({ Bucket: target.bucket, Key: to, UploadId })).catch(() => undefined);
    throw err;
  }
}

/**
 * The object's bytes as a stream that fails with BackupCorrupt at its end when they do not hash to
 * the sha256 recorded at upload: a consumer must not commit what it read before the stream ends.
 */
export async function readVerified(target: S3Target, key: string): Promise<{ body: Readable; bytes: number; sha256: string }> {
  const object = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
  const expected = object.Metadata?.sha256;
  if (!expected) throw ApplicationFailure.nonRetryable(`s3://${target.bucket}/${key} has no recorded sha256: not an object this project wrote whole`, 'BackupCorrupt');
  const hash = createHash('sha256');
  const checking = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      callback(actual === expected ? null : ApplicationFailure.nonRetryable(`s3://${target.bucket}/${key} does not match its recorded sha256 (${actual} read, ${expected} recorded)`, 'BackupCorrupt'));
    },
  });
  const raw = object.Body as Readable;
  raw.on('error', (err) => checking.destroy(err));
  return { body: raw.pipe(checking), bytes: object.ContentLength ?? 0, sha256: expected };
}
