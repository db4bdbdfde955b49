// The Store contract suite: what the grant expiry sweep relies on (see store_contract_test.cpp). ExpiredGrants
// lists the lapsed grants; a kRevoke with revoke_if_expires_at removes one only while it is still that expired
// grant, writing the revoke's audit entry and grant_sync row once, however many sweepers try.
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {
namespace {

// The op the sweep makes for a grant it read as expired.
GrantOp SweepOp(const Grant& g) {
  GrantOp op = OpFor(GrantOp::Kind::kRevoke, g.worker, g.qual_id, 1, std::nullopt);
  op.actor = "crowdgate:expiry";
  op.reason = "expired";
  op.revoke_if_expires_at = g.expires_at;
  return op;
}

std::vector<GrantOp> SweepOps(const std::vector<Grant>& grants) {
  std::vector<GrantOp> ops;
  for (const Grant& g : grants) ops.push_back(SweepOp(g));
  return ops;
}

// (worker name, qualification name) of each grant, in order.
std::vector<std::pair<std::string, std::string>> Keys(const std::vector<Grant>& grants) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Grant& g : grants) out.emplace_back(g.worker.name, g.qualification);
  return out;
}

int CountRevokes(Store& store) {
  int n = 0;
  const std::vector<AuditEntry> history = store.History(std::nullopt, std::nullopt).value();
  for (const AuditEntry& e : history) n += e.kind == AuditEntry::Kind::kRevoke;
  return n;
}

TEST_P(StoreContractTest, ExpiredGrantsListsLapsedGrantsOnlyInOrder) {
  const QualId a = Qual("a");
  const QualId b = Qual("b");
  const int64_t t0 = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "alice", a, 3, t0 + 10 * kSec), Op(GrantOp::Kind::kSet, "bob", a, 1, t0 + 5 * kSec),
         Op(GrantOp::Kind::kSet, "carol", a, 1),                    // never expires
         Op(GrantOp::Kind::kSet, "dave", a, 1, t0 + 100 * kSec),    // not yet
         Op(GrantOp::Kind::kSet, "erin", a, 1, t0 + 20 * kSec),     // exactly now: expired
         Op(GrantOp::Kind::kSet, "alice", b, 2, t0 + 1 * kSec)});
  EXPECT_TRUE(store_->ExpiredGrants(t0, 100)->empty());  // nothing has lapsed yet
  env_.AdvanceSeconds(20);
  const int64_t now = env_.NowMicros();

  Result<std::vector<Grant>> all = store_->ExpiredGrants(now, 100);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  // By qualification, then expiry.
  EXPECT_EQ(Keys(*all), (std::vector<std::pair<std::string, std::string>>{
                            {"bob", "a"}, {"alice", "a"}, {"erin", "a"}, {"alice", "b"}}));
  const Grant& alice_a = (*all)[1];
  EXPECT_EQ(alice_a.worker, (WorkerRef{"local", "alice"}));
  EXPECT_EQ(alice_a.worker_id, WorkerNamed("alice"));
  EXPECT_EQ(alice_a.qual_id, a);
  EXPECT_EQ(alice_a.value, 3);
  EXPECT_EQ(alice_a.expires_at, t0 + 10 * kSec);
  EXPECT_EQ(alice_a.actor, "tester");

  EXPECT_EQ(Keys(*store_->ExpiredGrants(now, 2)),
            (std::vector<std::pair<std::string, std::string>>{{"bob", "a"}, {"alice", "a"}}));
  EXPECT_TRUE(store_->ExpiredGrants(now, 0)->empty());
  EXPECT_EQ(store_->ExpiredGrants(now - 1, 100)->size(), 3u);  // erin's expires at `now`, not before
}

TEST_P(StoreContractTest, ConditionalRevokeRemovesTheExpiredGrantOnceAndTellsTheProvider) {
  const QualId block = Qual("block");
  const int64_t t0 = env_.NowMicros();
  Apply({OpFor(GrantOp::Kind::kSet, WorkerRef{"prolific", "P1"}, block, 1, t0 + 10 * kSec)});
  env_.AdvanceSeconds(11);
  const std::vector<Grant> expired = store_->ExpiredGrants(env_.NowMicros(), 100).value();
  ASSERT_EQ(expired.size(), 1u);

  std::vector<AuditEntry> out = Apply(SweepOps(expired));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, AuditEntry::Kind::kRevoke);
  EXPECT_EQ(out[0].worker, (WorkerRef{"prolific", "P1"}));
  EXPECT_EQ(out[0].qualification, "block");
  EXPECT_EQ(out[0].old_value, 1);
  EXPECT_FALSE(out[0].new_value.has_value());
  EXPECT_EQ(out[0].actor, "crowdgate:expiry");
  EXPECT_EQ(out[0].reason, "expired");
  EXPECT_FALSE(GrantOf(out[0].worker_id, block).has_value());
  EXPECT_TRUE(store_->ExpiredGrants(env_.NowMicros(), 100)->empty());

  // The participant leaves the groups: a grant_sync row saying "not held" follows the grant's own.
  const std::vector<OutboxRow> rows = store_->ListOutbox({}, 0, 100).value();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].kind, "grant_sync");
  EXPECT_EQ(rows[1].order_key, "grant:prolific:P1|block");
  EXPECT_EQ(nlohmann::json::parse(rows[1].payload_json),
            (nlohmann::json{{"worker", "prolific:P1"}, {"qualification", "block"}, {"value", nullptr},
                            {"expires_at", nullptr}}));

  // The same sweep again (a second server that read the same list): nothing.
  EXPECT_TRUE(Apply(SweepOps(expired)).empty());
  EXPECT_EQ(CountRevokes(*store_), 1);
  EXPECT_EQ(store_->ListOutbox({}, 0, 100)->size(), 2u);
}

