#!/usr/bin/env bash
# scripts/with_pg.sh CMD ARGS...: runs CMD with a throwaway PostgreSQL cluster.
#
# Starts a cluster in a fresh temporary directory (scripts/pg_cluster.sh), exports its URI as
# CROWDGATE_TEST_PG (postgresql://postgres@127.0.0.1:PORT/postgres), runs CMD, then always stops the
# cluster and removes the directory, and exits with CMD's status.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# As root the cluster runs as the postgres user, who must reach the directory: use /tmp then.
base=${TMPDIR:-/tmp}
if [ "$(id -u)" -eq 0 ]; then base=/tmp; fi
dir=$(mktemp -d "$base/crowdgate_pg.XXXXXX")
cleanup() {
  bash "$here/pg_cluster.sh" stop "$dir" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
uri=$(bash "$here/pg_cluster.sh" start "$dir")
export CROWDGATE_TEST_PG="$uri"
echo "with_pg: CROWDGATE_TEST_PG=$uri" >&2
status=0
"$@" || status=$?
exit "$status"
