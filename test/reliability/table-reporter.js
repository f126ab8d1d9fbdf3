// Prints the reliability table (runbook × fault, outcome, final state, side effects) at the end of
// a jest run that included the reliability project, before jest's own summary: the CI output ends
// with that summary. The rows come from test/reliability/harness.ts through DBR_RELIABILITY_REPORT.
const { existsSync, readFileSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const COLUMNS = [
  ['runbook', 'runbook'],
  ['path', 'path'],
  ['fault', 'fault'],
  ['outcome', 'outcome'],
  ['finalState', 'final state'],
  ['sideEffects', 'side effects'],
  ['seconds', 's'],
];

class ReliabilityTableReporter {
  constructor() {
    // One file per jest run, named in the environment the tests inherit (harness.ts reportFile()).
    this.file = path.join(os.tmpdir(), `dbr-reliability-${process.pid}-${Date.now()}.jsonl`);
    process.env.DBR_RELIABILITY_REPORT = this.file;
  }

  onRunComplete() {
    if (!existsSync(this.file)) return;
    const text = readFileSync(this.file, 'utf8');
    rmSync(this.file, { force: true });
    const rows = text.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    if (rows.length === 0) return;
    const cells = rows.map((row) => COLUMNS.map(([key]) => (key === 'seconds' ? row[key].toFixed(1) : String(row[key]))));
    const widths = COLUMNS.map(([, title], i) => Math.max(title.length, ...cells.map((c) => c[i].length)));
    const line = (values) => values.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
    const bad = rows.filter((r) => r.finalState !== 'verified' || r.sideEffects === 'DIFFERENT').length;
    const out = [
      '',
      `Reliability: ${rows.length} run(s), ${bad} with a different final state or side effects`,
      line(COLUMNS.map(([, title]) => title)),
      line(widths.map((w) => '-'.repeat(w))),
      ...cells.map(line),
      '',
    ];
    process.stderr.write(`${out.join('\n')}\n`);
  }
}

module.exports = ReliabilityTableReporter;
