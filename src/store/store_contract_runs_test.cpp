// The Store contract suite: runs, units, agents, decisions and the requester pages (see
// store_contract_test.cpp).
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {
namespace {

// ---- runs ----------------------------------------------------------------------------------------

TEST_P(StoreContractTest, CreateAndReadRuns) {
  RunRecord r = MakeRun("run_a", "taskA", 4, 3);
  Result<RunRecord> got = store_->GetRun("run_a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->task_name, "taskA");
  EXPECT_EQ(got->config_json, r.config_json);
  EXPECT_EQ(got->status, RunStatus::kOpen);
  EXPECT_EQ(got->created_at, r.created_at);
  EXPECT_EQ(got->num_items, 4);
  EXPECT_EQ(got->num_units, 12);
  EXPECT_EQ(got->gold_served, 0);
  EXPECT_EQ(got->screening_served, 0);
  EXPECT_EQ(*store_->GetItem("run_a", 2), R"({"i":2})");
  EXPECT_TRUE(store_->GetItem("run_a", 4).status().IsNotFound());
  EXPECT_TRUE(store_->GetItem("run_nope", 0).status().IsNotFound());
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"launched", 12}}));

  env_.AdvanceSeconds(1);
  MakeRun("run_b", "taskB", 1);
  Result<std::vector<RunRecord>> all = store_->ListRuns();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, "run_a");
  EXPECT_EQ((*all)[1].id, "run_b");

  ASSERT_TRUE(store_->SetRunStatus("run_a", RunStatus::kClosed).ok());
  EXPECT_EQ(store_->GetRun("run_a")->status, RunStatus::kClosed);
  EXPECT_TRUE(store_->SetRunStatus("run_nope", RunStatus::kClosed).IsNotFound());
  EXPECT_TRUE(store_->GetRun("run_nope").status().IsNotFound());
  EXPECT_TRUE(store_->UnitStatusCounts("run_nope").status().IsNotFound());
  EXPECT_TRUE(store_->RunAgents("run_nope").status().IsNotFound());
}

TEST_P(StoreContractTest, CreateRunErrors) {
  MakeRun("run_a", "task", 2);
  RunRecord dup;
  dup.id = "run_a";
  dup.task_name = "task";
  EXPECT_TRUE(store_->CreateRun(dup, {"{}"}, 1).IsConflict());
  EXPECT_EQ(store_->GetRun("run_a")->num_items, 2);  // untouched
  RunRecord r;
  r.id = "run_b";
  EXPECT_TRUE(store_->CreateRun(r, {"{}"}, 0).IsInvalidArgument());
  EXPECT_TRUE(store_->GetRun("run_b").status().IsNotFound());
}

TEST_P(StoreContractTest, CreateRunReportsProgress) {
  RunRecord r;
  r.id = "run_big";
  r.task_name = "task";
  std::vector<std::string> items(25000, "{}");
  std::vector<size_t> calls;
  ASSERT_TRUE(store_->CreateRun(r, items, 2, [&](size_t n) { calls.push_back(n); }).ok());
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls.back(), 25000u);
  EXPECT_EQ(store_->GetRun("run_big")->num_units, 50000);
  EXPECT_EQ(Counts("run_big")["launched"], 50000);
}

// ---- units and agents ----------------------------------------------------------------------------

TEST_P(StoreContractTest, ReserveUnitNeverGivesAWorkerTheSameItemTwice) {
  MakeRun("run_a", "task", 3, 2);  // units: item0 x2, item1 x2, item2 x2
  WorkerId alice = WorkerNamed("alice");
  std::set<int64_t> items;
  std::set<int64_t> units;
  for (int i = 0; i < 3; ++i) {
    AgentRecord a = Reserve("run_a", alice);
    EXPECT_EQ(a.run_id, "run_a");
    EXPECT_EQ(a.worker.name, "alice");
    ASSERT_TRUE(a.unit_id.has_value());
    EXPECT_TRUE(items.insert(a.item_index).second) << "item " << a.item_index << " given twice";
    units.insert(*a.unit_id);
  }
  // Three copies remain, but alice has held every item.
  Result<std::optional<AgentRecord>> none = store_->ReserveUnit("run_a", NewAgent("run_a", alice));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // Returning a unit does not make its item available to alice again.
  Result<std::vector<AgentRecord>> open = store_->OpenAgents("run_a", alice);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 3u);
  AgentFinish ret;
  ret.agent_id = (*open)[0].id;
  ret.expect_status = AgentStatus::kInTask;
  ret.new_status = AgentStatus::kReturned;
  ret.release_unit = true;
  ASSERT_TRUE(store_->FinishAgent(ret).ok());
  none = store_->ReserveUnit("run_a", NewAgent("run_a", alice));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // Bob gets the lowest free unit, which is the one alice returned (item 0's first copy).
  WorkerId bob = WorkerNamed("bob");
  AgentRecord b = Reserve("run_a", bob);
  EXPECT_EQ(*b.unit_id, *(*open)[0].unit_id);
}

