// The PostgreSQL backend under test: linked with the contract suite (store_contract_test.cpp and the
// files it names) into store_contract_pg_test, it registers "Postgres" with the suite (every
// StoreContractTest runs against it too) and adds the tests only a server shared by several
// connections can have: racing reservations, caps, the change feed and the change token across
// connections, reconnection, schema versions.
//
// Needs a server: CROWDGATE_TEST_PG=postgresql://USER@HOST:PORT/DB with the right to CREATE DATABASE.
// scripts/with_pg.sh starts a throwaway cluster and sets it:
//   scripts/with_pg.sh build/pg/src/store/store_contract_pg_test
// Each test gets a fresh database (cg_<pid>_<n>), dropped afterwards. Without CROWDGATE_TEST_PG the
// binary fails (the PostgresBackend.IsConfigured test), so a missing server never passes silently.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "crowdgate/store.hpp"
#include "store/postgres/pg_internal.hpp"
#include "store/postgres/pg_scratch_db.hpp"
#include "store/postgres/pg_store.hpp"

namespace crowdgate::store_test {

int RegisterStoreBackend(std::string name, std::function<std::string()> fresh_uri, bool shared,
                         std::function<void(const std::string&)> drop);

namespace {

constexpr const char* kHowToRun =
    "CROWDGATE_TEST_PG is not set: this test needs a PostgreSQL server. Run it through scripts/with_pg.sh, "
    "e.g. `scripts/with_pg.sh build/pg/src/store/store_contract_pg_test` (or `make test-pg`), which starts a "
    "throwaway cluster and sets CROWDGATE_TEST_PG=postgresql://postgres@127.0.0.1:PORT/postgres";

std::string AdminUri() {
  const char* v = std::getenv("CROWDGATE_TEST_PG");
  return v != nullptr ? std::string(v) : std::string();
}

using pg_scratch::WithDatabase;

std::string DatabaseOf(const std::string& uri) {
  const size_t query = uri.find('?');
  const std::string path = uri.substr(0, query);
  return path.substr(path.rfind('/') + 1);
}

// One admin connection for the whole binary (CREATE / DROP DATABASE cannot run in a transaction).
void AdminExec(const std::string& sql) {
  static std::mutex mu;
  static std::unique_ptr<pqxx::connection> conn;
  std::lock_guard<std::mutex> l(mu);
  if (!conn) conn = std::make_unique<pqxx::connection>(AdminUri());
  pqxx::nontransaction t(*conn);
  t.exec(sql);
}

std::string FreshDatabaseUri() {
  static std::atomic<int> counter{0};
  const std::string name = "cg_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  AdminExec("CREATE DATABASE " + name);
  return WithDatabase(AdminUri(), name);
}

void DropDatabase(const std::string& uri) {
  try {
    AdminExec("DROP DATABASE IF EXISTS " + DatabaseOf(uri) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "dropping " << DatabaseOf(uri) << ": " << e.what();
  }
}

// Group commit is opt-in on PostgreSQL; the suite checks batches with it on, as on SQLite.
const int kGroupCommitOn = ::setenv("CROWDGATE_PG_GROUP_COMMIT", "on", 1);
const int kRegistered = AdminUri().empty() ? 0 : RegisterStoreBackend("Postgres", FreshDatabaseUri, true, DropDatabase);

TEST(PostgresBackend, IsConfigured) {
  if (kRegistered == 0) FAIL() << kHowToRun;
}

constexpr int64_t kSec = kMicrosPerSecond;

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (AdminUri().empty()) GTEST_FAIL() << kHowToRun;
    uri_ = FreshDatabaseUri();
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    if (!uri_.empty()) DropDatabase(uri_);
  }

  std::unique_ptr<PgStore> Open() {
    Result<std::unique_ptr<PgStore>> s = PgStore::Open(uri_, &env_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Runs `fn(i, store)` on `n` threads at once, each with its own connection.
  void Race(int n, const std::function<void(int, Store&)>& fn) {
    std::vector<std::unique_ptr<PgStore>> stores;
    for (int i = 0; i < n; ++i) {
      stores.push_back(Open());
      ASSERT_NE(stores.back(), nullptr);
    }
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        ++ready;
        while (ready.load() < n) std::this_thread::yield();
        fn(i, *stores[static_cast<size_t>(i)]);
      });
    }
    for (std::thread& t : threads) t.join();
  }

