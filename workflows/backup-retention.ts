// Which database backups a retention policy keeps. Pure: the backup activities and the unit tests
// use it, and a listing of the bucket plus a clock are all it needs.

export interface RetentionPolicy {
  /** The newest backup of each of this many most recent days that have one. */
  daily: number;
  /** The newest backup of each of this many most recent ISO weeks that have one. */
  weekly: number;
}

export interface BackupEntry {
  id: string;
  startedAt: string;
  /** The backup was restored and matched its manifest. */
  verified: boolean;
}

export interface RetentionPlan {
  keep: { id: string; why: string[] }[];
  expire: string[];
}

function dayOf(iso: string): string {
  return iso.slice(0, 10);
}

/** ISO 8601 week, e.g. 2026-W47: weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeek(iso: string): string {
  const date = new Date(`${dayOf(iso)}T00:00:00Z`);
  // The Thursday of the same week decides the year the week belongs to.
  date.setUTCDate(date.getUTCDate() + 4 - (date.getUTCDay() || 7));
  const year = date.getUTCFullYear();
  const week = Math.ceil(((date.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/**
 * Keeps the newest backup of each of the `daily` most recent days and of the `weekly` most recent
 * ISO weeks (restic's keep-daily / keep-weekly, in UTC), and always the newest verified backup,
 * whatever the policy says; everything else expires.
 */
export function planRetention(backups: readonly BackupEntry[], policy: RetentionPolicy): RetentionPlan {
  const newestFirst = [...backups].sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id));
  const why = new Map<string, string[]>();
  const mark = (id: string, reason: string) => why.set(id, [...(why.get(id) ?? []), reason]);
  const bucketed = (count: number, bucket: (iso: string) => string, name: string) => {
    const seen = new Set<string>();
    for (const b of newestFirst) {
      if (seen.size >= count) break;
      const key = bucket(b.startedAt);
      if (seen.has(key)) continue;
      seen.add(key);
      mark(b.id, `${name} ${key}`);
    }
  };
  bucketed(policy.daily, dayOf, 'daily');
  bucketed(policy.weekly, isoWeek, 'weekly');
  const newestVerified = newestFirst.find((b) => b.verified);
  if (newestVerified) mark(newestVerified.id, 'newest verified');
  return {
    keep: newestFirst.filter((b) => why.has(b.id)).map((b) => ({ id: b.id, why: why.get(b.id)! })),
    expire: newestFirst.filter((b) => !why.has(b.id)).map((b) => b.id),
  };
}
