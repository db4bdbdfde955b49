#include "core/gold_schedule.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace crowdgate {
namespace {

using ::testing::HasSubstr;

// Mephisto's computed schedule (its documented gold-unit table).
TEST(MephistoGoldTargetTest, MatchesReferenceTable) {
  const std::pair<int64_t, int64_t> rows[] = {{0, -1},  {1, 0},   {5, 0},   {10, 1},    {20, 1},    {50, 3},
                                              {100, 4}, {200, 6}, {500, 8}, {1000, 11}, {10000, 21}};
  for (const auto& [u, target] : rows) EXPECT_EQ(MephistoGoldTarget(u), target) << "u=" << u;
}

TEST(MephistoGoldTargetTest, NineIsExactlyZero) {
  // log10(10) = 1 exactly, so ceil(1^2.2) - 1 = 0; the second gold is due at u = 10, not 9.
  EXPECT_EQ(MephistoGoldTarget(9), 0);
  EXPECT_EQ(MephistoGoldTarget(10), 1);
}

// Mephisto's schedule: "target >= k first happens at units_completed = 10, 23, 44, ..." for k = 1..22.
TEST(MephistoGoldTargetTest, FirstUnitCountReachingEachTarget) {
  const std::vector<int64_t> first_u = {10,   23,   44,   75,   119,  181,  264,  374,  518,  704,  942,
                                        1241, 1617, 2083, 2657, 3360, 4215, 5251, 6499, 7994, 9779, 11901};
  for (size_t i = 0; i < first_u.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i) + 1;
    EXPECT_GE(MephistoGoldTarget(first_u[i]), k) << "k=" << k;
    EXPECT_LT(MephistoGoldTarget(first_u[i] - 1), k) << "k=" << k;
  }
}

TEST(MephistoGoldTargetTest, NonDecreasingAndDefinedEverywhere) {
  int64_t previous = MephistoGoldTarget(0);
  for (int64_t u = 1; u <= 20000; ++u) {
    const int64_t t = MephistoGoldTarget(u);
    ASSERT_GE(t, previous) << "u=" << u;
    ASSERT_LE(t, previous + 1) << "u=" << u;
    previous = t;
  }
  EXPECT_EQ(MephistoGoldTarget(-5), -1);
  EXPECT_GT(MephistoGoldTarget(std::numeric_limits<int64_t>::max()), 600);
}

TEST(WorkerNeedsGoldTest, MephistoRule) {
  const GoldSchedule s;                        // mephisto, min_golds = 1
  EXPECT_TRUE(WorkerNeedsGold(s, {0, 0, 0}));  // first unit is always gold
  EXPECT_FALSE(WorkerNeedsGold(s, {0, 1, 0}));
  EXPECT_FALSE(WorkerNeedsGold(s, {9, 1, 0}));
  EXPECT_TRUE(WorkerNeedsGold(s, {10, 1, 0}));  // target 1, excess 0
  EXPECT_FALSE(WorkerNeedsGold(s, {10, 2, 0}));
  EXPECT_TRUE(WorkerNeedsGold(s, {100, 4, 0}));  // needs 5 at u = 100
  EXPECT_FALSE(WorkerNeedsGold(s, {100, 5, 0}));
}

TEST(WorkerNeedsGoldTest, EachWrongGoldRaisesTheBarByOne) {
  const GoldSchedule s;
  EXPECT_TRUE(WorkerNeedsGold(s, {1, 1, 1}));
  EXPECT_FALSE(WorkerNeedsGold(s, {1, 2, 1}));
  EXPECT_TRUE(WorkerNeedsGold(s, {1, 2, 2}));
  // As in Mephisto, at u = 0 the target is -1, which absorbs one wrong gold.
  EXPECT_FALSE(WorkerNeedsGold(s, {0, 1, 1}));
  EXPECT_TRUE(WorkerNeedsGold(s, {10, 2, 1}));
  EXPECT_FALSE(WorkerNeedsGold(s, {10, 3, 1}));
}

TEST(WorkerNeedsGoldTest, MinGoldsWarmUp) {
  GoldSchedule s;
  s.min_golds = 3;
  EXPECT_TRUE(WorkerNeedsGold(s, {0, 2, 0}));
  EXPECT_TRUE(WorkerNeedsGold(s, {5, 2, 0}));
  EXPECT_FALSE(WorkerNeedsGold(s, {5, 3, 0}));
  s.min_golds = 0;
  EXPECT_FALSE(WorkerNeedsGold(s, {0, 0, 0}));
  EXPECT_TRUE(WorkerNeedsGold(s, {10, 0, 0}));
}

