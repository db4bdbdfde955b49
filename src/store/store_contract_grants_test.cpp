// The Store contract suite: qualifications, workers, grants and the audit log (see store_contract_test.cpp).
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {
namespace {

// ---- qualifications ------------------------------------------------------------------------------

TEST_P(StoreContractTest, CreateGetListQualifications) {
  Result<Qualification> a = store_->CreateQualification("alpha", "first");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_GT(a->id, 0);
  EXPECT_EQ(a->name, "alpha");
  EXPECT_EQ(a->description, "first");
  EXPECT_EQ(a->created_at, env_.NowMicros());
  ASSERT_TRUE(store_->CreateQualification("beta", "").ok());

  Result<Qualification> got = store_->GetQualification("alpha");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, a->id);
  EXPECT_EQ(got->description, "first");

  Result<std::vector<Qualification>> all = store_->ListQualifications();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "alpha");
  EXPECT_EQ((*all)[1].name, "beta");
}

TEST_P(StoreContractTest, QualificationErrors) {
  ASSERT_TRUE(store_->CreateQualification("alpha", "").ok());
  EXPECT_TRUE(store_->CreateQualification("alpha", "again").status().IsConflict());
  EXPECT_TRUE(store_->GetQualification("nope").status().IsNotFound());
  EXPECT_TRUE(store_->CreateQualification("", "").status().IsInvalidArgument());
  EXPECT_TRUE(store_->CreateQualification(std::string(129, 'x'), "").status().IsInvalidArgument());
  EXPECT_TRUE(store_->DeleteQualification("nope", "tester").IsNotFound());
}

TEST_P(StoreContractTest, EnsureQualificationReturnsExisting) {
  Result<Qualification> a = store_->EnsureQualification("alpha", "first");
  ASSERT_TRUE(a.ok());
  env_.AdvanceSeconds(5);
  Result<Qualification> b = store_->EnsureQualification("alpha", "other description");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->id, a->id);
  EXPECT_EQ(b->description, "first");
  EXPECT_EQ(b->created_at, a->created_at);
}

TEST_P(StoreContractTest, DeleteQualificationRemovesGrantsAndAudits) {
  QualId q = Qual("doomed");
  QualId keep = Qual("kept");
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 3), Op(GrantOp::Kind::kSet, "bob", q, 4),
         Op(GrantOp::Kind::kSet, "alice", keep, 1)});
  env_.AdvanceSeconds(1);
  ASSERT_TRUE(store_->DeleteQualification("doomed", "admin").ok());

  EXPECT_TRUE(store_->GetQualification("doomed").status().IsNotFound());
  EXPECT_TRUE(store_->GrantsForQualification(q).status().IsNotFound());
  WorkerId alice = WorkerNamed("alice");
  Result<std::vector<Grant>> left = store_->GrantsForWorker(alice);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].qual_id, keep);

  Result<std::vector<AuditEntry>> hist = store_->History(q, std::nullopt);
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist->size(), 5u);  // 2 grants, 2 revokes, 1 delete
  int revokes = 0;
  for (size_t i = 2; i < 4; ++i) {
    const AuditEntry& e = (*hist)[i];
    EXPECT_EQ(e.kind, AuditEntry::Kind::kRevoke);
    EXPECT_EQ(e.actor, "admin");
    EXPECT_EQ(e.qualification, "doomed");  // the name survives the qualification
    EXPECT_FALSE(e.new_value.has_value());
    EXPECT_TRUE(e.old_value == 3 || e.old_value == 4);
    EXPECT_FALSE(e.worker.name.empty());
    ++revokes;
  }
  EXPECT_EQ(revokes, 2);
  const AuditEntry& del = hist->back();
  EXPECT_EQ(del.kind, AuditEntry::Kind::kQualificationDeleted);
  EXPECT_EQ(del.worker_id, 0);
  EXPECT_EQ(del.qualification, "doomed");
  EXPECT_EQ(del.actor, "admin");

  // A new qualification of the same name gets a new id: old ids never come back.
  QualId again = Qual("doomed");
  EXPECT_NE(again, q);
  EXPECT_TRUE(store_->GrantsForQualification(again)->empty());
}

