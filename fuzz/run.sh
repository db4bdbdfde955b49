#!/usr/bin/env bash
# Runs libFuzzer harnesses for a fixed time each: fuzz/run.sh SECONDS WORKDIR TARGET...
# (`make test-fuzz` and `make fuzz-long` call it). The seeds in fuzz/corpus/TARGET are
# copied into WORKDIR/corpus/TARGET, so the repository is never modified; new inputs
# accumulate there between runs unless WORKDIR is wiped. Crashing inputs go to
# WORKDIR/crashes/TARGET/ (crash-*, leak-*, timeout-*, oom-*); the log of each run is
# WORKDIR/logs/TARGET.log. Exits non-zero on the first target that fails.
set -euo pipefail
seconds=$1; workdir=$2; shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${FUZZ_BIN_DIR:-$root/build/fuzz/fuzz}
for t in "$@"; do
  corpus=$workdir/corpus/$t; crashes=$workdir/crashes/$t; log=$workdir/logs/$t.log
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  cp -n "$root/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  echo "fuzz: $t for ${seconds}s (corpus $corpus)"
  if ! "$bindir/$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=0 \
       -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED; input saved in $crashes/ (log $log)."
    echo "fuzz: reproduce with: $bindir/$t $crashes/<file>"
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed "s/^/fuzz: $t: /" || true
done
