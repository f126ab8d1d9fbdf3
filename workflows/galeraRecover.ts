// galeraRecover: a Galera cluster after a full outage (no node in a Primary component). Every node's
// saved state is read (grastate.dat, and the position InnoDB holds when that says -1), the node with
// the most advanced history is bootstrapped, the others join one at a time, and the cluster is
// checked: every node ready and Synced, the expected size. Different histories are refused.
//
// The runbook rolls forward: a node it started serves, and stopping it again on a later failure
// would only take a partly recovered cluster back down. On failure the summary says which nodes run.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { GaleraNodeState } from '../activities/nodes';
import { lookup, mysqlWait, nodeControl, probe } from './activity-profiles';
import { galeraStateTable, planGaleraRecovery } from './galera-plan';
import { withClusterLock } from './lock';
import { failureMessage, RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export interface GaleraRecoverInput {
  cluster: string;
  /** Decide and report, change nothing. */
  dryRun?: boolean;
  /** How long each node gets to start and reach Synced (default 600 s: a joiner may need a full SST). */
  nodeTimeoutSeconds?: number;
  lockWaitSeconds?: number;
}

export interface GaleraRecoverResult {
  cluster: string;
  bootstrapped: string;
  joinOrder: string[];
  reason: string;
  /** Every node's uuid, seqno (and from where), safe_to_bootstrap, as read before the recovery. */
  states: GaleraNodeState[];
  table: string[];
  clusterSize: number | null;
  dryRun: boolean;
  warnings: string[];
  summary: string;
}

const { describeCluster } = proxyActivities<Activities>(lookup);
const { checkMysqlNode } = proxyActivities<Activities>(probe);
const { controlNode, readGaleraState } = proxyActivities<Activities>(nodeControl);
const { waitGaleraNodeReady } = proxyActivities<Activities>(mysqlWait);

export async function galeraRecover(input: GaleraRecoverInput): Promise<GaleraRecoverResult> {
  const v = new InputValidator(input, 'galeraRecover', ['cluster', 'dryRun', 'nodeTimeoutSeconds', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const dryRun = v.optionalBoolean('dryRun', false);
  const nodeTimeoutSeconds = v.optionalNumber('nodeTimeoutSeconds', { min: 10, max: 24 * 3600, integer: true }) ?? 600;
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  v.done();

  const tracker = new RunbookTracker('galeraRecover', cluster, ['read profile', 'check that no node serves', 'read every node\'s state', 'choose the node to bootstrap']);
  const running: string[] = [];
  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      const nodes = plan.mysql?.nodes.map((n) => n.name) ?? [];
      if (plan.mysql?.topology !== 'galera') throw ApplicationFailure.nonRetryable(`cluster ${cluster} is not a Galera cluster (topology ${plan.mysql?.topology ?? 'none'})`, 'PreflightFailed');
      const actions = plan.mysql.control?.actions ?? [];
      const missing = ['grastate', 'recover', 'bootstrap', 'start', 'stop'].filter((a) => !actions.includes(a as never));
      if (missing.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `cluster ${cluster}: galeraRecover needs mysql.control with ${missing.join(', ')} (${plan.mysql.control ? `kind ${plan.mysql.control.kind} provides ${actions.join(', ') || 'none of them'}` : 'the profile has no mysql.control'})`,
          'ProfileIncomplete',
        );
      }
      const locked = await withClusterLock(
        { cluster, runbook: 'galeraRecover', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds, priority: 'emergency' },
        async () => {
          await tracker.step(
            'check that no node serves',
            async () => {
              const facts = await Promise.all(nodes.map((node) => checkMysqlNode({ cluster, node })));
              const serving = facts.filter((f) => f.reachable && f.galera?.clusterStatus === 'Primary');
              if (serving.length > 0) {
                throw ApplicationFailure.nonRetryable(
                  `cluster ${cluster} is not fully down: ${serving.map((f) => `${f.node} is in a Primary component of size ${f.galera!.clusterSize} (${f.galera!.localState})`).join('; ')}; start the stopped nodes: they join it`,
                  'PreflightFailed',
                );
              }
              // Running without quorum holds no Primary component: such a node is stopped so that its state can be read.
              const stray = facts.filter((f) => f.reachable).map((f) => f.node);
              if (dryRun && stray.length) throw ApplicationFailure.nonRetryable(`${stray.join(', ')} run without a Primary component; a dry run does not stop them to read their state`, 'PreflightFailed');
              for (const node of stray) await controlNode({ cluster, node, action: 'stop' });
              return stray;
            },
            (stray) => (stray.length ? `stopped ${stray.join(', ')} (running without a Primary component)` : 'all nodes are down'),
          );

          const states = await tracker.step(
            "read every node's state",
            () => Promise.all(nodes.map((node) => readGaleraState({ cluster, node }))),
            (s) => s.map((x) => `${x.node} ${x.uuid.slice(0, 8)}…:${x.seqno}`).join(', '),
          );
          const decision = await tracker.step(
            'choose the node to bootstrap',
            () => {
              const planned = planGaleraRecovery(states, nodes);
              if (planned.decision === 'refuse') {
                throw ApplicationFailure.create({
                  type: 'RecoveryRefused',
                  nonRetryable: true,
                  message: `galeraRecover of ${cluster} refused: ${planned.reason}\n${planned.table.join('\n')}`,
                  details: [{ states, table: planned.table }],
                });
              }
              return Promise.resolve(planned);
            },
            (d) => d.reason,
          );
          const table = galeraStateTable(states);
          const result = (clusterSize: number | null, summary: string): GaleraRecoverResult => ({
            cluster,
            bootstrapped: decision.bootstrap,
            joinOrder: decision.joinOrder,
            reason: decision.reason,
            states,
            table,
            clusterSize,
            dryRun,
            warnings: decision.warnings,
            summary,
          });
          if (dryRun) return result(null, `dry run: would bootstrap ${decision.bootstrap} (${decision.reason}), then start ${decision.joinOrder.join(', ')}`);

          const deadline = () => new Date(Date.now() + nodeTimeoutSeconds * 1000).toISOString();
          await tracker.step(`bootstrap ${decision.bootstrap}`, async () => {
            await controlNode({ cluster, node: decision.bootstrap, action: 'bootstrap' });
            running.push(decision.bootstrap);
            return waitGaleraNodeReady({ cluster, node: decision.bootstrap, deadline: deadline() });
          }, (f) => `Synced, cluster size ${f.clusterSize}`);
          for (const node of decision.joinOrder) {
            await tracker.step(`start ${node}`, async () => {
              await controlNode({ cluster, node, action: 'start' });
              running.push(node);
              return waitGaleraNodeReady({ cluster, node, deadline: deadline() });
            }, (f) => `Synced, cluster size ${f.clusterSize}`);
          }
          const size = await tracker.step(
            'verify the cluster',
            async () => {
              const facts = await Promise.all(nodes.map((node) => checkMysqlNode({ cluster, node })));
              const expected = plan.health.expectedGaleraClusterSize ?? nodes.length;
              const problems = facts.flatMap((f) => {
                const g = f.galera;
                if (!f.reachable || !g) return [`${f.node} is ${f.reachable ? 'not a Galera node' : `unreachable: ${f.error ?? ''}`}`];
                const bad = [g.ready !== 'ON' && `wsrep_ready=${g.ready}`, g.localState !== 'Synced' && `wsrep_local_state_comment=${g.localState}`, g.clusterStatus !== 'Primary' && `wsrep_cluster_status=${g.clusterStatus}`, g.clusterSize !== expected && `wsrep_cluster_size=${g.clusterSize}`].filter(Boolean);
                return bad.length ? [`${f.node}: ${bad.join(', ')}`] : [];
              });
              if (problems.length) throw ApplicationFailure.nonRetryable(`the recovered cluster is not whole (expected ${expected} Synced nodes): ${problems.join('; ')}`, 'GaleraNodeNotReady');
              return expected;
            },
            (n) => `${n} nodes ready and Synced`,
          );
          return result(size, `bootstrapped ${decision.bootstrap} (${decision.reason}); ${decision.joinOrder.join(', ')} joined; ${size} nodes Synced`);
        },
      );
      if (locked.status !== 'done') throw ApplicationFailure.nonRetryable(`galeraRecover of ${cluster} did not get the cluster lock`, 'ClusterLocked');
      return locked.value;
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
    (err) => (running.length ? { outcome: 'failed', summary: `${failureMessage(err)} (running now: ${running.join(', ')})` } : undefined),
  );
}
