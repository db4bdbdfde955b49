// The crowdgate command: parses global options, picks a subcommand, runs it, and maps
// its Status to the exit code (0 ok, 2 bad usage or bad input, 1 other failures).
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/cli_commands.hpp"
#include "cli/cli_context.hpp"
#include "cli/version.hpp"  // generated (src/cli/version.hpp.in)
#include "core/run_config.hpp"

int main(int argc, char** argv) {
  using crowdgate::cli::CliContext;
  CliContext ctx;
  CLI::App app{
      "crowdgate: a fast, self-hosted crowdsourcing task server with worker quality control\n"
      "(qualifications, allow/block lists, onboarding, screening and gold units).\n"
      "The database is --db PATH, sqlite:PATH or postgresql://..., else $CROWDGATE_DB, else ./crowdgate.db.",
      "crowdgate"};
  app.add_option("--db", ctx.db, "Database: PATH, sqlite:PATH or postgresql://... (default $CROWDGATE_DB or ./crowdgate.db)");
  app.add_flag("--json", ctx.json, "Print JSON for scripts instead of tables");
  app.set_version_flag("--version", std::string("crowdgate ") + CROWDGATE_VERSION + " (commit " + CROWDGATE_GIT_COMMIT + ")",
                       "Print the version and the git commit it was built from, then exit");
  app.require_subcommand(1);
  app.footer("Run `crowdgate COMMAND --help` for the options of a command.");
  crowdgate::cli::AddQualCommands(app, ctx);
  crowdgate::cli::AddWorkerCommands(app, ctx);
  crowdgate::cli::AddRunCommands(app, ctx);
  crowdgate::cli::AddDemoCommand(app, ctx);
  crowdgate::cli::AddProviderCommands(app, ctx);
  crowdgate::cli::AddAggregateCommand(app, ctx);
  crowdgate::cli::AddImportMephistoCommand(app, ctx);
  auto* reference = app.add_subcommand("config-reference", "Print every run-config key as a Markdown table");
  reference->callback([&ctx] {
    ctx.action = [] {
      std::cout << crowdgate::ConfigReferenceMarkdown();
      return 0;
    };
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "crowdgate: " << e.what() << "\nRun `crowdgate --help` for usage.\n";
    return 2;
  }
  if (!ctx.action) {
    std::cerr << "crowdgate: no command given\n";
    return 2;
  }
  return ctx.action();
}
