// The qualification part of the engine: qualifications, grants and requirements over SQLite.
#include <gtest/gtest.h>

#include "crowdgate/engine.hpp"
#include "engine/engine_test_util.hpp"

namespace crowdgate {
namespace {

using testing::OpenTestEngine;
using testing::TempDir;

Requirement Req(const std::string& name, Comparator c, int64_t v = 0, std::vector<int64_t> values = {}) {
  Requirement r;
  r.qualification_name = name;
  r.comparator = c;
  r.value = v;
  r.values = std::move(values);
  return r;
}

class EngineQualTest : public ::testing::Test {
 protected:
  FakeEnv env_;
  std::unique_ptr<Engine> engine_ = OpenTestEngine(&env_);

  bool Passes(const std::string& worker, const std::vector<Requirement>& reqs) {
    auto compiled = engine_->Compile(reqs);
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    auto v = engine_->Check(worker, **compiled);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v->passed;
  }
};

TEST_F(EngineQualTest, CreateListShowDelete) {
  ASSERT_TRUE(engine_->CreateQualification("english", "self-reported level").ok());
  EXPECT_TRUE(engine_->CreateQualification("english", "").status().IsConflict());
  EXPECT_TRUE(engine_->CreateQualification("", "").status().IsInvalidArgument());
  ASSERT_TRUE(engine_->Grant({"english", "alice", 90, std::nullopt, ""}).ok());
  auto list = engine_->ListQualifications();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].qualification.name, "english");
  EXPECT_EQ((*list)[0].live_grants, 1);
  auto grants = engine_->ListGrants("english");
  ASSERT_TRUE(grants.ok());
  ASSERT_EQ(grants->size(), 1u);
  EXPECT_EQ((*grants)[0].worker.ToString(), "local:alice");
  EXPECT_EQ((*grants)[0].value, 90);
  ASSERT_TRUE(engine_->DeleteQualification("english").ok());
  EXPECT_TRUE(engine_->ListGrants("english").status().IsNotFound());
  EXPECT_TRUE(engine_->DeleteQualification("english").IsNotFound());
}

TEST_F(EngineQualTest, GrantCreatesUnseenWorkerAndReplacesValue) {
  ASSERT_TRUE(engine_->CreateQualification("vip", "").ok());
  EXPECT_TRUE(engine_->ShowWorker("mturk:A1B2C3").status().IsNotFound());
  auto first = engine_->Grant({"vip", "mturk:A1B2C3", 1, std::nullopt, "trusted"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->kind, AuditEntry::Kind::kGrant);
  EXPECT_EQ(first->old_value, std::nullopt);
  auto second = engine_->Grant({"vip", "mturk:A1B2C3", 3, std::nullopt, "promoted"});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->kind, AuditEntry::Kind::kChange);
  EXPECT_EQ(second->old_value, 1);
  EXPECT_EQ(second->new_value, 3);
  auto info = engine_->ShowWorker("mturk:A1B2C3");
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->grants.size(), 1u);
  EXPECT_EQ(info->grants[0].value, 3);  // at most one grant per pair
}

TEST_F(EngineQualTest, GrantToUnknownQualificationOrBadWorkerIsRefused) {
  EXPECT_TRUE(engine_->Grant({"nope", "alice", 1, std::nullopt, ""}).status().IsNotFound());
  ASSERT_TRUE(engine_->CreateQualification("q", "").ok());
  EXPECT_TRUE(engine_->Grant({"q", "bad name", 1, std::nullopt, ""}).status().IsInvalidArgument());
  EXPECT_TRUE(engine_->Grant({"q", "nosuchprovider:x", 1, std::nullopt, ""}).status().IsInvalidArgument());
}

