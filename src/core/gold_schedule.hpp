// Gold-unit scheduling and disqualification: pure functions of a worker's counters
// (README "Quality control, as crowdgate does it").
//
// Contract:
//  - GoldCounts are the worker's qualification counters: completed = real units submitted
//    (G-completed-count), correct/wrong = scored golds (G-correct-golds / G-wrong-golds).
//  - WorkerNeedsGold is asked before each assignment; true = serve a gold, not a real unit.
//      kMephisto:  c < min_golds, or c - (min_golds + w) < MephistoGoldTarget(u)
//                  (identical to Mephisto's worker_needs_gold; each wrong gold raises the bar by one).
//      kFixedRate: c < min_golds, or (c + w) < min_golds + floor(gold_rate * u): every scored gold,
//                  right or wrong, counts toward a flat share of gold_rate golds per real unit
//                  on top of the min_golds warm-up.
//  - WorkerQualifies decides whether the worker keeps working:
//      kStrikes:     w <= max_incorrect_golds.
//      kMinAccuracy: qualified until recent_results holds gold_window results; then the share
//                    of correct results among the LAST gold_window is >= min_gold_accuracy.
//  - No function here throws, allocates shared state or depends on anything but its arguments.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate {

struct GoldCounts {
  int64_t completed = 0;  // real units submitted
  int64_t correct = 0;
  int64_t wrong = 0;
};

enum class GoldScheduleKind { kMephisto, kFixedRate };

struct GoldSchedule {
  GoldScheduleKind kind = GoldScheduleKind::kMephisto;
  int64_t min_golds = 1;
  double gold_rate = 0.05;  // kFixedRate only
};

enum class GoldPolicyKind { kStrikes, kMinAccuracy };

struct GoldPolicy {
  GoldPolicyKind kind = GoldPolicyKind::kStrikes;
  int64_t max_incorrect_golds = 0;  // kStrikes
  double min_gold_accuracy = 0.8;   // kMinAccuracy
  int64_t gold_window = 10;         // kMinAccuracy
};

// ceil(log10(u + 1) ^ 2.2) - 1 (Mephisto's target excess of correct golds); -1 at u <= 0.
// Exact at u + 1 = 10 (target 0 at u = 9, 1 at u = 10).
int64_t MephistoGoldTarget(int64_t units_completed);

bool WorkerNeedsGold(const GoldSchedule& schedule, const GoldCounts& counts);

// recent_results: the worker's scored golds, oldest first, true = correct (only the last
// gold_window matter; the strikes policy ignores it).
bool WorkerQualifies(const GoldPolicy& policy, const GoldCounts& counts, const std::vector<bool>& recent_results);

// Range checks for config values; errors name the key (min_golds >= 0, gold_rate in [0, 1],
// max_incorrect_golds >= 0, min_gold_accuracy in [0, 1], gold_window >= 1).
Status ValidateGoldSchedule(const GoldSchedule& schedule);
Status ValidateGoldPolicy(const GoldPolicy& policy);

// Config spellings: "mephisto" / "fixed_rate" and "strikes" / "min_accuracy". Errors list
// the accepted spellings.
Result<GoldScheduleKind> ParseGoldScheduleKind(std::string_view text);
std::string_view GoldScheduleKindName(GoldScheduleKind kind);
Result<GoldPolicyKind> ParseGoldPolicyKind(std::string_view text);
std::string_view GoldPolicyKindName(GoldPolicyKind kind);

}  // namespace crowdgate
