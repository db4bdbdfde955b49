// The Store contract suite: every test in StoreContractTest runs against every registered backend
// (SQLite in memory and SQLite on a temp file here). A backend defined elsewhere, e.g. a future
// store_contract_pgtest.cpp linked into a test binary with this file, adds itself without touching
// the test bodies:
//
//   namespace crowdgate::store_test {
//   int RegisterStoreBackend(std::string name, std::function<std::string()> fresh_uri, bool shared,
//                            std::function<void(const std::string&)> drop);
//   }
//   static const int kPg = crowdgate::store_test::RegisterStoreBackend("Postgres", ...);
//
// (the instantiation reads the registry lazily, at InitGoogleTest, after static initialisers ran).
// Backend-specific behaviour (URI parsing, pragmas, migrations) is tested in SqliteStoreTest below.
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "crowdgate/store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace crowdgate::store_test {

// A backend under test.
struct StoreBackend {
  std::string name;
  // A URI naming a fresh, empty database; called once per test.
  std::function<std::string()> fresh_uri;
  // True when two Store::Open(uri) calls reach the same database (false for in-memory SQLite).
  bool shared = true;
  // Removes what fresh_uri made, after the test's stores are closed. May be empty.
  std::function<void(const std::string&)> drop;
};

void PrintTo(const StoreBackend& b, std::ostream* os) { *os << b.name; }

std::vector<StoreBackend>& ExtraBackends() {
  static std::vector<StoreBackend> backends;
  return backends;
}

int RegisterStoreBackend(std::string name, std::function<std::string()> fresh_uri, bool shared,
                         std::function<void(const std::string&)> drop) {
  ExtraBackends().push_back(StoreBackend{std::move(name), std::move(fresh_uri), shared, std::move(drop)});
  return static_cast<int>(ExtraBackends().size());
}

namespace {

namespace fs = std::filesystem;

fs::path TempDir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("crowdgate_store_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string FreshTempPath() {
  static std::atomic<int> counter{0};
  return (TempDir() / ("db" + std::to_string(counter++) + ".sqlite")).string();
}

void RemoveSqliteFiles(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

std::vector<StoreBackend> AllBackends() {
  std::vector<StoreBackend> out = {
      {"SqliteMemory", [] { return std::string("sqlite::memory:"); }, false, {}},
      {"SqliteFile", [] { return "sqlite:" + FreshTempPath(); },
       true, [](const std::string& uri) { RemoveSqliteFiles(uri.substr(std::string("sqlite:").size())); }},
  };
  for (const StoreBackend& b : ExtraBackends()) out.push_back(b);
  return out;
}

constexpr int64_t kSec = kMicrosPerSecond;

class StoreContractTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    uri_ = GetParam().fresh_uri();
    Result<std::unique_ptr<Store>> s = Store::Open(uri_, &env_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    if (GetParam().drop) GetParam().drop(uri_);
  }

  std::unique_ptr<Store> OpenAnother() {
    Result<std::unique_ptr<Store>> s = Store::Open(uri_, &env_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  QualId Qual(const std::string& name) {
    Result<Qualification> q = store_->EnsureQualification(name, "desc of " + name);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? q->id : 0;
  }
  WorkerId WorkerNamed(const std::string& name, const std::string& provider = "local") {
    Result<Worker> w = store_->EnsureWorker(WorkerRef{provider, name});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? w->id : 0;
  }
  static GrantOp Op(GrantOp::Kind kind, const std::string& worker, QualId qual, int64_t value = 1,
                    std::optional<int64_t> expires = std::nullopt) {
    GrantOp op;
    op.kind = kind;
    op.worker = WorkerRef{"local", worker};
    op.qual_id = qual;
    op.value = value;
    op.expires_at = expires;
    op.actor = "tester";
    op.reason = "because";
    return op;
  }
  std::vector<AuditEntry> Apply(const std::vector<GrantOp>& ops) {
    Result<std::vector<AuditEntry>> r = store_->ApplyGrantOps(ops);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<AuditEntry>{};
  }
  std::optional<Grant> GrantOf(WorkerId worker, QualId qual) {
    Result<std::vector<Grant>> gs = store_->GrantsForWorker(worker);
    EXPECT_TRUE(gs.ok()) << gs.status().ToString();
    if (!gs.ok()) return std::nullopt;
    for (const Grant& g : *gs) {
      if (g.qual_id == qual) return g;
    }
    return std::nullopt;
  }

  RunRecord MakeRun(const std::string& id, const std::string& task, int num_items, int units_per_item = 1) {
    RunRecord run;
    run.id = id;
    run.task_name = task;
    run.config_json = R"({"task":{"task_name":")" + task + R"("}})";
    run.created_at = env_.NowMicros();
    std::vector<std::string> items;
    for (int i = 0; i < num_items; ++i) items.push_back(R"({"i":)" + std::to_string(i) + "}");
    Status s = store_->CreateRun(run, items, units_per_item);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return run;
  }
  AgentRecord NewAgent(const std::string& run_id, WorkerId worker, const std::string& kind = "unit") {
    AgentRecord a;
    a.id = "ag_" + env_.RandomHex128();
    a.token_hash = "hash_" + a.id;
    a.run_id = run_id;
    a.worker_id = worker;
    a.kind = kind;
    a.status = kind == "onboarding" ? "onboarding" : "in_task";
    a.created_at = env_.NowMicros();
    a.deadline = a.created_at + 60 * kSec;
    return a;
  }
  AgentRecord Reserve(const std::string& run_id, WorkerId worker) {
    Result<std::optional<AgentRecord>> r = store_->ReserveUnit(run_id, NewAgent(run_id, worker));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.ok() && r->has_value()) << "no unit reserved";
    return r.ok() && r->has_value() ? **r : AgentRecord{};
  }
  std::map<std::string, int64_t> Counts(const std::string& run_id) {
    Result<std::vector<std::pair<std::string, int64_t>>> c = store_->UnitStatusCounts(run_id);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    std::map<std::string, int64_t> out;
    if (c.ok()) out.insert(c->begin(), c->end());
    return out;
  }
  AgentFinish Submit(const AgentRecord& a, const std::string& check = "") {
    AgentFinish f;
    f.agent_id = a.id;
    f.expect_status = "in_task";
    f.new_status = "completed";
    f.unit_status = "completed";
    f.data_json = R"({"answer":1})";
    f.submitted_at = env_.NowMicros();
    f.check_result = check;
    return f;
  }

  FakeEnv env_;
  std::string uri_;
  std::unique_ptr<Store> store_;
};

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

// ---- runs ----------------------------------------------------------------------------------------

TEST_P(StoreContractTest, CreateAndReadRuns) {
  RunRecord r = MakeRun("run_a", "taskA", 4, 3);
  Result<RunRecord> got = store_->GetRun("run_a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->task_name, "taskA");
  EXPECT_EQ(got->config_json, r.config_json);
  EXPECT_EQ(got->status, "open");
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

  ASSERT_TRUE(store_->SetRunStatus("run_a", "closed").ok());
  EXPECT_EQ(store_->GetRun("run_a")->status, "closed");
  EXPECT_TRUE(store_->SetRunStatus("run_a", "weird").IsInvalidArgument());
  EXPECT_TRUE(store_->SetRunStatus("run_nope", "closed").IsNotFound());
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
  ret.expect_status = "in_task";
  ret.new_status = "returned";
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
  EXPECT_EQ(got->kind, "unit");
  EXPECT_EQ(got->status, "in_task");
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
  // A backend that batches rolled the reservation back; one that does not committed it already.
  const int64_t assigned = Counts("run_a")["assigned"];
  EXPECT_TRUE(assigned == 1 || assigned == 2);
  EXPECT_EQ(store_->GetAgent(second.id).ok(), assigned == 2);
}

TEST_P(StoreContractTest, CreateEvalUnitRespectsTheCap) {
  MakeRun("run_a", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  for (int i = 0; i < 2; ++i) {
    AgentRecord g = NewAgent("run_a", alice, "gold");
    g.item_index = 10 + i;
    g.eval_set = "golds";
    Result<bool> ok = store_->CreateEvalUnit("run_a", g, 2, "golds");
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_TRUE(*ok);
    Result<AgentRecord> got = store_->GetAgent(g.id);
    ASSERT_TRUE(got.ok());
    EXPECT_TRUE(got->unit_id.has_value());
    EXPECT_EQ(got->kind, "gold");
    EXPECT_EQ(got->item_index, 10 + i);
  }
  AgentRecord over = NewAgent("run_a", alice, "gold");
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

  AgentRecord s = NewAgent("run_a", alice, "screening");
  s.item_index = 0;
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", s, 1, ""));
  AgentRecord s2 = NewAgent("run_a", alice, "screening");
  EXPECT_FALSE(*store_->CreateEvalUnit("run_a", s2, 1, ""));
  Result<RunRecord> run = store_->GetRun("run_a");
  EXPECT_EQ(run->screening_served, 1);
  EXPECT_EQ(run->gold_served, 2);
  EXPECT_TRUE(store_->GoldsSeen(alice, "")->empty());  // screening is not recorded as gold

  EXPECT_TRUE(store_->CreateEvalUnit("run_nope", NewAgent("run_nope", alice, "gold"), 5, "g").status().IsNotFound());
  EXPECT_TRUE(store_->CreateEvalUnit("run_a", NewAgent("run_a", alice, "unit"), 5, "g").status().IsInvalidArgument());
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
  EXPECT_EQ(got->status, "completed");
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
  EXPECT_EQ(store_->GetAgent(a.id)->status, "in_task");
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"assigned", 1}}));
  // The agent can still submit properly.
  f.grant_ops.clear();
  EXPECT_TRUE(store_->FinishAgent(f).ok());
}

