#!/usr/bin/env bash
# Throwaway 3-master Redis Cluster on loopback, for tests.
#
#   scripts/redis-cluster.sh start DIR   # start nodes, create cluster, print "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
#   scripts/redis-cluster.sh stop DIR    # kill exactly the pids in DIR/*.pid, then remove DIR
#
# start writes the comma-separated address list to DIR/addrs (and stdout);
# all progress messages go to stderr, so addrs=$(scripts/redis-cluster.sh start DIR) works.
# Env: BASE_PORT (first port to probe, default 7101), NODES (default 3),
#      REDIS_SERVER / REDIS_CLI (binaries), CLUSTER_WAIT (seconds, default 20).
set -euo pipefail

BASE_PORT=${BASE_PORT:-7101}
NODES=${NODES:-3}
CLUSTER_WAIT=${CLUSTER_WAIT:-20}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
HOST=127.0.0.1
MARKER=.tokencache-redis-cluster   # marks DIR as ours, so stop may rm -rf it

log() { echo "redis-cluster: $*" >&2; }
die() { echo "redis-cluster: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }

# port_busy PORT: true if something accepts TCP connections on HOST:PORT.
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# cli PORT ARGS...: redis-cli against one node, with a short timeout.
cli() { local p=$1; shift; timeout 5 "$REDIS_CLI" -h "$HOST" -p "$p" "$@" 2>/dev/null; }

# log_tail PORT: dump the end of a node's log to stderr.
log_tail() {
  local f="$DIR/redis-$1.log"
  echo "---- tail of $f ----" >&2
  if [[ -f $f ]]; then tail -n 30 "$f" >&2; else echo "(no log file)" >&2; fi
}

# pid_is_redis PID: true if PID is a live (non-zombie) redis-server process.
pid_is_redis() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$1/comm" 2>/dev/null) == redis-server* ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }                        # field 3 (state) follows "(comm) "
  [[ ${stat%% *} != Z ]]
}

# node_up PORT: true once the redis-server from DIR/redis-PORT.pid answers PING itself
# (checking process_id guards against another server having grabbed the port).
node_up() {
  local p=$1 pid
  pid=$(cat "$DIR/redis-$p.pid" 2>/dev/null) || return 1
  [[ $(cli "$p" ping) == PONG ]] || return 1
  cli "$p" info server | tr -d '\r' | grep -qx "process_id:$pid"
}

# start_node PORT: launch one cluster-enabled redis-server; wait until it answers.
# Returns 1 if the process died (e.g. port taken meanwhile), dies on a timeout.
start_node() {
  local p=$1 i
  "$REDIS_SERVER" --port "$p" --bind "$HOST" \
    --cluster-enabled yes --cluster-config-file "$DIR/nodes-$p.conf" \
    --save "" --appendonly no --daemonize yes \
    --pidfile "$DIR/redis-$p.pid" --logfile "$DIR/redis-$p.log" --dir "$DIR" \
    >/dev/null 2>"$DIR/redis-$p.stderr" || { cat "$DIR/redis-$p.stderr" >&2; return 1; }
  for ((i = 0; i < 100; i++)); do         # up to ~10 s
    node_up "$p" && return 0
    if ((i > 10)) && ! pid_is_redis "$(cat "$DIR/redis-$p.pid" 2>/dev/null || echo none)"; then
      return 1                            # never started or exited
    fi
    sleep 0.1
  done
  log_tail "$p"; die "redis-server on port $p did not answer PING within 10 s"
}

