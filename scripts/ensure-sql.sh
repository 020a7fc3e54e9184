#!/usr/bin/env bash
# Make sure PostgreSQL and MariaDB answer on loopback for the sqlstore suites:
#   postgres://root@127.0.0.1:5432/test?sslmode=disable and mysql://root@127.0.0.1:3306/test
#
# For each server: if it already answers, nothing is changed. Otherwise (root only) the
# package is installed when missing (postgresql, mariadb-server), the server is started
# without systemd, and the role/user root (trusted on 127.0.0.1, no password) and the
# database test are created. Meant for CI machines and throwaway containers: it changes
# authentication settings of a local server that did not answer.
set -euo pipefail

WAIT_SECONDS=${WAIT_SECONDS:-30}
log() { echo "ensure-sql: $*" >&2; }
die() { echo "ensure-sql: ERROR: $*" >&2; exit 1; }

apt_install() {
  [[ $(id -u) == 0 ]] || die "cannot install $* (not root)"
  log "installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@"
}

# wait_for CMD...: run CMD until it succeeds or WAIT_SECONDS pass.
wait_for() {
  local i
  for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# --- PostgreSQL ---------------------------------------------------------------------
pg_answers() { psql -h 127.0.0.1 -p 5432 -U root -d test -Atc 'SELECT 1' | grep -qx 1; }

ensure_postgres() {
  command -v psql >/dev/null && pg_answers 2>/dev/null && { log "PostgreSQL answers"; return; }
  [[ -d /etc/postgresql ]] || apt_install postgresql postgresql-client
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  [[ -n $version ]] || die "no cluster under /etc/postgresql"
  local hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q '^host all root 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all root 127.0.0.1/32 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
  wait_for su postgres -c "psql -Atc 'SELECT 1'" || die "PostgreSQL $version did not start"
  su postgres -c "psql -v ON_ERROR_STOP=1 -q" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF;
END $$;
SQL
  su postgres -c "psql -Atc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -qx 1 ||
    su postgres -c "createdb -O root test"
  wait_for pg_answers || die "PostgreSQL does not answer as root@127.0.0.1/test"
  log "PostgreSQL $version started"
}

# --- MariaDB ------------------------------------------------------------------------
my_answers() { mysql -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' test; }

ensure_mariadb() {
  command -v mysql >/dev/null && my_answers >/dev/null 2>&1 && { log "MariaDB answers"; return; }
  [[ -x /usr/sbin/mariadbd ]] || apt_install mariadb-server mariadb-client
  install -d -o mysql -g mysql /run/mysqld
  if ! mysqladmin ping >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --chuid mysql --exec /usr/sbin/mariadbd -- --user=mysql
  fi
  wait_for mysqladmin ping || die "MariaDB did not start"
  # A TCP connection from 127.0.0.1 may be matched as root@localhost, which a fresh
  # Debian install authenticates by unix_socket only: let it in without a password too.
  mysql -u root <<'SQL'
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('');
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS test;
FLUSH PRIVILEGES;
SQL
  wait_for my_answers || die "MariaDB does not answer as root@127.0.0.1/test"
  log "MariaDB started"
}

ensure_postgres
ensure_mariadb
