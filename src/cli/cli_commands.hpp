// Registration of the crowdgate command's subcommands, one function per group.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/cli_context.hpp"

namespace crowdgate::cli {

void AddQualCommands(CLI::App& app, CliContext& ctx);
void AddWorkerCommands(CLI::App& app, CliContext& ctx);
void AddRunCommands(CLI::App& app, CliContext& ctx);
void AddDemoCommand(CLI::App& app, CliContext& ctx);
// provider status | sync | publish, and close.
void AddProviderCommands(CLI::App& app, CliContext& ctx);
// worker link (registered by AddWorkerCommands).
void AddWorkerLinkCommand(CLI::App& worker, CliContext& ctx);
void AddAggregateCommand(CLI::App& app, CliContext& ctx);
void AddImportMephistoCommand(CLI::App& app, CliContext& ctx);

}  // namespace crowdgate::cli
