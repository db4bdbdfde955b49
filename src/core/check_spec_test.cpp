#include "core/check_spec.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace crowdgate {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using Match = CheckSpec::Match;

CheckSpec Spec(const json& j) {
  auto r = ParseCheckSpec(j, "blueprint.gold_check");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : CheckSpec{};
}

std::string SpecError(const json& j) {
  auto r = ParseCheckSpec(j, "blueprint.gold_check");
  EXPECT_FALSE(r.ok()) << j.dump();
  if (r.ok()) return "";
  EXPECT_TRUE(r.status().IsInvalidArgument());
  return r.status().message();
}

CheckOutcome Outcome(const CheckSpec& spec, const json& answer, const json& submission) {
  return EvaluateCheck(spec, answer, submission).outcome;
}

constexpr CheckOutcome kPass = CheckOutcome::kPass;
constexpr CheckOutcome kFail = CheckOutcome::kFail;
constexpr CheckOutcome kError = CheckOutcome::kError;

// ---- ParseCheckSpec ------------------------------------------------------------------------

TEST(ParseCheckSpecTest, NullMeansDefaults) {
  CheckSpec s = Spec(nullptr);
  EXPECT_TRUE(s.fields.empty());
  EXPECT_EQ(s.match, Match::kExact);
  EXPECT_EQ(s.pass_fraction, 1.0);
  EXPECT_FALSE(s.IsCommand());
  EXPECT_EQ(Spec(json::object()).match, Match::kExact);
}

TEST(ParseCheckSpecTest, ParsesEveryKey) {
  CheckSpec numeric =
      Spec({{"fields", {"age", "height"}}, {"match", "numeric"}, {"tolerance", 0.5}, {"pass_fraction", 0.5}});
  EXPECT_THAT(numeric.fields, ::testing::ElementsAre("age", "height"));
  EXPECT_EQ(numeric.match, Match::kNumeric);
  EXPECT_EQ(numeric.tolerance, 0.5);
  EXPECT_EQ(numeric.pass_fraction, 0.5);

  EXPECT_EQ(Spec({{"match", "set"}, {"min_jaccard", 0.5}}).min_jaccard, 0.5);
  EXPECT_EQ(Spec({{"match", "case_insensitive"}}).match, Match::kCaseInsensitive);
  EXPECT_EQ(Spec({{"match", "regex"}}).match, Match::kRegex);
  EXPECT_EQ(Spec({{"match", "exact"}}).match, Match::kExact);

  CheckSpec command = Spec({{"command", {"python3", "check.py"}}, {"timeout_s", 2}});
  EXPECT_TRUE(command.IsCommand());
  EXPECT_THAT(command.command, ::testing::ElementsAre("python3", "check.py"));
  EXPECT_EQ(command.timeout_s, 2.0);
}

TEST(ParseCheckSpecTest, MatchNamesRoundTrip) {
  for (Match m : {Match::kExact, Match::kCaseInsensitive, Match::kNumeric, Match::kSet, Match::kRegex}) {
    EXPECT_EQ(Spec({{"match", std::string(MatchName(m))}}).match, m);
  }
}

TEST(ParseCheckSpecTest, ErrorsNameTheKey) {
  EXPECT_THAT(SpecError({{"feilds", {"a"}}}), HasSubstr("blueprint.gold_check.feilds: unknown key"));
  EXPECT_THAT(SpecError({{"match", "fuzzy"}}),
              HasSubstr("blueprint.gold_check.match: expected one of exact, case_insensitive, numeric, set, regex, "
                        "got \"fuzzy\""));
  EXPECT_THAT(SpecError({{"match", 1}}), HasSubstr("blueprint.gold_check.match:"));
  EXPECT_THAT(SpecError({{"fields", "label"}}),
              HasSubstr("blueprint.gold_check.fields: expected a non-empty list of strings, got \"label\""));
  EXPECT_THAT(SpecError({{"fields", json::array()}}), HasSubstr("blueprint.gold_check.fields:"));
  EXPECT_THAT(SpecError({{"fields", {"a", 3}}}), HasSubstr("blueprint.gold_check.fields[1]: expected a non-empty"));
  EXPECT_THAT(SpecError({{"match", "numeric"}, {"tolerance", "0.5"}}),
              HasSubstr("blueprint.gold_check.tolerance: expected a number, got \"0.5\""));
  EXPECT_THAT(SpecError({{"pass_fraction", true}}), HasSubstr("blueprint.gold_check.pass_fraction: expected a number"));
  EXPECT_THAT(SpecError(json::array({"exact"})), HasSubstr("blueprint.gold_check: expected an object"));
}

