#!/usr/bin/env python3
"""Bench: `crowdgate import-mephisto` of a Mephisto database with 1,000,000 grants.

Builds a Mephisto database (tests/data/mephisto/schema_after_2024.sql) holding WORKERS workers
with GRANTS_PER_WORKER grants each over 20 qualifications (MTurk, Prolific and mock workers),
then times, as separate processes, with their CPU time and peak resident memory (getrusage of the child):
  first     the import into an empty crowdgate database
  again     the same import again (nothing changed: nothing is written)
  changed   after 1% of the values changed in Mephisto
  mirror    --mirror after 1% of the grants were deleted in Mephisto

Usage: bench/mephisto_import.py [--workers N] [--grants-per-worker K] [--bin build/release/src/cli/crowdgate]
"""
import argparse
import os
import pathlib
import random
import resource
import sqlite3
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def build_mephisto(path, workers, per_worker, rng):
    con = sqlite3.connect(path)
    con.executescript((ROOT / "tests/data/mephisto/schema_after_2024.sql").read_text())
    quals = [(i + 1, f"bench-qual-{i}") for i in range(20)]
    con.executemany("INSERT INTO qualifications (qualification_id, qualification_name) VALUES (?, ?)", quals)
    providers = ["mturk", "prolific", "mock"]

    def worker_rows():
        for w in range(workers):
            p = providers[w % 3]
            name = f"W{w:08d}" if p != "mock" else f"w{w}_sandbox"
            yield (w + 1, name, p)

    con.executemany("INSERT INTO workers (worker_id, worker_name, provider_type) VALUES (?, ?, ?)", worker_rows())

    def grant_rows():
        for w in range(workers):
            for q in rng.sample(range(1, 21), per_worker):
                yield (w + 1, q, rng.randint(0, 100))

    con.executemany("INSERT INTO granted_qualifications (worker_id, qualification_id, value) VALUES (?, ?, ?)",
                    grant_rows())
    con.commit()
    con.close()


def timed(cmd):
    start = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    out = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr}")
    # ru_maxrss of children is the largest of any child so far: runs are ordered small to large
    # after the first, so report it only when it grew.
    return seconds, cpu, peak_kb if peak_kb > before else None, out.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=200_000)
    ap.add_argument("--grants-per-worker", type=int, default=5)
    ap.add_argument("--bin", default=str(ROOT / "build/release/src/cli/crowdgate"))
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        mephisto = os.path.join(tmp, "database.db")
        crowd = os.path.join(tmp, "crowdgate.db")
        t0 = time.perf_counter()
        build_mephisto(mephisto, args.workers, args.grants_per_worker, rng)
        grants = args.workers * args.grants_per_worker
        print(f"Mephisto database: {args.workers} workers, {grants} grants, built in {time.perf_counter() - t0:.1f} s")
        cmd = [args.bin, "--db", crowd, "--json", "import-mephisto", mephisto]
        for label, prepare, extra in [
            ("first", None, []),
            ("again", None, []),
            ("changed", "UPDATE granted_qualifications SET value = value + 1 WHERE granted_qualification_id % 100 = 0", []),
            ("mirror", "DELETE FROM granted_qualifications WHERE granted_qualification_id % 100 = 1", ["--mirror"]),
        ]:
            if prepare:
                con = sqlite3.connect(mephisto)
                con.execute(prepare)
                con.commit()
                con.close()
            seconds, cpu, peak_kb, out = timed(cmd + extra)
            peak = f"{peak_kb / 1024:.0f} MB" if peak_kb else "(below an earlier run)"
            summary = out.strip().replace("\n", " ")
            print(f"{label:8} {seconds:6.2f} s (CPU {cpu:5.2f} s)  peak RSS {peak:>10}  {summary[:160]}")


if __name__ == "__main__":
    main()