TEST_P(StoreContractTest, ReserveUnitNeverGivesOneUnitToTwoAgents) {
  MakeRun("run_a", "task", 5, 2);
  std::set<int64_t> units;
  for (int w = 0; w < 6; ++w) {
    WorkerId id = WorkerNamed("w" + std::to_string(w));
    std::set<int64_t> items;
    while (true) {
      Result<std::optional<AgentRecord>> r = store_->ReserveUnit("run_a", NewAgent("run_a", id));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!r->has_value()) break;
      EXPECT_TRUE(units.insert(*(*r)->unit_id).second) << "unit " << *(*r)->unit_id << " given twice";
      EXPECT_TRUE(items.insert((*r)->item_index).second) << "item " << (*r)->item_index << " given twice";
    }
  }
  EXPECT_EQ(units.size(), 10u);
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"assigned", 10}}));
  EXPECT_EQ(store_->RunAgents("run_a")->size(), 10u);
}

TEST_P(StoreContractTest, ReserveUnitFillsTheAgent) {
  MakeRun("run_a", "task", 2);
  WorkerId alice = WorkerNamed("alice");
  AgentRecord req = NewAgent("run_a", alice);
  req.session = "sess-1";
  Result<std::optional<AgentRecord>> r = store_->ReserveUnit("run_a", req);
  ASSERT_TRUE(r.ok() && r->has_value());
  const AgentRecord& a = **r;
  EXPECT_EQ(a.item_index, 0);
  Result<AgentRecord> got = store_->GetAgent(req.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, req.id);
  EXPECT_EQ(got->token_hash, req.token_hash);
  EXPECT_EQ(got->run_id, "run_a");
  EXPECT_EQ(got->unit_id, a.unit_id);
  EXPECT_EQ(got->worker_id, alice);
  EXPECT_EQ(got->worker, (WorkerRef{"local", "alice"}));
  EXPECT_EQ(got->kind, AgentKind::kUnit);
  EXPECT_EQ(got->status, AgentStatus::kInTask);
  EXPECT_EQ(got->item_index, 0);
  EXPECT_EQ(got->session, "sess-1");
  EXPECT_EQ(got->created_at, req.created_at);
  EXPECT_EQ(got->deadline, req.deadline);
  EXPECT_FALSE(got->submitted_at.has_value());
  EXPECT_EQ(got->data_json, "");
  EXPECT_EQ(got->check_result, "");

  // A duplicate agent id is a conflict and reserves nothing.
  EXPECT_TRUE(store_->ReserveUnit("run_a", req).status().IsConflict());
  EXPECT_EQ(Counts("run_a")["launched"], 1);
  EXPECT_TRUE(store_->ReserveUnit("run_nope", NewAgent("run_nope", alice)).status().IsNotFound());
  EXPECT_TRUE(store_->ReserveUnit("run_a", NewAgent("run_a", 987654)).status().IsNotFound());
  EXPECT_TRUE(store_->GetAgent("ag_nope").status().IsNotFound());
}

TEST_P(StoreContractTest, ReserveUnitWithItemReturnsTheReservedUnitsItem) {
  MakeRun("run_a", "task", 3);
  WorkerId alice = WorkerNamed("alice");
  for (int i = 0; i < 3; ++i) {
    std::string item;
    Result<std::optional<AgentRecord>> r = store_->ReserveUnitWithItem("run_a", NewAgent("run_a", alice), &item);
    ASSERT_TRUE(r.ok() && r->has_value()) << r.status().ToString();
    EXPECT_EQ(item, *store_->GetItem("run_a", (*r)->item_index));
    EXPECT_EQ(item, R"({"i":)" + std::to_string((*r)->item_index) + "}");
  }
  std::string item = "untouched";
  Result<std::optional<AgentRecord>> none = store_->ReserveUnitWithItem("run_a", NewAgent("run_a", alice), &item);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(item, "untouched");
}

TEST_P(StoreContractTest, ABatchKeepsEachCallAllOrNothingAndCommitsOrRollsBackAsAWhole) {
  MakeRun("run_a", "task", 3);
  WorkerId alice = WorkerNamed("alice");
  AgentRecord first = NewAgent("run_a", alice);
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->ReserveUnit("run_a", first).ok());
  // A failing call (duplicate agent id) inside the batch changes nothing and spares the first.
  EXPECT_TRUE(store_->ReserveUnit("run_a", first).status().IsConflict());
  ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"assigned", 1}, {"launched", 2}}));

  AgentRecord second = NewAgent("run_a", alice);
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->ReserveUnit("run_a", second).ok());
  (void)store_->EndBatch(/*commit=*/false);
  // The suite runs every backend with batching on: the reservation was rolled back with the batch.
  EXPECT_EQ(Counts("run_a")["assigned"], 1);
  EXPECT_FALSE(store_->GetAgent(second.id).ok());
}

