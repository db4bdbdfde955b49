// Engine::RevokeExpiredGrants, the expiry sweep: lapsed grants are revoked through the store's revoke path
// (audit entry by crowdgate:expiry, reason "expired"), the in-memory grant index follows, renewed grants stay,
// and two engines on one database revoke each grant once.
#include <string>

#include <gtest/gtest.h>

#include "crowdgate/engine.hpp"
#include "engine/engine_core.hpp"
#include "engine/engine_test_util.hpp"

namespace crowdgate {
namespace {

using testing::OpenTestEngine;
using testing::TempDir;

constexpr int64_t kDay = 86400 * kMicrosPerSecond;

std::vector<AuditEntry> Revokes(Engine& engine) {
  std::vector<AuditEntry> out;
  const std::vector<AuditEntry> history = engine.History(std::nullopt, std::nullopt).value();
  for (const AuditEntry& e : history) {
    if (e.kind == AuditEntry::Kind::kRevoke) out.push_back(e);
  }
  return out;
}

TEST(EngineExpiryTest, SweepRevokesLapsedGrantsAndTheIndexFollows) {
  FakeEnv env;
  auto engine = OpenTestEngine(&env);
  ASSERT_TRUE(engine->CreateQualification("trial", "").ok());
  ASSERT_TRUE(engine->CreateQualification("blocked", "").ok());
  const int64_t t0 = env.NowMicros();
  ASSERT_TRUE(engine->Grant({"trial", "carol", 1, t0 + kDay, ""}).ok());
  ASSERT_TRUE(engine->Grant({"trial", "alice", 1, std::nullopt, ""}).ok());
  ASSERT_TRUE(engine->Grant({"trial", "bob", 1, t0 + 2 * kDay, ""}).ok());
  ASSERT_TRUE(engine->Grant({"blocked", "prolific:P1", 1, t0 + kDay, "spam"}).ok());
  ASSERT_TRUE(engine->Grant({"trial", "dave", 1, t0 + kDay, ""}).ok());
  EXPECT_EQ(engine->core().index().grant_count(), 5u);

  // Nothing has lapsed: nothing is written.
  const size_t history_before = engine->History(std::nullopt, std::nullopt)->size();
  EXPECT_EQ(engine->RevokeExpiredGrants().value(), 0);
  EXPECT_EQ(engine->History(std::nullopt, std::nullopt)->size(), history_before);

  env.AdvanceSeconds(86400);
  // dave is granted again (for a week) before the sweep: his grant is current and stays.
  ASSERT_TRUE(engine->Grant({"trial", "dave", 1, env.NowMicros() + 7 * kDay, "renewed"}).ok());
  EXPECT_EQ(engine->RevokeExpiredGrants().value(), 2);  // carol's and P1's
  const std::vector<AuditEntry> revokes = Revokes(*engine);
  ASSERT_EQ(revokes.size(), 2u);
  for (const AuditEntry& e : revokes) {
    EXPECT_EQ(e.actor, kExpiryActor);
    EXPECT_EQ(e.actor, "crowdgate:expiry");
    EXPECT_EQ(e.reason, "expired");
    EXPECT_EQ(e.old_value, 1);
  }
  EXPECT_EQ(revokes[0].worker.ToString() + " " + revokes[0].qualification, "local:carol trial");
  EXPECT_EQ(revokes[1].worker.ToString() + " " + revokes[1].qualification, "prolific:P1 blocked");
  // The index holds what the store holds: the two revoked grants are gone from memory, not just expired.
  EXPECT_EQ(engine->core().index().grant_count(), 3u);
  EXPECT_EQ(engine->ShowWorker("carol")->grants.size(), 0u);
  EXPECT_EQ(engine->ShowWorker("dave")->grants.size(), 1u);
  EXPECT_EQ(engine->ListGrants("trial")->size(), 3u);  // alice, bob, dave

  // A second sweep finds nothing.
  EXPECT_EQ(engine->RevokeExpiredGrants().value(), 0);
  EXPECT_EQ(Revokes(*engine).size(), 2u);
}

TEST(EngineExpiryTest, SweepTakesABacklogLargerThanOneRound) {
  FakeEnv env;
  auto engine = OpenTestEngine(&env);
  BulkChange change;
  change.qualifications.push_back({"trial", ""});
  constexpr int kWorkers = 2500;  // more than one round of the sweep
  for (int i = 0; i < kWorkers; ++i) {
    change.grants.push_back({"trial", "w" + std::to_string(i), 1, env.NowMicros() + (1 + i % 5) * kMicrosPerSecond, ""});
  }
  ASSERT_TRUE(engine->ApplyBulk(change, false, {}).ok());
  env.AdvanceSeconds(10);
  EXPECT_EQ(engine->RevokeExpiredGrants().value(), kWorkers);
  EXPECT_EQ(engine->core().index().grant_count(), 0u);
  EXPECT_EQ(engine->RevokeExpiredGrants().value(), 0);
}

TEST(EngineExpiryTest, TwoEnginesOnOneDatabaseRevokeOnceAndBothIndexesFollow) {
  TempDir dir;
  FakeEnv env;
  const std::string db = dir.File("shared.db");
  auto a = OpenTestEngine(&env, db, "server-a");
  auto b = OpenTestEngine(&env, db, "server-b");
  ASSERT_TRUE(a->CreateQualification("blocked", "").ok());
  ASSERT_TRUE(a->Grant({"blocked", "gina", 1, env.NowMicros() + kDay, ""}).ok());
  auto compiled = b->Compile({{"blocked", Comparator::kDoesNotExist}});
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  EXPECT_FALSE(b->Check("gina", **compiled)->passed);  // b has loaded the grant
  env.AdvanceSeconds(86400);

  EXPECT_EQ(b->RevokeExpiredGrants().value(), 1);
  EXPECT_EQ(a->RevokeExpiredGrants().value(), 0);  // gone already: no second audit entry
  EXPECT_EQ(Revokes(*a).size(), 1u);
  EXPECT_TRUE(b->Check("gina", **compiled)->passed);
  EXPECT_EQ(b->core().index().grant_count(), 0u);
  EXPECT_EQ(a->core().index().grant_count(), 0u);  // a replayed b's revoke from the change feed
}

}  // namespace
}  // namespace crowdgate
