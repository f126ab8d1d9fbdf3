// Every recorded history in test/histories/ (one per runbook and main path, recorded by
// `npm run histories:record` from the reliability suite's undisturbed runs) replays against the
// workflow code as it is now. A change that would break determinism for runs in flight fails here:
// version it with patched() / deprecatePatch() (README, "Reliability"). The histories hold no
// credential of the stack that recorded them, nor of this one.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { buildWorkflowBundle } from '../../worker/bundle';
import { dataConverter } from '../../worker/data-converter';
import { findCredentials, stackCredentials } from '../helpers/history-secrets';
import { STACK_STATE } from '../helpers/stack';

const DIR = path.join(__dirname, '..', 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

test('a history is recorded for every runbook', () => {
  expect(files.length).toBeGreaterThan(0);
});

test('every recorded history replays without a determinism error', async () => {
  const code = await buildWorkflowBundle();
  const histories = files.map((file) => ({ workflowId: file, history: JSON.parse(readFileSync(path.join(DIR, file), 'utf8')) as unknown }));
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: { code }, dataConverter: dataConverter(undefined) }, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
}, 120_000);

test('no recorded history holds a credential of this machine\'s stack', () => {
  const file = path.join(STACK_STATE, 'secrets.env');
  // Without a local stack there is nothing of this machine's to find; the recording run checked its own.
  const credentials = existsSync(file) ? stackCredentials() : {};
  for (const f of files) expect([f, findCredentials(readFileSync(path.join(DIR, f), 'utf8'), credentials)]).toEqual([f, []]);
});
