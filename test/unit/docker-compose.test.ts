// docker-compose.yml cannot be run here (no Docker engine); `docker compose config` checks it where
// Docker is installed. This test checks what can be checked without it: the file is well-formed,
// every dependency names a service, the worker's profile parses, and no secret is written in it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseProfiles } from '../../activities/profile';

const root = path.join(__dirname, '..', '..');
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, { image?: string; build?: string; depends_on?: string[] | Record<string, unknown>; environment?: Record<string, string>; volumes?: string[] }>;
};

test('every service has an image or a build, and depends only on services that exist', () => {
  const names = Object.keys(compose.services);
  expect(names).toEqual(expect.arrayContaining(['temporal', 'mysql', 'etcd', 'minio', 'worker']));
  for (const [name, service] of Object.entries(compose.services)) {
    expect([name, Boolean(service.image ?? service.build)]).toEqual([name, true]);
    const dependsOn = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    for (const dependency of dependsOn) expect(names).toContain(dependency);
  }
});

test("the worker's profile file exists, parses, and its secret references are set in the worker's environment", () => {
  const worker = compose.services.worker!;
  const mount = worker.volumes!.find((v) => v.includes('clusters.compose.yaml'))!;
  const profiles = parseProfiles(readFileSync(path.join(root, mount.split(':')[0]!), 'utf8'), 'config/clusters.compose.yaml', path.join(root, 'config'));
  const refs = JSON.stringify([...profiles.values()]).match(/"env":"([A-Z0-9_]+)"/g)!.map((m) => m.slice(7, -1));
  expect(refs.length).toBeGreaterThan(0);
  for (const ref of refs) expect(Object.keys(worker.environment!)).toContain(ref);
  expect(worker.environment!.DBR_PROFILES).toBe(`/config/${path.basename(mount.split(':')[0]!)}`);
});

test('passwords come from the environment of whoever runs compose, with visible change-me defaults', () => {
  const text = readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');
  for (const line of text.split('\n').filter((l) => /PASSWORD|SECRET_KEY/.test(l) && l.includes(':'))) {
    expect(line).toMatch(/\$\{[A-Z0-9_]+(:-[a-z-]*change-me[a-z-]*)?\}|MINIO_ROOT_PASSWORD|\$\$MINIO_ROOT_PASSWORD/);
  }
});
