# crowdgate: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/setup.sh), then build.
JOBS ?= $(shell nproc)
CTEST_FLAGS ?= --output-on-failure -j $(JOBS)
# Targets built under ThreadSanitizer (tests labelled "concurrency").
TSAN_TARGETS ?= http_test dispatcher_test batch_queue_test
# libFuzzer harnesses (fuzz/, clang, ASan+UBSan): seconds per target in `make test` and in
# `make fuzz-long`.
FUZZ_TARGETS ?= config_fuzz requirement_fuzz csv_jsonl_fuzz http_fuzz
FUZZ_SHORT_SECONDS ?= 10
FUZZ_SECONDS ?= 600

.PHONY: setup build build-cli build-asan build-tsan build-fuzz test test-release test-browser test-pg test-asan test-tsan test-fuzz fuzz-long demo tour bench bench-pg clean

setup:
	bash scripts/setup.sh

build: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

# Only the crowdgate binary (what `make demo` needs).
build-cli: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target crowdgate

build-asan: setup
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

build-tsan: setup
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TARGETS)

.PHONY: python bench-mephisto package

# The Python module `crowdgate` (python/; import it with PYTHONPATH=build/release/python /usr/bin/python3).
python: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target crowdgate_python

# Only the fuzz harnesses and the libraries they link.
build-fuzz: setup
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS) --target $(FUZZ_TARGETS)

# Everything but the PostgreSQL tests (test-pg runs those, with a server).
test-release: build
	cd build/release && ctest $(CTEST_FLAGS) -LE postgres

# The dashboard in Chromium alone (also part of test-release).
test-browser: build
	cd build/release && ctest $(CTEST_FLAGS) -L browser

# The tests labelled postgres, against a throwaway PostgreSQL cluster (scripts/with_pg.sh starts it,
# sets CROWDGATE_TEST_PG, and stops and removes it afterwards).
test-pg: build
	cd build/release && bash ../../scripts/with_pg.sh ctest $(CTEST_FLAGS) -L postgres

# AddressSanitizer + UndefinedBehaviorSanitizer over every test (but packaging: the .deb holds the release binary).
test-asan: build-asan
	cd build/asan && ASAN_OPTIONS=detect_leaks=1 ctest $(CTEST_FLAGS) -LE "postgres|package"

# ThreadSanitizer over the tests that exercise concurrency.
test-tsan: build-tsan
	cd build/tsan && ctest $(CTEST_FLAGS) -L concurrency

# A short libFuzzer run of each harness from a fresh copy of the seeds (fuzz/corpus/).
test-fuzz: build-fuzz
	rm -rf build/fuzz/short
	bash fuzz/run.sh $(FUZZ_SHORT_SECONDS) build/fuzz/short $(FUZZ_TARGETS)

# Longer local runs; the corpus grows in build/fuzz/long between runs.
fuzz-long: build-fuzz
	bash fuzz/run.sh $(FUZZ_SECONDS) build/fuzz/long $(FUZZ_TARGETS)

test: test-release test-pg test-asan test-tsan test-fuzz
	@echo "make test: all tests passed (release, postgresql, asan+ubsan, tsan, fuzz)"

# The main job: the sentiment example with a simulated crowd, and what quality control did.
demo: build-cli
	build/release/src/cli/crowdgate demo

# A scripted tour of the qualification commands on a fresh database.
tour: build-cli
	bash scripts/qual_tour.sh build/release/src/cli/crowdgate

bench: build
	build/release/bench/crowdgate_bench

# Issue #6: the http-work crowd against 1 and 3 `crowdgate serve` processes on PostgreSQL, beside 1 on SQLite, in
# one run, after http-work itself (in process, SQLite) for reference (scripts/with_pg.sh starts a throwaway
# PostgreSQL cluster and sets CROWDGATE_TEST_PG).
# BENCH_PG_ARGS=--smoke for a quick correctness run.
BENCH_PG_ARGS ?=
bench-pg: build
	bash scripts/with_pg.sh build/release/bench/crowdgate_bench $(BENCH_PG_ARGS) http-work http-work-pg

# import-mephisto of a Mephisto database with 1,000,000 grants: seconds and peak memory.
bench-mephisto: build-cli
	/usr/bin/python3 bench/mephisto_import.py

# The Debian package build/release/crowdgate_<version>_<arch>.deb: the binary, the systemd unit, /etc/default/crowdgate
# (packaging/). Only the crowdgate binary is built for it.
package: build-cli
	cd build/release && cpack -G DEB

clean:
	rm -rf build
