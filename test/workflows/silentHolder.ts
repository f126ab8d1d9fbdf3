// A run that holds a lease the way a runbook does whose workers are all down: it is RUNNING, and it
// never renews. The test hands its request to the lock itself.
import { condition } from '@temporalio/workflow';

export async function silentHolder(): Promise<void> {
  await condition(() => false);
}