TEST(WorkerNeedsGoldTest, FixedRate) {
  GoldSchedule s;
  s.kind = GoldScheduleKind::kFixedRate;
  s.min_golds = 1;
  s.gold_rate = 0.1;
  EXPECT_TRUE(WorkerNeedsGold(s, {0, 0, 0}));
  EXPECT_FALSE(WorkerNeedsGold(s, {9, 1, 0}));   // due: 1 + floor(0.9) = 1
  EXPECT_TRUE(WorkerNeedsGold(s, {10, 1, 0}));   // due: 1 + 1 = 2
  EXPECT_FALSE(WorkerNeedsGold(s, {10, 1, 1}));  // wrong golds count as golds served
  EXPECT_TRUE(WorkerNeedsGold(s, {10, 0, 5}));   // but min_golds needs correct ones
  EXPECT_FALSE(WorkerNeedsGold(s, {19, 2, 0}));
  EXPECT_TRUE(WorkerNeedsGold(s, {20, 2, 0}));
}

TEST(WorkerNeedsGoldTest, FixedRateIsImmuneToBinaryRounding) {
  GoldSchedule s;
  s.kind = GoldScheduleKind::kFixedRate;
  s.min_golds = 0;
  s.gold_rate = 0.29;  // 0.29 * 100 == 28.999999999999996 in doubles
  EXPECT_TRUE(WorkerNeedsGold(s, {100, 28, 0}));
  EXPECT_FALSE(WorkerNeedsGold(s, {100, 29, 0}));
  s.gold_rate = 0;
  EXPECT_FALSE(WorkerNeedsGold(s, {1000000, 0, 0}));
}

struct Served {
  int64_t golds = 0;
  std::vector<int64_t> gold_at_u;
};

// A steady, always-correct worker: before each assignment, serve a gold if needed, else a real unit.
Served Simulate(const GoldSchedule& s, int64_t real_units) {
  GoldCounts counts;
  Served served;
  while (counts.completed < real_units) {
    if (WorkerNeedsGold(s, counts)) {
      ++counts.correct;
      ++served.golds;
      served.gold_at_u.push_back(counts.completed);
    } else {
      ++counts.completed;
    }
  }
  return served;
}

TEST(GoldSimulationTest, SteadyCorrectWorkerOverOneHundredUnits) {
  const Served served = Simulate(GoldSchedule{}, 100);
  // 1 (the first unit) + the k whose first-u <= 100 in the reference list (10, 23, 44, 75).
  EXPECT_EQ(served.golds, 5);
  EXPECT_THAT(served.gold_at_u, ::testing::ElementsAre(0, 10, 23, 44, 75));
}

TEST(GoldSimulationTest, SharesMatchTheDocumentedRates) {
  // "about one gold in the first 10 units, ~5% at 100, ~1% at 1000".
  EXPECT_EQ(Simulate(GoldSchedule{}, 10).golds, 1);
  // The loop asks at u = 0..N-1: 1 + the k whose first-u < N (942 is k = 11, 9779 is k = 21).
  EXPECT_EQ(Simulate(GoldSchedule{}, 1000).golds, 12);
  EXPECT_EQ(Simulate(GoldSchedule{}, 10000).golds, 22);
}

TEST(GoldSimulationTest, FixedRateServesTheRate) {
  GoldSchedule s;
  s.kind = GoldScheduleKind::kFixedRate;
  s.gold_rate = 0.05;
  EXPECT_EQ(Simulate(s, 100).golds, 1 + 4);  // 1 warm-up + golds due at u = 20, 40, 60, 80 (100 is never asked)
}

TEST(WorkerQualifiesTest, Strikes) {
  GoldPolicy p;  // strikes, max_incorrect_golds = 0
  EXPECT_TRUE(WorkerQualifies(p, {50, 5, 0}, {}));
  EXPECT_FALSE(WorkerQualifies(p, {50, 5, 1}, {}));
  p.max_incorrect_golds = 2;
  EXPECT_TRUE(WorkerQualifies(p, {50, 5, 2}, {}));
  EXPECT_FALSE(WorkerQualifies(p, {50, 5, 3}, {}));
}

TEST(WorkerQualifiesTest, MinAccuracyWaitsForAFullWindow) {
  GoldPolicy p;
  p.kind = GoldPolicyKind::kMinAccuracy;
  p.gold_window = 4;
  p.min_gold_accuracy = 0.75;
  EXPECT_TRUE(WorkerQualifies(p, {0, 0, 3}, {false, false, false}));
  EXPECT_FALSE(WorkerQualifies(p, {0, 0, 4}, {false, false, false, false}));
  EXPECT_TRUE(WorkerQualifies(p, {0, 3, 1}, {true, false, true, true}));  // exactly 0.75
  EXPECT_FALSE(WorkerQualifies(p, {0, 2, 2}, {true, false, true, false}));
}

