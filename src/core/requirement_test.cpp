#include "crowdgate/requirement.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crowdgate/types.hpp"

namespace crowdgate {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

Requirement Parsed(const json& j) {
  auto r = ParseRequirement(j, "qualifications[0]");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Requirement{};
}

Requirement Make(Comparator c, json value) {
  return Parsed({{"qualification_name", "q"}, {"comparator", std::string(ComparatorName(c))}, {"value", value}});
}

std::string ParseError(const json& j, std::string_view where = "qualifications[1]") {
  auto r = ParseRequirement(j, where);
  EXPECT_FALSE(r.ok()) << j.dump();
  if (r.ok()) return "";
  EXPECT_TRUE(r.status().IsInvalidArgument());
  return r.status().message();
}

TEST(ComparatorTest, NamesAreMephistoSpellings) {
  const std::vector<std::string> expected = {"GreaterThan", "GreaterThanOrEqualTo",
                                             "LessThan",    "LessThanOrEqualTo",
                                             "EqualTo",     "NotEqualTo",
                                             "Exists",      "DoesNotExist",
                                             "In",          "NotIn"};
  ASSERT_EQ(AllComparators().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(ComparatorName(AllComparators()[i]), expected[i]);
    EXPECT_EQ(ComparatorFromName(expected[i]), AllComparators()[i]);
  }
  EXPECT_EQ(ComparatorFromName("greaterthan"), std::nullopt);
  EXPECT_EQ(ComparatorFromName("QUAL_EXISTS"), std::nullopt);
  EXPECT_EQ(ComparatorFromName(""), std::nullopt);
}

// ---- Evaluate ----------------------------------------------------------------------------

struct EvalCase {
  Comparator comparator;
  json value;
  std::optional<int64_t> granted;
  bool expected;
};

TEST(EvaluateTest, EveryComparatorWithAGrant) {
  const EvalCase cases[] = {
      {Comparator::kGreaterThan, 80, 81, true},
      {Comparator::kGreaterThan, 80, 80, false},
      {Comparator::kGreaterThan, -5, -4, true},
      {Comparator::kGreaterThanOrEqualTo, 80, 80, true},
      {Comparator::kGreaterThanOrEqualTo, 80, 79, false},
      {Comparator::kLessThan, 3, 2, true},
      {Comparator::kLessThan, 3, 3, false},
      {Comparator::kLessThanOrEqualTo, 3, 3, true},
      {Comparator::kLessThanOrEqualTo, 3, 4, false},
      {Comparator::kEqualTo, 1, 1, true},
      {Comparator::kEqualTo, 1, 0, false},
      {Comparator::kNotEqualTo, 1, 0, true},
      {Comparator::kNotEqualTo, 1, 1, false},
      {Comparator::kExists, nullptr, 1, true},
      {Comparator::kExists, nullptr, 0, true},  // any value, even 0
      {Comparator::kExists, nullptr, -3, true},
      {Comparator::kDoesNotExist, nullptr, 0, false},
      {Comparator::kDoesNotExist, nullptr, 1, false},
      {Comparator::kIn, json::array({1, 3, 5}), 3, true},
      {Comparator::kIn, json::array({1, 3, 5}), 4, false},
      {Comparator::kNotIn, json::array({1, 3, 5}), 4, true},
      {Comparator::kNotIn, json::array({1, 3, 5}), 5, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(ComparatorName(c.comparator)) + " " + c.value.dump() + " granted " +
                 std::to_string(*c.granted));
    EXPECT_EQ(Evaluate(Make(c.comparator, c.value), c.granted), c.expected);
  }
}

TEST(EvaluateTest, WithoutAGrantOnlyDoesNotExistPasses) {
  for (Comparator c : AllComparators()) {
    json value = 1;
    if (c == Comparator::kExists || c == Comparator::kDoesNotExist) value = nullptr;
    if (c == Comparator::kIn || c == Comparator::kNotIn) value = json::array({1});
    SCOPED_TRACE(std::string(ComparatorName(c)));
    // Fail closed: NotEqualTo and NotIn fail too, as in Mephisto.
    EXPECT_EQ(Evaluate(Make(c, value), std::nullopt), c == Comparator::kDoesNotExist);
  }
}

TEST(EvaluateTest, ExtremeValues) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  EXPECT_TRUE(Evaluate(Make(Comparator::kGreaterThanOrEqualTo, max), max));
  EXPECT_FALSE(Evaluate(Make(Comparator::kGreaterThan, max), max));
  EXPECT_TRUE(Evaluate(Make(Comparator::kLessThanOrEqualTo, min), min));
  EXPECT_TRUE(Evaluate(Make(Comparator::kIn, json::array({min, max})), min));
}

