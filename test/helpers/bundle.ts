// Bundles the test workflows (test/workflows/index.ts: every runbook plus test-only workflows) in a
// child process, so the Temporal native runtime is never loaded into jest's parent process. About 2 s:
// once per jest run, from a project's globalSetup.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './stack';

export function bundleTestWorkflows(name: string, extraInterceptorModules: string[] = []): string {
  const output = path.join(os.tmpdir(), `db-runbooks-${name}-bundle-${process.pid}.js`);
  const interceptorModules = [path.join(REPO_ROOT, 'workflows', 'interceptors.ts'), ...extraInterceptorModules];
  execFileSync(
    process.execPath,
    [
      '-e',
      `require('@temporalio/worker').bundleWorkflowCode({ workflowsPath: ${JSON.stringify(path.join(REPO_ROOT, 'test', 'workflows', 'index.ts'))}, failureConverterPath: ${JSON.stringify(path.join(REPO_ROOT, 'workflows', 'failure-converter.ts'))}, workflowInterceptorModules: ${JSON.stringify(interceptorModules)}, logger: { trace(){}, debug(){}, info(){}, warn: console.warn, error: console.error, log(){} } })
        .then(({ code }) => require('node:fs').writeFileSync(${JSON.stringify(output)}, code))
        .catch((e) => { console.error(e); process.exit(1); })`,
    ],
    { cwd: REPO_ROOT, stdio: 'inherit' },
  );
  return output;
}
