// The `quality` workload of crowdgate_bench: what quality control buys. A simulated crowd of
// 1,000 workers (30 % spammers answering at random in a second, 20 % careless workers right 60 %
// of the time, the rest right 95 % of the time) labels 10,000 items x 3 in process, on a fake
// clock, once with the run's quality rules on and once with them off (golds in both). Reports raw
// label accuracy, aggregated accuracy per method, the share of paid units spent on golds and the
// real units spammers did before they were stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crowdgate::bench {

struct QualityFigures {
  bool rules = false;
  int64_t paid_units = 0;      // submitted real units and golds (what the requester pays for)
  int64_t gold_units = 0;      // of those, golds
  int64_t spammer_units = 0;   // real units submitted by spammers
  int64_t spammers_stopped = 0;  // spammers refused work before the run ran out
  double raw_accuracy = 0;     // real unit labels equal to the truth
  double majority_accuracy = 0;
  double dawid_skene_accuracy = 0;
  double wawa_accuracy = 0;
  double seconds = 0;          // wall time of the simulation
  std::vector<std::string> errors;
};

QualityFigures RunQualityWorkload(int64_t items, int workers, bool rules, uint64_t seed);

}  // namespace crowdgate::bench
