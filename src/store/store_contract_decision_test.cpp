// The Store contract suite: a decision about a worker's work in a run (BeginRunDecision), whose
// first read a backend may take with the lock (see store_contract_test.cpp).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {
namespace {

std::vector<std::string> IdsOf(const Result<std::vector<AgentRecord>>& agents) {
  EXPECT_TRUE(agents.ok()) << agents.status().ToString();
  std::vector<std::string> ids;
  if (agents.ok()) {
    for (const AgentRecord& a : *agents) ids.push_back(a.id);
  }
  return ids;
}

// Inside a batch and outside one: OpenAgents in a run decision answers exactly what it answers
// outside, for the run asked about and any other, and sees the decision's own writes.
TEST_P(StoreContractTest, ARunDecisionSeesTheOpenAgentsOpenAgentsWouldAndItsOwnWrites) {
  MakeRun("run_a", "task", 6);
  MakeRun("run_b", "task", 2);
  const WorkerId alice = WorkerNamed("alice"), bob = WorkerNamed("bob");
  const AgentRecord a1 = Reserve("run_a", alice);
  const AgentRecord a2 = Reserve("run_a", alice);
  const AgentRecord b1 = Reserve("run_b", alice);
  const AgentRecord onboarding = NewAgent("run_a", alice, AgentKind::kOnboarding);
  ASSERT_TRUE(store_->CreateOnboardingAgent(onboarding).ok());
  ASSERT_TRUE(store_->FinishAgent(Submit(a1)).ok());  // no longer open
  const std::vector<std::string> open_a = {a2.id, onboarding.id};  // oldest first
  ASSERT_EQ(IdsOf(store_->OpenAgents("run_a", alice)), open_a);

  for (const bool batch : {false, true}) {
    SCOPED_TRACE(batch ? "inside a batch" : "outside a batch");
    if (batch) ASSERT_TRUE(store_->BeginBatch().ok());
    ASSERT_TRUE(store_->BeginRunDecision(alice, "run_a").ok());
    EXPECT_EQ(IdsOf(store_->OpenAgents("run_b", alice)), std::vector<std::string>{b1.id});
    EXPECT_EQ(IdsOf(store_->OpenAgents("run_a", alice)), open_a);
    EXPECT_EQ(IdsOf(store_->OpenAgents("run_a", alice)), open_a);  // asked twice: the same
    const AgentRecord a3 = Reserve("run_a", alice);
    EXPECT_EQ(IdsOf(store_->OpenAgents("run_a", alice)), (std::vector<std::string>{a2.id, onboarding.id, a3.id}));
    ASSERT_TRUE(store_->EndDecision(/*commit=*/false).ok());

    // A write before the first read: the read sees it.
    ASSERT_TRUE(store_->BeginRunDecision(bob, "run_a").ok());
    const AgentRecord bob1 = Reserve("run_a", bob);
    EXPECT_EQ(IdsOf(store_->OpenAgents("run_a", bob)), std::vector<std::string>{bob1.id});
    ASSERT_TRUE(store_->EndDecision(/*commit=*/false).ok());
    if (batch) ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
    EXPECT_EQ(IdsOf(store_->OpenAgents("run_a", alice)), open_a);  // both decisions were undone
    EXPECT_TRUE(IdsOf(store_->OpenAgents("run_a", bob)).empty());
  }
}

// A backend that reads ahead refuses an unknown run at once and leaves no decision open; one that
// does not finds out at the first read.
TEST_P(StoreContractTest, ARunDecisionAboutAnUnknownRunIsNotFound) {
  const WorkerId alice = WorkerNamed("alice");
  Status s = store_->BeginRunDecision(alice, "no_such_run");
  if (s.ok()) {
    EXPECT_TRUE(store_->OpenAgents("no_such_run", alice).status().IsNotFound());
    ASSERT_TRUE(store_->EndDecision(/*commit=*/false).ok());
  } else {
    EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  }
  ASSERT_TRUE(store_->BeginDecision(alice).ok());  // no decision was left open
  ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
}

// Another connection's agents, created before the decision began, are among those it reads.
TEST_P(StoreContractTest, ARunDecisionReadsWhatAnotherConnectionCommittedBeforeIt) {
  if (!GetParam().shared) GTEST_SKIP() << "needs two connections to one database";
  MakeRun("run_a", "task", 4);
  const WorkerId alice = WorkerNamed("alice");
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  Result<std::optional<AgentRecord>> theirs = other->ReserveUnit("run_a", NewAgent("run_a", alice));
  ASSERT_TRUE(theirs.ok() && theirs->has_value());
  ASSERT_TRUE(store_->BeginRunDecision(alice, "run_a").ok());
  EXPECT_EQ(IdsOf(store_->OpenAgents("run_a", alice)), std::vector<std::string>{(*theirs)->id});
  ASSERT_TRUE(store_->EndDecision(/*commit=*/true).ok());
}

}  // namespace
}  // namespace crowdgate::store_test