TEST_P(StoreContractTest, FinishAgentReleasesAndRefunds) {
  MakeRun("run_a", "task", 1);
  WorkerId alice = WorkerNamed("alice");
  AgentRecord g = NewAgent("run_a", alice, "gold");
  g.item_index = 3;
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 5, "golds"));
  AgentRecord s = NewAgent("run_a", alice, "screening");
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", s, 5, ""));
  EXPECT_EQ(store_->GetRun("run_a")->gold_served, 1);

  AgentFinish timeout;
  timeout.agent_id = g.id;
  timeout.expect_status = "in_task";
  timeout.new_status = "timeout";
  timeout.unit_status = "expired";
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
  EXPECT_EQ(store_->GetAgent(g.id)->status, "timeout");

  // A released real unit goes back to launched with no worker, and can be reserved again.
  AgentRecord a = Reserve("run_a", alice);
  AgentFinish ret;
  ret.agent_id = a.id;
  ret.expect_status = "in_task";
  ret.new_status = "returned";
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
  AgentRecord onb = NewAgent("run_a", alice, "onboarding");
  onb.deadline = env_.NowMicros() + 10 * kSec;
  ASSERT_TRUE(store_->CreateOnboardingAgent(onb).ok());
  EXPECT_TRUE(store_->CreateOnboardingAgent(onb).IsConflict());
  EXPECT_FALSE(store_->GetAgent(onb.id)->unit_id.has_value());
  AgentRecord missing_run = NewAgent("run_nope", alice, "onboarding");
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
  passed.expect_status = "onboarding";
  passed.new_status = "passed";
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
    AgentRecord g = NewAgent(i % 2 == 0 ? "run_a" : "run_b", alice, "gold");
    g.item_index = i % 3;  // items repeat: golds_seen keeps one row each
    g.eval_set = "golds";
    ASSERT_TRUE(*store_->CreateEvalUnit(g.run_id, g, 100, "golds"));
    AgentFinish f = Submit(g, result);
    ASSERT_TRUE(store_->FinishAgent(f).ok());
    ++i;
  }
  AgentRecord other = NewAgent("run_a", alice, "gold");
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
  AgentRecord g = NewAgent("run_a", alice, "gold");
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 10, "golds"));  // golds do not count
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("task", alice), 3);
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("other_task", alice), 1);
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("no_such_task", alice), 0);
  EXPECT_TRUE(store_->CountWorkerUnitsForTask("task", 987654).status().IsNotFound());

  ASSERT_TRUE(store_->FinishAgent(Submit(a1)).ok());
  ASSERT_TRUE(store_->FinishAgent(Submit(b1)).ok());
  AgentFinish ret;
  ret.agent_id = a2.id;
  ret.expect_status = "in_task";
  ret.new_status = "returned";
  ret.release_unit = true;
  ASSERT_TRUE(store_->FinishAgent(ret).ok());
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("task", alice), 2);

  // Review: only submitted units change; units of another run are not touched.
  Result<int64_t> n = store_->ReviewUnits("run_a", {*a1.unit_id, *a2.unit_id, *b1.unit_id, 999999}, "accepted");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(Counts("run_a"), (std::map<std::string, int64_t>{{"accepted", 1}, {"launched", 2}}));
  EXPECT_EQ(Counts("run_b")["completed"], 1);
  EXPECT_EQ(store_->GetAgent(a1.id)->status, "approved");   // the submitting agent follows its unit
  EXPECT_EQ(store_->GetAgent(a2.id)->status, "returned");   // an agent that gave the unit back does not
  EXPECT_EQ(store_->GetAgent(b1.id)->status, "completed");  // another run is not touched
  EXPECT_EQ(*store_->ReviewUnits("run_a", {*a1.unit_id}, "accepted"), 0);  // already accepted
  EXPECT_EQ(*store_->ReviewUnits("run_a", {*a1.unit_id}, "soft_rejected"), 1);  // reviewed again
  EXPECT_EQ(store_->GetAgent(a1.id)->status, "soft_rejected");
  EXPECT_EQ(*store_->CountWorkerUnitsForTask("task", alice), 2);
  EXPECT_TRUE(store_->ReviewUnits("run_a", {*a1.unit_id}, "launched").status().IsInvalidArgument());
  EXPECT_TRUE(store_->ReviewUnits("run_nope", {1}, "accepted").status().IsNotFound());
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
  EXPECT_EQ(store_->GetAgent(a0.id)->status, "rejected");
  EXPECT_EQ(store_->GetAgent(a1.id)->status, "rejected");
  EXPECT_EQ(store_->GetAgent(other.id)->status, "completed");
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
  AgentRecord g = NewAgent("run_a", bob, "gold");
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
    AgentRecord g = NewAgent("run_a", alice, "gold");
    ASSERT_TRUE(*store_->CreateEvalUnit("run_a", g, 10, "golds"));
    ASSERT_TRUE(store_->FinishAgent(Submit(g, check)).ok());
  }
  AgentRecord ob = NewAgent("run_a", bob, "onboarding");
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

// ---- provider outbox, secrets, provider state, sessions ------------------------------------------

namespace {

GrantOp ProlificOp(GrantOp::Kind kind, const std::string& pid, QualId qual, int64_t value = 1,
                   std::optional<int64_t> expires = std::nullopt) {
  GrantOp op;
  op.kind = kind;
  op.worker = WorkerRef{"prolific", pid};
  op.qual_id = qual;
  op.value = value;
  op.expires_at = expires;
  op.actor = "tester";
  op.reason = "because";
  return op;
}

OutboxRow NewRow(const std::string& key, const std::string& kind = "approve", const std::string& run_id = "run_a") {
  OutboxRow r;
  r.provider = "prolific";
  r.kind = kind;
  r.run_id = run_id;
  r.order_key = key;
  r.payload_json = R"({"key":")" + key + R"("})";
  return r;
}

std::vector<int64_t> Ids(const std::vector<OutboxRow>& rows) {
  std::vector<int64_t> out;
  for (const OutboxRow& r : rows) out.push_back(r.id);
  return out;
}

}  // namespace

// Every outbox row, oldest first.
#define CG_ALL_OUTBOX() (store_->ListOutbox({}, 0, 100000).value())