TEST_P(StoreContractTest, ABatchIsInvisibleToOtherConnectionsUntilItCommits) {
  if (!GetParam().shared) GTEST_SKIP() << "needs two connections to one database";
  MakeRun("run_a", "task", 3);
  const WorkerId alice = WorkerNamed("alice");
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  AgentRecord agent = NewAgent("run_a", alice);
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->BeginDecision(alice).ok());
  ASSERT_TRUE(store_->ReserveUnit("run_a", agent).ok());
  ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
  // Answered inside the batch, but not stored until the batch commits.
  EXPECT_TRUE(other->GetAgent(agent.id).status().IsNotFound());
  ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
  EXPECT_TRUE(other->GetAgent(agent.id).ok());
  EXPECT_FALSE(store_->LastBatchMayBeRetried());
}

TEST_P(StoreContractTest, AFailedWriteInADecisionUndoesTheDecisionButNotTheBatch) {
  MakeRun("run_a", "task", 4);
  const WorkerId w1 = WorkerNamed("w1");
  const WorkerId w2 = WorkerNamed("w2");
  AgentRecord kept = NewAgent("run_a", w1);
  AgentRecord undone = NewAgent("run_a", w2);
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->BeginDecision(w1).ok());
  ASSERT_TRUE(store_->ReserveUnit("run_a", kept).ok());
  ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
  ASSERT_TRUE(store_->BeginDecision(w2).ok());
  ASSERT_TRUE(store_->ReserveUnit("run_a", undone).ok());
  AgentRecord duplicate = NewAgent("run_a", w2);
  duplicate.id = kept.id;  // fails: the id is taken
  EXPECT_TRUE(store_->ReserveUnit("run_a", duplicate).status().IsConflict());
  // After a failed call the decision only accepts EndDecision: it undoes its first reservation too.
  ASSERT_TRUE(store_->EndDecision(/*commit=*/false).ok());
  ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
  EXPECT_TRUE(store_->GetAgent(kept.id).ok());
  EXPECT_TRUE(store_->GetAgent(undone.id).status().IsNotFound());
  EXPECT_EQ(Counts("run_a")["assigned"], 1);
}

TEST_P(StoreContractTest, CreateEvalUnitRespectsTheCap) {
  MakeRun("run_a", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  for (int i = 0; i < 2; ++i) {
    AgentRecord g = NewAgent("run_a", alice, AgentKind::kGold);
    g.item_index = 10 + i;
    g.eval_set = "golds";
    Result<bool> ok = store_->CreateEvalUnit("run_a", g, 2, "golds");
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_TRUE(*ok);
    Result<AgentRecord> got = store_->GetAgent(g.id);
    ASSERT_TRUE(got.ok());
    EXPECT_TRUE(got->unit_id.has_value());
    EXPECT_EQ(got->kind, AgentKind::kGold);
    EXPECT_EQ(got->item_index, 10 + i);
  }
  AgentRecord over = NewAgent("run_a", alice, AgentKind::kGold);
  over.item_index = 12;
  Result<bool> full = store_->CreateEvalUnit("run_a", over, 2, "golds");
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(*full);
  EXPECT_TRUE(store_->GetAgent(over.id).status().IsNotFound());
  EXPECT_EQ(store_->GetRun("run_a")->gold_served, 2);
  EXPECT_EQ(*store_->GoldsSeen(alice, "golds"), (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(store_->RunAgents("run_a")->size(), 2u);
  // Eval units are not run progress.
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"launched", 1}}));

  AgentRecord s = NewAgent("run_a", alice, AgentKind::kScreening);
  s.item_index = 0;
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", s, 1, ""));
  AgentRecord s2 = NewAgent("run_a", alice, AgentKind::kScreening);
  EXPECT_FALSE(*store_->CreateEvalUnit("run_a", s2, 1, ""));
  Result<RunRecord> run = store_->GetRun("run_a");
  EXPECT_EQ(run->screening_served, 1);
  EXPECT_EQ(run->gold_served, 2);
  EXPECT_TRUE(store_->GoldsSeen(alice, "")->empty());  // screening is not recorded as gold

  EXPECT_TRUE(store_->CreateEvalUnit("run_nope", NewAgent("run_nope", alice, AgentKind::kGold), 5, "g").status().IsNotFound());
  EXPECT_TRUE(store_->CreateEvalUnit("run_a", NewAgent("run_a", alice, AgentKind::kUnit), 5, "g").status().IsInvalidArgument());
}

