#include "core/quality_rules.hpp"

#include <gtest/gtest.h>

namespace crowdgate {
namespace {

using nlohmann::json;

QualityRule Fast(double min_seconds, int64_t count, int64_t window) {
  QualityRule r;
  r.kind = QualityRuleKind::kFastSubmissions;
  r.min_seconds = min_seconds;
  r.count = count;
  r.window = window;
  return r;
}

TEST(QualityDurationTest, ParsesUnitsAndRefusesTheRest) {
  EXPECT_EQ(*ParseDuration("90s"), 90);
  EXPECT_EQ(*ParseDuration("30m"), 1800);
  EXPECT_EQ(*ParseDuration("12h"), 43200);
  EXPECT_EQ(*ParseDuration("1d"), 86400);
  EXPECT_EQ(*ParseDuration("2w"), 14 * 86400);
  for (const char* bad : {"", "d", "1", "0d", "-1d", "1.5d", "1y", "d1"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatDuration(86400), "1d");
  EXPECT_EQ(FormatDuration(5400), "90m");
  EXPECT_EQ(FormatDuration(61), "61s");
}

TEST(QualityRulesParseTest, RoundTripsEveryRuleAndAction) {
  json list = json::parse(R"([
    {"rule": "fast_submissions", "min_seconds": 3, "count": 3, "window": 10, "action": {"block": "1d"}},
    {"rule": "majority_agreement", "min_agreement": 0.5, "window": 20, "min_overlap": 5, "action": "disqualify"},
    {"rule": "returned_units", "count": 4, "window": 10, "action": {"block": "12h"}},
    {"rule": "fast_submissions", "min_seconds": 1.5, "count": 1, "window": 1, "action": "reject_units"}
  ])");
  auto rules = ParseQualityRules(list, "quality_rules");
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_EQ(rules->size(), 4u);
  EXPECT_EQ((*rules)[0].block_seconds, 86400);
  EXPECT_EQ((*rules)[1].action, QualityActionKind::kDisqualify);
  EXPECT_EQ((*rules)[1].min_overlap, 5);
  EXPECT_EQ((*rules)[2].kind, QualityRuleKind::kReturnedUnits);
  EXPECT_EQ((*rules)[3].action, QualityActionKind::kRejectUnits);
  EXPECT_EQ(QualityRulesToJson(*rules), list);
}

TEST(QualityRulesParseTest, ErrorsNameTheKey) {
  auto msg = [](const char* text) {
    auto r = ParseQualityRules(json::parse(text), "quality_rules");
    EXPECT_FALSE(r.ok()) << text;
    return r.status().message();
  };
  EXPECT_NE(msg(R"([{"rule": "fast_submissions", "min_seconds": 3, "count": 3, "window": 10, "action": "disqualify"},
                    {"rule": "returned_units", "count": 2, "window": 0, "action": "disqualify"}])")
                .find("quality_rules[1].window: expected int >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "fast", "action": "disqualify"}])").find("quality_rules[0].rule: expected one of"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "returned_units", "count": 2, "window": 5, "action": {"block": "1y"}}])")
                .find("quality_rules[0].action.block: expected a duration"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "returned_units", "count": 2, "window": 5, "action": "block"}])")
                .find("quality_rules[0].action: block needs a duration"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "returned_units", "count": 6, "window": 5, "action": "disqualify"}])")
                .find("quality_rules[0].count: must be at most window (5)"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "returned_units", "count": 2, "window": 5, "action": "reject_units"}])")
                .find("quality_rules[0].action: reject_units needs submitted units"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "majority_agreement", "min_agreement": 1.5, "window": 5, "action": "disqualify"}])")
                .find("quality_rules[0].min_agreement: expected number in (0, 1]"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "fast_submissions", "min_seconds": 3, "count": 1, "window": 5, "action": "disqualify",
                     "windw": 3}])")
                .find("quality_rules[0].windw: unknown key"),
            std::string::npos);
  EXPECT_NE(msg(R"([{"rule": "fast_submissions", "count": 1, "window": 5, "action": "disqualify"}])")
                .find("quality_rules[0].min_seconds: missing"),
            std::string::npos);
}