TEST(ParseCheckSpecTest, CommandMustBeNonEmptyListOfStrings) {
  EXPECT_THAT(SpecError({{"command", "python3 check.py"}}),
              HasSubstr("blueprint.gold_check.command: expected a non-empty list of strings"));
  EXPECT_THAT(SpecError({{"command", json::array()}}), HasSubstr("blueprint.gold_check.command:"));
  EXPECT_THAT(SpecError({{"command", {"python3", 1}}}), HasSubstr("blueprint.gold_check.command[1]:"));
  EXPECT_THAT(SpecError({{"command", {""}}}), HasSubstr("blueprint.gold_check.command[0]:"));
}

TEST(ParseCheckSpecTest, RangesAreValidated) {
  EXPECT_THAT(SpecError({{"pass_fraction", 0}}), HasSubstr("blueprint.gold_check.pass_fraction: must be more than 0"));
  EXPECT_THAT(SpecError({{"pass_fraction", 1.5}}), HasSubstr("pass_fraction"));
  EXPECT_EQ(Spec({{"pass_fraction", 1}}).pass_fraction, 1.0);
  EXPECT_THAT(SpecError({{"match", "set"}, {"min_jaccard", 1.1}}), HasSubstr("blueprint.gold_check.min_jaccard"));
  EXPECT_THAT(SpecError({{"match", "set"}, {"min_jaccard", -0.1}}), HasSubstr("min_jaccard"));
  EXPECT_EQ(Spec({{"match", "set"}, {"min_jaccard", 0}}).min_jaccard, 0.0);
  EXPECT_THAT(SpecError({{"match", "numeric"}, {"tolerance", -1}}), HasSubstr("blueprint.gold_check.tolerance"));
  EXPECT_THAT(SpecError({{"command", {"true"}}, {"timeout_s", 0}}), HasSubstr("blueprint.gold_check.timeout_s"));
}

TEST(ParseCheckSpecTest, OptionsThatWouldBeIgnoredAreRefused) {
  EXPECT_THAT(SpecError({{"command", {"true"}}, {"match", "exact"}}),
              HasSubstr("blueprint.gold_check.match: cannot be combined with command"));
  EXPECT_THAT(SpecError({{"command", {"true"}}, {"fields", {"a"}}}), HasSubstr("fields: cannot be combined"));
  EXPECT_THAT(SpecError({{"timeout_s", 3}}), HasSubstr("timeout_s: only applies to a command check"));
  EXPECT_THAT(SpecError({{"tolerance", 1}}), HasSubstr("tolerance: only applies to match: numeric"));
  EXPECT_THAT(SpecError({{"match", "exact"}, {"min_jaccard", 0.5}}),
              HasSubstr("min_jaccard: only applies to match: set"));
}

// ---- EvaluateCheck: exact ------------------------------------------------------------------

TEST(EvaluateCheckTest, ExactComparesEveryAnswerFieldByDefault) {
  const CheckSpec s;
  const json answer = {{"label", "positive"}, {"score", 5}};
  EXPECT_EQ(Outcome(s, answer, {{"label", "positive"}, {"score", 5}, {"comment", "extra fields are fine"}}), kPass);
  EXPECT_EQ(Outcome(s, answer, {{"label", "positive"}, {"score", 4}}), kFail);
  EXPECT_EQ(Outcome(s, answer, {{"label", "Positive"}, {"score", 5}}), kFail);
  EXPECT_EQ(Outcome(s, answer, {{"label", "positive"}}), kFail);  // missing field fails
}

TEST(EvaluateCheckTest, ExactComparesNumbersAndStringsByText) {
  const CheckSpec s;
  EXPECT_EQ(Outcome(s, {{"n", 5}}, {{"n", "5"}}), kPass);
  EXPECT_EQ(Outcome(s, {{"n", "5"}}, {{"n", 5}}), kPass);
  EXPECT_EQ(Outcome(s, {{"n", 5}}, {{"n", "5 "}}), kFail);
  EXPECT_EQ(Outcome(s, {{"n", 5}}, {{"n", 5.0}}), kPass);        // JSON numbers compare by value
  EXPECT_EQ(Outcome(s, {{"b", true}}, {{"b", "true"}}), kPass);  // HTML forms post strings
  EXPECT_EQ(Outcome(s, {{"b", true}}, {{"b", 1}}), kFail);
  EXPECT_EQ(Outcome(s, {{"a", {1, 2}}}, {{"a", {1, 2}}}), kPass);
  EXPECT_EQ(Outcome(s, {{"a", {1, 2}}}, {{"a", {2, 1}}}), kFail);
  EXPECT_EQ(Outcome(s, {{"a", nullptr}}, {{"a", "null"}}), kFail);
}

