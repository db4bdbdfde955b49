#include "core/check_spec.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <utility>

namespace crowdgate {

namespace {

using nlohmann::json;
using Match = CheckSpec::Match;

// libstdc++'s std::regex matches recursively; a long enough submission would overflow the
// stack, so longer values simply fail a regex check.
constexpr size_t kMaxRegexInput = 4096;

constexpr std::array<std::pair<Match, std::string_view>, 5> kMatchNames = {{
    {Match::kExact, "exact"},
    {Match::kCaseInsensitive, "case_insensitive"},
    {Match::kNumeric, "numeric"},
    {Match::kSet, "set"},
    {Match::kRegex, "regex"},
}};

constexpr std::array<std::string_view, 7> kKeys = {"fields",        "match",   "tolerance", "min_jaccard",
                                                   "pass_fraction", "command", "timeout_s"};

std::string Describe(const json& j) {
  constexpr size_t kMaxShown = 80;
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return text;
}

// ---- parsing ------------------------------------------------------------------------------

Status KeyError(std::string_view where, std::string_view key, const std::string& problem) {
  return Status::InvalidArgument(std::string(where) + "." + std::string(key) + ": " + problem);
}

std::optional<double> NumberOf(const json& j) {
  if (!j.is_number()) return std::nullopt;  // booleans are not numbers in nlohmann
  const double v = j.get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

Status ParseNumber(const json& j, std::string_view where, std::string_view key, double& out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  auto v = NumberOf(*it);
  if (!v) return KeyError(where, key, "expected a number, got " + Describe(*it));
  out = *v;
  return Status::Ok();
}

Status ParseStringList(const json& j, std::string_view where, std::string_view key, std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  if (!it->is_array() || it->empty()) {
    return KeyError(where, key, "expected a non-empty list of strings, got " + Describe(*it));
  }
  std::vector<std::string> items;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      return KeyError(where, std::string(key) + "[" + std::to_string(i) + "]",
                      "expected a non-empty string, got " + Describe(item));
    }
    items.push_back(item.get<std::string>());
  }
  out = std::move(items);
  return Status::Ok();
}

Status ParseMatch(const json& j, std::string_view where, Match& out) {
  auto it = j.find("match");
  if (it == j.end()) return Status::Ok();
  if (it->is_string()) {
    for (const auto& [m, name] : kMatchNames) {
      if (name == it->get_ref<const std::string&>()) {
        out = m;
        return Status::Ok();
      }
    }
  }
  return KeyError(where, "match", "expected one of exact, case_insensitive, numeric, set, regex, got " + Describe(*it));
}

Status CheckKeys(const json& j, std::string_view where) {
  for (const auto& [key, unused] : j.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return KeyError(where, key,
                      "unknown key (expected fields, match, tolerance, min_jaccard, pass_fraction, command, "
                      "timeout_s)");
    }
  }
  return Status::Ok();
}

Status CheckCombinations(const json& j, std::string_view where, const CheckSpec& spec) {
  if (spec.IsCommand()) {
    for (std::string_view key : {"fields", "match", "tolerance", "min_jaccard", "pass_fraction"}) {
      if (j.contains(key)) return KeyError(where, key, "cannot be combined with command (the program decides)");
    }
    return Status::Ok();
  }
  if (j.contains("timeout_s")) return KeyError(where, "timeout_s", "only applies to a command check");
  if (j.contains("tolerance") && spec.match != Match::kNumeric) {
    return KeyError(where, "tolerance", "only applies to match: numeric");
  }
  if (j.contains("min_jaccard") && spec.match != Match::kSet) {
    return KeyError(where, "min_jaccard", "only applies to match: set");
  }
  return Status::Ok();
}

Status CheckRanges(std::string_view where, const CheckSpec& spec) {
  if (spec.tolerance < 0) return KeyError(where, "tolerance", "must be 0 or more");
  if (spec.min_jaccard < 0 || spec.min_jaccard > 1) return KeyError(where, "min_jaccard", "must be between 0 and 1");
  if (spec.pass_fraction <= 0 || spec.pass_fraction > 1) {
    return KeyError(where, "pass_fraction", "must be more than 0 and at most 1");
  }
  if (spec.timeout_s <= 0) return KeyError(where, "timeout_s", "must be more than 0");
  return Status::Ok();
}

