// Which backups a retention policy keeps: the newest backup of each of the last `daily` days that
// have one, of each of the last `weekly` ISO weeks, and always the newest verified backup, so a
// run of failed verifications never leaves nothing to restore. Pure: the runbooks decide in
// workflow code and the catalog activities only list and delete.

export interface RetentionPolicy {
  daily: number;
  weekly: number;
}

export interface BackupEntry {
  id: string;
  /** When the backup was taken (ISO 8601). */
  at: string;
  verified: boolean;
}

export interface RetentionDecision {
  keep: { id: string; reasons: string[] }[];
  expire: string[];
}

function day(at: string): string {
  return at.slice(0, 10);
}

/** ISO 8601 week, e.g. 2026-W48: weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeek(at: string): string {
  const date = new Date(`${day(at)}T00:00:00Z`);
  const weekday = (date.getUTCDay() + 6) % 7;
  date.setUTCDate(date.getUTCDate() - weekday + 3);
  // date is now the Thursday of its week, whose year is the ISO year.
  const year = date.getUTCFullYear();
  const week = 1 + Math.floor((date.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

export function applyRetention(entries: readonly BackupEntry[], policy: RetentionPolicy): RetentionDecision {
  const newestFirst = [...entries].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.id < b.id ? 1 : -1));
  const reasons = new Map<string, string[]>();
  const keep = (id: string, reason: string) => reasons.set(id, [...(reasons.get(id) ?? []), reason]);
  const newestPer = (period: (at: string) => string, count: number, label: string) => {
    const seen = new Set<string>();
    for (const entry of newestFirst) {
      const p = period(entry.at);
      if (seen.has(p)) continue;
      if (seen.size >= count) break;
      seen.add(p);
      keep(entry.id, `${label} ${p}`);
    }
  };
  newestPer(day, policy.daily, 'daily');
  newestPer(isoWeek, policy.weekly, 'weekly');
  const newestVerified = newestFirst.find((e) => e.verified);
  if (newestVerified) keep(newestVerified.id, 'newest verified');
  return {
    keep: newestFirst.filter((e) => reasons.has(e.id)).map((e) => ({ id: e.id, reasons: reasons.get(e.id)! })),
    expire: newestFirst.filter((e) => !reasons.has(e.id)).map((e) => e.id),
  };
}