TEST_P(StoreContractTest, GrantSyncRowsAreWrittenExactlyForProviderVisibleChanges) {
  QualId allow = Qual("allow");
  const int64_t t0 = env_.NowMicros();
  const int64_t expiry = t0 + 3600 * kSec;
  // A first grant to a Prolific participant: one row, with the documented payload.
  ASSERT_EQ(store_->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1, expiry)})->size(), 1u);
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].provider, "prolific");
  EXPECT_EQ(rows[0].kind, "grant_sync");
  EXPECT_EQ(rows[0].run_id, "");
  EXPECT_EQ(rows[0].order_key, "grant:prolific:P1|allow");
  EXPECT_EQ(nlohmann::json::parse(rows[0].payload_json),
            (nlohmann::json{{"worker", "prolific:P1"}, {"qualification", "allow"}, {"value", 1},
                            {"expires_at", expiry}}));
  EXPECT_EQ(rows[0].state, "pending");
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_LE(rows[0].next_attempt_at, t0);  // due at once
  EXPECT_EQ(rows[0].created_at, t0);
  EXPECT_EQ(rows[0].claimed_by, "");
  EXPECT_EQ(rows[0].last_error, "");

  // No row: a local worker, an MTurk worker, --no-sync, a counter, a revoke of nothing.
  GrantOp no_sync = ProlificOp(GrantOp::Kind::kSet, "P2", allow, 1);
  no_sync.provider_sync = false;
  GrantOp mturk = ProlificOp(GrantOp::Kind::kSet, "A1B2", allow, 1);
  mturk.worker.provider = "mturk";
  ASSERT_TRUE(store_
                  ->ApplyGrantOps({Op(GrantOp::Kind::kSet, "alice", allow, 1), mturk, no_sync,
                                   ProlificOp(GrantOp::Kind::kAdd, "P3", allow, 1),
                                   ProlificOp(GrantOp::Kind::kRevoke, "P4", allow)})
                  .ok());
  EXPECT_EQ(CG_ALL_OUTBOX().size(), 1u);
  EXPECT_TRUE(GrantOf(WorkerNamed("P2", "prolific"), allow).has_value());  // the grant itself happened
  EXPECT_TRUE(GrantOf(WorkerNamed("P3", "prolific"), allow).has_value());

  // A changed value, a repeated one (a kChange audit entry, so a row too) and a revoke, in op order.
  ASSERT_EQ(store_
                ->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P1", allow, 2),
                                 ProlificOp(GrantOp::Kind::kSet, "P1", allow, 2),
                                 ProlificOp(GrantOp::Kind::kRevoke, "P1", allow),
                                 ProlificOp(GrantOp::Kind::kRevoke, "P1", allow)})  // nothing left: no row
                ->size(),
            3u);
  rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 4u);
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_GT(rows[i].id, rows[i - 1].id);
    EXPECT_EQ(rows[i].order_key, "grant:prolific:P1|allow");
  }
  EXPECT_EQ(nlohmann::json::parse(rows[1].payload_json)["value"], 2);
  EXPECT_TRUE(nlohmann::json::parse(rows[1].payload_json)["expires_at"].is_null());
  EXPECT_EQ(nlohmann::json::parse(rows[3].payload_json),
            (nlohmann::json{{"worker", "prolific:P1"}, {"qualification", "allow"}, {"value", nullptr},
                            {"expires_at", nullptr}}));
}

TEST_P(StoreContractTest, GrantSyncRowsCommitAndRollBackWithTheirGrants) {
  QualId allow = Qual("allow");
  // A failing batch writes neither grants nor rows.
  EXPECT_TRUE(store_
                  ->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1),
                                   ProlificOp(GrantOp::Kind::kSet, "P1", 424242, 1)})
                  .status()
                  .IsNotFound());
  EXPECT_TRUE(CG_ALL_OUTBOX().empty());

  // FinishAgent's grant ops write rows in its transaction, and none when it fails.
  MakeRun("run_a", "task", 3);
  WorkerId p1 = WorkerNamed("P1", "prolific");
  AgentRecord a = Reserve("run_a", p1);
  AgentFinish bad = Submit(a);
  bad.grant_ops = {ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1), ProlificOp(GrantOp::Kind::kAdd, "P1", 424242)};
  EXPECT_TRUE(store_->FinishAgent(bad).status().IsNotFound());
  EXPECT_TRUE(CG_ALL_OUTBOX().empty());
  AgentFinish good = Submit(a);
  good.grant_ops = {ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1), ProlificOp(GrantOp::Kind::kAdd, "P1", allow)};
  ASSERT_TRUE(store_->FinishAgent(good).ok());
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 1u);  // the kSet; the counter is not synced
  EXPECT_EQ(rows[0].order_key, "grant:prolific:P1|allow");

  // In a batch, a failed step takes its rows with it; the other steps keep theirs.
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P2", allow, 1)}).ok());
  EXPECT_TRUE(store_
                  ->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P3", allow, 1),
                                   ProlificOp(GrantOp::Kind::kSet, "P3", 424242, 1)})
                  .status()
                  .IsNotFound());
  AgentRecord b = Reserve("run_a", WorkerNamed("P4", "prolific"));
  AgentFinish failing = Submit(b);
  failing.grant_ops = {ProlificOp(GrantOp::Kind::kSet, "P4", allow, 1), ProlificOp(GrantOp::Kind::kAdd, "P4", 424242)};
  EXPECT_TRUE(store_->FinishAgent(failing).status().IsNotFound());
  ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
  rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].order_key, "grant:prolific:P2|allow");

  // A batch rolled back as a whole takes its rows with it (where the backend batches at all).
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P5", allow, 1)}).ok());
  (void)store_->EndBatch(/*commit=*/false);
  const bool kept = GrantOf(WorkerNamed("P5", "prolific"), allow).has_value();
  EXPECT_EQ(CG_ALL_OUTBOX().size(), kept ? 3u : 2u);
}

TEST_P(StoreContractTest, GrantSyncRowsForABulkImport) {
  // More rows than any backend writes per statement, interleaved with rows that need none.
  QualId allow = Qual("allow");
  std::vector<GrantOp> ops;
  for (int i = 0; i < 150; ++i) {
    ops.push_back(ProlificOp(GrantOp::Kind::kSet, "P" + std::to_string(i), allow, i));
    if (i % 3 == 0) ops.push_back(Op(GrantOp::Kind::kSet, "w" + std::to_string(i), allow, i));
  }
  ASSERT_TRUE(store_->ApplyGrantOps(ops).ok());
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 150u);
  for (int i = 0; i < 150; ++i) {
    const OutboxRow& r = rows[static_cast<size_t>(i)];
    EXPECT_EQ(r.order_key, "grant:prolific:P" + std::to_string(i) + "|allow");
    EXPECT_EQ(nlohmann::json::parse(r.payload_json)["value"], i);
    if (i > 0) {
      EXPECT_GT(r.id, rows[static_cast<size_t>(i) - 1].id);
    }
  }
}

TEST_P(StoreContractTest, ReviewUnitsWritesItsOutboxRowsInTheSameTransaction) {
  MakeRun("run_a", "task", 2);
  WorkerId p1 = WorkerNamed("P1", "prolific");
  AgentRecord a = Reserve("run_a", p1);
  ASSERT_TRUE(store_->FinishAgent(Submit(a)).ok());
  OutboxRow approve = NewRow("submission:S1", "approve");
  OutboxRow bonus = NewRow("submission:S1", "bonus");
  bonus.progress_json = R"({"step":"none"})";

  // Failures write nothing: an unknown run, a bad status, a bad row.
  EXPECT_TRUE(store_->ReviewUnits("run_nope", {*a.unit_id}, "accepted", {approve}).status().IsNotFound());
  EXPECT_TRUE(store_->ReviewUnits("run_a", {*a.unit_id}, "launched", {approve}).status().IsInvalidArgument());
  OutboxRow keyless = approve;
  keyless.order_key = "";
  EXPECT_TRUE(store_->ReviewUnits("run_a", {*a.unit_id}, "accepted", {approve, keyless}).status().IsInvalidArgument());
  EXPECT_TRUE(CG_ALL_OUTBOX().empty());
  EXPECT_EQ(store_->GetAgent(a.id)->status, "completed");

  Result<int64_t> n = store_->ReviewUnits("run_a", {*a.unit_id}, "accepted", {approve, bonus});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store_->GetAgent(a.id)->status, "approved");
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].kind, "approve");
  EXPECT_EQ(rows[1].kind, "bonus");
  EXPECT_LT(rows[0].id, rows[1].id);
  EXPECT_EQ(rows[1].run_id, "run_a");
  EXPECT_EQ(rows[1].payload_json, bonus.payload_json);
  EXPECT_EQ(rows[1].progress_json, R"({"step":"none"})");
  EXPECT_EQ(rows[1].state, "pending");
  EXPECT_EQ(rows[1].created_at, env_.NowMicros());

  // Inside a batch a review is a step like any other: a failing one leaves no rows behind.
  ASSERT_TRUE(store_->BeginBatch().ok());
  EXPECT_TRUE(store_->ReviewUnits("run_nope", {*a.unit_id}, "rejected", {NewRow("submission:S1", "reject")})
                  .status()
                  .IsNotFound());
  ASSERT_TRUE(store_->EndBatch(true).ok());
  EXPECT_EQ(CG_ALL_OUTBOX().size(), 2u);
}

