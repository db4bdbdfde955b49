#include "crowdgate/requirement.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "crowdgate/types.hpp"

namespace crowdgate {

namespace {

using nlohmann::json;

constexpr std::array<std::pair<Comparator, std::string_view>, 10> kComparatorNames = {{
    {Comparator::kGreaterThan, "GreaterThan"},
    {Comparator::kGreaterThanOrEqualTo, "GreaterThanOrEqualTo"},
    {Comparator::kLessThan, "LessThan"},
    {Comparator::kLessThanOrEqualTo, "LessThanOrEqualTo"},
    {Comparator::kEqualTo, "EqualTo"},
    {Comparator::kNotEqualTo, "NotEqualTo"},
    {Comparator::kExists, "Exists"},
    {Comparator::kDoesNotExist, "DoesNotExist"},
    {Comparator::kIn, "In"},
    {Comparator::kNotIn, "NotIn"},
}};

constexpr std::array<std::string_view, 4> kKeys = {"qualification_name", "comparator", "value", "applicable_providers"};

enum class ValueKind { kInteger, kNone, kIntegerList };

ValueKind ValueKindOf(Comparator c) {
  switch (c) {
    case Comparator::kExists:
    case Comparator::kDoesNotExist:
      return ValueKind::kNone;
    case Comparator::kIn:
    case Comparator::kNotIn:
      return ValueKind::kIntegerList;
    default:
      return ValueKind::kInteger;
  }
}

// A short rendering of a JSON value for error messages ("80", "\"80\"", "true", "[1,2]").
std::string Describe(const json& j) {
  constexpr size_t kMaxShown = 80;
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return text;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string ComparatorList() {
  std::string out;
  for (const auto& [c, name] : kComparatorNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Only JSON integers count: booleans and floats (even 80.0) are refused, as in Mephisto.
std::optional<int64_t> AsInteger(const json& j) {
  if (j.is_number_integer() && !j.is_number_unsigned()) return j.get<int64_t>();
  if (j.is_number_unsigned()) {
    const auto u = j.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

Status ParseName(const json& j, Requirement& req) {
  const auto it = j.find("qualification_name");
  if (it == j.end()) return Status::InvalidArgument("qualification_name: required, but missing");
  if (!it->is_string()) {
    return Status::InvalidArgument("qualification_name: expected a string, got " + Describe(*it));
  }
  const auto& name = it->get_ref<const std::string&>();
  if (Status s = ValidateQualificationName(name); !s.ok()) return s.WithContext("qualification_name");
  req.qualification_name = name;
  return Status::Ok();
}

Status ParseComparator(const json& j, Requirement& req) {
  const auto it = j.find("comparator");
  if (it == j.end()) {
    return Status::InvalidArgument("comparator: required, but missing (one of " + ComparatorList() + ")");
  }
  if (!it->is_string()) {
    return Status::InvalidArgument("comparator: expected a string (one of " + ComparatorList() + "), got " +
                                   Describe(*it));
  }
  const auto& text = it->get_ref<const std::string&>();
  if (auto c = ComparatorFromName(text)) {
    req.comparator = *c;
    return Status::Ok();
  }
  for (const auto& [c, name] : kComparatorNames) {
    if (EqualsIgnoringCase(name, text)) {
      return Status::InvalidArgument("comparator: unknown comparator " + Describe(*it) +
                                     "; comparators are case-sensitive, did you mean " + std::string(name) + "?");
    }
  }
  return Status::InvalidArgument("comparator: unknown comparator " + Describe(*it) + " (expected one of " +
                                 ComparatorList() + ")");
}

Status ParseValue(const json& j, Requirement& req) {
  const auto it = j.find("value");
  const bool absent = it == j.end();
  const std::string comparator(ComparatorName(req.comparator));
  const std::string got = absent ? "nothing" : Describe(*it);
  switch (ValueKindOf(req.comparator)) {
    case ValueKind::kNone:
      if (absent || it->is_null()) return Status::Ok();
      return Status::InvalidArgument("value: " + comparator + " takes no value (null or absent), got " + got);
    case ValueKind::kInteger: {
      std::optional<int64_t> v = absent ? std::nullopt : AsInteger(*it);
      if (!v) return Status::InvalidArgument("value: " + comparator + " needs an integer, got " + got);
      req.value = *v;
      return Status::Ok();
    }
    case ValueKind::kIntegerList: {
      if (absent || !it->is_array() || it->empty()) {
        return Status::InvalidArgument("value: " + comparator + " needs a non-empty list of integers, got " + got);
      }
      std::vector<int64_t> values;
      for (size_t i = 0; i < it->size(); ++i) {
        std::optional<int64_t> v = AsInteger((*it)[i]);
        if (!v) {
          return Status::InvalidArgument("value[" + std::to_string(i) + "]: " + comparator +
                                         " needs a list of integers, got " + Describe((*it)[i]));
        }
        values.push_back(*v);
      }
      std::sort(values.begin(), values.end());
      values.erase(std::unique(values.begin(), values.end()), values.end());
      req.values = std::move(values);
      return Status::Ok();
    }
  }
  return Status::Internal("value: unhandled comparator");
}

Status ParseProviders(const json& j, Requirement& req) {
  const auto it = j.find("applicable_providers");
  if (it == j.end() || it->is_null()) {
    req.applicable_providers.reset();
    return Status::Ok();
  }
  const std::string expected = "null (all providers) or a non-empty list of providers (" + Join(KnownProviders()) + ")";
  if (!it->is_array() || it->empty()) {
    return Status::InvalidArgument("applicable_providers: expected " + expected + ", got " + Describe(*it));
  }
  std::vector<std::string> providers;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& p = (*it)[i];
    if (!p.is_string() || !IsKnownProvider(p.get_ref<const std::string&>())) {
      return Status::InvalidArgument("applicable_providers[" + std::to_string(i) + "]: expected one of " +
                                     Join(KnownProviders()) + ", got " + Describe(p));
    }
    const auto& name = p.get_ref<const std::string&>();
    if (std::find(providers.begin(), providers.end(), name) == providers.end()) providers.push_back(name);
  }
  req.applicable_providers = std::move(providers);
  return Status::Ok();
}

Status CheckKeys(const json& j) {
  for (const auto& [key, unused] : j.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return Status::InvalidArgument("unknown key " + Describe(json(key)) +
                                     " (expected qualification_name, comparator, value, applicable_providers)");
    }
  }
  return Status::Ok();
}

Result<Requirement> ParseRequirementUnchecked(const json& j, std::string_view where) {
  if (!j.is_object()) {
    return Status::InvalidArgument(std::string(where) + ": expected a requirement object, got " + Describe(j));
  }
  std::string label(where);
  if (auto it = j.find("qualification_name"); it != j.end() && it->is_string()) {
    const auto& name = it->get_ref<const std::string&>();
    if (ValidateQualificationName(name).ok()) label += " (" + name + ")";
  }
  Requirement req;
  CG_RETURN_IF_ERROR(CheckKeys(j).WithContext(label));
  for (auto step : {ParseName, ParseComparator, ParseValue, ParseProviders}) {
    CG_RETURN_IF_ERROR(step(j, req).WithContext(label));
  }
  return req;
}

}  // namespace

std::string_view ComparatorName(Comparator c) {
  for (const auto& [comparator, name] : kComparatorNames) {
    if (comparator == c) return name;
  }
  return "Unknown";
}

std::optional<Comparator> ComparatorFromName(std::string_view name) {
  for (const auto& [comparator, n] : kComparatorNames) {
    if (n == name) return comparator;
  }
  return std::nullopt;
}

const std::vector<Comparator>& AllComparators() {
  static const std::vector<Comparator> kAll = [] {
    std::vector<Comparator> all;
    for (const auto& [c, name] : kComparatorNames) all.push_back(c);
    return all;
  }();
  return kAll;
}

bool Requirement::AppliesTo(std::string_view provider) const {
  if (!applicable_providers) return true;
  return std::find(applicable_providers->begin(), applicable_providers->end(), provider) != applicable_providers->end();
}

json Requirement::ToJson() const {
  json j = json::object();
  j["qualification_name"] = qualification_name;
  j["comparator"] = std::string(ComparatorName(comparator));
  switch (ValueKindOf(comparator)) {
    case ValueKind::kNone:
      j["value"] = nullptr;
      break;
    case ValueKind::kInteger:
      j["value"] = value;
      break;
    case ValueKind::kIntegerList:
      j["value"] = values;
      break;
  }
  j["applicable_providers"] = applicable_providers ? json(*applicable_providers) : json(nullptr);
  return j;
}

bool Evaluate(const Requirement& req, std::optional<int64_t> granted) {
  if (req.comparator == Comparator::kDoesNotExist) return !granted.has_value();
  if (!granted) return false;  // fail closed: even NotEqualTo and NotIn need a grant
  const int64_t g = *granted;
  switch (req.comparator) {
    case Comparator::kGreaterThan:
      return g > req.value;
    case Comparator::kGreaterThanOrEqualTo:
      return g >= req.value;
    case Comparator::kLessThan:
      return g < req.value;
    case Comparator::kLessThanOrEqualTo:
      return g <= req.value;
    case Comparator::kEqualTo:
      return g == req.value;
    case Comparator::kNotEqualTo:
      return g != req.value;
    case Comparator::kExists:
      return true;
    case Comparator::kIn:
      return std::binary_search(req.values.begin(), req.values.end(), g);
    case Comparator::kNotIn:
      return !std::binary_search(req.values.begin(), req.values.end(), g);
    case Comparator::kDoesNotExist:
      break;
  }
  return false;
}

Result<Requirement> ParseRequirement(const json& j, std::string_view where) {
  try {
    return ParseRequirementUnchecked(j, where);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string(where) + ": " + e.what());
  }
}

Result<std::vector<Requirement>> ParseRequirements(const json& list, std::string_view where) {
  if (list.is_null()) return std::vector<Requirement>{};
  if (!list.is_array()) {
    return Status::InvalidArgument(std::string(where) + ": expected a list of requirements, got " + Describe(list));
  }
  std::vector<Requirement> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    CG_ASSIGN_OR_RETURN(Requirement req, ParseRequirement(list[i], std::string(where) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(req));
  }
  return out;
}

}  // namespace crowdgate
