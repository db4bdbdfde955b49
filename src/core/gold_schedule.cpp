#include "core/gold_schedule.hpp"

#include <cmath>
#include <limits>
#include <string>

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

bool WorkerNeedsGold(const GoldSchedule& schedule, const GoldCounts& counts) {
  const __int128 c = counts.correct;
  const __int128 w = counts.wrong;
  const __int128 min_golds = schedule.min_golds;
  if (c < min_golds) return true;
  switch (schedule.kind) {
    case GoldScheduleKind::kMephisto:
      return c - (min_golds + w) < MephistoGoldTarget(counts.completed);
    case GoldScheduleKind::kFixedRate: {
      // The epsilon keeps 0.29 * 100 (= 28.999999999999996 in binary) at 29.
      const double due = std::floor(schedule.gold_rate * static_cast<double>(counts.completed) + 1e-9);
      return static_cast<long double>(c + w) < static_cast<long double>(min_golds) + due;
    }
  }
  return true;
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

std::string_view GoldPolicyKindName(GoldPolicyKind kind) {
  return kind == GoldPolicyKind::kMinAccuracy ? "min_accuracy" : "strikes";
}

}  // namespace crowdgate
