// crowdgate_bench: the named benchmark workloads (README "Performance"), run by `make bench`.
//
//   crowdgate_bench [--smoke] [--runs N] [--json-only] [WORKLOAD...]
//
// Workloads (default: all):
//   eligibility    GrantIndex::Check of one worker against 5 requirements, 100k workers x 20 quals, one core
//   gold-decision  Dispatcher::RequestWork + Submit in process on SQLite, a run with golds (no HTTP)
//   http-work      1,000 keep-alive connections doing work + submit against the TaskServer on SQLite,
//                  paced at 10,000 requests/s offered: throughput, p50/p99/p999, errors
//   http-latency   http-work at 2,500 / 5,000 / 7,500 / 10,000 requests/s offered: p50 and p99 at each
//   http-saturate  the same crowd with no think time: the most requests/s the server gives
//   group-commit   http-saturate with one commit per request vs group commit, alternating: the ratio
//   grant-import   `qual import` of 1 million CSV rows (read + parse + Engine::Import), own process
//   launch         RunDispatcher::Launch of a run of 1 million units, own process
//   memory         resident size of an Engine holding 1 million workers x 5 grants, own process
//   scaling        eligibility and http-work at 1k / 10k / 100k / 1M workers
//   http-work-pg   http-work against 1 and 3 `crowdgate serve` processes on PostgreSQL ($CROWDGATE_TEST_PG) and 1 on SQLite
//   overload       2,000 closed-loop connections against one `crowdgate serve --max-queue 200` (10x its queue):
//                  answered requests/s, share of 503 + Retry-After, server RSS start/peak/end; again with clients
//                  that wait Retry-After (/backoff); beside the default queue
//   aggregate      label aggregation of 1M judgments (100k items x 10 workers, 3 classes): majority vote,
//                  Dawid-Skene and Wawa compute on one core, the whole `crowdgate aggregate --input` command,
//                  accuracy of each against the simulated truth
//   provider-sync  100,000 queued grant changes (20k Prolific workers x 5, on a study's block list) drained by
//                  ProviderHub::DrainOnce to the fake Prolific server throttling 10 % of calls: changes/s,
//                  calls/s; none lost or doubled, each worker's calls in order
//   quality        a crowd of 1,000 (30 % spammers, 20 % careless) labels 10,000 items x 3 in process on a fake
//                  clock, with the run's quality rules on and off: raw and aggregated accuracy, the share of paid
//                  units spent on golds, real units done by spammers before they were stopped
//   fsync          http-saturate with SQLite synchronous=FULL (the default) and NORMAL alternately: the ratio
//   dashboard      every requester API call of the dashboard over HTTP on a run of 1M submitted units by 10k
//                  workers: p50/p99 per call (target < 200 ms each)
//
// Each workload prints one JSON line (`{"workload": ..., "median": ..., ...}`) and a row of the
// table printed at the end. --smoke runs tiny sizes and checks correctness only (ctest bench_smoke):
// the exit code is non-zero when a workload saw an error or a wrong count, never for slowness.
#include <sqlite3.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "aggregate_workload.hpp"
#include "provider_sync_workload.hpp"
#include "dashboard_workload.hpp"
#include "quality_workload.hpp"
#include "eligibility_workload.hpp"
#include "bench_fixtures.hpp"
#include "bench_util.hpp"
#include "cli/import_file.hpp"
#include "core/run_config.hpp"
#include "core/thread_cpu_time.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_impl.hpp"
#include "engine/grant_index.hpp"
#include "engine/run_dispatcher.hpp"
#include "http_load.hpp"
#include "http_multi.hpp"
#include "providers/provider_hub.hpp"
#include "server/task_server.hpp"

