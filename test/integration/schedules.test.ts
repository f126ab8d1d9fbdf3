// `runbook schedule ...` against a real Temporal dev server: the schedule exists with the policies
// an operator expects, an update keeps it, a trigger runs the runbook under the schedule's id, and
// pause / resume / delete do what they say.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ScheduleNotFoundError } from '@temporalio/client';
import { cli as runCli } from '../helpers/cli';
import { eventually } from '../helpers/kubernetes';
import { realActivities, startTemporal, startWorker, type RunningWorker } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let worker: RunningWorker;

beforeAll(async () => {
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

function cli(args: string[]) {
  return runCli(['schedule', ...args], { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: worker.taskQueue });
}

test('a schedule is created, updated in place, triggered, paused, resumed and deleted', async () => {
  expect(await cli(['health', '--cluster', 'local', '--every', '1h'])).toEqual({ code: 0, out: 'schedule health/local created: every 3600s, clusterHealth on local\n', err: '' });
  expect((await cli(['health', '--cluster', 'local', '--cron', '0 3 * * *', '--jitter', '10m'])).out).toBe('schedule health/local updated: cron "0 3 * * *", clusterHealth on local\n');

  const handle = env.client.schedule.getHandle('health/local');
  const described = await handle.describe();
  // The server keeps a cron expression as a calendar: 03:00 every day.
  expect(described.spec.calendars).toMatchObject([{ hour: [{ start: 3, end: 3 }], minute: [{ start: 0, end: 0 }] }]);
  expect(described.spec.intervals).toEqual([]);
  expect(described.spec.jitter).toBe(600_000);
  expect(described.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 3_600_000 });
  expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'clusterHealth', taskQueue: worker.taskQueue, args: [{ cluster: 'local' }] });

  const listed = await cli(['list', '--cluster', 'local']);
  expect(listed.out).toMatch(/^health\/local\s+active\s+cron "0 3 \* \* \*"\s+next \d{4}-/);

  // A trigger fires now: the run carries the schedule's id and completes.
  expect((await cli(['trigger', 'health/local'])).out).toBe('schedule health/local: triggered\n');
  const runId = await eventually('the scheduled run', async () => {
    for await (const run of env.client.workflow.list({ query: 'TemporalScheduledById = "health/local"' })) return run.workflowId;
    return undefined;
  });
  expect(runId).toMatch(/^clusterHealth\/local\/scheduled-\d{4}-\d\d-\d\dT/);
  const report = (await env.client.workflow.getHandle(runId).result()) as { cluster: string; verdict: string };
  expect(report).toMatchObject({ cluster: 'local', verdict: 'healthy' });

  expect((await cli(['pause', 'health/local', '--note', 'maintenance window'])).out).toBe('schedule health/local: paused\n');
  expect((await handle.describe()).state).toMatchObject({ paused: true, note: 'maintenance window' });
  expect((await cli(['list'])).out).toMatch(/health\/local\s+PAUSED.*\(maintenance window\)/);
  await cli(['resume', 'health/local']);
  expect((await handle.describe()).state.paused).toBe(false);

  expect((await cli(['delete', 'health/local'])).out).toBe('schedule health/local: deleted\n');
  await expect(handle.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
});

test('the refresh safety net and the backups get one schedule per cluster, with only the cluster as input', async () => {
  expect((await cli(['refresh', '--cluster', 'pair', '--every', '15m'])).code).toBe(0);
  expect((await cli(['backup', '--cluster', 'pair', '--cron', '0 3 * * *', '--paused'])).code).toBe(0);
  expect((await cli(['backup-etcd', '--cluster', 'pair', '--cron', '30 */6 * * 1-5'])).code).toBe(0);
  expect((await cli(['list', '--cluster', 'pair'])).out.split('\n').sort().join('\n')).toMatch(
    /^\nbackup-etcd\/pair\s+active\s+cron "30 0-23\/6 \* \* mon-fri"\s+next .*\nbackup\/pair\s+PAUSED\s+cron "0 3 \* \* \*".*\nrefresh\/pair\s+active\s+every 900s/,
  );
  const refresh = await env.client.schedule.getHandle('refresh/pair').describe();
  expect(refresh.spec.intervals).toMatchObject([{ every: 900_000 }]);
  expect(refresh.spec.jitter ?? 0).toBe(0);
  expect(refresh.action).toMatchObject({ workflowType: 'refreshNodeAddresses', args: [{ cluster: 'pair' }] });
  const backup = await env.client.schedule.getHandle('backup/pair').describe();
  expect(backup.state).toMatchObject({ paused: true, note: 'created paused' });
  expect(backup.action).toMatchObject({ workflowType: 'backupDatabase', args: [{ cluster: 'pair' }] });
  expect((await env.client.schedule.getHandle('backup-etcd/pair').describe()).action).toMatchObject({ workflowType: 'backupEtcd' });
});

afterEach(async () => {
  for await (const s of env.client.schedule.list()) await env.client.schedule.getHandle(s.scheduleId).delete();
});

test.each([
  [['backup'], '--cluster: required'],
  [['backup', '--cluster', 'Bad_Name', '--every', '1h'], '--cluster: expected a cluster name'],
  [['backup', '--cluster', 'pair'], '--cron or --every: give exactly one'],
  [['backup', '--cluster', 'pair', '--cron', '0 3 * *'], '--cron: expected five fields'],
  [['backup', '--cluster', 'pair', '--every', 'often'], '--every: expected a duration such as 30s, 15m, 1h or 7d, got "often"'],
  [['backup', '--cluster', 'pair', '--every', '10s'], '--every: at least 1m'],
  [['backup', '--cluster', 'pair', '--every', '1h', '--input', '[1]'], '--input: expected a JSON object'],
  [['nightly', '--cluster', 'pair', '--every', '1h'], 'unknown schedule kind "nightly"'],
  [['trigger'], 'schedule trigger: a schedule id is required'],
])('schedule %j is refused with exit code 2 and the field named', async (args, message) => {
  const { code, err } = await cli(args);
  expect(code).toBe(2);
  expect(err).toContain(message);
  await expect(env.client.schedule.getHandle('backup/pair').describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
});
