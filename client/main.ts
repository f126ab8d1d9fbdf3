// The command-line client: start a runbook and follow it, show or cancel a run, list runs.
// Every error is one line on stderr; the exit code says what happened (see usage).
import { parseArgs } from 'node:util';
import os from 'node:os';
import { Client, Connection, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { loadCodecKeys } from '../worker/codec';
import { ConfigError, loadTemporalConnectionConfig } from '../worker/config';
import { dataConverter } from '../worker/data-converter';
import {
  approveUpdate,
  describeRequest,
  getLockStateQuery,
  getProgressQuery,
  lockWorkflowId,
  rejectUpdate,
  searchAttributes,
  TASK_QUEUE_DEFAULT,
  type RunbookProgress,
} from '../workflows/definitions';
import { RUNBOOKS, type RunbookSpec } from './runbooks';
import { parseInputOption, UsageError } from './arguments';
import { SCHEDULE_USAGE, scheduleCommand } from './schedules';

const USAGE = `usage:
  runbook <runbook> --cluster NAME [--input JSON] [--detach]   start a runbook and follow it to the end
  runbook status <workflow-id>                                  progress and result of a run
  runbook status --cluster NAME                                 who holds the cluster's lock, and who waits
  runbook cancel <workflow-id>                                  request cancellation (compensation runs)
  runbook approve <workflow-id> [--comment TEXT] [--by NAME]    approve the step the run waits on
  runbook reject <workflow-id> --reason TEXT [--by NAME]        reject it: the run ends without the step
  runbook list [--cluster NAME] [--limit N]                     recent runs
${SCHEDULE_USAGE}
runbooks:
${Object.entries(RUNBOOKS).map(([name, spec]) => `  ${name.padEnd(16)} ${spec.description}`).join('\n')}
environment: TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_NAMESPACE (default), DBR_TASK_QUEUE (${TASK_QUEUE_DEFAULT}),
  TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY / TEMPORAL_TLS_CA / TEMPORAL_TLS_SERVER_NAME, TEMPORAL_UI_URL (http://127.0.0.1:8233)
exit codes: 0 done (healthy), 1 runbook failed or cancelled, 2 bad usage or input, 3 Temporal unreachable,
  4 cluster degraded, 5 cluster down, 6 skipped (a backup found the cluster lock held)`;

const STATE_MARK: Record<string, string> = { running: '…', done: '✓', failed: '✗', skipped: '-', compensated: '↺', pending: ' ' };

function uiLink(namespace: string, workflowId: string, runId?: string): string {
  const base = (process.env.TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233').replace(/\/$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}`;
}

function rootCauseMessage(err: unknown): { message: string; type?: string } {
  let current: unknown = err;
  let last: { message: string; type?: string } = { message: (err as Error).message };
  while (current instanceof Error) {
    if (current instanceof ApplicationFailure) last = { message: current.message, type: current.type ?? undefined };
    else if (current instanceof TemporalFailure && current.message) last = { message: current.message };
    current = current.cause;
  }
  return last;
}

function printStepChanges(progress: RunbookProgress, printed: Map<string, string>): void {
  for (const step of progress.steps) {
    if (step.state === 'pending' || printed.get(step.name) === step.state) continue;
    printed.set(step.name, step.state);
    const took = step.startedAt && step.endedAt ? ` ${((Date.parse(step.endedAt) - Date.parse(step.startedAt)) / 1000).toFixed(1)}s` : '';
    const detail = step.detail ? `: ${step.detail}` : '';
    process.stdout.write(`  ${STATE_MARK[step.state] ?? '?'} ${step.name}${detail}${took}\n`);
  }
}

async function follow(handle: WorkflowHandle, spec: RunbookSpec | undefined, printed = new Map<string, string>()): Promise<number> {
  let finished = false;
  const outcome = handle.result().then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  void outcome.finally(() => (finished = true));
  while (!finished) {
    try {
      printStepChanges(await handle.query(getProgressQuery), printed);
    } catch {
      // No worker has picked the run up yet, or it is between tasks: keep waiting for the result.
    }
    await Promise.race([outcome, new Promise((resolve) => setTimeout(resolve, 500))]);
  }
  try {
    printStepChanges(await handle.query(getProgressQuery), printed);
  } catch {
    // The final step list is a nicety; the result below is what counts.
  }
  const result = await outcome;
  if (!result.ok) {
    const { message, type } = rootCauseMessage(result.error);
    const how = result.error instanceof WorkflowFailedError ? 'failed' : 'did not finish';
    process.stderr.write(`runbook ${how}: ${message}\n`);
    return type === 'InvalidInput' || type === 'UnknownCluster' ? 2 : 1;
  }
  if (spec?.render) {
    const { lines, exitCode } = spec.render(result.value);
    process.stdout.write(`${lines.join('\n')}\n`);
    return exitCode;
  }
  process.stdout.write(`${JSON.stringify(result.value, null, 2)}\n`);
  return 0;
}

/** Closed when the command ends: a caller that runs the CLI in-process (the tests) keeps no gRPC connection open. */
const openConnections = new Set<Connection>();

async function connect(): Promise<{ client: Client; namespace: string }> {
  const config = loadTemporalConnectionConfig();
  const converter = dataConverter(loadCodecKeys());
  try {
    const connection = await Connection.connect({ address: config.address, tls: config.tls, connectTimeout: '5 seconds' });
    openConnections.add(connection);
    return { client: new Client({ connection, namespace: config.namespace, dataConverter: converter }), namespace: config.namespace };
  } catch (err) {
    throw Object.assign(new Error(`cannot reach Temporal at ${config.address}: ${(err as Error).message}`), { exitCode: 3 });
  }
}

async function startRunbook(name: string, args: string[]): Promise<number> {
  const spec = RUNBOOKS[name];
  if (!spec) throw new UsageError(`unknown runbook "${name}"; runbooks: ${Object.keys(RUNBOOKS).join(', ')}`);
  const { values } = parseArgs({
    args,
    options: { cluster: { type: 'string' }, input: { type: 'string' }, detach: { type: 'boolean', default: false } },
    strict: true,
  });
  const input = parseInputOption(values.input);
  if (values.cluster) input.cluster = values.cluster;
  if (typeof input.cluster !== 'string' || input.cluster === '') throw new UsageError('--cluster: required (or "cluster" in --input)');
  const cluster = input.cluster;

  const { client, namespace } = await connect();
  const workflowId = spec.workflowId(cluster, new Date());
  const handle = await client.workflow.start(spec.workflowType, {
    taskQueue: process.env.DBR_TASK_QUEUE ?? TASK_QUEUE_DEFAULT,
    workflowId,
    args: [input],
    typedSearchAttributes: [
      { key: searchAttributes.cluster, value: cluster },
      { key: searchAttributes.runbook, value: name },
    ],
    staticSummary: `${name} on ${cluster}`,
  });
  process.stdout.write(`started ${name} on cluster ${cluster}: ${workflowId}\n  ${uiLink(namespace, workflowId, handle.firstExecutionRunId)}\n`);
  if (values.detach) return 0;
  return follow(handle, spec);
}

async function clusterStatus(cluster: string): Promise<number> {
  const { client } = await connect();
  let state;
  try {
    state = await client.workflow.getHandle(lockWorkflowId(cluster)).query(getLockStateQuery);
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    process.stdout.write(`cluster ${cluster}: lock free (no lock workflow running)\n`);
    return 0;
  }
  const holder = state.holder;
  process.stdout.write(
    holder
      ? `cluster ${cluster}: locked by ${holder.runbook} ${holder.workflowId} since ${holder.grantedAt} (lease until ${holder.expiresAt})\n`
      : `cluster ${cluster}: lock free\n`,
  );
  if (holder?.overdueSince) {
    process.stdout.write(
      `  HELD PAST ITS MAXIMUM: lock.maxHoldSeconds is ${holder.maxHoldSeconds}; held longer since ${holder.overdueSince} (it keeps the lock: end or cancel it to free the cluster)\n`,
    );
  }
  state.queue.forEach((r, i) => process.stdout.write(`  waiting ${i + 1}: ${describeRequest(r)} since ${r.requestedAt}\n`));
  const waitingIds = new Set([holder?.workflowId, ...state.queue.map((r) => r.workflowId)]);
  for (const jump of state.queueJumps ?? []) {
    // The jumps of requests still waiting or holding: who went ahead of whom, and when.
    if (waitingIds.has(jump.workflowId)) process.stdout.write(`  emergency ${jump.runbook} ${jump.workflowId} went ahead of ${jump.ahead.join(', ')} at ${jump.at}\n`);
  }
  return 0;
}

async function status(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { cluster: { type: 'string' } }, allowPositionals: true, strict: true });
  if (values.cluster) return clusterStatus(values.cluster);
  const workflowId = positionals[0];
  if (!workflowId) throw new UsageError('status: a workflow id or --cluster NAME is required');
  const { client, namespace } = await connect();
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  const name = description.typedSearchAttributes.get(searchAttributes.runbook) ?? description.type;
  process.stdout.write(`${workflowId}: ${name} ${description.status.name} since ${description.startTime.toISOString()}\n  ${uiLink(namespace, workflowId, description.runId)}\n`);
  const printed = new Map<string, string>();
  try {
    printStepChanges(await handle.query(getProgressQuery), printed);
  } catch (err) {
    process.stdout.write(`  (progress unavailable: ${(err as Error).message})\n`);
  }
  if (description.status.name === 'RUNNING') return 0;
  return follow(handle, RUNBOOKS[description.type], printed);
}

