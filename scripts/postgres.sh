#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests, listening only on 127.0.0.1.
#   bash scripts/postgres.sh start   install PostgreSQL (Debian packages) if missing, create and
#                                    start the test cluster and database; prints the URL
#   bash scripts/postgres.sh url     prints the URL (postgresql://postgres@127.0.0.1:54329/kao_test)
#   bash scripts/postgres.sh status  exit code 0 when the test cluster is running
#   bash scripts/postgres.sh stop    stops the test cluster (its data stays in $KAO_PG_DIR)
#   bash scripts/postgres.sh restart stops and starts the running test cluster (fast shutdown:
#                                    every connection is cut), as after a server crash or upgrade
# Only the URL goes to stdout, so `export KAO_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start)`
# works; progress and errors go to stderr. `start` is idempotent. Authentication is "trust" for
# loopback connections: never use this cluster for real data.
# Environment: KAO_PG_PORT (default 54329), KAO_PG_DIR (default /tmp/kao-postgres).
set -euo pipefail

PORT=${KAO_PG_PORT:-54329}
BASE=${KAO_PG_DIR:-/tmp/kao-postgres}
DATA=$BASE/data
SOCKETS=$BASE/run
LOG=$BASE/server.log
DB=kao_test
URL=postgresql://postgres@127.0.0.1:$PORT/$DB

say() { echo "postgres.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

# The newest server installed under /usr/lib/postgresql/<version>/bin, or nothing.
find_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  fi
}

# Runs a command as root: directly, or through passwordless sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "PostgreSQL is not installed and this user cannot install it: run as root, or install \
the Debian package postgresql yourself"
  fi
}

install_server() {
  command -v apt-get >/dev/null || die "no PostgreSQL server under /usr/lib/postgresql and no \
apt-get to install one: install PostgreSQL 13 or newer"
  if ! apt-cache policy postgresql 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "updating the apt package lists"
    as_root apt-get update -qq >&2
  fi
  say "installing the Debian package postgresql"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# Runs a command as the owner of the cluster: the postgres system user when we are root (the
# server refuses to run as root), else the current user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

running() {
  [ -n "$BIN" ] && [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

psql_admin() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}

start() {
  BIN=$(find_bin)
  if [ -z "$BIN" ]; then
    install_server
    BIN=$(find_bin)
    [ -n "$BIN" ] || die "installed postgresql but found no server under /usr/lib/postgresql/*/bin"
  fi
  if ! running; then
    mkdir -p "$BASE"
    if [ "$(id -u)" -eq 0 ]; then
      id postgres >/dev/null 2>&1 || die "there is no postgres system user (the Debian package \
postgresql creates it)"
      chown postgres: "$BASE"
    fi
    chmod 700 "$BASE"
    as_owner mkdir -p "$SOCKETS"
    if [ ! -f "$DATA/PG_VERSION" ]; then
      say "creating the test cluster in $DATA ($("$BIN/postgres" --version))"
      as_owner rm -rf "$DATA"
      as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 ||
        die "initdb failed; see $BASE/initdb.log: $(tail -n 5 "$BASE/initdb.log")"
      as_owner tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
# scripts/postgres.sh: a test cluster reachable only from this machine. Its data is
# disposable, so it skips the flushes to disk that only matter if the machine loses power.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKETS'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    fi
    say "starting the test cluster on 127.0.0.1:$PORT (log: $LOG)"
    # 9>&-: the server must not inherit (and so hold forever) the lock taken below.
    as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null 9>&- ||
      die "the server did not start; the end of $LOG:
$(tail -n 20 "$LOG" 2>/dev/null)"
  fi
  if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE $DB" >/dev/null 2>&1 ||
      [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" = 1 ] ||
      die "could not create the database $DB"
  fi
  echo "$URL"
}

stop() {
  BIN=$(find_bin)
  if running; then
    as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
    say "stopped the test cluster on port $PORT"
  else
    say "the test cluster is not running"
  fi
}

restart() {
  BIN=$(find_bin)
  running || die "the test cluster is not running (bash scripts/postgres.sh start)"
  as_owner "$BIN/pg_ctl" restart -D "$DATA" -l "$LOG" -m fast -w -t 60 >/dev/null 9>&- ||
    die "the server did not restart; the end of $LOG:
$(tail -n 20 "$LOG" 2>/dev/null)"
  say "restarted the test cluster on port $PORT"
}

mkdir -p "$(dirname "$BASE")"
case "${1:-}" in
  start)
    # Two `start`s at once (two test runs) take turns.
    exec 9>"$BASE.lock"
    flock 9
    start
    ;;
  stop)
    exec 9>"$BASE.lock"
    flock 9
    stop
    ;;
  restart)
    exec 9>"$BASE.lock"
    flock 9
    restart
    ;;
  url) echo "$URL" ;;
  status)
    BIN=$(find_bin)
    running
    ;;
  *)
    echo "usage: bash scripts/postgres.sh start|stop|restart|url|status" >&2
    exit 2
    ;;
esac
