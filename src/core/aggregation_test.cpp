#include "core/aggregation.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <array>
#include <random>
#include <vector>

namespace crowdgate {
namespace {

constexpr AggregationMethod kAll[] = {AggregationMethod::kMajority, AggregationMethod::kDawidSkene,
                                      AggregationMethod::kWawa};

Judgments Make(int32_t items, int32_t workers, int32_t labels, std::vector<std::array<int32_t, 3>> rows) {
  Judgments j;
  j.num_items = items;
  j.num_workers = workers;
  j.num_labels = labels;
  for (const auto& [i, w, l] : rows) j.Add(i, w, l);
  return j;
}

AggregateResult RunMethod(const Judgments& j, AggregationMethod method, std::vector<int32_t> known = {}) {
  AggregateOptions options;
  options.method = method;
  options.known = std::move(known);
  auto r = Aggregate(j, options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : AggregateResult{};
}

// ---- majority vote -----------------------------------------------------------------------

TEST(MajorityVoteTest, CountsVotesAndSharesAsConfidence) {
  const Judgments j = Make(1, 3, 2, {{0, 0, 1}, {0, 1, 0}, {0, 2, 1}});
  const AggregateResult r = RunMethod(j, AggregationMethod::kMajority);
  EXPECT_EQ(r.items[0].label, 1);
  EXPECT_DOUBLE_EQ(r.items[0].confidence, 2.0 / 3.0);
  EXPECT_EQ(r.items[0].labels, 3);
  EXPECT_DOUBLE_EQ(r.worker_accuracy[0], 1.0);
  EXPECT_DOUBLE_EQ(r.worker_accuracy[1], 0.0);
}

TEST(MajorityVoteTest, TieGoesToTheLabelSeenFirstOnTheItem) {
  // Item 0 sees label 1 first; item 1 sees label 0 first; item 2: 0,1,1,0 -> 0.
  const Judgments j = Make(3, 4, 2,
                           {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}, {1, 1, 1}, {2, 0, 0}, {2, 1, 1}, {2, 2, 1}, {2, 3, 0}});
  const AggregateResult r = RunMethod(j, AggregationMethod::kMajority);
  EXPECT_EQ(r.items[0].label, 1);
  EXPECT_EQ(r.items[1].label, 0);
  EXPECT_EQ(r.items[2].label, 0);
  EXPECT_DOUBLE_EQ(r.items[0].confidence, 0.5);
}

TEST(AggregateTest, SymmetricTiesGoToTheLabelSeenFirstInEveryMethod) {
  // Swapping the two labels and the two workers maps the data onto itself: the workers are
  // alike, each item is an exact tie, and each goes to the label its first judgment gave
  // (item 1 to label 1, which a lowest-id rule would not pick).
  const Judgments j = Make(2, 2, 2, {{0, 0, 0}, {0, 1, 1}, {1, 1, 1}, {1, 0, 0}});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m);
    EXPECT_EQ(r.items[0].label, 0) << AggregationMethodName(m);
    EXPECT_EQ(r.items[1].label, 1) << AggregationMethodName(m);
    EXPECT_NEAR(r.items[0].confidence, 0.5, 1e-9) << AggregationMethodName(m);
  }
}

TEST(AggregateTest, ItemWithoutJudgmentsHasNoLabel) {
  const Judgments j = Make(2, 1, 2, {{1, 0, 1}});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m);
    EXPECT_EQ(r.items[0].label, -1) << AggregationMethodName(m);
    EXPECT_EQ(r.items[0].labels, 0);
    EXPECT_EQ(r.items[0].confidence, 0.0);
    EXPECT_EQ(r.items[1].label, 1);
  }
}

TEST(AggregateTest, ItemWithOneLabelTakesIt) {
  const Judgments j = Make(3, 2, 2, {{0, 0, 0}, {0, 1, 0}, {1, 0, 1}, {1, 1, 1}, {2, 1, 1}});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m);
    EXPECT_EQ(r.items[2].label, 1) << AggregationMethodName(m);
    EXPECT_EQ(r.items[2].labels, 1);
    EXPECT_GT(r.items[2].confidence, 0.5);
  }
}

