// Signals, queries, updates and search attributes shared by the workflows, the worker and the client.
// Only pure imports here: this file is bundled into the workflow sandbox.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';

export const TASK_QUEUE_DEFAULT = 'db-runbooks';

export const searchAttributes = {
  cluster: defineSearchAttributeKey('RunbookCluster', SearchAttributeType.KEYWORD),
  runbook: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD),
  step: defineSearchAttributeKey('RunbookStep', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('RunbookOutcome', SearchAttributeType.KEYWORD),
} as const;

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'compensated';

export interface StepProgress {
  name: string;
  state: StepState;
  startedAt?: string;
  endedAt?: string;
  detail?: string;
}

export interface RunbookProgress {
  runbook: string;
  cluster: string;
  currentStep: string | null;
  steps: StepProgress[];
  outcome: 'running' | 'succeeded' | 'failed' | 'rolled back' | 'cancelled' | 'skipped';
}

export const getProgressQuery = defineQuery<RunbookProgress>('getProgress');
