// Checks of single values that table rows reference (provider-specific qualification
// lists, qualification names, addresses), and small helpers the loader's files share.
#include <algorithm>
#include <optional>
#include <set>
#include <string>

#include "core/run_config_internal.hpp"
#include "crowdgate/requirement.hpp"
#include "crowdgate/types.hpp"

namespace crowdgate::run_config_internal {

std::string DescribeValue(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return std::string("boolean ") + (v.get<bool>() ? "true" : "false");
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer " + v.dump();
    case json::value_t::number_float: return "number " + v.dump();
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      return "string " + json(s).dump();
    }
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

std::string Where(const std::string& list, size_t i) { return list + "[" + std::to_string(i) + "]"; }

namespace {

template <typename J>
J* LookupIn(J& tree, const std::string& key) {
  J* node = &tree;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

bool IsIntList(const json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number_integer(); });
}

Status CheckLocale(const json& v, const std::string& where) {
  if (!v.is_object()) return Status::InvalidArgument(where + ": expected an object {Country, Subdivision?}");
  for (const auto& [k, x] : v.items()) {
    if (k != "Country" && k != "Subdivision") {
      return Status::InvalidArgument(where + ": unknown key \"" + k + "\" (a locale has Country and Subdivision)");
    }
  }
  auto it = v.find("Country");
  std::string country = it != v.end() && it->is_string() ? it->get<std::string>() : "";
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (country.size() != 2 || !std::all_of(country.begin(), country.end(), upper)) {
    return Status::InvalidArgument(where + ".Country: expected a two-letter ISO 3166 code such as \"US\"");
  }
  if (v.contains("Subdivision") && !v["Subdivision"].is_string()) {
    return Status::InvalidArgument(where + ".Subdivision: expected a string such as \"CA\"");
  }
  return Status::Ok();
}

Status CheckMturkQualification(const json& q, const std::string& where) {
  static const std::set<std::string> kKeys = {"QualificationTypeId", "Comparator",     "IntegerValues",
                                              "LocaleValues",        "ActionsGuarded", "RequiredToPreview"};
  if (!q.is_object()) return Status::InvalidArgument(where + ": expected an object, got " + DescribeValue(q));
  for (const auto& [k, v] : q.items()) {
    if (!kKeys.count(k)) {
      return Status::InvalidArgument(where + ": unknown key \"" + k + "\" (MTurk keys: QualificationTypeId, "
                                     "Comparator, IntegerValues, LocaleValues, ActionsGuarded, RequiredToPreview)");
    }
  }
  if (!q.contains("QualificationTypeId") || !q["QualificationTypeId"].is_string() ||
      q["QualificationTypeId"].get<std::string>().empty()) {
    return Status::InvalidArgument(where + ".QualificationTypeId: missing or not a non-empty string");
  }
  std::optional<Comparator> cmp;
  if (q.contains("Comparator") && q["Comparator"].is_string()) {
    cmp = ComparatorFromName(q["Comparator"].get<std::string>());
  }
  if (!cmp) {
    return Status::InvalidArgument(where + ".Comparator: expected one of GreaterThan, GreaterThanOrEqualTo, LessThan, "
                                   "LessThanOrEqualTo, EqualTo, NotEqualTo, Exists, DoesNotExist, In, NotIn");
  }
  if (q.contains("IntegerValues") && !IsIntList(q["IntegerValues"])) {
    return Status::InvalidArgument(where + ".IntegerValues: expected a list of integers");
  }
  size_t num_values = q.contains("IntegerValues") ? q["IntegerValues"].size() : 0;
  if (q.contains("LocaleValues")) {
    if (!q["LocaleValues"].is_array()) return Status::InvalidArgument(where + ".LocaleValues: expected a list");
    for (size_t i = 0; i < q["LocaleValues"].size(); ++i) {
      CG_RETURN_IF_ERROR(CheckLocale(q["LocaleValues"][i], Where(where + ".LocaleValues", i)));
    }
    num_values += q["LocaleValues"].size();
  }
  if (q.contains("ActionsGuarded")) {
    const json& a = q["ActionsGuarded"];
    if (!a.is_string() || (a != "Accept" && a != "PreviewAndAccept" && a != "DiscoverPreviewAndAccept")) {
      return Status::InvalidArgument(where + ".ActionsGuarded: expected Accept, PreviewAndAccept or "
                                     "DiscoverPreviewAndAccept");
    }
  }
  if (q.contains("RequiredToPreview") && !q["RequiredToPreview"].is_boolean()) {
    return Status::InvalidArgument(where + ".RequiredToPreview: expected a boolean");
  }
  if (q.contains("IntegerValues") && q.contains("LocaleValues")) {
    return Status::InvalidArgument(where + ": give IntegerValues or LocaleValues, not both");
  }
  std::string name(ComparatorName(*cmp));
  if (*cmp == Comparator::kExists || *cmp == Comparator::kDoesNotExist) {
    if (num_values) return Status::InvalidArgument(where + ": " + name + " takes no IntegerValues or LocaleValues");
  } else if (*cmp == Comparator::kIn || *cmp == Comparator::kNotIn) {
    if (!num_values) return Status::InvalidArgument(where + ": " + name + " needs IntegerValues or LocaleValues");
  } else if (num_values != 1) {
    return Status::InvalidArgument(where + ": " + name + " needs exactly one value in IntegerValues or LocaleValues");
  } else if (*cmp != Comparator::kEqualTo && *cmp != Comparator::kNotEqualTo && q.contains("LocaleValues")) {
    return Status::InvalidArgument(where + ": " + name + " compares integers; use IntegerValues");
  }
  return Status::Ok();
}

// A Prolific filter: {filter_id, selected_values: [strings]} (select) or {filter_id,
// selected_range: {lower?, upper?}} (range), optionally with weightings.
Status CheckProlificFilter(const json& q, const std::string& where) {
  if (!q["filter_id"].is_string() || q["filter_id"].get<std::string>().empty()) {
    return Status::InvalidArgument(where + ".filter_id: expected a non-empty string such as \"age\"");
  }
  for (const auto& [k, v] : q.items()) {
    if (k != "filter_id" && k != "selected_values" && k != "selected_range" && k != "weightings") {
      return Status::InvalidArgument(where + ": unknown key \"" + k +
                                     "\" (a Prolific filter has filter_id, selected_values or selected_range, "
                                     "weightings)");
    }
  }
  const bool values = q.contains("selected_values");
  const bool range = q.contains("selected_range");
  if (values == range) {
    return Status::InvalidArgument(where + ": give exactly one of selected_values (a select filter) or "
                                   "selected_range (a range filter)");
  }
  if (values) {
    const json& v = q["selected_values"];
    if (!v.is_array() || v.empty() ||
        !std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
      return Status::InvalidArgument(where + ".selected_values: expected a non-empty list of choice ids (strings)");
    }
  } else {
    const json& r = q["selected_range"];
    if (!r.is_object() || r.empty()) {
      return Status::InvalidArgument(where + ".selected_range: expected an object {lower, upper}");
    }
    for (const auto& [k, v] : r.items()) {
      if (k != "lower" && k != "upper") {
        return Status::InvalidArgument(where + ".selected_range: unknown key \"" + k + "\" (lower, upper)");
      }
      if (!v.is_number() && !v.is_string() && !v.is_null()) {
        return Status::InvalidArgument(where + ".selected_range." + k + ": expected a number or an ISO date");
      }
    }
  }
  return Status::Ok();
}

Status CheckProlificQualification(const json& q, const std::string& where) {
  if (!q.is_object()) return Status::InvalidArgument(where + ": expected an object, got " + DescribeValue(q));
  if (q.contains("filter_id")) return CheckProlificFilter(q, where);
  if (!q.contains("name") || !q["name"].is_string() || q["name"].get<std::string>().empty()) {
    return Status::InvalidArgument(where + ".name: missing or not a non-empty string (a Prolific filter needs "
                                   "filter_id; Mephisto's form needs the requirement type, e.g. "
                                   "\"CustomWhitelistEligibilityRequirement\")");
  }
  return Status::Ok();
}

}  // namespace