TEST_P(StoreContractTest, EnqueueOutboxStoresFreshPendingRows) {
  OutboxRow r = NewRow("k1");
  r.state = "done";  // ignored: rows start pending, unattempted and unclaimed
  r.attempts = 7;
  r.claimed_by = "someone";
  r.claimed_until = env_.NowMicros() + 3600 * kSec;
  r.last_error = "old";
  r.next_attempt_at = env_.NowMicros() + 5 * kSec;
  r.created_at = 12345;
  ASSERT_TRUE(store_->EnqueueOutbox({r}).ok());
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_GT(rows[0].id, 0);
  EXPECT_EQ(rows[0].state, "pending");
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_EQ(rows[0].claimed_by, "");
  EXPECT_EQ(rows[0].claimed_until, 0);
  EXPECT_EQ(rows[0].last_error, "");
  EXPECT_EQ(rows[0].next_attempt_at, r.next_attempt_at);
  EXPECT_EQ(rows[0].created_at, 12345);
  EXPECT_EQ(rows[0].progress_json, "{}");
  // Not due yet.
  EXPECT_TRUE(store_->ClaimOutbox("a", env_.NowMicros(), 10 * kSec, 10)->empty());
  EXPECT_EQ(store_->ClaimOutbox("a", r.next_attempt_at, 10 * kSec, 10)->size(), 1u);

  // All or nothing: one bad row refuses the lot.
  OutboxRow bad = NewRow("k2");
  bad.provider = "";
  EXPECT_TRUE(store_->EnqueueOutbox({NewRow("k2"), bad}).IsInvalidArgument());
  EXPECT_EQ(CG_ALL_OUTBOX().size(), 1u);
  EXPECT_TRUE(store_->EnqueueOutbox({}).ok());
}

TEST_P(StoreContractTest, ClaimOutboxDeliversEachKeyOneRowAtATimeInOrder) {
  ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k1"), NewRow("k1"), NewRow("k2"), NewRow("k1")}).ok());
  std::vector<OutboxRow> all = CG_ALL_OUTBOX();
  ASSERT_EQ(all.size(), 4u);
  const int64_t k1a = all[0].id, k1b = all[1].id, k2 = all[2].id, k1c = all[3].id;
  const int64_t lease = 60 * kSec;

  Result<std::vector<OutboxRow>> a = store_->ClaimOutbox("A", env_.NowMicros(), lease, 10);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(Ids(*a), (std::vector<int64_t>{k1a, k2}));  // the heads of k1 and k2, oldest first
  EXPECT_EQ((*a)[0].claimed_by, "A");
  EXPECT_EQ((*a)[0].claimed_until, env_.NowMicros() + lease);
  EXPECT_EQ((*a)[0].payload_json, R"({"key":"k1"})");
  // The heads are held; the rest wait behind them.
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros(), lease, 10)->empty());

  // k1's head fails for now: it is released for a retry in 10 s, and k1 still waits behind it.
  OutboxRow head = (*a)[0];
  head.state = "retrying";
  head.attempts = 1;
  head.next_attempt_at = env_.NowMicros() + 10 * kSec;
  head.last_error = "429 Too Many Requests";
  ASSERT_TRUE(store_->UpdateOutboxRow(head, /*release=*/true).ok());
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros(), lease, 10)->empty());
  env_.AdvanceSeconds(10);
  Result<std::vector<OutboxRow>> b = store_->ClaimOutbox("B", env_.NowMicros(), lease, 10);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(Ids(*b), (std::vector<int64_t>{k1a}));  // k2 is still A's
  EXPECT_EQ((*b)[0].state, "retrying");
  EXPECT_EQ((*b)[0].attempts, 1);
  EXPECT_EQ((*b)[0].last_error, "429 Too Many Requests");

  // Done: the next of k1 comes up. Failed (for good) counts as finished too.
  head = (*b)[0];
  head.state = "done";
  ASSERT_TRUE(store_->UpdateOutboxRow(head, true).ok());
  b = store_->ClaimOutbox("B", env_.NowMicros(), lease, 10);
  ASSERT_EQ(Ids(*b), (std::vector<int64_t>{k1b}));
  OutboxRow second = (*b)[0];
  second.state = "failed";
  second.last_error = "400 participant not found";
  ASSERT_TRUE(store_->UpdateOutboxRow(second, true).ok());
  b = store_->ClaimOutbox("B", env_.NowMicros(), lease, 10);
  ASSERT_EQ(Ids(*b), (std::vector<int64_t>{k1c}));

  for (OutboxRow r : {(*a)[1], (*b)[0]}) {
    r.state = "done";
    ASSERT_TRUE(store_->UpdateOutboxRow(r, true).ok());
  }
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros() + 3600 * kSec, lease, 10)->empty());
  // Done and failed rows are never claimed again, lease or not.
  env_.AdvanceSeconds(3600);
  EXPECT_TRUE(store_->ClaimOutbox("C", env_.NowMicros(), lease, 10)->empty());
}

TEST_P(StoreContractTest, ClaimOutboxTakesAtMostLimitOldestFirst) {
  std::vector<OutboxRow> rows;
  for (int i = 0; i < 7; ++i) rows.push_back(NewRow("key" + std::to_string(i)));
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  std::vector<int64_t> ids = Ids(CG_ALL_OUTBOX());
  Result<std::vector<OutboxRow>> first = store_->ClaimOutbox("A", env_.NowMicros(), 60 * kSec, 3);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Ids(*first), (std::vector<int64_t>(ids.begin(), ids.begin() + 3)));
  Result<std::vector<OutboxRow>> rest = store_->ClaimOutbox("B", env_.NowMicros(), 60 * kSec, 100);
  EXPECT_EQ(Ids(*rest), (std::vector<int64_t>(ids.begin() + 3, ids.end())));
  EXPECT_TRUE(store_->ClaimOutbox("A", env_.NowMicros(), 60 * kSec, 0)->empty());
  EXPECT_TRUE(store_->ClaimOutbox("", env_.NowMicros(), 60 * kSec, 1).status().IsInvalidArgument());
}

