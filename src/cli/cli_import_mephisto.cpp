// `crowdgate import-mephisto PATH/database.db`: qualifications, grants and workers from a
// Mephisto database (read-only), with a summary of what was new, changed, unchanged or refused.
#include <CLI/CLI.hpp>

#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "importers/mephisto_import.hpp"
#include "importers/mephisto_reader.hpp"

namespace crowdgate::cli {

namespace {

nlohmann::json CountsJson(const BulkCounts& c, int64_t refused) {
  return {{"new", c.added}, {"changed", c.changed}, {"unchanged", c.unchanged}, {"refused", refused}};
}

void PrintText(const std::string& path, const importers::MephistoImportReport& r, bool dry_run, bool mirror) {
  std::cout << "Mephisto database " << path << ": schema " << importers::MephistoSchemaDescription(r.schema)
            << "\n";
  Table t({"", "NEW", "CHANGED", "UNCHANGED", "REFUSED"});
  auto row = [&t](const std::string& what, const BulkCounts& c, int64_t refused) {
    t.Add({what, std::to_string(c.added), std::to_string(c.changed), std::to_string(c.unchanged),
           std::to_string(refused)});
  };
  row("qualifications", r.applied.qualifications, r.qualifications_refused);
  row("grants", r.applied.grants, r.grants_refused);
  row("workers", r.applied.workers, r.workers_refused);
  t.Print(std::cout);
  if (mirror) {
    std::cout << (dry_run ? "would revoke " : "revoked ") << r.applied.revoked
              << " grant(s) that Mephisto no longer has (--mirror)\n";
  }
  for (const auto& f : r.refusals) {
    std::cout << "refused " << f.kind << " '" << f.name << "': " << f.reason << "\n";
  }
  if (dry_run) std::cout << "dry run: nothing was written\n";
}

}  // namespace

void AddImportMephistoCommand(CLI::App& app, CliContext& ctx) {
  auto* cmd = app.add_subcommand(
      "import-mephisto",
      "Import qualifications, grants and workers from a Mephisto database (read-only; re-running changes only "
      "what changed)");
  struct Args {
    std::string path;
    bool mirror = false;
    bool dry_run = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("PATH", a->path, "Mephisto's database.db (opened read-only; Mephisto may keep running)")
      ->required();
  cmd->add_flag("--mirror", a->mirror,
                "Also revoke grants of the imported qualifications that Mephisto no longer has");
  cmd->add_flag("--dry-run", a->dry_run, "Say what would change, write nothing");
  cmd->callback([&ctx, a] {
    ctx.action = [&ctx, a] {
      const bool terminal = StderrIsTerminal();
      if (terminal) std::cerr << "reading " << a->path << " ..." << std::flush;
      auto db = importers::ReadMephistoDatabase(a->path);
      if (terminal) std::cerr << "\r\033[K";
      if (!db.ok()) return Fail(db.status());
      if (terminal) {
        std::cerr << "read " << db->qualifications.size() << " qualifications, " << db->grants.size() << " grants, "
                  << db->workers.size() << " workers; comparing with crowdgate ...\n";
      }
      auto engine = ctx.OpenEngine();
      if (!engine.ok()) return Fail(engine.status());
      Progress progress("importing from Mephisto");
      importers::MephistoImportOptions options;
      options.mirror = a->mirror;
      options.dry_run = a->dry_run;
      options.progress = [&progress](size_t done, size_t total) { progress.Update(done, total); };
      auto report = importers::ImportMephisto(**engine, std::move(db).value(), options);
      progress.Finish();
      if (!report.ok()) return Fail(report.status());
      if (!ctx.json) {
        PrintText(a->path, *report, a->dry_run, a->mirror);
        return 0;
      }
      nlohmann::json refused = nlohmann::json::array();
      for (const auto& f : report->refusals) {
        refused.push_back({{"kind", f.kind}, {"name", f.name}, {"reason", f.reason}});
      }
      nlohmann::json grants = CountsJson(report->applied.grants, report->grants_refused);
      grants["revoked"] = report->applied.revoked;
      PrintJson({{"mephisto_schema", importers::MephistoSchemaName(report->schema)},
                 {"dry_run", a->dry_run},
                 {"mirror", a->mirror},
                 {"qualifications", CountsJson(report->applied.qualifications, report->qualifications_refused)},
                 {"grants", grants},
                 {"workers", CountsJson(report->applied.workers, report->workers_refused)},
                 {"refused", refused}});
      return 0;
    };
  });
}

}  // namespace crowdgate::cli
