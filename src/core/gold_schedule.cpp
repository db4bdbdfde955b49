#include "core/gold_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace crowdgate {

namespace {

// log10(n) for n >= 1, exact when n is a power of ten (log10(10) must be 1, not 0.99999...,
// or the u = 9 target would be off by one).
long double Log10Exact(uint64_t n) {
  int digits = 0;
  uint64_t p = 1;
  while (p < n && p <= std::numeric_limits<uint64_t>::max() / 10) {
    p *= 10;
    ++digits;
  }
  if (p == n) return static_cast<long double>(digits);
  return std::log10(static_cast<long double>(n));
}

std::string FormatDouble(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

int64_t MephistoGoldTarget(int64_t units_completed) {
  if (units_completed <= 0) return -1;
  const long double x = std::pow(Log10Exact(static_cast<uint64_t>(units_completed) + 1), 2.2L);
  return static_cast<int64_t>(std::ceil(x)) - 1;
}

int64_t GoldScheduleLevel(const GoldSchedule& schedule, int64_t units_completed) {
  if (schedule.kind == GoldScheduleKind::kMephisto) return MephistoGoldTarget(units_completed);
  if (units_completed <= 0) return 0;
  // The epsilon keeps 0.29 * 100 (= 28.999999999999996 in binary) at 29.
  const double due = std::floor(schedule.gold_rate * static_cast<double>(units_completed) + 1e-9);
  if (!(due < 9.0e18)) return std::numeric_limits<int64_t>::max() / 2;
  return static_cast<int64_t>(due);
}

GoldWindow GoldScheduleWindow(const GoldSchedule& schedule, int64_t units_completed) {
  const int64_t u = std::max<int64_t>(units_completed, 0);
  const int64_t level = GoldScheduleLevel(schedule, u);
  // begin: the smallest x in [0, u] with L(x) == level (L is nondecreasing).
  int64_t lo = 0, hi = u;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (GoldScheduleLevel(schedule, mid) >= level) hi = mid; else lo = mid + 1;
  }
  GoldWindow w;
  w.begin = lo;
  w.level = level;
  w.previous_level = lo == 0 ? level : GoldScheduleLevel(schedule, lo - 1);
  // end: the smallest x > u with L(x) > level; doubling steps, then bisection. A level that
  // never rises (gold_rate 0) gives a one-unit window, so nothing is ever delayed into it.
  constexpr int64_t kLimit = std::numeric_limits<int64_t>::max() / 4;
  int64_t step = 1, last_same = u, probe = u + 1;
  while (probe < kLimit && GoldScheduleLevel(schedule, probe) == level) {
    last_same = probe;
    step *= 2;
    probe = u + step;
  }
  if (probe >= kLimit) {
    w.end = w.begin + 1;
    return w;
  }
  lo = last_same + 1;
  hi = probe;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (GoldScheduleLevel(schedule, mid) > level) hi = mid; else lo = mid + 1;
  }
  w.end = lo;
  return w;
}

int64_t GoldPositionInWindow(const GoldWindow& window, uint64_t seed) {
  if (window.begin == 0 || window.end - window.begin <= 1) return window.begin;
  // splitmix64 of (seed, level): a cheap keyed mix; the key is already secret-derived.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(window.level) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const auto len = static_cast<uint64_t>(window.end - window.begin);
  return window.begin + static_cast<int64_t>(z % len);
}

uint64_t GoldPlacementSeed(std::string_view secret, std::string_view gold_qualification_base,
                           std::string_view worker) {
  std::string msg;
  msg.reserve(gold_qualification_base.size() + worker.size() + 1);
  msg.append(gold_qualification_base).push_back('\n');
  msg.append(worker);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed = (seed << 8) | mac[i];
  return seed;
}

namespace {

// Whether a worker with `counts` is short of golds at schedule level `level` (c >= min_golds).
bool DueAtLevel(const GoldSchedule& schedule, const GoldCounts& counts, int64_t level) {
  const __int128 c = counts.correct;
  const __int128 w = counts.wrong;
  const __int128 min_golds = schedule.min_golds;
  if (schedule.kind == GoldScheduleKind::kMephisto) return c - (min_golds + w) < level;
  return c + w < min_golds + level;
}

}  // namespace

