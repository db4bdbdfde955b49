// Checks of a worker's submission against an expected answer (README "Quality control, as crowdgate does it"):
// onboarding_check, screening_check and gold_check.
//
// Contract:
//  - ParseCheckSpec: null/absent = defaults (every field of the answer, exact, pass_fraction 1).
//    Keys: fields, match, tolerance, min_jaccard, pass_fraction, command, timeout_s. Unknown keys,
//    wrong types and out-of-range values are errors naming `where.key`. `command` is exclusive:
//    it cannot be combined with fields/match/tolerance/min_jaccard/pass_fraction, and timeout_s
//    only goes with it; tolerance only with match: numeric, min_jaccard only with match: set.
//  - EvaluateCheck compares field by field (top-level fields of the answer object):
//      exact            JSON equality, except a string compares with a number or boolean by text ("5" == 5).
//      case_insensitive scalars compared as text, trimmed and ASCII-lowercased.
//      numeric          numbers or numeric strings, |answer - submission| <= tolerance.
//      set              arrays or comma-separated strings, Jaccard(answer, submission) >= min_jaccard
//                       (two empty sets: 1); items are compared as trimmed text.
//      regex            the answer is an ECMAScript regex the WHOLE submission value must match.
//    A field missing from the submission fails. The check passes when passing/fields >= pass_fraction.
//    Problems on the answer side (field not in the answer, invalid regex, non-numeric answer,
//    answer not an object) are kError: a broken gold file must not count against a worker.
//  - CheckResult::detail names failing fields but never contains expected (or submitted) values,
//    so it can be logged. EvaluateCheck never throws; command specs return kError (they run
//    in the engine, see engine/command_check.hpp).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate {

struct CheckSpec {
  enum class Match { kExact, kCaseInsensitive, kNumeric, kSet, kRegex };

  std::vector<std::string> fields;  // empty = every field of the answer
  Match match = Match::kExact;
  double tolerance = 0;              // kNumeric
  double min_jaccard = 1.0;          // kSet
  double pass_fraction = 1.0;        // (0, 1]
  std::vector<std::string> command;  // non-empty = external program (argv)
  double timeout_s = 10;             // command only

  bool IsCommand() const { return !command.empty(); }
};

std::string_view MatchName(CheckSpec::Match match);

Result<CheckSpec> ParseCheckSpec(const nlohmann::json& j, std::string_view where);

enum class CheckOutcome { kPass, kFail, kError };
std::string_view CheckOutcomeName(CheckOutcome outcome);  // "pass", "fail", "error"

struct CheckResult {
  CheckOutcome outcome = CheckOutcome::kError;
  std::string detail;
};

CheckResult EvaluateCheck(const CheckSpec& spec, const nlohmann::json& answer, const nlohmann::json& submission);

}  // namespace crowdgate
