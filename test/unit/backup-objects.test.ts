// The pure parts of a backup's objects and exact rows: the event statement made to create a disabled
// event, the comparison of recorded definitions with restored ones, and which ENUM / SET types need
// an exact form. The statements they produce are checked against MariaDB in
// test/integration/backup-fidelity.test.ts.
import { typeMembers } from '../../activities/backup-exact';
import { compareObjects, disabledCreateEvent, type ObjectRecord } from '../../activities/backup-objects';

describe('disabledCreateEvent', () => {
  const create = (status: string, comment = '', name = 'tick') =>
    Buffer.from(`CREATE DEFINER=\`runbook\`@\`%\` EVENT \`${name.replace(/`/g, '``')}\` ON SCHEDULE EVERY 1 HOUR STARTS '2026-01-01 00:00:00' ON COMPLETION NOT PRESERVE ${status}${comment} DO INSERT INTO t VALUES ('ENABLE')`);

  test.each(['ENABLE', 'DISABLE', 'DISABLE ON SLAVE'])('%s becomes DISABLE, and nothing else changes', (status) => {
    expect(disabledCreateEvent(create(status), 'tick').toString()).toBe(create('DISABLE').toString());
  });

  test('a comment or a name that looks like the clause does not move it', () => {
    const comment = " COMMENT 'x ON COMPLETION PRESERVE ENABLE DO y'";
    expect(disabledCreateEvent(create('ENABLE', comment, 'a ON COMPLETION PRESERVE ENABLE`b'), 'a ON COMPLETION PRESERVE ENABLE`b').toString()).toBe(
      create('DISABLE', comment, 'a ON COMPLETION PRESERVE ENABLE`b').toString(),
    );
  });

  test('bytes outside ASCII in the body are kept as they are', () => {
    const latin1Body = Buffer.concat([create('ENABLE'), Buffer.from([0x20, 0xe9, 0xff])]);
    expect(disabledCreateEvent(latin1Body, 'tick').subarray(-3)).toEqual(Buffer.from([0x20, 0xe9, 0xff]));
  });

  test('a statement without the clause is refused rather than loaded enabled', () => {
    expect(() => disabledCreateEvent(Buffer.from('CREATE EVENT `tick` ON SCHEDULE EVERY 1 HOUR DO SELECT 1'), 'tick')).toThrow('no status where the server writes it');
  });
});

describe('compareObjects', () => {
  const routine: ObjectRecord = { kind: 'routine', name: 'function f', sha256: 'a' };
  const event: ObjectRecord = { kind: 'event', name: 'tick', sha256: 'b', status: 'ENABLED', endsAtUtc: null };
  const over: ObjectRecord = { kind: 'event', name: 'once', sha256: 'c', status: 'DISABLED', endsAtUtc: '2026-01-01 00:00:00' };
  const options = { nowUtc: '2026-06-01 00:00:00', enabledAsRecorded: false };

  test('equal definitions, events disabled: no difference; an event whose schedule is over may be gone', () => {
    expect(compareObjects([routine, event, over], [routine, { ...event, status: 'DISABLED' }], options)).toEqual([]);
  });

  test('names what differs, is missing, is extra, or runs', () => {
    expect(
      compareObjects([routine, event, { ...over, endsAtUtc: '2027-01-01 00:00:00' }], [{ ...routine, sha256: 'changed' }, event, { kind: 'view', name: 'v', sha256: 'd' }], options),
    ).toEqual(["routine function f: its definition differs from the backup's", 'event tick: ENABLED, expected DISABLED', 'event once: missing', 'view v: not in the backup']);
  });

  test('restored under its own name, the status must be the recorded one', () => {
    expect(compareObjects([event], [event], { ...options, enabledAsRecorded: true })).toEqual([]);
  });
});

test('typeMembers reads ENUM and SET members as information_schema writes them', () => {
  expect(typeMembers("enum('','a','it''s')")).toEqual(['', 'a', "it's"]);
  expect(typeMembers("set('x y','')")).toEqual(['x y', '']);
  expect(typeMembers("enum('a','b')")).not.toContain('');
});
