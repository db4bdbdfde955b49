// `crowdgate demo`: the sentiment example end to end — a fresh database, a block list,
// a launched run, the real HTTP server, a simulated crowd of good, careless, spamming and
// instantly answering workers, and a report of what quality control did.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "cli/demo_report.hpp"
#include "cli/simulate.hpp"
#include "core/run_config.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "server/http_client.hpp"
#include "server/task_server.hpp"

#ifndef CROWDGATE_EXAMPLES_DIR
#define CROWDGATE_EXAMPLES_DIR "examples"
#endif

namespace crowdgate::cli {

namespace {

struct DemoArgs {
  std::string example = std::string(CROWDGATE_EXAMPLES_DIR) + "/sentiment";
  std::string db = "crowdgate-demo.db";
  int good = 6;
  int careless = 3;
  int spammers = 3;
  int instant = 2;
  uint64_t seed = 7;
  bool exit_at_once = false;  // --exit: stop serving as soon as the report is printed
  int port = 0;
  int time_scale = 100;
  int think_ms = 60;
};

// The demo's clock runs `scale` times faster than the wall clock from the moment it starts, so
// a crowd that thinks for 60 ms a unit looks like people taking 6 s, and the example's rules
// (a unit in under 3 s is fast; a ban lasts a day) play out in seconds. An instant answer stays
// fast as long as serving and submitting take under 30 ms of wall time (sanitizer builds too).
class FastClockEnv : public EnvWrapper {
 public:
  FastClockEnv(Env* target, int64_t scale)
      : EnvWrapper(target), scale_(scale), start_(target->NowMicros()) {}
  int64_t NowMicros() override { return start_ + (EnvWrapper::NowMicros() - start_) * scale_; }

 private:
  int64_t scale_;
  int64_t start_;
};

// SIGINT/SIGTERM blocked in every thread started after this call, so sigwait() here receives them.
sigset_t BlockDemoStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

Status RunDemo(const DemoArgs& a) {
  namespace fs = std::filesystem;
  // On a terminal, keep serving after the report so the newcomer can open the dashboard; in scripts
  // and CI (stdout not a terminal) or with --exit, stop at once as before.
  const bool keep_serving = !a.exit_at_once && isatty(STDOUT_FILENO) == 1;
  sigset_t stop_signals;
  if (keep_serving) stop_signals = BlockDemoStopSignals();
  const std::string config_path = a.example + "/config.yaml";
  if (!fs::exists(config_path)) return Status::InvalidArgument("--example " + a.example + ": no config.yaml there");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(a.db + suffix);
  std::cout << "crowdgate demo: a fresh database at " << a.db << "\n";

  FastClockEnv env(Env::Default(), a.time_scale);
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(a.db, &env));
  EngineOptions eo;
  eo.env = &env;
  eo.actor = "demo";
  CG_ASSIGN_OR_RETURN(std::unique_ptr<EngineImpl> engine, OpenEngineImpl(std::move(store), eo));
  CG_ASSIGN_OR_RETURN(std::unique_ptr<RunDispatcher> dispatcher, engine->NewRunDispatcher());

  // A block list with one worker we already know to be a spammer.
  CG_ASSIGN_OR_RETURN(Qualification blocked,
                      engine->CreateQualification("sentiment-blocked", "workers never to be served again"));
  CG_ASSIGN_OR_RETURN(AuditEntry block,
                      engine->Grant({blocked.name, "spammer-known", 1, std::nullopt, "spam in an earlier batch"}));
  std::cout << "1. block list: granted sentiment-blocked to local:spammer-known\n";

  CG_ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig(config_path, {}));
  CG_ASSIGN_OR_RETURN(LaunchResult launched, dispatcher->Launch(config, {}));
  for (const std::string& w : launched.warnings) std::cerr << "crowdgate: warning: " << w << "\n";
  std::cout << "2. launched run " << launched.run_id << ": " << launched.items << " sentences x "
            << config.blueprint.units_per_item << " = " << launched.units << " units, "
            << config.blueprint.gold_items.size() << " golds, onboarding quiz "
            << *config.blueprint.onboarding_qualification << "\n";

  ProviderHubOptions po;
  po.db_uri = a.db;
  CG_ASSIGN_OR_RETURN(std::unique_ptr<ProviderHub> providers,
                      ProviderHub::Open(std::move(po), engine.get(), dispatcher.get()));
  TaskServerOptions so;
  so.http.port = a.port;
  if (const char* t = std::getenv("CROWDGATE_REQUESTER_TOKEN")) so.requester_token = t;
  so.providers = providers.get();
  TaskServer server(engine.get(), dispatcher.get(), so);
  CG_RETURN_IF_ERROR(server.Start());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/runs/" + launched.run_id;
  // The example sets provider.trust_worker_param: true because its crowd is simulated: the
  // simulator names its workers itself. Real local workers get signed links instead.
  std::cout << "3. serving " << url << "?worker=NAME (trust_worker_param: a simulated crowd names itself; real "
            << "workers get signed links: crowdgate worker link NAME " << launched.run_id << ")\n";

