#!/usr/bin/env bash
# The qualification tour: a fresh database, a block list, an allow list, value-based
# requirements and the audit log, using only the `crowdgate` command.
set -euo pipefail
BIN=${1:-build/release/src/cli/crowdgate}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
export CROWDGATE_DB="$DIR/demo.db"
step() { printf '\n\033[1m$ crowdgate %s\033[0m\n' "$*"; "$BIN" "$@"; }

step qual create english --description "English proficiency score (0-100)"
step qual create blocked --description "Workers we never want back"
step qual grant english alice --value 92 --reason "placement test"
step qual grant english mturk:A1B2C3 --value 75 --expires 30d --reason "trial period"
step qual grant english alice --value 95 --reason "retest"
printf 'worker,value\nspammer1\nspammer2\nprolific:5f3a9c\n' > "$DIR/block.csv"
step qual import blocked "$DIR/block.csv" --reason "spam in batch 3"
step qual list
step qual show english
step qual revoke blocked spammer2 --reason "appeal accepted"
step worker show alice
step qual history
step --json qual show english
echo
echo "Every change above is in the audit log; requirements such as"
echo "  {qualification_name: english, comparator: GreaterThanOrEqualTo, value: 80}"
echo "are checked against these grants on every request for work."