  void MakeRun(const std::string& id, int items, int units_per_item) {
    RunRecord run;
    run.id = id;
    run.task_name = "task";
    run.config_json = "{}";
    std::vector<std::string> data(static_cast<size_t>(items), "{}");
    ASSERT_TRUE(store_->CreateRun(run, data, units_per_item).ok());
  }
  WorkerId WorkerNamed(const std::string& name) {
    Result<Worker> w = store_->EnsureWorker(WorkerRef{"local", name});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? w->id : 0;
  }
  AgentRecord NewAgent(const std::string& run_id, WorkerId worker, AgentKind kind = AgentKind::kUnit) {
    AgentRecord a;
    a.id = "ag_" + env_.RandomHex128();
    a.token_hash = "tok";
    a.run_id = run_id;
    a.worker_id = worker;
    a.kind = kind;
    a.status = AgentStatus::kInTask;
    a.created_at = env_.NowMicros();
    a.deadline = a.created_at + 60 * kSec;
    return a;
  }
  static GrantOp Op(GrantOp::Kind kind, const std::string& worker, QualId qual, int64_t value = 1) {
    GrantOp op;
    op.kind = kind;
    op.worker = WorkerRef{"local", worker};
    op.qual_id = qual;
    op.value = value;
    op.actor = "tester";
    return op;
  }

  FakeEnv env_;
  std::string uri_;
  std::unique_ptr<PgStore> store_;
};

// ---- scale-out guarantees --------------------------------------------------------------------------

TEST_F(PgStoreTest, TwoConnectionsNeverReserveOneUnitTwice) {
  MakeRun("run_a", 300, 1);
  const WorkerId workers[2] = {WorkerNamed("w0"), WorkerNamed("w1")};
  std::vector<int64_t> got[2];
  std::atomic<int> errors{0};
  Race(2, [&](int t, Store& s) {
    while (true) {
      Result<std::optional<AgentRecord>> r = s.ReserveUnit("run_a", NewAgent("run_a", workers[t]));
      if (!r.ok()) {
        ++errors;
        ADD_FAILURE() << r.status().ToString();
        return;
      }
      if (!r->has_value()) return;
      got[t].push_back(*(*r)->unit_id);
    }
  });
  EXPECT_EQ(errors.load(), 0);
  std::set<int64_t> all(got[0].begin(), got[0].end());
  for (int64_t u : got[1]) EXPECT_TRUE(all.insert(u).second) << "unit " << u << " handed out twice";
  EXPECT_EQ(all.size(), 300u);
  EXPECT_EQ(got[0].size() + got[1].size(), 300u);
  // Both connections really competed (SKIP LOCKED let them proceed side by side).
  EXPECT_GT(got[0].size(), 0u);
  EXPECT_GT(got[1].size(), 0u);
}

TEST_F(PgStoreTest, OneWorkerOnTwoConnectionsNeverGetsAnItemTwice) {
  MakeRun("run_a", 60, 3);
  const WorkerId alice = WorkerNamed("alice");
  std::vector<int64_t> items[2];
  Race(2, [&](int t, Store& s) {
    while (true) {
      Result<std::optional<AgentRecord>> r = s.ReserveUnit("run_a", NewAgent("run_a", alice));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (!r->has_value()) return;
      items[t].push_back((*r)->item_index);
    }
  });
  std::set<int64_t> all(items[0].begin(), items[0].end());
  for (int64_t i : items[1]) EXPECT_TRUE(all.insert(i).second) << "item " << i << " given to alice twice";
  EXPECT_EQ(all.size(), 60u);
}

TEST_F(PgStoreTest, EvalUnitCapIsNeverOverrun) {
  MakeRun("run_a", 1, 1);
  const WorkerId w[4] = {WorkerNamed("w0"), WorkerNamed("w1"), WorkerNamed("w2"), WorkerNamed("w3")};
  std::atomic<int> created{0};
  std::atomic<int> screened{0};
  Race(4, [&](int t, Store& s) {
    for (int i = 0; i < 30; ++i) {
      AgentRecord g = NewAgent("run_a", w[t], i % 2 == 0 ? AgentKind::kGold : AgentKind::kScreening);
      g.item_index = i;
      Result<bool> r = s.CreateEvalUnit("run_a", g, 25, "golds");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (*r) ++(g.kind == AgentKind::kGold ? created : screened);
    }
  });
  EXPECT_EQ(created.load(), 25);
  EXPECT_EQ(screened.load(), 25);
  Result<RunRecord> run = store_->GetRun("run_a");
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->gold_served, 25);
  EXPECT_EQ(run->screening_served, 25);
  EXPECT_EQ(store_->RunAgents("run_a")->size(), 50u);
}

