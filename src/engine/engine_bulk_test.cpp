// Engine::ApplyBulk: only what differs is written, a dry run writes nothing, a bad name
// anywhere changes nothing, and the change is visible to another engine on the same file.
#include <gtest/gtest.h>

#include "crowdgate/engine.hpp"
#include "engine/engine_test_util.hpp"

namespace crowdgate {
namespace {

using testing::OpenTestEngine;
using testing::TempDir;

class EngineBulkTest : public ::testing::Test {
 protected:
  BulkChange Change() {
    BulkChange c;
    c.qualifications = {{"english", "level"}, {"block", ""}};
    c.workers = {"local:alice", "prolific:p1", "mturk:NOGRANTS"};
    c.grants = {{"english", "local:alice", 85, std::nullopt, ""},
                {"english", "prolific:p1", 70, std::nullopt, ""},
                {"block", "local:alice", 0, std::nullopt, "own reason"}};
    c.reason = "bulk";
    return c;
  }
  size_t HistorySize() { return engine_->History(std::nullopt, std::nullopt)->size(); }

  FakeEnv env_;
  TempDir dir_;
  std::unique_ptr<Engine> engine_ = OpenTestEngine(&env_, dir_.File("bulk.db"));
};

TEST_F(EngineBulkTest, AppliesThenWritesNothingTheSecondTime) {
  auto first = engine_->ApplyBulk(Change(), false, {});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->qualifications.added, 2);
  EXPECT_EQ(first->workers.added, 3);
  EXPECT_EQ(first->grants.added, 3);
  EXPECT_EQ(engine_->GetQualification("english")->description, "level");
  EXPECT_TRUE(engine_->ShowWorker("mturk:NOGRANTS").ok());  // a worker without grants is registered
  auto history = engine_->History(std::nullopt, std::nullopt);
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].reason, "bulk");
  EXPECT_EQ((*history)[2].reason, "own reason");

  auto second = engine_->ApplyBulk(Change(), false, {});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->qualifications.unchanged, 2);
  EXPECT_EQ(second->workers.unchanged, 3);
  EXPECT_EQ(second->grants.unchanged, 3);
  EXPECT_EQ(second->grants.added + second->grants.changed, 0);
  EXPECT_EQ(HistorySize(), 3u);
}

TEST_F(EngineBulkTest, ValueOrExpiryDifferenceIsAChange) {
  ASSERT_TRUE(engine_->ApplyBulk(Change(), false, {}).ok());
  ASSERT_TRUE(engine_->Grant({"english", "local:alice", 85, env_.NowMicros() + 1'000'000'000, ""}).ok());
  BulkChange c = Change();
  c.grants[1].value = 71;
  c.revokes = {{"block", "local:alice", ""}, {"block", "prolific:p1", ""}};  // p1 holds none
  auto r = engine_->ApplyBulk(c, false, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->grants.changed, 2);  // alice's expiry goes, p1's value changes
  EXPECT_EQ(r->revoked, 1);
  EXPECT_FALSE(engine_->ListGrants("english")->front().expires_at.has_value());
  EXPECT_TRUE(engine_->ListGrants("block")->empty());
}

TEST_F(EngineBulkTest, DryRunWritesNothing) {
  auto r = engine_->ApplyBulk(Change(), true, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->grants.added, 3);
  EXPECT_EQ(r->workers.added, 3);
  EXPECT_TRUE(engine_->ListQualifications()->empty());
  EXPECT_EQ(HistorySize(), 0u);
  EXPECT_TRUE(engine_->ShowWorker("mturk:NOGRANTS").status().IsNotFound());
}

TEST_F(EngineBulkTest, ABadNameAnywhereChangesNothing) {
  BulkChange c = Change();
  c.grants.push_back({"english", "bad name", 1, std::nullopt, ""});
  auto r = engine_->ApplyBulk(c, false, {});
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("bad name"), std::string::npos);
  c = Change();
  c.grants.push_back({"not-listed", "local:alice", 1, std::nullopt, ""});
  r = engine_->ApplyBulk(c, false, {});
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_TRUE(engine_->ListQualifications()->empty());
  EXPECT_EQ(HistorySize(), 0u);
  // Still usable afterwards.
  EXPECT_TRUE(engine_->ApplyBulk(Change(), false, {}).ok());
}

TEST_F(EngineBulkTest, AnotherEngineOnTheFileSeesTheChange) {
  std::unique_ptr<Engine> other = OpenTestEngine(&env_, dir_.File("bulk.db"));
  ASSERT_TRUE(engine_->ApplyBulk(Change(), false, {}).ok());
  Requirement req;
  req.qualification_name = "english";
  req.comparator = Comparator::kGreaterThanOrEqualTo;
  req.value = 80;
  auto compiled = other->Compile({req});
  ASSERT_TRUE(compiled.ok());
  EXPECT_TRUE(other->Check("local:alice", **compiled)->passed);
  EXPECT_FALSE(other->Check("prolific:p1", **compiled)->passed);
}

}  // namespace
}  // namespace crowdgate