TEST_P(StoreContractTest, ConditionalRevokeKeepsAGrantRenewedAfterTheRead) {
  const QualId q = Qual("trial");
  const int64_t t0 = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 1, t0 + 10 * kSec), Op(GrantOp::Kind::kSet, "bob", q, 1, t0 + 10 * kSec),
         Op(GrantOp::Kind::kSet, "carol", q, 1, t0 + 10 * kSec), Op(GrantOp::Kind::kSet, "dave", q, 1, t0 + 10 * kSec)});
  env_.AdvanceSeconds(20);
  const std::vector<Grant> expired = store_->ExpiredGrants(env_.NowMicros(), 100).value();
  ASSERT_EQ(expired.size(), 4u);

  // Between the sweep's read and its write: alice is granted again with a new expiry, bob for good,
  // carol is revoked by hand; dave is left alone.
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 2, t0 + 100 * kSec), Op(GrantOp::Kind::kSet, "bob", q, 3),
         Op(GrantOp::Kind::kRevoke, "carol", q)});
  const int revokes_before = CountRevokes(*store_);

  std::vector<AuditEntry> out = Apply(SweepOps(expired));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].worker.name, "dave");
  EXPECT_EQ(CountRevokes(*store_), revokes_before + 1);
  ASSERT_TRUE(GrantOf(WorkerNamed("alice"), q).has_value());
  EXPECT_EQ(GrantOf(WorkerNamed("alice"), q)->value, 2);
  EXPECT_EQ(GrantOf(WorkerNamed("alice"), q)->expires_at, t0 + 100 * kSec);
  ASSERT_TRUE(GrantOf(WorkerNamed("bob"), q).has_value());
  EXPECT_FALSE(GrantOf(WorkerNamed("bob"), q)->expires_at.has_value());
  EXPECT_FALSE(GrantOf(WorkerNamed("carol"), q).has_value());
  EXPECT_FALSE(GrantOf(WorkerNamed("dave"), q).has_value());
}

// Two stores on one database (two servers) sweep the same expired grants at the same moment: each
// grant is revoked once, with one audit entry, whoever wins.
TEST_P(StoreContractTest, TwoSweepersAtOnceRevokeEachGrantOnce) {
  if (!GetParam().shared) GTEST_SKIP() << "an in-memory database has one connection";
  const QualId q = Qual("block");
  const int64_t t0 = env_.NowMicros();
  constexpr int kGrants = 200;
  std::vector<GrantOp> grants;
  for (int i = 0; i < kGrants; ++i) {
    grants.push_back(OpFor(GrantOp::Kind::kSet, WorkerRef{"prolific", "P" + std::to_string(i)}, q, 1,
                           t0 + (1 + i % 7) * kSec));
  }
  Apply(grants);
  env_.AdvanceSeconds(10);
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  const std::vector<Grant> seen_here = store_->ExpiredGrants(env_.NowMicros(), 1000).value();
  const std::vector<Grant> seen_there = other->ExpiredGrants(env_.NowMicros(), 1000).value();
  ASSERT_EQ(seen_here.size(), static_cast<size_t>(kGrants));
  ASSERT_EQ(seen_there.size(), static_cast<size_t>(kGrants));

  std::atomic<size_t> written{0};
  auto sweep = [&written](Store* store, const std::vector<Grant>& expired) {
    // In pieces, so the two interleave rather than one finishing before the other starts.
    for (size_t i = 0; i < expired.size(); i += 10) {
      std::vector<Grant> part(expired.begin() + static_cast<std::ptrdiff_t>(i),
                              expired.begin() + static_cast<std::ptrdiff_t>(std::min(expired.size(), i + 10)));
      Result<std::vector<AuditEntry>> r = store->ApplyGrantOps(SweepOps(part));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) written += r->size();
    }
  };
  std::thread t1(sweep, store_.get(), std::cref(seen_here));
  std::thread t2(sweep, other.get(), std::cref(seen_there));
  t1.join();
  t2.join();
  EXPECT_EQ(written.load(), static_cast<size_t>(kGrants));
  EXPECT_EQ(CountRevokes(*store_), kGrants);
  EXPECT_TRUE(store_->GrantsForQualification(q)->empty());
  // One grant_sync row per grant and one per revoke.
  EXPECT_EQ(store_->ListOutbox({}, 0, 10000)->size(), static_cast<size_t>(2 * kGrants));
}

}  // namespace
}  // namespace crowdgate::store_test
