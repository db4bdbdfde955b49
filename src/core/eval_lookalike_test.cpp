#include "core/eval_lookalike.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace crowdgate {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Units {"id": "<prefix>NNN", "text": "sentence N ..."}.
std::vector<json> Units(const std::string& prefix, int n, int first = 1) {
  std::vector<json> out;
  for (int i = first; i < first + n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "%s%03d", prefix.c_str(), i);
    out.push_back({{"id", id}, {"text", "sentence number " + std::to_string(i) + " of the batch"}});
  }
  return out;
}

EvalSetToCheck Golds(const std::vector<json>& inputs) {
  EvalSetToCheck set{"blueprint.gold_file", "golds.jsonl", {}};
  for (const json& in : inputs) set.items.push_back(EvalItem{in, {{"label", "pos"}}});
  return set;
}

TEST(EvalLookalikeTest, GoldsLikeTheUnitsPass) {
  // Golds numbered in among the units' own scheme: s007, s019, s033 are not units.
  std::vector<json> units, golds;
  for (const json& u : Units("s", 40)) {
    const std::string id = u["id"];
    (id == "s007" || id == "s019" || id == "s033" ? golds : units).push_back(u);
  }
  const auto findings = CheckEvalLookalike(units, {Golds(golds)});
  EXPECT_TRUE(findings.error.ok()) << findings.error.ToString();
  EXPECT_THAT(findings.warnings, IsEmpty());
}

TEST(EvalLookalikeTest, MissingFieldIsAnErrorNamingFileAndField) {
  std::vector<json> golds = Units("s", 3, 41);
  golds[1].erase("id");
  const auto findings = CheckEvalLookalike(Units("s", 40), {Golds(golds)});
  ASSERT_TRUE(findings.error.IsInvalidArgument());
  EXPECT_THAT(findings.error.message(),
              AllOf(HasSubstr("blueprint.gold_file (golds.jsonl)"), HasSubstr("field \"id\""), HasSubstr("item 2")));
}

TEST(EvalLookalikeTest, ExtraFieldIsAnError) {
  std::vector<json> golds = Units("s", 3, 41);
  golds[0]["is_gold"] = true;
  EvalSetToCheck screening = Golds(golds);
  screening.key = "blueprint.screening_file";
  screening.path = "screen.jsonl";
  const auto findings = CheckEvalLookalike(Units("s", 40), {screening});
  ASSERT_TRUE(findings.error.IsInvalidArgument());
  EXPECT_THAT(findings.error.message(),
              AllOf(HasSubstr("blueprint.screening_file (screen.jsonl)"), HasSubstr("field \"is_gold\""),
                    HasSubstr("no unit")));
}

TEST(EvalLookalikeTest, AFieldOnlySomeUnitsHaveMayBeAbsent) {
  std::vector<json> units = Units("s", 40);
  units[3]["note"] = "sometimes there";
  const auto findings = CheckEvalLookalike(units, {Golds(Units("s", 3, 41))});
  EXPECT_TRUE(findings.error.ok()) << findings.error.ToString();
}

TEST(EvalLookalikeTest, GoldsNumberedAfterEveryUnitWarn) {
  // s041.. after units s001..s040: "s04" gives them away.
  const auto findings = CheckEvalLookalike(Units("s", 40), {Golds(Units("s", 5, 41))});
  EXPECT_THAT(findings.warnings, Contains(AllOf(HasSubstr("field \"id\""), HasSubstr("\"s04\""))));
}

TEST(EvalLookalikeTest, DifferentPrefixWarns) {
  const auto findings = CheckEvalLookalike(Units("s", 40), {Golds(Units("g", 5))});
  EXPECT_TRUE(findings.error.ok());
  ASSERT_EQ(findings.warnings.size(), 1u);
  EXPECT_THAT(findings.warnings[0], AllOf(HasSubstr("blueprint.gold_file (golds.jsonl)"), HasSubstr("field \"id\""),
                                          HasSubstr("\"g00\""), HasSubstr("only 0%")));
}

TEST(EvalLookalikeTest, NoWarningWhenUnitsShareThePrefixToo) {
  // Golds item-007, item-023, item-041, item-052 among units item-001..item-060: the shared
  // "item-0" is no giveaway.
  std::vector<json> units, golds;
  for (const json& u : Units("item-", 60)) {
    const std::string id = u["id"];
    (id == "item-007" || id == "item-023" || id == "item-041" || id == "item-052" ? golds : units).push_back(u);
  }
  const auto findings = CheckEvalLookalike(units, {Golds(golds)});
  EXPECT_TRUE(findings.error.ok());
  EXPECT_THAT(findings.warnings, IsEmpty());
}

TEST(EvalLookalikeTest, TwoGoldsSharingADigitByChanceDoNotWarn) {
  // s013 and s017 share "s01", which 10 of 100 units share too.
  const auto findings = CheckEvalLookalike(Units("s", 100), {Golds({Units("s", 1, 13)[0], Units("s", 1, 17)[0]})});
  EXPECT_THAT(findings.warnings, IsEmpty());
}

TEST(EvalLookalikeTest, NumberVersusTextWarns) {
  std::vector<json> units;
  for (int i = 0; i < 20; ++i) units.push_back({{"price", std::to_string(10 + i)}});
  const auto strings = CheckEvalLookalike(units, {Golds({{{"price", "cheap"}}, {{"price", "12"}}})});
  ASSERT_EQ(strings.warnings.size(), 1u);
  EXPECT_THAT(strings.warnings[0], AllOf(HasSubstr("field \"price\""), HasSubstr("\"cheap\"")));
  const auto types = CheckEvalLookalike(units, {Golds({{{"price", 12}}})});
  ASSERT_EQ(types.warnings.size(), 1u);
  EXPECT_THAT(types.warnings[0], AllOf(HasSubstr("string values"), HasSubstr("number")));
}

TEST(EvalLookalikeTest, LengthsOutsideTheUnitsRangeWarn) {
  std::vector<json> units;
  for (int i = 0; i < 20; ++i) units.push_back({{"text", "a fairly long sentence about item " + std::to_string(i)}});
  const auto findings = CheckEvalLookalike(units, {Golds({{{"text", "short"}}, {{"text", "tiny"}}})});
  ASSERT_EQ(findings.warnings.size(), 1u);
  EXPECT_THAT(findings.warnings[0], AllOf(HasSubstr("shorter"), HasSubstr("field \"text\"")));
}

TEST(EvalLookalikeTest, StreamingEqualsInMemory) {
  EvalLookalikeCheck check({Golds(Units("g", 5))});
  for (const json& u : Units("s", 40)) check.AddRealItem(u);
  EXPECT_EQ(check.Finish().warnings, CheckEvalLookalike(Units("s", 40), {Golds(Units("g", 5))}).warnings);
}

}  // namespace
}  // namespace crowdgate
