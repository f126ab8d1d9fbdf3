import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadProfiles, parseProfiles } from '../../activities/profile';
import { loadWorkerConfig } from '../../worker/config';

const mysqlSection = (extra: string) => `
clusters:
  local:
    mysql:
      topology: standalone
      user: runbook
      password: { env: PW }
      nodes:
        - { name: db-0, host: 127.0.0.1${extra} }
`;

describe('cluster profile validation names the file, the field and what was expected', () => {
  test.each([
    [mysqlSection(', port: abc'), 'f.yaml: clusters.local.mysql.nodes[0].port: expected a number, got "abc"'],
    [mysqlSection(', port: 70000'), 'f.yaml: clusters.local.mysql.nodes[0].port: expected at most 65535, got number 70000'],
    [mysqlSection(', colour: red'), 'f.yaml: clusters.local.mysql.nodes[0].colour: no such field'],
    ['clusters:\n  local:\n    mysql: { topology: ring, user: u, password: { env: P }, nodes: [{ name: a, host: h }] }', 'f.yaml: clusters.local.mysql.topology: expected one of "standalone", "replication", "galera", got "ring"'],
    ['clusters:\n  Prod_DB: {}', 'f.yaml: clusters.Prod_DB: not a valid name'],
    ['clusters:\n  local:\n    etcd: { endpoints: [localhost-2379] }', 'f.yaml: clusters.local.etcd.endpoints[0]: expected a URL, got "localhost-2379"'],
    ['clusters:\n  local:\n    s3: { bucket: b, prefix: no-slash }', 'f.yaml: clusters.local.s3.bucket: expected an S3 bucket name, got "b"'],
    ['clusters:\n  local:\n    s3: { bucket: backups, prefix: no-slash }', 'f.yaml: clusters.local.s3.prefix: expected empty or a key prefix ending in "/", got "no-slash"'],
    [
      `${mysqlSection('')}      migrations:\n        temporal: { directory: /m, database: "temporal; DROP TABLE x" }\n`,
      'f.yaml: clusters.local.mysql.migrations.temporal.database: expected a name of letters, digits and "_" (at most 64), got "temporal; DROP TABLE x"',
    ],
    [
      `${mysqlSection('')}      migrations:\n        Temporal: { directory: /m, database: temporal }\n`,
      'f.yaml: clusters.local.mysql.migrations.Temporal: not a valid name',
    ],
    [
      `${mysqlSection('')}      migrations:\n        temporal: { directory: /m, database: t, session: { timeZone: "'; DROP" } }\n`,
      'f.yaml: clusters.local.mysql.migrations.temporal.session.timeZone: expected a time zone: SYSTEM, +08:00 or a named zone',
    ],
    ['clusters: [1, 2]', 'f.yaml: clusters: expected an object, got a list'],
    ['other: {}', 'f.yaml: clusters: required'],
    ['clusters: {a: [}', 'f.yaml: not valid YAML'],
  ])('%#: %j', (yaml, message) => {
    expect(() => parseProfiles(yaml, 'f.yaml', '/etc/db-runbooks')).toThrow(message);
  });

  test('a secret pasted where a secret reference belongs is refused without echoing it', () => {
    const yaml = mysqlSection('').replace('{ env: PW }', 'hunter2-sup3r-s3cret');
    let message = '';
    try {
      parseProfiles(yaml, 'f.yaml', '/etc/db-runbooks');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^f\.yaml: clusters\.local\.mysql\.password: expected a secret reference/);
    expect(message).not.toContain('hunter2');
  });

  test('node-control commands may name only the known placeholders; a relative cwd is the profile file\'s', () => {
    const withControl = (control: string) => `
clusters:
  g:
    mysql:
      topology: galera
      user: runbook
      password: { env: PW }
      replicationPassword: { env: REPL }
      nodes: [{ name: g1, host: 127.0.0.1 }]
      control: ${control}
`;
    expect(() => parseProfiles(withControl("{ kind: process, start: [ssh, '{host}', 'rm -rf {datadir}'] }"), 'f.yaml', '/etc/db-runbooks')).toThrow(
      'f.yaml: clusters.g.mysql.control.start: expected an argv list whose only placeholders are {node}, {host}, {port}, {pod}',
    );
    expect(() => parseProfiles(withControl('{ kind: shell, start: x }'), 'f.yaml', '/etc/db-runbooks')).toThrow('f.yaml: clusters.g.mysql.control.kind: expected a node control: { kind: process, ... } or { kind: kubernetes, ... }, got "shell"');
    const parsed = parseProfiles(withControl("{ kind: process, cwd: .., start: [bash, scripts/stack.sh, start, '{node}'] }"), 'f.yaml', '/etc/db-runbooks/config');
    expect(parsed.get('g')!.mysql!.control).toEqual({ kind: 'process', cwd: '/etc/db-runbooks', timeoutSeconds: 300, start: ['bash', 'scripts/stack.sh', 'start', '{node}'] });
    expect(parsed.get('g')!.failover).toEqual({ maxTransactionSeconds: 30, writerGraceSeconds: 2, catchUpTimeoutSeconds: 60, drainTimeoutSeconds: 600 });
  });

  test('defaults are filled in and the committed local profile parses', () => {
    const profiles = parseProfiles(mysqlSection(''), 'f.yaml', '/etc/db-runbooks');
    expect(profiles.get('local')!.mysql!.nodes[0]!.port).toBe(3306);
    expect(profiles.get('local')!.health.maxReplicationLagSeconds).toBe(30);
    const local = loadProfiles(path.join(__dirname, '..', '..', 'config', 'clusters.local.yaml'));
    expect([...local.keys()]).toEqual(expect.arrayContaining(['local', 'pair', 'galera']));
    // A migration directory is relative to the profile file, like the ConfigMap it comes with.
    expect(local.get('local')!.mysql!.migrations!.temporal).toEqual({
      directory: path.join(__dirname, '..', '..', 'examples', 'migrations', 'temporal-mysql'),
      database: 'temporal',
      ledgerTable: 'db_runbooks_migrations',
      createDatabase: true,
    });
  });

  test('the worker reads the profile file the way the tests do: a relative node-control cwd is the file\'s directory, not the worker\'s', () => {
    // The worker starts in any directory (scripts/stack.sh start worker: the clone; a Deployment: /app).
    const local = loadProfiles(path.relative(process.cwd(), path.join(__dirname, '..', '..', 'config', 'clusters.local.yaml')));
    const control = local.get('galera')!.mysql!.control;
    expect(control).toMatchObject({ kind: 'process', cwd: path.join(__dirname, '..', '..') });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-profile-'));
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(path.join(dir, 'config', 'clusters.yaml'), "clusters:\n  g:\n    mysql:\n      topology: galera\n      user: u\n      password: { env: PW }\n      nodes: [{ name: g1, host: h }]\n      control: { kind: process, cwd: ../scripts, start: [x] }\n");
    expect(loadProfiles(path.join(dir, 'config', 'clusters.yaml')).get('g')!.mysql!.control).toMatchObject({ cwd: path.join(dir, 'scripts') });
  });
});

