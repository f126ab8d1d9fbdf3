#!/usr/bin/env bash
# Runs jest the way the suite needs it: Node 24 on PATH, --experimental-vm-modules for the ESM-only
# Kubernetes client, one test file at a time, and an exclusive lock on the local stack so that two
# runs (say, two clones on one machine) never inject faults into each other's servers.
#   scripts/jest.sh [jest args...]      e.g. scripts/jest.sh test/integration/clusterHealth.test.ts
# The workflow tests alone (--selectProjects workflows) use no part of the stack (their own
# time-skipping server), so they run without waiting for its lock.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$DBR_ROOT"
mkdir -p "$DBR_STATE"
export NODE_OPTIONS="--experimental-vm-modules --disable-warning=ExperimentalWarning ${NODE_OPTIONS:-}"
if [ "${1:-}" = --selectProjects ] && [ "${2:-}" = workflows ]; then
  exec npx --no-install jest --runInBand "$@"
fi
exec flock -o "$DBR_STATE/.tests.lock" npx --no-install jest --runInBand "$@"
