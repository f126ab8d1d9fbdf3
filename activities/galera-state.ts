// What a stopped Galera node says about its history: grastate.dat, and the position InnoDB holds
// when grastate.dat does not know it (seqno -1 after a crash), from `mariadbd --wsrep-recover`.
// Pure parsing, unit-tested with the output of real nodes.

export interface GrastateFile {
  version: string | null;
  uuid: string;
  seqno: number;
  safeToBootstrap: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class GaleraStateError extends Error {
  override name = 'GaleraStateError';
}

/** grastate.dat: "uuid:", "seqno:", "safe_to_bootstrap:" lines (comments and unknown keys ignored). */
export function parseGrastate(textContent: string): GrastateFile {
  const fields = new Map<string, string>();
  for (const line of textContent.split('\n')) {
    const match = /^\s*([a-z_]+):\s*(\S*)\s*$/.exec(line);
    if (match) fields.set(match[1]!, match[2]!);
  }
  const uuid = fields.get('uuid');
  const seqno = fields.get('seqno');
  if (!uuid || !UUID.test(uuid)) throw new GaleraStateError(`grastate.dat has no valid uuid line (got ${JSON.stringify(uuid ?? null)})`);
  if (seqno === undefined || !/^-?\d+$/.test(seqno)) throw new GaleraStateError(`grastate.dat has no valid seqno line (got ${JSON.stringify(seqno ?? null)})`);
  return {
    version: fields.get('version') ?? null,
    uuid: uuid.toLowerCase(),
    seqno: Number(seqno),
    safeToBootstrap: fields.get('safe_to_bootstrap') === '1',
  };
}

/** The last "WSREP: Recovered position: <uuid>:<seqno>" of a --wsrep-recover log, or null when there is none. */
export function parseRecoveredPosition(logText: string): { uuid: string; seqno: number } | null {
  let found: { uuid: string; seqno: number } | null = null;
  for (const match of logText.matchAll(/WSREP: Recovered position:\s+([0-9a-fA-F-]{36}):(-?\d+)/g)) {
    found = { uuid: match[1]!.toLowerCase(), seqno: Number(match[2]) };
  }
  return found;
}

export const NIL_UUID = '00000000-0000-0000-0000-000000000000';