describe('worker configuration', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-config-'));
  const good = path.join(dir, 'good.yaml');
  writeFileSync(good, mysqlSection(''));

  test('loads the profile file and applies defaults', () => {
    const config = loadWorkerConfig({ DBR_PROFILES: good }, dir);
    expect(config.temporal).toEqual({ address: '127.0.0.1:7233', namespace: 'default', tls: undefined });
    expect(config.taskQueue).toBe('db-runbooks');
    expect([...config.profiles.keys()]).toEqual(['local']);
    expect(config.maxCachedWorkflows).toBe(200);
    expect(config.metricsAddress).toBe('0.0.0.0:9464');
  });

  test.each([
    [{ DBR_PROFILES: path.join(dir, 'missing.yaml') }, `${path.join(dir, 'missing.yaml')}: cannot read the cluster profile file: ENOENT`],
    [{ DBR_PROFILES: good, DBR_MAX_CACHED_WORKFLOWS: 'lots' }, 'DBR_MAX_CACHED_WORKFLOWS: expected a whole number >= 0, got "lots"'],
    [{ DBR_PROFILES: good, TEMPORAL_ADDRESS: 'temporal' }, 'TEMPORAL_ADDRESS: expected host:port, got "temporal"'],
    [{ DBR_PROFILES: good, TEMPORAL_TLS_CERT: good }, 'TEMPORAL_TLS_KEY: required when TEMPORAL_TLS_CERT is set'],
    [{ DBR_PROFILES: good, DBR_WORKFLOW_BUNDLE: '/nope.js' }, 'DBR_WORKFLOW_BUNDLE: no file at /nope.js'],
  ])('%#: a bad setting stops the worker with one line naming it', (env, message) => {
    expect(() => loadWorkerConfig(env, dir)).toThrow(message);
  });

  test('mTLS files are read into the connection options', () => {
    const config = loadWorkerConfig({ DBR_PROFILES: good, TEMPORAL_TLS_CERT: good, TEMPORAL_TLS_KEY: good, TEMPORAL_TLS_SERVER_NAME: 'temporal.internal' }, dir);
    expect(config.temporal.tls?.serverNameOverride).toBe('temporal.internal');
    expect(config.temporal.tls?.clientCertPair.crt.toString()).toContain('clusters:');
  });
});
