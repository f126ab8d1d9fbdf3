// galeraRecover on the stack's real 3-node Galera cluster after a full outage: every node killed
// (SIGKILL), one of them more advanced than the others. The cluster ends as it began: three nodes,
// Synced (the clusterHealth tests need it), whatever happens here.
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { galeraRecover } from '../../workflows';
import type { GaleraRecoverResult } from '../../workflows/galeraRecover';
import { eventually } from '../helpers/kubernetes';
import { GALERA_NODES as NODES, galeraStatus as status, restoreGaleraCluster, wholeGaleraCluster, type GaleraNode } from '../helpers/galera';
import { idsOf, insertIds, sql } from '../helpers/replication';
import { stack } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const suffix = randomBytes(3).toString('hex');
const CLUSTER = `gr-${suffix}`;
const TABLE = `dbr_galera_${suffix}.t`;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let runs = 0;

beforeAll(async () => {
  const profiles = testProfiles(`
clusters:
  ${CLUSTER}:
    mysql:
      topology: galera
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes:
        - { name: galera1, host: 127.0.0.1, port: ${NODES.galera1} }
        - { name: galera2, host: 127.0.0.1, port: ${NODES.galera2} }
        - { name: galera3, host: 127.0.0.1, port: ${NODES.galera3} }
      control:
        kind: process
        cwd: ..
        start: [bash, scripts/stack.sh, start, '{node}']
        bootstrap: [bash, scripts/stack.sh, start, --bootstrap, '{node}']
        stop: [bash, scripts/stack.sh, stop, '{node}']
        grastate: [bash, scripts/stack.sh, grastate, '{node}']
        recover: [bash, scripts/stack.sh, wsrep-recover, '{node}']
    health: { expectedGaleraClusterSize: 3 }
    failover: { strategy: galera }
`);
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, profiles));
  await wholeGaleraCluster();
  await sql(NODES.galera1, `CREATE DATABASE dbr_galera_${suffix}`);
  await sql(NODES.galera1, `CREATE TABLE ${TABLE} (id INT PRIMARY KEY)`);
});

afterAll(async () => {
  try {
    // Whatever happened: every node running again (the stack script joins them to a running one) and Synced.
    await restoreGaleraCluster();
    await sql(NODES.galera1, `DROP DATABASE IF EXISTS dbr_galera_${suffix}`);
  } finally {
    await worker?.stop();
    await env?.teardown();
  }
});

function insertRows(node: GaleraNode, from: number, to: number): Promise<void> {
  return insertIds(NODES[node], TABLE, from, to);
}

function run(input: Record<string, unknown>): Promise<GaleraRecoverResult> {
  return env.client.workflow.execute(galeraRecover, { taskQueue: worker.taskQueue, workflowId: `galeraRecover/${CLUSTER}-${++runs}`, args: [{ cluster: CLUSTER, ...input }] });
}

test('a cluster that serves is no full outage: refused before anything is touched', async () => {
  const err = await run({}).then(() => new Error('expected a refusal'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = (err as WorkflowFailedError).cause?.cause ?? (err as WorkflowFailedError).cause;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect((failure as ApplicationFailure).message).toBe(
    `cluster ${CLUSTER} is not fully down: galera1 is in a Primary component of size 3 (Synced); galera2 is in a Primary component of size 3 (Synced); galera3 is in a Primary component of size 3 (Synced); start the stopped nodes: they join it`,
  );
});

test('full outage with galera3 the most advanced: galera3 is bootstrapped, the others join, every row written before the outage is there', async () => {
  await insertRows('galera1', 1, 20);
  // galera3 keeps quorum alone once the others are gone (weighted quorum), so it commits more than they have.
  await sql(NODES.galera3, "SET GLOBAL wsrep_provider_options = 'pc.weight=3'");
  await stack('kill', 'galera1');
  await eventually('galera3 to see 2 nodes', async () => ((await status('galera3')).wsrep_cluster_size === '2' ? true : undefined));
  await insertRows('galera3', 21, 40);
  await stack('kill', 'galera2');
  await eventually('galera3 alone in a Primary component', async () => {
    const s = await status('galera3');
    return s.wsrep_cluster_size === '1' && s.wsrep_cluster_status === 'Primary' ? true : undefined;
  });
  await insertRows('galera3', 41, 60);
  await stack('kill', 'galera3');

  const planned = await run({ dryRun: true });
  expect(planned).toMatchObject({ dryRun: true, bootstrapped: 'galera3', joinOrder: ['galera2', 'galera1'], clusterSize: null });
  const seqno = Object.fromEntries(planned.states.map((s) => [s.node, s.seqno]));
  expect(planned.states.map((s) => [s.node, s.seqnoSource, s.grastateSeqno, s.safeToBootstrap])).toEqual([
    ['galera1', 'wsrep-recover', -1, false],
    ['galera2', 'wsrep-recover', -1, false],
    // Galera itself marks the last node of a Primary component safe to bootstrap; a crash leaves the mark.
    ['galera3', 'wsrep-recover', -1, true],
  ]);
  // galera3 committed 40 rows galera1 never saw (Galera 4 orders membership changes too, so the gap
  // can be larger). galera2 was killed right after the 40th: it may not have applied the last write
  // sets it had certified, so it is only known to be in between.
  expect(seqno.galera3! - seqno.galera1!).toBeGreaterThanOrEqual(40);
  expect(seqno.galera2!).toBeGreaterThan(seqno.galera1!);
  expect(seqno.galera2!).toBeLessThan(seqno.galera3!);
  expect(new Set(planned.states.map((s) => s.uuid)).size).toBe(1);
  // The dry run changed nothing: every node is still down.
  for (const port of Object.values(NODES)) await expect(sql(port, 'SELECT 1')).rejects.toThrow();

  const result = await run({});
  expect(result).toMatchObject({ dryRun: false, bootstrapped: 'galera3', joinOrder: ['galera2', 'galera1'], clusterSize: 3 });
  expect(result.reason).toBe(`galera3 has the highest committed seqno, ${seqno.galera3} (from --wsrep-recover); galera1 ${seqno.galera1}, galera2 ${seqno.galera2}`);
  expect(result.table[0]).toMatch(/^node\s+uuid\s+seqno\s+seqno from\s+safe_to_bootstrap$/);

  const all = Array.from({ length: 60 }, (_, i) => i + 1);
  for (const node of Object.keys(NODES) as GaleraNode[]) {
    expect(await status(node)).toEqual({ wsrep_cluster_size: '3', wsrep_cluster_status: 'Primary', wsrep_local_state_comment: 'Synced', wsrep_ready: 'ON' });
    expect(await idsOf(NODES[node], TABLE)).toEqual(all);
  }
});
