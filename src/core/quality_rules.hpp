// Quality rules: the run config's `quality_rules:` list, and the rolling windows that decide
// when a rule fires for one worker.
//
// Contract:
//  - ParseQualityRules validates a list of rule mappings; every error names the key
//    ("quality_rules[1].window: ..."). QualityRulesToJson is its exact inverse.
//  - Every window counts units, not time: the worker's last `window` submitted units
//    (fast_submissions), the last `window` units they ended by submitting, returning or
//    letting the lease run out (returned_units), the last `window` submitted units that
//    overlapped with other workers' labels (majority_agreement).
//  - A rule fires when its figures cross the line; its window then starts afresh, so one
//    crossing fires once and the next firing needs a full new crossing.
//  - WorkerQualityWindows is deterministic: replaying the same events gives the same
//    firings, which is how the engine rebuilds windows after a restart without acting twice.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"

namespace crowdgate {

enum class QualityRuleKind { kFastSubmissions, kMajorityAgreement, kReturnedUnits };
enum class QualityActionKind { kBlock, kDisqualify, kRejectUnits };

std::string_view QualityRuleKindName(QualityRuleKind k);      // fast_submissions | majority_agreement | returned_units
std::string_view QualityActionKindName(QualityActionKind k);  // block | disqualify | reject_units

struct QualityRule {
  QualityRuleKind kind = QualityRuleKind::kFastSubmissions;
  int64_t window = 10;          // units (see the contract)
  double min_seconds = 0;       // fast_submissions: a unit submitted sooner than this is fast
  int64_t count = 1;            // fast_submissions, returned_units: how many in the window fire the rule
  double min_agreement = 0.5;   // majority_agreement: mean agreement below this fires the rule
  int64_t min_overlap = 1;      // majority_agreement: overlapping units needed before it may fire
  QualityActionKind action = QualityActionKind::kBlock;
  int64_t block_seconds = 0;    // action block: how long the ban lasts
};

// "90s", "30m", "12h", "1d", "2w" -> seconds. Errors say what is accepted.
Result<int64_t> ParseDuration(std::string_view text);
// Seconds -> the largest exact unit: 86400 -> "1d", 5400 -> "90m".
std::string FormatDuration(int64_t seconds);

// Validates `list` (the value of key `where`); all errors of the list in one status, one a line.
Result<std::vector<QualityRule>> ParseQualityRules(const nlohmann::json& list, const std::string& where);
nlohmann::json QualityRulesToJson(const std::vector<QualityRule>& rules);

// One firing: which rule, the audit reason ("fast_submissions: 3 of the last 10 units under
// 3 s"), and for reject_units the offending units.
struct QualityFiring {
  size_t rule_index = 0;
  std::string reason;
  std::vector<int64_t> unit_ids;
};

// The windows of one worker in one run.
class WorkerQualityWindows {
 public:
  // The worker submitted unit `unit_id` `seconds` after it was served. `agreement`: the share
  // of the other workers' earlier labels on the same item equal to this worker's label
  // (nullopt: nobody else had labelled it).
  std::vector<QualityFiring> OnSubmit(const std::vector<QualityRule>& rules, int64_t unit_id, double seconds,
                                      std::optional<double> agreement);
  // The worker returned a unit or let its lease run out.
  std::vector<QualityFiring> OnReturn(const std::vector<QualityRule>& rules);

 private:
  struct Entry {
    int64_t unit_id = 0;
    double value = 0;  // fast: 1/0; returned: 1/0; agreement: the share
  };
  void Fit(const std::vector<QualityRule>& rules);
  std::vector<std::deque<Entry>> windows_;  // one per rule
};

}  // namespace crowdgate
