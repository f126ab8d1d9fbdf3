// bench/worker: the worker's footprint, side by side with a bare Node process and a minimal
// Temporal worker, in one run on one Temporal dev server.
//   npm run bench:worker        (builds first; about a minute)
// Measures: cold start to polling with the prebuilt bundle, idle RSS, RSS with 200 cached
// workflows (long-lived clusterLock workflows, each with its first task done and kept in the
// sticky cache). Targets from issue 9: start under 3 s, idle RSS under 200 MB.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { getLockStateQuery, lockWorkflowId, searchAttributes } from '../workflows/definitions';

const ROOT = path.resolve(__dirname, '..');
const TEMPORAL = path.join(process.env.DBR_CACHE ?? path.join(os.homedir(), '.cache', 'db-runbooks'), 'bin', 'temporal');
const RUNS = 5;
const CACHED = 200;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function startUntil(args: string[], env: Record<string, string>, marker: string): Promise<{ child: ChildProcess; ms: number }> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      if (output.includes(marker)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited ${code}:\n${output}`)));
  });
  return { child, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function main(): Promise<void> {
  const bundle = path.join(ROOT, 'dist', 'workflow-bundle.js');
  const minimalBundle = path.join(os.tmpdir(), 'dbr-bench-minimal-bundle.js');
  writeFileSync(minimalBundle, (await bundleWorkflowCode({ workflowsPath: require.resolve('./fixtures/minimal-workflows'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } })).code);
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: TEMPORAL }, ip: '127.0.0.1', searchAttributes: Object.values(searchAttributes), extraArgs: ['--log-level', 'error'] } });
  const common = { TEMPORAL_ADDRESS: env.address, DBR_METRICS_ADDRESS: 'off', DBR_HEALTH_ADDRESS: 'off', NODE_OPTIONS: '' };
  try {
    const rows: { name: string; startMs: number; idleMiB: number }[] = [];
    const candidates: { name: string; args: string[]; env: Record<string, string>; marker: string }[] = [
      { name: 'bare node process', args: ['-e', 'console.log("ready"); setInterval(() => {}, 1000)'], env: {}, marker: 'ready' },
      { name: 'minimal Temporal worker', args: ['--import', 'tsx', 'bench/fixtures/minimal-worker.ts'], env: { DBR_WORKFLOW_BUNDLE: minimalBundle }, marker: '"state":"RUNNING"' },
      { name: 'db-runbooks worker', args: ['dist/worker/main.js'], env: { DBR_WORKFLOW_BUNDLE: bundle, DBR_PROFILES: path.join(ROOT, 'config', 'clusters.local.yaml') }, marker: '"state":"RUNNING"' },
    ];
    for (const candidate of candidates) {
      const starts: number[] = [];
      const idle: number[] = [];
      for (let i = 0; i < RUNS; i += 1) {
        const { child, ms } = await startUntil(candidate.args, { ...common, ...candidate.env, DBR_TASK_QUEUE: `bench-${candidate.name.length}-${i}` }, candidate.marker);
        starts.push(ms);
        await new Promise((r) => setTimeout(r, 3000));
        idle.push(rssMiB(child.pid!));
        await stop(child);
      }
      rows.push({ name: candidate.name, startMs: median(starts), idleMiB: median(idle) });
    }

    // 200 cached workflows on the project's worker.
    const taskQueue = 'bench-cached';
    const { child } = await startUntil(['dist/worker/main.js'], { ...common, DBR_WORKFLOW_BUNDLE: bundle, DBR_PROFILES: path.join(ROOT, 'config', 'clusters.local.yaml'), DBR_TASK_QUEUE: taskQueue, DBR_MAX_CACHED_WORKFLOWS: String(CACHED) }, '"state":"RUNNING"');
    const clusters = Array.from({ length: CACHED }, (_, i) => `bench-${i}`);
    await Promise.all(clusters.map((cluster) => env.client.workflow.start('clusterLock', { taskQueue, workflowId: lockWorkflowId(cluster), args: [{ cluster, idleSeconds: 3600 }] })));
    // A query is answered by the worker from its cache: every lock has run its first task.
    await Promise.all(clusters.map((cluster) => env.client.workflow.getHandle(lockWorkflowId(cluster)).query(getLockStateQuery)));
    await new Promise((r) => setTimeout(r, 3000));
    const cachedMiB = rssMiB(child.pid!);
    await Promise.all(clusters.map((cluster) => env.client.workflow.getHandle(lockWorkflowId(cluster)).terminate('bench done')));
    await stop(child);

    const ours = rows.find((r) => r.name === 'db-runbooks worker')!;
    const minimal = rows.find((r) => r.name === 'minimal Temporal worker')!;
    console.log(`\nbench/worker — ${new Date().toISOString()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, median of ${RUNS} starts`);
    console.log('| process | cold start to polling | idle RSS |');
    console.log('| --- | --- | --- |');
    for (const r of rows) console.log(`| ${r.name} | ${(r.startMs / 1000).toFixed(2)} s | ${r.idleMiB.toFixed(0)} MiB |`);
    console.log(`| db-runbooks worker with ${CACHED} cached workflows | | ${cachedMiB.toFixed(0)} MiB |`);
    console.log(`\nratios, db-runbooks / minimal worker: start ${(ours.startMs / minimal.startMs).toFixed(2)}, idle RSS ${(ours.idleMiB / minimal.idleMiB).toFixed(2)}`);
    console.log(`targets: start under 3 s: ${ours.startMs < 3000 ? 'met' : 'MISSED'} (${(ours.startMs / 1000).toFixed(2)} s); idle RSS under 200 MB: ${ours.idleMiB * 1.048576 < 200 ? 'met' : 'MISSED'} (${(ours.idleMiB * 1.048576).toFixed(0)} MB)`);
    console.log(`(${CACHED} workflows on the dev server's SQLite store: a modest load, as the dev server cannot take ~1,000 concurrent workflows.)`);
  } finally {
    await env.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