TEST_F(EngineQualTest, AuditRecordsGrantChangeRevokeWithActorAndReason) {
  ASSERT_TRUE(engine_->CreateQualification("blocked", "").ok());
  ASSERT_TRUE(engine_->Grant({"blocked", "bob", 1, std::nullopt, "spam"}).ok());
  ASSERT_TRUE(engine_->Grant({"blocked", "bob", 2, std::nullopt, "more spam"}).ok());
  auto revoked = engine_->Revoke("blocked", "bob", "appeal accepted");
  ASSERT_TRUE(revoked.ok());
  EXPECT_TRUE(*revoked);
  auto again = engine_->Revoke("blocked", "bob", "twice");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);  // nothing to revoke, nothing logged
  auto history = engine_->History(std::string("blocked"), std::string("bob"));
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].kind, AuditEntry::Kind::kGrant);
  EXPECT_EQ((*history)[0].new_value, 1);
  EXPECT_EQ((*history)[0].reason, "spam");
  EXPECT_EQ((*history)[0].actor, "test");
  EXPECT_EQ((*history)[1].kind, AuditEntry::Kind::kChange);
  EXPECT_EQ((*history)[1].old_value, 1);
  EXPECT_EQ((*history)[1].new_value, 2);
  EXPECT_EQ((*history)[2].kind, AuditEntry::Kind::kRevoke);
  EXPECT_EQ((*history)[2].old_value, 2);
  EXPECT_EQ((*history)[2].new_value, std::nullopt);
  EXPECT_EQ((*history)[2].reason, "appeal accepted");
}

TEST_F(EngineQualTest, ExpiredGrantCountsAsAbsent) {
  ASSERT_TRUE(engine_->CreateQualification("trial", "").ok());
  const int64_t day = 86400 * kMicrosPerSecond;
  ASSERT_TRUE(engine_->Grant({"trial", "carol", 1, env_.NowMicros() + day, ""}).ok());
  EXPECT_TRUE(Passes("carol", {Req("trial", Comparator::kExists)}));
  EXPECT_EQ(engine_->ListGrants("trial")->size(), 1u);
  env_.AdvanceSeconds(86400);
  EXPECT_FALSE(Passes("carol", {Req("trial", Comparator::kExists)}));
  EXPECT_TRUE(Passes("carol", {Req("trial", Comparator::kDoesNotExist)}));
  EXPECT_EQ(engine_->ListGrants("trial")->size(), 0u);
}

TEST_F(EngineQualTest, EveryComparatorClass) {
  ASSERT_TRUE(engine_->CreateQualification("score", "").ok());
  ASSERT_TRUE(engine_->Grant({"score", "dave", 80, std::nullopt, ""}).ok());
  EXPECT_TRUE(Passes("dave", {Req("score", Comparator::kGreaterThanOrEqualTo, 80)}));
  EXPECT_FALSE(Passes("dave", {Req("score", Comparator::kGreaterThan, 80)}));
  EXPECT_TRUE(Passes("dave", {Req("score", Comparator::kLessThanOrEqualTo, 80)}));
  EXPECT_FALSE(Passes("dave", {Req("score", Comparator::kLessThan, 80)}));
  EXPECT_TRUE(Passes("dave", {Req("score", Comparator::kEqualTo, 80)}));
  EXPECT_FALSE(Passes("dave", {Req("score", Comparator::kNotEqualTo, 80)}));
  EXPECT_TRUE(Passes("dave", {Req("score", Comparator::kIn, 0, {70, 80})}));
  EXPECT_FALSE(Passes("dave", {Req("score", Comparator::kNotIn, 0, {70, 80})}));
  EXPECT_TRUE(Passes("dave", {Req("score", Comparator::kExists)}));
  EXPECT_FALSE(Passes("dave", {Req("score", Comparator::kDoesNotExist)}));
  // A worker without a grant fails everything but DoesNotExist, NotEqualTo and NotIn too.
  EXPECT_FALSE(Passes("erin", {Req("score", Comparator::kNotEqualTo, 80)}));
  EXPECT_FALSE(Passes("erin", {Req("score", Comparator::kNotIn, 0, {80})}));
  EXPECT_TRUE(Passes("erin", {Req("score", Comparator::kDoesNotExist)}));
  // AND of all requirements.
  EXPECT_FALSE(Passes("dave", {Req("score", Comparator::kExists), Req("score", Comparator::kLessThan, 10)}));
}

TEST_F(EngineQualTest, UnknownQualificationFailsClosed) {
  auto compiled = engine_->Compile({Req("englsh", Comparator::kExists)});
  ASSERT_FALSE(compiled.ok());
  EXPECT_TRUE(compiled.status().IsNotFound());
  EXPECT_NE(compiled.status().message().find("englsh"), std::string::npos);
}