TEST(AggregateTest, SingleWorkerIsTakenAtTheirWord) {
  const Judgments j = Make(4, 1, 3, {{0, 0, 2}, {1, 0, 0}, {2, 0, 1}, {3, 0, 2}});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m);
    EXPECT_EQ(r.items[0].label, 2) << AggregationMethodName(m);
    EXPECT_EQ(r.items[1].label, 0);
    EXPECT_EQ(r.items[2].label, 1);
    EXPECT_EQ(r.items[3].label, 2);
    EXPECT_GT(r.items[1].confidence, 0.9);
    EXPECT_GT(r.worker_accuracy[0], 0.9);
  }
}

TEST(AggregateTest, LabelNobodyChoseIsNeverPickedAndStaysFinite) {
  // Three labels declared, label 2 never given.
  const Judgments j = Make(3, 3, 3, {{0, 0, 0}, {0, 1, 0}, {0, 2, 1}, {1, 0, 1}, {1, 1, 1}, {1, 2, 1}, {2, 0, 0}});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m);
    for (const ItemLabel& item : r.items) {
      EXPECT_NE(item.label, 2) << AggregationMethodName(m);
      EXPECT_TRUE(std::isfinite(item.confidence));
      EXPECT_GT(item.confidence, 0.0);
      EXPECT_LE(item.confidence, 1.0);
    }
  }
  const AggregateResult ds = RunMethod(j, AggregationMethod::kDawidSkene);
  EXPECT_LT(ds.class_prior[2], ds.class_prior[0]);
  EXPECT_LT(ds.class_prior[2], ds.class_prior[1]);
  for (double p : ds.confusion) EXPECT_TRUE(std::isfinite(p) && p > 0.0);
}

TEST(AggregateTest, EmptyInput) {
  const Judgments j = Make(0, 0, 0, {});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m);
    EXPECT_TRUE(r.items.empty());
  }
}

TEST(AggregateTest, KnownLabelsAreOutputWithFullConfidence) {
  const Judgments j = Make(2, 3, 2, {{0, 0, 1}, {0, 1, 1}, {0, 2, 1}, {1, 0, 0}});
  for (AggregationMethod m : kAll) {
    const AggregateResult r = RunMethod(j, m, {0, -1});
    EXPECT_EQ(r.items[0].label, 0) << AggregationMethodName(m);
    EXPECT_EQ(r.items[0].confidence, 1.0);
    EXPECT_EQ(r.items[0].labels, 3);
  }
}

TEST(AggregateTest, RejectsIdsOutOfRange) {
  EXPECT_FALSE(MajorityVote(Make(1, 1, 1, {{1, 0, 0}})).ok());
  EXPECT_FALSE(MajorityVote(Make(1, 1, 1, {{0, 1, 0}})).ok());
  EXPECT_FALSE(Wawa(Make(1, 1, 1, {{0, 0, 1}})).ok());
  EXPECT_FALSE(MajorityVote(Make(1, 1, 1, {{0, 0, 0}}), {0, 0}).ok());
  EXPECT_FALSE(MajorityVote(Make(1, 1, 1, {{0, 0, 0}}), {1}).ok());
  AggregateOptions bad;
  bad.smoothing = 0;
  EXPECT_FALSE(DawidSkene(Make(1, 1, 1, {{0, 0, 0}}), bad).ok());
  EXPECT_EQ(ParseAggregationMethod("wawa").value(), AggregationMethod::kWawa);
  EXPECT_FALSE(ParseAggregationMethod("mean").ok());
}