TEST_P(StoreContractTest, CountGrantsCountsLiveGrantsOnly) {
  QualId a = Qual("a");
  QualId b = Qual("b");
  QualId empty = Qual("empty");
  const int64_t now = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "w1", a), Op(GrantOp::Kind::kSet, "w2", a, 1, now + 10 * kSec),
         Op(GrantOp::Kind::kSet, "w3", a, 1, now + 1 * kSec), Op(GrantOp::Kind::kSet, "w1", b)});
  Result<std::vector<std::pair<QualId, int64_t>>> c = store_->CountGrants(now + 5 * kSec);
  ASSERT_TRUE(c.ok());
  std::map<QualId, int64_t> m(c->begin(), c->end());
  EXPECT_EQ(m[a], 2);
  EXPECT_EQ(m[b], 1);
  ASSERT_TRUE(m.count(empty));
  EXPECT_EQ(m[empty], 0);
}

// ---- workers -------------------------------------------------------------------------------------

TEST_P(StoreContractTest, Workers) {
  Result<Worker> w = store_->EnsureWorker(WorkerRef{"mturk", "A1B2C3"});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->ref.ToString(), "mturk:A1B2C3");
  EXPECT_EQ(w->created_at, env_.NowMicros());
  env_.AdvanceSeconds(3);
  Result<Worker> again = store_->EnsureWorker(WorkerRef{"mturk", "A1B2C3"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, w->id);
  EXPECT_EQ(again->created_at, w->created_at);
  // Same name, other provider: another worker.
  Result<Worker> local = store_->EnsureWorker(WorkerRef{"local", "A1B2C3"});
  ASSERT_TRUE(local.ok());
  EXPECT_NE(local->id, w->id);

  Result<Worker> got = store_->GetWorker(WorkerRef{"mturk", "A1B2C3"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, w->id);
  Result<Worker> by_id = store_->GetWorkerById(w->id);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->ref, (WorkerRef{"mturk", "A1B2C3"}));

  EXPECT_TRUE(store_->GetWorker(WorkerRef{"local", "nobody"}).status().IsNotFound());
  EXPECT_TRUE(store_->GetWorkerById(987654).status().IsNotFound());
  EXPECT_TRUE(store_->EnsureWorker(WorkerRef{"local", ""}).status().IsInvalidArgument());
  EXPECT_TRUE(store_->EnsureWorker(WorkerRef{"nosuchprovider", "x"}).status().IsInvalidArgument());
}

// ---- grants --------------------------------------------------------------------------------------

TEST_P(StoreContractTest, SetGrantCreatesWorkerAndAudits) {
  QualId q = Qual("skill");
  const int64_t t0 = env_.NowMicros();
  GrantOp op = Op(GrantOp::Kind::kSet, "newbie", q, 7, t0 + 100 * kSec);
  op.worker = WorkerRef{"prolific", "5f3a"};
  std::vector<AuditEntry> out = Apply({op});
  ASSERT_EQ(out.size(), 1u);
  const AuditEntry& e = out[0];
  EXPECT_GT(e.seq, 0);
  EXPECT_EQ(e.at, t0);
  EXPECT_EQ(e.kind, AuditEntry::Kind::kGrant);
  EXPECT_EQ(e.worker, (WorkerRef{"prolific", "5f3a"}));
  EXPECT_GT(e.worker_id, 0);
  EXPECT_EQ(e.qual_id, q);
  EXPECT_EQ(e.qualification, "skill");
  EXPECT_FALSE(e.old_value.has_value());
  EXPECT_EQ(e.new_value, 7);
  EXPECT_EQ(e.new_expires_at, t0 + 100 * kSec);
  EXPECT_EQ(e.actor, "tester");
  EXPECT_EQ(e.reason, "because");

  Result<Worker> w = store_->GetWorker(WorkerRef{"prolific", "5f3a"});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->id, e.worker_id);
  std::optional<Grant> g = GrantOf(w->id, q);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value, 7);
  EXPECT_EQ(g->granted_at, t0);
  EXPECT_EQ(g->updated_at, t0);
  EXPECT_EQ(g->expires_at, t0 + 100 * kSec);
  EXPECT_EQ(g->actor, "tester");
  EXPECT_EQ(g->qualification, "skill");
  EXPECT_EQ(g->worker, (WorkerRef{"prolific", "5f3a"}));

  // The returned entry is exactly what the log holds.
  Result<std::vector<AuditEntry>> feed = store_->ChangesSince(0, 10);
  ASSERT_TRUE(feed.ok());
  ASSERT_EQ(feed->size(), 1u);
  EXPECT_EQ((*feed)[0].seq, e.seq);
  EXPECT_EQ((*feed)[0].worker, e.worker);
  EXPECT_EQ((*feed)[0].new_expires_at, e.new_expires_at);
}

