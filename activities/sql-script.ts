// SQL migration files: splitting a file into statements the way the mysql client does (comments,
// quoted strings, DELIMITER blocks for procedures and triggers), and reading what a statement
// does to the schema, so that the engine can tell whether a statement is already in effect.
// Pure: no I/O, unit-tested in test/unit/sql-script.test.ts.

export interface SqlStatement {
  /** 1-based position in the file: the index the ledger records. */
  index: number;
  /** Line of the statement's first token. */
  line: number;
  /** The statement without its delimiter and without the comments before it. */
  sql: string;
}

export class SqlScriptError extends Error {
  override name = 'SqlScriptError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const DELIMITER_COMMAND = /[ \t]*delimiter[ \t]+(\S+)[ \t]*(?:\r?\n|$)/iy;

/** Splits a migration file into statements. Throws SqlScriptError naming the line of a problem. */
export function splitSqlScript(text: string): SqlStatement[] {
  const statements: SqlStatement[] = [];
  let delimiter = ';';
  let buffer = '';
  let codeStart = -1;
  let codeLine = 0;
  let line = 1;
  let atLineStart = true;
  let i = 0;

  const markCode = () => {
    if (codeStart < 0) {
      codeStart = buffer.length;
      codeLine = line;
    }
  };
  const flush = () => {
    if (codeStart >= 0) {
      const sql = buffer.slice(codeStart).trim();
      if (sql) statements.push({ index: statements.length + 1, line: codeLine, sql });
    }
    buffer = '';
    codeStart = -1;
  };
  /** Appends text[i, end) and keeps the line count. */
  const take = (end: number) => {
    const chunk = text.slice(i, end);
    for (const ch of chunk) if (ch === '\n') line += 1;
    buffer += chunk;
    atLineStart = chunk.endsWith('\n');
    i = end;
  };

  while (i < text.length) {
    // Like the mysql client: DELIMITER is a command only where a statement would start.
    if (atLineStart && codeStart < 0) {
      DELIMITER_COMMAND.lastIndex = i;
      const command = DELIMITER_COMMAND.exec(text);
      if (command) {
        const next = command[1]!;
        if (/['"`\\]/.test(next) || next.startsWith('#') || next.startsWith('--') || next.startsWith('/*')) {
          throw new SqlScriptError(`DELIMITER ${next}: a delimiter cannot contain quotes or backslashes, or start a comment`, line);
        }
        delimiter = next;
        buffer = '';
        if (command[0].endsWith('\n')) line += 1;
        i += command[0].length;
        atLineStart = true;
        continue;
      }
    }
    const ch = text[i]!;
    if (text.startsWith(delimiter, i)) {
      flush();
      i += delimiter.length;
      atLineStart = false;
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      markCode();
      const startLine = line;
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new SqlScriptError(`unterminated ${ch === '`' ? 'quoted identifier' : 'string'} that starts here`, startLine);
        const c = text[j]!;
        if (c === '\\' && ch !== '`') {
          j += 2;
          continue;
        }
        if (c === ch) {
          // A doubled quote is an escaped quote inside the same literal.
          if (text[j + 1] === ch) {
            j += 2;
            continue;
          }
          break;
        }
        j += 1;
      }
      take(j + 1);
      continue;
    }
    if (ch === '#' || (ch === '-' && text[i + 1] === '-' && (i + 2 >= text.length || /\s/.test(text[i + 2]!)))) {
      const end = text.indexOf('\n', i);
      take(end < 0 ? text.length : end);
      continue;
    }
    if (ch === '/' && text[i + 1] === '*') {
      const startLine = line;
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new SqlScriptError('unterminated /* comment that starts here', startLine);
      // /*! ... */ and /*M! ... */ are executed by the server: they are code, not comments.
      if (text[i + 2] === '!' || text.startsWith('M!', i + 2)) markCode();
      take(end + 2);
      continue;
    }
    if (!/\s/.test(ch)) markCode();
    take(i + 1);
  }
  flush();
  return statements;
}

// ---------------------------------------------------------------------------- tokens

export type Token =
  | { kind: 'word'; text: string; upper: string }
  | { kind: 'quoted'; text: string }
  | { kind: 'string'; text: string }
  | { kind: 'punct'; text: string };

/** The tokens of one statement: comments dropped, the contents of executable comments kept. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (/\s/.test(ch)) {
      i += 1;
    } else if (ch === '#' || (ch === '-' && sql[i + 1] === '-' && (i + 2 >= sql.length || /\s/.test(sql[i + 2]!)))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const executable = /^\/\*M?!\d*/.exec(sql.slice(i));
      if (executable) {
        i += executable[0].length;
      } else {
        const end = sql.indexOf('*/', i + 2);
        i = end < 0 ? sql.length : end + 2;
      }
    } else if (ch === '*' && sql[i + 1] === '/') {
      // The end of an executable comment whose contents were read as code.
      i += 2;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1;
      let value = '';
      while (j < sql.length) {
        const c = sql[j]!;
        if (c === '\\' && ch !== '`') {
          value += sql[j + 1] ?? '';
          j += 2;
          continue;
        }
        if (c === ch) {
          if (sql[j + 1] === ch) {
            value += ch;
            j += 2;
            continue;
          }
          break;
        }
        value += c;
        j += 1;
      }
      tokens.push(ch === '`' ? { kind: 'quoted', text: value } : { kind: 'string', text: value });
      i = j + 1;
    } else if (/[A-Za-z0-9_$\u0080-\uffff]/.test(ch)) {
      const match = /^[A-Za-z0-9_$\u0080-\uffff]+/.exec(sql.slice(i))![0];
      tokens.push({ kind: 'word', text: match, upper: match.toUpperCase() });
      i += match.length;
    } else {
      tokens.push({ kind: 'punct', text: ch });
      i += 1;
    }
  }
  return tokens;
}