TEST(AggregateTest, InvariantsOnRandomInput) {
  rc::check([] {
    Judgments j;
    j.num_items = *rc::gen::inRange(1, 30);
    j.num_workers = *rc::gen::inRange(1, 8);
    j.num_labels = *rc::gen::inRange(1, 6);
    const int n = *rc::gen::inRange(0, 120);
    for (int k = 0; k < n; ++k) {
      j.Add(*rc::gen::inRange(0, j.num_items), *rc::gen::inRange(0, j.num_workers), *rc::gen::inRange(0, j.num_labels));
    }
    std::vector<int32_t> known(static_cast<size_t>(j.num_items), -1);
    for (auto& k : known) {
      if (*rc::gen::inRange(0, 5) == 0) k = *rc::gen::inRange(0, j.num_labels);
    }
    for (AggregationMethod m : kAll) {
      AggregateOptions options;
      options.method = m;
      options.known = known;
      auto r = Aggregate(j, options);
      RC_ASSERT(r.ok());
      std::vector<int32_t> count(static_cast<size_t>(j.num_items), 0);
      for (int32_t i : j.item) ++count[static_cast<size_t>(i)];
      for (size_t i = 0; i < r->items.size(); ++i) {
        const ItemLabel& item = r->items[i];
        RC_ASSERT(item.labels == count[i]);
        if (known[i] >= 0) {
          RC_ASSERT(item.label == known[i]);
          RC_ASSERT(item.confidence == 1.0);
        } else if (count[i] == 0) {
          RC_ASSERT(item.label == -1);
        } else {
          RC_ASSERT(item.label >= 0 && item.label < j.num_labels);
          RC_ASSERT(std::isfinite(item.confidence) && item.confidence > 0.0 && item.confidence <= 1.0 + 1e-12);
        }
      }
      for (size_t w = 0; w < r->worker_accuracy.size(); ++w) {
        if (r->worker_labels[w] == 0) continue;
        RC_ASSERT(r->worker_accuracy[w] >= -1e-12 && r->worker_accuracy[w] <= 1.0 + 1e-12);
      }
      // Majority vote's label has the most votes.
      if (m == AggregationMethod::kMajority) {
        for (size_t i = 0; i < r->items.size(); ++i) {
          if (known[i] >= 0 || count[i] == 0) continue;
          std::vector<int> votes(static_cast<size_t>(j.num_labels), 0);
          for (size_t k = 0; k < j.size(); ++k) {
            if (static_cast<size_t>(j.item[k]) == i) ++votes[static_cast<size_t>(j.label[k])];
          }
          RC_ASSERT(votes[static_cast<size_t>(r->items[i].label)] == *std::max_element(votes.begin(), votes.end()));
        }
      }
    }
  });
}

// ---- Wawa --------------------------------------------------------------------------------

TEST(WawaTest, WeightsWorkersByAgreementWithMajority) {
  // Items 0-3: workers 0, 1, 2 say 0 and worker 3 says 1. Item 4: worker 3 says 1 first,
  // worker 0 says 0: a tie that majority vote gives to 1 and Wawa to worker 0's 0.
  const Judgments j = Make(5, 4, 2,
                           {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 3, 1}, {1, 0, 0}, {1, 1, 0}, {1, 2, 0}, {1, 3, 1},
                            {2, 0, 0}, {2, 1, 0}, {2, 2, 0}, {2, 3, 1}, {3, 0, 0}, {3, 1, 0}, {3, 2, 0}, {3, 3, 1},
                            {4, 3, 1}, {4, 0, 0}});
  EXPECT_EQ(RunMethod(j, AggregationMethod::kMajority).items[4].label, 1);
  const AggregateResult r = RunMethod(j, AggregationMethod::kWawa);
  EXPECT_EQ(r.items[4].label, 0);
  EXPECT_DOUBLE_EQ(r.worker_accuracy[0], 0.8);  // agreed with majority on 4 of 5
  EXPECT_DOUBLE_EQ(r.worker_accuracy[3], 0.2);
  EXPECT_DOUBLE_EQ(r.items[4].confidence, 0.8);
}

// ---- Dawid-Skene -------------------------------------------------------------------------

// Crowd data drawn from known confusion matrices: every worker labels every item.
struct Simulated {
  Judgments judgments;
  std::vector<int32_t> truth;
  std::vector<double> confusion;  // [w][true][given]
};

