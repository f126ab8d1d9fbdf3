// Every runbook the worker registers. One runbook per file.
export { clusterHealth } from './clusterHealth';
export { clusterLock } from './clusterLock';
export { migrateSchema } from './migrateSchema';
export { upgradeCluster } from './upgradeCluster';
export { downgradeCluster } from './downgradeCluster';
export { refreshNodeAddresses } from './refreshNodeAddresses';
export { failover } from './failover';
export { galeraRecover } from './galeraRecover';
export { switchover } from './switchover';
export { vitessDrain } from './vitessDrain';
export { backupEtcd } from './backupEtcd';
export { backupDatabase } from './backupDatabase';
export { restoreDatabase } from './restoreDatabase';
