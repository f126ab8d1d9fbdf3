// Once per integration run: check the stack answers, and bundle the workflows (about 2 s) so
// each test file's worker starts from the same prebuilt bundle. The bundling runs in a child
// process so the Temporal native runtime is never loaded into jest's parent process.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './stack';

export default function globalSetup(): void {
  try {
    execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), 'status'], { stdio: 'pipe' });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`the local stack is not fully up; run scripts/stack.sh up\n${out}`, { cause: err });
  }
  const output = path.join(os.tmpdir(), `db-runbooks-test-bundle-${process.pid}.js`);
  execFileSync(
    process.execPath,
    [
      '-e',
      `require('@temporalio/worker').bundleWorkflowCode({ workflowsPath: ${JSON.stringify(path.join(REPO_ROOT, 'test', 'workflows', 'index.ts'))}, failureConverterPath: ${JSON.stringify(path.join(REPO_ROOT, 'workflows', 'failure-converter.ts'))}, workflowInterceptorModules: [${JSON.stringify(path.join(REPO_ROOT, 'workflows', 'interceptors.ts'))}], logger: { trace(){}, debug(){}, info(){}, warn: console.warn, error: console.error, log(){} } })
        .then(({ code }) => require('node:fs').writeFileSync(${JSON.stringify(output)}, code))
        .catch((e) => { console.error(e); process.exit(1); })`,
    ],
    { cwd: REPO_ROOT, stdio: 'inherit' },
  );
  process.env.DBR_TEST_WORKFLOW_BUNDLE = output;
}