TEST(EvaluateCheckTest, CaseInsensitiveTrimsAndLowercases) {
  const CheckSpec s = Spec({{"match", "case_insensitive"}});
  EXPECT_EQ(Outcome(s, {{"label", "Positive"}}, {{"label", "  positive\n"}}), kPass);
  EXPECT_EQ(Outcome(s, {{"label", "Positive"}}, {{"label", "posi tive"}}), kFail);
  EXPECT_EQ(Outcome(s, {{"b", true}}, {{"b", "TRUE"}}), kPass);
}

TEST(EvaluateCheckTest, NumericWithTolerance) {
  const CheckSpec s = Spec({{"match", "numeric"}, {"tolerance", 0.5}});
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", 10.5}}), kPass);
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", " 9.5 "}}), kPass);
  EXPECT_EQ(Outcome(s, {{"x", "10"}}, {{"x", "+10.2"}}), kPass);
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", 10.6}}), kFail);
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", "ten"}}), kFail);
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", "10abc"}}), kFail);
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", "nan"}}), kFail);
  EXPECT_EQ(Outcome(s, {{"x", 10}}, {{"x", true}}), kFail);
  EXPECT_EQ(Outcome(Spec({{"match", "numeric"}}), {{"x", 3}}, {{"x", "3.0"}}), kPass);
}

TEST(EvaluateCheckTest, NumericAnswerThatIsNotANumberIsAnError) {
  const CheckSpec s = Spec({{"match", "numeric"}});
  CheckResult r = EvaluateCheck(s, {{"x", "many"}}, {{"x", 3}});
  EXPECT_EQ(r.outcome, kError);
  EXPECT_THAT(r.detail, HasSubstr("\"x\""));
  EXPECT_THAT(r.detail, Not(HasSubstr("many")));
}

TEST(EvaluateCheckTest, SetUsesJaccard) {
  const CheckSpec all = Spec({{"match", "set"}});
  EXPECT_EQ(Outcome(all, {{"tags", {"a", "b"}}}, {{"tags", {"b", "a"}}}), kPass);
  EXPECT_EQ(Outcome(all, {{"tags", {"a", "b"}}}, {{"tags", "b, a"}}), kPass);  // comma-separated
  EXPECT_EQ(Outcome(all, {{"tags", "a,b"}}, {{"tags", {"a", "b", "b"}}}), kPass);
  EXPECT_EQ(Outcome(all, {{"tags", {"a", "b"}}}, {{"tags", {"a"}}}), kFail);
  EXPECT_EQ(Outcome(all, {{"tags", json::array()}}, {{"tags", ""}}), kPass);  // two empty sets
  EXPECT_EQ(Outcome(all, {{"tags", json::array()}}, {{"tags", {"a"}}}), kFail);
  EXPECT_EQ(Outcome(all, {{"ids", {1, 2}}}, {{"ids", "2,1"}}), kPass);
  EXPECT_EQ(Outcome(all, {{"tags", {"a"}}}, {{"tags", 5}}), kFail);

  const CheckSpec half = Spec({{"match", "set"}, {"min_jaccard", 0.5}});
  EXPECT_EQ(Outcome(half, {{"tags", {"a", "b"}}}, {{"tags", {"a"}}}), kPass);                 // 1/2
  EXPECT_EQ(Outcome(half, {{"tags", {"a", "b"}}}, {{"tags", {"a", "c"}}}), kFail);            // 1/3
  EXPECT_EQ(Outcome(half, {{"tags", {"a", "b", "c"}}}, {{"tags", {"a", "b", "d"}}}), kPass);  // 2/4
}

TEST(EvaluateCheckTest, RegexMustMatchTheWholeValue) {
  const CheckSpec s = Spec({{"match", "regex"}});
  EXPECT_EQ(Outcome(s, {{"zip", "[0-9]{5}"}}, {{"zip", "12345"}}), kPass);
  EXPECT_EQ(Outcome(s, {{"zip", "[0-9]{5}"}}, {{"zip", "123456"}}), kFail);
  EXPECT_EQ(Outcome(s, {{"zip", "[0-9]{5}"}}, {{"zip", "x12345"}}), kFail);
  EXPECT_EQ(Outcome(s, {{"zip", "[0-9]{5}"}}, {{"zip", 12345}}), kPass);
  EXPECT_EQ(Outcome(s, {{"a", "(?:yes|y)"}}, {{"a", "y"}}), kPass);
  EXPECT_EQ(Outcome(s, {{"a", ".*"}}, {{"a", {1}}}), kFail);
}

