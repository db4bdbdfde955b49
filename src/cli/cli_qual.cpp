// `crowdgate qual ...` and `crowdgate worker ...`: qualifications, grants, allow and
// block lists from the command line.
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "cli/import_file.hpp"

namespace crowdgate::cli {

namespace {

nlohmann::json GrantJson(const Grant& g) {
  return {{"worker", g.worker.ToString()},
          {"value", g.value},
          {"granted_at", FormatTimestamp(g.granted_at)},
          {"updated_at", FormatTimestamp(g.updated_at)},
          {"expires_at", g.expires_at ? nlohmann::json(FormatTimestamp(*g.expires_at)) : nlohmann::json(nullptr)}};
}

nlohmann::json OptionalJson(const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

nlohmann::json AuditJson(const AuditEntry& e) {
  return {{"seq", e.seq},
          {"at", FormatTimestamp(e.at)},
          {"kind", std::string(AuditKindName(e.kind))},
          {"worker", e.worker_id == 0 ? nlohmann::json(nullptr) : nlohmann::json(e.worker.ToString())},
          {"qualification", e.qualification},
          {"old_value", OptionalJson(e.old_value)},
          {"new_value", OptionalJson(e.new_value)},
          {"expires_at", e.new_expires_at ? nlohmann::json(FormatTimestamp(*e.new_expires_at)) : nlohmann::json(nullptr)},
          {"actor", e.actor},
          {"reason", e.reason}};
}

std::string OptionalText(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "-"; }

void AddCreate(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("create", "Create a qualification (an integer-valued worker attribute)");
  auto name = std::make_shared<std::string>();
  auto description = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Qualification name, 1-128 characters")->required();
  cmd->add_option("--description", *description, "What the qualification means");
  cmd->callback([&ctx, name, description] {
    ctx.action = [&ctx, name, description] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto q = (*engine)->CreateQualification(*name, *description);
      if (!q.ok()) return Fail(q.status());
      if (ctx.json) {
        PrintJson({{"name", q->name}, {"description", q->description}, {"created_at", FormatTimestamp(q->created_at)}});
      } else {
        std::cout << "created qualification " << q->name << "\n";
      }
      return 0;
    };
  });
}

void AddList(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("list", "List qualifications with their number of live grants");
  cmd->callback([&ctx] {
    ctx.action = [&ctx] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto list = (*engine)->ListQualifications();
      if (!list.ok()) return Fail(list.status());
      if (ctx.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : *list) {
          out.push_back({{"name", s.qualification.name},
                         {"description", s.qualification.description},
                         {"created_at", FormatTimestamp(s.qualification.created_at)},
                         {"grants", s.live_grants}});
        }
        PrintJson(out);
        return 0;
      }
      Table t({"NAME", "GRANTS", "CREATED", "DESCRIPTION"});
      for (const auto& s : *list) {
        t.Add({s.qualification.name, std::to_string(s.live_grants), FormatTimestamp(s.qualification.created_at),
               s.qualification.description});
      }
      t.Print(std::cout);
      return 0;
    };
  });
}

void AddShow(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("show", "Show the workers holding a qualification (live grants)");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Qualification name")->required();
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto grants = (*engine)->ListGrants(*name);
      if (!grants.ok()) return Fail(grants.status());
      if (ctx.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& g : *grants) out.push_back(GrantJson(g));
        PrintJson(out);
        return 0;
      }
      Table t({"WORKER", "VALUE", "GRANTED", "EXPIRES"});
      for (const auto& g : *grants) {
        t.Add({g.worker.ToString(), std::to_string(g.value), FormatTimestamp(g.granted_at),
               FormatOptionalTime(g.expires_at)});
      }
      t.Print(std::cout);
      return 0;
    };
  });
}

void AddDelete(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("delete", "Delete a qualification and all its grants (kept in the history)");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Qualification name")->required();
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      Status s = (*engine)->DeleteQualification(*name);
      if (!s.ok()) return Fail(s);
      if (ctx.json) {
        PrintJson({{"deleted", *name}});
      } else {
        std::cout << "deleted qualification " << *name << "\n";
      }
      return 0;
    };
  });
}

