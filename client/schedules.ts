// `runbook schedule ...`: Temporal Schedules that run a runbook on a cron or an interval, in place
// of CronJobs. One schedule per runbook kind and cluster (id "<kind>/<cluster>"), created or
// updated by the same command; a missed run is caught up within a window, an overlapping one is
// skipped, and a jitter spreads a fleet's schedules over the hour.
import { parseArgs } from 'node:util';
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import { searchAttributes, TASK_QUEUE_DEFAULT } from '../workflows/definitions';
import { CLUSTER_NAME } from '../workflows/validation';
import { parseInputOption, UsageError } from './arguments';

/** What each schedule kind runs. Only the cluster goes into the input: the rest comes from the profile. */
export const SCHEDULE_KINDS: Record<string, { workflowType: string; description: string }> = {
  backup: { workflowType: 'backupDatabase', description: 'a verified database backup to S3' },
  'backup-etcd': { workflowType: 'backupEtcd', description: 'an etcd snapshot to S3' },
  refresh: { workflowType: 'refreshNodeAddresses', description: 'the node address refresh (safety net of the pod watcher)' },
  health: { workflowType: 'clusterHealth', description: 'a health check' },
};

export const SCHEDULE_USAGE = `  runbook schedule <kind> --cluster NAME (--cron 'M H DoM Mon DoW' | --every DURATION)
        [--jitter DURATION] [--catchup DURATION] [--input JSON] [--paused]
                                                                create or update the schedule <kind>/<cluster>
  runbook schedule list [--cluster NAME]                        schedules, their next runs and last results
  runbook schedule pause|resume|trigger|delete <schedule-id> [--note TEXT]
schedule kinds:
${Object.entries(SCHEDULE_KINDS).map(([kind, k]) => `  ${kind.padEnd(16)} ${k.workflowType}: ${k.description}`).join('\n')}`;


const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** A duration such as 30s, 15m, 1h or 7d, in seconds. */
export function parseDuration(field: string, text: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text);
  if (!match) throw new UsageError(`${field}: expected a duration such as 30s, 15m, 1h or 7d, got ${JSON.stringify(text)}`);
  return Number(match[1]) * UNIT_SECONDS[match[2]!]!;
}

export function scheduleId(kind: string, cluster: string): string {
  return `${kind}/${cluster}`;
}

