// The live task server's decisions, in process: what a worker who asks for work gets
// (block and allow lists, every comparator class, providers, onboarding, screening, golds
// on Mephisto's schedule with caps and refunds, capacity, leases) and what submissions do
// to their standing (counters, grants, disqualification), with time and randomness
// controlled by a FakeEnv. One TEST per behaviour a user relies on. Batches and the race of
// eight workers are in dispatcher_batch_test.cpp.
#include "crowdgate/dispatcher.hpp"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/dispatcher_test_fixture.hpp"

namespace crowdgate::dispatcher_test {
namespace {

// The public Engine makes its own dispatcher (no cast to its implementation): a second one over
// the same engine sees the first one's run; a null engine is refused.
TEST_F(DispatcherTest, EngineMakesDispatchersThatShareItsStore) {
  WriteUnits(2);
  const std::string run = Launch({});
  Result<std::unique_ptr<Dispatcher>> other = engine_->NewDispatcher();
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  Result<RunSummary> s = (*other)->Summarize(run);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, RunStatus::kOpen);
  EXPECT_TRUE(Dispatcher::Create(nullptr).status().IsInvalidArgument());
}

// ---- requirements -------------------------------------------------------------------

// The throughput series caches settled buckets; a later call still counts every submission, old and new.
TEST_F(DispatcherTest, ThroughputKeepsCountingAfterItsBucketsSettle) {
  WriteUnits(6);
  const std::string run = Launch({});
  auto submit_one = [&](const std::string& worker) {
    WorkResponse w = Work(run, worker);
    ASSERT_EQ(w.outcome, "unit");
    ASSERT_TRUE(Submit(w, {{"label", "pos"}}).ok());
  };
  auto total = [&] {
    int64_t n = 0;
    auto t = d_->Throughput(run, 60 * kMicrosPerSecond);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (t.ok()) {
      for (const auto& [b, c] : *t) n += c;
    }
    return n;
  };
  submit_one("a");
  submit_one("b");
  EXPECT_EQ(total(), 2);
  env_.AdvanceSeconds(600);  // those buckets settle and are cached
  EXPECT_EQ(total(), 2);
  submit_one("c");
  EXPECT_EQ(total(), 3);
  env_.AdvanceSeconds(600);
  EXPECT_EQ(total(), 3);
  submit_one("d");
  auto t = d_->Throughput(run, 60 * kMicrosPerSecond);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 3u);  // three minutes with submissions, oldest first
  EXPECT_LT((*t)[0].first, (*t)[1].first);
  EXPECT_EQ(total(), 4);
  EXPECT_TRUE(d_->Throughput("run_nope", 60 * kMicrosPerSecond).status().IsNotFound());
}

TEST_F(DispatcherTest, BlockListRefusesAtNextRequestAndRevokeLetsBackIn) {
  WriteUnits(3);
  const std::string run = Launch({.blueprint = "  block_qualification: blk\n"});
  WorkResponse first = Work(run, "alice");
  ASSERT_EQ(first.outcome, "unit");
  GrantQ("blk", "alice");
  ExpectRefused(Work(run, "alice"), "not_qualified", "blocked");
  EXPECT_EQ(Work(run, "bob").outcome, "unit");
  ASSERT_TRUE(engine_->Revoke("blk", "alice", "test").ok());
  WorkResponse again = Work(run, "alice");
  EXPECT_EQ(again.outcome, "unit");
  EXPECT_EQ(again.agent_id, first.agent_id);  // her held unit, not a new one
}

TEST_F(DispatcherTest, AllowListWithExists) {
  WriteUnits(3);
  CreateQ("vip");
  GrantQ("vip", "alice", 0);  // any value counts for Exists
  const std::string run = Launch({.qualifications = "[{qualification_name: vip, comparator: Exists}]"});
  EXPECT_EQ(Work(run, "alice").outcome, "unit");
  ExpectRefused(Work(run, "bob"), "not_qualified", "requirement_not_met");
  GrantQ("vip", "bob");
  EXPECT_EQ(Work(run, "bob").outcome, "unit");
}

