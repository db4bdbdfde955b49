// Prolific's request bodies built from crowdgate's values: pure functions, no I/O.
//
// Money: Prolific wants a study's reward in integer cents of the account currency, and bonus amounts as
// decimals in that currency ("4.25"). Both are computed here from crowdgate's amounts (which are in currency
// units, e.g. task_reward 0.3 = 30 cents), rounding half up on the decimal value, never truncating a positive
// amount to 0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"

namespace crowdgate::prolific {

// Where a participant goes back to Prolific at the end of a session.
inline constexpr std::string_view kCompletionRedirectBase = "https://app.prolific.com/submissions/complete?cc=";

// Rejection categories Prolific accepts in a REJECT transition (a string, never a list).
const std::vector<std::string>& RejectionCategories();
bool IsRejectionCategory(std::string_view category);
// Prolific's minimum length of a rejection message (shown to the participant).
inline constexpr size_t kMinRejectionMessage = 100;

struct StudyParams {
  std::string name;                 // shown to participants
  std::string description;          // shown to participants; required by Prolific
  std::string internal_name;        // optional; shown to the researcher only
  std::string public_url;           // where crowdgate is reachable, e.g. https://crowd.example.org
  std::string run_id;               // crowdgate's run: the study links to {public_url}/runs/{run_id}
  std::string completed_code;       // random, unguessable; sent back by a participant who finished
  std::string screened_out_code;    // random, unguessable, different; sent back by a refused participant
  std::string screened_out_action = "MANUALLY_REVIEW";  // or REQUEST_RETURN
  int total_available_places = 0;   // > 0
  int estimated_completion_minutes = 0;  // > 0
  double task_reward = 0;           // per unit, in currency units (> 0)
  int units_per_session = 1;        // the reward covers this many units (>= 1)
  std::string project;              // optional Prolific project id (default: the account's first project)
  // provider.prolific_specific_qualifications: a JSON array of Prolific filters, passed through as given.
  nlohmann::json prolific_specific_qualifications = nlohmann::json::array();
  std::vector<std::string> allowlist_group_ids;  // participant groups whose members alone may take part
  std::vector<std::string> blocklist_group_ids;  // participant groups whose members may not
};

// {public_url}/runs/{run_id}?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}
// (a trailing slash of public_url is dropped; run_id is percent-encoded).
std::string ExternalStudyUrl(std::string_view public_url, std::string_view run_id);

// round(task_reward * 100 * units_per_session), at least 1 for a positive reward. InvalidArgument for a
// reward <= 0 or units_per_session < 1 (Prolific refuses a study without a reward).
Result<int64_t> RewardCents(double task_reward, int units_per_session);

// A currency amount (e.g. a bonus of 0.5) in cents, rounded half up; InvalidArgument when <= 0 after rounding.
Result<int64_t> AmountToCents(double amount);

// The POST /api/v1/studies/ body. InvalidArgument naming the field when a value is missing or out of range.
Result<nlohmann::json> BuildStudyBody(const StudyParams& params);

// csv_bonuses for POST /api/v1/submissions/bonus-payments/: one "<id>,<amount>\n" line per entry, the amount
// a decimal with two places ("0.50"). Ids are participant or submission ids; amounts in cents (> 0).
Result<std::string> BuildBonusCsv(const std::vector<std::pair<std::string, int64_t>>& cents_by_id);

// {"action": "APPROVE"}.
nlohmann::json ApproveBody();
// {"action": "REJECT", "message", "rejection_category"}; InvalidArgument when the message is shorter than
// 100 characters or the category is not one of Prolific's.
Result<nlohmann::json> BuildRejectBody(std::string_view message, std::string_view category);

// https://app.prolific.com/submissions/complete?cc=CODE (CODE percent-encoded).
std::string CompletionRedirectUrl(std::string_view code);

// RFC 3986 percent-encoding of everything but unreserved characters (for path segments and query values).
std::string PercentEncode(std::string_view s);

}  // namespace crowdgate::prolific
