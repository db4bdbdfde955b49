// `crowdgate launch | serve | run | status | export | review | simulate`: running tasks.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <pthread.h>

#include <CLI/CLI.hpp>

#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "cli/cli_open.hpp"
#include "cli/simulate.hpp"
#include "core/run_config.hpp"
#include "crowdgate/dispatcher.hpp"
#include "server/task_server.hpp"

namespace crowdgate::cli {

namespace {

// Loads and checks the config (the provider first: nothing is stored for a run its provider
// cannot take), stores the run, then creates the provider's side (a Prolific study). When that
// fails the run is closed again, so no worker can land on a run the crowd never sees.
Result<LaunchResult> LaunchFromFile(Opened& o, const std::string& config_path,
                                    const std::vector<std::string>& overrides) {
  CG_ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig(config_path, overrides));
  CG_RETURN_IF_ERROR(o.providers->CheckLaunch(config));
  Progress progress("launching " + config.task.task_name);
  auto r = o.dispatcher->Launch(config, [&progress](size_t done, size_t total) { progress.Update(done, total); });
  progress.Finish();
  if (!r.ok()) return r;
  for (const std::string& w : r->warnings) std::cerr << "crowdgate: warning: " << w << "\n";
  Status provider = o.providers->Launch(r->run_id);
  if (!provider.ok()) {
    Status closed = o.dispatcher->CloseRun(r->run_id);
    return provider.WithContext("launch run " + r->run_id + " on " + config.provider.type +
                                (closed.ok() ? " (the run is closed)" : ""));
  }
  return r;
}

// Blocks SIGINT/SIGTERM in every thread started after this call, so sigwait() in the
// main thread receives them.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

bool RunFinished(const RunSummary& s) {
  for (const auto& [status, n] : s.units_by_status) {
    if ((status == ToString(UnitStatus::kLaunched) || status == ToString(UnitStatus::kAssigned)) && n > 0) return false;
  }
  return true;
}

nlohmann::json SummaryJson(const RunSummary& s) {
  nlohmann::json units = nlohmann::json::object();
  for (const auto& [k, n] : s.units_by_status) units[k] = n;
  return {{"run_id", s.run_id},           {"task_name", s.task_name},
          {"status", s.status},           {"created_at", FormatTimestamp(s.created_at)},
          {"units", units},               {"gold_served", s.gold_served},
          {"screening_served", s.screening_served}};
}

// Network options shared by `serve` and `run`.
struct ServeArgs {
  std::string host = "127.0.0.1";
  int port = 8080;
  double rate_limit = 0;          // requests/s per client address; 0 = off
  int max_connections_per_ip = 256;
  std::string public_url;         // where providers send workers ("" = provider.public_url)
  int provider_poll_ms = 5000;    // how often the drainer reads providers (returned submissions)
  bool metrics_public = false;    // GET /metrics without the requester token
  size_t max_queue = BatchQueue::kDefaultMaxQueue;  // worker requests waiting before 503 + Retry-After
  int grant_sweep_seconds = 60;   // CROWDGATE_GRANT_SWEEP_SECONDS
};

// How often `serve` revokes grants whose expiry has passed: CROWDGATE_GRANT_SWEEP_SECONDS, whole seconds
// from 1 to 86400 (default 60). Read before anything is opened, so a bad value changes nothing (exit 2).
Result<int> GrantSweepSecondsFromEnv() {
  constexpr int kMax = 86400;
  const char* v = std::getenv("CROWDGATE_GRANT_SWEEP_SECONDS");
  if (v == nullptr || *v == '\0') return 60;
  const std::string text(v);
  const bool digits = text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
  const int n = digits ? std::stoi(text) : 0;
  if (n < 1 || n > kMax) {
    return Status::InvalidArgument("CROWDGATE_GRANT_SWEEP_SECONDS must be a whole number of seconds from 1 to " +
                                   std::to_string(kMax) + ", got '" + text + "'");
  }
  return n;
}

void AddServeOptions(CLI::App* cmd, ServeArgs* a) {
  cmd->add_option("--host", a->host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", a->port, "Port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  cmd->add_option("--rate-limit", a->rate_limit,
                  "Requests per second allowed per client address, bursts of twice that (default 0 = no limit; "
                  "behind a proxy every client shares one address)")
      ->check(CLI::Range(0.0, 1e9));
  cmd->add_option("--max-connections-per-ip", a->max_connections_per_ip,
                  "Open connections allowed per client address (default 256)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--public-url", a->public_url,
                  "Address providers send workers to, e.g. https://tasks.example.org (overrides provider.public_url)");
  cmd->add_option("--provider-poll-ms", a->provider_poll_ms,
                  "How often returned and timed-out Prolific submissions are looked for (default 5000)")
      ->check(CLI::Range(50, 3600000));
  cmd->add_option("--max-queue", a->max_queue,
                  "Worker API requests allowed to wait for the database (default " +
                      std::to_string(BatchQueue::kDefaultMaxQueue) +
                      "); past that they are answered 503 with Retry-After at once")
      ->check(CLI::Range(size_t{1}, size_t{10000000}));
  cmd->add_flag("--metrics-public", a->metrics_public,
                "Serve GET /metrics without the requester token (for a Prometheus inside your network)");
}

int Serve(const CliContext& ctx, Opened& o, const ServeArgs& args, const std::string& only_run) {
  const std::string& host = args.host;
  sigset_t stop_signals = BlockStopSignals();
  TaskServerOptions options;
  options.http.host = host;
  options.http.port = args.port;
  options.http.rate_limit_per_second = args.rate_limit;
  options.http.rate_limit_burst = 2 * args.rate_limit;
  options.http.max_connections_per_ip = args.max_connections_per_ip;
  if (const char* t = std::getenv("CROWDGATE_REQUESTER_TOKEN")) options.requester_token = t;
  options.providers = o.providers.get();
  options.metrics_public = args.metrics_public;
  options.batching.max_queue = args.max_queue;
  options.grant_sweep_interval_ms = args.grant_sweep_seconds * 1000;
  TaskServer server(o.engine.get(), o.dispatcher.get(), options);
  Status s = server.Start();
  if (!s.ok()) return Fail(s);
  o.providers->StartDrainer(args.provider_poll_ms);
  auto runs = o.dispatcher->ListRuns();
  if (!runs.ok()) return Fail(runs.status());
  std::cerr << "crowdgate: serving on http://" << host << ":" << server.port() << "\n";
  for (const auto& r : *runs) {
    if (r.status != RunStatus::kOpen || (!only_run.empty() && r.run_id != only_run)) continue;
    std::cerr << "  " << r.task_name << ": http://" << host << ":" << server.port() << "/runs/" << r.run_id
              << "  (local workers: crowdgate worker link NAME " << r.run_id << ")\n";
  }
  if (options.requester_token.empty() || std::getenv("CROWDGATE_REQUESTER_TOKEN") == nullptr) {
    std::cerr << "  requester token (set CROWDGATE_REQUESTER_TOKEN to choose one): " << server.requester_token() << "\n";
  }
  std::cerr << "  dashboard: http://" << host << ":" << server.port() << "/dashboard/\n";
  std::cerr << "Press Ctrl-C to stop.\n";
  if (only_run.empty()) {
    int sig = 0;
    sigwait(&stop_signals, &sig);
  } else {
    // `run`: stop when every unit is done, or on a signal.
    timespec tick{1, 0};
    while (true) {
      siginfo_t info;
      if (sigtimedwait(&stop_signals, &info, &tick) > 0) break;
      auto summary = o.dispatcher->Summarize(only_run);
      if (summary.ok() && RunFinished(*summary)) {
        std::cerr << "crowdgate: run " << only_run << " is done\n";
        break;
      }
    }
  }
  std::cerr << "crowdgate: stopping\n";
  server.Stop();
  o.providers->StopDrainer();
  return 0;
}

void AddLaunch(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("launch", "Launch a run from a YAML config; prints the run id");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  cmd->add_option("CONFIG", *config, "Run config (YAML, Mephisto's task/blueprint/qualifications/provider groups)")
      ->required();
  cmd->add_option("OVERRIDES", *overrides, "key.path=value overrides, e.g. blueprint.min_golds=2");
  auto public_url = std::make_shared<std::string>();
  cmd->add_option("--public-url", *public_url,
                  "Address providers send workers to (Prolific's study URL), overrides provider.public_url");
  cmd->footer("provider.type prolific creates the study on Prolific as a draft (PROLIFIC_API_TOKEN; publish it with\n"
              "provider.publish: true or `crowdgate provider publish RUN`). MTurk closed on 2026-09-30: launching\n"
              "on it is refused.");
  cmd->callback([&ctx, config, overrides, public_url] {
    ctx.action = [&ctx, config, overrides, public_url] {
      auto o = OpenAll(ctx, true, *public_url);
      if (!o.ok()) return Fail(o.status());
      auto r = LaunchFromFile(*o, *config, *overrides);
      if (!r.ok()) return Fail(r.status());
      if (ctx.json) {
        PrintJson({{"run_id", r->run_id}, {"items", r->items}, {"units", r->units}});
      } else {
        std::cout << "launched " << r->units << " units from " << r->items << " items\n" << r->run_id << "\n";
      }
      return 0;
    };
  });
}

void AddServe(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("serve", "Serve every open run in the database over HTTP");
  auto args = std::make_shared<ServeArgs>();
  AddServeOptions(cmd, args.get());
  cmd->callback([&ctx, args] {
    ctx.action = [&ctx, args] {
      auto sweep = GrantSweepSecondsFromEnv();
      if (!sweep.ok()) return Fail(sweep.status());
      args->grant_sweep_seconds = *sweep;
      auto o = OpenAll(ctx, true, args->public_url);
      if (!o.ok()) return Fail(o.status());
      return Serve(ctx, *o, *args, "");
    };
  });
}

void AddRun(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("run", "Launch a run and serve it until it is done or Ctrl-C");
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto args = std::make_shared<ServeArgs>();
  cmd->add_option("CONFIG", *config, "Run config (YAML)")->required();
  cmd->add_option("OVERRIDES", *overrides, "key.path=value overrides");
  AddServeOptions(cmd, args.get());
  cmd->callback([&ctx, config, overrides, args] {
    ctx.action = [&ctx, config, overrides, args] {
      auto sweep = GrantSweepSecondsFromEnv();
      if (!sweep.ok()) return Fail(sweep.status());
      args->grant_sweep_seconds = *sweep;
      auto o = OpenAll(ctx, true, args->public_url);
      if (!o.ok()) return Fail(o.status());
      auto r = LaunchFromFile(*o, *config, *overrides);
      if (!r.ok()) return Fail(r.status());
      std::cout << r->run_id << std::endl;
      return Serve(ctx, *o, *args, r->run_id);
    };
  });
}

void AddStatus(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("status", "Runs and their units by status");
  auto run = std::make_shared<std::string>();
  cmd->add_option("RUN", *run, "Only this run");
  cmd->callback([&ctx, run] {
    ctx.action = [&ctx, run] {
      auto o = OpenAll(ctx);
      if (!o.ok()) return Fail(o.status());
      std::vector<RunSummary> runs;
      if (run->empty()) {
        auto all = o->dispatcher->ListRuns();
        if (!all.ok()) return Fail(all.status());
        runs = std::move(all).value();
      } else {
        auto one = o->dispatcher->Summarize(*run);
        if (!one.ok()) return Fail(one.status());
        runs.push_back(std::move(one).value());
      }
      if (ctx.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : runs) out.push_back(SummaryJson(s));
        PrintJson(run->empty() ? out : out[0]);
        return 0;
      }
      Table t({"RUN", "TASK", "STATUS", "CREATED", "UNITS", "GOLDS", "SCREENING"});
      for (const auto& s : runs) {
        std::string units;
        for (const auto& [k, n] : s.units_by_status) units += (units.empty() ? "" : " ") + k + "=" + std::to_string(n);
        t.Add({s.run_id, s.task_name, ToString(s.status), FormatTimestamp(s.created_at), units, std::to_string(s.gold_served),
               std::to_string(s.screening_served)});
      }
      t.Print(std::cout);
      return 0;
    };
  });
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void AddExport(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("export", "Every agent of a run with its submission (jsonl or csv)");
  auto run = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("jsonl");
  auto out_path = std::make_shared<std::string>();
  cmd->add_option("RUN", *run, "Run id")->required();
  cmd->add_option("--format", *format, "jsonl (default) or csv")->check(CLI::IsMember({"jsonl", "csv"}));
  cmd->add_option("--out", *out_path, "Write to this file instead of stdout");
  cmd->callback([&ctx, run, format, out_path] {
    ctx.action = [&ctx, run, format, out_path] {
      auto o = OpenAll(ctx);
      if (!o.ok()) return Fail(o.status());
      auto rows = o->dispatcher->Export(*run);
      if (!rows.ok()) return Fail(rows.status());
      std::ofstream file;
      if (!out_path->empty()) {
        file.open(*out_path);
        if (!file) return Fail(Status::InvalidArgument("--out " + *out_path + ": cannot write"));
      }
      std::ostream& out = out_path->empty() ? std::cout : file;
      auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
      if (*format == "csv") {
        out << "run_id,unit_id,item,worker,agent_id,kind,status,submitted_at,duration_s,data\n";
      }
      for (const auto& r : *rows) {
        nlohmann::json j = {{"run_id", r.run_id},
                            {"unit_id", opt(r.unit_id)},
                            {"item", r.item < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.item)},
                            {"worker", r.worker},
                            {"agent_id", r.agent_id},
                            {"kind", r.kind},
                            {"status", r.status},
                            {"submitted_at", r.submitted_at ? nlohmann::json(FormatTimestamp(*r.submitted_at)) : nullptr},
                            {"duration_s", opt(r.duration_s)},
                            {"data", r.data}};
        if (*format == "jsonl") {
          out << j.dump() << "\n";
          continue;
        }
        auto text = [](const nlohmann::json& v) { return v.is_null() ? std::string() : v.is_string() ? v.get<std::string>() : v.dump(); };
        out << CsvField(r.run_id) << "," << text(j["unit_id"]) << "," << text(j["item"]) << "," << CsvField(r.worker)
            << "," << r.agent_id << "," << ToString(r.kind) << "," << ToString(r.status) << "," << text(j["submitted_at"]) << ","
            << text(j["duration_s"]) << "," << CsvField(r.data.is_null() ? "" : r.data.dump()) << "\n";
      }
      if (!out) return Fail(Status::Unavailable("export: write failed"));
      if (!out_path->empty()) std::cerr << "wrote " << rows->size() << " rows to " << *out_path << "\n";
      return 0;
    };
  });
}

void AddReview(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("review", "Approve, reject or soft-reject submitted units (and tell the provider)");
  auto req = std::make_shared<ReviewRequest>();
  auto bonus = std::make_shared<double>(0);
  cmd->add_option("RUN", req->run_id, "Run id")->required();
  cmd->add_option("ACTION", req->action, "approve | reject | soft-reject")
      ->required()
      ->check(CLI::IsMember({"approve", "reject", "soft-reject"}));
  cmd->add_option("UNITS", req->unit_ids, "Unit ids (see `crowdgate export`)");
  cmd->add_flag("--all", req->all, "Every submitted, not yet reviewed unit of the run");
  cmd->add_option("--worker", req->worker, "Every submitted, not yet reviewed unit of this worker");
  cmd->add_option("--reason", req->reason,
                  "Why (Prolific: sent to the participant; a rejection needs at least 100 characters)");
  cmd->add_option("--category", req->category,
                  "Prolific rejection category: TOO_QUICKLY, TOO_SLOWLY, FAILED_INSTRUCTIONS, INCOMP_LONGITUDINAL, "
                  "FAILED_CHECK, LOW_EFFORT, MALINGERING, NO_CODE, BAD_CODE, NO_DATA, UNSUPP_DEVICE, OTHER");
  auto* bonus_opt = cmd->add_option("--bonus", *bonus,
                                    "Bonus per participant session, in the study's currency (4.25 = 4.25), paid once");
  cmd->footer(
      "On a Prolific run the participant's submission is approved or rejected on Prolific and the bonus is paid\n"
      "through the provider outbox (see `crowdgate provider status`); a soft rejection approves on Prolific.");
  cmd->callback([&ctx, req, bonus, bonus_opt] {
    ctx.action = [&ctx, req, bonus, bonus_opt] {
      if (bonus_opt->count() > 0) req->bonus = *bonus;
      auto o = OpenAll(ctx, true);
      if (!o.ok()) return Fail(o.status());
      Status allowed = o->providers->CheckReview(*req);
      if (!allowed.ok()) return Fail(allowed);
      auto n = o->dispatcher->Review(*req);
      if (!n.ok()) return Fail(n.status());
      if (ctx.json) {
        PrintJson({{"reviewed", n->reviewed}, {"action", req->action}, {"provider_changes", n->provider_rows}});
      } else {
        std::cout << req->action << ": " << n->reviewed << " units\n";
        if (n->provider_rows > 0) {
          std::cout << n->provider_rows << " changes queued for the provider (crowdgate provider status)\n";
        }
      }
      return 0;
    };
  });
}

void AddSimulate(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("simulate", "Drive a run with a simulated crowd over HTTP");
  auto url = std::make_shared<std::string>();
  auto opts = std::make_shared<SimOptions>();
  auto profile = std::make_shared<std::string>("good:0.9");
  cmd->add_option("RUN_URL", *url, "http://HOST:PORT/runs/RUN_ID")->required();
  cmd->add_option("--workers", opts->workers, "Number of simulated workers (default 10)")->check(CLI::Range(1, 1000000));
  cmd->add_option("--profile", *profile, "NAME:ACCURACY,... assigned round-robin (default good:0.9)");
  cmd->add_option("--answers", opts->answer_files, "JSONL of {inputs, answer}: the hidden truth (repeatable)");
  cmd->add_option("--threads", opts->threads, "HTTP connections (default 8)")->check(CLI::Range(1, 4096));
  cmd->add_option("--seed", opts->seed, "Random seed (default 1)");
  cmd->add_option("--prefix", opts->name_prefix, "Prefix for worker names");
  cmd->add_option("--max-units", opts->max_units_per_worker, "Stop a worker after this many units");
  cmd->add_option("--think-ms", opts->think_ms,
                  "Pause before each submission, in ms (default 0; the instant profile never pauses)")
      ->check(CLI::Range(0, 600000));
  cmd->footer("Profiles named instant (answers at once), contrarian (never the true label) and returner (returns\n"
              "four units in five) behave as their names say, e.g. --profile good:0.9,instant:0.3,returner:0.9.");
  cmd->callback([&ctx, url, opts, profile] {
    ctx.action = [&ctx, url, opts, profile] {
      auto profiles = ParseProfiles(*profile);
      if (!profiles.ok()) return Fail(profiles.status());
      opts->profiles = *profiles;
      opts->run_url = *url;
      const bool tty = StderrIsTerminal();
      auto report = RunSimulation(*opts, [tty](int64_t requests, int64_t active) {
        if (tty) std::cerr << "\rsimulating: " << requests << " requests, " << active << " workers active   " << std::flush;
      });
      if (tty) std::cerr << "\n";
      if (!report.ok()) return Fail(report.status());
      if (ctx.json) {
        nlohmann::json workers = nlohmann::json::array();
        for (const auto& w : report->workers) {
          workers.push_back({{"worker", w.worker}, {"profile", w.profile}, {"units", w.units}, {"returns", w.returns},
                             {"onboarding", w.onboarding_result}, {"ended", w.last_outcome},
                             {"reason", w.last_reason}, {"errors", w.errors}});
        }
        PrintJson({{"requests", report->requests}, {"errors", report->errors}, {"elapsed_s", report->elapsed_s},
                   {"p50_ms", report->Percentile(50)}, {"p99_ms", report->Percentile(99)}, {"workers", workers}});
      } else {
        Table t({"WORKER", "PROFILE", "ONBOARDING", "UNITS", "RETURNED", "ENDED", "REASON", "ERRORS"});
        for (const auto& w : report->workers) {
          t.Add({w.worker, w.profile, w.onboarding_result.empty() ? "-" : w.onboarding_result, std::to_string(w.units),
                 std::to_string(w.returns), w.last_outcome, w.last_reason, std::to_string(w.errors)});
        }
        t.Print(std::cout);
        std::cout << report->requests << " requests in " << report->elapsed_s << " s, " << report->errors
                  << " errors, p50 " << report->Percentile(50) << " ms, p99 " << report->Percentile(99) << " ms\n";
        for (const auto& e : report->error_samples) std::cout << "  error: " << e << "\n";
      }
      return report->errors == 0 ? 0 : 1;
    };
  });
}

}  // namespace

void AddRunCommands(CLI::App& app, CliContext& ctx) {
  AddLaunch(app, ctx);
  AddServe(app, ctx);
  AddRun(app, ctx);
  AddStatus(app, ctx);
  AddExport(app, ctx);
  AddReview(app, ctx);
  AddSimulate(app, ctx);
}

}  // namespace crowdgate::cli