TEST_F(DispatcherTest, GreaterThanOrEqualToAndWorkerWithoutGrant) {
  WriteUnits(3);
  CreateQ("english");
  GrantQ("english", "alice", 80);
  GrantQ("english", "bob", 79);
  const std::string run =
      Launch({.qualifications = "[{qualification_name: english, comparator: GreaterThanOrEqualTo, value: 80}]"});
  EXPECT_EQ(Work(run, "alice").outcome, "unit");
  ExpectRefused(Work(run, "bob"), "not_qualified", "requirement_not_met");
  ExpectRefused(Work(run, "carol"), "not_qualified", "requirement_not_met");
}

TEST_F(DispatcherTest, InAndNotInFailWithoutAGrant) {
  WriteUnits(6);
  CreateQ("level");
  GrantQ("level", "alice", 1);
  GrantQ("level", "bob", 3);
  const std::string in = Launch({.qualifications = "[{qualification_name: level, comparator: In, value: [1, 2]}]"});
  EXPECT_EQ(Work(in, "alice").outcome, "unit");
  ExpectRefused(Work(in, "bob"), "not_qualified", "requirement_not_met");
  ExpectRefused(Work(in, "carol"), "not_qualified", "requirement_not_met");
  const std::string not_in =
      Launch({.qualifications = "[{qualification_name: level, comparator: NotIn, value: [3]}]"});
  EXPECT_EQ(Work(not_in, "alice").outcome, "unit");
  ExpectRefused(Work(not_in, "bob"), "not_qualified", "requirement_not_met");
  ExpectRefused(Work(not_in, "carol"), "not_qualified", "requirement_not_met");  // no grant fails NotIn
}

TEST_F(DispatcherTest, DoesNotExistIsABlockList) {
  WriteUnits(3);
  CreateQ("banned");
  GrantQ("banned", "alice", 0);
  const std::string run = Launch({.qualifications = "[{qualification_name: banned, comparator: DoesNotExist}]"});
  ExpectRefused(Work(run, "alice"), "not_qualified", "blocked");
  EXPECT_EQ(Work(run, "carol").outcome, "unit");
}