TEST_P(StoreContractTest, ALapsedClaimCanBeTakenOverAndTheOldClaimerLosesTheRow) {
  ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k1")}).ok());
  Result<std::vector<OutboxRow>> a = store_->ClaimOutbox("A", env_.NowMicros(), 5 * kSec, 10);
  ASSERT_EQ(a->size(), 1u);
  OutboxRow mine = (*a)[0];
  // Still A's while the lease runs, even for A itself.
  env_.AdvanceSeconds(4);
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros(), 5 * kSec, 10)->empty());
  EXPECT_TRUE(store_->ClaimOutbox("A", env_.NowMicros(), 5 * kSec, 10)->empty());
  // A records progress without letting go.
  mine.progress_json = R"({"bonus_id":"b1"})";
  mine.attempts = 1;
  ASSERT_TRUE(store_->UpdateOutboxRow(mine, /*release=*/false).ok());
  OutboxRow listed = CG_ALL_OUTBOX()[0];
  EXPECT_EQ(listed.claimed_by, "A");
  EXPECT_EQ(listed.progress_json, R"({"bonus_id":"b1"})");
  EXPECT_EQ(listed.attempts, 1);
  EXPECT_EQ(listed.updated_at, env_.NowMicros());

  // The lease lapses: B takes the row over, with A's progress.
  env_.AdvanceSeconds(1);
  Result<std::vector<OutboxRow>> b = store_->ClaimOutbox("B", env_.NowMicros(), 5 * kSec, 10);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].claimed_by, "B");
  EXPECT_EQ((*b)[0].progress_json, R"({"bonus_id":"b1"})");
  // A's late report is refused and changes nothing.
  mine.state = "done";
  Status late = store_->UpdateOutboxRow(mine, true);
  EXPECT_TRUE(late.IsConflict()) << late.ToString();
  EXPECT_EQ(CG_ALL_OUTBOX()[0].state, "pending");
  EXPECT_EQ(CG_ALL_OUTBOX()[0].claimed_by, "B");

  OutboxRow theirs = (*b)[0];
  theirs.state = "failed";
  theirs.last_error = "refused";
  ASSERT_TRUE(store_->UpdateOutboxRow(theirs, true).ok());
  listed = CG_ALL_OUTBOX()[0];
  EXPECT_EQ(listed.state, "failed");
  EXPECT_EQ(listed.claimed_by, "");
  EXPECT_EQ(listed.claimed_until, 0);
  // Once released, B cannot write it either; an operator (no claimer) can, e.g. to retry it.
  EXPECT_TRUE(store_->UpdateOutboxRow(theirs, true).IsConflict());
  OutboxRow retry = listed;
  retry.state = "pending";
  retry.last_error = "";
  ASSERT_TRUE(store_->UpdateOutboxRow(retry, true).ok());
  EXPECT_EQ(store_->ClaimOutbox("C", env_.NowMicros(), 5 * kSec, 10)->size(), 1u);

  OutboxRow missing = theirs;
  missing.id = 987654;
  EXPECT_TRUE(store_->UpdateOutboxRow(missing, true).IsNotFound());
  OutboxRow bad_state = theirs;
  bad_state.state = "sent";
  EXPECT_TRUE(store_->UpdateOutboxRow(bad_state, true).IsInvalidArgument());
}

TEST_P(StoreContractTest, UpdateOutboxRowsJudgesEachRowAndWritesTheHeldOnesInOneCall) {
  ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k1"), NewRow("k2"), NewRow("k3")}).ok());
  std::vector<OutboxRow> a = store_->ClaimOutbox("A", env_.NowMicros(), 5 * kSec, 2).value();
  ASSERT_EQ(a.size(), 2u);
  env_.AdvanceSeconds(5);
  std::vector<OutboxRow> b = store_->ClaimOutbox("B", env_.NowMicros(), 5 * kSec, 1).value();
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(b[0].id, a[0].id);  // B took A's first row over; A's second is lapsed but still A's

  OutboxRow lost = a[0], kept = a[1], missing = a[1];
  lost.state = kept.state = missing.state = "done";
  kept.attempts = 1;
  kept.progress_json = R"({"sent":true})";
  missing.id = 987654;
  Result<std::vector<Status>> r = store_->UpdateOutboxRows({kept, lost, missing}, /*release=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[0].ok()) << (*r)[0].ToString();
  EXPECT_TRUE((*r)[1].IsConflict()) << (*r)[1].ToString();
  EXPECT_TRUE((*r)[2].IsNotFound()) << (*r)[2].ToString();
  std::vector<OutboxRow> all = CG_ALL_OUTBOX();
  EXPECT_EQ(all[0].state, "pending");  // B's
  EXPECT_EQ(all[0].claimed_by, "B");
  EXPECT_EQ(all[1].state, "done");
  EXPECT_EQ(all[1].attempts, 1);
  EXPECT_EQ(all[1].progress_json, R"({"sent":true})");
  EXPECT_EQ(all[1].claimed_by, "");
  EXPECT_EQ(all[1].updated_at, env_.NowMicros());
  EXPECT_EQ(all[2].state, "pending");

  // Without release the claim stays; a bad state or a row given twice refuses the whole call.
  OutboxRow progress = b[0];
  progress.progress_json = R"({"step":1})";
  r = store_->UpdateOutboxRows({progress}, /*release=*/false);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].ok());
  EXPECT_EQ(CG_ALL_OUTBOX()[0].claimed_by, "B");
  EXPECT_EQ(CG_ALL_OUTBOX()[0].progress_json, R"({"step":1})");
  OutboxRow bad = b[0];
  bad.state = "sent";
  OutboxRow done = b[0];
  done.state = "done";
  EXPECT_TRUE(store_->UpdateOutboxRows({done, bad}, true).status().IsInvalidArgument());
  EXPECT_TRUE(store_->UpdateOutboxRows({done, done}, true).status().IsInvalidArgument());
  EXPECT_EQ(CG_ALL_OUTBOX()[0].state, "pending");
  EXPECT_TRUE(store_->UpdateOutboxRows({}, true)->empty());
}

TEST_P(StoreContractTest, CountOutboxAndListOutboxFilters) {
  Result<OutboxCounts> empty = store_->CountOutbox();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->pending + empty->retrying + empty->done + empty->failed, 0);
  EXPECT_FALSE(empty->oldest_undelivered_at.has_value());

  // Four rows, one a second, then one in each state.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k" + std::to_string(i))}).ok());
    env_.AdvanceSeconds(1);
  }
  std::vector<OutboxRow> all = CG_ALL_OUTBOX();
  ASSERT_EQ(all.size(), 4u);
  std::vector<OutboxRow> claimed = store_->ClaimOutbox("A", env_.NowMicros(), 60 * kSec, 3).value();
  ASSERT_EQ(claimed.size(), 3u);
  const char* states[] = {"done", "failed", "retrying"};
  for (int i = 0; i < 3; ++i) {
    claimed[static_cast<size_t>(i)].state = states[i];
    ASSERT_TRUE(store_->UpdateOutboxRow(claimed[static_cast<size_t>(i)], true).ok());
  }
  Result<OutboxCounts> c = store_->CountOutbox();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->pending, 1);
  EXPECT_EQ(c->retrying, 1);
  EXPECT_EQ(c->done, 1);
  EXPECT_EQ(c->failed, 1);
  ASSERT_TRUE(c->oldest_undelivered_at.has_value());
  EXPECT_EQ(*c->oldest_undelivered_at, all[2].created_at);  // the retrying row; older ones are finished

  EXPECT_EQ(Ids(*store_->ListOutbox({"failed"}, 0, 10)), (std::vector<int64_t>{all[1].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({"pending", "retrying"}, 0, 10)), (std::vector<int64_t>{all[2].id, all[3].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({"retrying", "pending", "retrying"}, 0, 10)),
            (std::vector<int64_t>{all[2].id, all[3].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({"done", "failed", "retrying", "pending"}, all[0].id, 2)),
            (std::vector<int64_t>{all[1].id, all[2].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({}, all[1].id, 10)), (std::vector<int64_t>{all[2].id, all[3].id}));
  EXPECT_TRUE(store_->ListOutbox({}, 0, 0)->empty());
  EXPECT_TRUE(store_->ListOutbox({}, all[3].id, 10)->empty());
  EXPECT_TRUE(store_->ListOutbox({"sent"}, 0, 10).status().IsInvalidArgument());
  // The listed row carries every field.
  OutboxRow failed = store_->ListOutbox({"failed"}, 0, 10).value()[0];
  EXPECT_EQ(failed.order_key, "k1");
  EXPECT_EQ(failed.kind, "approve");
  EXPECT_EQ(failed.provider, "prolific");
  EXPECT_EQ(failed.run_id, "run_a");
  EXPECT_EQ(failed.created_at, all[1].created_at);
}

TEST_P(StoreContractTest, DatabaseSecretIsMadeOnceAndSharedByEveryStore) {
  Result<std::string> s = store_->DatabaseSecret("worker_links");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->size(), 64u);
  EXPECT_EQ(s->find_first_not_of("0123456789abcdef"), std::string::npos) << *s;
  EXPECT_EQ(*store_->DatabaseSecret("worker_links"), *s);
  Result<std::string> other = store_->DatabaseSecret("something_else");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *s);
  EXPECT_TRUE(store_->DatabaseSecret("").status().IsInvalidArgument());
  if (!GetParam().shared) return;
  std::unique_ptr<Store> second = OpenAnother();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*second->DatabaseSecret("worker_links"), *s);
  // Made by the second store first: the first one reads it.
  Result<std::string> third = second->DatabaseSecret("third");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*store_->DatabaseSecret("third"), *third);
}

