#!/usr/bin/env bash
# The streaming figures of BENCHMARKS.md part 4 ("Export, stats, purge
# streaming"): peak RSS and wall time of the built tokencache binary
# exporting (JSON lines and Zoho CSV, with secrets, to /dev/null) and
# counting (stats) every token of a private Redis, at each size, beside the
# same commands built from a baseline revision (default main) at the sizes
# up to EXPORT_BASELINE_MAX; then purge at the largest size. SLOWLOG
# (slowlog-log-slower-than 2000 µs) is read after every command: any
# command over 2 ms is named.
#
#   scripts/bench-export.sh
#
# Env: SCALE_PORT (default 7710), EXPORT_SIZES (default 100000,1000000),
# EXPORT_BASELINE_REF (default main), EXPORT_BASELINE_MAX (default 100000),
# GO (default go). Needs /usr/bin/time (GNU time) and redis-server.
set -euo pipefail

GO=${GO:-go}
PORT=${SCALE_PORT:-7710}
SIZES=${EXPORT_SIZES:-100000,1000000}
BASE_REF=${EXPORT_BASELINE_REF:-main}
BASE_MAX=${EXPORT_BASELINE_MAX:-100000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tokencache-export.XXXXXX")
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "bench-export: port $PORT is in use; set SCALE_PORT" >&2; exit 1
fi
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --logfile "$dir/redis.log" --daemonize no &
pid=$!
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
rc() { redis-cli -p "$PORT" "$@"; }
rc config set slowlog-log-slower-than 2000 >/dev/null
rc config set slowlog-max-len 100000 >/dev/null
echo "bench-export: private redis-server pid $pid on 127.0.0.1:$PORT ($(redis-server --version | cut -d' ' -f3))" >&2

"$GO" build -o "$dir/tokencache-new" ./cmd/tokencache
mkdir "$dir/base"
git archive "$BASE_REF" | tar -x -C "$dir/base"
(cd "$dir/base" && "$GO" build -o "$dir/tokencache-base" ./cmd/tokencache)
echo "bench-export: new = $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty), base = $BASE_REF ($(git rev-parse --short "$BASE_REF"))" >&2

url="redis://127.0.0.1:$PORT/0"
# measure NAME BINARY ARGS...: one row of the table.
measure() {
  local name=$1 bin=$2; shift 2
  rc slowlog reset >/dev/null
  /usr/bin/time -v -o "$dir/time.txt" "$bin" "$@" --redis "$url" >/dev/null 2>"$dir/err.txt" </dev/null || {
    echo "bench-export: $name $* failed:" >&2; cat "$dir/err.txt" >&2; return 1; }
  local rss wall slow
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$dir/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
  # SLOWLOG GET: [id, time, µs, [command words], client, name]; by command:
  # how many took over 2 ms, and the longest.
  slow=$(rc --json slowlog get 100000 | python3 -c '
import json, sys
by = {}
for e in json.load(sys.stdin):
    c = by.setdefault(e[3][0].upper(), [0, 0])
    c[0] += 1
    c[1] = max(c[1], e[2])
print("; ".join("%s ×%d (max %.1f ms)" % (k, v[0], v[1] / 1000) for k, v in sorted(by.items())))')
  printf '| %s | %s | %s | %s MiB | %s | %s | %s |\n' "$n" "$name" "$*" "$rss" "$wall" "${slow:-none}" "$(cut -d' ' -f1 /proc/loadavg)"
  grep -o 'exported [0-9]* tokens\|^tokens: *[0-9]*\|deleted [0-9]* tokens' "$dir/err.txt" >&2 || true
}

echo "| tokens | binary | command | peak RSS | wall | SLOWLOG > 2 ms | load (1 min) |"
echo "|---|---|---|---|---|---|---|"
have=0
IFS=, read -ra sizes <<<"$SIZES"
for n in "${sizes[@]}"; do
  if (( n > have )); then
    env -u TOKENCACHE_CLUSTER_ADDRS REDIS_URL="$url" TOKENCACHE_REQUIRE_REDIS=1 TOKENCACHE_SCALE_POPULATE=$((n - have)) \
      "$GO" test -count=1 -run '^TestPopulate$' -timeout 60m ./internal/scalebench/ >&2
    have=$n
  fi
  rc slowlog reset >/dev/null
  for bin in new base; do
    if [[ $bin == base ]] && (( n > BASE_MAX )); then continue; fi
    measure "$bin" "$dir/tokencache-$bin" export --include-secrets
    measure "$bin" "$dir/tokencache-$bin" export --format zoho-csv --include-secrets
    measure "$bin" "$dir/tokencache-$bin" stats
  done
done
measure new "$dir/tokencache-new" purge --yes
echo "load: $(uptime)" >&2
