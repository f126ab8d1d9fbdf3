// Every recorded history in test/histories/ (one per runbook and main path, recorded by
// `npm run histories:record` from the reliability suite's undisturbed runs) replays against the
// workflow code as it is now. A change that would break determinism for runs in flight fails here:
// version it with patched() / deprecatePatch() (README, "Reliability"). The histories hold no
// credential of the stack that recorded them, nor of this one.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as proto from '@temporalio/proto';
import * as workflows from '../../workflows';
import { findSecretShapes, stackCredentials } from '../helpers/history-secrets';
import { REPO_ROOT, STACK_STATE } from '../helpers/stack';

const DIR = path.join(__dirname, '..', 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.binpb')).sort();

test('a history is recorded for every workflow', () => {
  // The cluster lock too: its runs live for days, so a deploy replays them (recorded by test/workflows/clusterLock.test.ts).
  const runbooks = Object.keys(workflows).sort();
  expect([...new Set(files.map((f) => f.slice(0, f.indexOf('-'))))].sort()).toEqual(runbooks);
});

test('every recorded history replays without a determinism error', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(DIR, 'replay.ts')], { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
  const results = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { file: string; error: string | null });
  expect(results.map((r) => r.file)).toEqual(files);
  expect(results.filter((r) => r.error)).toEqual([]);
}, 120_000);

test('no recorded history holds anything shaped like a credential', () => {
  for (const f of files) {
    const history = proto.temporal.api.history.v1.History.toObject(proto.temporal.api.history.v1.History.decode(readFileSync(path.join(DIR, f))), { bytes: String });
    expect([f, findSecretShapes(history)]).toEqual([f, []]);
  }
});

test('the shape check finds a credential of each kind the stack generates, planted in a payload or a failure message', () => {
  const payload = (json: unknown) => ({ metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from(JSON.stringify(json)).toString('base64') });
  const planted = {
    events: [
      { workflowExecutionStartedEventAttributes: { input: { payloads: [payload({ cluster: 'local', note: randomBytes(16).toString('hex') })] } } },
      { activityTaskCompletedEventAttributes: { result: { payloads: [payload({ key: randomBytes(20).toString('hex') })] } } },
      { activityTaskCompletedEventAttributes: { result: { payloads: [payload({ accessKeyId: 'AKIA0000' })] } } },
      { activityTaskFailedEventAttributes: { failure: { message: `access denied for dbr${randomBytes(6).toString('hex')}`, failureInfo: 'applicationFailureInfo' } } },
    ],
  };
  expect(findSecretShapes(planted).map((where) => where.replace(/ at .*/, ''))).toEqual([
    '32 hex characters (a stack password)',
    '40 hex characters (a stack S3 secret key)',
    'a secret-named field with a value',
    'a stack S3 access key',
  ]);
});

test('no recorded history holds a credential of this machine\'s stack', () => {
  const file = path.join(STACK_STATE, 'secrets.env');
  // The shapes above need no stack; with one, its exact values are looked for too.
  const credentials = existsSync(file) ? stackCredentials() : {};
  // Payloads are stored as raw bytes in the binary form: a credential would appear as it is.
  for (const f of files) {
    const bytes = readFileSync(path.join(DIR, f)).toString('latin1');
    expect([f, Object.entries(credentials).filter(([, secret]) => bytes.includes(secret)).map(([name]) => name)]).toEqual([f, []]);
  }
});