TEST_P(StoreContractTest, FinishAgentSubmitsOnceAndAppliesGrants) {
  MakeRun("run_a", "task", 2);
  QualId done = Qual("units_done");
  WorkerId alice = WorkerNamed("alice");
  AgentRecord a = Reserve("run_a", alice);
  env_.AdvanceSeconds(5);
  AgentFinish f = Submit(a, "pass");
  GrantOp inc = Op(GrantOp::Kind::kAdd, "alice", done, 1);
  f.grant_ops = {inc};
  Result<std::vector<AuditEntry>> out = store_->FinishAgent(f);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].kind, AuditEntry::Kind::kGrant);
  EXPECT_EQ((*out)[0].worker_id, alice);
  EXPECT_GT((*out)[0].seq, 0);

  Result<AgentRecord> got = store_->GetAgent(a.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, AgentStatus::kCompleted);
  EXPECT_EQ(got->data_json, R"({"answer":1})");
  EXPECT_EQ(got->submitted_at, env_.NowMicros());
  EXPECT_EQ(got->check_result, "pass");
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"completed", 1}, {"launched", 1}}));
  EXPECT_EQ(GrantOf(alice, done)->value, 1);

  // The second submit is a conflict and changes nothing, counter included.
  Result<std::vector<AuditEntry>> twice = store_->FinishAgent(f);
  EXPECT_TRUE(twice.status().IsConflict()) << twice.status().ToString();
  EXPECT_EQ(GrantOf(alice, done)->value, 1);
  EXPECT_TRUE(store_->OpenAgents("run_a", alice)->empty());

  AgentFinish missing = f;
  missing.agent_id = "ag_nope";
  EXPECT_TRUE(store_->FinishAgent(missing).status().IsNotFound());
}

TEST_P(StoreContractTest, FinishAgentIsAtomic) {
  MakeRun("run_a", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  AgentRecord a = Reserve("run_a", alice);
  AgentFinish f = Submit(a);
  f.grant_ops = {Op(GrantOp::Kind::kAdd, "alice", 424242, 1)};  // unknown qualification
  EXPECT_TRUE(store_->FinishAgent(f).status().IsNotFound());
  EXPECT_EQ(store_->GetAgent(a.id)->status, AgentStatus::kInTask);
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"assigned", 1}}));
  // The agent can still submit properly.
  f.grant_ops.clear();
  EXPECT_TRUE(store_->FinishAgent(f).ok());
}

TEST_P(StoreContractTest, FinishAgentReleasesAndRefunds) {
  MakeRun("run_a", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  AgentRecord g = NewAgent("run_a", alice, AgentKind::kGold);
  g.item_index = 3;
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 5, "golds"));
  AgentRecord s = NewAgent("run_a", alice, AgentKind::kScreening);
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", s, 5, ""));
  EXPECT_EQ(store_->GetRun("run_a")->gold_served, 1);

  AgentFinish timeout;
  timeout.agent_id = g.id;
  timeout.expect_status = AgentStatus::kInTask;
  timeout.new_status = AgentStatus::kTimeout;
  timeout.unit_status = UnitStatus::kExpired;
  timeout.refund_gold_slot = true;
  timeout.refund_screening_slot = true;  // both refunds at once: the counters never go below 0
  ASSERT_TRUE(store_->FinishAgent(timeout).ok());
  Result<RunRecord> run = store_->GetRun("run_a");
  EXPECT_EQ(run->gold_served, 0);
  EXPECT_EQ(run->screening_served, 0);
  AgentFinish again = timeout;
  again.agent_id = s.id;
  ASSERT_TRUE(store_->FinishAgent(again).ok());
  run = store_->GetRun("run_a");
  EXPECT_EQ(run->gold_served, 0);
  EXPECT_EQ(run->screening_served, 0);
  EXPECT_EQ(store_->GetAgent(g.id)->status, AgentStatus::kTimeout);

  // A released real unit goes back to launched with no worker, and can be reserved again.
  AgentRecord a = Reserve("run_a", alice);
  AgentFinish ret;
  ret.agent_id = a.id;
  ret.expect_status = AgentStatus::kInTask;
  ret.new_status = AgentStatus::kReturned;
  ret.release_unit = true;
  ASSERT_TRUE(store_->FinishAgent(ret).ok());
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"launched", 1}}));
  AgentRecord b = Reserve("run_a", WorkerNamed("bob"));
  EXPECT_EQ(b.unit_id, a.unit_id);
  EXPECT_EQ(store_->CountWorkerUnitsForTask("task", alice).value(), 0);
}

