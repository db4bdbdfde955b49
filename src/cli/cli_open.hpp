// Opening what a command needs: the engine, the dispatcher over it, and the providers (which keep
// their own connection to the same database).
#pragma once

#include <memory>
#include <string>

#include "cli/cli_context.hpp"
#include "engine/run_dispatcher.hpp"
#include "providers/provider_hub.hpp"

namespace crowdgate::cli {

struct Opened {
  std::unique_ptr<EngineImpl> engine;
  std::unique_ptr<RunDispatcher> dispatcher;
  std::unique_ptr<ProviderHub> providers;  // only when asked for (OpenAll(ctx, true))
};

// `public_url`: `--public-url`, where providers send workers ("" = the run config's).
Result<Opened> OpenAll(const CliContext& ctx, bool with_providers = false, const std::string& public_url = "");

}  // namespace crowdgate::cli