cmd_start() {
  command -v "$REDIS_SERVER" >/dev/null || die "$REDIS_SERVER not found (apt-get install -y redis-server)"
  command -v "$REDIS_CLI" >/dev/null || die "$REDIS_CLI not found (apt-get install -y redis-tools)"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)                 # redis needs absolute paths (it chdirs to --dir)
  if compgen -G "$DIR/*.pid" >/dev/null || [[ -e $DIR/addrs ]]; then
    die "$DIR already holds a cluster; run: $0 stop $DIR"
  fi
  # Only a directory that starts out empty (e.g. from mktemp -d) is ours to rm -rf on stop.
  if [[ -z $(ls -A "$DIR") ]]; then : >"$DIR/$MARKER"; fi

  # On failure, kill whatever we started (logs stay in DIR for inspection).
  trap 'rc=$?; if ((rc != 0)); then kill_pids; fi' EXIT

  local ports=() p=$BASE_PORT attempts=0
  while ((${#ports[@]} < NODES)); do
    ((p + 10000 <= 65535)) || die "no free ports left (BASE_PORT=$BASE_PORT)"
    ((attempts++ < 200)) || die "could not find $NODES free port pairs from $BASE_PORT"
    # A node needs PORT and its cluster bus port PORT+10000.
    if port_busy "$p" || port_busy $((p + 10000)); then p=$((p + 1)); continue; fi
    if start_node "$p"; then
      ports+=("$p")
    else
      if grep -qi "address already in use" "$DIR/redis-$p.log" 2>/dev/null; then
        log "port $p was taken meanwhile, trying the next one"
        rm -f "$DIR/redis-$p".* "$DIR/nodes-$p.conf"
      else
        log_tail "$p"; die "redis-server on port $p failed to start"
      fi
    fi
    p=$((p + 1))
  done
  log "nodes up on ports ${ports[*]}"

  local addrs=() i
  for p in "${ports[@]}"; do addrs+=("$HOST:$p"); done
  if ! "$REDIS_CLI" --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
      >"$DIR/cluster-create.log" 2>&1; then
    cat "$DIR/cluster-create.log" >&2
    for p in "${ports[@]}"; do log_tail "$p"; done
    die "redis-cli --cluster create failed"
  fi

  # Wait until every node agrees the cluster is healthy.
  local deadline=$((SECONDS + CLUSTER_WAIT)) ok
  while :; do
    ok=1
    for p in "${ports[@]}"; do
      cli "$p" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok' || { ok=0; break; }
    done
    ((ok)) && break
    if ((SECONDS >= deadline)); then
      for p in "${ports[@]}"; do
        echo "---- CLUSTER INFO on $p ----" >&2; cli "$p" cluster info >&2 || true
        log_tail "$p"
      done
      die "cluster_state did not become ok within ${CLUSTER_WAIT}s"
    fi
    sleep 0.2
  done

  local joined
  joined=$(IFS=,; echo "${addrs[*]}")
  echo "$joined" >"$DIR/addrs"
  log "cluster ok: $joined (dir $DIR)"
  echo "$joined"
}

# kill_pids: SIGTERM the redis-servers listed in DIR/*.pid, wait (<=10 s), then SIGKILL.
kill_pids() {
  local f pid pids=() i
  for f in "$DIR"/*.pid; do
    [[ -e $f ]] || continue
    pid=$(tr -dc '0-9' <"$f")
    if pid_is_redis "$pid"; then pids+=("$pid"); fi
  done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do pid_is_redis "$pid" && alive+=("$pid"); done
    ((${#alive[@]})) || return 0
    sleep 0.1
  done
  log "force-killing ${alive[*]}"
  kill -KILL "${alive[@]}" 2>/dev/null || true
}

cmd_stop() {
  if [[ ! -d $DIR ]]; then log "$DIR does not exist; nothing to stop"; return 0; fi
  DIR=$(cd "$DIR" && pwd)
  kill_pids
  if [[ -e $DIR/$MARKER ]]; then
    rm -rf -- "$DIR"
  else
    # Not created by us: remove only our files.
    rm -f -- "$DIR"/redis-*.pid "$DIR"/redis-*.log "$DIR"/redis-*.stderr "$DIR"/nodes-*.conf \
      "$DIR"/addrs "$DIR"/cluster-create.log
    rmdir -- "$DIR" 2>/dev/null || log "left $DIR in place (it holds other files)"
  fi
  log "stopped"
}

(($# == 2)) || usage
DIR=$2
[[ -n $DIR && $DIR != / ]] || usage
case $1 in
  start) cmd_start ;;
  stop) cmd_stop ;;
  *) usage ;;
esac