TEST_F(DispatcherTest, UnknownQualificationFailsTheLaunchNamingIt) {
  WriteUnits(3);
  auto r = TryLaunch({.qualifications = "[{qualification_name: no-such-qual, comparator: Exists}]"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no-such-qual"), std::string::npos) << r.status().ToString();
  auto runs = d_->ListRuns();
  ASSERT_TRUE(runs.ok());
  EXPECT_TRUE(runs->empty());  // nothing launched
}

TEST_F(DispatcherTest, RequirementForOneProviderDoesNotApplyToOthers) {
  WriteUnits(3);
  CreateQ("masters");
  const std::string run = Launch(
      {.qualifications = "[{qualification_name: masters, comparator: Exists, applicable_providers: [mturk]}]"});
  EXPECT_EQ(Work(run, "alice").outcome, "unit");
  ExpectRefused(Work(run, "mturk:A1B2"), "not_qualified", "requirement_not_met");
  GrantQ("masters", "mturk:A1B2");
  EXPECT_EQ(Work(run, "mturk:A1B2").outcome, "unit");
}

// ---- onboarding ---------------------------------------------------------------------

constexpr const char* kOnboarding =
    "  onboarding_qualification: onb\n  onboarding_data: {text: quiz}\n  onboarding_answer: {label: secret-pos}\n";

TEST_F(DispatcherTest, OnboardingPassThenUnits) {
  WriteUnits(3);
  const std::string run = Launch({.blueprint = kOnboarding});
  WorkResponse onb = Work(run, "alice");
  ASSERT_EQ(onb.outcome, "onboarding");
  EXPECT_EQ(onb.data, json({{"text", "quiz"}}));
  EXPECT_EQ(Work(run, "alice").agent_id, onb.agent_id);  // reconnect to the same onboarding
  EXPECT_EQ(SubmitOk(onb, {{"label", "secret-pos"}}), "passed");
  EXPECT_EQ(Grant("alice", "onb"), 1);
  WorkResponse unit = Work(run, "alice");
  EXPECT_EQ(unit.outcome, "unit");
  EXPECT_EQ(Text(unit), "item 0");
}

TEST_F(DispatcherTest, OnboardingFailRefusesAndGrantsFailed) {
  WriteUnits(3);
  const std::string run = Launch({.blueprint = kOnboarding});
  WorkResponse onb = Work(run, "alice");
  ASSERT_EQ(onb.outcome, "onboarding");
  EXPECT_EQ(SubmitOk(onb, {{"label", "neg"}}), "failed");
  ExpectRefused(Work(run, "alice"), "not_qualified", "onboarding_failed");
  EXPECT_EQ(Grant("alice", "onb"), 0);
  EXPECT_EQ(Grant("alice", "onb-failed"), 1);
}

TEST_F(DispatcherTest, SecondRunSharingTheQualificationDoesNotOnboardAgain) {
  WriteUnits(3);
  const std::string run1 = Launch({.task_name = "first", .blueprint = kOnboarding});
  WorkResponse a = Work(run1, "alice");
  WorkResponse b = Work(run1, "bob");
  ASSERT_EQ(SubmitOk(a, {{"label", "secret-pos"}}), "passed");
  ASSERT_EQ(SubmitOk(b, {{"label", "wrong"}}), "failed");
  const std::string run2 = Launch({.task_name = "second", .blueprint = kOnboarding});
  EXPECT_EQ(Work(run2, "alice").outcome, "unit");
  ExpectRefused(Work(run2, "bob"), "not_qualified", "onboarding_failed");
}

TEST_F(DispatcherTest, ResetOnboardingLetsAFailedWorkerOnboardAgain) {
  WriteUnits(3);
  const std::string run = Launch({.blueprint = kOnboarding});
  ASSERT_EQ(SubmitOk(Work(run, "alice"), {{"label", "wrong"}}), "failed");
  ExpectRefused(Work(run, "alice"), "not_qualified", "onboarding_failed");
  ASSERT_TRUE(engine_->ResetOnboarding("onb", "alice").ok());
  EXPECT_EQ(Grant("alice", "onb"), std::nullopt);
  EXPECT_EQ(Grant("alice", "onb-failed"), std::nullopt);
  WorkResponse again = Work(run, "alice");
  ASSERT_EQ(again.outcome, "onboarding");
  EXPECT_EQ(SubmitOk(again, {{"label", "secret-pos"}}), "passed");
  EXPECT_EQ(Work(run, "alice").outcome, "unit");
}

// ---- screening ----------------------------------------------------------------------

std::string Screening(int cap) {
  return "  use_screening_task: true\n  passed_qualification_name: scr-passed\n  block_qualification: scr-block\n"
         "  screening_file: screening.jsonl\n  max_screening_units: " +
         std::to_string(cap) + "\n";
}

TEST_F(DispatcherTest, ScreeningPassGrantsPassedAndFailBlocks) {
  WriteUnits(3);
  WriteEval("screening.jsonl", 2, "screen");
  const std::string run = Launch({.blueprint = Screening(10)});
  WorkResponse a = Work(run, "alice");
  WorkResponse b = Work(run, "bob");
  ASSERT_EQ(a.outcome, "unit");  // a screening unit looks like a unit
  EXPECT_EQ(Text(a).rfind("screen ", 0), 0u);
  EXPECT_EQ(SubmitOk(a, {{"label", "pos"}}), "accepted");
  EXPECT_EQ(SubmitOk(b, {{"label", "neg"}}), "accepted");
  EXPECT_EQ(Grant("alice", "scr-passed"), 1);
  EXPECT_EQ(Grant("bob", "scr-block"), 1);
  EXPECT_EQ(Grant("bob", "scr-passed"), std::nullopt);
  WorkResponse real = Work(run, "alice");
  EXPECT_EQ(real.outcome, "unit");
  EXPECT_EQ(Text(real), "item 0");
  ExpectRefused(Work(run, "bob"), "not_qualified", "screening_failed");
  auto rows = Rows(run);
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](const ExportRow& r) { return r.kind == AgentKind::kScreening; }), 2);
}

TEST_F(DispatcherTest, ScreeningCapAndReturnedUnitGivesItsSlotBack) {
  WriteUnits(3);
  WriteEval("screening.jsonl", 2, "screen");
  const std::string run = Launch({.blueprint = Screening(2)});
  WorkResponse a = Work(run, "alice");
  ASSERT_EQ(a.outcome, "unit");
  ASSERT_EQ(Work(run, "bob").outcome, "unit");
  ExpectRefused(Work(run, "carol"), "no_work", "screening_cap_reached");
  ASSERT_TRUE(d_->Return(a.agent_id, a.token).ok());
  EXPECT_EQ(d_->Summarize(run)->screening_served, 1);
  WorkResponse c = Work(run, "carol");
  EXPECT_EQ(c.outcome, "unit");
  EXPECT_EQ(Text(c).rfind("screen ", 0), 0u);
  EXPECT_EQ(d_->Summarize(run)->screening_served, 2);
}