TEST_P(StoreContractTest, RunProviderStateRoundTrips) {
  MakeRun("run_a", "task", 1);
  MakeRun("run_b", "task", 1);
  EXPECT_EQ(store_->GetRun("run_a")->provider_state_json, "{}");
  const std::string state = R"({"study_id":"s1","codes":{"done":"C1"}})";
  ASSERT_TRUE(store_->SetRunProviderState("run_a", state).ok());
  EXPECT_EQ(store_->GetRun("run_a")->provider_state_json, state);
  Result<std::vector<RunRecord>> runs = store_->ListRuns();
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].provider_state_json, state);
  EXPECT_EQ((*runs)[1].provider_state_json, "{}");
  EXPECT_TRUE(store_->SetRunProviderState("run_nope", "{}").IsNotFound());
  EXPECT_TRUE(store_->SetRunProviderState("run_a", "[1]").IsInvalidArgument());
  EXPECT_TRUE(store_->SetRunProviderState("run_a", "{nope").IsInvalidArgument());
  EXPECT_EQ(store_->GetRun("run_a")->provider_state_json, state);
  // A run created with a state keeps it.
  RunRecord c;
  c.id = "run_c";
  c.task_name = "task";
  c.config_json = "{}";
  c.provider_state_json = R"({"study_id":"s3"})";
  ASSERT_TRUE(store_->CreateRun(c, {"{}"}, 1).ok());
  EXPECT_EQ(store_->GetRun("run_c")->provider_state_json, R"({"study_id":"s3"})");
}

TEST_P(StoreContractTest, SessionSubmissionsAndOpenAgentsOfSession) {
  MakeRun("run_a", "task", 5);
  MakeRun("run_b", "task", 5);
  WorkerId p1 = WorkerNamed("P1", "prolific");
  WorkerId p2 = WorkerNamed("P2", "prolific");
  auto reserve = [&](const std::string& run, WorkerId w, const std::string& session) {
    AgentRecord a = NewAgent(run, w);
    a.session = session;
    Result<std::optional<AgentRecord>> r = store_->ReserveUnit(run, a);
    EXPECT_TRUE(r.ok() && r->has_value());
    return r.ok() && r->has_value() ? **r : AgentRecord{};
  };
  AgentRecord u1 = reserve("run_a", p1, "S1");
  AgentRecord u2 = reserve("run_a", p1, "S1");
  AgentRecord other_session = reserve("run_a", p1, "S2");
  AgentRecord other_worker = reserve("run_a", p2, "S1");
  AgentRecord other_run = reserve("run_b", p1, "S1");
  AgentRecord gold = NewAgent("run_a", p1, "gold");
  gold.session = "S1";
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", gold, 10, "golds"));
  AgentRecord onb = NewAgent("run_a", p1, "onboarding");
  onb.session = "S1";
  ASSERT_TRUE(store_->CreateOnboardingAgent(onb).ok());
  AgentRecord onb_open = NewAgent("run_a", p1, "onboarding");
  onb_open.session = "S1";
  ASSERT_TRUE(store_->CreateOnboardingAgent(onb_open).ok());

  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S1"), 0);
  for (const AgentRecord& a : {u1, other_session, other_worker, other_run, gold}) {
    ASSERT_TRUE(store_->FinishAgent(Submit(a)).ok());
  }
  AgentFinish passed;
  passed.agent_id = onb.id;
  passed.expect_status = "onboarding";
  passed.new_status = "passed";
  passed.submitted_at = env_.NowMicros();
  ASSERT_TRUE(store_->FinishAgent(passed).ok());
  // A returned agent was never submitted.
  AgentFinish ret;
  ret.agent_id = u2.id;
  ret.expect_status = "in_task";
  ret.new_status = "returned";
  ret.release_unit = true;
  ASSERT_TRUE(store_->FinishAgent(ret).ok());
  AgentRecord u3 = reserve("run_a", p1, "S1");

  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S1"), 2);  // u1 and the gold; not onboarding
  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S2"), 1);
  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p2, "S1"), 1);
  EXPECT_EQ(*store_->CountSessionSubmissions("run_b", p1, "S1"), 1);
  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S9"), 0);
  EXPECT_TRUE(store_->CountSessionSubmissions("run_nope", p1, "S1").status().IsNotFound());
  EXPECT_TRUE(store_->CountSessionSubmissions("run_a", 987654, "S1").status().IsNotFound());

  Result<std::vector<AgentRecord>> open = store_->OpenAgentsOfSession("run_a", "S1");
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].id, onb_open.id);  // oldest first
  EXPECT_EQ((*open)[1].id, u3.id);
  EXPECT_EQ((*open)[1].session, "S1");
  EXPECT_TRUE(store_->OpenAgentsOfSession("run_a", "S2")->empty());
  EXPECT_EQ(store_->OpenAgentsOfSession("run_b", "S1")->size(), 0u);
  EXPECT_TRUE(store_->OpenAgentsOfSession("run_nope", "S1").status().IsNotFound());
}

// Timing, run by hand: `store_contract_test --gtest_also_run_disabled_tests --gtest_filter='*TimingOutbox*'`.
// 100,000 queued rows (50,000 keys, two rows each) drained the way a drainer does it: claims of 200,
// then one UpdateOutboxRow (done, released) per row; then again with one UpdateOutboxRows per claim.
TEST_P(StoreContractTest, DISABLED_TimingOutboxDrain) {
  constexpr int kRows = 100'000;
  std::vector<OutboxRow> rows;
  rows.reserve(kRows);
  for (int i = 0; i < kRows; ++i) {
    OutboxRow r = NewRow("grant:prolific:P" + std::to_string(i % (kRows / 2)) + "|allow", "grant_sync", "");
    r.payload_json = R"({"worker":"prolific:P1","qualification":"allow","value":1,"expires_at":null})";
    rows.push_back(std::move(r));
  }
  auto seconds_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  std::printf("%s: EnqueueOutbox of %d rows: %.2f s\n", GetParam().name.c_str(), kRows, seconds_since(t0));

  t0 = std::chrono::steady_clock::now();
  int64_t delivered = 0;
  int64_t claims = 0;
  double claim_s = 0;
  while (true) {
    auto c0 = std::chrono::steady_clock::now();
    Result<std::vector<OutboxRow>> got = store_->ClaimOutbox("drainer", env_.NowMicros(), 60 * kSec, 200);
    claim_s += seconds_since(c0);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (got->empty()) break;
    ++claims;
    for (OutboxRow& r : *got) {
      r.state = "done";
      r.attempts = 1;
      ASSERT_TRUE(store_->UpdateOutboxRow(r, true).ok());
      ++delivered;
    }
  }
  const double total = seconds_since(t0);
  EXPECT_EQ(delivered, kRows);
  std::printf("%s: drained %lld rows in %lld claims: %.2f s = %.0f rows/s (claims %.2f s, %.2f ms each)\n",
              GetParam().name.c_str(), static_cast<long long>(delivered), static_cast<long long>(claims), total,
              static_cast<double>(delivered) / total, claim_s, claim_s * 1e3 / static_cast<double>(claims));

  // The same drain reporting each claim's rows with one UpdateOutboxRows call.
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  t0 = std::chrono::steady_clock::now();
  delivered = 0;
  claims = 0;
  while (true) {
    Result<std::vector<OutboxRow>> got = store_->ClaimOutbox("drainer", env_.NowMicros(), 60 * kSec, 200);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (got->empty()) break;
    ++claims;
    for (OutboxRow& r : *got) r.state = "done";
    Result<std::vector<Status>> written = store_->UpdateOutboxRows(*got, true);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    for (const Status& st : *written) ASSERT_TRUE(st.ok()) << st.ToString();
    delivered += static_cast<int64_t>(got->size());
  }
  const double batched = seconds_since(t0);
  EXPECT_EQ(delivered, kRows);
  std::printf("%s: drained %lld rows in %lld claims, one UpdateOutboxRows each: %.2f s = %.0f rows/s\n",
              GetParam().name.c_str(), static_cast<long long>(delivered), static_cast<long long>(claims), batched,
              static_cast<double>(delivered) / batched);

  // A backlog that is not due (the provider is down, every row waits for its retry): what an idle
  // drainer's poll costs.
  std::vector<OutboxRow> later(rows.begin(), rows.begin() + kRows / 2);
  for (OutboxRow& r : later) r.next_attempt_at = env_.NowMicros() + 3600 * kSec;
  ASSERT_TRUE(store_->EnqueueOutbox(later).ok());
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->ClaimOutbox("drainer", env_.NowMicros(), 60 * kSec, 200)->empty());
  std::printf("%s: a claim over %d rows not yet due: %.2f ms\n", GetParam().name.c_str(), kRows / 2,
              seconds_since(t0) * 1e3 / 10);
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(store_->CountOutbox().ok());
  std::printf("%s: CountOutbox over %d rows: %.2f ms\n", GetParam().name.c_str(), kRows * 5 / 2,
              seconds_since(t0) * 1e3);
}