TEST_P(StoreContractTest, SetAgainReplacesValueKeepsGrantedAt) {
  QualId q = Qual("skill");
  const int64_t t0 = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 1)});
  env_.AdvanceSeconds(10);
  GrantOp change = Op(GrantOp::Kind::kSet, "alice", q, 5, t0 + 1000 * kSec);
  change.actor = "admin";
  std::vector<AuditEntry> out = Apply({change});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, AuditEntry::Kind::kChange);
  EXPECT_EQ(out[0].old_value, 1);
  EXPECT_EQ(out[0].new_value, 5);
  EXPECT_EQ(out[0].actor, "admin");
  std::optional<Grant> g = GrantOf(out[0].worker_id, q);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value, 5);
  EXPECT_EQ(g->granted_at, t0);
  EXPECT_EQ(g->updated_at, t0 + 10 * kSec);
  EXPECT_EQ(g->expires_at, t0 + 1000 * kSec);
  EXPECT_EQ(g->actor, "admin");

  // Granting the same value again is still recorded (a visible "granted again").
  out = Apply({change});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, AuditEntry::Kind::kChange);
  EXPECT_EQ(out[0].old_value, 5);
  EXPECT_EQ(out[0].new_value, 5);

  // Setting without expiry clears it.
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 5)});
  EXPECT_FALSE(GrantOf(out[0].worker_id, q)->expires_at.has_value());
}

TEST_P(StoreContractTest, AddIsACounter) {
  QualId q = Qual("units_done");
  const int64_t t0 = env_.NowMicros();
  std::vector<AuditEntry> out = Apply({Op(GrantOp::Kind::kAdd, "alice", q, 2, t0 + 50 * kSec),
                                       Op(GrantOp::Kind::kAdd, "alice", q, 3, t0 + 99 * kSec),
                                       Op(GrantOp::Kind::kAdd, "alice", q, -1)});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, AuditEntry::Kind::kGrant);
  EXPECT_EQ(out[0].new_value, 2);
  EXPECT_EQ(out[1].kind, AuditEntry::Kind::kChange);
  EXPECT_EQ(out[1].old_value, 2);
  EXPECT_EQ(out[1].new_value, 5);
  EXPECT_EQ(out[2].new_value, 4);
  EXPECT_LT(out[0].seq, out[1].seq);
  EXPECT_LT(out[1].seq, out[2].seq);
  std::optional<Grant> g = GrantOf(out[0].worker_id, q);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->value, 4);
  EXPECT_EQ(g->expires_at, t0 + 50 * kSec);  // kAdd keeps the expiry of the existing grant
  EXPECT_EQ(out[2].new_expires_at, t0 + 50 * kSec);
}

