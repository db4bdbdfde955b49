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
//  - Placement (GoldSchedule::placement) decides WHERE inside the schedule a due gold is served:
//      kExact:  Mephisto's positions: a gold is served as soon as the schedule's level rises
//               (WorkerNeedsGold is exactly the function above).
//      kRandom: the schedule's level L(u) (MephistoGoldTarget(u) for kMephisto,
//               floor(gold_rate * u) for kFixedRate) is a nondecreasing step function of u. A
//               WINDOW is a maximal range [begin, end) of u over which L(u) is constant, so
//               `begin` is a u where L rises (L(begin - 1) < L(begin)); for kMephisto the
//               windows are [0,1), [1,10), [10,23), [23,44), ...; for kFixedRate with rate r
//               they are the blocks of about 1/r units, [0,20), [20,40), ... at r = 0.05.
//               The gold(s) that fall due when L rises at `begin` are asked for only once u
//               reaches a position p in [begin, end) derived from a keyed hash of
//               (placement seed, window level): before p the worker is held to the previous
//               level L(begin - 1), from p on to L(begin). So by the end of every window a worker
//               has served exactly as many golds as under kExact (given the same answers), but
//               where in the window they come is unpredictable. The first window ([0, ...)) is
//               never delayed, and the min_golds warm-up (c < min_golds) always comes first:
//               a worker proves themselves before any real unit, as in Mephisto.
//      The seed is per worker (GoldPlacementSeed), so positions differ between workers, are
//      the same on every server and after a restart, and need no stored state.
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
enum class GoldPlacement { kExact, kRandom };

struct GoldSchedule {
  GoldScheduleKind kind = GoldScheduleKind::kMephisto;
  int64_t min_golds = 1;
  double gold_rate = 0.05;  // kFixedRate only
  // Mephisto's positions by default here; the run config's default (blueprint.gold_placement)
  // is kRandom.
  GoldPlacement placement = GoldPlacement::kExact;
};

// A window of the schedule: [begin, end) with the constant level `level`; previous_level is
// the level just before `begin` (== level for the first window, which starts at 0).
struct GoldWindow {
  int64_t begin = 0;
  int64_t end = 1;
  int64_t level = 0;
  int64_t previous_level = 0;
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

// L(u): MephistoGoldTarget(u) for kMephisto, floor(gold_rate * u) for kFixedRate.
int64_t GoldScheduleLevel(const GoldSchedule& schedule, int64_t units_completed);

// The window holding units_completed (see the contract). O(log u) evaluations of the level.
GoldWindow GoldScheduleWindow(const GoldSchedule& schedule, int64_t units_completed);

// Where in `window` its gold is served with kRandom: a value in [begin, end), from a hash of
// (seed, window.level); `begin` for the first window.
int64_t GoldPositionInWindow(const GoldWindow& window, uint64_t seed);

// The per-worker seed of kRandom placement: HMAC-SHA256 keyed with `secret` (the database's,
// so workers cannot compute it) over (gold_qualification_base, worker "PROVIDER:NAME").
uint64_t GoldPlacementSeed(std::string_view secret, std::string_view gold_qualification_base,
                           std::string_view worker);

// `placement_seed` matters only with GoldPlacement::kRandom.
bool WorkerNeedsGold(const GoldSchedule& schedule, const GoldCounts& counts, uint64_t placement_seed = 0);

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
// "exact" / "random".
Result<GoldPlacement> ParseGoldPlacement(std::string_view text);
std::string_view GoldPlacementName(GoldPlacement placement);
std::string_view GoldPolicyKindName(GoldPolicyKind kind);

}  // namespace crowdgate