TEST_F(PgStoreTest, AGrantThroughOneConnectionReachesTheOther) {
  std::unique_ptr<PgStore> b = Open();
  ASSERT_NE(b, nullptr);
  Result<Qualification> q = store_->EnsureQualification("skill", "");
  ASSERT_TRUE(q.ok());
  Result<int64_t> b0 = b->ExternalChangeToken();
  ASSERT_TRUE(b0.ok()) << b0.status().ToString();
  Result<int64_t> a0 = store_->ExternalChangeToken();
  ASSERT_TRUE(a0.ok());

  Result<std::vector<AuditEntry>> out = store_->ApplyGrantOps({Op(GrantOp::Kind::kSet, "alice", q->id, 7)});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  int64_t b1 = *b0;
  for (int i = 0; i < 500 && b1 == *b0; ++i) {
    Result<int64_t> t = b->ExternalChangeToken();
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    b1 = *t;
    if (b1 == *b0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(b1, *b0) << "B never heard of A's grant";
  Result<std::vector<AuditEntry>> feed = b->ChangesSince(0, 100);
  ASSERT_TRUE(feed.ok());
  ASSERT_EQ(feed->size(), 1u);
  EXPECT_EQ((*feed)[0].seq, (*out)[0].seq);
  EXPECT_EQ((*feed)[0].new_value, 7);

  // A's own write is not an external change for A; B's own write is not one for B.
  EXPECT_EQ(*store_->ExternalChangeToken(), *a0);
  ASSERT_TRUE(b->ApplyGrantOps({Op(GrantOp::Kind::kSet, "bob", q->id, 1)}).ok());
  ASSERT_TRUE(b->SetRunStatus("run_nope", RunStatus::kClosed).IsNotFound());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(*b->ExternalChangeToken(), b1);
  // ... but it is one for A, and so is a run's status changing.
  Result<int64_t> a1 = store_->ExternalChangeToken();
  EXPECT_NE(*a1, *a0);
  MakeRun("run_a", 1, 1);
  EXPECT_NE(*b->ExternalChangeToken(), b1);
  const int64_t b2 = *b->ExternalChangeToken();
  ASSERT_TRUE(store_->SetRunStatus("run_a", RunStatus::kClosed).ok());
  EXPECT_NE(*b->ExternalChangeToken(), b2);
}

// The change feed under concurrent writers: a reader following ChangesSince sees every entry, in
// seq order, exactly once, and kAdd counters applied from several connections are exact.
TEST_F(PgStoreTest, ChangeFeedNeverSkipsUnderConcurrentWriters) {
  Result<Qualification> counter = store_->EnsureQualification("counter", "");
  Result<Qualification> tag = store_->EnsureQualification("tag", "");
  ASSERT_TRUE(counter.ok() && tag.ok());
  constexpr int kWriters = 3;
  constexpr int kRounds = 150;
  std::atomic<int> writers_done{0};
  std::vector<int64_t> seen;
  Race(kWriters + 1, [&](int t, Store& s) {
    if (t == kWriters) {  // the reader
      int64_t last = 0;
      while (true) {
        const bool done = writers_done.load() == kWriters;
        Result<std::vector<AuditEntry>> batch = s.ChangesSince(last, 50);
        ASSERT_TRUE(batch.ok()) << batch.status().ToString();
        for (const AuditEntry& e : *batch) {
          ASSERT_GT(e.seq, last);
          seen.push_back(e.seq);
          last = e.seq;
        }
        if (done && batch->empty()) return;
      }
    }
    for (int i = 0; i < kRounds; ++i) {
      std::vector<GrantOp> ops = {Op(GrantOp::Kind::kAdd, "shared", counter->id, 1)};
      for (int j = 0; j <= i % 3; ++j) {
        std::string name = std::string("w").append(std::to_string(t)).append("_").append(std::to_string(j));
        ops.push_back(Op(GrantOp::Kind::kSet, name, tag->id, i));
      }
      Result<std::vector<AuditEntry>> r = s.ApplyGrantOps(ops);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    ++writers_done;
  });
  Result<std::vector<AuditEntry>> log = store_->ChangesSince(0, 1'000'000);
  ASSERT_TRUE(log.ok());
  std::vector<int64_t> all;
  for (const AuditEntry& e : *log) all.push_back(e.seq);
  EXPECT_EQ(seen, all);
  EXPECT_EQ(all.size(), static_cast<size_t>(kWriters * kRounds * 3));
  Result<Worker> shared = store_->GetWorker(WorkerRef{"local", "shared"});
  ASSERT_TRUE(shared.ok());
  Result<std::vector<Grant>> gs = store_->GrantsForWorker(shared->id);
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 1u);
  EXPECT_EQ((*gs)[0].value, kWriters * kRounds);
}

// Two drainers on two connections: no row is ever held by both, every row is claimed exactly once,
// and a row is claimed only after every earlier row of its key was delivered.
TEST_F(PgStoreTest, TwoDrainersClaimEveryRowOnceAndEachKeyInOrder) {
  constexpr int kKeys = 40;
  constexpr int kPerKey = 12;
  std::vector<OutboxRow> rows;
  for (int i = 0; i < kKeys * kPerKey; ++i) {
    OutboxRow r;
    r.provider = "prolific";
    r.kind = "grant_sync";
    r.order_key = "key" + std::to_string(i % kKeys);
    rows.push_back(r);
  }
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  Result<std::vector<OutboxRow>> listed = store_->ListOutbox({}, 0, 100000);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), rows.size());
  std::map<int64_t, int64_t> previous_of;  // row id -> id of the row before it in its key (0: none)
  {
    std::map<std::string, int64_t> last;
    for (const OutboxRow& r : *listed) {
      previous_of[r.id] = last[r.order_key];
      last[r.order_key] = r.id;
    }
  }
  std::mutex mu;
  std::set<int64_t> claimed;     // every row ever claimed
  std::set<int64_t> delivering;  // rows whose "done" is being written (recorded before the write)
  int claims_of[2] = {0, 0};
  const int64_t now = env_.NowMicros();
  Race(2, [&](int t, Store& s) {
    const std::string me = "drainer" + std::to_string(t);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      Result<std::vector<OutboxRow>> got = s.ClaimOutbox(me, now, 600 * kSec, 7);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (got->empty()) {
        std::lock_guard<std::mutex> l(mu);
        if (delivering.size() == rows.size()) return;
        continue;
      }
      for (OutboxRow r : *got) {
        {
          std::lock_guard<std::mutex> l(mu);
          ASSERT_TRUE(claimed.insert(r.id).second) << "row " << r.id << " claimed twice";
          const int64_t prev = previous_of.at(r.id);
          ASSERT_TRUE(prev == 0 || delivering.count(prev) == 1)
              << "row " << r.id << " claimed before row " << prev << " of its key was delivered";
          ++claims_of[t];
          delivering.insert(r.id);
        }
        EXPECT_EQ(r.claimed_by, me);
        r.state = "done";
        ASSERT_TRUE(s.UpdateOutboxRow(r, /*release=*/true).ok());
      }
    }
    ADD_FAILURE() << me << " gave up";
  });
  EXPECT_EQ(claimed.size(), rows.size());
  EXPECT_GT(claims_of[0], 0);
  EXPECT_GT(claims_of[1], 0);
  Result<OutboxCounts> counts = store_->CountOutbox();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->done, static_cast<int64_t>(rows.size()));
  EXPECT_EQ(counts->pending + counts->retrying + counts->failed, 0);
}