TEST_P(StoreContractTest, OnboardingOpenAndOverdueAgents) {
  MakeRun("run_a", "task", 3);
  MakeRun("run_b", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  WorkerId bob = WorkerNamed("bob");
  AgentRecord onb = NewAgent("run_a", alice, AgentKind::kOnboarding);
  onb.deadline = env_.NowMicros() + 10 * kSec;
  ASSERT_TRUE(store_->CreateOnboardingAgent(onb).ok());
  EXPECT_TRUE(store_->CreateOnboardingAgent(onb).IsConflict());
  EXPECT_FALSE(store_->GetAgent(onb.id)->unit_id.has_value());
  AgentRecord missing_run = NewAgent("run_nope", alice, AgentKind::kOnboarding);
  EXPECT_TRUE(store_->CreateOnboardingAgent(missing_run).IsNotFound());

  env_.AdvanceSeconds(1);
  AgentRecord a1 = Reserve("run_a", alice);  // deadline now + 60 s
  AgentRecord b1 = Reserve("run_b", bob);
  Result<std::vector<AgentRecord>> open = store_->OpenAgents("run_a", alice);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].id, onb.id);  // oldest first
  EXPECT_EQ((*open)[1].id, a1.id);
  EXPECT_TRUE(store_->OpenAgents("run_a", bob)->empty());
  EXPECT_TRUE(store_->OpenAgents("run_nope", bob).status().IsNotFound());

  EXPECT_TRUE(store_->OverdueAgents(env_.NowMicros())->empty());
  Result<std::vector<AgentRecord>> overdue = store_->OverdueAgents(onb.deadline);
  ASSERT_TRUE(overdue.ok());
  ASSERT_EQ(overdue->size(), 1u);
  EXPECT_EQ((*overdue)[0].id, onb.id);
  overdue = store_->OverdueAgents(env_.NowMicros() + 3600 * kSec);
  ASSERT_TRUE(overdue.ok());
  EXPECT_EQ(overdue->size(), 3u);  // across runs

  // Finished agents are neither open nor overdue.
  AgentFinish passed;
  passed.agent_id = onb.id;
  passed.expect_status = AgentStatus::kOnboarding;
  passed.new_status = AgentStatus::kPassed;
  ASSERT_TRUE(store_->FinishAgent(passed).ok());
  ASSERT_TRUE(store_->FinishAgent(Submit(b1)).ok());
  overdue = store_->OverdueAgents(env_.NowMicros() + 3600 * kSec);
  ASSERT_EQ(overdue->size(), 1u);
  EXPECT_EQ((*overdue)[0].id, a1.id);
}

TEST_P(StoreContractTest, GoldsSeenAndRecentGoldResults) {
  MakeRun("run_a", "task", 1);
  MakeRun("run_b", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  const char* results[] = {"pass", "fail", "error", "pass", "", "fail"};
  int i = 0;
  for (const char* result : results) {
    AgentRecord g = NewAgent(i % 2 == 0 ? "run_a" : "run_b", alice, AgentKind::kGold);
    g.item_index = i % 3;  // items repeat: golds_seen keeps one row each
    g.eval_set = "golds";
    ASSERT_TRUE(*store_->CreateEvalUnit(g.run_id, g, 100, "golds"));
    AgentFinish f = Submit(g, result);
    ASSERT_TRUE(store_->FinishAgent(f).ok());
    ++i;
  }
  AgentRecord other = NewAgent("run_a", alice, AgentKind::kGold);
  other.eval_set = "other_golds";
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", other, 100, "other_golds"));
  ASSERT_TRUE(store_->FinishAgent(Submit(other, "pass")).ok());

  EXPECT_EQ(*store_->GoldsSeen(alice, "golds"), (std::vector<int64_t>{0, 1, 2}));
  // Scored results only, oldest first, across runs: pass fail pass fail.
  EXPECT_EQ(*store_->RecentGoldResults(alice, "golds", 10), (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(*store_->RecentGoldResults(alice, "golds", 3), (std::vector<bool>{false, true, false}));
  EXPECT_TRUE(store_->RecentGoldResults(alice, "golds", 0)->empty());
  EXPECT_EQ(*store_->RecentGoldResults(alice, "other_golds", 10), (std::vector<bool>{true}));

  ASSERT_TRUE(store_->ForgetGoldsSeen(alice, "golds").ok());
  EXPECT_TRUE(store_->GoldsSeen(alice, "golds")->empty());
  EXPECT_EQ(store_->GoldsSeen(alice, "other_golds")->size(), 1u);
  EXPECT_TRUE(store_->GoldsSeen(987654, "golds").status().IsNotFound());
}

TEST_P(StoreContractTest, CountWorkerUnitsForTaskAndReview) {
  MakeRun("run_a", "task", 3);
  MakeRun("run_b", "task", 3);
  MakeRun("run_c", "other_task", 3);
  WorkerId alice = WorkerNamed("alice");
  AgentRecord a1 = Reserve("run_a", alice);
  AgentRecord a2 = Reserve("run_a", alice);
  AgentRecord b1 = Reserve("run_b", alice);
  Reserve("run_c", alice);
  AgentRecord g = NewAgent("run_a", alice, AgentKind::kGold);
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 10, "golds"));  // golds do not count
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("task", alice), 3);
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("other_task", alice), 1);
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("no_such_task", alice), 0);
  EXPECT_TRUE(store_->CountWorkerUnitsForTask("task", 987654).status().IsNotFound());

  ASSERT_TRUE(store_->FinishAgent(Submit(a1)).ok());
  ASSERT_TRUE(store_->FinishAgent(Submit(b1)).ok());
  AgentFinish ret;
  ret.agent_id = a2.id;
  ret.expect_status = AgentStatus::kInTask;
  ret.new_status = AgentStatus::kReturned;
  ret.release_unit = true;
  ASSERT_TRUE(store_->FinishAgent(ret).ok());
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("task", alice), 2);

  // Review: only submitted units change; units of another run are not touched.
  Result<int64_t> n = store_->ReviewUnits("run_a", {*a1.unit_id, *a2.unit_id, *b1.unit_id, 999999}, UnitStatus::kAccepted);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"accepted", 1}, {"launched", 2}}));
  EXPECT_EQ(Counts("run_b")["completed"], 1);
  EXPECT_EQ(store_->GetAgent(a1.id)->status, AgentStatus::kApproved);   // the submitting agent follows its unit
  EXPECT_EQ(store_->GetAgent(a2.id)->status, AgentStatus::kReturned);   // an agent that gave the unit back does not
  EXPECT_EQ(store_->GetAgent(b1.id)->status, AgentStatus::kCompleted);  // another run is not touched
  EXPECT_EQ(*store_->ReviewUnits("run_a", {*a1.unit_id}, UnitStatus::kAccepted), 0);  // already accepted
  EXPECT_EQ(*store_->ReviewUnits("run_a", {*a1.unit_id}, UnitStatus::kSoftRejected), 1);  // reviewed again
  EXPECT_EQ(store_->GetAgent(a1.id)->status, AgentStatus::kSoftRejected);
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("task", alice), 2);
  EXPECT_TRUE(store_->ReviewUnits("run_a", {*a1.unit_id}, UnitStatus::kLaunched).status().IsInvalidArgument());
  EXPECT_TRUE(store_->ReviewUnits("run_nope", {1}, UnitStatus::kAccepted).status().IsNotFound());
}

