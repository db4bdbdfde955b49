// The `aggregate` workload of crowdgate_bench: label aggregation over simulated crowd data
// with a known truth (items x workers judgments, every worker labels every item, each worker
// drawn with their own confusion matrix). Times majority vote and Dawid-Skene compute in
// process (one core) and the whole `crowdgate aggregate --input` command, and reports the
// accuracy of each against the truth.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace crowdgate::bench {

struct AggregateFigures {
  int64_t judgments = 0;
  Stats majority_s;   // compute only
  Stats dawid_skene_s;
  Stats wawa_s;
  Stats command_s;    // `crowdgate aggregate --input FILE.csv --out F` (Dawid-Skene), wall clock
  int iterations = 0;  // Dawid-Skene EM iterations to convergence
  bool converged = false;
  double raw_accuracy = 0;  // share of single judgments that are right
  double majority_accuracy = 0;
  double dawid_skene_accuracy = 0;
  double wawa_accuracy = 0;
  double command_accuracy = 0;  // as the command reported it against the truth (--gold)
  std::vector<std::string> errors;  // correctness problems (empty = fine)
};

// items x workers judgments over `classes` labels; `runs` timed repetitions of each part.
AggregateFigures RunAggregateWorkload(int64_t items, int workers, int classes, int runs,
                                      const std::string& crowdgate_bin);

}  // namespace crowdgate::bench