bool WorkerNeedsGold(const GoldSchedule& schedule, const GoldCounts& counts, uint64_t placement_seed) {
  if (counts.correct < schedule.min_golds) return true;  // the warm-up always comes first
  const int64_t level = GoldScheduleLevel(schedule, counts.completed);
  if (!DueAtLevel(schedule, counts, level)) return false;
  if (schedule.placement == GoldPlacement::kExact) return true;
  const GoldWindow window = GoldScheduleWindow(schedule, counts.completed);
  if (counts.completed >= GoldPositionInWindow(window, placement_seed)) return true;
  return DueAtLevel(schedule, counts, window.previous_level);  // owed from earlier: no delay
}

bool WorkerQualifies(const GoldPolicy& policy, const GoldCounts& counts, const std::vector<bool>& recent_results) {
  switch (policy.kind) {
    case GoldPolicyKind::kStrikes:
      return counts.wrong <= policy.max_incorrect_golds;
    case GoldPolicyKind::kMinAccuracy: {
      if (policy.gold_window <= 0) return false;  // invalid config: fail closed
      const auto window = static_cast<uint64_t>(policy.gold_window);
      if (recent_results.size() < window) return true;
      int64_t correct = 0;
      for (size_t i = recent_results.size() - window; i < recent_results.size(); ++i) correct += recent_results[i];
      // Compare counts, with a tolerance, so 0.7 * 10 accepts 7 correct despite binary rounding.
      return static_cast<double>(correct) >= policy.min_gold_accuracy * static_cast<double>(window) - 1e-9;
    }
  }
  return false;
}

Status ValidateGoldSchedule(const GoldSchedule& schedule) {
  if (schedule.min_golds < 0) {
    return Status::InvalidArgument("min_golds: must be 0 or more, got " + std::to_string(schedule.min_golds));
  }
  if (!(schedule.gold_rate >= 0.0 && schedule.gold_rate <= 1.0)) {
    return Status::InvalidArgument("gold_rate: must be between 0 and 1, got " + FormatDouble(schedule.gold_rate));
  }
  return Status::Ok();
}

Status ValidateGoldPolicy(const GoldPolicy& policy) {
  if (policy.max_incorrect_golds < 0) {
    return Status::InvalidArgument("max_incorrect_golds: must be 0 or more, got " +
                                   std::to_string(policy.max_incorrect_golds));
  }
  if (!(policy.min_gold_accuracy >= 0.0 && policy.min_gold_accuracy <= 1.0)) {
    return Status::InvalidArgument("min_gold_accuracy: must be between 0 and 1, got " +
                                   FormatDouble(policy.min_gold_accuracy));
  }
  if (policy.gold_window < 1) {
    return Status::InvalidArgument("gold_window: must be 1 or more, got " + std::to_string(policy.gold_window));
  }
  return Status::Ok();
}

Result<GoldScheduleKind> ParseGoldScheduleKind(std::string_view text) {
  if (text == "mephisto") return GoldScheduleKind::kMephisto;
  if (text == "fixed_rate") return GoldScheduleKind::kFixedRate;
  return Status::InvalidArgument("gold_schedule: unknown schedule \"" + std::string(text) +
                                 "\" (expected mephisto or fixed_rate)");
}

std::string_view GoldScheduleKindName(GoldScheduleKind kind) {
  return kind == GoldScheduleKind::kFixedRate ? "fixed_rate" : "mephisto";
}

Result<GoldPolicyKind> ParseGoldPolicyKind(std::string_view text) {
  if (text == "strikes") return GoldPolicyKind::kStrikes;
  if (text == "min_accuracy") return GoldPolicyKind::kMinAccuracy;
  return Status::InvalidArgument("gold_policy: unknown policy \"" + std::string(text) +
                                 "\" (expected strikes or min_accuracy)");
}

Result<GoldPlacement> ParseGoldPlacement(std::string_view text) {
  if (text == "exact") return GoldPlacement::kExact;
  if (text == "random") return GoldPlacement::kRandom;
  return Status::InvalidArgument("gold_placement: unknown placement \"" + std::string(text) +
                                 "\" (expected random or exact)");
}

std::string_view GoldPlacementName(GoldPlacement placement) {
  return placement == GoldPlacement::kExact ? "exact" : "random";
}

std::string_view GoldPolicyKindName(GoldPolicyKind kind) {
  return kind == GoldPolicyKind::kMinAccuracy ? "min_accuracy" : "strikes";
}

}  // namespace crowdgate