Result<CheckSpec> ParseCheckSpecUnchecked(const json& j, std::string_view where) {
  CheckSpec spec;
  if (j.is_null()) return spec;
  if (!j.is_object()) return Status::InvalidArgument(std::string(where) + ": expected an object, got " + Describe(j));
  CG_RETURN_IF_ERROR(CheckKeys(j, where));
  CG_RETURN_IF_ERROR(ParseStringList(j, where, "fields", spec.fields));
  CG_RETURN_IF_ERROR(ParseMatch(j, where, spec.match));
  CG_RETURN_IF_ERROR(ParseNumber(j, where, "tolerance", spec.tolerance));
  CG_RETURN_IF_ERROR(ParseNumber(j, where, "min_jaccard", spec.min_jaccard));
  CG_RETURN_IF_ERROR(ParseNumber(j, where, "pass_fraction", spec.pass_fraction));
  CG_RETURN_IF_ERROR(ParseStringList(j, where, "command", spec.command));
  CG_RETURN_IF_ERROR(ParseNumber(j, where, "timeout_s", spec.timeout_s));
  CG_RETURN_IF_ERROR(CheckCombinations(j, where, spec));
  CG_RETURN_IF_ERROR(CheckRanges(where, spec));
  return spec;
}

// ---- evaluation ---------------------------------------------------------------------------

enum class FieldOutcome { kPass, kFail, kError };

struct FieldResult {
  FieldOutcome outcome;
  std::string why;  // for kFail / kError; never contains a value
};

FieldResult Pass() { return {FieldOutcome::kPass, ""}; }
FieldResult Fail(std::string why = "") { return {FieldOutcome::kFail, std::move(why)}; }
FieldResult Error(std::string why) { return {FieldOutcome::kError, std::move(why)}; }

std::string_view Trim(std::string_view s) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The text of a scalar: a string as is, a number or boolean as JSON writes it.
std::optional<std::string> ScalarText(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number() || j.is_boolean()) return j.dump();
  return std::nullopt;
}

