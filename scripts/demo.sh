#!/usr/bin/env bash
# The main job on a fresh machine, in one command: install everything, start the local stack,
# build and start the worker, run the clusterHealth runbook on the local cluster and print its
# report and where to watch it in the Temporal UI.
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
cat <<INFO

Temporal UI:   http://127.0.0.1:$TEMPORAL_UI_PORT/namespaces/default/workflows
Run again:     node bin/runbook.js clusterHealth --cluster local   (also: --cluster pair, --cluster galera)
Stack status:  scripts/stack.sh status        Stop everything: scripts/stack.sh down
INFO
exit $status
