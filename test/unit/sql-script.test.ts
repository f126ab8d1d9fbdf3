import { classifyStatement, splitSqlScript, SqlScriptError, tokenize } from '../../activities/sql-script';

describe('splitSqlScript', () => {
  test('splits on semicolons outside strings, identifiers and comments, and numbers statements from 1 with their line', () => {
    const script = [
      '-- a header comment; with a semicolon',
      '# another; comment',
      'CREATE TABLE a (x INT COMMENT \'it\'\'s; fine\', y VARCHAR(10) DEFAULT "a;b");',
      '/* block; comment */ INSERT INTO a VALUES (1, \'back\\\\slash\\\'; quote\');',
      'INSERT INTO `we;ird``name` VALUES (2);   -- trailing; comment',
      '',
      'SELECT 1',
    ].join('\n');
    const statements = splitSqlScript(script);
    expect(statements.map((s) => [s.index, s.line])).toEqual([
      [1, 3],
      [2, 4],
      [3, 5],
      [4, 7],
    ]);
    expect(statements[0]!.sql).toBe('CREATE TABLE a (x INT COMMENT \'it\'\'s; fine\', y VARCHAR(10) DEFAULT "a;b")');
    expect(statements[1]!.sql).toBe("INSERT INTO a VALUES (1, 'back\\\\slash\\'; quote')");
    expect(statements[2]!.sql).toBe('INSERT INTO `we;ird``name` VALUES (2)');
    expect(statements[3]!.sql).toBe('SELECT 1');
  });

  test('"--" starts a comment only when whitespace follows, as in MySQL', () => {
    expect(splitSqlScript('UPDATE t SET x = x--1;\nSELECT 2;').map((s) => s.sql)).toEqual(['UPDATE t SET x = x--1', 'SELECT 2']);
  });

  test('DELIMITER blocks keep procedure and trigger bodies whole', () => {
    const script = [
      'CREATE TABLE audit (id INT);',
      'DELIMITER $$',
      'CREATE PROCEDURE bump()',
      'BEGIN',
      '  INSERT INTO audit VALUES (1);',
      '  UPDATE audit SET id = id + 1;',
      'END$$',
      'CREATE TRIGGER t_ins BEFORE INSERT ON audit FOR EACH ROW',
      'BEGIN',
      '  SET NEW.id = NEW.id + 0;',
      'END $$',
      'delimiter ;',
      'CALL bump();',
    ].join('\n');
    const statements = splitSqlScript(script);
    expect(statements).toHaveLength(4);
    expect(statements[1]!.sql).toBe('CREATE PROCEDURE bump()\nBEGIN\n  INSERT INTO audit VALUES (1);\n  UPDATE audit SET id = id + 1;\nEND');
    expect(statements[1]!.line).toBe(3);
    expect(statements[2]!.sql).toMatch(/^CREATE TRIGGER t_ins .*SET NEW.id = NEW.id \+ 0;\nEND$/s);
    expect(statements[3]).toMatchObject({ index: 4, line: 13, sql: 'CALL bump()' });
  });

  test('a column named "delimiter" inside a statement is not the DELIMITER command', () => {
    const statements = splitSqlScript('CREATE TABLE t (\n  delimiter VARCHAR(1)\n);\n');
    expect(statements).toEqual([{ index: 1, line: 1, sql: 'CREATE TABLE t (\n  delimiter VARCHAR(1)\n)' }]);
  });

  test('executable comments are statements; a file of comments has none', () => {
    expect(splitSqlScript('/*!40101 SET NAMES utf8mb4 */;\n').map((s) => s.sql)).toEqual(['/*!40101 SET NAMES utf8mb4 */']);
    expect(splitSqlScript('-- nothing here\n/* nor here */\n;;\n')).toEqual([]);
  });

  test('an unterminated string or comment names the line it starts on', () => {
    expect(() => splitSqlScript("SELECT 1;\nINSERT INTO t VALUES ('oops);\nSELECT 2;")).toThrow(new SqlScriptError('unterminated string that starts here', 2));
    expect(() => splitSqlScript('SELECT 1;\n\n/* never closed')).toThrow('line 3: unterminated /* comment that starts here');
  });
});

