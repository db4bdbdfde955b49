// Requirements: (qualification_name, comparator, value, applicable_providers), as in
// Mephisto and MTurk. A worker passes a list of requirements only if every one holds.
//
// Contract:
//  - Comparator spellings are exactly Mephisto's/MTurk's (GreaterThan, ..., NotIn).
//  - Ordering comparators and EqualTo/NotEqualTo take one integer (JSON booleans and
//    floats are refused); Exists/DoesNotExist take null (or no value); In/NotIn take a
//    non-empty list of integers. ParseRequirement refuses anything else with a message
//    that names the requirement (by index and name), the field and what was expected.
//  - A worker WITHOUT a grant fails every comparator except DoesNotExist.
//  - applicable_providers: absent/null = all providers; otherwise a non-empty list of
//    known providers; a requirement applies only to workers of the listed providers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "crowdgate/status.hpp"

namespace crowdgate {

enum class Comparator {
  kGreaterThan,
  kGreaterThanOrEqualTo,
  kLessThan,
  kLessThanOrEqualTo,
  kEqualTo,
  kNotEqualTo,
  kExists,
  kDoesNotExist,
  kIn,
  kNotIn,
};

std::string_view ComparatorName(Comparator c);
std::optional<Comparator> ComparatorFromName(std::string_view name);
const std::vector<Comparator>& AllComparators();

struct Requirement {
  std::string qualification_name;
  Comparator comparator = Comparator::kExists;
  int64_t value = 0;                 // ordering comparators, EqualTo, NotEqualTo
  std::vector<int64_t> values;       // In, NotIn (sorted, deduplicated)
  std::optional<std::vector<std::string>> applicable_providers;  // nullopt = all

  bool AppliesTo(std::string_view provider) const;
  nlohmann::json ToJson() const;
};

// Pure evaluation of one comparator. `granted` is the worker's value, or nullopt when
// the worker has no (unexpired) grant.
bool Evaluate(const Requirement& req, std::optional<int64_t> granted);

// Parses one requirement object. `where` names it in errors, e.g. "qualifications[2]".
Result<Requirement> ParseRequirement(const nlohmann::json& j, std::string_view where);
// Parses a JSON list of requirement objects; errors say "qualifications[i] (name): ...".
Result<std::vector<Requirement>> ParseRequirements(const nlohmann::json& list, std::string_view where);

}  // namespace crowdgate
