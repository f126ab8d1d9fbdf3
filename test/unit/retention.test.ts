import { applyRetention, isoWeek, type BackupEntry } from '../../workflows/retention';

function nightly(days: number, from = '2026-11-23'): BackupEntry[] {
  const start = Date.parse(`${from}T03:00:00Z`);
  return Array.from({ length: days }, (_, i) => ({ id: `b${i}`, at: new Date(start - i * 86_400_000).toISOString(), verified: true }));
}

test('ISO weeks start on Monday and the first week holds the first Thursday', () => {
  expect(isoWeek('2026-11-23T03:00:00Z')).toBe('2026-W48'); // a Monday
  expect(isoWeek('2026-11-22T23:59:59Z')).toBe('2026-W47'); // the Sunday before
  expect(isoWeek('2027-01-01T00:00:00Z')).toBe('2026-W53'); // a Friday: still 2026's last week
  expect(isoWeek('2025-12-29T00:00:00Z')).toBe('2026-W01'); // a Monday: 2026's first week
});

test('7 daily and 4 weekly out of 60 nightly backups keeps 10 and expires the other 50', () => {
  const entries = nightly(60);
  const { keep, expire } = applyRetention(entries, { daily: 7, weekly: 4 });
  // Daily: the last 7 nights (b0..b6). Weekly: the newest of weeks 48 (b0), 47 (b1), 46 (b8), 45 (b15).
  expect(keep.map((k) => k.id)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b8', 'b15']);
  expect(keep.find((k) => k.id === 'b0')!.reasons).toEqual(['daily 2026-11-23', 'weekly 2026-W48', 'newest verified']);
  expect(expire).toHaveLength(60 - 9);
  expect(new Set([...keep.map((k) => k.id), ...expire]).size).toBe(60);
});

test('two backups on one day: only the newer counts for that day', () => {
  const entries: BackupEntry[] = [
    { id: 'morning', at: '2026-11-23T03:00:00Z', verified: true },
    { id: 'evening', at: '2026-11-23T21:00:00Z', verified: true },
  ];
  expect(applyRetention(entries, { daily: 7, weekly: 0 })).toEqual({ keep: [{ id: 'evening', reasons: ['daily 2026-11-23', 'newest verified'] }], expire: ['morning'] });
});

test('the newest verified backup is kept even when the policy would expire it', () => {
  const entries = nightly(10).map((e, i) => ({ ...e, verified: i === 9 }));
  const { keep, expire } = applyRetention(entries, { daily: 3, weekly: 0 });
  expect(keep.map((k) => [k.id, k.reasons.at(-1)])).toEqual([['b0', 'daily 2026-11-23'], ['b1', 'daily 2026-11-22'], ['b2', 'daily 2026-11-21'], ['b9', 'newest verified']]);
  expect(expire).toEqual(['b3', 'b4', 'b5', 'b6', 'b7', 'b8']);
});

test('backups that stopped weeks ago are not all expired: days count where backups exist', () => {
  const entries = nightly(10, '2026-09-01');
  expect(applyRetention(entries, { daily: 7, weekly: 0 }).keep).toHaveLength(7);
  expect(applyRetention([], { daily: 7, weekly: 4 })).toEqual({ keep: [], expire: [] });
});