// ---- ParseRequirement: accepted forms ------------------------------------------------------

TEST(ParseRequirementTest, ParsesAllFields) {
  Requirement r = Parsed({{"qualification_name", "english"},
                          {"comparator", "GreaterThanOrEqualTo"},
                          {"value", 80},
                          {"applicable_providers", {"mturk", "prolific"}}});
  EXPECT_EQ(r.qualification_name, "english");
  EXPECT_EQ(r.comparator, Comparator::kGreaterThanOrEqualTo);
  EXPECT_EQ(r.value, 80);
  ASSERT_TRUE(r.applicable_providers.has_value());
  EXPECT_THAT(*r.applicable_providers, ::testing::ElementsAre("mturk", "prolific"));
}

TEST(ParseRequirementTest, ExistsAndDoesNotExistTakeNullOrNoValue) {
  EXPECT_EQ(Parsed({{"qualification_name", "a"}, {"comparator", "Exists"}}).comparator, Comparator::kExists);
  EXPECT_EQ(Parsed({{"qualification_name", "a"}, {"comparator", "DoesNotExist"}, {"value", nullptr}}).comparator,
            Comparator::kDoesNotExist);
}

TEST(ParseRequirementTest, InListIsSortedAndDeduplicated) {
  Requirement r = Make(Comparator::kIn, json::array({5, 1, 3, 1}));
  EXPECT_THAT(r.values, ::testing::ElementsAre(1, 3, 5));
}

TEST(ParseRequirementTest, NegativeAndLargeIntegers) {
  EXPECT_EQ(Make(Comparator::kEqualTo, -7).value, -7);
  EXPECT_EQ(Make(Comparator::kEqualTo, std::numeric_limits<int64_t>::max()).value, std::numeric_limits<int64_t>::max());
}

TEST(ParseRequirementTest, NullProvidersMeansAll) {
  Requirement r = Parsed({{"qualification_name", "a"}, {"comparator", "Exists"}, {"applicable_providers", nullptr}});
  EXPECT_FALSE(r.applicable_providers.has_value());
  for (const std::string p : {"local", "prolific", "mturk", "mturk_sandbox"}) EXPECT_TRUE(r.AppliesTo(p));
}

TEST(ParseRequirementTest, ProvidersRestrictWhereItApplies) {
  Requirement r = Parsed({{"qualification_name", "a"}, {"comparator", "Exists"}, {"applicable_providers", {"mturk"}}});
  EXPECT_TRUE(r.AppliesTo("mturk"));
  EXPECT_FALSE(r.AppliesTo("mturk_sandbox"));
  EXPECT_FALSE(r.AppliesTo("local"));
  EXPECT_FALSE(r.AppliesTo("prolific"));
}

// ---- ParseRequirement: refused forms ------------------------------------------------------

TEST(ParseRequirementErrorTest, StringWhereIntegerExpected) {
  EXPECT_EQ(ParseError({{"qualification_name", "english"}, {"comparator", "GreaterThanOrEqualTo"}, {"value", "80"}}),
            "qualifications[1] (english): value: GreaterThanOrEqualTo needs an integer, got \"80\"");
}

TEST(ParseRequirementErrorTest, IntegerComparatorsRefuseNonIntegers) {
  for (const char* comparator :
       {"GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "EqualTo", "NotEqualTo"}) {
    for (const json& bad : {json(true), json(false), json(80.5), json(80.0), json("80"), json(nullptr),
                            json::array({80}), json::object({{"v", 80}})}) {
      const std::string message =
          ParseError({{"qualification_name", "english"}, {"comparator", comparator}, {"value", bad}});
      EXPECT_THAT(message, HasSubstr("qualifications[1] (english): value: " + std::string(comparator) +
                                     " needs an integer, got " + bad.dump()));
    }
    EXPECT_THAT(ParseError({{"qualification_name", "english"}, {"comparator", comparator}}),
                HasSubstr("needs an integer, got nothing"));
  }
}

TEST(ParseRequirementErrorTest, IntegerOutOfRange) {
  const json too_big = json::parse("18446744073709551615");
  EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", "EqualTo"}, {"value", too_big}}),
              HasSubstr("needs an integer"));
}

TEST(ParseRequirementErrorTest, ExistsRefusesAValue) {
  for (const char* comparator : {"Exists", "DoesNotExist"}) {
    for (const json& bad : {json(1), json(0), json(true), json("x"), json::array()}) {
      EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}, {"value", bad}}),
                  HasSubstr("qualifications[1] (q): value: " + std::string(comparator) +
                            " takes no value (null or absent), got " + bad.dump()));
    }
  }
}

