// Every runbook refuses bad input before it does anything: the generated catalogue of
// test/reliability/bad-inputs.ts (wrong types, out-of-range numbers, hostile and oversized strings,
// missing and unknown fields) against each runbook's own validation, in-process. Validation is the
// first thing a runbook does, so a refused input throws before any workflow API is reached; an
// input that got past it would fail here on the missing workflow context instead.
import { ApplicationFailure } from '@temporalio/common';
import fc from 'fast-check';
import * as workflows from '../../workflows';
import { BAD_INPUTS, badInput } from '../reliability/bad-inputs';

const runbooks = Object.keys(BAD_INPUTS) as Exclude<keyof typeof workflows, 'clusterLock'>[];

test('every runbook but the cluster lock has a catalogue of bad inputs', () => {
  expect(Object.keys(workflows).filter((name) => name !== 'clusterLock').sort()).toEqual([...runbooks].sort());
});

test.each(runbooks)('%s: each generated bad input is refused, non-retryable, naming the field', async (runbook) => {
  const run = workflows[runbook] as (input: unknown) => Promise<unknown>;
  await fc.assert(
    fc.asyncProperty(badInput(runbook), async ({ field, input }) => {
      const err: unknown = await run(input).then(
        () => new Error('accepted'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      const failure = err as ApplicationFailure;
      expect({ type: failure.type, nonRetryable: failure.nonRetryable }).toEqual({ type: 'InvalidInput', nonRetryable: true });
      // A nested field is named by its path: migration.steps[0].op.
      expect([field, [': ', '.', '['].some((after) => failure.message.includes(`${field}${after}`))]).toEqual([field, true]);
      // The message quotes at most a short excerpt of a value: an oversized input does not come back whole.
      expect(failure.message.length).toBeLessThan(2000);
    }),
    { numRuns: 300 },
  );
});
