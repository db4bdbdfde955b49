// `crowdgate provider status | sync | publish`, `crowdgate close` and `crowdgate worker link`:
// what crosses to the crowd providers.
#include <csignal>
#include <pthread.h>

#include <CLI/CLI.hpp>

#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "cli/cli_open.hpp"
#include "providers/outbox_json.hpp"

namespace crowdgate::cli {

namespace {

std::string Ago(int64_t micros, int64_t now) {
  const int64_t s = (now - micros) / kMicrosPerSecond;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  return std::to_string(s / 3600) + "h";
}

int PrintStatus(Opened& o, const CliContext& ctx, int64_t limit) {
  auto counts = o.providers->CountOutbox();
  if (!counts.ok()) return Fail(counts.status());
  auto rows = o.providers->ListOutbox({"pending", "retrying", "failed"}, 0, limit);
  if (!rows.ok()) return Fail(rows.status());
  if (ctx.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : *rows) list.push_back(OutboxRowJson(r));
    PrintJson({{"counts", OutboxCountsJson(*counts)}, {"rows", list}});
    return 0;
  }
  const int64_t now = Env::Default()->NowMicros();
  std::cout << "provider outbox: " << counts->pending << " pending, " << counts->retrying << " retrying, "
            << counts->failed << " failed, " << counts->done << " delivered";
  if (counts->oldest_undelivered_at) std::cout << "; oldest waiting " << Ago(*counts->oldest_undelivered_at, now);
  std::cout << "\n";
  if (rows->empty()) return 0;
  Table t({"ID", "PROVIDER", "KIND", "STATE", "ATTEMPTS", "WHAT", "LAST ERROR"});
  for (const auto& r : *rows) {
    nlohmann::json p = nlohmann::json::parse(r.payload_json, nullptr, false);
    std::string what;
    if (p.is_object()) {
      what = p.value("worker", "");
      if (p.contains("qualification")) what += " " + p.value("qualification", "");
      if (p.contains("session")) what += " session " + p.value("session", "");
      if (p.contains("amount") && p["amount"].is_number()) what += " amount " + p["amount"].dump();
    }
    t.Add({std::to_string(r.id), r.provider, r.kind, r.state, std::to_string(r.attempts), what, r.last_error});
  }
  t.Print(std::cout);
  if (static_cast<int64_t>(rows->size()) == limit) std::cout << "(first " << limit << " rows; --limit N for more)\n";
  return 0;
}

void AddStatusCommand(CLI::App& provider, CliContext& ctx) {
  auto* cmd = provider.add_subcommand("status", "Changes waiting for the providers: pending, retrying and failed");
  auto limit = std::make_shared<int64_t>(50);
  cmd->add_option("--limit", *limit, "Rows to list (default 50)")->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  cmd->callback([&ctx, limit] {
    ctx.action = [&ctx, limit] {
      auto o = OpenAll(ctx, true);
      if (!o.ok()) return Fail(o.status());
      return PrintStatus(*o, ctx, *limit);
    };
  });
}

void AddSyncCommand(CLI::App& provider, CliContext& ctx) {
  auto* cmd = provider.add_subcommand(
      "sync", "Deliver the outbox to the providers (`serve` does this in the background)");
  auto once = std::make_shared<bool>(false);
  cmd->add_flag("--once", *once, "Deliver what is due now and exit (rows waiting for a retry stay queued)");
  cmd->callback([&ctx, once] {
    ctx.action = [&ctx, once] {
      auto o = OpenAll(ctx, true);
      if (!o.ok()) return Fail(o.status());
      if (*once) {
        auto report = o->providers->DrainOnce();
        if (!report.ok()) return Fail(report.status());
        auto counts = o->providers->CountOutbox();
        if (!counts.ok()) return Fail(counts.status());
        if (ctx.json) {
          PrintJson({{"delivered", report->delivered},
                     {"retrying", report->retrying},
                     {"failed", report->failed},
                     {"calls", report->calls},
                     {"counts", OutboxCountsJson(*counts)}});
        } else {
          std::cout << "delivered " << report->delivered << ", to retry " << report->retrying << ", failed "
                    << report->failed << " (" << report->calls << " provider calls); still queued: "
                    << counts->pending + counts->retrying << "\n";
        }
        return report->failed > 0 ? 1 : 0;
      }
      sigset_t stop;
      sigemptyset(&stop);
      sigaddset(&stop, SIGINT);
      sigaddset(&stop, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &stop, nullptr);
      o->providers->StartDrainer(5000);
      std::cerr << "crowdgate: delivering the provider outbox; Ctrl-C to stop\n";
      int sig = 0;
      sigwait(&stop, &sig);
      o->providers->StopDrainer();
      return 0;
    };
  });
}

void AddPublishCommand(CLI::App& provider, CliContext& ctx) {
  auto* cmd = provider.add_subcommand("publish", "Publish a run's Prolific study (it was created as a draft)");
  auto run = std::make_shared<std::string>();
  cmd->add_option("RUN", *run, "Run id")->required();
  cmd->callback([&ctx, run] {
    ctx.action = [&ctx, run] {
      auto o = OpenAll(ctx, true);
      if (!o.ok()) return Fail(o.status());
      Status s = o->providers->Publish(*run);
      if (!s.ok()) return Fail(s);
      if (ctx.json) {
        PrintJson({{"run_id", *run}, {"published", true}});
      } else {
        std::cout << "published the study of run " << *run << "\n";
      }
      return 0;
    };
  });
}

void AddCloseCommand(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand("close", "Close a run: no new work; open agents may still submit");
  auto run = std::make_shared<std::string>();
  cmd->add_option("RUN", *run, "Run id")->required();
  cmd->footer("On Prolific the study is stopped too, so no new participant starts it.");
  cmd->callback([&ctx, run] {
    ctx.action = [&ctx, run] {
      auto o = OpenAll(ctx, true);
      if (!o.ok()) return Fail(o.status());
      Status s = o->providers->Close(*run);
      if (!s.ok()) return Fail(s);
      if (ctx.json) {
        PrintJson({{"run_id", *run}, {"status", "closed"}});
      } else {
        std::cout << "closed run " << *run << "\n";
      }
      return 0;
    };
  });
}

}  // namespace