TEST_F(DispatcherTest, ScreeningOnTheFirstRealUnitWithACommandCheck) {
  WriteUnits(4);
  const std::string script = Write("screen.sh",
                                   "case \"$(cat)\" in\n"
                                   "  *'\"submission\":{\"verdict\":\"pos\"}'*) exit 0 ;;\n"
                                   "  *) exit 1 ;;\n"
                                   "esac\n");
  const std::string run = Launch({.blueprint = "  use_screening_task: true\n  passed_qualification_name: scr-passed\n"
                                               "  block_qualification: scr-block\n  screening_source: real\n"
                                               "  max_screening_units: 10\n  screening_check: {command: [/bin/sh, " +
                                               script + "]}\n"});
  WorkResponse first = Work(run, "alice");
  ASSERT_EQ(first.outcome, "unit");
  EXPECT_EQ(Text(first), "item 0");
  EXPECT_EQ(SubmitOk(first, {{"verdict", "pos"}}), "accepted");
  EXPECT_EQ(Grant("alice", "scr-passed"), 1);
  EXPECT_EQ(Text(Work(run, "alice")), "item 1");
  EXPECT_EQ(SubmitOk(Work(run, "bob"), {{"verdict", "neg"}}), "accepted");
  ExpectRefused(Work(run, "bob"), "not_qualified", "screening_failed");
  std::vector<AgentKind> kinds;
  for (const auto& r : Rows(run)) kinds.push_back(r.kind);
  EXPECT_EQ(kinds, (std::vector<AgentKind>{AgentKind::kScreening, AgentKind::kUnit, AgentKind::kScreening}));
}

// ---- golds --------------------------------------------------------------------------

TEST_F(DispatcherTest, MinGoldsAreServedFirst) {
  WriteUnits(5);
  WriteEval("golds.jsonl", 5, "gold");
  const std::string run = Launch({.blueprint = Golds() + "  min_golds: 2\n  max_gold_units: 10\n"});
  for (int i = 0; i < 4; ++i) {
    WorkResponse w = Work(run, "alice");
    ASSERT_EQ(w.outcome, "unit");
    ASSERT_EQ(SubmitOk(w, {{"label", "pos"}}), "accepted");
  }
  std::vector<AgentKind> kinds;
  for (const auto& r : Rows(run)) kinds.push_back(r.kind);
  EXPECT_EQ(kinds, (std::vector<AgentKind>{AgentKind::kGold, AgentKind::kGold, AgentKind::kUnit, AgentKind::kUnit}));
  EXPECT_EQ(Grant("alice", "g-correct-golds"), 2);
  EXPECT_EQ(Grant("alice", "g-completed-count"), 2);
}

TEST_F(DispatcherTest, GoldsOverAHundredUnitsFollowMephistosSchedule) {
  WriteUnits(100);
  WriteEval("golds.jsonl", 10, "gold");
  const std::string run =
      Launch({.blueprint = Golds() + "  min_golds: 1\n  max_gold_units: 100\n  gold_placement: exact\n"});
  for (int i = 0; i < 200; ++i) {
    WorkResponse w = Work(run, "alice");
    if (w.outcome != "unit") {
      ExpectRefused(w, "no_work", "no_units_left");
      break;
    }
    ASSERT_EQ(SubmitOk(w, {{"label", "pos"}}), "accepted");
  }
  std::vector<int64_t> real_done_at_gold;
  int64_t real = 0;
  for (const auto& r : Rows(run)) {
    if (r.kind == AgentKind::kGold) real_done_at_gold.push_back(real);
    if (r.kind == AgentKind::kUnit) ++real;
  }
  EXPECT_EQ(real, 100);
  EXPECT_EQ(real_done_at_gold, (std::vector<int64_t>{0, 10, 23, 44, 75}));
  EXPECT_EQ(Grant("alice", "g-completed-count"), 100);
  EXPECT_EQ(Grant("alice", "g-correct-golds"), 5);
}

