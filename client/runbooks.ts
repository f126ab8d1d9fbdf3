// The runbooks the client can start: workflow type, how the workflow id derives from the cluster,
// and how the result is shown. A mutating runbook's id is fixed per cluster, so Temporal itself
// refuses a second one while the first runs.
import type { BackupEtcdResult } from '../workflows/backupEtcd';
import type { BackupDatabaseResult } from '../workflows/backupDatabase';
import type { FailoverResult } from '../workflows/failover';
import type { GaleraRecoverResult } from '../workflows/galeraRecover';
import type { ClusterHealthReport } from '../workflows/health';
import type { RefreshNodeAddressesResult } from '../workflows/refreshNodeAddresses';
import type { RestoreDatabaseResult } from '../workflows/restoreDatabase';
import type { ClusterChangeResult } from '../workflows/upgrade-engine';
import type { MigrateSchemaResult } from '../workflows/migrateSchema';
import type { SwitchoverResult } from '../workflows/switchover';
import type { VitessDrainResult } from '../workflows/vitessDrain';

export interface RunbookSpec {
  workflowType: string;
  description: string;
  workflowId(cluster: string, now: Date): string;
  /** Lines to print for a completed run, and the exit code the result deserves. */
  render?(result: unknown): { lines: string[]; exitCode: number };
}

function renderHealth(result: unknown): { lines: string[]; exitCode: number } {
  const report = result as ClusterHealthReport;
  const lines = [`cluster ${report.cluster}: ${report.verdict.toUpperCase()}`];
  for (const reason of report.reasons) lines.push(`  ✗ ${reason}`);
  for (const warning of report.warnings) lines.push(`  ! ${warning}`);
  for (const n of report.mysql ?? []) {
    const parts = [n.reachable ? `${n.flavor ?? ''} ${n.version ?? ''}`.trim() : `unreachable (${n.error ?? 'no answer'})`];
    if (n.reachable) parts.push(n.readOnly ? 'read-only' : 'writable');
    if (n.gtidPosition) parts.push(`gtid ${n.gtidPosition}`);
    if (n.replication) parts.push(`replication io=${n.replication.ioRunning} sql=${n.replication.sqlRunning} lag=${n.replication.secondsBehindSource ?? '?'}s`);
    if (n.galera) parts.push(`wsrep ${n.galera.localState}/${n.galera.clusterStatus} size=${n.galera.clusterSize} ready=${n.galera.ready}`);
    lines.push(`  mysql ${n.node} (${n.role ?? 'node'}, ${n.address}): ${parts.join(', ')}`);
  }
  for (const e of report.etcd?.endpoints ?? []) {
    lines.push(`  etcd ${e.endpoint}: ${e.reachable ? `v${e.version ?? '?'}, ${e.dbSizeBytes ?? '?'} bytes, leader ${e.leaderId ?? '?'}` : `unreachable (${e.error ?? 'no answer'})`}`);
  }
  if (report.etcd) lines.push(`  etcd members: ${report.etcd.members.map((m) => m.name || m.id).join(', ') || 'unknown'}`);
  if (report.s3) {
    const s = report.s3;
    lines.push(`  s3 ${s.endpoint} bucket ${s.bucket}: ${s.writable ? 'reachable and writable' : (s.error ?? 'not writable')}`);
  }
  const w = report.workload;
  if (w) {
    const counts = w.exists ? `${w.ready}/${w.desired} ready, ${w.updated} updated` : w.reachable ? 'does not exist' : `status unknown (${w.error ?? 'no answer'})`;
    lines.push(`  ${w.kind} ${w.name} (namespace ${w.namespace}): ${counts}`);
    for (const p of w.pods) {
      const parts = [p.ready ? 'ready' : `not ready (${p.notReadyReasons.join('; ')})`];
      if (p.role) parts.push(`role ${p.role}`);
      parts.push(`${p.restartCount} restart(s)${p.lastRestartAt ? `, the last at ${p.lastRestartAt} (${p.lastRestartReason ?? '?'})` : ''}`);
      lines.push(`    pod ${p.name} ${p.ip ?? 'no address'}: ${parts.join(', ')}`);
    }
  }
  return { lines, exitCode: report.verdict === 'healthy' ? 0 : report.verdict === 'degraded' ? 4 : 5 };
}

