// Group commit and concurrency in the dispatcher: a batch commits every decision at once and only
// at the end, a failing call spares the others, an aborted batch forgets its decisions, a command
// check never runs inside a batch, and eight workers race for the last units and gold slots (this
// one runs under ThreadSanitizer).
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "engine/dispatcher_test_fixture.hpp"

namespace crowdgate::dispatcher_test {
namespace {

// What another process sees of the database right now.
std::vector<AgentRecord> AgentsSeenFromOutside(const std::string& db, const std::string& run) {
  auto store = Store::Open(db, Env::Default());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return {};
  auto agents = (*store)->RunAgents(run);
  EXPECT_TRUE(agents.ok()) << agents.status().ToString();
  return agents.ok() ? *agents : std::vector<AgentRecord>{};
}

TEST_F(DispatcherTest, BatchCommitsEveryDecisionAtOnceAndOnlyAtTheEnd) {
  const std::string db = dir_.File("batch.db");
  OpenAt(db);
  WriteUnits(5);
  const std::string run = Launch({});
  std::vector<WorkResponse> got;
  Status st = d_->Batch([&] {
    for (const char* w : {"alice", "bob", "carol"}) {
      got.push_back(Work(run, w));
      // Not yet durable: nobody outside this batch sees the agent.
      EXPECT_EQ(AgentsSeenFromOutside(db, run).size(), 0u);
    }
    // Inside the batch the dispatcher sees its own decisions: a reconnect, not a second unit.
    WorkResponse again = Work(run, "alice");
    EXPECT_EQ(again.agent_id, got[0].agent_id);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(got.size(), 3u);
  std::set<std::string> texts;
  for (const auto& w : got) {
    EXPECT_EQ(w.outcome, "unit");
    texts.insert(Text(w));
  }
  EXPECT_EQ(texts.size(), 3u);  // three different units
  EXPECT_EQ(AgentsSeenFromOutside(db, run).size(), 3u);
}

TEST_F(DispatcherTest, AFailingCallInABatchChangesNothingAndSparesTheOthers) {
  WriteUnits(4);
  const std::string run = Launch({});
  WorkResponse a = Work(run, "alice");
  WorkResponse b = Work(run, "bob");
  Result<std::optional<SubmitResponse>> good = Status::Internal("not run");
  Result<std::optional<SubmitResponse>> forged = Status::Internal("not run");
  Result<std::optional<SubmitResponse>> twice = Status::Internal("not run");
  ASSERT_TRUE(d_->Batch([&] {
                  good = d_->TrySubmitWithoutBlocking(a.agent_id, a.token, {{"label", "x"}});
                  forged = d_->TrySubmitWithoutBlocking(b.agent_id, a.token, {{"label", "y"}});
                  twice = d_->TrySubmitWithoutBlocking(a.agent_id, a.token, {{"label", "z"}});
                }).ok());
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  ASSERT_TRUE(good->has_value());
  EXPECT_EQ((*good)->outcome, "accepted");
  EXPECT_EQ(forged.status().code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(twice.status().code(), Status::Code::kConflict);
  auto rows = Rows(run);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].data, json({{"label", "x"}}));  // the first submission, unchanged
  EXPECT_EQ(rows[1].status, AgentStatus::kInTask);             // bob's agent untouched by the forged token
  EXPECT_EQ(SubmitOk(b, {{"label", "y"}}), "accepted");
}

TEST_F(DispatcherTest, AnAbortedBatchRollsBackEveryDecisionAndForgetsThem) {
  WriteUnits(2);
  const std::string run = Launch({});
  WorkResponse inside;
  EXPECT_THROW((void)d_->Batch([&] {
                 inside = Work(run, "alice");
                 throw std::runtime_error("boom");
               }),
               std::runtime_error);
  ASSERT_EQ(inside.outcome, "unit");
  EXPECT_TRUE(Rows(run).empty());  // the agent is gone with the transaction
  EXPECT_EQ(d_->Submit(inside.agent_id, inside.token, {{"label", "x"}}).status().code(), Status::Code::kNotFound);
  // Alice is served afresh: nothing of the rolled-back decision lingers in the caches.
  WorkResponse after = Work(run, "alice");
  EXPECT_EQ(after.outcome, "unit");
  EXPECT_NE(after.agent_id, inside.agent_id);
  EXPECT_EQ(SubmitOk(after, {{"label", "x"}}), "accepted");
}

TEST_F(DispatcherTest, ACommandCheckIsNeverRunInsideABatch) {
  WriteUnits(3);
  WriteEval("golds.jsonl", 3, "gold");
  const std::string script = Write("check.sh", "exit 0\n");
  const std::string run = Launch({.blueprint = Golds() + "  min_golds: 1\n  max_gold_units: 5\n"
                                                         "  gold_check: {command: [/bin/sh, " + script + "]}\n"});
  WorkResponse gold = Work(run, "alice");
  ASSERT_EQ(gold.outcome, "unit");
  Result<std::optional<SubmitResponse>> tried = Status::Internal("not run");
  ASSERT_TRUE(d_->Batch([&] { tried = d_->TrySubmitWithoutBlocking(gold.agent_id, gold.token, {{"l", "x"}}); }).ok());
  ASSERT_TRUE(tried.ok()) << tried.status().ToString();
  EXPECT_FALSE(tried->has_value());          // "run me outside the batch"
  EXPECT_EQ(Rows(run)[0].status, AgentStatus::kInTask);  // and nothing changed
  EXPECT_EQ(SubmitOk(gold, {{"l", "x"}}), "accepted");
  EXPECT_EQ(Grant("alice", "g-correct-golds"), 1);
}

// ---- concurrency --------------------------------------------------------------------

TEST_F(DispatcherTest, EightWorkersRaceForTheLastUnitsAndGoldSlots) {
  WriteUnits(12);
  WriteEval("golds.jsonl", 3, "gold");
  const int64_t kGoldCap = 5;
  const std::string run = Launch(
      {.blueprint = Golds() + "  max_gold_units: " + std::to_string(kGoldCap) + "\n"});
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      WorkRequest req{run, {"local", "w" + std::to_string(t)}, ""};
      for (int i = 0; i < 50; ++i) {
        auto w = d_->RequestWork(req);
        if (!w.ok()) {
          ++errors;
          return;
        }
        if (w->outcome != "unit") return;
        auto s = d_->Submit(w->agent_id, w->token, {{"label", "pos"}});
        if (!s.ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  auto summary = d_->Summarize(run);
  ASSERT_TRUE(summary.ok());
  EXPECT_LE(summary->gold_served, kGoldCap);
  std::set<int64_t> units;
  int64_t golds = 0;
  int64_t real = 0;
  for (const auto& r : Rows(run)) {
    ASSERT_TRUE(r.unit_id.has_value());
    EXPECT_TRUE(units.insert(*r.unit_id).second) << "unit " << *r.unit_id << " held by two agents";
    EXPECT_EQ(r.status, AgentStatus::kCompleted);
    golds += r.kind == AgentKind::kGold;
    real += r.kind == AgentKind::kUnit;
  }
  EXPECT_EQ(golds, summary->gold_served);
  EXPECT_EQ(golds, kGoldCap);  // eight workers each need a first gold: the cap is used up exactly
  EXPECT_EQ(real, 12);         // every real unit done once
}

}  // namespace
}  // namespace crowdgate::dispatcher_test
