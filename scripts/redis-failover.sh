#!/usr/bin/env bash
# Throwaway Redis master, replica and three Sentinels on loopback, for the failover test.
#
#   scripts/redis-failover.sh start DIR   # start them; print the Sentinel addresses
#   scripts/redis-failover.sh stop DIR    # kill exactly the pids in DIR/*.pid, then remove DIR
#
# Ports: master BASE_PORT, replica BASE_PORT+1, Sentinels BASE_PORT+2..BASE_PORT+4
# (BASE_PORT default 7301; the five ports must be free). The master is monitored as
# MASTER_NAME (default tokencache-failover) with quorum 2, down-after 1000 ms.
# start writes DIR/env (TOKENCACHE_SENTINEL_ADDRS, TOKENCACHE_SENTINEL_MASTER,
# TOKENCACHE_FAILOVER_DIR) and prints the comma-separated Sentinel addresses on stdout;
# progress goes to stderr. Every server has its config file DIR/<name>-PORT.conf, so a
# test that SIGKILLs one can start it again with `redis-server DIR/redis-PORT.conf`
# (it then writes the same pid file, and stop still finds it).
# Env: BASE_PORT, MASTER_NAME, REDIS_SERVER, REDIS_CLI, WAIT_SECONDS (default 30).
set -euo pipefail

BASE_PORT=${BASE_PORT:-7301}
MASTER_NAME=${MASTER_NAME:-tokencache-failover}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
WAIT_SECONDS=${WAIT_SECONDS:-30}
HOST=127.0.0.1
MARKER=.tokencache-redis-failover   # marks DIR as ours, so stop may rm -rf it

log() { echo "redis-failover: $*" >&2; }
die() { echo "redis-failover: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
cli() { local p=$1; shift; timeout 5 "$REDIS_CLI" -h "$HOST" -p "$p" "$@" 2>/dev/null; }

# pid_is_ours PID: a live, non-zombie redis-server / redis-sentinel process.
pid_is_ours() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$1/comm" 2>/dev/null) == redis-* ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# wait_up PORT NAME: until the server whose pid file is DIR/NAME-PORT.pid answers PING itself.
wait_up() {
  local p=$1 name=$2 i pid
  for ((i = 0; i < 100; i++)); do
    pid=$(cat "$DIR/$name-$p.pid" 2>/dev/null || true)
    if [[ -n $pid && $(cli "$p" ping) == PONG ]] &&
      cli "$p" info server | tr -d '\r' | grep -qx "process_id:$pid"; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$DIR/$name-$p.log" >&2 || true
  die "$name on port $p did not come up"
}

server_conf() { # PORT [replicaof-port]
  local p=$1
  cat <<EOF
port $p
bind $HOST
daemonize yes
pidfile $DIR/redis-$p.pid
logfile $DIR/redis-$p.log
dir $DIR
dbfilename dump-$p.rdb
save ""
appendonly no
replica-announce-ip $HOST
EOF
  if (($# > 1)); then echo "replicaof $HOST $2"; fi
}

sentinel_conf() { # PORT MASTER-PORT
  cat <<EOF
port $1
bind $HOST
daemonize yes
pidfile $DIR/sentinel-$1.pid
logfile $DIR/sentinel-$1.log
dir $DIR
sentinel announce-ip $HOST
sentinel monitor $MASTER_NAME $HOST $2 2
sentinel down-after-milliseconds $MASTER_NAME 1000
sentinel failover-timeout $MASTER_NAME 5000
sentinel parallel-syncs $MASTER_NAME 1
EOF
}

cmd_start() {
  command -v "$REDIS_SERVER" >/dev/null || die "$REDIS_SERVER not found (apt-get install -y redis-server)"
  command -v "$REDIS_CLI" >/dev/null || die "$REDIS_CLI not found (apt-get install -y redis-tools)"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if compgen -G "$DIR/*.pid" >/dev/null; then die "$DIR already holds servers; run: $0 stop $DIR"; fi
  if [[ -z $(ls -A "$DIR") ]]; then : >"$DIR/$MARKER"; fi
  trap 'rc=$?; if ((rc != 0)); then kill_pids; fi' EXIT

  local m=$BASE_PORT r=$((BASE_PORT + 1)) p
  for ((p = BASE_PORT; p <= BASE_PORT + 4; p++)); do
    ! port_busy "$p" || die "port $p is taken (set BASE_PORT to a free range of 5 ports)"
  done
  server_conf "$m" >"$DIR/redis-$m.conf"
  "$REDIS_SERVER" "$DIR/redis-$m.conf" >/dev/null
  wait_up "$m" redis
  server_conf "$r" "$m" >"$DIR/redis-$r.conf"
  "$REDIS_SERVER" "$DIR/redis-$r.conf" >/dev/null
  wait_up "$r" redis
  local sentinels=()
  for ((p = BASE_PORT + 2; p <= BASE_PORT + 4; p++)); do
    sentinel_conf "$p" "$m" >"$DIR/sentinel-$p.conf"
    "$REDIS_SERVER" "$DIR/sentinel-$p.conf" --sentinel >/dev/null
    wait_up "$p" sentinel
    sentinels+=("$HOST:$p")
  done

  # Ready once the replica is in sync and every Sentinel sees the replica and its peers.
  local deadline=$((SECONDS + WAIT_SECONDS)) ok
  while :; do
    ok=1
    cli "$m" info replication | tr -d '\r' | grep -q "^slave0:.*state=online" || ok=0
    for ((p = BASE_PORT + 2; p <= BASE_PORT + 4; p++)); do
      local info
      info=$(cli "$p" sentinel master "$MASTER_NAME" | tr -d '\r' | paste -sd' ')
      [[ $info == *"num-slaves 1"* && $info == *"num-other-sentinels 2"* ]] || ok=0
    done
    ((ok)) && break
    ((SECONDS < deadline)) || die "replication or Sentinels not ready within ${WAIT_SECONDS}s"
    sleep 0.2
  done

  local joined
  joined=$(IFS=,; echo "${sentinels[*]}")
  {
    echo "TOKENCACHE_SENTINEL_ADDRS=$joined"
    echo "TOKENCACHE_SENTINEL_MASTER=$MASTER_NAME"
    echo "TOKENCACHE_FAILOVER_DIR=$DIR"
  } >"$DIR/env"
  log "master $HOST:$m, replica $HOST:$r, sentinels $joined (dir $DIR)"
  echo "$joined"
}

kill_pids() {
  local f pid pids=() i
  for f in "$DIR"/*.pid; do
    [[ -e $f ]] || continue
    pid=$(tr -dc '0-9' <"$f")
    if pid_is_ours "$pid"; then pids+=("$pid"); fi
  done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do pid_is_ours "$pid" && alive+=("$pid"); done
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
    rm -f -- "$DIR"/redis-*.{pid,log,conf} "$DIR"/sentinel-*.{pid,log,conf} "$DIR"/dump-*.rdb "$DIR"/env
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