function renderMigration(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as MigrateSchemaResult;
  const lines = [r.summary, `  server ${r.server}; session sql_mode=${r.session.sqlMode || "''"} time_zone=${r.session.timeZone}`];
  for (const s of r.dryRun?.statements ?? []) {
    if (s.outcome === 'ok') continue;
    lines.push(`  ${s.outcome === 'failed' ? '✗' : '='} ${s.file} statement ${s.statement} (line ${s.line}): ${s.outcome}${s.detail ? `: ${s.detail}` : ''}${s.error ? `: ${s.error.message}` : ''}`);
  }
  for (const s of r.apply?.recognised ?? []) lines.push(`  = ${s.file} statement ${s.statement} (line ${s.line}) recorded without running: ${s.detail ?? ''}`);
  for (const w of r.warnings) lines.push(`  ! ${w}`);
  return { lines, exitCode: 0 };
}

function renderSwitchover(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as SwitchoverResult;
  const lines = [`cluster ${r.cluster}: ${r.newPrimary} is the primary (was ${r.oldPrimary}) from ${r.position}`, `  replicas: ${r.replicas.join(', ')}`, `  routing: ${r.routing}`];
  for (const s of r.killedSessions) lines.push(`  killed session ${s.id} of ${s.user}@${s.host} (uncommitted writes)`);
  for (const w of r.warnings) lines.push(`  ! ${w}`);
  return { lines, exitCode: 0 };
}

function renderChange(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as ClusterChangeResult;
  const lines = [`cluster ${r.cluster}: ${r.outcome.toUpperCase()}: ${r.summary}`];
  lines.push(`  backup: s3 ${r.backup.objectKey} (${r.backup.keyCount} keys, sha256 ${r.backup.sha256})`);
  if (r.verification) {
    const { added, changed, removed } = r.verification.changes;
    for (const k of added) lines.push(`  + ${k}`);
    for (const k of changed) lines.push(`  ~ ${k}`);
    for (const k of removed) lines.push(`  - ${k}`);
  }
  return { lines, exitCode: 0 };
}

function renderFailover(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as FailoverResult;
  const lines = [`cluster ${r.cluster}: ${r.newPrimary} is the primary (${r.oldPrimary} was down)`, `  why: ${r.reason}`];
  for (const c of r.candidates) lines.push(`    ${c.node}: at ${c.position || '(empty)'}, lag ${c.lagSeconds ?? '?'}s${c.problem ? `, ${c.problem}` : ''}`);
  lines.push(`  routing: ${r.routing}`, `  fencing: ${r.fencing}`, `  replicas following: ${r.replicas.join(', ') || 'none'}`);
  for (const p of r.problems) lines.push(`  ✗ ${p}`);
  for (const w of r.warnings) lines.push(`  ! ${w}`);
  return { lines, exitCode: r.problems.length ? 4 : 0 };
}

function renderGaleraRecover(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as GaleraRecoverResult;
  const lines = [`cluster ${r.cluster}: ${r.summary}`, ...r.table.map((l) => `  ${l}`)];
  for (const w of r.warnings) lines.push(`  ! ${w}`);
  return { lines, exitCode: 0 };
}

function renderVitessDrain(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as VitessDrainResult;
  return { lines: [`cluster ${r.cluster}: ${r.summary}`], exitCode: 0 };
}

function renderRefresh(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as RefreshNodeAddressesResult;
  const lines = [r.summary];
  for (const [i, round] of r.rounds.entries()) {
    for (const u of round.updates) lines.push(`  round ${i + 1}: ${u.node}: ${u.previous.host}:${u.previous.port} → ${u.host}:${u.port}${round.alreadyDone.includes(u.node) ? ' (already done)' : ''}`);
    if (round.waitedFor.length) lines.push(`  round ${i + 1}: waited for an address: ${round.waitedFor.join(', ')}`);
  }
  return { lines, exitCode: 0 };
}

function renderBackup(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as BackupDatabaseResult;
  if (r.outcome === 'skipped') return { lines: [r.summary], exitCode: 6 };
  const lines = [r.summary, `  manifest: ${r.manifestKey ?? '?'}`];
  for (const d of r.databases ?? []) lines.push(`  ${d.name}: ${d.tables} table(s), ${d.rows} row(s), ${d.bytes} bytes at ${d.objectKey} (sha256 ${d.sha256})`);
  if (r.verification) lines.push(`  verification: ${r.verification.outcome} (${r.verification.tables} table(s), ${r.verification.rows} row(s) compared)`);
  for (const id of r.retention?.deleted ?? []) lines.push(`  - expired backup ${id} deleted`);
  return { lines, exitCode: 0 };
}

