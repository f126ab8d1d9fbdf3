#!/usr/bin/env bash
# Runs a benchmark from bench/ against the local stack, under the same exclusive lock as the tests
# (a benchmark switches the shared servers over; nothing else may use them meanwhile).
#   scripts/bench.sh switchover [args...]      (npm run bench:switchover)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$DBR_ROOT"
name="${1:?usage: scripts/bench.sh NAME [args...]}"; shift
[ -f "bench/$name.ts" ] || die "no benchmark bench/$name.ts"
mkdir -p "$DBR_STATE"
exec flock -o "$DBR_STATE/.tests.lock" node --import tsx "bench/$name.ts" "$@"
