// A simulated crowd over real HTTP: N workers, each with a profile (name and accuracy),
// asking a run for work and answering with their profile's accuracy against the hidden
// truth. Used by `crowdgate simulate`, `crowdgate demo` and the HTTP benchmarks.
//
// Truth comes from answer files in the gold-file format ({"inputs", "answer"} per line):
// a unit whose inputs match a line is answered correctly with probability `accuracy`,
// otherwise with another value seen for that field. Unknown inputs get random labels.
//
// Three profile names carry a behaviour the quality rules exist for:
//  - instant: submits the moment it gets a unit (everyone else thinks for --think-ms first);
//  - contrarian: never gives the true label, so it agrees with nobody who does;
//  - returner: returns four units in five (answering the rest with its accuracy).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"

namespace crowdgate::cli {

struct SimProfile {
  std::string name;
  double accuracy = 1.0;

  bool instant() const { return name == "instant"; }
  bool contrarian() const { return name == "contrarian"; }
  bool returner() const { return name == "returner"; }
};

// "good:0.9,careless:0.6,spammer:0.3" -> profiles; errors name the bad entry.
Result<std::vector<SimProfile>> ParseProfiles(const std::string& text);

struct SimOptions {
  std::string run_url;  // http://HOST:PORT/runs/RUN_ID
  int workers = 10;
  std::vector<SimProfile> profiles = {{"good", 0.9}};
  std::vector<std::string> answer_files;
  int threads = 8;           // HTTP connections; workers are interleaved over them
  uint64_t seed = 1;
  std::string name_prefix;   // worker names are PREFIX + profile + "-" + index
  int64_t max_units_per_worker = 1'000'000;
  int think_ms = 0;          // pause before each submission (not for the instant profile)
};

struct SimWorker {
  std::string worker;  // local:NAME
  std::string profile;
  double accuracy = 0;
  int64_t units = 0;        // submissions of outcome "unit" (golds included: they look the same)
  int64_t returns = 0;      // units given back (returner)
  int64_t onboardings = 0;
  std::string onboarding_result;  // "" | passed | failed
  std::string last_outcome;       // outcome that ended the worker's session
  std::string last_reason;
  int64_t errors = 0;
};

struct SimReport {
  std::vector<SimWorker> workers;
  int64_t requests = 0;
  int64_t errors = 0;
  double elapsed_s = 0;
  std::vector<double> latencies_ms;  // one per request, unordered
  std::vector<std::string> error_samples;

  double Percentile(double p) const;
};

Result<SimReport> RunSimulation(const SimOptions& options,
                                const std::function<void(int64_t requests, int64_t active_workers)>& progress);

}  // namespace crowdgate::cli
