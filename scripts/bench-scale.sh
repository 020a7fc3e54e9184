#!/usr/bin/env bash
# make bench-scale: the scale measurement (internal/scalebench) on a private
# Redis that this script starts and stops, never on a shared server.
#
#   scripts/bench-scale.sh             # standalone redis-server on SCALE_PORT (default 7710)
#   SCALE_CLUSTER=1 scripts/bench-scale.sh   # 3-master cluster from BASE_PORT (default 7701)
#
# Env: TOKENCACHE_SCALE_SIZES (default 1000,10000,100000,1000000; cluster
# default 1000,10000,100000), TOKENCACHE_SCALE_PAIRS (lookups per rule,
# default 2000), GO (default go).
set -euo pipefail

GO=${GO:-go}
PORT=${SCALE_PORT:-7710}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tokencache-scale.XXXXXX")
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  if [[ ${SCALE_CLUSTER:-} == 1 ]]; then bash scripts/redis-cluster.sh stop "$dir" || true; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [[ ${SCALE_CLUSTER:-} == 1 ]]; then
  addrs=$(BASE_PORT=${BASE_PORT:-7701} bash scripts/redis-cluster.sh start "$dir")
  echo "bench-scale: cluster $addrs" >&2
  export TOKENCACHE_SCALE_SIZES=${TOKENCACHE_SCALE_SIZES:-1000,10000,100000}
  env -u REDIS_URL TOKENCACHE_CLUSTER_ADDRS="$addrs" TOKENCACHE_REQUIRE_REDIS=1 TOKENCACHE_BENCH_SCALE=1 \
    "$GO" test -count=1 -v -timeout 60m -run TestScale ./internal/scalebench/
else
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "bench-scale: port $PORT is in use; set SCALE_PORT" >&2; exit 1
  fi
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no &
  pid=$!
  for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "bench-scale: private redis-server pid $pid on 127.0.0.1:$PORT ($(redis-server --version | cut -d' ' -f3))" >&2
  env -u TOKENCACHE_CLUSTER_ADDRS REDIS_URL="redis://127.0.0.1:$PORT/0" TOKENCACHE_REQUIRE_REDIS=1 TOKENCACHE_BENCH_SCALE=1 \
    "$GO" test -count=1 -v -timeout 60m -run TestScale ./internal/scalebench/
fi