describe('tokenize', () => {
  test('drops comments, keeps executable comment contents, unquotes names and strings', () => {
    expect(tokenize("/*!50001 CREATE */ `my``t` -- x\n 'a''b' # y\n").map((t) => `${t.kind}:${t.text}`)).toEqual(['word:CREATE', 'quoted:my`t', "string:a'b"]);
  });
});

describe('classifyStatement', () => {
  test('CREATE TABLE is DDL in effect once the table exists', () => {
    expect(classifyStatement('CREATE TABLE IF NOT EXISTS `cluster_membership` (x INT)')).toEqual({
      kind: 'ddl',
      verb: 'CREATE TABLE',
      table: 'cluster_membership',
      effects: [{ object: 'table', name: 'cluster_membership', exists: true }],
      privileges: ['CREATE'],
    });
    expect(classifyStatement('CREATE OR REPLACE TABLE t (x INT)').effects).toEqual([]);
  });

  test('ALTER TABLE clauses: columns, indexes, constraints, renames; options are neutral', () => {
    const c = classifyStatement(
      'ALTER TABLE executions ADD COLUMN IF NOT EXISTS db_record_version BIGINT NOT NULL DEFAULT 0, ADD INDEX by_version (db_record_version), ' +
        'DROP COLUMN legacy, DROP KEY old_idx, ADD CONSTRAINT fk_ns FOREIGN KEY (ns) REFERENCES namespaces (id), RENAME COLUMN a TO b, ALGORITHM=INPLACE, LOCK=NONE',
    );
    expect(c.kind).toBe('ddl');
    expect(c.table).toBe('executions');
    expect(c.effects).toEqual([
      { object: 'column', name: 'db_record_version', table: 'executions', exists: true },
      { object: 'index', name: 'by_version', table: 'executions', exists: true },
      { object: 'column', name: 'legacy', table: 'executions', exists: false },
      { object: 'index', name: 'old_idx', table: 'executions', exists: false },
      { object: 'constraint', name: 'fk_ns', table: 'executions', exists: true },
      { object: 'column', name: 'a', table: 'executions', exists: false },
      { object: 'column', name: 'b', table: 'executions', exists: true },
    ]);
  });

  test('ADD COLUMN (a, b), ADD UNIQUE KEY, ADD PRIMARY KEY and CHANGE with a new name', () => {
    expect(classifyStatement('ALTER TABLE t ADD (a INT, `b` INT)').effects.map((e) => e.name)).toEqual(['a', 'b']);
    expect(classifyStatement('ALTER TABLE t ADD UNIQUE KEY uk_name (name)').effects).toEqual([{ object: 'index', name: 'uk_name', table: 't', exists: true }]);
    expect(classifyStatement('ALTER TABLE t ADD PRIMARY KEY (id)').effects).toEqual([{ object: 'index', name: 'PRIMARY', table: 't', exists: true }]);
    expect(classifyStatement('ALTER TABLE t CHANGE COLUMN old_name new_name INT').effects).toEqual([
      { object: 'column', name: 'old_name', table: 't', exists: false },
      { object: 'column', name: 'new_name', table: 't', exists: true },
    ]);
  });

  test('a clause whose effect cannot be read makes the whole ALTER uncheckable, never half-checked', () => {
    expect(classifyStatement('ALTER TABLE t ADD COLUMN c INT, MODIFY d BIGINT').effects).toEqual([]);
    expect(classifyStatement('ALTER TABLE t ADD INDEX (a)').effects).toEqual([]);
    expect(classifyStatement('ALTER TABLE t CHANGE c c BIGINT').effects).toEqual([]);
    expect(classifyStatement('ALTER TABLE t ENGINE=InnoDB').table).toBe('t');
  });

  test('ALTER TABLE ... RENAME TO moves the other effects to the new name', () => {
    expect(classifyStatement('ALTER TABLE a ADD COLUMN c INT, RENAME TO b').effects).toEqual([
      { object: 'column', name: 'c', table: 'b', exists: true },
      { object: 'table', name: 'a', exists: false },
      { object: 'table', name: 'b', exists: true },
    ]);
  });

  test('indexes, views, routines and triggers, created and dropped', () => {
    expect(classifyStatement('CREATE UNIQUE INDEX ix ON t (a)').effects).toEqual([{ object: 'index', name: 'ix', table: 't', exists: true }]);
    expect(classifyStatement('DROP INDEX ix ON t').effects).toEqual([{ object: 'index', name: 'ix', table: 't', exists: false }]);
    expect(classifyStatement('CREATE ALGORITHM=MERGE DEFINER=`root`@`%` SQL SECURITY INVOKER VIEW v AS SELECT 1').effects).toEqual([{ object: 'view', name: 'v', exists: true }]);
    expect(classifyStatement('CREATE DEFINER=CURRENT_USER PROCEDURE p() BEGIN SELECT 1; END').effects).toEqual([{ object: 'procedure', name: 'p', exists: true }]);
    expect(classifyStatement('CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1').effects).toEqual([{ object: 'trigger', name: 'tr', table: 't', exists: true }]);
    expect(classifyStatement('DROP TABLE IF EXISTS a, `b`').effects).toEqual([
      { object: 'table', name: 'a', exists: false },
      { object: 'table', name: 'b', exists: false },
    ]);
    expect(classifyStatement('DROP PROCEDURE IF EXISTS p').effects).toEqual([{ object: 'procedure', name: 'p', exists: false }]);
    expect(classifyStatement('RENAME TABLE a TO b, c TO d').effects).toHaveLength(4);
  });

  test('DML runs in a transaction with its ledger entry; SET replays; SELECT and DO read', () => {
    expect(classifyStatement('INSERT INTO namespace_metadata VALUES (54321, 1)')).toMatchObject({ kind: 'dml', privileges: ['INSERT'] });
    expect(classifyStatement('UPDATE t SET a = 1').kind).toBe('dml');
    expect(classifyStatement("SET SESSION foreign_key_checks = 0").kind).toBe('session');
    expect(classifyStatement('SET NAMES utf8mb4').kind).toBe('session');
    expect(classifyStatement('DO SLEEP(1)').kind).toBe('read');
    expect(classifyStatement('CALL p()').kind).toBe('other');
  });

  test('statements that would leave the target database or the engine\'s control are refused, with the reason', () => {
    expect(classifyStatement('USE other').refused).toMatch(/^USE: migrations run inside the target database/);
    expect(classifyStatement('CREATE DATABASE x').refused).toMatch(/^CREATE DATABASE/);
    expect(classifyStatement('DROP SCHEMA x').refused).toMatch(/^DROP DATABASE/);
    expect(classifyStatement('SET GLOBAL sql_mode = ""').refused).toMatch(/^SET GLOBAL/);
    expect(classifyStatement('SET @@global.time_zone = "+00:00"').refused).toMatch(/^SET GLOBAL/);
    expect(classifyStatement('START TRANSACTION').refused).toMatch(/^START: the engine commits each statement/);
    expect(classifyStatement('LOCK TABLES t WRITE').refused).toMatch(/^LOCK/);
    expect(classifyStatement('CREATE TABLE other.t (x INT)').refused).toBe('table other.t names a database: migrations run inside the target database, use unqualified names');
    expect(classifyStatement('ALTER TABLE `other`.`t` ADD COLUMN c INT').refused).toMatch(/names a database/);
  });
});
