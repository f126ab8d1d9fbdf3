import { isoWeek, planRetention } from '../../workflows/backup-retention';
import { verificationDue } from '../../workflows/backupDatabase';

test('ISO weeks: Monday starts the week, the week of the first Thursday is week 1', () => {
  expect(isoWeek('2026-01-05T10:00:00Z')).toBe('2026-W02');
  expect(isoWeek('2026-01-04T23:59:59Z')).toBe('2026-W01');
  expect(isoWeek('2024-12-30T00:00:00Z')).toBe('2025-W01');
  expect(isoWeek('2027-01-01T00:00:00Z')).toBe('2026-W53');
});

test('keeps the newest of each recent day and week, and always the newest verified backup', () => {
  const plan = planRetention(
    [
      { id: 'a', startedAt: '2026-01-05T01:00:00Z', verified: true },
      { id: 'b', startedAt: '2026-01-10T01:00:00Z', verified: false },
      { id: 'c', startedAt: '2026-01-12T01:00:00Z', verified: false },
      { id: 'd', startedAt: '2026-01-12T05:00:00Z', verified: false },
      { id: 'e', startedAt: '2026-01-13T05:00:00Z', verified: false },
    ],
    { daily: 2, weekly: 2 },
  );
  expect(plan.keep).toEqual([
    { id: 'e', why: ['daily 2026-01-13', 'weekly 2026-W03'] },
    { id: 'd', why: ['daily 2026-01-12'] },
    { id: 'b', why: ['weekly 2026-W02'] },
    { id: 'a', why: ['newest verified'] },
  ]);
  expect(plan.expire).toEqual(['c']);
  expect(planRetention([{ id: 'x', startedAt: '2026-01-01T00:00:00Z', verified: true }], { daily: 0, weekly: 0 }).expire).toEqual([]);
});

test('verification is due every Nth run counted from the newest verified backup', () => {
  expect(verificationDue(0, [])).toBe(false);
  expect(verificationDue(1, [{ verified: true }])).toBe(true);
  expect(verificationDue(3, [])).toBe(true);
  expect(verificationDue(3, [{ verified: true }])).toBe(false);
  expect(verificationDue(3, [{ verified: false }, { verified: true }])).toBe(false);
  expect(verificationDue(3, [{ verified: false }, { verified: false }, { verified: true }])).toBe(true);
});
