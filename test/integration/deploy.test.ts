// deploy/ as an operator applies it: every manifest passes a server-side dry-run apply against the
// real kube-apiserver (schema, defaulting, admission), and the profiles in the ConfigMap parse.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { parseProfiles } from '../../activities/profile';
import { adminClients, createTestNamespace, deleteTestNamespace, type AdminClients } from '../helpers/kubernetes';
import { REPO_ROOT } from '../helpers/stack';

const DEPLOY = path.join(REPO_ROOT, 'deploy');
let admin: AdminClients;
let managedNamespace: string;

function documents(file: string, replace: (text: string) => string = (t) => t): KubernetesObject[] {
  return parseAllDocuments(replace(readFileSync(path.join(DEPLOY, file), 'utf8')))
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((d): d is KubernetesObject => d !== null);
}

beforeAll(async () => {
  admin = adminClients();
  managedNamespace = await createTestNamespace(admin, 'deploy');
  // The worker's namespace must exist for namespaced dry-runs; rbac.yaml creates it for real.
  await admin.core.readNamespace({ name: 'db-runbooks' }).catch(() => admin.core.createNamespace({ body: { metadata: { name: 'db-runbooks' } } }));
});
afterAll(async () => {
  await deleteTestNamespace(admin, managedNamespace);
});

test('every manifest in deploy/ is accepted by a server-side dry-run apply', async () => {
  const files = readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml'));
  expect(files).toEqual(expect.arrayContaining(['rbac.yaml', 'rbac-namespace.yaml', 'worker.yaml', 'schedules.yaml']));
  const applied: string[] = [];
  for (const file of files) {
    const objects = documents(file, (text) => text.replace(/namespace: databases/g, `namespace: ${managedNamespace}`));
    for (const object of objects) {
      // A ClusterRole shared by the stack's other tests is validated, not replaced: dry-run changes nothing.
      const result = await admin.objects.patch(object, undefined, 'All', 'db-runbooks-deploy-test', true, PatchStrategy.ServerSideApply);
      expect(result.metadata?.name).toBe(object.metadata?.name);
      applied.push(`${file}: ${object.kind}/${object.metadata?.name}`);
    }
  }
  expect(applied).toEqual(
    expect.arrayContaining([
      'worker.yaml: Deployment/db-runbooks-worker',
      'worker.yaml: PodDisruptionBudget/db-runbooks-worker',
      'worker.yaml: ConfigMap/db-runbooks-profiles',
      'worker.yaml: Deployment/db-runbooks-codec-server',
      'rbac.yaml: ClusterRole/db-runbooks-worker',
      'rbac-namespace.yaml: RoleBinding/db-runbooks-worker',
      'schedules.yaml: Job/db-runbooks-schedules',
    ]),
  );
});

test('a broken manifest is refused by the same check, so the check can fail', async () => {
  const [deployment] = documents('worker.yaml').filter((o) => o.kind === 'Deployment') as (KubernetesObject & { spec: { replicas: unknown } })[];
  deployment!.spec.replicas = 'two';
  await expect(admin.objects.patch(deployment!, undefined, 'All', 'db-runbooks-deploy-test', true, PatchStrategy.ServerSideApply)).rejects.toThrow();
});

test('the worker outlives its shutdown grace, and the ConfigMap holds valid profiles', () => {
  const objects = documents('worker.yaml');
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'db-runbooks-worker') as {
    spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: { env: { name: string; value?: string }[] }[] } } };
  };
  const pod = deployment.spec.template.spec;
  const grace = Number(pod.containers[0]!.env.find((e) => e.name === 'DBR_SHUTDOWN_GRACE_SECONDS')!.value);
  expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(grace);
  const configMap = objects.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> };
  const profiles = parseProfiles(configMap.data['clusters.yaml']!, 'deploy/worker.yaml ConfigMap', '/etc/db-runbooks');
  expect([...profiles.keys()]).toEqual(['orders']);
});
