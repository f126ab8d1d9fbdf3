// Resolves the secret references of a cluster profile. Values stay inside the activity that
// asked for them: they are never returned from an activity, logged, or put in a failure message.
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { SecretRef } from './profile';

export interface KubernetesSecretReader {
  /** The decoded value; a refusal no retry can fix is a SecretUnavailable failure saying why, never showing the value. */
  readSecretKey(namespace: string, name: string, key: string): Promise<string>;
}

export interface SecretResolver {
  resolve(ref: SecretRef, context: { cluster: string; field: string; namespace?: string }): Promise<string>;
}

export function describeSecretRef(ref: SecretRef): string {
  if ('env' in ref) return `environment variable ${ref.env}`;
  if ('file' in ref) return `file ${ref.file}`;
  return `Kubernetes Secret ${ref.kubernetes.name} key ${ref.kubernetes.key}`;
}

export function createSecretResolver(deps: { env?: NodeJS.ProcessEnv; kubernetes?: KubernetesSecretReader } = {}): SecretResolver {
  const env = deps.env ?? process.env;
  return {
    async resolve(ref, { cluster, field, namespace }) {
      const unavailable = (why: string) =>
        ApplicationFailure.nonRetryable(
          `cluster ${cluster}: ${field}: ${describeSecretRef(ref)} ${why}`,
          'SecretUnavailable',
        );
      if ('env' in ref) {
        const value = env[ref.env];
        if (value === undefined || value === '') throw unavailable('is not set in the worker environment');
        return value;
      }
      if ('file' in ref) {
        try {
          return (await readFile(ref.file, 'utf8')).replace(/\r?\n$/, '');
        } catch (err) {
          throw unavailable(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      }
      if (!deps.kubernetes) throw unavailable('cannot be read: the worker has no Kubernetes access configured');
      if (!namespace) throw unavailable('cannot be read: the profile names no namespace');
      try {
        return await deps.kubernetes.readSecretKey(namespace, ref.kubernetes.name, ref.kubernetes.key);
      } catch (err) {
        // The reader's refusals say what went wrong; the caller also needs the cluster and the field.
        if (err instanceof ApplicationFailure && err.type === 'SecretUnavailable') throw unavailable(err.message);
        throw err;
      }
    },
  };
}