TEST_F(EngineQualTest, ImportIsAllOrNothingAndNamesTheBadLine) {
  ASSERT_TRUE(engine_->CreateQualification("allow", "").ok());
  std::vector<ImportRow> rows = {{"alice", 1, 1}, {"bob", 2, 2}, {"not valid!", 1, 3}};
  auto bad = engine_->Import("allow", rows, "import", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("line 3"), std::string::npos) << bad.status().message();
  EXPECT_EQ(engine_->ListGrants("allow")->size(), 0u);
  rows.pop_back();
  size_t last_done = 0;
  auto good = engine_->Import("allow", rows, "import", [&](size_t done, size_t) { last_done = done; });
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->rows, 2);
  EXPECT_EQ(good->granted, 2);
  EXPECT_EQ(last_done, 2u);
  EXPECT_TRUE(Passes("bob", {Req("allow", Comparator::kEqualTo, 2)}));
}

TEST_F(EngineQualTest, ResetOnboardingRemovesBothGrants) {
  ASSERT_TRUE(engine_->CreateQualification("onboarded", "").ok());
  ASSERT_TRUE(engine_->CreateQualification("onboarded-failed", "").ok());
  ASSERT_TRUE(engine_->Grant({"onboarded", "frank", 0, std::nullopt, ""}).ok());
  ASSERT_TRUE(engine_->Grant({"onboarded-failed", "frank", 1, std::nullopt, ""}).ok());
  ASSERT_TRUE(engine_->ResetOnboarding("onboarded", "frank").ok());
  EXPECT_TRUE(Passes("frank", {Req("onboarded", Comparator::kDoesNotExist),
                               Req("onboarded-failed", Comparator::kDoesNotExist)}));
}

TEST(EngineCrossProcessTest, GrantsByAnotherConnectionApplyAtTheNextCheck) {
  TempDir dir;
  FakeEnv env;
  const std::string db = dir.File("shared.db");
  auto server = OpenTestEngine(&env, db, "server");
  auto cli = OpenTestEngine(&env, db, "cli");
  ASSERT_TRUE(cli->CreateQualification("blocked", "").ok());
  auto compiled = server->Compile({Req("blocked", Comparator::kDoesNotExist)});
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  EXPECT_TRUE(server->Check("gina", **compiled)->passed);
  ASSERT_TRUE(cli->Grant({"blocked", "gina", 1, std::nullopt, "block"}).ok());
  EXPECT_FALSE(server->Check("gina", **compiled)->passed);
  ASSERT_TRUE(cli->Revoke("blocked", "gina", "unblock").ok());
  EXPECT_TRUE(server->Check("gina", **compiled)->passed);
}

// Worker ids are not all held in memory : a worker loaded at open, one never seen and
// one first seen by another connection after this engine looked for it are all answered right.
TEST(EngineCrossProcessTest, WorkersLoadedAtOpenUnseenOrCreatedLaterAreAllChecked) {
  TempDir dir;
  FakeEnv env;
  const std::string db = dir.File("workers.db");
  auto cli = OpenTestEngine(&env, db, "cli");
  ASSERT_TRUE(cli->CreateQualification("tier", "").ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(cli->Grant({"tier", "w" + std::to_string(i), i, std::nullopt, ""}).ok());
  }
  ASSERT_TRUE(cli->Grant({"tier", "mturk:w7", 700, std::nullopt, ""}).ok());
  auto server = OpenTestEngine(&env, db, "server");  // loads the 51 grants
  auto compiled = server->Compile({Req("tier", Comparator::kGreaterThanOrEqualTo, 7)});
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  auto passes = [&](const std::string& w) {
    auto v = server->Check(w, **compiled);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() && v->passed;
  };
  EXPECT_FALSE(passes("w6"));
  EXPECT_TRUE(passes("w7"));
  EXPECT_TRUE(passes("local:w49"));
  EXPECT_TRUE(passes("mturk:w7"));
  EXPECT_FALSE(passes("prolific:w7"));  // same name, another provider: never seen
  EXPECT_FALSE(passes("nobody"));
  // First seen by another connection after this engine looked for it and found nothing.
  ASSERT_TRUE(cli->Grant({"tier", "nobody", 9, std::nullopt, ""}).ok());
  EXPECT_TRUE(passes("nobody"));
  ASSERT_TRUE(cli->Revoke("tier", "w7", "").ok());
  EXPECT_FALSE(passes("w7"));
  EXPECT_TRUE(passes("mturk:w7"));
}

}  // namespace
}  // namespace crowdgate
