#!/usr/bin/env bash
# The main job on a fresh machine, in one command: install everything, start the local stack,
# build and start the worker, then what a day-2 team runs every night: a health check, a verified
# backup of a database to S3 (MinIO) restored into a copy to prove it, and an etcd snapshot; and
# print where to watch it all in the Temporal UI.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$DBR_ROOT"

bash scripts/setup.sh all
source "$(dirname "$0")/lib.sh"   # picks up the Node.js that setup may have installed
bash scripts/stack.sh up
log "building the worker and the client"
npm run --silent build
bash scripts/stack.sh stop worker
bash scripts/stack.sh start worker
source <(bash scripts/stack.sh env)

log "running clusterHealth on the local cluster"
status=0
node bin/runbook.js clusterHealth --cluster local || status=$?

log "a demo database to back up: demo_shop.orders"
mariadb --no-defaults -uroot --socket="$DBR_STATE/mariadb/mariadb/mysqld.sock" -e "
  CREATE DATABASE IF NOT EXISTS demo_shop;
  CREATE TABLE IF NOT EXISTS demo_shop.orders (id INT PRIMARY KEY, customer VARCHAR(64), total DECIMAL(10,2));
  INSERT IGNORE INTO demo_shop.orders SELECT seq, CONCAT('customer ', seq % 97), seq * 1.25 FROM demo_shop.seq_1_to_10000;"

log "backupDatabase: demo_shop to MinIO, verified by a restore into a scratch database"
node bin/runbook.js backupDatabase --cluster local --input '{"databases": ["demo_shop"], "whenLocked": "wait"}' || status=$?
log "restoreDatabase: the newest verified backup into demo_shop_restored"
node bin/runbook.js restoreDatabase --cluster local --input '{"database": "demo_shop", "targetDatabase": "demo_shop_restored", "overwrite": true}' || status=$?
log "backupEtcd: a full etcd snapshot to MinIO"
node bin/runbook.js backupEtcd --cluster local --input '{"whenLocked": "wait"}' || status=$?
cat <<INFO

Temporal UI:   http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/default/workflows
Run again:     node bin/runbook.js clusterHealth --cluster local   (also: --cluster pair, --cluster galera)
Nightly:       node bin/runbook.js schedule backup --cluster local --cron '0 3 * * *'
Backups:       MinIO at http://127.0.0.1:$MINIO_PORT, bucket $S3_BUCKET, prefix local/ (credentials: scripts/stack.sh env)
Stack status:  scripts/stack.sh status        Stop everything: scripts/stack.sh down
INFO
exit $status