TEST(ParseRequirementErrorTest, InNeedsNonEmptyIntegerList) {
  for (const char* comparator : {"In", "NotIn"}) {
    const std::string prefix = "qualifications[1] (q): value";
    EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}, {"value", json::array()}}),
                HasSubstr(prefix + ": " + comparator + " needs a non-empty list of integers, got []"));
    EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}, {"value", 3}}),
                HasSubstr("needs a non-empty list of integers, got 3"));
    EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}}),
                HasSubstr("needs a non-empty list of integers, got nothing"));
    EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}, {"value", json::array({1, "2"})}}),
                HasSubstr(prefix + "[1]: " + comparator + " needs a list of integers, got \"2\""));
    EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}, {"value", json::array({1, 2.5})}}),
                HasSubstr("value[1]"));
    EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", comparator}, {"value", json::array({true})}}),
                HasSubstr("value[0]"));
  }
}

TEST(ParseRequirementErrorTest, ComparatorProblems) {
  EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"value", 1}}),
              HasSubstr("qualifications[1] (q): comparator: required, but missing"));
  EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", 3}}), HasSubstr("comparator: expected a string"));
  const std::string unknown = ParseError({{"qualification_name", "q"}, {"comparator", "AtLeast"}, {"value", 1}});
  EXPECT_THAT(unknown, HasSubstr("comparator: unknown comparator \"AtLeast\""));
  EXPECT_THAT(unknown, HasSubstr("GreaterThanOrEqualTo"));
  EXPECT_THAT(ParseError({{"qualification_name", "q"}, {"comparator", "greaterthan"}, {"value", 1}}),
              HasSubstr("did you mean GreaterThan?"));
}

TEST(ParseRequirementErrorTest, NameProblems) {
  EXPECT_EQ(ParseError({{"comparator", "Exists"}}), "qualifications[1]: qualification_name: required, but missing");
  EXPECT_THAT(ParseError({{"qualification_name", 5}, {"comparator", "Exists"}}),
              HasSubstr("qualifications[1]: qualification_name: expected a string, got 5"));
  EXPECT_THAT(ParseError({{"qualification_name", ""}, {"comparator", "Exists"}}),
              HasSubstr("qualifications[1]: qualification_name: qualification name is empty"));
  EXPECT_THAT(ParseError({{"qualification_name", std::string(129, 'x')}, {"comparator", "Exists"}}),
              HasSubstr("129 characters"));
}

TEST(ParseRequirementErrorTest, UnknownKeyIsNamed) {
  EXPECT_THAT(ParseError({{"qualification_name", "english"}, {"comparator", "EqualTo"}, {"valeu", 1}}),
              HasSubstr("qualifications[1] (english): unknown key \"valeu\""));
}

TEST(ParseRequirementErrorTest, NotAnObject) {
  EXPECT_THAT(ParseError(json::array({"english", "Exists"})),
              HasSubstr("qualifications[1]: expected a requirement object"));
  EXPECT_THAT(ParseError(json("english")), HasSubstr("expected a requirement object"));
}

TEST(ParseRequirementErrorTest, ProviderProblems) {
  const json base = {{"qualification_name", "q"}, {"comparator", "Exists"}};
  auto with = [&](json providers) {
    json j = base;
    j["applicable_providers"] = std::move(providers);
    return ParseError(j);
  };
  const std::string unknown = with({"mturk", "mock"});
  EXPECT_THAT(unknown, HasSubstr("qualifications[1] (q): applicable_providers[1]: expected one of local, prolific, "
                                 "mturk, mturk_sandbox, got \"mock\""));
  EXPECT_THAT(with(json::array()),
              HasSubstr("applicable_providers: expected null (all providers) or a non-empty list"));
  EXPECT_THAT(with("mturk"), HasSubstr("applicable_providers: expected"));
  EXPECT_THAT(with({1}), HasSubstr("applicable_providers[0]"));
}

// ---- ParseRequirements -------------------------------------------------------------------

TEST(ParseRequirementsTest, ParsesAList) {
  auto r = ParseRequirements(json::parse(R"([
      {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 80},
      {"qualification_name": "blocked", "comparator": "DoesNotExist", "value": null}])"),
                             "qualifications");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].qualification_name, "english");
  EXPECT_EQ((*r)[1].comparator, Comparator::kDoesNotExist);
}