const json* Lookup(const json& tree, const std::string& key) { return LookupIn(tree, key); }
json* Lookup(json& tree, const std::string& key) { return LookupIn(tree, key); }

bool IsSet(const json& tree, const std::string& key) {
  const json* v = Lookup(tree, key);
  return v != nullptr && !v->is_null();
}

void CheckNotBlank(const std::string& key, const json& value, ErrorList& errors) {
  if (value.is_string() && value.get<std::string>().find_first_not_of(" \t") == std::string::npos) {
    errors.Add(key + ": must not be empty");
  }
}

void CheckQualificationName(const std::string& key, const json& value, ErrorList& errors) {
  if (value.is_string()) errors.Add(ValidateQualificationName(value.get<std::string>()).WithContext(key));
}

void CheckMturkQualifications(const std::string& key, const json& list, ErrorList& errors) {
  for (size_t i = 0; list.is_array() && i < list.size(); ++i) {
    errors.Add(CheckMturkQualification(list[i], Where(key, i)));
  }
}

void CheckProlificQualifications(const std::string& key, const json& list, ErrorList& errors) {
  for (size_t i = 0; list.is_array() && i < list.size(); ++i) {
    errors.Add(CheckProlificQualification(list[i], Where(key, i)));
  }
}

void CheckPublicUrl(const std::string& key, const json& value, ErrorList& errors) {
  if (!value.is_string()) return;
  const std::string u = value.get<std::string>();
  if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
    errors.Add(key + ": expected an http:// or https:// address, got \"" + u + "\"");
  }
}

}  // namespace crowdgate::run_config_internal