function renderRestore(result: unknown): { lines: string[]; exitCode: number } {
  const r = result as RestoreDatabaseResult;
  return { lines: [r.summary, `  backup ${r.backup.id}: gtid ${r.backup.gtidPosition || 'none'}, ${r.backup.verification === 'passed' ? 'verified' : `verification ${r.backup.verification}`}`], exitCode: 0 };
}

export const RUNBOOKS: Record<string, RunbookSpec> = {
  clusterHealth: {
    workflowType: 'clusterHealth',
    description: 'check every part of a cluster and report healthy / degraded / down (read-only, no lock)',
    workflowId: (cluster, now) => `clusterHealth/${cluster}/${now.toISOString()}`,
    render: renderHealth,
  },
  migrateSchema: {
    workflowType: 'migrateSchema',
    description: 'apply a versioned SQL migration set: pre-flight, dry-run, optional approval, resumable apply, verify (--input {"set": "..."})',
    workflowId: (cluster) => `migrateSchema/${cluster}`,
    render: renderMigration,
  },
  upgradeCluster: {
    workflowType: 'upgradeCluster',
    description: 'stop, back up and dry-run the metadata migration, migrate, deploy --input {"targetImage": ...}; rolls back on failure',
    workflowId: (cluster) => `upgradeCluster/${cluster}`,
    render: renderChange,
  },
  downgradeCluster: {
    workflowType: 'downgradeCluster',
    description: 'undo an upgrade with its own backup --input {"upgradeWorkflowId": "upgradeCluster/<cluster>"}',
    workflowId: (cluster) => `downgradeCluster/${cluster}`,
    render: renderChange,
  },
  switchover: {
    workflowType: 'switchover',
    description: 'planned change of primary of a MariaDB GTID replication cluster (rolled back if it fails)',
    workflowId: (cluster) => `switchover/${cluster}`,
    render: renderSwitchover,
  },
  failover: {
    workflowType: 'failover',
    description: 'the primary is down: promote the most advanced replica, move routing, fence the old primary',
    workflowId: (cluster) => `failover/${cluster}`,
    render: renderFailover,
  },
  vitessDrain: {
    workflowType: 'vitessDrain',
    description: "drain the primary tablet through the Vitess operator's drain annotation (always removed)",
    workflowId: (cluster) => `vitessDrain/${cluster}`,
    render: renderVitessDrain,
  },
  galeraRecover: {
    workflowType: 'galeraRecover',
    description: 'bootstrap a Galera cluster after a full outage from its most advanced node',
    workflowId: (cluster) => `galeraRecover/${cluster}`,
    render: renderGaleraRecover,
  },
  backupDatabase: {
    workflowType: 'backupDatabase',
    description: 'consistent logical backup of the MySQL / MariaDB databases to S3, verified by a scratch restore; skipped while another runbook holds the lock',
    workflowId: (cluster, now) => `backupDatabase/${cluster}/${now.toISOString()}`,
    render: renderBackup,
  },
  restoreDatabase: {
    workflowType: 'restoreDatabase',
    description: 'restore a database from a backup (newest verified, or --input {"backupId": ...} / {"at": ...}) and check its checksums',
    workflowId: (cluster) => `restoreDatabase/${cluster}`,
    render: renderRestore,
  },
  refreshNodeAddresses: {
    workflowType: 'refreshNodeAddresses',
    description: "write the pods' current addresses into the database's own catalog (the pod watcher starts it on a change)",
    workflowId: (cluster) => `refreshNodeAddresses/${cluster}`,
    render: renderRefresh,
  },
  backupEtcd: {
    workflowType: 'backupEtcd',
    description: 'a full etcd snapshot to S3, checked, with a manifest and the profile\'s retention',
    // Several backups a day are normal: the id carries the time, the cluster lock keeps them apart.
    workflowId: (cluster, now) => `backupEtcd/${cluster}/${now.toISOString()}`,
    render: (result) => ({ lines: [(result as BackupEtcdResult).summary], exitCode: 0 }),
  },
};
