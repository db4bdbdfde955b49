#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests.
#
#   scripts/pg_cluster.sh start DIR   initdb into DIR (trust auth, superuser "postgres"), start it on a
#                                     free port on 127.0.0.1 with its unix socket inside DIR, and print
#                                     ONE line on stdout: postgresql://postgres@127.0.0.1:PORT/postgres
#   scripts/pg_cluster.sh stop DIR    stop it (fast shutdown) and remove DIR
#
# Settings are for tests only: fsync=off, synchronous_commit=off. Everything but the URI goes to
# stderr; the server log is DIR/postgres.log. PostgreSQL refuses to run as root: when run as root
# the cluster runs as the "postgres" user, so DIR must be somewhere that user can reach (/tmp).
# PG_BIN overrides the directory holding initdb/pg_ctl (default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

usage() {
  echo "usage: $0 start DIR | stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    echo "$PG_BIN"
    return
  fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then
    echo "$newest"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  else
    echo "pg_cluster: initdb not found (install the postgresql package: bash scripts/setup.sh)" >&2
    exit 1
  fi
}

# Runs a PostgreSQL program as the user that owns the cluster.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -e "$dir/data" ]; then
    echo "pg_cluster: $dir/data already exists (stop it first: $0 stop $dir)" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      echo "pg_cluster: running as root needs the 'postgres' user (install the postgresql package)" >&2
      exit 1
    fi
    chown postgres: "$dir"
    chmod 700 "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "pg_cluster: user postgres cannot write $dir (use a directory under /tmp)" >&2
      exit 1
    fi
  fi
  as_owner "$bin/initdb" -D "$dir/data" --auth=trust -U postgres -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    echo "pg_cluster: initdb failed" >&2
    exit 1
  }
  local attempt port
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if port_in_use "$port"; then continue; fi
    # A port taken between the probe and the bind makes the start fail: try another one.
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >&2; then
      echo "$port" >"$dir/port"
      echo "postgresql://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
  done
  tail -n 20 "$dir/postgres.log" >&2 || true
  echo "pg_cluster: could not start PostgreSQL in $dir" >&2
  exit 1
}

stop() {
  if [ ! -d "$dir" ]; then return 0; fi
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/data/postmaster.pid" ]; then
    local bin
    bin=$(pg_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || echo "pg_cluster: pg_ctl stop failed" >&2
  fi
  rm -rf "$dir"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