// gold_placement random (the default): each gold lands somewhere inside its schedule window.
TEST_F(DispatcherTest, RandomPlacementServesEachGoldInsideItsWindow) {
  WriteUnits(300);
  WriteEval("golds.jsonl", 10, "gold");
  const std::string run = Launch({.blueprint = Golds() + "  min_golds: 1\n  max_gold_units: 100\n"});
  std::set<std::vector<int64_t>> patterns;
  for (const std::string worker : {"alice", "bob", "carol", "dave", "erin", "frank"}) {
    std::vector<int64_t> real_done_at_gold;
    int64_t real = 0;
    for (int i = 0; i < 30; ++i) {
      WorkResponse w = Work(run, worker);
      if (w.outcome != "unit") break;
      const bool gold = w.data.value("text", "").rfind("gold ", 0) == 0;  // golds read "gold i"
      ASSERT_EQ(SubmitOk(w, {{"label", "pos"}}), "accepted");
      if (gold) {
        real_done_at_gold.push_back(real);
      } else {
        ++real;
      }
    }
    // 30 requests: warm-up gold at 0, one in [10, 23), maybe one in [23, 44).
    ASSERT_GE(real_done_at_gold.size(), 2u) << worker;
    EXPECT_EQ(real_done_at_gold[0], 0);
    EXPECT_GE(real_done_at_gold[1], 10);
    EXPECT_LT(real_done_at_gold[1], 23);
    patterns.insert(real_done_at_gold);
  }
  EXPECT_GT(patterns.size(), 1u) << "every worker got golds at the same points";
}

TEST_F(DispatcherTest, MaxIncorrectGoldsAllowsThatManyStrikes) {
  WriteUnits(5);
  WriteEval("golds.jsonl", 5, "gold");
  const std::string run =
      Launch({.blueprint = Golds() + "  max_incorrect_golds: 2\n  max_gold_units: 10\n"});
  for (int wrong = 1; wrong <= 2; ++wrong) {
    WorkResponse w = Work(run, "alice");
    ASSERT_EQ(w.outcome, "unit");
    ASSERT_EQ(SubmitOk(w, {{"label", "neg"}}), "accepted");
    EXPECT_EQ(Grant("alice", "g-wrong-golds"), wrong);
    EXPECT_EQ(Grant("alice", "g-disqualified"), std::nullopt) << "after " << wrong << " wrong golds";
  }
  WorkResponse third = Work(run, "alice");
  ASSERT_EQ(third.outcome, "unit");  // still a gold: c < min_golds
  ASSERT_EQ(SubmitOk(third, {{"label", "neg"}}), "accepted");
  EXPECT_EQ(Grant("alice", "g-disqualified"), 1);
  ExpectRefused(Work(run, "alice"), "not_qualified", "gold_disqualified");
  // The server's tally (for /metrics) saw three wrong golds and no right one.
  auto summary = d_->Summarize(run);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->golds_right_since_start, 0);
  EXPECT_EQ(summary->golds_wrong_since_start, 3);
}

TEST_F(DispatcherTest, GoldCapRefusesAndReturnedOrExpiredGoldsGiveSlotsBack) {
  WriteUnits(5);
  WriteEval("golds.jsonl", 3, "gold");
  const std::string run = Launch({.lease_s = 5,
                                  .blueprint = Golds() + "  max_gold_units: 2\n"});
  WorkResponse a = Work(run, "alice");
  ASSERT_EQ(a.outcome, "unit");
  env_.AdvanceSeconds(3);
  WorkResponse b = Work(run, "bob");
  ASSERT_EQ(b.outcome, "unit");
  ExpectRefused(Work(run, "carol"), "no_work", "gold_cap_reached");
  EXPECT_EQ(d_->Summarize(run)->gold_served, 2);
  ASSERT_TRUE(d_->Return(b.agent_id, b.token).ok());  // returned unsubmitted: slot back
  EXPECT_EQ(d_->Summarize(run)->gold_served, 1);
  ASSERT_EQ(Work(run, "carol").outcome, "unit");
  ExpectRefused(Work(run, "dave"), "no_work", "gold_cap_reached");
  env_.AdvanceSeconds(3);  // alice's lease (5 s) has ended, carol's has not
  auto expired = d_->ExpireOverdue();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 1);
  EXPECT_EQ(d_->Summarize(run)->gold_served, 1);
  EXPECT_EQ(Work(run, "dave").outcome, "unit");
  EXPECT_EQ(d_->Summarize(run)->gold_served, 2);
}

