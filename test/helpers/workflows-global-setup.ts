// Once per run of the workflow tests (time skipping, no stack): the test workflows bundled with the
// interceptor that slows the grants of slow-grants-* clusters.
import path from 'node:path';
import { bundleTestWorkflows } from './bundle';
import { REPO_ROOT } from './stack';

export default function globalSetup(): void {
  process.env.DBR_TIME_SKIPPING_BUNDLE = bundleTestWorkflows('time-skipping', [path.join(REPO_ROOT, 'test', 'workflows', 'slow-grants.ts')]);
}