// ---------------------------------------------------------------------------- what a statement does

export type SchemaObject = 'table' | 'view' | 'column' | 'index' | 'constraint' | 'procedure' | 'function' | 'trigger';

/** A fact about the schema that holds once the statement has run. */
export interface Effect {
  object: SchemaObject;
  name: string;
  /** The table a column, index, constraint or trigger belongs to. */
  table?: string;
  exists: boolean;
}

/**
 * ddl: commits implicitly, so it cannot share a transaction with its ledger entry: recognised by its effects.
 * dml: runs in one transaction with its ledger entry, so it is applied exactly once.
 * session: changes session settings (SET): replayed when a run resumes later in the same file.
 * read: has no effect on the schema or the data (SELECT, DO): harmless to run again.
 * other: anything else (CALL, GRANT, ...): run once, and reported as uncertain when a worker died while it ran.
 */
export type StatementKind = 'ddl' | 'dml' | 'session' | 'read' | 'other';

export interface StatementClass {
  kind: StatementKind;
  /** What the statement is, for reports: "CREATE TABLE", "ALTER TABLE", "INSERT", ... */
  verb: string;
  /** The table the statement changes, whose definition tells after a crash whether it ran. */
  table?: string;
  /** Facts that all hold once the statement has run; empty when they cannot be checked. */
  effects: Effect[];
  /** Privileges the statement needs on the target database. */
  privileges: string[];
  /** Why the engine refuses to run the statement, if it does. */
  refused?: string;
}

const TRANSACTION_CONTROL = new Set(['BEGIN', 'START', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'LOCK', 'UNLOCK', 'XA']);
const ALTER_OPTIONS = new Set(['ALGORITHM', 'LOCK', 'WAIT', 'NOWAIT']);

class Cursor {
  pos = 0;
  constructor(readonly tokens: Token[]) {}

  peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  isWord(...words: string[]): boolean {
    const t = this.peek();
    return t?.kind === 'word' && words.includes(t.upper);
  }

  isPunct(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t?.kind === 'punct' && t.text === text;
  }

  /** Consumes the words if they come next, in order. */
  accept(...words: string[]): boolean {
    for (let k = 0; k < words.length; k += 1) {
      const t = this.peek(k);
      if (t?.kind !== 'word' || t.upper !== words[k]) return false;
    }
    this.pos += words.length;
    return true;
  }

