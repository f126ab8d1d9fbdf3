// The worker as a separate OS process (worker/main.ts through tsx), so tests can SIGKILL it
// mid-step the way a node failure or an OOM kill would, and start another.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { LOCAL_PROFILES, REPO_ROOT } from './stack';

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  waitUntilPolling(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** The production entry by default; the reliability suite runs its crash worker (test/reliability/crash-worker.ts). */
export function spawnWorkerProcess(env: Record<string, string>, entry = path.join(REPO_ROOT, 'worker', 'main.ts')): WorkerProcess {
  let output = '';
  // tsx as an import hook, not its CLI: the CLI forks a second process that a SIGKILL would orphan.
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      DBR_METRICS_ADDRESS: 'off',
      DBR_HEALTH_ADDRESS: 'off',
      DBR_PROFILES: LOCAL_PROFILES,
      DBR_WORKFLOW_BUNDLE: process.env.DBR_TEST_WORKFLOW_BUNDLE ?? '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    async waitUntilPolling() {
      const deadline = Date.now() + 60_000;
      while (!output.includes('"state":"RUNNING"')) {
        if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`worker did not start polling:\n${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
