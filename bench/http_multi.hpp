// Workload `http-work-pg` (scale-out): the http-work crowd (1,000 keep-alive connections doing work +
// submit, offered 10,000 requests/s) against `crowdgate serve` CHILD PROCESSES instead of an in-process server:
// one server on SQLite, then one and three servers sharing one PostgreSQL (and three on one SQLite file, for
// reference), all measured in the same run, with the ratios 3 servers / 1 server and PostgreSQL / SQLite.
//
// PostgreSQL comes from $CROWDGATE_TEST_PG (a maintenance URI such as postgresql://postgres@127.0.0.1:PORT/postgres;
// `make bench-pg` runs the bench through scripts/with_pg.sh, which starts a throwaway cluster and sets it). Each
// measured setup gets a fresh database (CREATE DATABASE through libpqxx), dropped afterwards. The crowdgate binary is
// $CROWDGATE_BIN, else the one built beside the bench. CROWDGATE_BENCH_PG_SETUPS=sqlite-1,pg-1,pg-3,sqlite-3 (the
// default) picks the setups measured; the ratio rows need sqlite-1, pg-1 and pg-3.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"

namespace crowdgate::bench {

// One row of crowdgate_bench's table; `json` (when not null) is printed as the row's JSON line, with these keys
// added to the usual workload/metric/median/... ones.
struct MultiRow {
  std::string workload;
  std::string metric;
  Stats stats;
  std::string unit;
  std::string target;
  bool met = true;
  std::string note;
  nlohmann::json json;
};

struct HttpMultiOptions {
  bool smoke = false;
  int runs = 5;
  bool named = false;  // asked for by name (not as part of "every workload")
};

// Runs the workload and hands every row to `report`; returns the number of failed correctness checks (errors seen,
// setup failures). Without $CROWDGATE_TEST_PG: skipped with a message under --smoke or as part of every workload,
// refused (exit 2, naming what to set) when asked for by name.
int HttpWorkPg(const HttpMultiOptions& options, const std::function<void(const MultiRow&)>& report);

// Workload `overload` (load shedding): one `crowdgate serve` child process on SQLite with `--max-queue 200`, and 10x
// as many closed-loop connections (2,000, each sending its next request as soon as it has an answer, no think time)
// doing work + submit. Reports the throughput of answered requests, the share answered 503 (with Retry-After) and
// the server's resident memory sampled every 50 ms (start, peak, end); then the same with clients that wait the
// second Retry-After asks for after a 503; then the first crowd against the default --max-queue (4,096: nothing
// shed). Checks that every non-200 is a 503 and that the server stops cleanly.
int Overload(const HttpMultiOptions& options, const std::function<void(const MultiRow&)>& report);

}  // namespace crowdgate::bench
