// Builds the workflow bundle ahead of time, so a production worker starts without webpack.
// Usage: node dist/worker/bundle.js [output]   (default dist/workflow-bundle.js)
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from './data-converter';
import { WORKFLOW_INTERCEPTOR_MODULES } from './interceptors';

export const DEFAULT_BUNDLE_PATH = path.resolve(__dirname, '..', 'workflow-bundle.js');

export async function buildWorkflowBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: FAILURE_CONVERTER_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} },
  });
  return code;
}

if (require.main === module) {
  const output = path.resolve(process.argv[2] ?? DEFAULT_BUNDLE_PATH);
  buildWorkflowBundle()
    .then((code) => writeFile(output, code))
    .then(() => console.log(`workflow bundle written to ${path.relative(process.cwd(), output)}`))
    .catch((err: unknown) => {
      console.error(`cannot bundle workflows: ${(err as Error).message}`);
      process.exit(1);
    });
}
