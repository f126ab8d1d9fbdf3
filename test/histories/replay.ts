// Replays every history in this directory against the production workflow bundle and prints one
// JSON line per history ({file, error}). Run by test/unit/replay.test.ts in its own process, away
// from jest's module registry, which would give the worker a second protobuf runtime.
//   node --import tsx test/histories/replay.ts
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { buildWorkflowBundle } from '../../worker/bundle';
import { dataConverter } from '../../worker/data-converter';

async function main(): Promise<void> {
  const files = readdirSync(__dirname).filter((f) => f.endsWith('.binpb')).sort();
  const code = await buildWorkflowBundle();
  // Replayed under their own workflow ids: the runbooks derive names from them (the lock's request id).
  const ids = JSON.parse(readFileSync(path.join(__dirname, 'workflow-ids.json'), 'utf8')) as Record<string, string>;
  const fileOf = new Map(files.map((file) => [ids[file] ?? file, file]));
  const histories = files.map((file) => ({ workflowId: ids[file] ?? file, history: proto.temporal.api.history.v1.History.decode(readFileSync(path.join(__dirname, file))) }));
  for await (const result of Worker.runReplayHistories({ workflowBundle: { code }, dataConverter: dataConverter(undefined) }, histories)) {
    process.stdout.write(`${JSON.stringify({ file: fileOf.get(result.workflowId) ?? result.workflowId, error: result.error?.message ?? null })}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
