// Workload `http-work-pg` (see http_multi.hpp): crowdgate serve processes on SQLite and PostgreSQL under the
// http-work crowd, 1 and 3 servers, measured in one run.
#include "http_multi.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "http_load.hpp"
#include "server/http_client.hpp"
#include "store/postgres/pg_scratch_db.hpp"

namespace crowdgate::bench {
namespace {

using Json = nlohmann::json;

std::string CrowdgateBinary() {
  if (const char* b = std::getenv("CROWDGATE_BIN"); b != nullptr && *b != '\0') return b;
#ifdef CROWDGATE_BENCH_CROWDGATE_BIN
  return CROWDGATE_BENCH_CROWDGATE_BIN;
#else
  return "build/release/src/cli/crowdgate";
#endif
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// fork + exec `args` with stdout and stderr to files (no shell); returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // an interrupted bench leaves no server behind
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0) ::_exit(127);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// `crowdgate --db DB ARGS...`, waited for.
CliResult Cli(const ScratchDir& dir, const std::string& db, std::vector<std::string> args) {
  args.insert(args.begin(), {CrowdgateBinary(), "--db", db});
  const pid_t pid = Spawn(args, dir.File("cli-out.txt"), dir.File("cli-err.txt"));
  CliResult r;
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = Slurp(dir.File("cli-out.txt"));
  r.err = Slurp(dir.File("cli-err.txt"));
  return r;
}

// `crowdgate --db DB serve --port 0` as a child; learns its port from the "serving on" line.
class ServeProcess {
 public:
  ServeProcess(const ScratchDir& dir, const std::string& db, int index, int max_connections,
               const std::vector<std::string>& extra_args = {})
      : err_path_(dir.File("serve-" + std::to_string(index) + ".txt")) {
    std::vector<std::string> args = {CrowdgateBinary(), "--db", db, "serve", "--port", "0", "--max-connections-per-ip",
                                     std::to_string(max_connections)};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = Spawn(args, "/dev/null", err_path_);
    const std::regex serving("serving on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 1200 && pid_ > 0; ++i) {  // up to 60 s
      std::smatch m;
      const std::string text = Slurp(err_path_);
      if (std::regex_search(text, m, serving)) {
        port_ = std::stoi(m[1]);
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_ = WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                                  : "killed by signal " + std::to_string(WTERMSIG(status));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServeProcess() { Stop(); }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // SIGTERM and wait; true when it exited 0.
  bool Stop() {
    if (pid_ <= 0) return true;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string Stderr() const { return Slurp(err_path_); }
  const std::string& exit() const { return exit_; }  // how it ended, when it ended before serving

 private:
  std::string err_path_;
  std::string exit_;
  pid_t pid_ = -1;
  int port_ = 0;
};

using pg_scratch::WithDatabase;

// The http-work run: `items` items, 1 unit each, 5 requirements q1..q5 >= 0 (every worker passes), no golds.
std::string WriteConfig(const ScratchDir& dir, int64_t items) {
  WriteFile(dir.File("task.html"), "<p>${text}</p>");
  {
    std::ofstream out(dir.File("units.jsonl"), std::ios::binary);
    for (int64_t i = 0; i < items; ++i) {
      out << "{\"id\": \"s" << i << "\", \"text\": \"sentence number " << i << "\"}\n";
    }
  }
  std::string yaml =
      "task:\n  task_name: bench\n  task_title: bench\n  task_reward: 0.01\n  allowed_concurrent: 1\n"
      "  assignment_duration_in_seconds: 3600\n"
      "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n  units_per_item: 1\n"
      "qualifications:\n";
  for (int q = 1; q <= 5; ++q) {
    yaml += "  - {qualification_name: q" + std::to_string(q) + ", comparator: GreaterThanOrEqualTo, value: 0}\n";
  }
  yaml += "provider:\n  type: local\n  trust_worker_param: true  # simulated workers, no signed links\n";
  WriteFile(dir.File("config.yaml"), yaml);
  return dir.File("config.yaml");
}

// Waits until `port` has answered every request queued before this one: the crowd's client closes its connections
// at the end of a measured run, but the server still works off what they sent, which would otherwise load the
// start of the next run (and keep those sessions counted against --max-connections-per-ip). Work requests are
// answered in order, so a probe's answer means the backlog is gone. The probe worker holds no grants: it is
// refused (not_qualified) and takes no unit.
bool Drain(int port, const std::string& run_id) {
  HttpClient client("127.0.0.1", port, std::chrono::seconds(120));
  auto r = client.Post("/api/v1/runs/" + run_id + "/work", R"({"provider": "local", "worker": "drain-probe"})");
  return r.ok() && r->status == 200;
}

struct Setup {
  std::string backend;  // sqlite | postgresql
  int servers = 1;
  std::string name() const { return (backend == "sqlite" ? "sqlite-" : "pg-") + std::to_string(servers); }
};

struct Figures {
  bool ok = false;
  std::string failure;
  std::vector<double> throughput, p50, p99, p999;
  int64_t errors = 0;
  int64_t requests = 0;
  std::vector<std::string> error_samples;
  double setup_s = 0;
  std::vector<double> drain_s;  // after each run, until every server had answered its backlog
};

// Creates the database, its 1,000 workers x 5 grants (`qual import`) and the run, starts the servers and drives
// the crowd `runs` times.
Figures Measure(const Setup& setup, const HttpMultiOptions& o, const std::string& pg_admin, int seq) {
  Figures f;
  const int connections = o.smoke ? 20 : 1000;
  const int64_t workers = 1000;
  const double rate = o.smoke ? 400 : 10'000;
  const double duration = o.smoke ? 0.5 : 4;
  const double warmup = o.smoke ? 0.2 : 1;
  const int64_t items = static_cast<int64_t>(rate * (duration + warmup + 1) * o.runs / 2) + (o.smoke ? 1000 : 10'000);

  ScratchDir dir("http-pg-" + setup.name());
  std::string db = dir.File("bench.db");
  std::string pg_db;
  if (setup.backend == "postgresql") {
    pg_db = "crowdgate_bench_" + std::to_string(::getpid()) + "_" + std::to_string(seq);
    pg_scratch::Exec(pg_admin, "DROP DATABASE IF EXISTS " + pg_db + " WITH (FORCE)");
    if (std::string err = pg_scratch::Exec(pg_admin, "CREATE DATABASE " + pg_db); !err.empty()) {
      f.failure = "CREATE DATABASE " + pg_db + ": " + err;
      return f;
    }
    db = WithDatabase(pg_admin, pg_db);
  }
  struct DropDb {
    std::string admin, name;
    ~DropDb() {
      if (!name.empty()) pg_scratch::Exec(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }
  } drop{pg_admin, pg_db};

  const double s0 = NowSeconds();
  for (int q = 1; q <= 5; ++q) {
    const std::string qual = "q" + std::to_string(q);
    CliResult c = Cli(dir, db, {"qual", "create", qual});
    if (c.exit_code != 0) {
      f.failure = "qual create " + qual + ": " + c.err;
      return f;
    }
    {
      std::ofstream csv(dir.File("grants.csv"), std::ios::binary);
      csv << "worker,value\n";
      for (int64_t i = 1; i <= workers; ++i) csv << "w" << i << "," << (i * 7 + q - 1) % 100 << "\n";
    }
    c = Cli(dir, db, {"qual", "import", qual, dir.File("grants.csv"), "--reason", "bench"});
    if (c.exit_code != 0) {
      f.failure = "qual import " + qual + ": " + c.err;
      return f;
    }
  }
  CliResult launched = Cli(dir, db, {"--json", "launch", WriteConfig(dir, items)});
  Json lj = Json::parse(launched.out, nullptr, false);
  if (launched.exit_code != 0 || !lj.is_object() || !lj.contains("run_id")) {
    f.failure = "launch: exit " + std::to_string(launched.exit_code) + ": " + launched.err + launched.out;
    return f;
  }
  const std::string run_id = lj["run_id"];
  f.setup_s = NowSeconds() - s0;

  std::vector<std::unique_ptr<ServeProcess>> servers;
  HttpLoadOptions lo;
  for (int s = 0; s < setup.servers; ++s) {
    // Room for the previous run's sessions that are still closing when the next run connects.
    servers.push_back(std::make_unique<ServeProcess>(dir, db, s, 2 * connections + 100));
    if (servers.back()->port() == 0) {
      f.failure = "serve " + std::to_string(s) + " did not start (" + servers.back()->exit() +
                  "): " + servers.back()->Stderr();
      return f;
    }
    lo.ports.push_back(servers.back()->port());
  }
  lo.run_id = run_id;
  lo.connections = connections;
  lo.worker_population = workers;
  lo.offered_rate = rate;
  lo.warmup_s = warmup;
  lo.duration_s = duration;
  for (int r = 0; r < o.runs; ++r) {
    HttpLoadResult res = RunHttpLoad(lo);
    f.throughput.push_back(res.throughput);
    f.p50.push_back(Percentile(res.latencies_ms, 50));
    f.p99.push_back(Percentile(res.latencies_ms, 99));
    f.p999.push_back(Percentile(res.latencies_ms, 99.9));
    f.errors += res.errors;
    f.requests += res.requests;
    for (auto& e : res.error_samples) {
      if (f.error_samples.size() < 5) f.error_samples.push_back(e);
    }
    const double d0 = NowSeconds();
    for (int port : lo.ports) {
      if (!Drain(port, run_id)) {
        f.failure = "the drain probe on port " + std::to_string(port) + " got no answer";
        return f;
      }
    }
    f.drain_s.push_back(NowSeconds() - d0);
  }
  for (size_t s = 0; s < servers.size(); ++s) {
    const std::string text = servers[s]->Stderr();
    if (f.errors > 0) {  // what the servers said, for the error report
      std::cerr << "http-work-pg/" << setup.name() << ": serve " << s << " stderr (last 1500 bytes):\n"
                << text.substr(text.size() > 1500 ? text.size() - 1500 : 0) << "\n";
    }
    if (!servers[s]->Stop()) {
      f.failure = "serve " + std::to_string(s) + " did not stop cleanly: " + text.substr(0, 2000);
      return f;
    }
  }
  f.ok = true;
  return f;
}

std::string Fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

}  // namespace

int HttpWorkPg(const HttpMultiOptions& o, const std::function<void(const MultiRow&)>& report) {
  const char* pg = std::getenv("CROWDGATE_TEST_PG");
  if (pg == nullptr || *pg == '\0') {
    const std::string why =
        "http-work-pg needs PostgreSQL: set CROWDGATE_TEST_PG=postgresql://USER@HOST:PORT/postgres (a database the "
        "bench may CREATE DATABASE from), or run `make bench-pg`, which starts a throwaway cluster through "
        "scripts/with_pg.sh";
    if (o.named && !o.smoke) {
      std::cerr << "crowdgate_bench: " << why << "\n";
      std::exit(2);
    }
    std::cerr << "crowdgate_bench: skipped: " << why << "\n";
    return 0;
  }
  int failures = 0;
  std::vector<Setup> setups = {{"sqlite", 1}, {"postgresql", 1}, {"postgresql", 3}, {"sqlite", 3}};
  // CROWDGATE_BENCH_PG_SETUPS=pg-1,pg-3 measures only those (the ratios need both of their setups).
  if (const char* only = std::getenv("CROWDGATE_BENCH_PG_SETUPS"); only != nullptr && *only != '\0') {
    const std::string list = std::string(",") + only + ",";
    std::erase_if(setups, [&](const Setup& s) {
      std::string key = ",";
      key += s.name();
      key += ",";
      return list.find(key) == std::string::npos;
    });
  }
  std::map<std::string, Figures> figures;
  int seq = 0;
  for (const Setup& s : setups) {
    Figures f = Measure(s, o, pg, seq++);
    if (!f.ok) {
      std::cerr << "CHECK FAILED: http-work-pg/" << s.name() << ": " << f.failure << "\n";
      ++failures;
    } else if (f.errors != 0 || f.requests == 0) {
      std::cerr << "CHECK FAILED: http-work-pg/" << s.name() << ": 0 errors and some requests (got " << f.errors
                << " errors, " << f.requests << " requests" << (f.error_samples.empty() ? "" : "; first: ")
                << (f.error_samples.empty() ? "" : f.error_samples.front()) << ")\n";
      ++failures;
    }
    const int connections = o.smoke ? 20 : 1000;
    const std::string workload = "http-work-pg/" + s.name();
    const Stats tput = Summarize(f.throughput), p50 = Summarize(f.p50), p99 = Summarize(f.p99),
                p999 = Summarize(f.p999);
    MultiRow row{workload, "requests/s", tput, "req/s", "-", true, "", nullptr};
    row.note = std::to_string(s.servers) + (s.servers == 1 ? " serve process on " : " serve processes on ") +
               (s.backend == "sqlite" ? "one SQLite file" : "one PostgreSQL") + ", " + std::to_string(connections) +
               " conns, offered " + std::to_string(o.smoke ? 400 : 10'000) + "/s";
    row.json = {{"backend", s.backend},       {"servers", s.servers},       {"connections", connections},
                {"workers", 1000},            {"offered_rate", o.smoke ? 400 : 10'000},
                {"errors", f.errors},         {"p50_ms", p50.median},       {"p99_ms", p99.median},
                {"p999_ms", p999.median},     {"p99_ms_min", p99.min},      {"p99_ms_max", p99.max},
                {"setup_s", f.setup_s},       {"drain_s_max", Summarize(f.drain_s).max},
                {"throughput_per_run", f.throughput},
                {"error_samples", f.error_samples}};
    report(row);
    MultiRow lat{workload, "p50 / p99 / p999 ms", p99, "ms", "-", true, "", nullptr};
    lat.note = "p50 " + Fixed(p50.median, 2) + ", p99 " + Fixed(p99.median, 2) + ", p999 " + Fixed(p999.median, 2) +
               "; errors " + std::to_string(f.errors);
    report(lat);
    figures[s.name()] = std::move(f);
  }
  // Ratios run by run (run r of one setup against run r of the other), summarized like every other figure.
  auto ratio = [&](const std::string& num, const std::string& den) {
    std::vector<double> v;
    const auto& a = figures[num].throughput;
    const auto& b = figures[den].throughput;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) v.push_back(b[i] > 0 ? a[i] / b[i] : 0);
    return Summarize(v);
  };
  if (figures.count("pg-1") == 0 || figures.count("pg-3") == 0 || figures.count("sqlite-1") == 0) return failures;
  const Stats scale = ratio("pg-3", "pg-1");
  const Stats pg_vs_sqlite = ratio("pg-1", "sqlite-1");
  const Stats pg3_vs_sqlite = ratio("pg-3", "sqlite-1");
  const Stats sqlite_scale = ratio("sqlite-3", "sqlite-1");
  MultiRow r1{"http-work-pg", "ratio PG 3 servers / 1 server", scale, "x", "-", true, "", nullptr};
  r1.note = "throughput; SQLite 3 / 1: " + Fixed(sqlite_scale.median, 2);
  r1.json = {{"pg3_over_pg1", scale.median},
             {"pg1_over_sqlite1", pg_vs_sqlite.median},
             {"pg3_over_sqlite1", pg3_vs_sqlite.median},
             {"sqlite3_over_sqlite1", sqlite_scale.median},
             {"throughput", {{"sqlite-1", Summarize(figures["sqlite-1"].throughput).median},
                             {"pg-1", Summarize(figures["pg-1"].throughput).median},
                             {"pg-3", Summarize(figures["pg-3"].throughput).median},
                             {"sqlite-3", Summarize(figures["sqlite-3"].throughput).median}}}};
  report(r1);
  MultiRow r2{"http-work-pg", "ratio PG / SQLite (1 server)", pg_vs_sqlite, "x", "-", true, "", nullptr};
  r2.note = "PG 3 servers / SQLite 1 server: " + Fixed(pg3_vs_sqlite.median, 2);
  report(r2);
  return failures;
}

namespace {

// VmRSS of process `pid` in MB, or -1.
double ProcessRssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

struct OverloadFigures {
  bool ok = false;
  std::string failure;
  HttpLoadResult load;
  double rss_start_mb = 0, rss_peak_mb = 0, rss_end_mb = 0;
  int64_t other_errors = 0;  // non-200 answers other than 503, and broken connections
};

OverloadFigures MeasureOverload(const HttpMultiOptions& o, int connections, int max_queue, double backoff_s) {
  OverloadFigures f;
  ScratchDir dir("overload-" + std::to_string(max_queue));
  const std::string db = dir.File("bench.db");
  const int64_t items = o.smoke ? 5'000 : 300'000;
  WriteFile(dir.File("task.html"), "<p>${text}</p>");
  {
    std::ofstream out(dir.File("units.jsonl"), std::ios::binary);
    for (int64_t i = 0; i < items; ++i) out << "{\"id\": \"s" << i << "\", \"text\": \"sentence " << i << "\"}\n";
  }
  WriteFile(dir.File("config.yaml"),
            "task:\n  task_name: overload\n  task_title: overload\n  allowed_concurrent: 1\n"
            "  assignment_duration_in_seconds: 3600\n"
            "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
            "qualifications: []\nprovider:\n  type: local\n  trust_worker_param: true\n");
  CliResult launched = Cli(dir, db, {"--json", "launch", dir.File("config.yaml")});
  Json lj = Json::parse(launched.out, nullptr, false);
  if (launched.exit_code != 0 || !lj.is_object() || !lj.contains("run_id")) {
    f.failure = "launch: exit " + std::to_string(launched.exit_code) + ": " + launched.err + launched.out;
    return f;
  }
  ServeProcess server(dir, db, 0, 2 * connections + 100, {"--max-queue", std::to_string(max_queue)});
  if (server.port() == 0) {
    f.failure = "serve did not start (" + server.exit() + "): " + server.Stderr();
    return f;
  }
  f.rss_start_mb = ProcessRssMb(server.pid());
  std::atomic<bool> sampling{true};
  std::atomic<double> peak{f.rss_start_mb};
  std::thread sampler([&] {
    while (sampling.load()) {
      const double rss = ProcessRssMb(server.pid());
      if (rss > peak.load()) peak.store(rss);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  HttpLoadOptions lo;
  lo.port = server.port();
  lo.run_id = lj["run_id"];
  lo.connections = connections;
  lo.worker_population = connections;  // one worker per connection
  lo.offered_rate = 0;                 // closed loop: the next request as soon as the answer is in
  lo.warmup_s = o.smoke ? 0.2 : 1;
  lo.duration_s = o.smoke ? 0.5 : 5;
  lo.backoff_after_503_s = backoff_s;
  f.load = RunHttpLoad(lo);
  // The backlog the crowd left may still fill the queue: a probe answered 503 asks again a little later.
  bool drained = false;
  for (int i = 0; i < 100 && !drained; ++i) {
    HttpClient client("127.0.0.1", server.port(), std::chrono::seconds(120));
    auto r = client.Post("/api/v1/runs/" + lo.run_id + "/work", R"({"provider": "local", "worker": "drain-probe"})");
    if (!r.ok() || (r->status != 200 && r->status != 503)) break;
    drained = r->status == 200;
    if (!drained) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  sampling.store(false);
  sampler.join();
  f.rss_peak_mb = peak.load();
  f.rss_end_mb = ProcessRssMb(server.pid());
  f.other_errors = f.load.errors - f.load.shed_all - f.load.no_work;
  if (!drained) {
    f.failure = "the drain probe got no answer";
    return f;
  }
  if (!server.Stop()) {
    f.failure = "serve did not stop cleanly: " + server.Stderr().substr(0, 2000);
    return f;
  }
  f.ok = true;
  return f;
}

}  // namespace

int Overload(const HttpMultiOptions& o, const std::function<void(const MultiRow&)>& report) {
  int failures = 0;
  const int max_queue = o.smoke ? 10 : 200;
  const int connections = 10 * max_queue;
  struct Setup {
    int max_queue;
    double backoff_s;  // what a client does after a 503: 0 = ask again at once, 1 = wait the Retry-After
  };
  for (const Setup& s : {Setup{max_queue, 0}, Setup{max_queue, 1}, Setup{4096, 0}}) {
    const int q = s.max_queue;
    OverloadFigures f = MeasureOverload(o, connections, q, s.backoff_s);
    const std::string workload =
        "overload/max-queue-" + std::to_string(q) + (s.backoff_s > 0 ? "/backoff" : "");
    if (!f.ok) {
      std::cerr << "CHECK FAILED: " << workload << ": " << f.failure << "\n";
      ++failures;
      continue;
    }
    if (f.other_errors != 0 || f.load.requests == 0) {
      std::cerr << "CHECK FAILED: " << workload << ": every answer a 200 or a 503 (got " << f.other_errors
                << " other errors, " << f.load.requests << " requests"
                << (f.load.error_samples.empty() ? "" : "; first: " + f.load.error_samples.front()) << ")\n";
      ++failures;
    }
    const double shed_share = f.load.requests > 0 ? static_cast<double>(f.load.shed) / f.load.requests : 0;
    const double served = f.load.elapsed_s > 0 ? (f.load.requests - f.load.shed) / f.load.elapsed_s : 0;
    const Stats tput = Summarize({served});
    MultiRow row{workload, "answered 200/s", tput, "req/s", "-", true, "", nullptr};
    row.note = std::to_string(connections) + " closed-loop conns; 503 share " + Fixed(100 * shed_share, 1) +
               " %; server RSS start/peak/end " + Fixed(f.rss_start_mb, 0) + "/" + Fixed(f.rss_peak_mb, 0) + "/" +
               Fixed(f.rss_end_mb, 0) + " MB; p99 " + Fixed(Percentile(f.load.latencies_ms, 99), 1) + " ms";
    row.json = {{"connections", connections},
                {"max_queue", q},
                {"backoff_after_503_s", s.backoff_s},
                {"requests", f.load.requests},
                {"shed", f.load.shed},
                {"shed_share", shed_share},
                {"answered_per_s", served},
                {"all_answers_per_s", f.load.throughput},
                {"p50_ms", Percentile(f.load.latencies_ms, 50)},
                {"p99_ms", Percentile(f.load.latencies_ms, 99)},
                {"rss_start_mb", f.rss_start_mb},
                {"rss_peak_mb", f.rss_peak_mb},
                {"rss_end_mb", f.rss_end_mb},
                {"other_errors", f.other_errors},
                {"error_samples", f.load.error_samples}};
    report(row);
  }
  return failures;
}

}  // namespace crowdgate::bench