std::optional<double> ParseNumeric(const json& j) {
  if (auto v = NumberOf(j)) return v;
  if (!j.is_string()) return std::nullopt;
  std::string_view s = Trim(j.get_ref<const std::string&>());
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::set<std::string>> ParseSet(const json& j) {
  std::set<std::string> out;
  if (j.is_array()) {
    for (const json& item : j) {
      auto text = ScalarText(item);
      if (!text) return std::nullopt;
      out.emplace(Trim(*text));
    }
    return out;
  }
  if (!j.is_string()) return std::nullopt;
  std::string_view rest = j.get_ref<const std::string&>();
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (!item.empty()) out.emplace(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return out;
}

FieldResult CompareExact(const json& expected, const json& got) {
  if (expected.is_string() != got.is_string()) {
    auto a = ScalarText(expected);
    auto b = ScalarText(got);
    return a && b && *a == *b ? Pass() : Fail();
  }
  return expected == got ? Pass() : Fail();
}

FieldResult CompareCaseInsensitive(const json& expected, const json& got) {
  auto a = ScalarText(expected);
  auto b = ScalarText(got);
  if (a && b) return Lower(Trim(*a)) == Lower(Trim(*b)) ? Pass() : Fail();
  return expected == got ? Pass() : Fail();
}

FieldResult CompareNumeric(const CheckSpec& spec, const json& expected, const json& got) {
  auto a = ParseNumeric(expected);
  if (!a) return Error("the answer is not a number");
  auto b = ParseNumeric(got);
  if (!b) return Fail("not a number");
  return std::fabs(*a - *b) <= spec.tolerance ? Pass() : Fail();
}

FieldResult CompareSet(const CheckSpec& spec, const json& expected, const json& got) {
  auto a = ParseSet(expected);
  if (!a) return Error("the answer is not a list or a comma-separated string");
  auto b = ParseSet(got);
  if (!b) return Fail("not a list");
  if (a->empty() && b->empty()) return Pass();
  size_t common = 0;
  for (const auto& item : *a) common += b->count(item);
  const double jaccard = static_cast<double>(common) / static_cast<double>(a->size() + b->size() - common);
  return jaccard >= spec.min_jaccard - 1e-9 ? Pass() : Fail();
}

FieldResult CompareRegex(const json& expected, const json& got) {
  if (!expected.is_string()) return Error("the answer is not a regex string");
  std::regex re;
  try {
    re = std::regex(expected.get<std::string>(), std::regex::ECMAScript);
  } catch (const std::regex_error&) {
    return Error("the answer is not a valid regex");
  }
  auto text = ScalarText(got);
  if (!text) return Fail("not text");
  if (text->size() > kMaxRegexInput) return Fail("too long for a regex check");
  try {
    return std::regex_match(*text, re) ? Pass() : Fail();
  } catch (const std::regex_error&) {
    return Error("the regex is too complex for the submitted value");
  }
}

FieldResult CompareField(const CheckSpec& spec, const json& expected, const json& got) {
  switch (spec.match) {
    case Match::kExact:
      return CompareExact(expected, got);
    case Match::kCaseInsensitive:
      return CompareCaseInsensitive(expected, got);
    case Match::kNumeric:
      return CompareNumeric(spec, expected, got);
    case Match::kSet:
      return CompareSet(spec, expected, got);
    case Match::kRegex:
      return CompareRegex(expected, got);
  }
  return Error("unknown match");
}

std::string FieldLabel(const std::string& field, const std::string& why) {
  std::string label = Describe(json(field));
  if (!why.empty()) label += " (" + why + ")";
  return label;
}

CheckResult EvaluateUnchecked(const CheckSpec& spec, const json& answer, const json& submission) {
  if (spec.IsCommand()) return {CheckOutcome::kError, "command checks run in the engine"};
  if (!answer.is_object()) return {CheckOutcome::kError, "the answer is not an object"};
  std::vector<std::string> fields = spec.fields;
  if (fields.empty()) {
    for (const auto& [key, unused] : answer.items()) fields.push_back(key);
  }
  if (fields.empty()) return {CheckOutcome::kError, "nothing to check: the answer has no fields"};

  std::vector<std::string> failed;
  size_t passed = 0;
  for (const auto& field : fields) {
    auto expected = answer.find(field);
    if (expected == answer.end()) {
      return {CheckOutcome::kError, "field " + Describe(json(field)) + " is not in the answer"};
    }
    const bool present = submission.is_object() && submission.contains(field);
    FieldResult r = present ? CompareField(spec, *expected, submission.at(field)) : Fail("missing");
    if (r.outcome == FieldOutcome::kError) return {CheckOutcome::kError, "field " + FieldLabel(field, r.why)};
    if (r.outcome == FieldOutcome::kPass) {
      ++passed;
    } else {
      failed.push_back(FieldLabel(field, r.why));
    }
  }
  const double fraction = static_cast<double>(passed) / static_cast<double>(fields.size());
  const bool pass = fraction >= spec.pass_fraction - 1e-9;
  std::string detail = std::to_string(passed) + " of " + std::to_string(fields.size()) + " fields match";
  if (!failed.empty()) {
    detail += "; failed: ";
    for (size_t i = 0; i < failed.size(); ++i) detail += (i ? ", " : "") + failed[i];
  }
  return {pass ? CheckOutcome::kPass : CheckOutcome::kFail, detail};
}

}  // namespace

std::string_view MatchName(CheckSpec::Match match) {
  for (const auto& [m, name] : kMatchNames) {
    if (m == match) return name;
  }
  return "unknown";
}

std::string_view CheckOutcomeName(CheckOutcome outcome) {
  switch (outcome) {
    case CheckOutcome::kPass:
      return "pass";
    case CheckOutcome::kFail:
      return "fail";
    case CheckOutcome::kError:
      return "error";
  }
  return "error";
}

Result<CheckSpec> ParseCheckSpec(const json& j, std::string_view where) {
  try {
    return ParseCheckSpecUnchecked(j, where);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string(where) + ": " + e.what());
  }
}

CheckResult EvaluateCheck(const CheckSpec& spec, const json& answer, const json& submission) {
  try {
    return EvaluateUnchecked(spec, answer, submission);
  } catch (const std::exception& e) {
    return {CheckOutcome::kError, std::string("check failed unexpectedly: ") + e.what()};
  }
}

}  // namespace crowdgate