void AddWorkerLinkCommand(CLI::App& worker, CliContext& ctx) {
  auto* cmd = worker.add_subcommand("link", "Print a local worker's signed link to a run");
  auto name = std::make_shared<std::string>();
  auto run = std::make_shared<std::string>();
  auto expires = std::make_shared<std::string>("7d");
  auto public_url = std::make_shared<std::string>();
  cmd->add_option("WORKER", *name, "NAME (a local worker)")->required();
  cmd->add_option("RUN", *run, "Run id")->required();
  cmd->add_option("--expires", *expires, "When the link stops working: 7d (default), 12h, 2027-01-31, or never");
  cmd->add_option("--public-url", *public_url, "Print a full URL on this address instead of the path");
  cmd->footer("Without a valid signature the run's page and work API answer 401, so a worker cannot take another\n"
              "worker's name. Runs with provider.trust_worker_param: true accept a bare ?worker=NAME (for\n"
              "simulations and demos only).");
  cmd->callback([&ctx, name, run, expires, public_url] {
    ctx.action = [&ctx, name, run, expires, public_url] {
      int64_t expires_at_s = 0;
      if (*expires != "never") {
        auto at = ParseExpiry(*expires, Env::Default()->NowMicros());
        if (!at.ok()) return Fail(at.status().WithContext("--expires"));
        expires_at_s = *at / kMicrosPerSecond;
      }
      auto o = OpenAll(ctx, true);
      if (!o.ok()) return Fail(o.status());
      auto link = o->providers->WorkerLink(*run, *name, expires_at_s);
      if (!link.ok()) return Fail(link.status());
      std::string url = *public_url;
      while (!url.empty() && url.back() == '/') url.pop_back();
      const std::string printed = url + *link;
      if (ctx.json) {
        PrintJson({{"link", printed},
                   {"worker", *name},
                   {"run_id", *run},
                   {"expires_at", expires_at_s ? nlohmann::json(FormatTimestamp(expires_at_s * kMicrosPerSecond))
                                               : nlohmann::json()}});
      } else {
        std::cout << printed << "\n";
      }
      return 0;
    };
  });
}

void AddProviderCommands(CLI::App& app, CliContext& ctx) {
  auto* provider = app.add_subcommand("provider", "Crowd providers: the outbox of changes bound for them, publishing");
  provider->require_subcommand(1);
  AddStatusCommand(*provider, ctx);
  AddSyncCommand(*provider, ctx);
  AddPublishCommand(*provider, ctx);
  AddCloseCommand(app, ctx);
}

}  // namespace crowdgate::cli
