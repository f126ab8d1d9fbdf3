// Notifications to the webhooks of a cluster's profile: a Slack-compatible one ({text}) and a
// generic JSON one (the event itself). A webhook that fails is reported back, never thrown: a
// notification must not fail the runbook it reports on.
import { log } from '@temporalio/activity';
import type { ProfileSource } from './cluster';
import type { SecretRef } from './profile';
import type { SecretResolver } from './secrets';

/** 'held too long': sent by the cluster lock about its holder, once, when it passes lock.maxHoldSeconds. */
export type NotificationKind = 'started' | 'succeeded' | 'failed' | 'rolled back' | 'cancelled' | 'skipped' | 'held too long';

export interface NotificationEvent {
  cluster: string;
  runbook: string;
  workflowId: string;
  kind: NotificationKind;
  summary: string;
  at: string;
}

export interface NotificationResult {
  /** The webhooks that took the event: "slack", "json". */
  delivered: string[];
  /** The webhooks that did not, with why (the URL itself is a secret and never shown). */
  failed: { webhook: string; error: string }[];
}

const ATTEMPTS = 3;
const TIMEOUT_MS = 10_000;

const EMOJI: Record<NotificationKind, string> = {
  started: ':arrow_forward:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  'rolled back': ':leftwards_arrow_with_hook:',
  cancelled: ':no_entry_sign:',
  skipped: ':fast_forward:',
  'held too long': ':hourglass:',
};

export function slackText(event: NotificationEvent): string {
  return `${EMOJI[event.kind]} *${event.runbook}* on \`${event.cluster}\` ${event.kind}: ${event.summary} (workflow ${event.workflowId})`;
}

export function createNotifyActivities(deps: { profiles: ProfileSource; secrets: SecretResolver; fetch?: typeof fetch }) {
  const post = deps.fetch ?? fetch;

  async function deliver(url: string, body: unknown, idempotencyKey: string): Promise<void> {
    let lastError = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt += 1) {
      try {
        const response = await post(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        // Drain the body so the connection goes back to the pool.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
        // A 4xx other than throttling will not change on a retry.
        if (response.status < 500 && response.status !== 429) break;
      } catch (err) {
        lastError = (err as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000}s` : (err as Error).message;
      }
      if (attempt < ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
    throw new Error(lastError);
  }

  return {
    async sendNotification({ event }: { event: NotificationEvent }): Promise<NotificationResult> {
      const profile = deps.profiles.get(event.cluster);
      const result: NotificationResult = { delivered: [], failed: [] };
      const webhooks: [string, SecretRef | string | undefined, unknown][] = [
        ['slack', profile.notify?.slackWebhookUrl, { text: slackText(event) }],
        ['json', profile.notify?.jsonWebhookUrl, event],
      ];
      // Receivers that deduplicate see the same key when a crashed attempt is sent again.
      const idempotencyKey = `${event.workflowId}/${event.kind}`;
      for (const [webhook, ref, body] of webhooks) {
        if (!ref) continue;
        try {
          const url = typeof ref === 'string' ? ref : await deps.secrets.resolve(ref, { cluster: event.cluster, field: `notify.${webhook}WebhookUrl`, namespace: profile.namespace });
          await deliver(url, body, idempotencyKey);
          result.delivered.push(webhook);
        } catch (err) {
          result.failed.push({ webhook, error: (err as Error).message });
          log.warn('notification not delivered', { webhook, kind: event.kind, error: (err as Error).message });
        }
      }
      return result;
    },
  };
}
