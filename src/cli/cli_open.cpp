#include "cli/cli_open.hpp"

namespace crowdgate::cli {

Result<Opened> OpenAll(const CliContext& ctx, bool with_providers, const std::string& public_url) {
  Opened o;
  CG_ASSIGN_OR_RETURN(o.engine, ctx.OpenEngine());
  CG_ASSIGN_OR_RETURN(o.dispatcher, o.engine->NewRunDispatcher());
  if (with_providers) {
    ProviderHubOptions options;
    options.db_uri = ctx.ResolvedDb();
    options.public_url = public_url;
    CG_ASSIGN_OR_RETURN(o.providers, ProviderHub::Open(std::move(options), o.engine.get(), o.dispatcher.get()));
  }
  return o;
}

}  // namespace crowdgate::cli