TEST_P(StoreContractTest, ExpiredGrantCountsAsAbsent) {
  QualId q = Qual("temp");
  QualId c = Qual("counter");
  const int64_t t0 = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 9, t0 + 10 * kSec),
         Op(GrantOp::Kind::kAdd, "alice", c, 5, t0 + 10 * kSec)});
  env_.AdvanceSeconds(20);
  std::vector<AuditEntry> out = Apply({Op(GrantOp::Kind::kSet, "alice", q, 1), Op(GrantOp::Kind::kAdd, "alice", c, 1)});
  ASSERT_EQ(out.size(), 2u);
  for (const AuditEntry& e : out) {
    EXPECT_EQ(e.kind, AuditEntry::Kind::kGrant);
    EXPECT_FALSE(e.old_value.has_value());
    EXPECT_EQ(e.new_value, 1);
    EXPECT_FALSE(e.new_expires_at.has_value());
  }
  std::optional<Grant> g = GrantOf(out[0].worker_id, q);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->granted_at, t0 + 20 * kSec);
  EXPECT_FALSE(g->ExpiredAt(env_.NowMicros()));
  EXPECT_EQ(GrantOf(out[0].worker_id, c)->value, 1);
}

TEST_P(StoreContractTest, RevokeDeletesAndIsNoOpWithoutGrant) {
  QualId q = Qual("skill");
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 3)});
  std::vector<AuditEntry> out =
      Apply({Op(GrantOp::Kind::kRevoke, "alice", q), Op(GrantOp::Kind::kRevoke, "alice", q),
             Op(GrantOp::Kind::kRevoke, "never_granted", q)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, AuditEntry::Kind::kRevoke);
  EXPECT_EQ(out[0].old_value, 3);
  EXPECT_FALSE(out[0].new_value.has_value());
  EXPECT_EQ(out[0].actor, "tester");
  EXPECT_EQ(out[0].reason, "because");
  EXPECT_FALSE(GrantOf(out[0].worker_id, q).has_value());
  EXPECT_TRUE(store_->GrantsForQualification(q)->empty());
}

TEST_P(StoreContractTest, RevokeDeletesAnExpiredGrantAndLogsItsValue) {
  QualId q = Qual("temp");
  const int64_t t0 = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 4, t0 + 10 * kSec)});
  env_.AdvanceSeconds(20);
  std::vector<AuditEntry> out = Apply({Op(GrantOp::Kind::kRevoke, "alice", q), Op(GrantOp::Kind::kRevoke, "alice", q)});
  ASSERT_EQ(out.size(), 1u);  // the second revoke finds nothing
  EXPECT_EQ(out[0].kind, AuditEntry::Kind::kRevoke);
  EXPECT_EQ(out[0].old_value, 4);
  EXPECT_FALSE(out[0].new_value.has_value());
  EXPECT_TRUE(store_->GrantsForQualification(q)->empty());  // expired rows would be listed
}

TEST_P(StoreContractTest, BatchWithUnknownQualificationAppliesNothing) {
  QualId q = Qual("skill");
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 1)});
  Result<std::vector<AuditEntry>> before = store_->ChangesSince(0, 100);
  ASSERT_TRUE(before.ok());

  Result<std::vector<AuditEntry>> r = store_->ApplyGrantOps(
      {Op(GrantOp::Kind::kSet, "alice", q, 2), Op(GrantOp::Kind::kSet, "brand_new", q, 1),
       Op(GrantOp::Kind::kSet, "alice", q + 1000, 1)});
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();

  EXPECT_EQ(store_->ChangesSince(0, 100)->size(), before->size());
  EXPECT_EQ(GrantOf(WorkerNamed("alice"), q)->value, 1);
  EXPECT_TRUE(store_->GetWorker(WorkerRef{"local", "brand_new"}).status().IsNotFound());

  // An invalid worker also fails the whole batch.
  GrantOp bad = Op(GrantOp::Kind::kSet, "", q, 1);
  EXPECT_TRUE(store_->ApplyGrantOps({Op(GrantOp::Kind::kSet, "alice", q, 2), bad}).status().IsInvalidArgument());
  EXPECT_EQ(GrantOf(WorkerNamed("alice"), q)->value, 1);
}

