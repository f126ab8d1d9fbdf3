// Notifications from a runbook: each event at most once per run, whatever the retries and
// replays around it, and a notification that fails is recorded in the progress, never fatal.
import { log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { NotificationKind } from '../activities/notify';
import { notification } from './activity-profiles';
import type { RunbookProgress } from './definitions';
import { failureMessage } from './tracker';

const { sendNotification } = proxyActivities<Activities>(notification);

export class Notifier {
  private readonly sent = new Set<NotificationKind>();

  constructor(
    private readonly progress: RunbookProgress,
    /** Profiles without webhooks skip the activity altogether. */
    private readonly enabled: boolean,
  ) {}

  async send(kind: NotificationKind, summary: string): Promise<void> {
    if (!this.enabled || this.sent.has(kind)) return;
    this.sent.add(kind);
    const record = { kind, delivered: [] as string[], failed: [] as { webhook: string; error: string }[] };
    (this.progress.notifications ??= []).push(record);
    try {
      const result = await sendNotification({
        event: { cluster: this.progress.cluster, runbook: this.progress.runbook, workflowId: workflowInfo().workflowId, kind, summary, at: new Date().toISOString() },
      });
      record.delivered = result.delivered;
      record.failed = result.failed;
    } catch (err) {
      record.failed.push({ webhook: 'all', error: failureMessage(err) });
    }
    if (record.failed.length) log.warn('notification failed', { kind, failed: record.failed });
  }
}