TEST(EvaluateCheckTest, InvalidRegexIsAnError) {
  CheckResult r = EvaluateCheck(Spec({{"match", "regex"}}), {{"zip", "[0-9"}}, {{"zip", "1"}});
  EXPECT_EQ(r.outcome, kError);
  EXPECT_THAT(r.detail, HasSubstr("\"zip\""));
  EXPECT_THAT(r.detail, HasSubstr("not a valid regex"));
  EXPECT_THAT(r.detail, Not(HasSubstr("[0-9")));
}

TEST(EvaluateCheckTest, OverlongRegexInputFailsInsteadOfCrashing) {
  const CheckSpec s = Spec({{"match", "regex"}});
  EXPECT_EQ(Outcome(s, {{"t", "(a|b)*"}}, {{"t", std::string(4096, 'a')}}), kPass);
  EXPECT_EQ(Outcome(s, {{"t", "(a|b)*"}}, {{"t", std::string(1 << 20, 'a')}}), kFail);
}

TEST(EvaluateCheckTest, PassFraction) {
  const CheckSpec half = Spec({{"pass_fraction", 0.5}});
  const json answer = {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}};
  EXPECT_EQ(Outcome(half, answer, {{"a", 1}, {"b", 2}, {"c", 0}, {"d", 0}}), kPass);
  EXPECT_EQ(Outcome(half, answer, {{"a", 1}, {"b", 0}, {"c", 0}, {"d", 0}}), kFail);
  const CheckSpec two_thirds = Spec({{"pass_fraction", 2.0 / 3.0}});
  EXPECT_EQ(Outcome(two_thirds, {{"a", 1}, {"b", 2}, {"c", 3}}, {{"a", 1}, {"b", 2}}), kPass);
  EXPECT_EQ(Outcome(two_thirds, {{"a", 1}, {"b", 2}, {"c", 3}}, {{"a", 1}}), kFail);
}

TEST(EvaluateCheckTest, FieldsRestrictTheComparison) {
  const CheckSpec s = Spec({{"fields", {"label"}}});
  EXPECT_EQ(Outcome(s, {{"label", "pos"}, {"rationale", "long text"}}, {{"label", "pos"}}), kPass);
  CheckResult missing = EvaluateCheck(Spec({{"fields", {"nope"}}}), {{"label", "pos"}}, {{"nope", 1}});
  EXPECT_EQ(missing.outcome, kError);
  EXPECT_THAT(missing.detail, HasSubstr("\"nope\" is not in the answer"));
}

TEST(EvaluateCheckTest, DetailNamesFailedFieldsButNeverValues) {
  const json answer = {{"label", "secret-positive"}, {"score", 97531}, {"tags", {"hidden-tag"}}};
  CheckResult r = EvaluateCheck(CheckSpec{}, answer, {{"label", "negative"}, {"tags", {"hidden-tag"}}});
  EXPECT_EQ(r.outcome, kFail);
  EXPECT_THAT(r.detail, HasSubstr("1 of 3 fields match"));
  EXPECT_THAT(r.detail, HasSubstr("\"label\""));
  EXPECT_THAT(r.detail, HasSubstr("\"score\" (missing)"));
  EXPECT_THAT(r.detail, Not(HasSubstr("\"tags\"")));
  for (const char* secret : {"secret-positive", "97531", "hidden-tag", "negative"}) {
    EXPECT_THAT(r.detail, Not(HasSubstr(secret)));
  }
}

TEST(EvaluateCheckTest, BadShapes) {
  EXPECT_EQ(Outcome(CheckSpec{}, json::array({1}), {{"a", 1}}), kError);
  EXPECT_EQ(Outcome(CheckSpec{}, json::object(), {{"a", 1}}), kError);  // nothing to check must not pass
  EXPECT_EQ(Outcome(CheckSpec{}, {{"a", 1}}, "not an object"), kFail);
  EXPECT_EQ(Outcome(CheckSpec{}, {{"a", 1}}, nullptr), kFail);
}

TEST(EvaluateCheckTest, CommandSpecsAreRefused) {
  CheckResult r = EvaluateCheck(Spec({{"command", {"true"}}}), {{"a", 1}}, {{"a", 1}});
  EXPECT_EQ(r.outcome, kError);
  EXPECT_EQ(r.detail, "command checks run in the engine");
}

TEST(CheckOutcomeTest, Names) {
  EXPECT_EQ(CheckOutcomeName(kPass), "pass");
  EXPECT_EQ(CheckOutcomeName(kFail), "fail");
  EXPECT_EQ(CheckOutcomeName(kError), "error");
}

}  // namespace
}  // namespace crowdgate
