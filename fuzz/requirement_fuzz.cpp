// Fuzzes the requirement parser, the check-spec parser and worker references.
// Input: JSON text (anything else is still fed to ParseWorkerRef as a string).
// Invariants: a parsed requirement's ToJson parses back to the same requirement; a parsed
// worker reference's ToString parses back to the same reference.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/check_spec.hpp"
#include "crowdgate/requirement.hpp"
#include "crowdgate/types.hpp"
#include "fuzz_util.hpp"

namespace {

using crowdgate::Requirement;
using json = nlohmann::json;

bool SameRequirement(const Requirement& a, const Requirement& b) {
  return a.qualification_name == b.qualification_name && a.comparator == b.comparator &&
         a.value == b.value && a.values == b.values && a.applicable_providers == b.applicable_providers;
}

void CheckRequirement(const Requirement& req) {
  json j = req.ToJson();
  auto again = crowdgate::ParseRequirement(j, "roundtrip");
  if (!again.ok()) std::fprintf(stderr, "re-parse error: %s\n", again.status().message().c_str());
  FUZZ_CHECK(again.ok(), "ToJson of a parsed requirement does not parse");
  FUZZ_CHECK(SameRequirement(req, *again), "requirement does not round-trip through ToJson");
  // Evaluate must be total; AppliesTo too.
  for (std::optional<int64_t> g : {std::optional<int64_t>(), std::optional<int64_t>(0),
                                   std::optional<int64_t>(INT64_MIN), std::optional<int64_t>(INT64_MAX),
                                   std::optional<int64_t>(req.value)}) {
    (void)crowdgate::Evaluate(req, g);
  }
  (void)req.AppliesTo("local");
  (void)req.AppliesTo("mturk");
}

void CheckWorkerRef(std::string_view text) {
  auto ref = crowdgate::ParseWorkerRef(text);
  if (!ref.ok()) return;
  auto again = crowdgate::ParseWorkerRef(ref->ToString());
  FUZZ_CHECK(again.ok(), "ToString of a parsed worker reference does not parse");
  FUZZ_CHECK(*again == *ref, "worker reference does not round-trip through ToString");
}

void VisitStrings(const json& j, int depth) {
  if (depth > 8) return;
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    CheckWorkerRef(s);
    (void)crowdgate::ValidateQualificationName(s);
  } else if (j.is_structured()) {
    for (const auto& v : j) VisitStrings(v, depth + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckWorkerRef(input);
  json j = json::parse(input, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;

  auto list = crowdgate::ParseRequirements(j, "qualifications");
  if (list.ok()) {
    for (const auto& req : *list) CheckRequirement(req);
  } else {
    FUZZ_CHECK(!list.status().message().empty(), "an error without a message");
  }
  if (j.is_object()) {
    if (auto one = crowdgate::ParseRequirement(j, "qualifications[0]"); one.ok()) CheckRequirement(*one);
  }

  auto spec = crowdgate::ParseCheckSpec(j, "gold_check");
  if (spec.ok() && !spec->IsCommand() && spec->match != crowdgate::CheckSpec::Match::kRegex && j.is_object()) {
    // Exercise evaluation with the input as both answer and submission (never throws).
    // Regex checks are left out: std::regex recursion on a hostile pattern is a known
    // limit, and patterns come from the requester's own gold file.
    auto r = crowdgate::EvaluateCheck(*spec, j, j);
    (void)r;
  }
  VisitStrings(j, 0);
  return 0;
}
