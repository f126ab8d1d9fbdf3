// Replays every history in this directory against the production workflow bundle and prints one
// JSON line per history ({file, error}). Run by test/unit/replay.test.ts in its own process: the
// SDK's history parser needs the one protobuf runtime jest's module registry would duplicate.
//   node --import tsx test/histories/replay.ts
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { Worker } from '@temporalio/worker';
import { buildWorkflowBundle } from '../../worker/bundle';
import { dataConverter } from '../../worker/data-converter';

// The SDK's historyFromJSON uses @temporalio/common's own protobufjs copy, which does not know the
// types of @temporalio/proto's copy in this dependency tree ("type must be a Type"); the JSON is
// read here with the protobufjs that @temporalio/proto itself uses.
const protojson = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as {
  fromJson: (type: unknown, json: unknown, options: unknown) => proto.temporal.api.history.v1.History | null;
};
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

function readHistory(file: string): proto.temporal.api.history.v1.History {
  const history = protojson.fromJson(historyType, JSON.parse(readFileSync(path.join(__dirname, file), 'utf8')), { ignoreUnknownFields: true });
  if (!history) throw new Error(`${file}: not a history`);
  return history;
}

async function main(): Promise<void> {
  const files = readdirSync(__dirname).filter((f) => f.endsWith('.json')).sort();
  const code = await buildWorkflowBundle();
  const histories = files.map((file) => ({ workflowId: file, history: readHistory(file) }));
  for await (const result of Worker.runReplayHistories({ workflowBundle: { code }, dataConverter: dataConverter(undefined) }, histories)) {
    process.stdout.write(`${JSON.stringify({ file: result.workflowId, error: result.error?.message ?? null })}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