TEST(ParseRequirementsTest, NullIsEmpty) {
  auto r = ParseRequirements(nullptr, "qualifications");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(ParseRequirementsTest, ErrorNamesIndexAndName) {
  auto r = ParseRequirements(json::parse(R"([
      {"qualification_name": "ok", "comparator": "Exists"},
      {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": "80"}])"),
                             "qualifications");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "qualifications[1] (english): value: GreaterThanOrEqualTo needs an integer, got \"80\"");
}

TEST(ParseRequirementsTest, NotAList) {
  auto r = ParseRequirements(json::object({{"qualification_name", "q"}}), "qualifications");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("qualifications: expected a list of requirements"));
}

// ---- ToJson ------------------------------------------------------------------------------

TEST(ToJsonTest, WritesAllFourKeys) {
  Requirement r = Make(Comparator::kIn, json::array({2, 1}));
  EXPECT_EQ(r.ToJson(), json::parse(R"({"qualification_name": "q", "comparator": "In", "value": [1, 2],
                                        "applicable_providers": null})"));
  Requirement e =
      Parsed({{"qualification_name", "b"}, {"comparator", "DoesNotExist"}, {"applicable_providers", {"mturk"}}});
  EXPECT_EQ(e.ToJson(), json::parse(R"({"qualification_name": "b", "comparator": "DoesNotExist", "value": null,
                                        "applicable_providers": ["mturk"]})"));
}

// ---- properties --------------------------------------------------------------------------

Requirement RandomRequirement() {
  Requirement r;
  r.qualification_name = "q" + std::to_string(*rc::gen::inRange(0, 1000));
  r.comparator = *rc::gen::elementOf(AllComparators());
  if (r.comparator == Comparator::kIn || r.comparator == Comparator::kNotIn) {
    auto values = *rc::gen::nonEmpty(rc::gen::container<std::vector<int64_t>>(rc::gen::arbitrary<int64_t>()));
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    r.values = values;
  } else if (r.comparator != Comparator::kExists && r.comparator != Comparator::kDoesNotExist) {
    r.value = *rc::gen::arbitrary<int64_t>();
  }
  if (*rc::gen::arbitrary<bool>()) {
    auto providers =
        *rc::gen::nonEmpty(rc::gen::container<std::vector<std::string>>(rc::gen::elementOf(KnownProviders())));
    std::vector<std::string> unique;
    for (auto& p : providers) {
      if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(p);
    }
    r.applicable_providers = unique;
  }
  return r;
}

TEST(RequirementPropertyTest, ToJsonRoundTripsThroughParse) {
  EXPECT_TRUE(rc::check("ParseRequirement(ToJson(r)) == r", [] {
    const Requirement r = RandomRequirement();
    auto back = ParseRequirement(json::parse(r.ToJson().dump()), "qualifications[0]");
    RC_ASSERT(back.ok());
    RC_ASSERT(back->qualification_name == r.qualification_name);
    RC_ASSERT(back->comparator == r.comparator);
    RC_ASSERT(back->value == r.value);
    RC_ASSERT(back->values == r.values);
    RC_ASSERT(back->applicable_providers == r.applicable_providers);
    const int64_t granted = *rc::gen::arbitrary<int64_t>();
    RC_ASSERT(Evaluate(*back, granted) == Evaluate(r, granted));
  }));
}

TEST(RequirementPropertyTest, NegatedComparatorsAreComplementsWhenGranted) {
  EXPECT_TRUE(rc::check("NotIn == !In, NotEqualTo == !EqualTo, GreaterThan == !LessThanOrEqualTo", [] {
    const auto list = *rc::gen::nonEmpty(rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(-20, 20)));
    const int64_t value = *rc::gen::inRange<int64_t>(-20, 20);
    const int64_t granted = *rc::gen::inRange<int64_t>(-25, 25);
    RC_ASSERT(Evaluate(Make(Comparator::kNotIn, list), granted) == !Evaluate(Make(Comparator::kIn, list), granted));
    RC_ASSERT(Evaluate(Make(Comparator::kIn, list), granted) ==
              (std::find(list.begin(), list.end(), granted) != list.end()));
    RC_ASSERT(Evaluate(Make(Comparator::kNotEqualTo, value), granted) ==
              !Evaluate(Make(Comparator::kEqualTo, value), granted));
    RC_ASSERT(Evaluate(Make(Comparator::kGreaterThan, value), granted) ==
              !Evaluate(Make(Comparator::kLessThanOrEqualTo, value), granted));
    RC_ASSERT(Evaluate(Make(Comparator::kGreaterThanOrEqualTo, value), granted) ==
              !Evaluate(Make(Comparator::kLessThan, value), granted));
  }));
}

}  // namespace
}  // namespace crowdgate