TEST(WorkerQualifiesTest, MinAccuracyLooksOnlyAtTheLastWindow) {
  GoldPolicy p;
  p.kind = GoldPolicyKind::kMinAccuracy;
  p.gold_window = 3;
  p.min_gold_accuracy = 0.6;
  // Early mistakes age out; recent ones count.
  EXPECT_TRUE(WorkerQualifies(p, {}, {false, false, false, true, true, false}));
  EXPECT_FALSE(WorkerQualifies(p, {}, {true, true, true, true, false, false}));
}

TEST(WorkerQualifiesTest, MinAccuracyBoundaryIsNotLostToRounding) {
  GoldPolicy p;
  p.kind = GoldPolicyKind::kMinAccuracy;
  p.gold_window = 10;
  p.min_gold_accuracy = 0.7;
  std::vector<bool> seven_of_ten = {true, true, true, true, true, true, true, false, false, false};
  EXPECT_TRUE(WorkerQualifies(p, {}, seven_of_ten));
  seven_of_ten[0] = false;
  EXPECT_FALSE(WorkerQualifies(p, {}, seven_of_ten));
}

TEST(WorkerQualifiesTest, InvalidWindowFailsClosed) {
  GoldPolicy p;
  p.kind = GoldPolicyKind::kMinAccuracy;
  p.gold_window = 0;
  EXPECT_FALSE(WorkerQualifies(p, {}, {true}));
}

TEST(GoldConfigTest, ParseAndNameKinds) {
  EXPECT_EQ(*ParseGoldScheduleKind("mephisto"), GoldScheduleKind::kMephisto);
  EXPECT_EQ(*ParseGoldScheduleKind("fixed_rate"), GoldScheduleKind::kFixedRate);
  EXPECT_EQ(*ParseGoldPolicyKind("strikes"), GoldPolicyKind::kStrikes);
  EXPECT_EQ(*ParseGoldPolicyKind("min_accuracy"), GoldPolicyKind::kMinAccuracy);
  for (auto k : {GoldScheduleKind::kMephisto, GoldScheduleKind::kFixedRate}) {
    EXPECT_EQ(*ParseGoldScheduleKind(GoldScheduleKindName(k)), k);
  }
  for (auto k : {GoldPolicyKind::kStrikes, GoldPolicyKind::kMinAccuracy}) {
    EXPECT_EQ(*ParseGoldPolicyKind(GoldPolicyKindName(k)), k);
  }
  auto bad = ParseGoldScheduleKind("Mephisto");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_THAT(bad.status().message(), HasSubstr("gold_schedule"));
  EXPECT_THAT(bad.status().message(), HasSubstr("mephisto or fixed_rate"));
  auto bad_policy = ParseGoldPolicyKind("accuracy");
  ASSERT_FALSE(bad_policy.ok());
  EXPECT_THAT(bad_policy.status().message(), HasSubstr("strikes or min_accuracy"));
}

TEST(GoldConfigTest, Validation) {
  EXPECT_TRUE(ValidateGoldSchedule(GoldSchedule{}).ok());
  EXPECT_TRUE(ValidateGoldPolicy(GoldPolicy{}).ok());
  EXPECT_THAT(ValidateGoldSchedule({GoldScheduleKind::kMephisto, -1, 0.05}).message(), HasSubstr("min_golds"));
  EXPECT_THAT(ValidateGoldSchedule({GoldScheduleKind::kFixedRate, 1, 1.5}).message(), HasSubstr("gold_rate"));
  EXPECT_THAT(ValidateGoldSchedule({GoldScheduleKind::kFixedRate, 1, std::nan("")}).message(), HasSubstr("gold_rate"));
  EXPECT_THAT(ValidateGoldPolicy({GoldPolicyKind::kStrikes, -1, 0.8, 10}).message(), HasSubstr("max_incorrect_golds"));
  EXPECT_THAT(ValidateGoldPolicy({GoldPolicyKind::kMinAccuracy, 0, 1.2, 10}).message(), HasSubstr("min_gold_accuracy"));
  EXPECT_THAT(ValidateGoldPolicy({GoldPolicyKind::kMinAccuracy, 0, 0.8, 0}).message(), HasSubstr("gold_window"));
}

}  // namespace
}  // namespace crowdgate