  /** Consumes one of the words if it comes next. */
  acceptOne(...words: string[]): boolean {
    if (!this.isWord(...words)) return false;
    this.pos += 1;
    return true;
  }

  /** An identifier (a word or a `quoted` name); undefined when the next token is not one. */
  name(): string | undefined {
    const t = this.peek();
    if (t?.kind === 'word' || t?.kind === 'quoted') {
      this.pos += 1;
      return t.text;
    }
    return undefined;
  }

  done(): boolean {
    return this.pos >= this.tokens.length;
  }
}

class Refusal extends Error {}

/** A table name that must not name another database: migrations run inside the target database. */
function tableName(c: Cursor, what: string): string {
  const name = c.name();
  if (name === undefined) throw new Refusal(`cannot read the ${what} name`);
  if (c.isPunct('.')) {
    throw new Refusal(`${what} ${name}.${c.peek(1)?.text ?? ''} names a database: migrations run inside the target database, use unqualified names`);
  }
  return name;
}

/** Splits tokens on the commas outside parentheses. */
function topLevelClauses(tokens: Token[]): Token[][] {
  const clauses: Token[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (t.kind === 'punct' && t.text === '(') depth += 1;
    if (t.kind === 'punct' && t.text === ')') depth -= 1;
    if (depth === 0 && t.kind === 'punct' && t.text === ',') clauses.push([]);
    else clauses.at(-1)!.push(t);
  }
  return clauses.filter((clause) => clause.length > 0);
}

/** The effects of one ALTER TABLE clause; null when the clause cannot be checked; [] when neutral. */
function alterClauseEffects(tokens: Token[], table: string): Effect[] | null {
  const c = new Cursor(tokens);
  const column = (name: string, exists: boolean): Effect => ({ object: 'column', name, table, exists });
  const index = (name: string, exists: boolean): Effect => ({ object: 'index', name, table, exists });
  const constraint = (name: string, exists: boolean): Effect => ({ object: 'constraint', name, table, exists });
  const first = c.peek();
  if (first?.kind !== 'word') return null;
  if (ALTER_OPTIONS.has(first.upper)) return [];

  if (c.accept('ADD')) {
    if (c.accept('COLUMN') || !c.isWord('INDEX', 'KEY', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'PRIMARY', 'CONSTRAINT', 'FOREIGN', 'CHECK', 'PARTITION', 'PERIOD', 'SYSTEM')) {
      c.accept('IF', 'NOT', 'EXISTS');
      if (c.isPunct('(')) {
        // ADD COLUMN (a INT, b INT): every column of the list.
        const inner = tokens.slice(c.pos + 1, tokens.length - 1);
        const names = topLevelClauses(inner).map((clause) => new Cursor(clause).name());
        return names.every((n) => n !== undefined) ? names.map((n) => column(n, true)) : null;
      }
      const name = c.name();
      return name === undefined ? null : [column(name, true)];
    }
    if (c.accept('PRIMARY', 'KEY')) return [index('PRIMARY', true)];
    if (c.accept('CONSTRAINT')) {
      c.accept('IF', 'NOT', 'EXISTS');
      const name = c.isWord('PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK') ? undefined : c.name();
      if (c.accept('PRIMARY', 'KEY')) return [index('PRIMARY', true)];
      if (name === undefined) return null;
      if (c.accept('UNIQUE')) return [index(name, true)];
      if (c.isWord('FOREIGN', 'CHECK')) return [constraint(name, true)];
      return null;
    }
    if (c.acceptOne('UNIQUE', 'FULLTEXT', 'SPATIAL') || c.isWord('INDEX', 'KEY')) {
      c.acceptOne('INDEX', 'KEY');
      c.accept('IF', 'NOT', 'EXISTS');
      if (c.isPunct('(') || c.isWord('USING')) return null;
      const name = c.name();
      return name === undefined ? null : [index(name, true)];
    }
    return null;
  }

  if (c.accept('DROP')) {
    if (c.accept('PRIMARY', 'KEY')) return [index('PRIMARY', false)];
    if (c.acceptOne('INDEX', 'KEY')) {
      c.accept('IF', 'EXISTS');
      const name = c.name();
      return name === undefined ? null : [index(name, false)];
    }
    if (c.accept('FOREIGN', 'KEY') || c.accept('CONSTRAINT') || c.accept('CHECK')) {
      c.accept('IF', 'EXISTS');
      const name = c.name();
      return name === undefined ? null : [constraint(name, false)];
    }
    if (c.isWord('PARTITION', 'PERIOD', 'SYSTEM')) return null;
    c.accept('COLUMN');
    c.accept('IF', 'EXISTS');
    const name = c.name();
    return name === undefined ? null : [column(name, false)];
  }

  if (c.accept('RENAME')) {
    if (c.accept('COLUMN')) {
      const from = c.name();
      const to = c.accept('TO') ? c.name() : undefined;
      return from && to ? [column(from, false), column(to, true)] : null;
    }
    if (c.acceptOne('INDEX', 'KEY')) {
      const from = c.name();
      const to = c.accept('TO') ? c.name() : undefined;
      return from && to ? [index(from, false), index(to, true)] : null;
    }
    // RENAME TO is handled by the caller: it changes which table the other clauses name.
    return null;
  }

  if (c.accept('CHANGE')) {
    c.accept('COLUMN');
    c.accept('IF', 'EXISTS');
    const from = c.name();
    const to = c.name();
    if (!from || !to || from.toLowerCase() === to.toLowerCase()) return null;
    return [column(from, false), column(to, true)];
  }
  return null;
}