TEST_P(StoreContractTest, ApplyGrantOpsReportsProgress) {
  QualId q = Qual("bulk");
  std::vector<GrantOp> ops;
  for (int i = 0; i < 25000; ++i) ops.push_back(Op(GrantOp::Kind::kSet, "w" + std::to_string(i), q, i));
  std::vector<size_t> calls;
  Result<std::vector<AuditEntry>> r = store_->ApplyGrantOps(ops, [&](size_t n) { calls.push_back(n); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 25000u);
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), 25000u);
  EXPECT_GE(calls.size(), 3u);
  EXPECT_TRUE(std::is_sorted(calls.begin(), calls.end()));
  EXPECT_EQ(store_->GrantsForQualification(q)->size(), 25000u);
  EXPECT_TRUE(store_->ApplyGrantOps({})->empty());
  // The returned entries are exactly the log's, seq for seq.
  Result<std::vector<AuditEntry>> log = store_->ChangesSince(0, 30000);
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), r->size());
  for (size_t i = 0; i < log->size(); ++i) {
    ASSERT_EQ((*log)[i].seq, (*r)[i].seq) << i;
    ASSERT_EQ((*log)[i].worker, (*r)[i].worker) << i;
    ASSERT_EQ((*log)[i].new_value, (*r)[i].new_value) << i;
  }
}

TEST_P(StoreContractTest, GrantQueries) {
  QualId a = Qual("a");
  QualId b = Qual("b");
  const int64_t t0 = env_.NowMicros();
  Apply({Op(GrantOp::Kind::kSet, "alice", a, 1), Op(GrantOp::Kind::kSet, "alice", b, 2, t0 - 1),
         Op(GrantOp::Kind::kSet, "bob", a, 3)});
  WorkerId alice = WorkerNamed("alice");
  Result<std::vector<Grant>> ga = store_->GrantsForQualification(a);
  ASSERT_TRUE(ga.ok());
  ASSERT_EQ(ga->size(), 2u);
  std::set<std::string> names;
  for (const Grant& g : *ga) names.insert(g.worker.name);
  EXPECT_EQ(names, (std::set<std::string>{"alice", "bob"}));

  Result<std::vector<Grant>> gw = store_->GrantsForWorker(alice);
  ASSERT_TRUE(gw.ok());
  ASSERT_EQ(gw->size(), 2u);  // expired grants are included; callers filter
  std::optional<Grant> expired = GrantOf(alice, b);
  ASSERT_TRUE(expired.has_value());
  EXPECT_TRUE(expired->ExpiredAt(t0));

  EXPECT_TRUE(store_->GrantsForQualification(a + 1000).status().IsNotFound());
  EXPECT_TRUE(store_->GrantsForWorker(987654).status().IsNotFound());
}

TEST_P(StoreContractTest, ScanAllGrantsReturnsEverythingAsOfSeq) {
  int64_t seq = -1;
  int n = 0;
  ASSERT_TRUE(store_->ScanAllGrants([&](const Grant&) { ++n; }, &seq).ok());
  EXPECT_EQ(n, 0);
  EXPECT_EQ(seq, 0);

  QualId a = Qual("a");
  QualId b = Qual("b");
  std::vector<AuditEntry> out = Apply({Op(GrantOp::Kind::kSet, "alice", a, 1), Op(GrantOp::Kind::kSet, "bob", a, 2),
                                       Op(GrantOp::Kind::kSet, "bob", b, 3), Op(GrantOp::Kind::kRevoke, "alice", a)});
  std::vector<Grant> seen;
  ASSERT_TRUE(store_->ScanAllGrants([&](const Grant& g) { seen.push_back(g); }, &seq).ok());
  EXPECT_EQ(seq, out.back().seq);
  ASSERT_EQ(seen.size(), 2u);
  for (const Grant& g : seen) {
    EXPECT_EQ(g.worker.name, "bob");
    EXPECT_FALSE(g.qualification.empty());
  }
}