namespace crowdgate::bench {
namespace {

using Json = nlohmann::json;

struct Args {
  bool smoke = false;
  int runs = 5;
  bool json_only = false;
  std::vector<std::string> workloads;
  std::string self;  // path of this executable, for the workloads run in a child process
};

// One row of the final table.
struct Row {
  std::string workload;
  std::string metric;
  Stats stats;
  std::string unit;
  std::string target;
  bool met = true;
  std::string note;
};

std::vector<Row> g_rows;
int g_failures = 0;

void Check(bool ok, const std::string& what) {
  if (ok) return;
  ++g_failures;
  std::cerr << "CHECK FAILED: " << what << "\n";
}

void Report(const Args& a, const Row& row, Json extra) {
  Json j = {{"workload", row.workload}, {"metric", row.metric},     {"unit", row.unit},
            {"median", row.stats.median}, {"min", row.stats.min},   {"max", row.stats.max},
            {"spread", row.stats.spread()}, {"runs", a.runs},        {"smoke", a.smoke},
            {"target", row.target},         {"target_met", row.met}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  std::cout << j.dump() << std::endl;
  g_rows.push_back(row);
}

// Runs this executable as `--child NAME SIZE` and returns the JSON line it prints.
Json RunChild(const Args& a, const std::string& name, int64_t size) {
  const std::string cmd = "'" + a.self + "' --child " + name + " " + std::to_string(size);
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) Die(Status::Internal("popen failed"), cmd);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int rc = ::pclose(p);
  const size_t nl = out.find_last_of('{');
  Json j = nl == std::string::npos ? Json() : Json::parse(out.substr(nl), nullptr, false);
  if (rc != 0 || !j.is_object()) Die(Status::Internal("child failed: " + out), cmd);
  return j;
}

// ---- eligibility ---------------------------------------------------------------------------

using bench::BuildEligibilityIndex;
using bench::FiveRequirements;

// Checks per CPU-second of one thread over `checks` random workers (order fixed by seed).
double EligibilityOnce(const GrantIndex& index, int64_t workers, int64_t checks, int64_t* passed_out) {
  const auto reqs = FiveRequirements();
  const uint32_t local = ProviderBit("local");
  std::mt19937_64 rng(11);
  std::vector<WorkerId> order(1 << 16);
  for (auto& w : order) w = static_cast<WorkerId>(rng() % static_cast<uint64_t>(workers)) + 1;
  int64_t passed = 0;
  // CPU time of this thread, not wall time: on a shared, loaded machine the thread is often
  // descheduled, and the target is per core.
  const double t0 = ThreadCpuSeconds();
  for (int64_t i = 0; i < checks; ++i) passed += index.Check(order[static_cast<size_t>(i) & 0xffff], local, reqs, 1).passed;
  const double dt = ThreadCpuSeconds() - t0;
  *passed_out = passed;
  return static_cast<double>(checks) / dt;
}

Stats Eligibility(const Args& a, int64_t workers, const std::string& name) {
  const double b0 = NowSeconds();
  GrantIndex index = BuildEligibilityIndex(workers);
  const double build_s = NowSeconds() - b0;
  const int64_t checks = a.smoke ? 20'000 : 5'000'000;
  std::vector<double> rates;
  int64_t passed = 0;
  for (int r = 0; r < a.runs; ++r) rates.push_back(EligibilityOnce(index, workers, checks, &passed));
  // Cross-check the hot path against the straightforward evaluation for a sample of workers.
  const auto reqs = FiveRequirements();
  for (WorkerId w = 1; w <= std::min<int64_t>(workers, 2000); ++w) {
    bool expect = true;
    for (const auto& req : reqs) expect = expect && EvaluateCompiled(req, index.Value(w, req.qual_id, 1));
    Check(index.Check(w, ProviderBit("local"), reqs, 1).passed == expect, "eligibility verdict of worker " +
                                                                              std::to_string(w));
  }
  Check(passed > 0 && passed < checks, "eligibility: some workers pass and some fail");
  Row row{name, "checks per CPU-second, 1 thread", Summarize(rates), "checks/s", ">= 5,000,000", true, ""};
  row.met = row.stats.median >= 5e6;
  row.note = std::to_string(workers) + " workers, " + std::to_string(index.grant_count()) + " grants";
  Report(a, row, {{"workers", workers}, {"grants", index.grant_count()}, {"checks_per_run", checks},
                  {"index_build_s", build_s}});
  return row.stats;
}

// ---- runs on SQLite: in-process dispatcher and HTTP ------------------------------------------

struct Served {
  std::unique_ptr<ScratchDir> dir;
  std::unique_ptr<EngineImpl> engine;
  std::unique_ptr<RunDispatcher> dispatcher;
  std::unique_ptr<ProviderHub> providers;  // after the dispatcher: destroyed first
  std::string run_id;
};

// A database with `workers` workers holding 5 grants each, and a launched run of `items` units
// requiring all 5 qualifications (GreaterThanOrEqualTo 0), with golds if asked.
Served ServeRun(const std::string& tag, int64_t workers, int64_t items, bool golds) {
  Served s;
  s.dir = std::make_unique<ScratchDir>(tag);
  const std::string db = s.dir->File("bench.db");
  PopulateWorkers(db, workers, 5, 5);
  const std::string config_path = WriteRunConfig(s.dir->path(), items, golds, 5);
  auto store = Must(Store::Open(db, Env::Default()), "open");
  EngineOptions eo;
  eo.actor = "bench";
  s.engine = Must(OpenEngineImpl(std::move(store), eo), "engine");
  s.dispatcher = Must(s.engine->NewRunDispatcher(), "dispatcher");
  RunConfig config = Must(LoadRunConfig(config_path, {}), "config");
  s.run_id = Must(s.dispatcher->Launch(config, {}), "launch").run_id;
  ProviderHubOptions po;
  po.db_uri = db;
  s.providers = Must(ProviderHub::Open(std::move(po), s.engine.get(), s.dispatcher.get()), "providers");
  return s;
}

void GoldDecision(const Args& a) {
  const int64_t pairs = a.smoke ? 200 : 20'000;
  const int64_t workers = 1000;
  Served s = ServeRun("gold", workers, pairs * (a.runs + 1) + 1000, /*golds=*/true);
  std::vector<double> rates;
  int64_t golds_or_units = 0;
  int64_t cycle = 0;
  for (int r = 0; r < a.runs; ++r) {
    const double t0 = NowSeconds();
    for (int64_t i = 0; i < pairs; ++i, ++cycle) {
      WorkRequest req;
      req.run_id = s.run_id;
      req.worker = WorkerRef{"local", "w" + std::to_string(cycle % workers + 1)};
      auto w = s.dispatcher->RequestWork(req);
      if (!w.ok() || w->outcome != "unit") {
        Check(false, "gold-decision: work: " + (w.ok() ? w->outcome + " " + w->reason : w.status().ToString()));
        continue;
      }
      auto sub = s.dispatcher->Submit(w->agent_id, w->token, Json{{"label", "x"}});
      Check(sub.ok(), "gold-decision: submit: " + (sub.ok() ? std::string() : sub.status().ToString()));
      ++golds_or_units;
    }
    rates.push_back(static_cast<double>(pairs) / (NowSeconds() - t0));
  }
  auto summary = Must(s.dispatcher->Summarize(s.run_id), "summarize");
  Check(summary.gold_served > 0, "gold-decision: golds were served");
  Row row{"gold-decision", "work+submit pairs/s (in process)", Summarize(rates), "pairs/s", "-", true, ""};
  row.note = std::to_string(1e6 / row.stats.median).substr(0, 6) + " us per pair; golds served " +
             std::to_string(summary.gold_served);
  Report(a, row, {{"pairs_per_run", pairs}, {"us_per_pair", 1e6 / row.stats.median},
                  {"gold_served", summary.gold_served}, {"completed", golds_or_units}});
}

struct HttpFigures {
  Stats throughput;
  Stats p50;
  Stats p99;
  Stats p999;
  int64_t errors = 0;
};

HttpFigures HttpWork(const Args& a, const std::string& name, int64_t population, double rate, bool report,
                     size_t max_batch = BatchQueue::Options().max_batch) {
  const int connections = a.smoke ? 20 : 1000;
  const double duration = a.smoke ? 0.5 : 4;
  const double warmup = a.smoke ? 0.2 : 1;
  population = std::max<int64_t>(population, connections);
  const double expected = (rate > 0 ? rate : 20000) * (duration + warmup + 1) * a.runs;
  const int64_t items = static_cast<int64_t>(expected / 2) + 10'000;
  Served s = ServeRun("http", population, items, /*golds=*/false);
  TaskServerOptions so;
  so.http.port = 0;
  so.http.max_connections_per_ip = 3 * connections;  // a run opens its connections while the last run's are still closing
  so.http.log = [](const std::string&) {};
  so.batching.max_batch = max_batch;
  so.providers = s.providers.get();
  TaskServer server(s.engine.get(), s.dispatcher.get(), so);
  if (Status st = server.Start(); !st.ok()) Die(st, "server start");
  std::vector<double> tput, p50, p99, p999;
  HttpFigures f;
  std::vector<std::string> samples;
  for (int r = 0; r < a.runs; ++r) {
    HttpLoadOptions o;
    o.port = server.port();
    o.run_id = s.run_id;
    o.connections = connections;
    o.worker_population = population;
    o.offered_rate = a.smoke ? 400 : rate;
    o.warmup_s = warmup;
    o.duration_s = duration;
    HttpLoadResult res = RunHttpLoad(o);
    tput.push_back(res.throughput);
    p50.push_back(Percentile(res.latencies_ms, 50));
    p99.push_back(Percentile(res.latencies_ms, 99));
    p999.push_back(Percentile(res.latencies_ms, 99.9));
    f.errors += res.errors;
    for (auto& e : res.error_samples) {
      if (samples.size() < 5) samples.push_back(e);
    }
    Check(res.requests > 0, name + ": requests completed");
  }
  // CPU the deciding thread spent per request: unlike the wall-clock figures it hardly moves when
  // other work shares the cores, so it is the figure to compare between changes to the decision path.
  const BatchQueue::Stats batch = server.batch_stats();
  const double cpu_us = batch.jobs > 0 ? 1e6 * batch.batch_cpu_seconds_total / static_cast<double>(batch.jobs) : 0;
  const double batch_avg = batch.batches > 0 ? static_cast<double>(batch.jobs) / static_cast<double>(batch.batches) : 0;
  server.Stop();
  Check(f.errors == 0, name + ": 0 errors (got " + std::to_string(f.errors) +
                           (samples.empty() ? std::string() : "; first: " + samples.front()) + ")");
  f.throughput = Summarize(tput);
  f.p50 = Summarize(p50);
  f.p99 = Summarize(p99);
  f.p999 = Summarize(p999);
  if (report) {
    const std::string shape = std::to_string(connections) + " conns, " + std::to_string(population) + " workers, " +
                              (rate > 0 ? "offered " + std::to_string(static_cast<int>(rate)) + "/s" : "closed loop");
    Row row{name, "requests/s", f.throughput, "req/s", rate > 0 ? ">= 10,000" : "-", f.throughput.median >= 1e4,
            shape};
    Report(a, row, {{"connections", connections}, {"workers", population}, {"offered_rate", rate},
                    {"errors", f.errors}, {"p50_ms", f.p50.median}, {"p99_ms", f.p99.median},
                    {"p999_ms", f.p999.median}, {"p99_ms_min", f.p99.min}, {"p99_ms_max", f.p99.max},
                    {"decide_cpu_us_per_request", cpu_us}, {"requests_per_batch", batch_avg},
                    {"error_samples", samples}});
    Row lat{name, "p50 / p99 / p999 ms", f.p99, "ms", rate > 0 ? "p99 < 10 ms" : "-", f.p99.median < 10, ""};
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << "p50 " << f.p50.median << ", p99 " << f.p99.median << ", p999 "
       << f.p999.median << "; errors " << f.errors << "; deciding thread " << std::setprecision(1) << cpu_us
       << " us CPU/request, " << batch_avg << " requests/batch";
    lat.note = os.str();
    g_rows.push_back(lat);
  }
  return f;
}

// The same saturating crowd with one commit per request (max_batch 1) and with group commit,
// alternating in one run so that both see the same machine; reports the throughput ratio.
void GroupCommit(const Args& a) {
  Args quiet = a;
  quiet.runs = 1;
  std::vector<double> single, grouped, ratio;
  for (int r = 0; r < a.runs; ++r) {
    const double one = HttpWork(quiet, "group-commit/off", 1000, 0, false, 1).throughput.median;
    const double many = HttpWork(quiet, "group-commit/on", 1000, 0, false).throughput.median;
    single.push_back(one);
    grouped.push_back(many);
    ratio.push_back(one > 0 ? many / one : 0);
  }
  Row row{"group-commit", "throughput ratio on/off", Summarize(ratio), "x", "-", true,
          "closed loop, 1000 conns; off " + std::to_string(static_cast<int>(Summarize(single).median)) +
              " req/s, on " + std::to_string(static_cast<int>(Summarize(grouped).median)) + " req/s"};
  Report(a, row, {{"off_median", Summarize(single).median}, {"on_median", Summarize(grouped).median}});
}

// The cost of fsync on every commit: http-work paced at 10,000 req/s offered (and http-saturate, the
// most the server gives) with SQLite's synchronous=FULL (the default) and NORMAL alternately.
void Fsync(const Args& a) {
  Args quiet = a;
  quiet.runs = 1;
  const char* before = std::getenv("CROWDGATE_SQLITE_SYNC");
  const std::string saved = before != nullptr ? before : "";
  std::vector<double> full, normal, ratio, full_p99, normal_p99;
  for (int r = 0; r < a.runs; ++r) {
    ::setenv("CROWDGATE_SQLITE_SYNC", "full", 1);
    const HttpFigures f = HttpWork(quiet, "fsync/full", 1000, 0, false);
    ::setenv("CROWDGATE_SQLITE_SYNC", "normal", 1);
    const HttpFigures n = HttpWork(quiet, "fsync/normal", 1000, 0, false);
    full.push_back(f.throughput.median);
    normal.push_back(n.throughput.median);
    full_p99.push_back(f.p99.median);
    normal_p99.push_back(n.p99.median);
    ratio.push_back(n.throughput.median > 0 ? f.throughput.median / n.throughput.median : 0);
  }
  if (before != nullptr) {
    ::setenv("CROWDGATE_SQLITE_SYNC", saved.c_str(), 1);
  } else {
    ::unsetenv("CROWDGATE_SQLITE_SYNC");
  }
  const Stats rs = Summarize(ratio);
  Row row{"fsync", "saturated throughput FULL / NORMAL", rs, "x", ">= 0.85", rs.median >= 0.85,
          "closed loop, 1000 conns; FULL " + std::to_string(static_cast<int>(Summarize(full).median)) + " req/s (p99 " +
              std::to_string(Summarize(full_p99).median).substr(0, 5) + " ms), NORMAL " +
              std::to_string(static_cast<int>(Summarize(normal).median)) + " req/s (p99 " +
              std::to_string(Summarize(normal_p99).median).substr(0, 5) + " ms)"};
  Report(a, row, {{"full_median", Summarize(full).median}, {"normal_median", Summarize(normal).median},
                  {"full_p99_ms", Summarize(full_p99).median}, {"normal_p99_ms", Summarize(normal_p99).median}});
}

// ---- workloads in a child process (clean resident size) -----------------------------------

Json ChildGrantImport(int64_t rows) {
  ScratchDir dir("import");
  {
    std::ofstream out(dir.File("grants.csv"), std::ios::binary);
    out << "worker,value\n";
    for (int64_t i = 1; i <= rows; ++i) out << "imp" << i << "," << (i % 100) << "\n";
  }
  auto store = Must(Store::Open(dir.File("bench.db"), Env::Default()), "open");
  auto engine = Must(Engine::Open(std::move(store), {}), "engine");
  Must(engine->CreateQualification("imported", "bench"), "qual");
  const double rss0 = RssMb();
  const double t0 = NowSeconds();
  auto parsed = Must(cli::ReadImportFile(dir.File("grants.csv"), 1), "read csv");
  const double t_read = NowSeconds() - t0;
  ImportSummary s = Must(engine->Import("imported", parsed, "bench", {}), "import");
  const double seconds = NowSeconds() - t0;
  parsed.clear();
  parsed.shrink_to_fit();
  const auto quals = Must(engine->ListQualifications(), "list");
  int64_t live = 0;
  for (const auto& q : quals) {
    if (q.qualification.name == "imported") live = q.live_grants;
  }
  // A worker from the middle of the file is eligible for the imported qualification.
  auto reqs = Must(engine->Compile({Requirement{"imported", Comparator::kExists, 0, {}, std::nullopt}}), "compile");
  const bool eligible = Must(engine->Check("imp" + std::to_string(rows / 2 + 1), *reqs), "check").passed;
  return {{"seconds", seconds}, {"read_s", t_read}, {"granted", s.granted}, {"live", live}, {"eligible", eligible},
          {"rss_delta_mb", RssMb() - rss0}, {"peak_rss_mb", static_cast<double>(ProcStatusKb("VmHWM")) / 1024}};
}

Json ChildLaunch(int64_t units) {
  ScratchDir dir("launch");
  const std::string config_path = WriteRunConfig(dir.path(), units, false, 0);
  auto store = Must(Store::Open(dir.File("bench.db"), Env::Default()), "open");
  auto engine = Must(OpenEngineImpl(std::move(store), {}), "engine");
  auto dispatcher = Must(engine->NewRunDispatcher(), "dispatcher");
  RunConfig config = Must(LoadRunConfig(config_path, {}), "config");
  const double t0 = NowSeconds();
  LaunchResult r = Must(dispatcher->Launch(config, {}), "launch");
  const double seconds = NowSeconds() - t0;
  auto summary = Must(dispatcher->Summarize(r.run_id), "summarize");
  int64_t launched = 0;
  for (const auto& [status, n] : summary.units_by_status) {
    if (status == ToString(UnitStatus::kLaunched)) launched = n;
  }
  return {{"seconds", seconds}, {"units", r.units}, {"launched", launched},
          {"peak_rss_mb", static_cast<double>(ProcStatusKb("VmHWM")) / 1024}};
}

Json ChildMemory(int64_t workers, const std::string& db) {
  auto store = Must(Store::Open(db, Env::Default()), "open");
  const double rss0 = RssMb();
  const double t0 = NowSeconds();
  auto engine = Must(OpenEngineImpl(std::move(store), {}), "engine");  // the impl: the index size below
  const double load_s = NowSeconds() - t0;
  const double rss1 = RssMb();
  // Every worker is known to the engine: the last one holds q1..q5 (5 grants of 5 quals).
  auto reqs = Must(engine->Compile({Requirement{"q1", Comparator::kExists, 0, {}, std::nullopt},
                                    Requirement{"q5", Comparator::kExists, 0, {}, std::nullopt}}),
                   "compile");
  const bool eligible = Must(engine->Check("w" + std::to_string(workers), *reqs), "check").passed;
  // Where the resident bytes are: the grant index itself and SQLite's page cache (the rest is
  // the allocator, the code and the stacks).
  const double index_mb = static_cast<double>(engine->core().index().stats().bytes) / (1024 * 1024);
  return {{"rss_delta_mb", rss1 - rss0}, {"rss_mb", rss1}, {"load_s", load_s}, {"eligible", eligible},
          {"index_mb", index_mb}, {"sqlite_mb", static_cast<double>(sqlite3_memory_used()) / (1024 * 1024)},
          {"peak_rss_mb", static_cast<double>(ProcStatusKb("VmHWM")) / 1024}};
}

// ---- the workloads as the parent runs them -------------------------------------------------

void GrantImport(const Args& a) {
  const int64_t rows = a.smoke ? 2000 : 1'000'000;
  std::vector<double> secs, peak;
  Json last;
  for (int r = 0; r < a.runs; ++r) {
    last = RunChild(a, "grant-import", rows);
    secs.push_back(last["seconds"]);
    peak.push_back(last["peak_rss_mb"]);
    Check(last["granted"] == rows && last["live"] == rows, "grant-import: all " + std::to_string(rows) +
                                                               " grants present (got " + last.dump() + ")");
    Check(last["eligible"] == true, "grant-import: an imported worker is eligible");
  }
  Row row{"grant-import", "seconds for 1M CSV rows", Summarize(secs), "s", "< 10 s", true, ""};
  row.met = row.stats.median < 10;
  row.note = "peak RSS " + std::to_string(static_cast<int>(Summarize(peak).median)) + " MB";
  Report(a, row, {{"rows", rows}, {"peak_rss_mb", Summarize(peak).median}, {"read_s", last["read_s"]}});
}

void Launch(const Args& a, int64_t units, const std::string& name) {
  std::vector<double> secs;
  for (int r = 0; r < a.runs; ++r) {
    Json j = RunChild(a, "launch", units);
    secs.push_back(j["seconds"]);
    Check(j["units"] == units && j["launched"] == units, "launch: all units launched (got " + j.dump() + ")");
  }
  Row row{name, "seconds for a run of " + std::to_string(units) + " units", Summarize(secs), "s", "< 10 s", true, ""};
  row.met = row.stats.median < 10;
  Report(a, row, {{"units", units}});
}

std::string g_memory_db;

void Memory(const Args& a) {
  const int64_t workers = a.smoke ? 2000 : 1'000'000;
  ScratchDir dir("memory");
  g_memory_db = dir.File("bench.db");
  PopulateWorkers(g_memory_db, workers, 5, 5);
  ::setenv("CROWDGATE_BENCH_MEMORY_DB", g_memory_db.c_str(), 1);
  std::vector<double> mb;
  Json last;
  for (int r = 0; r < a.runs; ++r) {
    last = RunChild(a, "memory", workers);
    mb.push_back(last["rss_delta_mb"]);
    Check(last["eligible"] == true, "memory: the last worker holds its grants");
  }
  Row row{"memory", "resident MB, 1M workers x 5 grants", Summarize(mb), "MB", "< 300 MB", true, ""};
  row.met = row.stats.median < 300;
  row.note = "engine load " + std::to_string(last["load_s"].get<double>()).substr(0, 5) + " s, index " +
             std::to_string(static_cast<int>(last["index_mb"].get<double>())) + " MB, sqlite " +
             std::to_string(static_cast<int>(last["sqlite_mb"].get<double>())) + " MB";
  Report(a, row, {{"workers", workers}, {"grants", workers * 5}, {"load_s", last["load_s"]}, {"index_mb", last["index_mb"]},
                  {"sqlite_mb", last["sqlite_mb"]}, {"peak_rss_mb", last["peak_rss_mb"]}});
}

void Scaling(const Args& a) {
  const std::vector<int64_t> sizes =
      a.smoke ? std::vector<int64_t>{1000, 10'000} : std::vector<int64_t>{1000, 10'000, 100'000, 1'000'000};
  for (int64_t n : sizes) Eligibility(a, n, "scaling/eligibility/" + std::to_string(n));
  for (int64_t n : sizes) {
    HttpFigures f = HttpWork(a, "scaling/http-work/" + std::to_string(n), n, 10'000, false);
    Row row{"scaling/http-work/" + std::to_string(n), "requests/s", f.throughput, "req/s", "-", true, ""};
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << "p50 " << f.p50.median << " ms, p99 " << f.p99.median
       << " ms, errors " << f.errors;
    row.note = os.str();
    Report(a, row, {{"workers", n}, {"p50_ms", f.p50.median}, {"p99_ms", f.p99.median}, {"errors", f.errors}});
  }
}

// Latency against offered load: the http-work crowd at a quarter, half, three quarters and all of
// 10,000 requests/s, in one run, so the curve shows where queueing starts on this machine.
void HttpLatency(const Args& a) {
  for (const double rate : {2'500.0, 5'000.0, 7'500.0, 10'000.0}) {
    const std::string name = "http-latency/" + std::to_string(static_cast<int>(rate));
    const HttpFigures f = HttpWork(a, name, 1000, rate, false);
    Row row{name, "p99 ms", f.p99, "ms", "-", true, ""};
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << "offered " << (a.smoke ? 400 : static_cast<int>(rate)) << "/s: " << f.throughput.median
       << " req/s, p50 " << f.p50.median << " ms, p99 " << f.p99.median << " ms, errors " << f.errors;
    row.note = os.str();
    Report(a, row,
           {{"offered_rate", rate}, {"throughput", f.throughput.median}, {"p50_ms", f.p50.median},
            {"p99_ms", f.p99.median}, {"p999_ms", f.p999.median}, {"errors", f.errors}});
  }
}

void Aggregate(const Args& a) {
  const int64_t items = a.smoke ? 2000 : 100'000;
  const AggregateFigures f = RunAggregateWorkload(items, 10, 3, a.runs, CROWDGATE_BENCH_CROWDGATE_BIN);
  for (const auto& e : f.errors) Check(false, "aggregate: " + e);
  Check(std::abs(f.command_accuracy - f.dawid_skene_accuracy) < 0.005,
        "aggregate: the command's accuracy " + std::to_string(f.command_accuracy) + " matches the in-process one " +
            std::to_string(f.dawid_skene_accuracy));
  auto acc = [](double v) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(4) << v;
    return os.str();
  };
  const Json figures = {{"judgments", f.judgments},
                        {"items", items},
                        {"iterations", f.iterations},
                        {"raw_accuracy", f.raw_accuracy},
                        {"majority_accuracy", f.majority_accuracy},
                        {"dawid_skene_accuracy", f.dawid_skene_accuracy},
                        {"wawa_accuracy", f.wawa_accuracy},
                        {"command_accuracy", f.command_accuracy}};
  Row mv{"aggregate/majority", "seconds of compute, 1M judgments", f.majority_s, "s", "< 0.1 s", true,
         "accuracy " + acc(f.majority_accuracy) + " (raw labels " + acc(f.raw_accuracy) + ")"};
  mv.met = mv.stats.median < 0.1;
  Report(a, mv, figures);
  Row ds{"aggregate/dawid-skene", "seconds of compute, 1M judgments", f.dawid_skene_s, "s", "< 0.5 s", true,
         "accuracy " + acc(f.dawid_skene_accuracy) + ", " + std::to_string(f.iterations) + " iterations"};
  ds.met = ds.stats.median < 0.5;
  Report(a, ds, figures);
  Row wawa{"aggregate/wawa", "seconds of compute, 1M judgments", f.wawa_s, "s", "-", true,
           "accuracy " + acc(f.wawa_accuracy)};
  Report(a, wawa, figures);
  Row cmd{"aggregate/command", "seconds, aggregate --input (DS)", f.command_s, "s", "< 1.5 s", true,
          "CSV in, JSONL out; accuracy " + acc(f.command_accuracy)};
  cmd.met = cmd.stats.median < 1.5;
  Report(a, cmd, figures);
}

void ProviderSync(const Args& a) {
  const int64_t workers = a.smoke ? 400 : 20'000;
  const ProviderSyncFigures f = RunProviderSyncWorkload(workers, 5, 0.10, a.runs, CROWDGATE_BENCH_SOURCE_DIR);
  for (const auto& e : f.errors) Check(false, "provider-sync: " + e);
  if (f.changes_per_s.median <= 0) return;  // no figures (the errors say why)
  const Json figures = {{"changes", f.changes},       {"workers", workers},
                        {"calls_last_run", f.calls},  {"throttled_last_run", f.throttled},
                        {"seconds_median", f.seconds.median}, {"calls_per_s_median", f.calls_per_s.median},
                        {"changes_per_s_median", f.changes_per_s.median}};
  Row changes{"provider-sync/changes", "grant changes delivered/s, 10% throttled", f.changes_per_s, "changes/s", "-",
              true, std::to_string(f.changes) + " changes in " + std::to_string(f.seconds.median).substr(0, 5) + " s"};
  Report(a, changes, figures);
  Row calls{"provider-sync/calls", "provider API calls/s, 10% throttled", f.calls_per_s, "calls/s", ">= 1,000", true,
            std::to_string(f.calls) + " calls, " + std::to_string(f.throttled) + " throttled (last run)"};
  calls.met = calls.stats.median >= 1000;
  Report(a, calls, figures);
}

void Dashboard(const Args& a) {
  const int64_t units = a.smoke ? 5000 : 1'000'000;
  const int64_t workers = a.smoke ? 100 : 10'000;
  const DashboardFigures f = RunDashboardWorkload(units, workers, a.smoke ? 5 : 50);
  for (const auto& e : f.errors) Check(false, "dashboard: " + e);
  for (const DashboardCall& c : f.calls) {
    Row row{"dashboard/" + c.name, "p50 ms per call", Stats{c.p50_ms, c.p50_ms, c.p99_ms}, "ms", "< 200 ms", true, ""};
    row.met = c.p99_ms < 200;
    std::ostringstream os;
    os << std::fixed << std::setprecision(1) << "p99 " << c.p99_ms << " ms, max " << c.max_ms << " ms";
    row.note = os.str();
    Report(a, row, {{"units", units}, {"workers", workers}, {"p50_ms", c.p50_ms}, {"p99_ms", c.p99_ms},
                    {"max_ms", c.max_ms}, {"errors", c.errors}, {"fill_s", f.fill_s}});
  }
}

void Quality(const Args& a) {
  const int64_t items = a.smoke ? 300 : 10'000;
  const int workers = a.smoke ? 60 : 1000;
  auto pct = [](double v) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(1) << 100 * v << "%";
    return os.str();
  };
  for (const bool rules : {true, false}) {
    const QualityFigures f = RunQualityWorkload(items, workers, rules, 20261129);
    for (const auto& e : f.errors) Check(false, std::string("quality: ") + e);
    Check(f.paid_units > 0, "quality: units were submitted");
    const double gold_share = f.paid_units > 0 ? static_cast<double>(f.gold_units) / f.paid_units : 0;
    const std::string name = std::string("quality/rules-") + (rules ? "on" : "off");
    Row row{name, "aggregated accuracy (Dawid-Skene)", Stats{f.dawid_skene_accuracy, f.dawid_skene_accuracy,
                                                              f.dawid_skene_accuracy},
            "share", "-", true,
            "raw " + pct(f.raw_accuracy) + ", MV " + pct(f.majority_accuracy) + ", Wawa " + pct(f.wawa_accuracy) +
                "; golds " + pct(gold_share) + " of paid; spammer units " + std::to_string(f.spammer_units) + " (" +
                std::to_string(f.spammers_stopped) + " spammers stopped)"};
    Report(a, row, {{"rules", rules}, {"items", items}, {"workers", workers}, {"paid_units", f.paid_units},
                    {"gold_units", f.gold_units}, {"gold_share", gold_share}, {"spammer_units", f.spammer_units},
                    {"spammers_stopped", f.spammers_stopped}, {"raw_accuracy", f.raw_accuracy},
                    {"majority_accuracy", f.majority_accuracy}, {"dawid_skene_accuracy", f.dawid_skene_accuracy},
                    {"wawa_accuracy", f.wawa_accuracy}, {"seconds", f.seconds}});
  }
}

void PrintTable() {
  std::cout << "\n" << std::left << std::setw(30) << "workload" << std::setw(36) << "metric" << std::right
            << std::setw(14) << "median" << std::setw(10) << "spread" << "  " << std::left << std::setw(13)
            << "target" << "met  note\n";
  for (const auto& r : g_rows) {
    std::ostringstream med;
    med << std::setprecision(r.stats.median >= 100 ? 0 : 3) << std::fixed << r.stats.median;
    std::ostringstream spread;
    spread << std::setprecision(1) << std::fixed << r.stats.spread() * 100 << "%";
    std::cout << std::left << std::setw(30) << r.workload << std::setw(36) << r.metric << std::right << std::setw(14)
              << med.str() << std::setw(10) << spread.str() << "  " << std::left << std::setw(13) << r.target
              << (r.target == "-" ? "     " : r.met ? "yes  " : "NO   ") << r.note << "\n";
  }
}

int Main(int argc, char** argv) {
  Args a;
  a.self = "/proc/self/exe";
  {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n > 0) a.self.assign(buf, static_cast<size_t>(n));
  }
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--child" && i + 2 < argc) {
      const std::string name = argv[i + 1];
      const int64_t size = std::stoll(argv[i + 2]);
      Json j;
      if (name == "grant-import") j = ChildGrantImport(size);
      if (name == "launch") j = ChildLaunch(size);
      if (name == "memory") j = ChildMemory(size, std::getenv("CROWDGATE_BENCH_MEMORY_DB"));
      std::cout << j.dump() << std::endl;
      return 0;
    }
    if (arg == "--smoke") {
      a.smoke = true;
    } else if (arg == "--runs" && i + 1 < argc) {
      a.runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--json-only") {
      a.json_only = true;
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: crowdgate_bench [--smoke] [--runs N] [--json-only] [WORKLOAD...]\n"
                   "workloads: eligibility gold-decision http-work http-latency http-saturate group-commit grant-import launch memory "
                   "scaling http-work-pg overload aggregate provider-sync dashboard quality fsync\n";
      return 0;
    } else {
      a.workloads.push_back(arg);
    }
  }
  if (a.smoke && a.runs == 5) a.runs = 1;
  const std::vector<std::string> all = {"eligibility",  "gold-decision", "http-work", "http-latency", "http-saturate",
                                        "group-commit", "grant-import",  "launch",    "memory",
                                        "scaling",      "http-work-pg",  "aggregate", "provider-sync",
                                        "dashboard",    "overload",      "quality",   "fsync"};
  const bool named = !a.workloads.empty();
  if (a.workloads.empty()) a.workloads = all;
  for (const auto& w : a.workloads) {
    if (std::find(all.begin(), all.end(), w) == all.end()) {
      std::cerr << "unknown workload " << w << "\n";
      return 2;
    }
  }
  for (const auto& w : a.workloads) {
    if (w == "eligibility") Eligibility(a, a.smoke ? 2000 : 100'000, "eligibility");
    if (w == "gold-decision") GoldDecision(a);
    if (w == "http-work") HttpWork(a, "http-work", 1000, 10'000, true);
    if (w == "http-latency") HttpLatency(a);
    if (w == "http-saturate") HttpWork(a, "http-saturate", 1000, 0, true);
    if (w == "group-commit") GroupCommit(a);
    if (w == "grant-import") GrantImport(a);
    if (w == "launch") Launch(a, a.smoke ? 2000 : 1'000'000, "launch");
    if (w == "memory") Memory(a);
    if (w == "scaling") Scaling(a);
    if (w == "aggregate") Aggregate(a);
    if (w == "provider-sync") ProviderSync(a);
    if (w == "quality") Quality(a);
    if (w == "fsync") Fsync(a);
    if (w == "dashboard") Dashboard(a);
    if (w == "overload") {
      g_failures += Overload({a.smoke, a.runs, named}, [&](const MultiRow& r) {
        const Row row{r.workload, r.metric, r.stats, r.unit, r.target, r.met, r.note};
        r.json.is_null() ? g_rows.push_back(row) : Report(a, row, r.json);
      });
    }
    if (w == "http-work-pg") {
      g_failures += HttpWorkPg({a.smoke, a.runs, named}, [&](const MultiRow& r) {
        const Row row{r.workload, r.metric, r.stats, r.unit, r.target, r.met, r.note};
        r.json.is_null() ? g_rows.push_back(row) : Report(a, row, r.json);
      });
    }
  }
  if (!a.json_only) PrintTable();
  if (g_failures > 0) std::cerr << g_failures << " correctness check(s) failed\n";
  return g_failures > 0 ? 1 : 0;
}

}  // namespace
}  // namespace crowdgate::bench

int main(int argc, char** argv) { return crowdgate::bench::Main(argc, argv); }
