// migrateSchema: versioned SQL migrations applied safely from a runbook. Under the cluster lock:
// pre-flight (server, sql_mode and time_zone, privileges, files against the ledger), a dry-run in
// a scratch copy of the schema under the target's own settings, an optional approval, a resumable
// apply that records every statement, and a verify (ledger complete, schema equal to the dry-run's).
//
// There is no automatic rollback: DDL commits on its own and migration files have no "down" part.
// A failed or interrupted apply leaves the ledger exact to the statement, and a new run resumes
// there. What is cleaned up on failure and cancellation is the dry-run's scratch database.
import { ApplicationFailure, CancellationScope, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ApplyReport, DryRunReport, MigrationPreflight, MigrationSession, StatementReport, VerifyReport } from '../activities/migrations';
import { lookup, migrationCheck, migrationRun } from './activity-profiles';
import { ApprovalGate } from './approval';
import type { ApprovalState } from './definitions';
import { withClusterLock } from './lock';
import { failureMessage, RunbookTracker } from './tracker';
import { DATABASE_NAME, InputValidator } from './validation';

export interface MigrateSchemaInput {
  cluster: string;
  /** A migration set named in the cluster's profile (mysql.migrations.<set>). */
  set: string;
  /** Apply up to this version (default: the newest file of the set). */
  targetVersion?: number;
  /** Overrides the set's database from the profile. */
  database?: string;
  /** `dry-run` stops after the dry-run and changes nothing. Default `apply`. */
  mode?: 'apply' | 'dry-run';
  /** Wait for `runbook approve` (the approve update) between the dry-run and the apply. */
  requireApproval?: boolean;
  /** How long to wait for the approval (default one hour). */
  approvalTimeoutSeconds?: number;
  lockWaitSeconds?: number;
}

export interface MigrateSchemaResult {
  cluster: string;
  set: string;
  database: string;
  node: string;
  mode: 'apply' | 'dry-run';
  outcome: 'applied' | 'up to date' | 'dry-run passed';
  fromVersion: number | null;
  toVersion: number | null;
  server: string;
  session: MigrationSession;
  warnings: string[];
  dryRun?: { summary: string; statements: StatementReport[] };
  approval?: ApprovalState;
  apply?: ApplyReport;
  verify?: VerifyReport;
  summary: string;
}

const MIGRATION_SET = /^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/;
const STEPS = ['read profile', 'cluster lock', 'pre-flight', 'dry-run', 'approval', 'apply', 'verify'];

const { describeCluster } = proxyActivities<Activities>(lookup);
const { preflightSqlMigration, verifySqlMigration, dropSqlMigrationScratch } = proxyActivities<Activities>(migrationCheck);
const { dryRunSqlMigration, applySqlMigration } = proxyActivities<Activities>(migrationRun);

function describePreflight(p: MigrationPreflight): string {
  const pending = p.plan.pending;
  const what =
    pending.length === 0
      ? `up to date at version ${p.plan.currentVersion ?? 'none'}`
      : `${p.pendingStatements} statement(s) of version(s) ${pending.map((v) => (v.fromStatement > 1 ? `${v.version} from statement ${v.fromStatement}` : String(v.version))).join(', ')} pending`;
  return `${p.server.flavor} ${p.server.version} on ${p.node}; sql_mode=${p.session.sqlMode || "''"}; time_zone=${p.session.timeZone}; ${what}`;
}

