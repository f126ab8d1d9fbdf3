// clusterHealth: a read-only runbook that checks every part a cluster's profile names and returns
// a verdict (healthy / degraded / down) with the reasons. It takes no cluster lock.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { lookup } from './activity-profiles';
import { assessHealth, gatherHealthFacts, type ClusterHealthReport } from './health';
import { RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export interface ClusterHealthInput {
  cluster: string;
}

const { describeCluster } = proxyActivities<Activities>(lookup);

export async function clusterHealth(input: ClusterHealthInput): Promise<ClusterHealthReport> {
  const v = new InputValidator(input, 'clusterHealth', ['cluster']);
  const cluster = v.clusterName();
  v.done();

  const tracker = new RunbookTracker('clusterHealth', cluster, ['read profile', 'check components', 'assess']);
  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
      const facts = await tracker.step('check components', () => gatherHealthFacts(plan));
      return tracker.step('assess', () => Promise.resolve(assessHealth(plan, facts, new Date().toISOString())), (r) => r.verdict);
    },
    (report) => ({ outcome: 'succeeded', summary: report.summary }),
  );
}