// Writers on several connections append rows to one key while a drainer delivers them: the drainer
// must never see a row before an earlier row of the key that is still uncommitted (ids are handed
// out in commit order), so each key is delivered in id order and completely.
TEST_F(PgStoreTest, RowsOfOneKeyWrittenConcurrentlyAreDeliveredInIdOrder) {
  constexpr int kWriters = 3;
  constexpr int kRowsEach = 200;
  std::atomic<int> writers_done{0};
  std::map<std::string, std::vector<int64_t>> delivered;  // key -> ids in delivery order
  Race(kWriters + 1, [&](int t, Store& s) {
    if (t == kWriters) {  // the drainer
      while (true) {
        const bool done = writers_done.load() == kWriters;
        Result<std::vector<OutboxRow>> got = s.ClaimOutbox("drainer", env_.NowMicros(), 600 * kSec, 50);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        if (got->empty() && done) return;
        for (OutboxRow& r : *got) {
          delivered[r.order_key].push_back(r.id);
          r.state = "done";
        }
        Result<std::vector<Status>> w = s.UpdateOutboxRows(*got, true);
        ASSERT_TRUE(w.ok()) << w.status().ToString();
      }
    }
    for (int i = 0; i < kRowsEach; ++i) {
      OutboxRow r;
      r.provider = "prolific";
      r.kind = "grant_sync";
      r.order_key = "key" + std::to_string(i % 2);
      ASSERT_TRUE(s.EnqueueOutbox({r}).ok());
    }
    ++writers_done;
  });
  size_t total = 0;
  for (const auto& [key, ids] : delivered) {
    total += ids.size();
    for (size_t i = 1; i < ids.size(); ++i) {
      ASSERT_LT(ids[i - 1], ids[i]) << key << ": row " << ids[i] << " delivered after row " << ids[i - 1];
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kWriters * kRowsEach));
}

