// Names of the objects runbooks write to S3, under the profile's prefix. Pure: workflows and
// activities both use them. They derive from the workflow id, so a retried step writes the same
// object again instead of a second copy.

export function safeObjectSegment(workflowId: string): string {
  return workflowId.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** upgrades/<workflow id>/<name>: the dump, the etcd snapshot and the manifest of one upgrade. */
export function upgradeObjectName(workflowId: string, name: string): string {
  return `upgrades/${safeObjectSegment(workflowId)}/${name}`;
}
