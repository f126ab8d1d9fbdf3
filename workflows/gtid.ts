// MariaDB GTID positions (`@@gtid_current_pos`, `Gtid_IO_Pos`): one "domain-server-seqno" per
// replication domain, the last transaction of that domain. Pure: parsed and compared in workflows
// to decide which node is the most advanced, and unit-tested.

export interface Gtid {
  domain: number;
  server: number;
  seqno: number;
}

const GTID = /^(\d+)-(\d+)-(\d+)$/;

/** "0-1-5,1-2-9" → one GTID per domain, sorted by domain; "" → []. Throws on anything else. */
export function parseGtidPosition(text: string | null | undefined): Gtid[] {
  const trimmed = (text ?? '').trim();
  if (trimmed === '') return [];
  const byDomain = new Map<number, Gtid>();
  for (const part of trimmed.split(',')) {
    const match = GTID.exec(part.trim());
    if (!match) throw new Error(`not a MariaDB GTID position: ${JSON.stringify(text)}`);
    const gtid = { domain: Number(match[1]), server: Number(match[2]), seqno: Number(match[3]) };
    if (byDomain.has(gtid.domain)) throw new Error(`GTID position ${JSON.stringify(text)} names domain ${gtid.domain} twice`);
    byDomain.set(gtid.domain, gtid);
  }
  return [...byDomain.values()].sort((a, b) => a.domain - b.domain);
}

export function formatGtidPosition(position: readonly Gtid[]): string {
  return [...position].sort((a, b) => a.domain - b.domain).map((g) => `${g.domain}-${g.server}-${g.seqno}`).join(',');
}

/** Per domain, the later of the two (what a replica reaches once it has applied everything it received). */
export function mergePositions(a: readonly Gtid[], b: readonly Gtid[]): Gtid[] {
  const byDomain = new Map(a.map((g) => [g.domain, g]));
  for (const g of b) {
    const mine = byDomain.get(g.domain);
    if (!mine || g.seqno > mine.seqno) byDomain.set(g.domain, g);
  }
  return [...byDomain.values()].sort((x, y) => x.domain - y.domain);
}

export type PositionRelation = 'same' | 'ahead' | 'behind' | 'diverged';

export interface PositionComparison {
  /** a relative to b. */
  relation: PositionRelation;
  /** Why, when diverged. */
  detail?: string;
}

/**
 * Compares two positions domain by domain. Under gtid_strict_mode a sequence number is used once
 * per domain in one history, so the same seqno from two different servers means two different
 * transactions: the histories diverged. So does one being ahead in one domain and behind in another.
 * (A position alone cannot show a divergence below the last seqno; replication refuses it later.)
 */
export function comparePositions(a: readonly Gtid[], b: readonly Gtid[]): PositionComparison {
  const domains = [...new Set([...a, ...b].map((g) => g.domain))].sort((x, y) => x - y);
  let ahead = false;
  let behind = false;
  const aheadIn: number[] = [];
  const behindIn: number[] = [];
  for (const domain of domains) {
    const x = a.find((g) => g.domain === domain);
    const y = b.find((g) => g.domain === domain);
    const xs = x?.seqno ?? -1;
    const ys = y?.seqno ?? -1;
    if (x && y && xs === ys && x.server !== y.server) {
      return { relation: 'diverged', detail: `domain ${domain}: transaction ${x.domain}-${x.server}-${x.seqno} against ${y.domain}-${y.server}-${y.seqno}, the same sequence number from different servers` };
    }
    if (xs > ys) {
      ahead = true;
      aheadIn.push(domain);
    } else if (xs < ys) {
      behind = true;
      behindIn.push(domain);
    }
  }
  if (ahead && behind) return { relation: 'diverged', detail: `ahead in domain ${aheadIn.join(', ')} but behind in domain ${behindIn.join(', ')}` };
  return { relation: ahead ? 'ahead' : behind ? 'behind' : 'same' };
}

/** True when `position` contains everything `target` names (same or later in every domain, no divergence). */
export function reaches(position: readonly Gtid[], target: readonly Gtid[]): boolean {
  const { relation } = comparePositions(position, target);
  return relation === 'same' || relation === 'ahead';
}

/** Transactions of `ahead` that `behind` lacks, summed over domains (0 when behind has them all). */
export function transactionsBetween(behind: readonly Gtid[], ahead: readonly Gtid[]): number {
  let count = 0;
  for (const g of ahead) {
    const mine = behind.find((x) => x.domain === g.domain)?.seqno ?? 0;
    if (g.seqno > mine) count += g.seqno - mine;
  }
  return count;
}