void AddGrant(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand(
      "grant", "Grant a qualification to a worker (replaces an existing value; creates an unseen worker)");
  struct Args {
    std::string name, worker, expires, reason;
    int64_t value = 1;
    bool no_sync = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("NAME", a->name, "Qualification name")->required();
  cmd->add_option("WORKER", a->worker, "PROVIDER:NAME (local:alice, mturk:A1B2...) or NAME for local")->required();
  cmd->add_option("--value", a->value, "Integer value (default 1)");
  cmd->add_option("--expires", a->expires, "When the grant lapses: 30d, 12h, 2w or a UTC date 2027-01-31");
  cmd->add_option("--reason", a->reason, "Why, kept in the audit log");
  cmd->add_flag("--no-sync", a->no_sync, "Do not push the grant to the worker's provider");
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a] {
      GrantRequest req{a->name, a->worker, a->value, std::nullopt, a->reason, !a->no_sync};
      if (!a->expires.empty()) {
        auto t = ParseExpiry(a->expires, Env::Default()->NowMicros());
        if (!t.ok()) return Fail(t.status());
        req.expires_at = *t;
      }
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto e = (*engine)->Grant(req);
      if (!e.ok()) return Fail(e.status());
      if (ctx.json) {
        PrintJson(AuditJson(*e));
      } else {
        std::cout << "granted " << e->qualification << "=" << *e->new_value << " to " << e->worker.ToString();
        if (e->old_value) std::cout << " (was " << *e->old_value << ")";
        if (e->new_expires_at) std::cout << ", expires " << FormatTimestamp(*e->new_expires_at);
        std::cout << "\n";
      }
      return 0;
    };
  });
}

void AddRevoke(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("revoke", "Revoke a worker's grant of a qualification");
  struct Args {
    std::string name, worker, reason;
    bool no_sync = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("NAME", a->name, "Qualification name")->required();
  cmd->add_option("WORKER", a->worker, "PROVIDER:NAME or NAME for local")->required();
  cmd->add_option("--reason", a->reason, "Why, kept in the audit log");
  cmd->add_flag("--no-sync", a->no_sync, "Do not push the revoke to the worker's provider");
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto revoked = (*engine)->Revoke(a->name, a->worker, a->reason, !a->no_sync);
      if (!revoked.ok()) return Fail(revoked.status());
      if (ctx.json) {
        PrintJson({{"revoked", *revoked}, {"qualification", a->name}, {"worker", a->worker}});
      } else if (*revoked) {
        std::cout << "revoked " << a->name << " from " << a->worker << "\n";
      } else {
        std::cout << a->worker << " held no grant of " << a->name << "; nothing changed\n";
      }
      return 0;
    };
  });
}

void AddImport(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand(
      "import", "Bulk-grant from a CSV allow/block list: one `worker[,value]` per row (all rows or none)");
  struct Args {
    std::string name, file, reason = "import";
    int64_t value = 1;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("NAME", a->name, "Qualification name")->required();
  cmd->add_option("FILE", a->file, "CSV file; an optional header row `worker,value` is skipped")->required();
  cmd->add_option("--value", a->value, "Value for rows without one (default 1)");
  cmd->add_option("--reason", a->reason, "Why, kept in the audit log (default: import)");
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a] {
      auto rows = ReadImportFile(a->file, a->value);
      if (!rows.ok()) return Fail(rows.status());
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      Progress progress("importing " + a->name);
      auto summary = (*engine)->Import(a->name, *rows, a->reason,
                                       [&progress](size_t done, size_t total) { progress.Update(done, total); });
      progress.Finish();
      if (!summary.ok()) return Fail(summary.status().WithContext(a->file));
      if (ctx.json) {
        PrintJson({{"rows", summary->rows}, {"granted", summary->granted}, {"changed", summary->changed}});
      } else {
        std::cout << "imported " << summary->rows << " rows into " << a->name << ": " << summary->granted
                  << " new grants, " << summary->changed << " changed\n";
      }
      return 0;
    };
  });
}

void AddExport(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("export", "Write a qualification's live grants to stdout (csv or jsonl)");
  auto name = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("csv");
  cmd->add_option("NAME", *name, "Qualification name")->required();
  cmd->add_option("--format", *format, "csv (default) or jsonl")->check(CLI::IsMember({"csv", "jsonl"}));
  cmd->callback([&ctx, name, format] {
    ctx.action = [&ctx, name, format] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto grants = (*engine)->ListGrants(*name);
      if (!grants.ok()) return Fail(grants.status());
      if (*format == "jsonl") {
        for (const auto& g : *grants) std::cout << GrantJson(g).dump() << "\n";
      } else {
        std::cout << "worker,value,granted_at,expires_at\n";
        for (const auto& g : *grants) {
          std::cout << g.worker.ToString() << "," << g.value << "," << FormatTimestamp(g.granted_at) << ","
                    << (g.expires_at ? FormatTimestamp(*g.expires_at) : "") << "\n";
        }
      }
      return 0;
    };
  });
}

