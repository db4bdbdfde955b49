// gold_placement: random moves each due gold to a hashed point of its schedule window, and
// must serve exactly as many golds as Mephisto's positions by the end of every window.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/gold_schedule.hpp"

namespace crowdgate {
namespace {

// WorkerNeedsGold as it was before placements existed (Mephisto's positions).
bool ReferenceNeedsGold(const GoldSchedule& s, const GoldCounts& k) {
  const __int128 c = k.correct, w = k.wrong, m = s.min_golds;
  if (c < m) return true;
  if (s.kind == GoldScheduleKind::kMephisto) return c - (m + w) < MephistoGoldTarget(k.completed);
  const double due = std::floor(s.gold_rate * static_cast<double>(k.completed) + 1e-9);
  return static_cast<long double>(c + w) < static_cast<long double>(m) + due;
}

GoldSchedule RandomSchedule() {
  GoldSchedule s;
  s.kind = *rc::gen::element(GoldScheduleKind::kMephisto, GoldScheduleKind::kFixedRate);
  s.min_golds = *rc::gen::inRange<int64_t>(0, 4);
  s.gold_rate = *rc::gen::element(0.01, 0.05, 0.1, 0.29, 0.5, 1.0);
  return s;
}

// A worker whose i-th gold is answered answers[i] (then always right), doing `real_units`
// real units. Returns, for every u in [0, real_units], the golds served before the first
// assignment made at that u (i.e. by the end of the units before it), and the u of each gold.
struct Trace {
  std::vector<int64_t> golds_before_u;
  std::vector<int64_t> gold_at_u;
};

Trace Simulate(const GoldSchedule& s, uint64_t seed, const std::vector<bool>& answers, int64_t real_units) {
  GoldCounts k;
  Trace t;
  int64_t golds = 0;
  t.golds_before_u.push_back(0);
  while (k.completed < real_units) {
    if (WorkerNeedsGold(s, k, seed)) {
      const bool right = static_cast<size_t>(golds) < answers.size() ? answers[static_cast<size_t>(golds)] : true;
      (right ? k.correct : k.wrong) += 1;
      t.gold_at_u.push_back(k.completed);
      ++golds;
      if (golds > 100000) break;  // cannot happen: answers end, then every gold is right
      continue;
    }
    ++k.completed;
    t.golds_before_u.push_back(golds);
  }
  return t;
}

TEST(GoldPlacementTest, ExactIsTheOldFunction) {
  EXPECT_TRUE(rc::check("exact == reference for any counts and seed", [] {
    GoldSchedule s = RandomSchedule();
    s.placement = GoldPlacement::kExact;
    GoldCounts k;
    k.completed = *rc::gen::inRange<int64_t>(0, 2000000);
    k.correct = *rc::gen::inRange<int64_t>(0, 200);
    k.wrong = *rc::gen::inRange<int64_t>(0, 50);
    const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
    RC_ASSERT(WorkerNeedsGold(s, k, seed) == ReferenceNeedsGold(s, k));
  }));
}

TEST(GoldPlacementTest, RandomServesAsManyGoldsAsExactByEveryWindowEnd) {
  EXPECT_TRUE(rc::check("golds served at each window boundary are equal", [] {
    GoldSchedule s = RandomSchedule();
    const auto answers = *rc::gen::container<std::vector<bool>>(*rc::gen::inRange<size_t>(0, 6),
                                                                 rc::gen::arbitrary<bool>());
    const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
    const int64_t units = *rc::gen::inRange<int64_t>(1, 1500);
    s.placement = GoldPlacement::kExact;
    const Trace exact = Simulate(s, seed, answers, units);
    s.placement = GoldPlacement::kRandom;
    const Trace random = Simulate(s, seed, answers, units);
    RC_ASSERT(random.golds_before_u.size() == exact.golds_before_u.size());
    // Window boundaries: every u where the level rises (plus the last u simulated).
    for (int64_t u = 1; u <= units; ++u) {
      const bool boundary = GoldScheduleLevel(s, u) != GoldScheduleLevel(s, u - 1);
      if (!boundary) continue;
      RC_ASSERT(random.golds_before_u[static_cast<size_t>(u)] == exact.golds_before_u[static_cast<size_t>(u)]);
    }
    // Inside a window, never ahead of Mephisto's count.
    for (size_t u = 0; u < exact.golds_before_u.size(); ++u) {
      RC_ASSERT(random.golds_before_u[u] <= exact.golds_before_u[u]);
    }
  }));
}

TEST(GoldPlacementTest, MinGoldsStayAtTheStart) {
  EXPECT_TRUE(rc::check("the warm-up golds come before any real unit", [] {
    GoldSchedule s = RandomSchedule();
    s.placement = GoldPlacement::kRandom;
    const Trace t = Simulate(s, *rc::gen::arbitrary<uint64_t>(), {}, 50);
    RC_ASSERT(static_cast<int64_t>(t.gold_at_u.size()) >= s.min_golds);
    for (int64_t i = 0; i < s.min_golds; ++i) RC_ASSERT(t.gold_at_u[static_cast<size_t>(i)] == 0);
  }));
}

TEST(GoldPlacementTest, WindowsAreTheLevelSteps) {
  GoldSchedule s;  // mephisto
  GoldWindow w = GoldScheduleWindow(s, 15);
  EXPECT_EQ(w.begin, 10);
  EXPECT_EQ(w.end, 23);
  EXPECT_EQ(w.level, 1);
  EXPECT_EQ(w.previous_level, 0);
  w = GoldScheduleWindow(s, 0);
  EXPECT_EQ(w.begin, 0);
  EXPECT_EQ(w.end, 1);
  w = GoldScheduleWindow(s, 9);
  EXPECT_EQ(w.begin, 1);
  EXPECT_EQ(w.end, 10);
  s.kind = GoldScheduleKind::kFixedRate;
  s.gold_rate = 0.05;
  w = GoldScheduleWindow(s, 45);
  EXPECT_EQ(w.begin, 40);
  EXPECT_EQ(w.end, 60);
  EXPECT_EQ(w.level, 2);
  s.gold_rate = 0;  // the level never rises: one window from 0, nothing delayed
  w = GoldScheduleWindow(s, 1000);
  EXPECT_EQ(w.begin, 0);
  EXPECT_EQ(GoldPositionInWindow(w, 12345), 0);
}

TEST(GoldPlacementTest, PositionsStayInsideTheirWindowAndVaryAcrossWorkers) {
  GoldSchedule s;
  s.placement = GoldPlacement::kRandom;
  std::map<int64_t, int> first_mid_gold;  // u of the gold due in window [10, 23) -> workers
  for (int i = 0; i < 300; ++i) {
    const uint64_t seed = GoldPlacementSeed("secret", "sentiment-gold", "local:w" + std::to_string(i));
    const Trace t = Simulate(s, seed, {}, 200);
    ASSERT_GE(t.gold_at_u.size(), 2u);
    EXPECT_EQ(t.gold_at_u[0], 0);
    EXPECT_GE(t.gold_at_u[1], 10);
    EXPECT_LT(t.gold_at_u[1], 23);
    ++first_mid_gold[t.gold_at_u[1]];
  }
  // 300 workers over 13 positions: every position is used, none by more than a quarter.
  EXPECT_EQ(first_mid_gold.size(), 13u);
  for (const auto& [u, n] : first_mid_gold) EXPECT_LT(n, 75) << "u=" << u;
}

TEST(GoldPlacementTest, SeedDependsOnSecretBaseAndWorker) {
  const uint64_t a = GoldPlacementSeed("k1", "g", "local:alice");
  EXPECT_EQ(a, GoldPlacementSeed("k1", "g", "local:alice"));  // same on every server, every restart
  EXPECT_NE(a, GoldPlacementSeed("k2", "g", "local:alice"));
  EXPECT_NE(a, GoldPlacementSeed("k1", "h", "local:alice"));
  EXPECT_NE(a, GoldPlacementSeed("k1", "g", "local:bob"));
}

TEST(GoldPlacementTest, FixedRateGoldLandsInsideEachBlock) {
  GoldSchedule s;
  s.kind = GoldScheduleKind::kFixedRate;
  s.gold_rate = 0.1;
  s.min_golds = 1;
  s.placement = GoldPlacement::kRandom;
  std::set<int64_t> offsets;
  for (int i = 0; i < 50; ++i) {
    const Trace t = Simulate(s, GoldPlacementSeed("s", "g", "w" + std::to_string(i)), {}, 100);
    ASSERT_EQ(t.gold_at_u.size(), 10u);  // warm-up + one per block [10k, 10k + 10) for k = 1..9
    for (size_t g = 1; g < t.gold_at_u.size(); ++g) {
      EXPECT_GE(t.gold_at_u[g], static_cast<int64_t>(10 * g));
      EXPECT_LT(t.gold_at_u[g], static_cast<int64_t>(10 * g + 10));
      offsets.insert(t.gold_at_u[g] % 10);
    }
  }
  EXPECT_GT(offsets.size(), 5u);
}

TEST(GoldPlacementTest, OwedGoldsAreNotDelayed) {
  // A wrong gold leaves the worker short of the current window's level: exact and random
  // both ask for a gold at once.
  GoldSchedule s;
  s.placement = GoldPlacement::kRandom;
  s.min_golds = 1;
  EXPECT_TRUE(WorkerNeedsGold(s, {15, 1, 1}, 0));  // level 0 already owed in window [10, 23)
}

TEST(GoldPlacementTest, ParseAndName) {
  EXPECT_EQ(*ParseGoldPlacement("random"), GoldPlacement::kRandom);
  EXPECT_EQ(*ParseGoldPlacement("exact"), GoldPlacement::kExact);
  EXPECT_EQ(GoldPlacementName(GoldPlacement::kRandom), "random");
  EXPECT_FALSE(ParseGoldPlacement("mephisto").ok());
}

}  // namespace
}  // namespace crowdgate