/** The options of a schedule, from the command line; exported for the unit tests. */
export function scheduleOptions(kind: string, args: string[], taskQueue = TASK_QUEUE_DEFAULT): ScheduleOptions {
  const spec = SCHEDULE_KINDS[kind];
  if (!spec) throw new UsageError(`unknown schedule kind "${kind}"; kinds: ${Object.keys(SCHEDULE_KINDS).join(', ')}`);
  const { values } = parseArgs({
    args,
    options: {
      cluster: { type: 'string' },
      cron: { type: 'string' },
      every: { type: 'string' },
      jitter: { type: 'string' },
      catchup: { type: 'string' },
      input: { type: 'string' },
      paused: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const cluster = values.cluster;
  if (!cluster) throw new UsageError('--cluster: required');
  if (!CLUSTER_NAME.test(cluster)) throw new UsageError(`--cluster: expected a cluster name of lowercase letters, digits and "-", got ${JSON.stringify(cluster)}`);
  if (Boolean(values.cron) === Boolean(values.every)) throw new UsageError('--cron or --every: give exactly one');
  if (values.cron !== undefined && values.cron.trim().split(/\s+/).length !== 5) {
    throw new UsageError(`--cron: expected five fields (minute hour day-of-month month day-of-week), got ${JSON.stringify(values.cron)}`);
  }
  const input = parseInputOption(values.input);
  const id = scheduleId(kind, cluster);
  const every = (text: string) => {
    const seconds = parseDuration('--every', text);
    if (seconds < 60) throw new UsageError(`--every: at least 1m, got ${text}`);
    return seconds;
  };
  return {
    scheduleId: id,
    spec: {
      ...(values.cron ? { cronExpressions: [values.cron] } : { intervals: [{ every: `${every(values.every!)}s` }] }),
      jitter: `${parseDuration('--jitter', values.jitter ?? (values.cron ? '5m' : '0s'))}s`,
    },
    action: {
      type: 'startWorkflow',
      workflowType: spec.workflowType,
      // Temporal appends the scheduled time, so each run has its own id: <workflow type>/<cluster>/scheduled-<time>.
      workflowId: `${spec.workflowType}/${cluster}/scheduled`,
      taskQueue,
      args: [{ ...input, cluster }],
      typedSearchAttributes: [
        { key: searchAttributes.cluster, value: cluster },
        { key: searchAttributes.runbook, value: spec.workflowType },
      ],
      staticSummary: `${spec.workflowType} on ${cluster} (schedule ${id})`,
    },
    policies: {
      // A run still going when the next is due means something is slow: skip, never pile up.
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: `${parseDuration('--catchup', values.catchup ?? '1h')}s`,
    },
    state: { paused: values.paused, note: values.paused ? 'created paused' : undefined },
    memo: { cluster, kind },
  };
}

/** Creates the schedule, or updates it in place (its history of runs stays) when it exists. */
export async function upsertSchedule(client: Client, options: ScheduleOptions): Promise<'created' | 'updated'> {
  try {
    await client.schedule.create(options);
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(options.scheduleId).update((previous) => ({
      ...previous,
      spec: options.spec,
      action: options.action,
      policies: { ...previous.policies, ...options.policies },
      state: { ...previous.state, paused: options.state?.paused ?? previous.state.paused },
    }));
    return 'updated';
  }
}

type CalendarRange = { start: number | string; end?: number | string; step?: number };
const CALENDAR_FIELDS = ['minute', 'hour', 'dayOfMonth', 'month', 'dayOfWeek'] as const;
const FULL: Record<(typeof CALENDAR_FIELDS)[number], [number | string, number | string]> = {
  minute: [0, 59],
  hour: [0, 23],
  dayOfMonth: [1, 31],
  month: ['JANUARY', 'DECEMBER'],
  dayOfWeek: ['SUNDAY', 'SATURDAY'],
};

/** The server keeps a cron expression as a calendar: show it in cron's own five fields again. */
function cronOf(calendar: Partial<Record<(typeof CALENDAR_FIELDS)[number], CalendarRange[]>>): string {
  return CALENDAR_FIELDS.map((field) => {
    const ranges = calendar[field] ?? [];
    const [min, max] = FULL[field];
    const only = ranges[0];
    if (ranges.length === 1 && only && only.start === min && only.end === max && (only.step ?? 1) === 1) return '*';
    const name = (v: number | string) => (typeof v === 'string' ? v.slice(0, 3).toLowerCase() : String(v));
    return ranges.map((r) => `${name(r.start)}${r.end !== undefined && r.end !== r.start ? `-${name(r.end)}` : ''}${(r.step ?? 1) > 1 ? `/${r.step}` : ''}`).join(',') || '*';
  }).join(' ');
}

function when(spec: { cronExpressions?: string[]; calendars?: unknown[]; intervals?: { every: number | string }[] } | undefined): string {
  if (spec?.cronExpressions?.length) return `cron "${spec.cronExpressions.join('; ')}"`;
  if (spec?.calendars?.length) return `cron "${spec.calendars.map((c) => cronOf(c as Parameters<typeof cronOf>[0])).join('; ')}"`;
  // Described schedules give milliseconds; the options this client builds give "<n>s".
  if (spec?.intervals?.length) return `every ${spec.intervals.map((i) => (typeof i.every === 'number' ? `${Math.round(i.every / 1000)}s` : i.every)).join(', ')}`;
  return 'no spec';
}

export async function scheduleCommand(client: Client, args: string[], out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub) throw new UsageError(`schedule: a kind or a command is required\n${SCHEDULE_USAGE}`);
  if (sub === 'list') {
    const { values } = parseArgs({ args: rest, options: { cluster: { type: 'string' } }, strict: true });
    let shown = 0;
    for await (const s of client.schedule.list()) {
      const [kind, cluster] = s.scheduleId.split('/');
      if (!kind || !SCHEDULE_KINDS[kind] || (values.cluster && cluster !== values.cluster)) continue;
      const last = s.info.recentActions.at(-1);
      const next = s.info.nextActionTimes[0];
      out(
        `${s.scheduleId.padEnd(28)} ${s.state.paused ? 'PAUSED ' : 'active '} ${when(s.spec)}  next ${next ? next.toISOString() : '-'}` +
          `${last ? `  last ${last.takenAt.toISOString()} ${last.action.workflow.workflowId}` : ''}${s.state.note && s.state.paused ? `  (${s.state.note})` : ''}`,
      );
      shown += 1;
    }
    if (shown === 0) out('no schedules');
    return 0;
  }
  if (['pause', 'resume', 'trigger', 'delete'].includes(sub)) {
    const { values, positionals } = parseArgs({ args: rest, options: { note: { type: 'string' } }, allowPositionals: true, strict: true });
    const id = positionals[0];
    if (!id) throw new UsageError(`schedule ${sub}: a schedule id is required (see runbook schedule list)`);
    const handle = client.schedule.getHandle(id);
    const note = values.note ?? `${sub}d from the runbook client`;
    if (sub === 'pause') await handle.pause(note);
    else if (sub === 'resume') await handle.unpause(note);
    // An explicit trigger is an operator's decision: it runs even while another run is going.
    else if (sub === 'trigger') await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    else await handle.delete();
    out(`schedule ${id}: ${sub === 'trigger' ? 'triggered' : `${sub}d`}`);
    return 0;
  }
  const options = scheduleOptions(sub, rest, process.env.DBR_TASK_QUEUE ?? TASK_QUEUE_DEFAULT);
  const how = await upsertSchedule(client, options);
  out(`schedule ${options.scheduleId} ${how}: ${when({ cronExpressions: options.spec.cronExpressions, intervals: options.spec.intervals?.map((i) => ({ every: String(i.every) })) })}, ${SCHEDULE_KINDS[sub]!.workflowType} on ${String(options.memo!.cluster)}`);
  return 0;
}
