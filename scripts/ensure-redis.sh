#!/usr/bin/env bash
# Make sure a Redis answers PING at $REDIS_URL (default redis://127.0.0.1:6379/0).
#
# - Ensures redis-cli exists (package redis-tools; scripts/redis-cluster.sh needs it too).
# - If the URL already answers PONG: done.
# - Otherwise (loopback hosts only) installs redis-server via apt if missing (root only)
#   and starts a throwaway, non-persistent one on that port, then waits for PONG.
set -euo pipefail

REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
WAIT_SECONDS=${WAIT_SECONDS:-15}

log() { echo "ensure-redis: $*" >&2; }
die() { echo "ensure-redis: ERROR: $*" >&2; exit 1; }

# --- parse host, port and optional password out of the URL ----------------------------
rest=${REDIS_URL#*://}                    # drop scheme
[[ $rest != "$REDIS_URL" ]] || die "REDIS_URL must look like redis://host:port/db, got '$REDIS_URL'"
rest=${rest%%/*}                          # drop /db
rest=${rest%%\?*}                         # drop ?query
if [[ $rest == *@* ]]; then               # user:password@ or :password@
  userinfo=${rest%@*}
  rest=${rest##*@}
  [[ $userinfo == *:* ]] && export REDISCLI_AUTH=${userinfo#*:}
fi
if [[ $rest == \[*\]* ]]; then            # [ipv6]:port
  HOST=${rest%%]*}; HOST=${HOST#[}
  PORT=${rest#*]}; PORT=${PORT#:}
elif [[ $rest == *:* ]]; then
  HOST=${rest%:*}; PORT=${rest##*:}
else
  HOST=$rest; PORT=
fi
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-6379}
[[ $PORT =~ ^[0-9]+$ ]] || die "bad port '$PORT' in REDIS_URL '$REDIS_URL'"

# --- helpers ------------------------------------------------------------------------------
# apt_install PKG...: install Debian packages (root only).
apt_install() {
  command -v apt-get >/dev/null || die "need $*, but apt-get is not available; install them manually"
  ((EUID == 0)) || die "need $*, but not running as root; install them: sudo apt-get install -y $*"
  log "installing $* via apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$@" >&2
}

pong() { [[ $(timeout 5 redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null) == PONG ]]; }

# --- 1. redis-cli -------------------------------------------------------------------------
if ! command -v redis-cli >/dev/null; then apt_install redis-tools; fi

# --- 2. already up? -----------------------------------------------------------------------
if pong; then log "Redis at $HOST:$PORT answers PONG"; exit 0; fi

# --- 3. start one (loopback only) ---------------------------------------------------------
case $HOST in
  localhost) BIND=127.0.0.1 ;;
  127.*|::1) BIND=$HOST ;;
  *) die "no Redis answers at $HOST:$PORT and $HOST is not a loopback address; start it yourself" ;;
esac

if ! command -v redis-server >/dev/null; then
  apt_install redis-server redis-tools
  # The Debian package may have started its own service; use it if it is on our port.
  if pong; then log "Redis at $HOST:$PORT answers PONG (package service)"; exit 0; fi
fi

logfile="${TMPDIR:-/tmp}/tokencache-redis-$PORT.log"
log "starting redis-server on $BIND:$PORT (log: $logfile)"
redis-server --daemonize yes --bind "$BIND" --port "$PORT" --save "" --appendonly no \
  --logfile "$logfile" >&2 || die "redis-server failed to start"

for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
  if pong; then log "Redis at $HOST:$PORT answers PONG"; exit 0; fi
  sleep 0.1
done
echo "---- tail of $logfile ----" >&2
tail -n 30 "$logfile" >&2 2>/dev/null || true
die "Redis at $HOST:$PORT did not answer PING within ${WAIT_SECONDS}s"
