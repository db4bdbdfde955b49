# crowdgate: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/setup.sh), then build.
JOBS ?= $(shell nproc)
CTEST_FLAGS ?= --output-on-failure -j $(JOBS)
# Targets built under ThreadSanitizer (tests labelled "concurrency").
TSAN_TARGETS ?= http_test engine_test dispatcher_test

.PHONY: setup build build-cli build-asan build-tsan test test-release test-asan test-tsan demo tour bench clean

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
	cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TARGETS) crowdgate

test-release: build
	cd build/release && ctest $(CTEST_FLAGS)

# AddressSanitizer + UndefinedBehaviorSanitizer over every test.
test-asan: build-asan
	cd build/asan && ASAN_OPTIONS=detect_leaks=1 ctest $(CTEST_FLAGS)

# ThreadSanitizer over the tests that exercise concurrency.
test-tsan: build-tsan
	cd build/tsan && ctest $(CTEST_FLAGS) -L concurrency

test: test-release test-asan test-tsan
	@echo "make test: all tests passed (release, asan+ubsan, tsan)"

# The main job: the sentiment example with a simulated crowd, and what quality control did.
demo: build-cli
	build/release/src/cli/crowdgate demo

# A scripted tour of the qualification commands on a fresh database.
tour: build-cli
	bash scripts/qual_tour.sh build/release/src/cli/crowdgate

bench: build
	build/release/bench/crowdgate_bench

clean:
	rm -rf build