export async function migrateSchema(input: MigrateSchemaInput): Promise<MigrateSchemaResult> {
  const v = new InputValidator(input, 'migrateSchema', [
    'cluster',
    'set',
    'targetVersion',
    'database',
    'mode',
    'requireApproval',
    'approvalTimeoutSeconds',
    'lockWaitSeconds',
  ]);
  const cluster = v.clusterName();
  const set = v.requiredString('set', MIGRATION_SET, 'a migration set name from the profile (mysql.migrations)');
  const targetVersion = v.optionalNumber('targetVersion', { min: 0, max: 999_999_999, integer: true });
  const database = v.optionalString('database', DATABASE_NAME, 'a database name of letters, digits and "_" (at most 64)');
  const mode = (v.optionalString('mode', /^(apply|dry-run)$/, '"apply" or "dry-run"') ?? 'apply') as 'apply' | 'dry-run';
  const requireApproval = v.optionalBoolean('requireApproval', false);
  const approvalTimeoutSeconds = v.optionalNumber('approvalTimeoutSeconds', { min: 1, max: 7 * 24 * 3600, integer: true });
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  if (approvalTimeoutSeconds !== undefined && !requireApproval) v.fail('approvalTimeoutSeconds', 'only with "requireApproval": true');
  if (requireApproval && mode === 'dry-run') v.fail('requireApproval', 'a dry-run changes nothing: there is nothing to approve');
  v.done();

  const tracker = new RunbookTracker('migrateSchema', cluster, STEPS);
  const approval = new ApprovalGate(tracker);
  const info = workflowInfo();
  const runKey = `${info.workflowId}/${info.runId}`;

  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      tracker.begin('cluster lock');
      let lockHeld = false;
      const locked = await withClusterLock(
        { cluster, runbook: 'migrateSchema', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds },
        async (lease) => {
          lockHeld = true;
          tracker.end('cluster lock', 'done', `held since ${lease.grantedAt}`);
          const pre = await tracker.step(
            'pre-flight',
            async () => {
              const p = await preflightSqlMigration({ cluster, set, database, targetVersion });
              if (p.problems.length > 0) {
                throw ApplicationFailure.create({ type: p.problems[0]!.type, nonRetryable: true, message: p.problems.map((x) => x.message).join('; '), details: [p.problems] });
              }
              return p;
            },
            describePreflight,
          );
          const target = { cluster, set, database: pre.database, node: pre.node, targetVersion: pre.plan.targetVersion, files: pre.files };
          const base = {
            cluster,
            set,
            database: pre.database,
            node: pre.node,
            mode,
            server: `${pre.server.flavor} ${pre.server.version} on ${pre.node} (${pre.address})`,
            session: pre.session,
            warnings: pre.warnings,
            fromVersion: pre.plan.currentVersion,
          };

          if (pre.plan.pending.length === 0) {
            for (const step of ['dry-run', 'approval', 'apply']) tracker.skip(step, `nothing to apply: at version ${pre.plan.currentVersion ?? 'none'}`);
            const verify = await tracker.step('verify', () => verifyLedger(target), (r) => `ledger complete at version ${r.currentVersion ?? 'none'}`);
            const summary = `${pre.database} on cluster ${cluster} is up to date at version ${pre.plan.currentVersion ?? 'none'} (set ${set})`;
            return { ...base, outcome: 'up to date' as const, toVersion: pre.plan.currentVersion, verify, summary };
          }

          let dryRun: DryRunReport;
          try {
            dryRun = await tracker.step(
              'dry-run',
              async () => {
                const report = await dryRunSqlMigration({ ...target, runKey });
                if (!report.passed) {
                  throw ApplicationFailure.create({ type: 'DryRunFailed', nonRetryable: true, message: `dry-run: ${report.summary}; nothing was changed on ${pre.database}`, details: [report] });
                }
                return report;
              },
              (r) => r.summary,
            );
          } catch (err) {
            // The dry-run drops its scratch database itself; this covers an attempt that never got to.
            await CancellationScope.nonCancellable(() => dropSqlMigrationScratch({ cluster, node: pre.node, runKey })).catch(() => undefined);
            throw err;
          }
          const dryRunSummary = { summary: dryRun.summary, statements: dryRun.statements };

          if (mode === 'dry-run') {
            for (const step of ['approval', 'apply', 'verify']) tracker.skip(step, 'mode: dry-run');
            const summary = `dry-run of set ${set} on ${pre.database} (cluster ${cluster}) passed: ${dryRun.statements.length} statement(s) up to version ${pre.plan.targetVersion}; nothing was changed`;
            return { ...base, outcome: 'dry-run passed' as const, toVersion: pre.plan.currentVersion, dryRun: dryRunSummary, summary };
          }

          let approved: ApprovalState | undefined;
          if (requireApproval) {
            approved = await approval.request(
              'approval',
              `apply ${dryRun.statements.length} statement(s) of set ${set} to ${pre.database} on cluster ${cluster} up to version ${pre.plan.targetVersion}; dry-run: ${dryRun.summary}`,
              approvalTimeoutSeconds ?? 3600,
              `runbook approve ${info.workflowId} | runbook reject ${info.workflowId} --reason TEXT`,
            );
          } else {
            tracker.skip('approval', 'not requested');
          }

          const apply = await tracker.step('apply', () => applySqlMigration({ ...target, session: dryRun.session, appliedBy: runKey }), (r) => r.summary);
          const verify = await tracker.step(
            'verify',
            async () => {
              const report = await verifySqlMigration({ ...target, expectedSchema: dryRun.resultSchema });
              if (!report.ledgerComplete || !report.schemaMatches) {
                throw ApplicationFailure.create({
                  type: 'MigrationVerifyFailed',
                  nonRetryable: true,
                  message: `verify failed on ${pre.database}: ${[...report.ledgerProblems, ...report.differences.map((d) => `${d} (compared with the dry-run's result)`)].join('; ')}`,
                  details: [report],
                });
              }
              return report;
            },
            (r) => `ledger complete at version ${r.currentVersion ?? 'none'}; ${r.tables} table(s) equal to the dry-run's result`,
          );
          const summary =
            `${pre.database} on cluster ${cluster} migrated from version ${pre.plan.currentVersion ?? 'none'} to ${verify.currentVersion ?? 'none'} (set ${set}): ` +
            `${apply.applied} statement(s) applied` +
            (apply.recognised.length > 0 ? `, ${apply.recognised.length} already in effect and recorded without running` : '') +
            (apply.resumedAt ? `, resumed at version ${apply.resumedAt.version} statement ${apply.resumedAt.statement}` : '') +
            '; verified';
          return { ...base, outcome: 'applied' as const, toVersion: verify.currentVersion, dryRun: dryRunSummary, approval: approved, apply, verify, summary };
        },
      ).catch((err: unknown) => {
        if (!lockHeld) tracker.end('cluster lock', 'failed', failureMessage(err));
        throw err;
      });
      if (locked.status !== 'done') throw ApplicationFailure.nonRetryable(`cluster ${cluster}: the lock was not granted`, 'ClusterLocked');
      return locked.value;
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
  );
}

async function verifyLedger(target: { cluster: string; set: string; database: string; node: string; targetVersion: number; files: MigrationPreflight['files'] }): Promise<VerifyReport> {
  const report = await verifySqlMigration(target);
  if (!report.ledgerComplete) {
    throw ApplicationFailure.create({ type: 'MigrationVerifyFailed', nonRetryable: true, message: `verify failed on ${target.database}: ${report.ledgerProblems.join('; ')}`, details: [report] });
  }
  return report;
}