  SimOptions sim;
  sim.run_url = url;
  sim.seed = a.seed;
  // One connection per worker: they spend most of their time thinking, not waiting on the server.
  sim.threads = std::max(4, a.good + a.careless + a.spammers + a.instant);
  sim.answer_files = {a.example + "/truth.jsonl", a.example + "/golds.jsonl", a.example + "/onboarding_truth.jsonl"};
  // Round-robin over profiles: build the list so the counts come out as asked.
  sim.profiles.clear();
  const int total = a.good + a.careless + a.spammers + a.instant;
  for (int i = 0; i < total; ++i) {
    if (i < a.good) {
      sim.profiles.push_back({"good", 0.95});
    } else if (i < a.good + a.careless) {
      sim.profiles.push_back({"careless", 0.7});
    } else if (i < a.good + a.careless + a.spammers) {
      sim.profiles.push_back({"spammer", 0.34});
    } else {
      // Right often enough to get through the quiz and the first golds; too fast to have read.
      sim.profiles.push_back({"instant", 0.7});
    }
  }
  sim.workers = total;
  sim.think_ms = a.think_ms;
  std::cout << "4. a simulated crowd over HTTP: " << a.good << " good (95%), " << a.careless << " careless (70%), "
            << a.spammers << " spammers (random), " << a.instant
            << " instant answerers (70%, no time to read), and the blocked spammer-known; the demo's clock runs "
            << a.time_scale << "x faster, so a worker's " << a.think_ms << " ms is " << a.think_ms * a.time_scale / 1000.0
            << " s\n";
  const bool tty = StderrIsTerminal();
  CG_ASSIGN_OR_RETURN(SimReport report, RunSimulation(sim, [tty](int64_t requests, int64_t active) {
                        if (tty) {
                          std::cerr << "\r   " << requests << " requests, " << active << " workers active   "
                                    << std::flush;
                        }
                      }));
  if (tty) std::cerr << "\n";
  std::cout << "   " << report.requests << " requests in " << report.elapsed_s << " s, " << report.errors
            << " errors, p50 " << report.Percentile(50) << " ms, p99 " << report.Percentile(99) << " ms\n";
  // The known spammer asks over HTTP like everyone else, and is refused.
  HttpClient client("127.0.0.1", server.port());
  CG_ASSIGN_OR_RETURN(HttpClientResponse refused,
                      client.Post("/api/v1/runs/" + launched.run_id + "/work",
                                  R"({"provider": "local", "worker": "spammer-known"})",
                                  {{"Content-Type", "application/json"}}));
  std::cout << "   local:spammer-known asked for work: " << refused.body << "\n";

  QualityReportInput in;
  in.run_id = launched.run_id;
  in.gold_base = config.blueprint.gold_qualification_base;
  in.onboarding = *config.blueprint.onboarding_qualification;
  in.block = config.blueprint.block_qualification.value_or("");
  in.truth_file = a.example + "/truth.jsonl";
  in.simulation = &report;
  CG_RETURN_IF_ERROR(PrintQualityReport(*engine, *dispatcher, in, std::cout));
  CG_ASSIGN_OR_RETURN(RunSummary summary, dispatcher->Summarize(launched.run_id));
  std::cout << "\nUnits:";
  for (const auto& [status, n] : summary.units_by_status) std::cout << " " << status << "=" << n;
  std::cout << "; golds served " << summary.gold_served << "\n";
  std::cout << "\nExplore it: crowdgate --db " << a.db
            << " status | qual history sentiment-blocked | qual history sentiment-gold-disqualified | export "
            << launched.run_id << "\n";
  const std::string dashboard = "http://127.0.0.1:" + std::to_string(server.port()) + "/dashboard/#/run/" + launched.run_id;
  std::cout << "\nDashboard: " << dashboard << "\n  log in with the requester token " << server.requester_token() << "\n";
  if (keep_serving) {
    std::cout << "Serving until Ctrl-C (--exit stops at once)." << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
  } else {
    std::cout << "(serving stopped: run `crowdgate --db " << a.db << " serve` to open the dashboard again)\n";
  }
  server.Stop();
  return Status::Ok();
}

}  // namespace

void AddDemoCommand(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand(
      "demo", "Run the sentiment example with a simulated crowd and show what quality control did");
  auto a = std::make_shared<DemoArgs>();
  cmd->add_option("--example", a->example, "Example folder (default: the bundled examples/sentiment)");
  cmd->add_option("--demo-db", a->db, "Database file to create afresh (default ./crowdgate-demo.db)");
  cmd->add_option("--good", a->good, "Good workers (default 6)")->check(CLI::Range(0, 1000));
  cmd->add_option("--careless", a->careless, "Careless workers (default 3)")->check(CLI::Range(0, 1000));
  cmd->add_option("--spammers", a->spammers, "Spamming workers (default 3)")->check(CLI::Range(0, 1000));
  cmd->add_option("--instant", a->instant, "Instant answerers (default 2)")->check(CLI::Range(0, 1000));
  cmd->add_option("--seed", a->seed, "Random seed (default 7)");
  cmd->add_flag("--exit", a->exit_at_once, "Stop serving as soon as the report is printed (the default when stdout is not a terminal)");
  cmd->add_option("--port", a->port, "Port to serve the run and the dashboard on (default 0: a free one)")->check(CLI::Range(0, 65535));
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a] {
      Status s = RunDemo(*a);
      return s.ok() ? 0 : Fail(s);
    };
  });
}

}  // namespace crowdgate::cli