TEST_F(DispatcherTest, NoGoldRepeatedUntilAllSeenAcrossRestarts) {
  const std::string db = dir_.File("golds.db");
  OpenAt(db);
  WriteUnits(5);
  WriteEval("golds.jsonl", 4, "gold");
  // min_golds high: every unit is a gold while the worker is below it.
  const std::string run = Launch({.blueprint = Golds() + "  min_golds: 10\n  max_gold_units: 100\n"});
  std::vector<std::string> seen;
  auto take = [&] {
    WorkResponse w = Work(run, "alice");
    ASSERT_EQ(w.outcome, "unit");
    seen.push_back(Text(w));
    ASSERT_EQ(SubmitOk(w, {{"label", "pos"}}), "accepted");
  };
  take();
  take();
  OpenAt(db);  // a new engine and dispatcher on the same file: a server restart
  take();
  take();
  std::set<std::string> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct.size(), 4u) << ::testing::PrintToString(seen);
  EXPECT_EQ(distinct.begin()->rfind("gold ", 0), 0u);
  take();  // all four seen: start over rather than refuse
  EXPECT_EQ(seen.back().rfind("gold ", 0), 0u);
}

TEST_F(DispatcherTest, MinAccuracyPolicyOverTheGoldWindow) {
  WriteUnits(5);
  WriteEval("golds.jsonl", 10, "gold");
  const std::string run = Launch({.blueprint = Golds() +
                                               "  min_golds: 10\n  max_gold_units: 100\n  gold_policy: min_accuracy\n"
                                               "  gold_window: 4\n  min_gold_accuracy: 0.75\n"});
  // right, wrong (1/2 but fewer than gold_window), right, right (3/4 = 0.75: keeps qualifying) ...
  const std::vector<bool> answers = {true, false, true, true};
  for (bool right : answers) {
    WorkResponse w = Work(run, "alice");
    ASSERT_EQ(w.outcome, "unit");
    ASSERT_EQ(SubmitOk(w, {{"label", right ? "pos" : "neg"}}), "accepted");
    EXPECT_EQ(Grant("alice", "g-disqualified"), std::nullopt);
  }
  // ... then wrong: the last four are wrong, right, right, wrong = 0.5 < 0.75.
  WorkResponse w = Work(run, "alice");
  ASSERT_EQ(w.outcome, "unit");
  ASSERT_EQ(SubmitOk(w, {{"label", "neg"}}), "accepted");
  EXPECT_EQ(Grant("alice", "g-disqualified"), 1);
  ExpectRefused(Work(run, "alice"), "not_qualified", "gold_disqualified");
}

// ---- capacity -----------------------------------------------------------------------

TEST_F(DispatcherTest, AllowedConcurrentReconnectsAndRefusesAnotherSession) {
  WriteUnits(3);
  const std::string run = Launch({});
  WorkResponse a = Work(run, "alice");
  ASSERT_EQ(a.outcome, "unit");
  WorkResponse again = Work(run, "alice");
  EXPECT_EQ(again.agent_id, a.agent_id);
  EXPECT_EQ(again.token, a.token);
  EXPECT_TRUE(again.reconnected);
  WorkResponse s1 = Work(run, "bob", "session-1");
  ASSERT_EQ(s1.outcome, "unit");
  ExpectRefused(Work(run, "bob", "session-2"), "no_work", "too_many_concurrent");
  EXPECT_EQ(Work(run, "bob", "session-1").agent_id, s1.agent_id);
}

TEST_F(DispatcherTest, MaximumUnitsPerWorkerCountsAcrossRunsOfTheTask) {
  WriteUnits(5);
  const Cfg cfg{.task_name = "shared", .task = "  maximum_units_per_worker: 2\n"};
  const std::string run1 = Launch(cfg);
  const std::string run2 = Launch(cfg);
  ASSERT_EQ(SubmitOk(Work(run1, "alice"), {{"label", "x"}}), "accepted");
  ASSERT_EQ(SubmitOk(Work(run2, "alice"), {{"label", "x"}}), "accepted");
  ExpectRefused(Work(run2, "alice"), "no_work", "max_units_reached");
  ExpectRefused(Work(run1, "alice"), "no_work", "max_units_reached");
  EXPECT_EQ(Work(run1, "bob").outcome, "unit");
  const std::string other = Launch({.task_name = "other", .task = "  maximum_units_per_worker: 2\n"});
  EXPECT_EQ(Work(other, "alice").outcome, "unit");  // another task name has its own count
}