#undef CG_ALL_OUTBOX

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::ValuesIn(AllBackends()),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) { return info.param.name; });

// ---- SQLite-specific behaviour -------------------------------------------------------------------

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

TEST_P(StoreContractTest, ADecisionAboutAWorkerWaitsForAnotherConnectionsDecisionAboutThem) {
  if (!GetParam().shared) GTEST_SKIP() << "needs two connections to one database";
  MakeRun("run_a", "task", 4);
  const WorkerId w = WorkerNamed("w");
  std::unique_ptr<Store> other = OpenAnother();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(store_->BeginDecision(w).ok());
  ASSERT_EQ(store_->OpenAgents("run_a", w)->size(), 0u);
  std::atomic<bool> first_committed{false};
  size_t seen_by_second = 99;
  std::thread second([&] {
    Status began = other->BeginDecision(w);  // waits for the first decision to end
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

class SqliteStoreTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& p : paths_) RemoveSqliteFiles(p);
  }
  std::string Path() {
    paths_.push_back(FreshTempPath());
    return paths_.back();
  }
  FakeEnv env_;
  std::vector<std::string> paths_;
};

TEST_F(SqliteStoreTest, OpenAcceptsTheSqliteSpellings) {
  for (const std::string& uri : {std::string(":memory:"), std::string("sqlite::memory:"), "sqlite:" + Path(), Path(),
                                 "sqlite:///" + fs::relative(Path()).string(), "sqlite:///" + Path()}) {
    Result<std::unique_ptr<Store>> s = Store::Open(uri, &env_);
    EXPECT_TRUE(s.ok()) << uri << ": " << s.status().ToString();
  }
}

TEST_F(SqliteStoreTest, OpenRefusesOtherSchemes) {
  Result<std::unique_ptr<Store>> pg = Store::Open("postgresql://localhost/crowdgate", &env_);
  EXPECT_TRUE(pg.status().IsUnavailable());
  EXPECT_NE(pg.status().message().find("PostgreSQL"), std::string::npos);
  EXPECT_TRUE(Store::Open("postgres://localhost/x", &env_).status().IsUnavailable());
  Result<std::unique_ptr<Store>> mysql = Store::Open("mysql://localhost/x", &env_);
  EXPECT_TRUE(mysql.status().IsInvalidArgument());
  EXPECT_NE(mysql.status().message().find("mysql"), std::string::npos);
  EXPECT_TRUE(Store::Open("", &env_).status().IsInvalidArgument());
  EXPECT_TRUE(Store::Open("sqlite:", &env_).status().IsInvalidArgument());
  EXPECT_TRUE(Store::Open("sqlite://host/x.db", &env_).status().IsInvalidArgument());
}

TEST_F(SqliteStoreTest, UnopenablePathIsInvalidArgumentNamingIt) {
  const std::string missing_dir = (TempDir() / "no_such_dir" / "x.db").string();
  Result<std::unique_ptr<Store>> s = Store::Open("sqlite:" + missing_dir, &env_);
  EXPECT_TRUE(s.status().IsInvalidArgument()) << s.status().ToString();
  EXPECT_NE(s.status().message().find(missing_dir), std::string::npos) << s.status().message();

  Result<std::unique_ptr<Store>> dir = Store::Open(TempDir().string(), &env_);
  EXPECT_TRUE(dir.status().IsInvalidArgument()) << dir.status().ToString();

  const std::string garbage = Path();
  std::ofstream(garbage) << std::string(8192, 'x');
  Result<std::unique_ptr<Store>> g = Store::Open(garbage, &env_);
  EXPECT_TRUE(g.status().IsInvalidArgument()) << g.status().ToString();
  EXPECT_NE(g.status().message().find(garbage), std::string::npos) << g.status().message();
}

TEST_F(SqliteStoreTest, NewerSchemaIsUnavailable) {
  const std::string path = Path();
  ASSERT_TRUE(Store::Open(path, &env_).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  const std::string sql = "INSERT INTO schema_version (version, applied_at) VALUES (" +
                          std::to_string(SqliteStore::kSchemaVersion + 1) + ", 0)";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Result<std::unique_ptr<Store>> s = Store::Open(path, &env_);
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("newer"), std::string::npos) << s.status().message();
}

TEST_F(SqliteStoreTest, ReopenDoesNotMigrateAgain) {
  const std::string path = Path();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Store::Open(path, &env_).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*), MAX(version) FROM schema_version", -1, &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), SqliteStore::kSchemaVersion);
  EXPECT_EQ(sqlite3_column_int(stmt, 1), SqliteStore::kSchemaVersion);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, MigrationThreeUpgradesAVersionTwoDatabaseWithItsRuns) {
  const std::string path = Path();
  {
    Result<std::unique_ptr<Store>> s = Store::Open(path, &env_);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->CreateRun(RunRecord{"run_old", "task", "{}"}, {"{}"}, 1).ok());
  }
  // Take the file back to schema version 2: what migrations 3 and 4 added goes away.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE outbox; DROP TABLE secrets; ALTER TABLE runs DROP COLUMN provider_state; "
                         "DROP INDEX agents_submitted_by_run; DELETE FROM schema_version WHERE version >= 3",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  ASSERT_EQ(SqliteStore::kSchemaVersion, 4);
  Result<std::unique_ptr<Store>> s = Store::Open(path, &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->GetRun("run_old")->provider_state_json, "{}");
  OutboxRow row;
  row.provider = "prolific";
  row.kind = "approve";
  row.order_key = "k";
  EXPECT_TRUE((*s)->EnqueueOutbox({row}).ok());
  EXPECT_EQ((*s)->CountOutbox()->pending, 1);
  EXPECT_EQ((*s)->DatabaseSecret("links")->size(), 64u);
}

int64_t PragmaInt(sqlite3* db, const char* pragma);