TEST_P(StoreContractTest, FinishAgentRejectsUnitsForRelabelling) {
  MakeRun("run_a", "task", 2);
  MakeRun("run_b", "task", 1);
  const QualId counter = store_->CreateQualification("task-rejected-units", "")->id;
  WorkerId spammer = WorkerNamed("spammer");
  AgentRecord a0 = Reserve("run_a", spammer);
  ASSERT_TRUE(store_->FinishAgent(Submit(a0)).ok());
  AgentRecord other = Reserve("run_b", spammer);
  ASSERT_TRUE(store_->FinishAgent(Submit(other)).ok());
  AgentRecord a1 = Reserve("run_a", spammer);
  // Submitting a1 rejects a0 and a1 (the unit being submitted), in the same transaction as the
  // grant op that records it; a unit of another run and an unknown unit are left alone.
  AgentFinish f = Submit(a1);
  f.reject_unit_ids = {*a0.unit_id, *a1.unit_id, *other.unit_id, 999999};
  GrantOp op;
  op.kind = GrantOp::Kind::kAdd;
  op.worker = WorkerRef{"local", "spammer"};
  op.qual_id = counter;
  op.value = 2;
  op.actor = "crowdgate:quality";
  op.reason = "fast_submissions: 2 of the last 2 units under 2 s";
  f.grant_ops.push_back(op);
  Result<std::vector<AuditEntry>> out = store_->FinishAgent(f);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ(out->at(0).reason, op.reason);
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"launched", 2}, {"rejected", 2}}));
  EXPECT_EQ(Counts("run_b"), (std::map<std::string, int64_t>{{"completed", 1}}));
  EXPECT_EQ(store_->GetAgent(a0.id)->status, AgentStatus::kRejected);
  EXPECT_EQ(store_->GetAgent(a1.id)->status, AgentStatus::kRejected);
  EXPECT_EQ(store_->GetAgent(other.id)->status, AgentStatus::kCompleted);
  EXPECT_EQ(store_->GetRun("run_a")->num_units, 4);
  // The new copies go to someone who never held the items, never back to the spammer.
  EXPECT_FALSE(store_->ReserveUnit("run_a", NewAgent("run_a", spammer))->has_value());
  WorkerId honest = WorkerNamed("honest");
  std::set<int64_t> items;
  AgentRecord h0 = Reserve("run_a", honest);
  items.insert(h0.item_index);
  items.insert(Reserve("run_a", honest).item_index);
  EXPECT_EQ(items, (std::set<int64_t>{0, 1}));
  // A unit that is no longer completed (here: rejected already) is not copied again.
  AgentFinish again = Submit(h0);
  again.reject_unit_ids = {*a0.unit_id};
  ASSERT_TRUE(store_->FinishAgent(again).ok());
  EXPECT_EQ(store_->GetRun("run_a")->num_units, 4);
}

TEST_P(StoreContractTest, FinishAgentRejectionRollsBackWithTheSubmission) {
  MakeRun("run_a", "task", 1);
  WorkerId w = WorkerNamed("w");
  AgentRecord a = Reserve("run_a", w);
  AgentFinish f = Submit(a);
  f.reject_unit_ids = {*a.unit_id};
  GrantOp bad;
  bad.worker = WorkerRef{"local", "w"};
  bad.qual_id = 987654;  // unknown qualification: the whole finish fails
  f.grant_ops.push_back(bad);
  EXPECT_TRUE(store_->FinishAgent(f).status().IsNotFound());
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"assigned", 1}}));
  EXPECT_EQ(store_->GetRun("run_a")->num_units, 1);
}