TEST_F(DispatcherTest, UnitsPerItemGoToDifferentWorkers) {
  WriteUnits(2);
  const std::string run = Launch({.blueprint = "  units_per_item: 3\n"});
  for (const char* worker : {"alice", "bob", "carol"}) {
    for (int i = 0; i < 2; ++i) {
      WorkResponse w = Work(run, worker);
      ASSERT_EQ(w.outcome, "unit") << worker;
      ASSERT_EQ(SubmitOk(w, {{"label", "x"}}), "accepted");
    }
    ExpectRefused(Work(run, worker), "no_work", "no_units_left");  // never the same item twice
  }
  ExpectRefused(Work(run, "dave"), "no_work", "no_units_left");
  std::map<int64_t, std::set<std::string>> workers_of_item;
  std::set<int64_t> units;
  for (const auto& r : Rows(run)) {
    workers_of_item[r.item].insert(r.worker);
    ASSERT_TRUE(r.unit_id.has_value());
    EXPECT_TRUE(units.insert(*r.unit_id).second) << "unit " << *r.unit_id << " assigned twice";
  }
  ASSERT_EQ(workers_of_item.size(), 2u);
  for (const auto& [item, workers] : workers_of_item) EXPECT_EQ(workers.size(), 3u) << "item " << item;
}

TEST_F(DispatcherTest, NoUnitsLeftWhenAllAreTaken) {
  WriteUnits(1);
  const std::string run = Launch({});
  ASSERT_EQ(Work(run, "alice").outcome, "unit");
  ExpectRefused(Work(run, "bob"), "no_work", "no_units_left");
}

// ---- leases and errors ----------------------------------------------------------------

TEST_F(DispatcherTest, ExpiredLeaseReturnsTheUnitAndTheOldSubmitIsGone) {
  WriteUnits(1);
  const std::string run = Launch({.lease_s = 5});
  WorkResponse a = Work(run, "alice");
  ASSERT_EQ(a.outcome, "unit");
  ExpectRefused(Work(run, "bob"), "no_work", "no_units_left");
  env_.AdvanceSeconds(6);
  auto n = d_->ExpireOverdue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  auto view = d_->GetAgent(a.agent_id, a.token);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->status, AgentStatus::kTimeout);
  WorkResponse b = Work(run, "bob");
  ASSERT_EQ(b.outcome, "unit");
  EXPECT_EQ(b.data, a.data);
  EXPECT_TRUE(Submit(a, {{"label", "late"}}).status().IsGone());
  EXPECT_EQ(SubmitOk(b, {{"label", "x"}}), "accepted");
}

TEST_F(DispatcherTest, OverdueSubmitIsGoneEvenBeforeTheSweep) {
  WriteUnits(1);
  const std::string run = Launch({.lease_s = 5});
  WorkResponse a = Work(run, "alice");
  env_.AdvanceSeconds(6);
  EXPECT_TRUE(Submit(a, {{"label", "late"}}).status().IsGone());
  EXPECT_EQ(Work(run, "bob").outcome, "unit");
}

TEST_F(DispatcherTest, TokenDoubleSubmitUnknownAgentAndClosedRun) {
  WriteUnits(3);
  const std::string run = Launch({});
  WorkResponse a = Work(run, "alice");
  constexpr Status::Code kUnauthenticated = Status::Code::kUnauthenticated;
  EXPECT_EQ(d_->Submit(a.agent_id, "0123456789abcdef0123456789abcdef", {{"x", 1}}).status().code(), kUnauthenticated);
  EXPECT_EQ(d_->Submit(a.agent_id, "", {{"x", 1}}).status().code(), kUnauthenticated);
  EXPECT_EQ(d_->GetAgent(a.agent_id, "wrong").status().code(), kUnauthenticated);
  EXPECT_EQ(d_->Return(a.agent_id, "wrong").code(), kUnauthenticated);
  EXPECT_EQ(SubmitOk(a, {{"x", 1}}), "accepted");
  EXPECT_TRUE(Submit(a, {{"x", 2}}).status().IsConflict());
  auto view = d_->GetAgent(a.agent_id, a.token);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->submission, json({{"x", 1}}));  // the first submission stands
  EXPECT_TRUE(d_->Submit("ag_00000000000000000000000000000000", a.token, {{"x", 1}}).status().IsNotFound());
  WorkRequest unknown_run{"run_doesnotexist", {"local", "alice"}, ""};
  EXPECT_TRUE(d_->RequestWork(unknown_run).status().IsNotFound());
  ASSERT_TRUE(d_->CloseRun(run).ok());
  ExpectRefused(Work(run, "bob"), "no_work", "run_closed");
}

