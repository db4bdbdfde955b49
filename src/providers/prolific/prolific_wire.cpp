#include "providers/prolific/prolific_wire.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace crowdgate::prolific {

using nlohmann::json;

const std::vector<std::string>& RejectionCategories() {
  static const std::vector<std::string> kCategories = {
      "TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK", "LOW_EFFORT",
      "MALINGERING", "NO_CODE",    "BAD_CODE",            "NO_DATA",             "UNSUPP_DEVICE", "OTHER"};
  return kCategories;
}

bool IsRejectionCategory(std::string_view category) {
  const auto& all = RejectionCategories();
  return std::find(all.begin(), all.end(), category) != all.end();
}

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ExternalStudyUrl(std::string_view public_url, std::string_view run_id) {
  while (!public_url.empty() && public_url.back() == '/') public_url.remove_suffix(1);
  return std::string(public_url) + "/runs/" + PercentEncode(run_id) +
         "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}";
}

namespace {
// Half-up rounding of a decimal amount given as a double: 0.145 is stored as 0.14499999…, so round to a
// micro-cent first to get back the decimal the user wrote, then to whole cents.
int64_t RoundCents(double cents) { return std::llround(std::round(cents * 1e6) / 1e6); }

bool IsCode(std::string_view code) {
  return !code.empty() && code.size() <= 64 &&
         std::all_of(code.begin(), code.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}
}  // namespace

Result<int64_t> RewardCents(double task_reward, int units_per_session) {
  if (!std::isfinite(task_reward) || task_reward <= 0) {
    return Status::InvalidArgument("task.task_reward must be > 0 for a Prolific study (Prolific pays a reward)");
  }
  if (units_per_session < 1) return Status::InvalidArgument("provider.units_per_session must be >= 1");
  const int64_t cents = RoundCents(task_reward * 100.0 * units_per_session);
  return std::max<int64_t>(cents, 1);
}

Result<int64_t> AmountToCents(double amount) {
  if (!std::isfinite(amount)) return Status::InvalidArgument("amount is not a number");
  const int64_t cents = RoundCents(amount * 100.0);
  if (cents <= 0) return Status::InvalidArgument("amount must be at least 0.01");
  return cents;
}

Result<json> BuildStudyBody(const StudyParams& p) {
  if (p.name.empty()) return Status::InvalidArgument("study name is empty");
  if (p.description.empty()) return Status::InvalidArgument("study description is empty (Prolific requires one)");
  if (p.public_url.rfind("http://", 0) != 0 && p.public_url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("provider.public_url must start with http:// or https://, got '" + p.public_url +
                                   "'");
  }
  if (p.run_id.empty()) return Status::InvalidArgument("run id is empty");
  if (!IsCode(p.completed_code) || !IsCode(p.screened_out_code)) {
    return Status::InvalidArgument("completion codes must be 1-64 letters, digits, '_' or '-'");
  }
  if (p.completed_code == p.screened_out_code) {
    return Status::InvalidArgument("the completed and screened-out codes must differ");
  }
  if (p.screened_out_action != "MANUALLY_REVIEW" && p.screened_out_action != "REQUEST_RETURN") {
    return Status::InvalidArgument("screened-out action must be MANUALLY_REVIEW or REQUEST_RETURN");
  }
  if (p.total_available_places <= 0) return Status::InvalidArgument("provider.prolific_places must be > 0");
  if (p.estimated_completion_minutes <= 0) {
    return Status::InvalidArgument("the estimated completion time must be at least 1 minute");
  }
  CG_ASSIGN_OR_RETURN(const int64_t reward, RewardCents(p.task_reward, p.units_per_session));
  if (!p.prolific_specific_qualifications.is_array()) {
    return Status::InvalidArgument("provider.prolific_specific_qualifications must be a list of Prolific filters");
  }

  json filters = p.prolific_specific_qualifications;
  if (!p.allowlist_group_ids.empty()) {
    filters.push_back({{"filter_id", "participant_group_allowlist"}, {"selected_values", p.allowlist_group_ids}});
  }
  if (!p.blocklist_group_ids.empty()) {
    filters.push_back({{"filter_id", "participant_group_blocklist"}, {"selected_values", p.blocklist_group_ids}});
  }
  json body = {
      {"name", p.name},
      {"description", p.description},
      {"external_study_url", ExternalStudyUrl(p.public_url, p.run_id)},
      {"prolific_id_option", "url_parameters"},
      {"completion_codes",
       json::array({{{"code", p.completed_code},
                     {"code_type", "COMPLETED"},
                     {"actions", json::array({{{"action", "MANUALLY_REVIEW"}}})}},
                    {{"code", p.screened_out_code},
                     {"code_type", "SCREENED_OUT"},
                     {"actions", json::array({{{"action", p.screened_out_action}}})}}})},
      {"total_available_places", p.total_available_places},
      {"estimated_completion_time", p.estimated_completion_minutes},
      {"reward", reward},
      {"filters", std::move(filters)},
  };
  if (!p.internal_name.empty()) body["internal_name"] = p.internal_name;
  if (!p.project.empty()) body["project"] = p.project;
  return body;
}

Result<std::string> BuildBonusCsv(const std::vector<std::pair<std::string, int64_t>>& cents_by_id) {
  if (cents_by_id.empty()) return Status::InvalidArgument("no bonus to pay");
  std::string csv;
  for (const auto& [id, cents] : cents_by_id) {
    if (id.empty() || id.find_first_of(",\r\n") != std::string::npos) {
      return Status::InvalidArgument("bonus id '" + id + "' is empty or contains a comma or newline");
    }
    if (cents <= 0) return Status::InvalidArgument("bonus for " + id + " must be positive");
    char amount[32];
    std::snprintf(amount, sizeof(amount), "%lld.%02lld", static_cast<long long>(cents / 100),
                  static_cast<long long>(cents % 100));
    csv += id + "," + amount + "\n";
  }
  return csv;
}

json ApproveBody() { return {{"action", "APPROVE"}}; }

Result<json> BuildRejectBody(std::string_view message, std::string_view category) {
  if (message.size() < kMinRejectionMessage) {
    return Status::InvalidArgument("Prolific needs a rejection message of at least 100 characters (got " +
                                   std::to_string(message.size()) + ")");
  }
  if (!IsRejectionCategory(category)) {
    std::string all;
    for (const auto& c : RejectionCategories()) all += (all.empty() ? "" : ", ") + c;
    return Status::InvalidArgument("rejection category '" + std::string(category) + "' is not one of " + all);
  }
  return json{{"action", "REJECT"}, {"message", message}, {"rejection_category", category}};
}

std::string CompletionRedirectUrl(std::string_view code) {
  return std::string(kCompletionRedirectBase) + PercentEncode(code);
}

}  // namespace crowdgate::prolific