TEST(QualityWindowsTest, FastSubmissionsFiresExactlyAtCountAndOncePerCrossing) {
  std::vector<QualityRule> rules{Fast(3, 3, 10)};
  WorkerQualityWindows w;
  EXPECT_TRUE(w.OnSubmit(rules, 1, 2.9, std::nullopt).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 2, 3.0, std::nullopt).empty());  // exactly min_seconds is not fast
  EXPECT_TRUE(w.OnSubmit(rules, 3, 0.5, std::nullopt).empty());  // 2 fast
  auto fired = w.OnSubmit(rules, 4, 1.0, std::nullopt);          // 3 fast of 4
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason, "fast_submissions: 3 of the last 4 units under 3 s");
  EXPECT_EQ(fired[0].unit_ids, (std::vector<int64_t>{1, 3, 4}));
  // The window starts afresh: two more fast units do not fire again, the third does.
  EXPECT_TRUE(w.OnSubmit(rules, 5, 0.1, std::nullopt).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 6, 0.1, std::nullopt).empty());
  EXPECT_EQ(w.OnSubmit(rules, 7, 0.1, std::nullopt).size(), 1u);
}

TEST(QualityWindowsTest, FastUnitsOutsideTheWindowDoNotCount) {
  std::vector<QualityRule> rules{Fast(3, 2, 3)};
  WorkerQualityWindows w;
  EXPECT_TRUE(w.OnSubmit(rules, 1, 1, std::nullopt).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 2, 10, std::nullopt).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 3, 10, std::nullopt).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 4, 1, std::nullopt).empty());  // unit 1 left the window of 3
  auto fired = w.OnSubmit(rules, 5, 1, std::nullopt);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason, "fast_submissions: 2 of the last 3 units under 3 s");
}

TEST(QualityWindowsTest, MajorityAgreementWaitsForOverlapAndFiresBelowTheLine) {
  QualityRule r;
  r.kind = QualityRuleKind::kMajorityAgreement;
  r.min_agreement = 0.5;
  r.window = 4;
  r.min_overlap = 3;
  std::vector<QualityRule> rules{r};
  WorkerQualityWindows w;
  EXPECT_TRUE(w.OnSubmit(rules, 1, 10, 0.0).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 2, 10, std::nullopt).empty());  // no overlap: not counted
  EXPECT_TRUE(w.OnSubmit(rules, 3, 10, 0.0).empty());            // 2 overlapping < min_overlap
  auto fired = w.OnSubmit(rules, 4, 10, 1.0);                     // 3 overlapping, mean 1/3
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].unit_ids, (std::vector<int64_t>{1, 3}));
}

TEST(QualityWindowsTest, MajorityAgreementBoundary) {
  QualityRule r;
  r.kind = QualityRuleKind::kMajorityAgreement;
  r.min_agreement = 0.5;
  r.window = 4;
  r.min_overlap = 2;
  std::vector<QualityRule> rules{r};
  WorkerQualityWindows w;
  EXPECT_TRUE(w.OnSubmit(rules, 1, 10, 1.0).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 2, 10, 0.0).empty());  // mean 0.5: not below
  auto fired = w.OnSubmit(rules, 3, 10, 0.0);          // mean 0.33
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason, "majority_agreement: agreement 0.33 over the last 3 overlapping units, below 0.5");
  EXPECT_EQ(fired[0].unit_ids, (std::vector<int64_t>{2, 3}));
}

TEST(QualityWindowsTest, ReturnedUnitsCountsReturnsAmongEndedUnits) {
  QualityRule r;
  r.kind = QualityRuleKind::kReturnedUnits;
  r.count = 2;
  r.window = 3;
  std::vector<QualityRule> rules{r};
  WorkerQualityWindows w;
  EXPECT_TRUE(w.OnReturn(rules).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 1, 10, std::nullopt).empty());
  EXPECT_TRUE(w.OnSubmit(rules, 2, 10, std::nullopt).empty());
  EXPECT_TRUE(w.OnReturn(rules).empty());  // the first return left the window of 3
  auto fired = w.OnReturn(rules);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].reason, "returned_units: 2 of the last 3 units returned or expired");
  EXPECT_TRUE(w.OnReturn(rules).empty());  // afresh
}

}  // namespace
}  // namespace crowdgate
