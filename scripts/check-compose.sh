#!/usr/bin/env bash
# Validates docker-compose.yml with Docker's own parser where Docker Compose is installed.
# (This project's CI has no Docker; test/unit/docker-compose.test.ts checks what it can without it.)
set -euo pipefail
cd "$(dirname "$0")/.."
if docker compose version >/dev/null 2>&1; then
  docker compose config --quiet && echo "docker-compose.yml: valid"
else
  echo "docker compose is not installed here: nothing checked (see test/unit/docker-compose.test.ts)" >&2
  exit 2
fi
