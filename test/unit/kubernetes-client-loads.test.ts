// @kubernetes/client-node 2.x is ESM-only. Under jest it loads through require() only when Node
// runs with --experimental-vm-modules (scripts/test.sh sets it); this test fails loudly otherwise.
test('the ESM-only Kubernetes client loads under jest', async () => {
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromString('apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
  expect(config.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  expect(typeof config.makeApiClient(k8s.CoreV1Api).listNamespacedPod).toBe('function');
});