// SQLite ends a transaction on its own after some errors (SQLITE_FULL, an I/O error, SQLITE_NOMEM). A batch must
// then fail as a whole: no later call may run in autocommit and be stored while the batch reports failure.
TEST_F(SqliteStoreTest, ABatchWhoseTransactionSqliteEndedFailsAsAWhole) {
  Result<std::unique_ptr<Store>> opened = Store::Open(Path(), &env_);
  ASSERT_TRUE(opened.ok());
  auto* store = static_cast<SqliteStore*>(opened->get());
  ASSERT_TRUE(store->CreateRun(RunRecord{"run_a", "task", "{}"}, {"{}", "{}", "{}"}, 1).ok());
  const WorkerId w1 = store->EnsureWorker(WorkerRef{"local", "w1"})->id;
  const WorkerId w2 = store->EnsureWorker(WorkerRef{"local", "w2"})->id;
  const auto agent_for = [&](WorkerId w) {
    AgentRecord a;
    a.id = "ag_" + env_.RandomHex128();
    a.token_hash = "t";
    a.run_id = "run_a";
    a.worker_id = w;
    a.created_at = env_.NowMicros();
    a.deadline = a.created_at + 60 * kSec;
    return a;
  };

  ASSERT_TRUE(store->BeginBatch().ok());
  ASSERT_TRUE(store->BeginDecision(w1).ok());
  ASSERT_TRUE(store->ReserveUnit("run_a", agent_for(w1)).ok());
  ASSERT_TRUE(store->EndDecision(true).ok());
  ASSERT_EQ(sqlite3_exec(store->TEST_db(), "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);  // as SQLite would
  EXPECT_TRUE(store->BeginDecision(w2).IsUnavailable());
  EXPECT_TRUE(store->ReserveUnit("run_a", agent_for(w2)).status().IsUnavailable());
  EXPECT_TRUE(store->ApplyGrantOps({}).status().IsUnavailable());
  Status ended = store->EndBatch(/*commit=*/true);
  EXPECT_TRUE(ended.IsUnavailable()) << ended.ToString();
  EXPECT_EQ(store->OpenAgents("run_a", w1)->size(), 0u);
  EXPECT_EQ(store->OpenAgents("run_a", w2)->size(), 0u);

  // The store works again afterwards.
  ASSERT_TRUE(store->BeginBatch().ok());
  ASSERT_TRUE(store->ReserveUnit("run_a", agent_for(w2)).ok());
  ASSERT_TRUE(store->EndBatch(true).ok());
  EXPECT_EQ(store->OpenAgents("run_a", w2)->size(), 1u);
}

// A full disk (max_page_count) in the middle of a batch: whatever each call answered, the batch's outcome decides,
// and a call answered OK is stored exactly when the batch committed.
TEST_F(SqliteStoreTest, AFullDiskInABatchStoresExactlyWhatTheBatchCommitted) {
  Result<std::unique_ptr<Store>> opened = Store::Open(Path(), &env_);
  ASSERT_TRUE(opened.ok());
  auto* store = static_cast<SqliteStore*>(opened->get());
  std::vector<std::string> items(500, R"({"text": "an item of a run"})");
  ASSERT_TRUE(store->CreateRun(RunRecord{"run_a", "task", "{}"}, items, 1).ok());
  const QualId q = store->EnsureQualification("q", "")->id;
  const int64_t pages = PragmaInt(store->TEST_db(), "PRAGMA page_count");
  ASSERT_EQ(sqlite3_exec(store->TEST_db(), ("PRAGMA max_page_count = " + std::to_string(pages + 2)).c_str(), nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  ASSERT_TRUE(store->BeginBatch().ok());
  std::vector<std::string> answered_ok;
  bool failed = false;
  for (int i = 0; i < 400; ++i) {
    const std::string name = "worker-with-a-long-name-to-fill-pages-" + std::to_string(i);
    GrantOp op;
    op.kind = GrantOp::Kind::kSet;
    op.worker = WorkerRef{"local", name};
    op.qual_id = q;
    op.value = 1;
    op.actor = "tester";
    op.reason = std::string(200, 'r');
    if (!store->BeginDecision(0).ok()) {
      failed = true;
      continue;
    }
    const bool ok = store->ApplyGrantOps({op}).ok();
    const bool kept = store->EndDecision(ok).ok() && ok;
    if (kept) answered_ok.push_back(name);
    failed = failed || !ok;
  }
  ASSERT_TRUE(failed) << "the disk never filled up: raise the number of calls";
  const bool committed = store->EndBatch(true).ok();
  ASSERT_EQ(sqlite3_exec(store->TEST_db(), "PRAGMA max_page_count = 1073741823", nullptr, nullptr, nullptr), SQLITE_OK);
  size_t stored = 0;
  for (const std::string& name : answered_ok) stored += store->GetWorker(WorkerRef{"local", name}).ok() ? 1 : 0;
  EXPECT_EQ(stored, committed ? answered_ok.size() : 0u)
      << "batch " << (committed ? "committed" : "failed") << " with " << answered_ok.size() << " calls answered OK";
  EXPECT_GT(answered_ok.size(), 0u);
}

int64_t PragmaInt(sqlite3* db, const char* pragma) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, pragma, -1, &stmt, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  int64_t v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return v;
}

TEST_F(SqliteStoreTest, ConnectionSettings) {
  Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Path(), &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  sqlite3* db = (*s)->TEST_db();
  EXPECT_EQ(PragmaInt(db, "PRAGMA synchronous"), 1);  // NORMAL (CROWDGATE_SQLITE_SYNC=full for FULL)
  EXPECT_EQ(PragmaInt(db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(PragmaInt(db, "PRAGMA busy_timeout"), 5000);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
}

TEST_F(SqliteStoreTest, BusyIsUnavailableAndChangesNothing) {
  const std::string path = Path();
  Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path, &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  SqliteStore& store = **s;
  ASSERT_TRUE(store.EnsureQualification("q", "").ok());
  sqlite3_busy_timeout(store.TEST_db(), 50);  // keep the test fast

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  Result<Worker> w = store.EnsureWorker(WorkerRef{"local", "alice"});
  EXPECT_TRUE(w.status().IsUnavailable()) << w.status().ToString();
  // Reads still work while another connection writes (WAL).
  EXPECT_TRUE(store.GetQualification("q").ok());
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(store.GetWorker(WorkerRef{"local", "alice"}).status().IsNotFound());
  EXPECT_TRUE(store.EnsureWorker(WorkerRef{"local", "alice"}).ok());
}

// Timings, not assertions: run with --gtest_also_run_disabled_tests --gtest_filter=*DISABLED_Timing*.
// Prints wall time and CPU time (the two differ a lot on a busy machine).
class Stopwatch {
 public:
  Stopwatch() : wall_(std::chrono::steady_clock::now()), cpu_(CpuSeconds()) {}
  void Print(const char* what, double divide = 1) const {
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count();
    std::printf("%-45s wall %8.3f s  cpu %8.3f s  (per op: wall %.1f us)\n", what, wall, CpuSeconds() - cpu_,
                wall * 1e6 / divide);
  }

 private:
  static double CpuSeconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  std::chrono::steady_clock::time_point wall_;
  double cpu_;
};

TEST_F(SqliteStoreTest, DISABLED_TimingMillionUnitsAndGrants) {
  Result<std::unique_ptr<Store>> s = Store::Open(Path(), Env::Default());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Store& store = **s;
  RunRecord run;
  run.id = "run_big";
  run.task_name = "big";
  std::vector<std::string> items(1'000'000, R"({"text":"an item of modest size","n":12345})");
  {
    Stopwatch sw;
    ASSERT_TRUE(store.CreateRun(run, items, 1).ok());
    sw.Print("CreateRun, 1M items x 1 unit", 1e6);
  }

  Result<Qualification> q = store.EnsureQualification("imported", "");
  ASSERT_TRUE(q.ok());
  std::vector<GrantOp> ops(1'000'000);
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i].worker = WorkerRef{"prolific", "worker" + std::to_string(i)};
    ops[i].qual_id = q->id;
    ops[i].value = static_cast<int64_t>(i % 100);
    ops[i].actor = "import";
  }
  {
    Stopwatch sw;
    Result<std::vector<AuditEntry>> r = store.ApplyGrantOps(ops);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    sw.Print("ApplyGrantOps, 1M kSet, new workers", 1e6);
  }
  {
    Stopwatch sw;
    Result<std::vector<AuditEntry>> r = store.ApplyGrantOps(ops);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    sw.Print("ApplyGrantOps, 1M kSet, replacing", 1e6);
  }

  Result<Worker> w = store.EnsureWorker(WorkerRef{"local", "reserver"});
  ASSERT_TRUE(w.ok());
  {
    Stopwatch sw;
    for (int i = 0; i < 1000; ++i) {
      AgentRecord a;
      a.id = "ag_" + std::to_string(i);
      a.worker_id = w->id;
      Result<std::optional<AgentRecord>> r = store.ReserveUnit("run_big", a);
      ASSERT_TRUE(r.ok() && r->has_value());
    }
    sw.Print("ReserveUnit x1000 (one commit each)", 1000);
  }
}

}  // namespace
}  // namespace crowdgate::store_test