async function cancel(workflowId: string | undefined): Promise<number> {
  if (!workflowId) throw new UsageError('cancel: a workflow id is required');
  const { client } = await connect();
  await client.workflow.getHandle(workflowId).cancel();
  process.stdout.write(`cancellation requested for ${workflowId}; its compensation steps run before it ends\n`);
  return 0;
}

/** Approves or rejects the step a run waits on (the approve / reject updates). */
async function decide(decision: 'approve' | 'reject', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { comment: { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const workflowId = positionals[0];
  if (!workflowId) throw new UsageError(`${decision}: a workflow id is required`);
  if (decision === 'reject' && !values.reason) throw new UsageError('reject: --reason TEXT is required');
  if (decision === 'approve' && values.reason) throw new UsageError('approve: use --comment, not --reason');
  if (decision === 'reject' && values.comment) throw new UsageError('reject: use --reason, not --comment');
  const by = values.by ?? os.userInfo().username;
  const { client } = await connect();
  const handle = client.workflow.getHandle(workflowId);
  try {
    const state =
      decision === 'approve'
        ? await handle.executeUpdate(approveUpdate, { args: [{ by, ...(values.comment ? { comment: values.comment } : {}) }] })
        : await handle.executeUpdate(rejectUpdate, { args: [{ by, reason: values.reason! }] });
    process.stdout.write(`${workflowId}: ${state.state} by ${state.by ?? by} at ${state.decidedAt ?? '?'}${state.comment ? `: ${state.comment}` : ''}\n`);
    return 0;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      process.stderr.write(`runbook: ${decision} refused: ${rootCauseMessage(err).message}\n`);
      return 1;
    }
    if (err instanceof WorkflowNotFoundError) {
      // An update to a run that has ended reads as "not found": say which it is.
      const status = await handle.describe().then((d) => d.status.name, () => null);
      if (status) {
        process.stderr.write(`runbook: ${decision} refused: ${workflowId} has ended (${status})\n`);
        return 1;
      }
    }
    throw err;
  }
}

async function list(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { cluster: { type: 'string' }, limit: { type: 'string', default: '20' } }, strict: true });
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit: expected a whole number >= 1');
  if (values.cluster !== undefined && !/^[a-z0-9-]+$/.test(values.cluster)) throw new UsageError('--cluster: expected a cluster name');
  const { client } = await connect();
  const query = values.cluster ? `RunbookCluster = "${values.cluster}"` : 'RunbookName IS NOT NULL';
  let shown = 0;
  for await (const run of client.workflow.list({ query })) {
    const name = run.typedSearchAttributes.get(searchAttributes.runbook) ?? run.type;
    const step = run.typedSearchAttributes.get(searchAttributes.step) ?? '';
    process.stdout.write(`${run.startTime.toISOString()}  ${run.status.name.padEnd(10)} ${String(name).padEnd(16)} ${run.workflowId}${step && run.status.name === 'RUNNING' ? `  [${step}]` : ''}\n`);
    if (++shown >= limit) break;
  }
  if (shown === 0) process.stdout.write('no runs\n');
  return 0;
}

export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      case 'status':
        return await status(rest);
      case 'cancel':
        return await cancel(rest[0]);
      case 'list':
        return await list(rest);
      case 'approve':
      case 'reject':
        return await decide(command, rest);
      case 'schedule': {
        const { client } = await connect();
        return await scheduleCommand(client, rest, (line) => process.stdout.write(`${line}\n`));
      }
      default:
        return await startRunbook(command, rest);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`runbook: ${(err as Error).message}\n`);
      return 2;
    }
    if (err instanceof WorkflowNotFoundError) {
      process.stderr.write(`runbook: no such run: ${err.workflowId}\n`);
      return 2;
    }
    const exitCode = (err as { exitCode?: number }).exitCode;
    process.stderr.write(`runbook: ${rootCauseMessage(err).message}\n`);
    return exitCode ?? 1;
  } finally {
    const connections = [...openConnections];
    openConnections.clear();
    await Promise.allSettled(connections.map((c) => c.close()));
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`runbook: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
