// An operator starts clusterHealth from the Temporal Web UI's "Start Workflow" form, as the README
// describes, and reads the result in the page. Debian's Chromium, driven by playwright-core.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser } from 'playwright-core';
import { freePort, REPO_ROOT } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, type RunningWorker } from '../helpers/temporal';

const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let browser: Browser;
let uiUrl: string;

beforeAll(async () => {
  const uiPort = await freePort();
  uiUrl = `http://127.0.0.1:${uiPort}`;
  env = await startTemporal({ uiPort });
  worker = await startWorker(env, realActivities(env));
  // The flags keep Chromium off the network this machine cannot reach (see the env notes).
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await env?.teardown();
});

test('clusterHealth started from the Start Workflow form completes and shows its report', async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const workflowId = `clusterHealth/local/ui-${Date.now()}`;
  await page.goto(`${uiUrl}/namespaces/default/workflows/start-workflow`, { waitUntil: 'networkidle' });
  await page.getByTestId('workflowId').fill(workflowId);
  await page.getByTestId('taskQueue').fill(worker.taskQueue);
  await page.getByTestId('workflowType').fill('clusterHealth');
  await page.locator('.cm-content[aria-label="Data"]').click();
  await page.keyboard.insertText('{"cluster": "local"}');
  // Leaving the editor reformats the JSON and moves the button: leave it before clicking.
  await page.getByTestId('workflowType').click();
  await page.getByText('"cluster": "local"').waitFor();
  await page.getByTestId('start-workflow-button').click();
  await page.getByText('Workflow started', { exact: false }).first().waitFor({ timeout: 30_000 }).catch(async (err: unknown) => {
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-start-form-failed.png'), fullPage: true });
    throw err;
  });

  // The worker runs it against the real local stack.
  const result: unknown = await env.client.workflow.getHandle(workflowId).result();
  expect(result).toMatchObject({ cluster: 'local', verdict: 'healthy' });

  await page.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`, { waitUntil: 'networkidle' });
  await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 30_000 });
  const body = await page.locator('body').innerText();
  expect(body).toContain(workflowId);
  // The result panel renders the report JSON.
  await page.getByText('"verdict": "healthy"').first().waitFor({ timeout: 30_000 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-clusterHealth.png'), fullPage: true });
  await page.close();
});