Simulated Simulate(int32_t items, int32_t workers, int32_t labels, const std::vector<double>& confusion,
                   uint64_t seed) {
  std::mt19937_64 rng(seed);
  Simulated s;
  s.confusion = confusion;
  s.judgments.num_items = items;
  s.judgments.num_workers = workers;
  s.judgments.num_labels = labels;
  std::uniform_int_distribution<int32_t> pick(0, labels - 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int32_t i = 0; i < items; ++i) {
    const int32_t t = pick(rng);
    s.truth.push_back(t);
    for (int32_t w = 0; w < workers; ++w) {
      double x = u(rng);
      int32_t given = labels - 1;
      for (int32_t l = 0; l < labels; ++l) {
        x -= confusion[(static_cast<size_t>(w) * labels + t) * labels + l];
        if (x < 0) {
          given = l;
          break;
        }
      }
      s.judgments.Add(i, w, given);
    }
  }
  return s;
}

double Accuracy(const AggregateResult& r, const std::vector<int32_t>& truth, const std::vector<int32_t>& skip = {}) {
  int right = 0;
  int total = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (!skip.empty() && skip[i] >= 0) continue;
    right += r.items[i].label == truth[i];
    ++total;
  }
  return total == 0 ? 0.0 : static_cast<double>(right) / total;
}

TEST(DawidSkeneTest, RecoversConfusionMatricesOfGeneratedData) {
  rc::check([] {
    const int32_t labels = *rc::gen::inRange(2, 5);
    const int32_t workers = *rc::gen::inRange(4, 8);
    const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
    std::mt19937_64 rng(seed);
    // Each row: the diagonal in [0.55, 0.95], the rest spread at random over the other labels.
    std::vector<double> confusion(static_cast<size_t>(workers) * labels * labels);
    std::uniform_real_distribution<double> diag(0.55, 0.95);
    std::uniform_real_distribution<double> u(0.1, 1.0);
    for (int32_t w = 0; w < workers; ++w) {
      for (int32_t t = 0; t < labels; ++t) {
        double* row = &confusion[(static_cast<size_t>(w) * labels + t) * labels];
        const double d = diag(rng);
        double rest = 0;
        for (int32_t l = 0; l < labels; ++l) rest += (row[l] = l == t ? 0.0 : u(rng));
        for (int32_t l = 0; l < labels; ++l) row[l] = l == t ? d : (1 - d) * row[l] / rest;
      }
    }
    const Simulated s = Simulate(3000, workers, labels, confusion, seed ^ 0x9e3779b97f4a7c15ULL);
    AggregateOptions options;
    auto r = DawidSkene(s.judgments, options);
    RC_ASSERT(r.ok());
    RC_ASSERT(r->converged);
    // 3000 items over up to 4 classes: ~750 per class row, so a sampling error of ~0.02-0.04.
    for (size_t c = 0; c < confusion.size(); ++c) RC_ASSERT(std::abs(r->confusion[c] - confusion[c]) < 0.08);
    const AggregateResult mv = *MajorityVote(s.judgments);
    RC_ASSERT(Accuracy(*r, s.truth) >= Accuracy(mv, s.truth) - 0.02);
  });
}

TEST(DawidSkeneTest, BeatsMajorityWhenOneGoodWorkerFacesWeakOnes) {
  // Binary, worker 0 right 95 %, workers 1-4 right 65 % (independent errors).
  std::vector<double> confusion = {0.95, 0.05, 0.05, 0.95};
  for (int w = 1; w < 5; ++w) confusion.insert(confusion.end(), {0.65, 0.35, 0.35, 0.65});
  const Simulated s = Simulate(5000, 5, 2, confusion, 7);
  const AggregateResult ds = RunMethod(s.judgments, AggregationMethod::kDawidSkene);
  const AggregateResult mv = RunMethod(s.judgments, AggregationMethod::kMajority);
  EXPECT_GT(Accuracy(ds, s.truth), 0.93);
  EXPECT_LT(Accuracy(mv, s.truth), 0.88);
  EXPECT_NEAR(ds.worker_accuracy[0], 0.95, 0.02);
  EXPECT_NEAR(ds.worker_accuracy[1], 0.65, 0.03);
}

