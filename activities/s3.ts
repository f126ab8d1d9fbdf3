// S3: clients resolved from the cluster profile, and the facts the runbooks decide on.
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
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