// Two processes asking for a database secret at once agree on it.
TEST_F(PgStoreTest, ConcurrentFirstUsesOfASecretAgree) {
  std::string got[4];
  Race(4, [&](int t, Store& s) {
    Result<std::string> v = s.DatabaseSecret("links");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    got[t] = *v;
  });
  EXPECT_EQ(got[0].size(), 64u);
  for (const std::string& g : got) EXPECT_EQ(g, got[0]);
}

TEST_F(PgStoreTest, ASubmitRacingOnTwoConnectionsCountsOnce) {
  MakeRun("run_a", 20, 1);
  Result<Qualification> done = store_->EnsureQualification("done", "");
  ASSERT_TRUE(done.ok());
  const WorkerId alice = WorkerNamed("alice");
  for (int round = 0; round < 20; ++round) {
    Result<std::optional<AgentRecord>> a = store_->ReserveUnit("run_a", NewAgent("run_a", alice));
    ASSERT_TRUE(a.ok() && a->has_value());
    AgentFinish f;
    f.agent_id = (*a)->id;
    f.expect_status = AgentStatus::kInTask;
    f.new_status = AgentStatus::kCompleted;
    f.unit_status = UnitStatus::kCompleted;
    f.data_json = "{}";
    f.grant_ops = {Op(GrantOp::Kind::kAdd, "alice", done->id, 1)};
    std::atomic<int> ok{0};
    std::atomic<int> conflict{0};
    Race(2, [&](int, Store& s) {
      Result<std::vector<AuditEntry>> r = s.FinishAgent(f);
      if (r.ok()) {
        ++ok;
      } else if (r.status().IsConflict()) {
        ++conflict;
      } else {
        ADD_FAILURE() << r.status().ToString();
      }
    });
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(conflict.load(), 1);
  }
  Result<std::vector<Grant>> gs = store_->GrantsForWorker(alice);
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 1u);
  EXPECT_EQ((*gs)[0].value, 20);
}

// ---- connections, errors, schema -------------------------------------------------------------------