TEST_P(StoreContractTest, ChangesSinceAndHistory) {
  QualId a = Qual("a");
  QualId b = Qual("b");
  std::vector<AuditEntry> out = Apply({Op(GrantOp::Kind::kSet, "alice", a, 1), Op(GrantOp::Kind::kSet, "bob", a, 2),
                                       Op(GrantOp::Kind::kSet, "alice", b, 3), Op(GrantOp::Kind::kAdd, "alice", a, 1)});
  ASSERT_EQ(out.size(), 4u);
  Result<std::vector<AuditEntry>> first = store_->ChangesSince(0, 2);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].seq, out[0].seq);
  EXPECT_EQ((*first)[1].seq, out[1].seq);
  Result<std::vector<AuditEntry>> rest = store_->ChangesSince((*first)[1].seq, 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].seq, out[3].seq);
  EXPECT_EQ((*rest)[1].kind, AuditEntry::Kind::kChange);
  EXPECT_TRUE(store_->ChangesSince(out[3].seq, 100)->empty());

  WorkerId alice = WorkerNamed("alice");
  EXPECT_EQ(store_->History(std::nullopt, std::nullopt)->size(), 4u);
  EXPECT_EQ(store_->History(a, std::nullopt)->size(), 3u);
  Result<std::vector<AuditEntry>> ha = store_->History(std::nullopt, alice);
  ASSERT_TRUE(ha.ok());
  ASSERT_EQ(ha->size(), 3u);
  EXPECT_LT((*ha)[0].seq, (*ha)[1].seq);  // newest last
  EXPECT_EQ(store_->History(a, alice)->size(), 2u);
  EXPECT_TRUE(store_->History(b, WorkerNamed("bob"))->empty());
}

TEST_P(StoreContractTest, TwoStoresOnOneDatabaseSeeEachOther) {
  if (!GetParam().shared) {
    GTEST_SKIP() << "each connection to an in-memory SQLite database has a database of its own";
  }
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  QualId q = Qual("shared");
  Result<int64_t> token0 = other->ExternalChangeToken();
  ASSERT_TRUE(token0.ok());
  Result<int64_t> own0 = store_->ExternalChangeToken();
  ASSERT_TRUE(own0.ok());

  std::vector<AuditEntry> out = Apply({Op(GrantOp::Kind::kSet, "alice", q, 4)});
  ASSERT_EQ(out.size(), 1u);

  Result<int64_t> token1 = other->ExternalChangeToken();
  ASSERT_TRUE(token1.ok());
  EXPECT_NE(*token1, *token0);
  // A store's own commits do not count as external.
  EXPECT_EQ(*store_->ExternalChangeToken(), *own0);

  Result<std::vector<AuditEntry>> feed = other->ChangesSince(0, 100);
  ASSERT_TRUE(feed.ok());
  ASSERT_EQ(feed->size(), 1u);
  EXPECT_EQ((*feed)[0].seq, out[0].seq);
  EXPECT_EQ((*feed)[0].new_value, 4);
  EXPECT_EQ((*feed)[0].worker.name, "alice");

  // And the other way round.
  Result<std::vector<AuditEntry>> back = other->ApplyGrantOps({Op(GrantOp::Kind::kRevoke, "alice", q)});
  ASSERT_TRUE(back.ok());
  EXPECT_NE(*store_->ExternalChangeToken(), *own0);
  EXPECT_EQ(store_->ChangesSince(out[0].seq, 10)->size(), 1u);
}

TEST_P(StoreContractTest, DataSurvivesReopen) {
  if (!GetParam().shared) GTEST_SKIP() << "an in-memory database ends with its connection";
  QualId q = Qual("durable");
  Apply({Op(GrantOp::Kind::kSet, "alice", q, 4)});
  MakeRun("run_persist", "task", 3);
  store_.reset();
  store_ = OpenAnother();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(GrantOf(WorkerNamed("alice"), q)->value, 4);
  EXPECT_EQ(store_->GetRun("run_persist")->num_units, 3);
}

}  // namespace
}  // namespace crowdgate::store_test
