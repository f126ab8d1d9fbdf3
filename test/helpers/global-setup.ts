// Once per integration run: check the stack answers, and bundle the workflows so each test file's
// worker starts from the same prebuilt bundle.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { bundleTestWorkflows } from './bundle';
import { REPO_ROOT } from './stack';

export default function globalSetup(): void {
  try {
    execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), 'status'], { stdio: 'pipe' });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`the local stack is not fully up; run scripts/stack.sh up\n${out}`, { cause: err });
  }
  process.env.DBR_TEST_WORKFLOW_BUNDLE = bundleTestWorkflows('test');
}
