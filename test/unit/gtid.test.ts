import { comparePositions, formatGtidPosition, mergePositions, parseGtidPosition, reaches, transactionsBetween } from '../../workflows/gtid';

const p = parseGtidPosition;

test('positions parse to one GTID per domain, sorted, and format back', () => {
  expect(p('')).toEqual([]);
  expect(p(null)).toEqual([]);
  expect(p('1-2-9,0-1-5')).toEqual([
    { domain: 0, server: 1, seqno: 5 },
    { domain: 1, server: 2, seqno: 9 },
  ]);
  expect(formatGtidPosition(p('1-2-9, 0-1-5'))).toBe('0-1-5,1-2-9');
  expect(() => p('0-1')).toThrow('not a MariaDB GTID position: "0-1"');
  expect(() => p('0-1-5,0-2-6')).toThrow('names domain 0 twice');
});

test.each([
  ['0-1-5', '0-1-5', 'same'],
  ['0-1-6', '0-1-5', 'ahead'],
  ['0-2-6', '0-1-5', 'ahead'],
  ['0-1-4', '0-1-5', 'behind'],
  ['0-1-5,1-3-2', '0-1-5', 'ahead'],
  ['', '0-1-1', 'behind'],
  ['0-2-5', '0-3-5', 'diverged'],
  ['0-1-6,1-1-2', '0-1-5,1-1-3', 'diverged'],
])('%s against %s is %s', (a, b, relation) => {
  expect(comparePositions(p(a), p(b)).relation).toBe(relation);
});

test('a divergence says where', () => {
  expect(comparePositions(p('0-2-5'), p('0-3-5')).detail).toBe('domain 0: transaction 0-2-5 against 0-3-5, the same sequence number from different servers');
  expect(comparePositions(p('0-1-6,1-1-2'), p('0-1-5,1-1-3')).detail).toBe('ahead in domain 0 but behind in domain 1');
});

test('merging takes the later GTID per domain; reaches and the transaction count follow the comparison', () => {
  expect(formatGtidPosition(mergePositions(p('0-1-5,1-1-2'), p('0-1-7')))).toBe('0-1-7,1-1-2');
  expect(reaches(p('0-1-7'), p('0-1-7'))).toBe(true);
  expect(reaches(p('0-1-8'), p('0-1-7'))).toBe(true);
  expect(reaches(p('0-1-6'), p('0-1-7'))).toBe(false);
  expect(reaches(p('0-2-7'), p('0-1-7'))).toBe(false);
  expect(transactionsBetween(p('0-1-5'), p('0-1-9,1-1-2'))).toBe(6);
  expect(transactionsBetween(p('0-1-9'), p('0-1-5'))).toBe(0);
});