function skipDefinerAndOptions(c: Cursor, until: string[]): void {
  while (!c.done() && !c.isWord(...until)) c.pos += 1;
}

function classifyAlterTable(c: Cursor): StatementClass {
  c.accept('ONLINE');
  c.accept('IGNORE');
  c.accept('TABLE');
  c.accept('IF', 'EXISTS');
  const table = tableName(c, 'table');
  const privileges = ['ALTER', 'CREATE', 'INSERT'];
  const clauses = topLevelClauses(c.tokens.slice(c.pos));
  let renamedTo: string | undefined;
  const effects: Effect[] = [];
  let checkable = clauses.length > 0;
  for (const clause of clauses) {
    const k = new Cursor(clause);
    if (k.accept('RENAME') && !k.isWord('COLUMN', 'INDEX', 'KEY')) {
      if (!k.acceptOne('TO', 'AS') && k.isPunct('=')) k.pos += 1;
      renamedTo = tableName(k, 'new table');
      privileges.push('DROP');
      continue;
    }
    const clauseEffects = alterClauseEffects(clause, table);
    if (clauseEffects === null) checkable = false;
    else effects.push(...clauseEffects);
  }
  if (renamedTo !== undefined) {
    // MySQL renames after the other changes: they are then found on the new name.
    for (const e of effects) e.table = renamedTo;
    effects.push({ object: 'table', name: table, exists: false }, { object: 'table', name: renamedTo, exists: true });
  }
  return { kind: 'ddl', verb: 'ALTER TABLE', table, effects: checkable ? effects : [], privileges };
}

