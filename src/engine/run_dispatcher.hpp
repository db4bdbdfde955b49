// RunDispatcher: the Dispatcher plus the two calls that take the internal run config.
//
// Launching a run and rendering its pages need the resolved RunConfig (core/run_config.hpp),
// which is not part of the public API. So the public Dispatcher (crowdgate/dispatcher.hpp) leaves
// them out, and the code inside crowdgate that launches runs or renders pages (the CLI, the
// server, the benchmarks) gets a RunDispatcher from EngineImpl::NewRunDispatcher(). Users of the
// library get the Dispatcher; nothing casts one into the other.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/run_config.hpp"
#include "crowdgate/dispatcher.hpp"

namespace crowdgate {

// What the server needs to render a run's pages.
struct RunView {
  std::shared_ptr<const RunConfig> config;
  std::string task_html;        // static_html task template
  std::string onboarding_html;  // "" = generic onboarding page
};

class RunDispatcher : public Dispatcher {
 public:
  // Creates the derived qualifications, compiles the requirements (fail closed), reads
  // the data file and stores the run with units_per_item units per item.
  virtual Result<LaunchResult> Launch(const RunConfig& config,
                                      const std::function<void(size_t done, size_t total)>& progress) = 0;
  // The resolved config and templates of a run (for rendering pages).
  virtual Result<std::shared_ptr<const RunView>> RunViewOf(const std::string& run_id) = 0;

 protected:
  RunDispatcher() = default;
};

}  // namespace crowdgate
