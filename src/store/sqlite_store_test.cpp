// SqliteStore's own behaviour, beyond the Store contract: URI spellings, open errors, migrations,
// connection settings, transactions SQLite ends on its own, busy databases, timings.
#include <sqlite3.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite/busy_wait.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/sqlite/wal_checkpointer.hpp"

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {
namespace {

// ---- SQLite-specific behaviour -------------------------------------------------------------------

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

// Sets CROWDGATE_SQLITE_SYNC (or unsets it, for nullptr) for one scope.
class ScopedSyncEnv {
 public:
  explicit ScopedSyncEnv(const char* value) {
    const char* old = std::getenv("CROWDGATE_SQLITE_SYNC");
    if (old != nullptr) saved_ = old;
    if (value != nullptr) {
      ::setenv("CROWDGATE_SQLITE_SYNC", value, 1);
    } else {
      ::unsetenv("CROWDGATE_SQLITE_SYNC");
    }
  }
  ~ScopedSyncEnv() {
    if (saved_) {
      ::setenv("CROWDGATE_SQLITE_SYNC", saved_->c_str(), 1);
    } else {
      ::unsetenv("CROWDGATE_SQLITE_SYNC");
    }
  }

 private:
  std::optional<std::string> saved_;
};

// fsync on by default: an answered request survives a power cut. NORMAL is the documented opt-out.
TEST_F(SqliteStoreTest, CommitsAreFsyncedUnlessNormalIsAskedFor) {
  {
    ScopedSyncEnv unset(nullptr);
    Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Path(), &env_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(PragmaInt((*s)->TEST_db(), "PRAGMA synchronous"), 2);  // FULL
  }
  {
    ScopedSyncEnv full("full");
    Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Path(), &env_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(PragmaInt((*s)->TEST_db(), "PRAGMA synchronous"), 2);
  }
  {
    ScopedSyncEnv normal("normal");
    Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Path(), &env_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(PragmaInt((*s)->TEST_db(), "PRAGMA synchronous"), 1);  // NORMAL
  }
  {
    ScopedSyncEnv bad("off");
    Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Path(), &env_);
    EXPECT_TRUE(s.status().IsInvalidArgument()) << s.status().ToString();
    EXPECT_NE(s.status().message().find("CROWDGATE_SQLITE_SYNC"), std::string::npos) << s.status().message();
  }
}

TEST_F(SqliteStoreTest, ConnectionSettings) {
  Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(Path(), &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  sqlite3* db = (*s)->TEST_db();
  EXPECT_EQ(PragmaInt(db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(PragmaInt(db, "PRAGMA temp_store"), 2);  // MEMORY: the savepoints' statement journals
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
}

// A commit that takes the log past 1,000 pages used to copy them into the database file itself,
// on the thread that decides worker requests. Now the checkpointer's thread does it while the
// store stays open, and what it copied is in the database file.
TEST_F(SqliteStoreTest, TheWalIsCheckpointedByItsOwnThreadNotByTheCommit) {
  const std::string path = Path();
  Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path, &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_NE((*s)->TEST_checkpointer(), nullptr);
  EXPECT_EQ((*s)->TEST_checkpointer()->checkpoints(), 0);
  const auto file_bytes = [&] {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    return static_cast<int64_t>(f.tellg());
  };
  const int64_t before = file_bytes();
  // ~6 MB of items in one commit: about 1,500 pages of log.
  std::vector<std::string> items(1500, "{\"text\": \"" + std::string(4000, 'x') + "\"}");
  ASSERT_TRUE((*s)->CreateRun(RunRecord{"run_big", "task", "{}"}, items, 1).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((*s)->TEST_checkpointer()->checkpoints() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ((*s)->TEST_checkpointer()->last_error(), "");
  ASSERT_GE((*s)->TEST_checkpointer()->checkpoints(), 1);
  EXPECT_GE(file_bytes(), before + 1500 * 4000) << "the log's pages are in the database file";
  // And the data reads back through the store.
  EXPECT_TRUE((*s)->GetItem("run_big", 1499).ok());
}

TEST_F(SqliteStoreTest, AnInMemoryDatabaseHasNoCheckpointer) {
  Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(":memory:", &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->TEST_checkpointer(), nullptr);
}

TEST(WalCheckpointerTest, BelowTheThresholdNothingStarts) {
  WalCheckpointer c("/nonexistent/dir/x.db", 100);
  EXPECT_FALSE(c.OnCommit(99));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(c.checkpoints(), 0);
  EXPECT_EQ(c.last_error(), "");
}

TEST(WalCheckpointerTest, AFailingCheckpointIsReportedAndTheWriterTakesOverPastTheBound) {
  WalCheckpointer c("/nonexistent/dir/x.db", 100);
  EXPECT_FALSE(c.OnCommit(100));  // wakes the thread; the log is still far below the fallback bound
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (c.last_error().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_NE(c.last_error().find("/nonexistent/dir/x.db"), std::string::npos) << c.last_error();
  EXPECT_EQ(c.checkpoints(), 0);
  EXPECT_FALSE(c.OnCommit(64 * 100 - 1));
  EXPECT_TRUE(c.OnCommit(64 * 100)) << "past 64 thresholds the writer checkpoints itself";
}

TEST(BusyWaitTest, TriesAgainWithinHalfAMillisecondAndGivesUpAfterFiveSeconds) {
  EXPECT_EQ(BusyWait::PauseMicros(0, 0), 50);
  EXPECT_EQ(BusyWait::PauseMicros(1, 50), 100);
  EXPECT_EQ(BusyWait::PauseMicros(2, 150), 200);
  EXPECT_EQ(BusyWait::PauseMicros(3, 350), 400);
  EXPECT_EQ(BusyWait::PauseMicros(1000, 1'000'000), 400);  // never the 100 ms naps of SQLite's busy_timeout
  EXPECT_EQ(BusyWait::PauseMicros(2000, 4'999'900), 100);  // the last pause ends at the budget
  EXPECT_EQ(BusyWait::PauseMicros(2001, 5'000'000), -1);
}

TEST_F(SqliteStoreTest, AWriterWaitsForAnotherConnectionsWriteThenGoesOn) {
  const std::string path = Path();
  Result<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path, &env_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  Result<Worker> w = (*s)->EnsureWorker(WorkerRef{"local", "alice"});
  release.join();
  sqlite3_close(other);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
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
