#!/usr/bin/env bash
# Sets everything up and runs the whole test suite against the real local stack:
#   scripts/test.sh [jest args...]
# Used as-is by .ci/run. The stack stays up afterwards for the next run (scripts/stack.sh down stops it).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$DBR_ROOT"

bash scripts/setup.sh all
source "$(dirname "$0")/lib.sh"   # picks up the Node.js that setup may have installed
bash scripts/stack.sh up

log "type-checking and linting"
npx --no-install tsc --noEmit -p .
npx --no-install eslint --max-warnings 0 .

log "running the tests"
exec bash scripts/jest.sh "$@"
