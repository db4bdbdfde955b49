// The `provider-sync` workload of crowdgate_bench: grant changes of Prolific workers on a
// qualification a published study uses as its block list, queued in the outbox and drained by
// ProviderHub::DrainOnce to the fake Prolific server (tests/fakes/prolific_fake.py) throttling a
// share of calls. Reports changes/s and calls/s and checks that nothing was lost or doubled: the
// group's final membership equals the grants, and each worker's accepted group calls on the fake
// alternate add/remove in the order the changes were made.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace crowdgate::bench {

struct ProviderSyncFigures {
  int64_t changes = 0;        // outbox rows drained per run
  Stats changes_per_s;
  Stats calls_per_s;          // every API call the fake saw (throttled ones included)
  Stats seconds;              // drain time
  int64_t throttled = 0;      // throttled calls in the last run
  int64_t calls = 0;          // calls in the last run
  std::vector<std::string> errors;  // correctness problems (empty = fine)
};

// `workers` Prolific workers, `changes_per_worker` alternating grant/revoke changes each (odd counts
// end granted), `runs` times on a fresh database and a reset fake throttling `throttle_share`.
ProviderSyncFigures RunProviderSyncWorkload(int64_t workers, int changes_per_worker, double throttle_share,
                                            int runs, const std::string& source_dir);

}  // namespace crowdgate::bench