void AddHistory(CLI::App& qual, CliContext& ctx) {
  auto* cmd = qual.add_subcommand("history", "The audit log of grants, changes and revokes");
  auto name = std::make_shared<std::string>();
  auto worker = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "Only this qualification");
  cmd->add_option("--worker", *worker, "Only this worker");
  cmd->callback([&ctx, name, worker] {
    ctx.action = [&ctx, name, worker] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      std::optional<std::string> q = name->empty() ? std::nullopt : std::optional<std::string>(*name);
      std::optional<std::string> w = worker->empty() ? std::nullopt : std::optional<std::string>(*worker);
      auto entries = (*engine)->History(q, w);
      if (!entries.ok()) return Fail(entries.status());
      if (ctx.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& e : *entries) out.push_back(AuditJson(e));
        PrintJson(out);
        return 0;
      }
      Table t({"WHEN", "KIND", "WORKER", "QUALIFICATION", "OLD", "NEW", "ACTOR", "REASON"});
      for (const auto& e : *entries) {
        t.Add({FormatTimestamp(e.at), std::string(AuditKindName(e.kind)), e.worker_id ? e.worker.ToString() : "-",
               e.qualification, OptionalText(e.old_value), OptionalText(e.new_value), e.actor, e.reason});
      }
      t.Print(std::cout);
      return 0;
    };
  });
}

void AddWorkerShow(CLI::App& worker, CliContext& ctx) {
  auto* cmd = worker.add_subcommand("show", "Show a worker and every grant they hold");
  auto name = std::make_shared<std::string>();
  cmd->add_option("WORKER", *name, "PROVIDER:NAME or NAME for local")->required();
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      auto info = (*engine)->ShowWorker(*name);
      if (!info.ok()) return Fail(info.status());
      const int64_t now = Env::Default()->NowMicros();
      if (ctx.json) {
        nlohmann::json grants = nlohmann::json::array();
        for (const auto& g : info->grants) {
          auto j = GrantJson(g);
          j["qualification"] = g.qualification;
          j["expired"] = g.ExpiredAt(now);
          grants.push_back(j);
        }
        PrintJson({{"worker", info->worker.ref.ToString()},
                   {"first_seen", FormatTimestamp(info->worker.created_at)},
                   {"grants", grants}});
        return 0;
      }
      std::cout << "worker " << info->worker.ref.ToString() << " (first seen "
                << FormatTimestamp(info->worker.created_at) << ")\n";
      Table t({"QUALIFICATION", "VALUE", "GRANTED", "EXPIRES", "STATE"});
      for (const auto& g : info->grants) {
        t.Add({g.qualification, std::to_string(g.value), FormatTimestamp(g.granted_at),
               FormatOptionalTime(g.expires_at), g.ExpiredAt(now) ? "expired" : "live"});
      }
      t.Print(std::cout);
      return 0;
    };
  });
}

void AddResetOnboarding(CLI::App& worker, CliContext& ctx) {
  auto* cmd = worker.add_subcommand("reset-onboarding",
                                    "Remove Q and Q-failed from a worker so they can take onboarding Q again");
  auto q = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  cmd->add_option("Q", *q, "The onboarding qualification")->required();
  cmd->add_option("WORKER", *name, "PROVIDER:NAME or NAME for local")->required();
  cmd->callback([&ctx, q, name] {
    ctx.action = [&ctx, q, name] {
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      Status s = (*engine)->ResetOnboarding(*q, *name);
      if (!s.ok()) return Fail(s);
      if (ctx.json) {
        PrintJson({{"reset", *q}, {"worker", *name}});
      } else {
        std::cout << "reset onboarding " << *q << " for " << *name << "\n";
      }
      return 0;
    };
  });
}

}  // namespace

void AddQualCommands(CLI::App& app, CliContext& ctx) {
  auto* qual = app.add_subcommand("qual", "Qualifications, grants, allow lists and block lists");
  qual->require_subcommand(1);
  AddCreate(*qual, ctx);
  AddList(*qual, ctx);
  AddShow(*qual, ctx);
  AddDelete(*qual, ctx);
  AddGrant(*qual, ctx);
  AddRevoke(*qual, ctx);
  AddImport(*qual, ctx);
  AddExport(*qual, ctx);
  AddHistory(*qual, ctx);
}

void AddWorkerCommands(CLI::App& app, CliContext& ctx) {
  auto* worker = app.add_subcommand("worker", "Workers: their grants, resetting onboarding, signed links");
  worker->require_subcommand(1);
  AddWorkerShow(*worker, ctx);
  AddResetOnboarding(*worker, ctx);
  AddWorkerLinkCommand(*worker, ctx);
}

}  // namespace crowdgate::cli