TEST_P(StoreContractTest, RunAgentsOldestFirst) {
  MakeRun("run_a", "task", 3);
  std::vector<std::string> ids;
  for (const char* name : {"w1", "w2", "w3"}) {
    ids.push_back(Reserve("run_a", WorkerNamed(name)).id);
  }
  Result<std::vector<AgentRecord>> all = store_->RunAgents("run_a");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ((*all)[i].id, ids[i]);
}

TEST_P(StoreContractTest, ListRunAgentsPagesWithFiltersAndACursor) {
  MakeRun("run_a", "task", 10);
  MakeRun("run_b", "task", 3);
  WorkerId alice = WorkerNamed("alice");
  WorkerId bob = WorkerNamed("bob");
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Reserve("run_a", i % 2 == 0 ? alice : bob).id);
  Reserve("run_b", alice);  // another run never shows
  AgentRecord g = NewAgent("run_a", bob, AgentKind::kGold);
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 10, "golds"));
  ids.push_back(g.id);
  ASSERT_TRUE(store_->FinishAgent(Submit(store_->GetAgent(ids[1]).value())).ok());

  // Pages of 2 walk every agent once, oldest first; the last page says there is no more.
  std::vector<std::string> seen;
  int64_t cursor = 0;
  int pages = 0;
  do {
    Result<AgentPage> p = store_->ListRunAgents("run_a", AgentFilter{}, cursor, 2);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (const AgentRecord& a : p->agents) seen.push_back(a.id);
    cursor = p->next_cursor;
    ASSERT_LT(++pages, 10);
  } while (cursor != 0);
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(pages, 3);

  AgentFilter of_alice;
  of_alice.worker = alice;
  Result<AgentPage> a = store_->ListRunAgents("run_a", of_alice, 0, 100);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->agents.size(), 2u);
  EXPECT_EQ(a->agents[0].id, ids[0]);
  EXPECT_EQ(a->agents[1].id, ids[2]);
  EXPECT_EQ(a->next_cursor, 0);

  AgentFilter completed;
  completed.status = "completed";
  Result<AgentPage> c = store_->ListRunAgents("run_a", completed, 0, 100);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->agents.size(), 1u);
  EXPECT_EQ(c->agents[0].id, ids[1]);

  AgentFilter golds;
  golds.kind = "gold";
  golds.worker = bob;
  Result<AgentPage> gp = store_->ListRunAgents("run_a", golds, 0, 100);
  ASSERT_TRUE(gp.ok());
  ASSERT_EQ(gp->agents.size(), 1u);
  EXPECT_EQ(gp->agents[0].id, g.id);
  EXPECT_TRUE(store_->ListRunAgents("run_nope", AgentFilter{}, 0, 10).status().IsNotFound());
}

TEST_P(StoreContractTest, ListRunWorkerStatsCountsPerWorkerAndPagesByWorkerId) {
  MakeRun("run_a", "task", 10);
  WorkerId alice = WorkerNamed("alice");
  WorkerId bob = WorkerNamed("bob");
  WorkerId carol = WorkerNamed("carol");
  AgentRecord a1 = Reserve("run_a", alice);
  AgentRecord a2 = Reserve("run_a", alice);
  AgentFinish f1 = Submit(a1);
  f1.submitted_at = a1.created_at + 3 * kSec;
  ASSERT_TRUE(store_->FinishAgent(f1).ok());
  AgentFinish f2 = Submit(a2);
  f2.submitted_at = a2.created_at + 5 * kSec;
  ASSERT_TRUE(store_->FinishAgent(f2).ok());
  for (const char* check : {"pass", "pass", "fail"}) {
    AgentRecord g = NewAgent("run_a", alice, AgentKind::kGold);
    ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 10, "golds"));
    ASSERT_TRUE(store_->FinishAgent(Submit(g, check)).ok());
  }
  AgentRecord ob = NewAgent("run_a", bob, AgentKind::kOnboarding);
  ASSERT_TRUE(store_->CreateOnboardingAgent(ob).ok());
  Reserve("run_a", carol);

  Result<std::vector<WorkerRunStats>> all = store_->ListRunWorkerStats("run_a", 0, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  const WorkerRunStats& s = (*all)[0];
  EXPECT_EQ(s.worker_id, alice);
  EXPECT_EQ(s.worker.ToString(), "local:alice");
  EXPECT_EQ(s.units_submitted, 2);
  EXPECT_EQ(s.units_open, 0);
  EXPECT_EQ(s.golds_right, 2);
  EXPECT_EQ(s.golds_wrong, 1);
  EXPECT_EQ(s.unit_seconds_total_micros, 8 * kSec);
  EXPECT_EQ(s.onboarding, "");
  EXPECT_EQ((*all)[1].worker_id, bob);
  EXPECT_EQ((*all)[1].onboarding, "onboarding");
  EXPECT_EQ((*all)[1].units_open, 1);
  EXPECT_EQ((*all)[2].units_open, 1);

  Result<std::vector<WorkerRunStats>> page = store_->ListRunWorkerStats("run_a", alice, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].worker_id, bob);
  EXPECT_TRUE(store_->ListRunWorkerStats("run_nope", 0, 10).status().IsNotFound());
}