// ---- checks -------------------------------------------------------------------------

TEST_F(DispatcherTest, GoldCheckExactAndCaseInsensitive) {
  WriteUnits(3);
  WriteEval("golds.jsonl", 3, "gold");
  const std::string golds = "  min_golds: 10\n  max_incorrect_golds: 10\n  max_gold_units: 50\n";
  const std::string exact = Launch({.task_name = "exact", .blueprint = Golds("ge") + golds});
  ASSERT_EQ(SubmitOk(Work(exact, "alice"), {{"label", " POS"}}), "accepted");
  ASSERT_EQ(SubmitOk(Work(exact, "alice"), {{"label", "pos"}}), "accepted");
  EXPECT_EQ(Grant("alice", "ge-wrong-golds"), 1);
  EXPECT_EQ(Grant("alice", "ge-correct-golds"), 1);
  const std::string ci = Launch({.task_name = "ci",
                                 .blueprint = Golds("gc") + golds + "  gold_check: {match: case_insensitive}\n"});
  ASSERT_EQ(SubmitOk(Work(ci, "alice"), {{"label", " POS"}}), "accepted");
  ASSERT_EQ(SubmitOk(Work(ci, "alice"), {{"label", "neg"}}), "accepted");
  EXPECT_EQ(Grant("alice", "gc-correct-golds"), 1);
  EXPECT_EQ(Grant("alice", "gc-wrong-golds"), 1);
}

TEST_F(DispatcherTest, CommandCheckPassFailAndErrorCountsNothing) {
  WriteUnits(3);
  WriteEval("golds.jsonl", 3, "gold");
  const std::string script = Write("check.sh",
                                   "input=$(cat)\n"
                                   "case \"$input\" in\n"
                                   "  *'\"submission\":{\"verdict\":\"pos\"}'*) exit 0 ;;\n"
                                   "  *'\"submission\":{\"verdict\":\"crash\"}'*) exit 3 ;;\n"
                                   "  *) exit 1 ;;\n"
                                   "esac\n");
  const std::string run =
      Launch({.blueprint = Golds() + "  min_golds: 10\n  max_incorrect_golds: 10\n  max_gold_units: 50\n"
                                                 "  gold_check: {command: [/bin/sh, " + script + "]}\n"});
  ASSERT_EQ(SubmitOk(Work(run, "alice"), {{"verdict", "pos"}}), "accepted");
  EXPECT_EQ(Grant("alice", "g-correct-golds"), 1);
  ASSERT_EQ(SubmitOk(Work(run, "alice"), {{"verdict", "neg"}}), "accepted");
  EXPECT_EQ(Grant("alice", "g-wrong-golds"), 1);
  WorkResponse crash = Work(run, "alice");
  ASSERT_EQ(crash.outcome, "unit");
  EXPECT_EQ(SubmitOk(crash, {{"verdict", "crash"}}), "accepted");  // accepted, but nothing counted
  EXPECT_EQ(Grant("alice", "g-correct-golds"), 1);
  EXPECT_EQ(Grant("alice", "g-wrong-golds"), 1);
  auto rows = Rows(run);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].check_result, "pass");
  EXPECT_EQ(rows[1].check_result, "fail");
  EXPECT_EQ(rows[2].check_result, "error");
  EXPECT_EQ(rows[2].status, AgentStatus::kCompleted);
  EXPECT_EQ(rows[2].data, json({{"verdict", "crash"}}));
}

// ---- group commit (Dispatcher::Batch) -------------------------------------------------

}  // namespace
}  // namespace crowdgate::dispatcher_test