function classifyCreate(c: Cursor): StatementClass {
  const orReplace = c.accept('OR', 'REPLACE');
  const temporary = c.accept('TEMPORARY');
  if (c.accept('TABLE')) {
    c.accept('IF', 'NOT', 'EXISTS');
    const table = tableName(c, 'table');
    if (temporary) return { kind: 'session', verb: 'CREATE TEMPORARY TABLE', effects: [], privileges: ['CREATE TEMPORARY TABLES'] };
    return {
      kind: 'ddl',
      verb: 'CREATE TABLE',
      table,
      effects: orReplace ? [] : [{ object: 'table', name: table, exists: true }],
      privileges: orReplace ? ['CREATE', 'DROP'] : ['CREATE'],
    };
  }
  if (c.accept('DATABASE') || c.accept('SCHEMA')) throw new Refusal('CREATE DATABASE: migrations run inside the target database, which the profile names');
  if (c.isWord('UNIQUE', 'FULLTEXT', 'SPATIAL', 'INDEX')) {
    c.acceptOne('UNIQUE', 'FULLTEXT', 'SPATIAL');
    c.accept('INDEX');
    c.accept('IF', 'NOT', 'EXISTS');
    const name = c.name();
    skipDefinerAndOptions(c, ['ON']);
    c.accept('ON');
    const table = tableName(c, 'table');
    return {
      kind: 'ddl',
      verb: 'CREATE INDEX',
      table,
      effects: orReplace || name === undefined ? [] : [{ object: 'index', name, table, exists: true }],
      privileges: ['INDEX'],
    };
  }
  skipDefinerAndOptions(c, ['VIEW', 'PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT', 'SEQUENCE', 'USER', 'ROLE', 'SERVER']);
  const object = c.peek()?.kind === 'word' ? (c.peek() as { upper: string }).upper : '';
  if (object === 'VIEW' || object === 'PROCEDURE' || object === 'FUNCTION' || object === 'TRIGGER') {
    c.pos += 1;
    c.accept('IF', 'NOT', 'EXISTS');
    const name = tableName(c, object.toLowerCase());
    const privileges = object === 'VIEW' ? ['CREATE VIEW'] : object === 'TRIGGER' ? ['TRIGGER'] : ['CREATE ROUTINE'];
    if (orReplace) privileges.push(object === 'VIEW' ? 'DROP' : object === 'TRIGGER' ? 'TRIGGER' : 'ALTER ROUTINE');
    let table: string | undefined;
    if (object === 'TRIGGER') {
      skipDefinerAndOptions(c, ['ON']);
      c.accept('ON');
      table = tableName(c, 'table');
    }
    const kind = object.toLowerCase() as SchemaObject;
    return {
      kind: 'ddl',
      verb: `CREATE ${object}`,
      effects: orReplace ? [] : [{ object: kind, name, ...(table ? { table } : {}), exists: true }],
      privileges,
    };
  }
  return { kind: 'other', verb: `CREATE ${object}`.trim(), effects: [], privileges: [] };
}

function classifyDrop(c: Cursor): StatementClass {
  const temporary = c.accept('TEMPORARY');
  if (c.accept('DATABASE') || c.accept('SCHEMA')) throw new Refusal('DROP DATABASE: migrations run inside the target database');
  if (c.accept('TABLE') || c.accept('VIEW')) {
    const object = c.tokens[c.pos - 1]!.text.toUpperCase() === 'VIEW' ? 'view' : 'table';
    c.accept('IF', 'EXISTS');
    const names: string[] = [];
    do names.push(tableName(c, object));
    while (c.isPunct(',') && (c.pos += 1));
    if (temporary) return { kind: 'session', verb: 'DROP TEMPORARY TABLE', effects: [], privileges: [] };
    return {
      kind: 'ddl',
      verb: `DROP ${object.toUpperCase()}`,
      table: object === 'table' && names.length === 1 ? names[0] : undefined,
      effects: names.map((name) => ({ object, name, exists: false })),
      privileges: ['DROP'],
    };
  }
  if (c.accept('INDEX')) {
    c.accept('IF', 'EXISTS');
    const name = c.name();
    c.accept('ON');
    const table = tableName(c, 'table');
    return { kind: 'ddl', verb: 'DROP INDEX', table, effects: name ? [{ object: 'index', name, table, exists: false }] : [], privileges: ['INDEX'] };
  }
  for (const object of ['PROCEDURE', 'FUNCTION', 'TRIGGER'] as const) {
    if (c.accept(object)) {
      c.accept('IF', 'EXISTS');
      const name = tableName(c, object.toLowerCase());
      const kind = object.toLowerCase() as SchemaObject;
      return { kind: 'ddl', verb: `DROP ${object}`, effects: [{ object: kind, name, exists: false }], privileges: [object === 'TRIGGER' ? 'TRIGGER' : 'ALTER ROUTINE'] };
    }
  }
  return { kind: 'other', verb: 'DROP', effects: [], privileges: [] };
}