TEST_P(StoreContractTest, RunThroughputCountsSubmissionsPerBucket) {
  MakeRun("run_a", "task", 10);
  WorkerId alice = WorkerNamed("alice");
  const int64_t base = 1000 * 60 * kSec;
  for (int64_t at : {base + 1, base + 2, base + 61 * kSec}) {
    AgentRecord a = Reserve("run_a", alice);
    AgentFinish f = Submit(a);
    f.submitted_at = at;
    ASSERT_TRUE(store_->FinishAgent(f).ok());
  }
  Reserve("run_a", alice);  // not submitted: not counted
  Result<std::vector<std::pair<int64_t, int64_t>>> t = store_->RunThroughput("run_a", 60 * kSec, 0);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, (std::vector<std::pair<int64_t, int64_t>>{{base, 2}, {base + 60 * kSec, 1}}));
  // Only submissions at or after `since`.
  EXPECT_EQ(*store_->RunThroughput("run_a", 60 * kSec, base + 2),
            (std::vector<std::pair<int64_t, int64_t>>{{base, 1}, {base + 60 * kSec, 1}}));
  EXPECT_TRUE(store_->RunThroughput("run_a", 0, 0).status().IsInvalidArgument());
}

// ---- decisions ---------------------------------------------------------------------------------

TEST_P(StoreContractTest, ADecisionIsAllOrNothingInsideABatchAndOutside) {
  MakeRun("run_a", "task", 4);
  const WorkerId w1 = WorkerNamed("w1"), w2 = WorkerNamed("w2"), w3 = WorkerNamed("w3");
  const auto open_of = [&](WorkerId w) {
    Result<std::vector<AgentRecord>> open = store_->OpenAgents("run_a", w);
    EXPECT_TRUE(open.ok()) << open.status().ToString();
    return open.ok() ? open->size() : 0;
  };
  // Outside a batch: an undone decision leaves nothing; a kept one is stored.
  ASSERT_TRUE(store_->BeginDecision(w1).ok());
  Reserve("run_a", w1);
  ASSERT_TRUE(store_->EndDecision(/*commit=*/false).ok());
  EXPECT_EQ(open_of(w1), 0u);
  ASSERT_TRUE(store_->BeginDecision(w1).ok());
  Reserve("run_a", w1);
  ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
  EXPECT_EQ(open_of(w1), 1u);

  // Inside a batch: the batch keeps the decisions kept, whatever another decision did.
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->BeginDecision(w2).ok());
  Reserve("run_a", w2);
  ASSERT_TRUE(store_->EndDecision(/*commit=*/false).ok());
  ASSERT_TRUE(store_->BeginDecision(w3).ok());
  Reserve("run_a", w3);
  ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
  ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
  EXPECT_EQ(open_of(w2), 0u);
  EXPECT_EQ(open_of(w3), 1u);
  EXPECT_EQ(Counts("run_a")["assigned"], 2);
}

// Both ways to begin one: BeginDecision, and BeginRunDecision, whose read ahead (when the backend
// takes it with the lock) must still come after the wait.
TEST_P(StoreContractTest, ADecisionAboutAWorkerWaitsForAnotherConnectionsDecisionAboutThem) {
  if (!GetParam().shared) GTEST_SKIP() << "needs two connections to one database";
  MakeRun("run_a", "task", 4);
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  for (const bool run_decision : {false, true}) {
    SCOPED_TRACE(run_decision ? "BeginRunDecision" : "BeginDecision");
    const WorkerId w = WorkerNamed(run_decision ? "w2" : "w1");
    ASSERT_TRUE(store_->BeginDecision(w).ok());
    ASSERT_EQ(store_->OpenAgents("run_a", w)->size(), 0u);
    std::atomic<bool> first_committed{false};
    size_t seen_by_second = 99;
    std::thread second([&] {
      // Waits for the first decision to end.
      Status began = run_decision ? other->BeginRunDecision(w, "run_a") : other->BeginDecision(w);
      EXPECT_TRUE(began.ok()) << began.ToString();
      EXPECT_TRUE(first_committed.load()) << "the second decision began while the first was still open";
      Result<std::vector<AgentRecord>> open = other->OpenAgents("run_a", w);
      EXPECT_TRUE(open.ok()) << open.status().ToString();
      if (open.ok()) seen_by_second = open->size();
      EXPECT_TRUE(other->EndDecision(/*commit=*/true).ok());
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Reserve("run_a", w);
    first_committed = true;
    ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
    second.join();
    EXPECT_EQ(seen_by_second, 1u) << "the second decision must see the first one's reservation";
  }
}

}  // namespace
}  // namespace crowdgate::store_test