TEST(DawidSkeneTest, GoldsPullTheEstimateTheRightWay) {
  // Worker 0 is always right; workers 1 and 2 always give the other label. Without golds the
  // two who agree win; with golds on most items the engine learns they invert the truth.
  Judgments j;
  j.num_items = 20;
  j.num_workers = 3;
  j.num_labels = 2;
  std::vector<int32_t> truth;
  std::vector<int32_t> known(20, -1);
  for (int32_t i = 0; i < 20; ++i) {
    const int32_t t = i % 2;
    truth.push_back(t);
    j.Add(i, 0, t);
    j.Add(i, 1, 1 - t);
    j.Add(i, 2, 1 - t);
    if (i < 12) known[i] = t;
  }
  const AggregateResult without = RunMethod(j, AggregationMethod::kDawidSkene);
  const AggregateResult with = RunMethod(j, AggregationMethod::kDawidSkene, known);
  EXPECT_EQ(Accuracy(without, truth), 0.0);
  EXPECT_EQ(Accuracy(with, truth, known), 1.0);  // the 8 items without gold
  EXPECT_LT(without.worker_accuracy[0], 0.1);
  EXPECT_GT(with.worker_accuracy[0], 0.9);
  EXPECT_LT(with.worker_accuracy[1], 0.1);
  // Wawa uses the golds as its reference too.
  EXPECT_GT(RunMethod(j, AggregationMethod::kWawa, known).worker_accuracy[0], 0.5);
}

TEST(DawidSkeneTest, StableWithOneHundredClassesAndManyLabelsPerItem) {
  // 150 labels per item: the product of the per-label likelihoods is far below the smallest
  // double, so only the log-space computation keeps the posteriors meaningful.
  const int32_t K = 100;
  const int32_t W = 150;
  std::vector<double> confusion(static_cast<size_t>(W) * K * K, 0.3 / (K - 1));
  for (int32_t w = 0; w < W; ++w) {
    for (int32_t t = 0; t < K; ++t) confusion[(static_cast<size_t>(w) * K + t) * K + t] = 0.7;
  }
  const Simulated s = Simulate(300, W, K, confusion, 11);
  const AggregateResult r = RunMethod(s.judgments, AggregationMethod::kDawidSkene);
  for (const ItemLabel& item : r.items) {
    ASSERT_TRUE(std::isfinite(item.confidence));
    EXPECT_GT(item.confidence, 0.99);
  }
  for (double a : r.worker_accuracy) EXPECT_NEAR(a, 0.7, 0.1);
  EXPECT_EQ(Accuracy(r, s.truth), 1.0);
}

TEST(DawidSkeneTest, DeterministicAndStopsAtTheIterationCap) {
  const std::vector<double> confusion = {0.8, 0.2, 0.3, 0.7, 0.7, 0.3, 0.2, 0.8, 0.9, 0.1, 0.1, 0.9};
  const Simulated s = Simulate(500, 3, 2, confusion, 3);
  const AggregateResult a = RunMethod(s.judgments, AggregationMethod::kDawidSkene);
  const AggregateResult b = RunMethod(s.judgments, AggregationMethod::kDawidSkene);
  ASSERT_EQ(a.items.size(), b.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) {
    EXPECT_EQ(a.items[i].label, b.items[i].label);
    EXPECT_EQ(a.items[i].confidence, b.items[i].confidence);
  }
  EXPECT_TRUE(a.converged);
  EXPECT_GT(a.iterations, 1);
  AggregateOptions capped;
  capped.max_iterations = 1;
  capped.tolerance = 0;
  auto c = DawidSkene(s.judgments, capped);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->iterations, 1);
  EXPECT_FALSE(c->converged);
}

}  // namespace
}  // namespace crowdgate