function classifyTokens(tokens: Token[]): StatementClass {
  const c = new Cursor(tokens);
  const first = c.peek();
  if (first?.kind !== 'word') return { kind: 'other', verb: first?.text ?? '(empty)', effects: [], privileges: [] };
  const verb = first.upper;
  c.pos += 1;
  switch (verb) {
    case 'CREATE':
      return classifyCreate(c);
    case 'ALTER':
      if (c.isWord('ONLINE', 'IGNORE', 'TABLE')) return classifyAlterTable(c);
      if (c.isWord('DATABASE', 'SCHEMA')) throw new Refusal('ALTER DATABASE: a migration changes tables, not the database it runs in');
      return { kind: 'ddl', verb: `ALTER ${c.peek()?.text.toUpperCase() ?? ''}`.trim(), effects: [], privileges: [] };
    case 'DROP':
      return classifyDrop(c);
    case 'RENAME': {
      c.acceptOne('TABLE', 'TABLES');
      const effects: Effect[] = [];
      for (const clause of topLevelClauses(c.tokens.slice(c.pos))) {
        const k = new Cursor(clause);
        const from = tableName(k, 'table');
        k.accept('TO');
        const to = tableName(k, 'new table');
        effects.push({ object: 'table', name: from, exists: false }, { object: 'table', name: to, exists: true });
      }
      return { kind: 'ddl', verb: 'RENAME TABLE', effects, privileges: ['ALTER', 'DROP', 'CREATE', 'INSERT'] };
    }
    case 'TRUNCATE':
      c.accept('TABLE');
      return { kind: 'ddl', verb: 'TRUNCATE TABLE', table: tableName(c, 'table'), effects: [], privileges: ['DROP'] };
    case 'INSERT':
    case 'REPLACE':
      return { kind: 'dml', verb, effects: [], privileges: verb === 'REPLACE' ? ['INSERT', 'DELETE'] : ['INSERT'] };
    case 'UPDATE':
      return { kind: 'dml', verb, effects: [], privileges: ['UPDATE', 'SELECT'] };
    case 'DELETE':
      return { kind: 'dml', verb, effects: [], privileges: ['DELETE', 'SELECT'] };
    case 'SET': {
      const scope = c.peek();
      const global =
        (scope?.kind === 'word' && ['GLOBAL', 'PERSIST', 'PERSIST_ONLY'].includes(scope.upper)) ||
        (c.isPunct('@') && c.isPunct('@', 1) && /^(global|persist)/i.test(c.peek(2)?.text ?? ''));
      if (global) throw new Refusal('SET GLOBAL: a migration must not change server-wide settings');
      return { kind: 'session', verb: 'SET', effects: [], privileges: [] };
    }
    case 'SELECT':
    case 'DO':
    case 'SHOW':
    case 'DESCRIBE':
    case 'DESC':
    case 'EXPLAIN':
      return { kind: 'read', verb, effects: [], privileges: verb === 'DO' ? [] : ['SELECT'] };
    case 'USE':
      throw new Refusal('USE: migrations run inside the target database, which the profile names');
    default:
      if (TRANSACTION_CONTROL.has(verb)) {
        throw new Refusal(`${verb}: the engine commits each statement together with its ledger entry; remove transaction and lock statements`);
      }
      return { kind: 'other', verb, effects: [], privileges: [] };
  }
}

/** What a statement does, for the engine: how to run it, how to tell whether it already ran, what it needs. */
export function classifyStatement(sql: string): StatementClass {
  try {
    return classifyTokens(tokenize(sql));
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    return { kind: 'other', verb: 'refused', effects: [], privileges: [], refused: err.message };
  }
}

export function describeEffect(effect: Effect): string {
  const on = effect.table && effect.object !== 'table' ? ` on ${effect.table}` : '';
  return `${effect.object} ${effect.name}${on} ${effect.exists ? 'exists' : 'is absent'}`;
}

/** The first words of a statement, on one line, for reports. */
export function statementPreview(sql: string, length = 100): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > length ? `${flat.slice(0, length - 1)}…` : flat;
}