TEST_F(PgStoreTest, ConnectionFailuresAreUnavailableAndNeverShowThePassword) {
  Result<std::unique_ptr<Store>> s = Store::Open("postgresql://cguser:S3cretPw@127.0.0.1:1/nodb", &env_);
  ASSERT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
  const std::string& msg = s.status().message();
  EXPECT_NE(msg.find("127.0.0.1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nodb"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("S3cretPw"), std::string::npos) << msg;

  // A database that does not exist on a live server.
  const std::string missing = WithDatabase(AdminUri(), "cg_no_such_database");
  Result<std::unique_ptr<Store>> m = Store::Open(missing, &env_);
  ASSERT_TRUE(m.status().IsUnavailable()) << m.status().ToString();
  EXPECT_NE(m.status().message().find("cg_no_such_database"), std::string::npos) << m.status().message();

  EXPECT_TRUE(Store::Open("postgresql://[bad", &env_).status().IsInvalidArgument());
}

TEST_F(PgStoreTest, ReconnectsAfterLosingTheConnection) {
  ASSERT_TRUE(store_->EnsureQualification("q", "").ok());
  Result<int64_t> t0 = store_->ExternalChangeToken();
  ASSERT_TRUE(t0.ok());
  const int pid = store_->TEST_backend_pid();
  ASSERT_GT(pid, 0);
  AdminExec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  for (int i = 0; i < 500; ++i) {
    pqxx::connection c(AdminUri());
    pqxx::nontransaction t(c);
    if (t.exec("SELECT 1 FROM pg_stat_activity WHERE pid = " + std::to_string(pid)).empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Reads and writes that never reached the server are run again on a new connection.
  Result<Qualification> q = store_->GetQualification("q");
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(store_->EnsureQualification("q2", "").ok());
  EXPECT_NE(store_->TEST_backend_pid(), pid);
  // Notifications may have been lost meanwhile: the token says "something may have changed".
  Result<int64_t> t1 = store_->ExternalChangeToken();
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_NE(*t1, *t0);
  // And the new connection listens again.
  std::unique_ptr<PgStore> other = Open();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->ApplyGrantOps({Op(GrantOp::Kind::kSet, "alice", q->id, 1)}).ok());
  EXPECT_NE(*store_->ExternalChangeToken(), *t1);
}

TEST_F(PgStoreTest, ConstraintViolationsAreConflicts) {
  MakeRun("run_a", 2, 1);
  const WorkerId alice = WorkerNamed("alice");
  AgentRecord a = NewAgent("run_a", alice, AgentKind::kOnboarding);
  a.status = AgentStatus::kOnboarding;
  ASSERT_TRUE(store_->CreateOnboardingAgent(a).ok());
  Status again = store_->CreateOnboardingAgent(a);
  EXPECT_TRUE(again.IsConflict()) << again.ToString();
  AgentRecord bad = NewAgent("run_a", alice, static_cast<AgentKind>(99));  // no word: stored as "?"
  Status weird = store_->CreateOnboardingAgent(bad);  // CHECK (kind IN ...), as SQLite
  EXPECT_TRUE(weird.IsConflict()) << weird.ToString();
}

// A connection keeps the plan of a prepared statement. Whatever the table statistics were when the
// reservation was planned, it must keep finding a unit by the launched units' own index and probe
// only the worker's own agents, not walk every unit already taken or filter every agent of the run
// (either made each reservation slower as the run filled). Two plans: one made while `agents` was
// empty and never analyzed, one made after an ANALYZE that saw every unit launched.
class PgReservationPlanTest : public PgStoreTest, public ::testing::WithParamInterface<bool> {};

TEST_P(PgReservationPlanTest, KeepsUsingTheLaunchedUnitsIndexAsTheRunFills) {
  const bool analyzed = GetParam();
  MakeRun("run_a", 600, 1);
  pqxx::connection c(uri_);
  pqxx::nontransaction t(c);
  const std::string rid = t.exec1("SELECT rid FROM runs WHERE id = 'run_a'")[0].c_str();
  if (analyzed) t.exec("ANALYZE units");
  t.exec("SET plan_cache_mode = force_generic_plan");  // the plan a long-lived connection ends up with
  t.exec(std::string("PREPARE reserve AS ") + pg_internal::ReserveUnitSqlText());
  const auto execute = [&](WorkerId worker, const std::string& agent) {
    return "EXECUTE reserve(" + rid + ", " + std::to_string(worker) + ", '" + agent +
           "', 'tok', 'in_task', '', '', 0, 0, NULL, '{}', '')";
  };
  const WorkerId first = WorkerNamed("first");
  ASSERT_EQ(t.exec(execute(first, "ag_first")).size(), 1u);  // planned now
  for (int i = 0; i < 500; ++i) {  // the run fills up through the store's own connection
    Result<std::optional<AgentRecord>> r =
        store_->ReserveUnit("run_a", NewAgent("run_a", WorkerNamed("w" + std::to_string(i % 50))));
    ASSERT_TRUE(r.ok() && r->has_value()) << (r.ok() ? "no unit" : r.status().ToString());
  }
  std::string plan;
  for (const pqxx::row& row : t.exec("EXPLAIN (COSTS OFF) " + execute(first, "ag_second"))) {
    plan += std::string(row[0].c_str()) + "\n";
  }
  EXPECT_NE(plan.find("Index Scan using units_to_serve on units u"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("agents_by_run on agents"), std::string::npos) << plan;
  EXPECT_EQ(t.exec(execute(first, "ag_second")).size(), 1u);  // and it still reserves
}

INSTANTIATE_TEST_SUITE_P(Statistics, PgReservationPlanTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return std::string(i.param ? "AnalyzedWithEveryUnitLaunched" : "NeverAnalyzed");
                         });

TEST_F(PgStoreTest, ReopenDoesNotMigrateAgainAndNewerSchemaIsUnavailable) {
  store_.reset();
  ASSERT_NE(Open(), nullptr);
  {
    pqxx::connection c(uri_);
    pqxx::nontransaction t(c);
    pqxx::row r = t.exec1("SELECT COUNT(*), MAX(version) FROM schema_version");
    EXPECT_EQ(r[0].as<int>(), PgStore::kSchemaVersion);
    EXPECT_EQ(r[1].as<int>(), PgStore::kSchemaVersion);
    t.exec("INSERT INTO schema_version (version, applied_at) VALUES (" + std::to_string(PgStore::kSchemaVersion + 1) +
           ", 0)");
  }
  Result<std::unique_ptr<Store>> s = Store::Open(uri_, &env_);
  EXPECT_TRUE(s.status().IsUnavailable()) << s.status().ToString();
  EXPECT_NE(s.status().message().find("newer"), std::string::npos) << s.status().message();
}

TEST_F(PgStoreTest, ConcurrentOpensOfAFreshDatabaseMigrateOnce) {
  store_.reset();
  DropDatabase(uri_);
  uri_ = FreshDatabaseUri();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      Result<std::unique_ptr<PgStore>> s = PgStore::Open(uri_, &env_);
      if (!s.ok()) {
        ++failures;
        ADD_FAILURE() << s.status().ToString();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// Timings, not assertions: scripts/with_pg.sh build/pg/src/store/store_contract_pg_test
//   --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Timing*'
TEST_F(PgStoreTest, DISABLED_TimingHotPathAndBulk) {
  using Clock = std::chrono::steady_clock;
  auto report = [](const char* what, Clock::time_point start, double n) {
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("%-48s %8.3f s  (%.1f us each)\n", what, s, s * 1e6 / n);
  };
  RunRecord run;
  run.id = "run_big";
  run.task_name = "big";
  std::vector<std::string> items(100'000, R"({"text":"an item of modest size","n":12345})");
  auto t = Clock::now();
  ASSERT_TRUE(store_->CreateRun(run, items, 1).ok());
  report("CreateRun, 100k items x 1 unit", t, 1e5);

  Result<Qualification> q = store_->EnsureQualification("imported", "");
  ASSERT_TRUE(q.ok());
  std::vector<GrantOp> ops(100'000);
  for (size_t i = 0; i < ops.size(); ++i) {
    ops[i] = Op(GrantOp::Kind::kSet, std::string("worker").append(std::to_string(i)), q->id, 1);
  }
  t = Clock::now();
  ASSERT_TRUE(store_->ApplyGrantOps(ops).ok());
  report("ApplyGrantOps, 100k kSet, new workers", t, 1e5);
  t = Clock::now();
  ASSERT_TRUE(store_->ApplyGrantOps(ops).ok());
  report("ApplyGrantOps, 100k kSet, replacing", t, 1e5);

  const WorkerId w = WorkerNamed("reserver");
  std::vector<AgentRecord> agents;
  t = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    Result<std::optional<AgentRecord>> r = store_->ReserveUnit("run_big", NewAgent("run_big", w));
    ASSERT_TRUE(r.ok() && r->has_value());
    agents.push_back(**r);
  }
  report("ReserveUnit x1000", t, 1000);
  t = Clock::now();
  for (const AgentRecord& a : agents) {
    AgentFinish f;
    f.agent_id = a.id;
    f.expect_status = AgentStatus::kInTask;
    f.new_status = AgentStatus::kCompleted;
    f.unit_status = UnitStatus::kCompleted;
    f.data_json = "{}";
    f.grant_ops = {Op(GrantOp::Kind::kAdd, "reserver", q->id, 1)};
    ASSERT_TRUE(store_->FinishAgent(f).ok());
  }
  report("FinishAgent with one kAdd x1000", t, 1000);
  t = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(store_->ExternalChangeToken().ok());
  report("ExternalChangeToken x1000", t, 1000);
  t = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(store_->GetAgent(agents[static_cast<size_t>(i)].id).ok());
  report("GetAgent x1000", t, 1000);
  t = Clock::now();
  int64_t n = 0;
  ASSERT_TRUE(store_->ScanAllGrants([&](const Grant&) { ++n; }, nullptr).ok());
  report("ScanAllGrants (100k grants)", t, static_cast<double>(n));
}

}  // namespace
}  // namespace crowdgate::store_test
