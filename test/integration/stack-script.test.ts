// scripts/stack.sh as the tests and benchmarks use it: a part (re)started while its caller holds a
// lock (scripts/jest.sh and scripts/bench.sh run inside `flock`) must not inherit that lock, or
// every later run waits for a server to exit.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/stack';

const run = promisify(execFile);

test('a server restarted inside flock does not keep the lock once the script returns', async () => {
  const lock = path.join(mkdtempSync(path.join(os.tmpdir(), 'dbr-lock-')), 'tests.lock');
  const stackScript = path.join(REPO_ROOT, 'scripts', 'stack.sh');
  await run('bash', [stackScript, 'stop', 'etcd'], { cwd: REPO_ROOT });
  await run('flock', [lock, 'bash', stackScript, 'start', 'etcd'], { cwd: REPO_ROOT });
  // The lock is free again: nobody (etcd included) holds it.
  await expect(run('flock', ['--nonblock', lock, 'true'])).resolves.toBeDefined();
});
