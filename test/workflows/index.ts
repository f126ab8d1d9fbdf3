// The workflow bundle of the integration tests: every production runbook, plus small workflows
// that exercise shared machinery (the cluster lock) without a whole runbook around it.
export * from '../../workflows';
export { lockProbe } from './lockProbe';
export { silentHolder } from './silentHolder';
