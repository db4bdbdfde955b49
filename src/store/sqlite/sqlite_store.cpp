// SqliteStore: opening, connection settings, transactions, batches and decisions, and the
// migrations driver (the migrations themselves are in sqlite_schema.hpp). Qualifications, workers,
// grants and the audit log are in sqlite_store_grants.cpp; runs, units and agents in
// sqlite_store_runs.cpp; reviews, provider sessions and the requester pages in
// sqlite_store_review.cpp; secrets and the provider outbox in sqlite_store_outbox.cpp.
#include "store/sqlite/sqlite_store.hpp"

#include <cstdlib>

#include <exception>
#include <iterator>
#include <utility>

#include "store/sqlite/sqlite_internal.hpp"
#include "store/sqlite/sqlite_schema.hpp"

namespace crowdgate {

using sqlite_schema::kMigrations;

namespace sqlite_internal {

Status FromSqlite(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable("database is busy, try again (" + msg + ")");
    case SQLITE_CONSTRAINT:
      return Status::Conflict(msg);
    default:
      return Status::Internal("sqlite: " + msg);
  }
}

}  // namespace sqlite_internal

using sqlite_internal::FromSqlite;

namespace {

// Errors while opening name the path: the usual cause is a wrong path or a file that is not ours.
Status OpenError(sqlite3* db, int rc, const std::string& path) {
  int primary = rc & 0xff;
  std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return Status::Unavailable("database '" + path + "' is busy: " + msg);
  }
  return Status::InvalidArgument("cannot open database '" + path + "': " + msg);
}

// Runs SQL text that takes no parameters (pragmas, migrations) on `db`.
int ExecText(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr); }

}  // namespace

// ---- open, migrations, plumbing ----------------------------------------------------------------
const int SqliteStore::kSchemaVersion = static_cast<int>(std::size(kMigrations));

SqliteStore::SqliteStore(sqlite3* db, Env* env, std::string path) : db_(db), env_(env), path_(std::move(path)) {}

SqliteStore::~SqliteStore() {
  // The checkpointer's connection closes first, so that ours is the last one and SQLite's
  // closing checkpoint (and removal of the -wal file) happens here, as without a checkpointer.
  checkpointer_.reset();
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path, Env* env) {
  if (path.empty()) return Status::InvalidArgument("empty SQLite database path");
  if (env == nullptr) env = Env::Default();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status s = OpenError(db, rc, path);
    sqlite3_close_v2(db);
    return s;
  }
  // From here the store owns `db` and closes it on every return.
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, env, path));
  if (sqlite3_db_readonly(db, "main") == 1) {
    return Status::InvalidArgument("cannot open database '" + path + "': the file is read-only");
  }
  BusyWait::Install(db, &store->busy_wait_);  // up to 5 s for another writer, trying every 50-400 µs
  sqlite3_extended_result_codes(db, 1);
  // journal_mode is the first statement that reads the file, so it is where "not a database"
  // shows up. In-memory databases answer "memory"; that is fine.
  // WAL with synchronous=FULL (the default): every commit is fsynced before we answer, so what
  // we answered survives a power cut as well as a kill -9. Group commit pays one fsync per batch.
  // CROWDGATE_SQLITE_SYNC=normal opts out: the commit reaches the WAL file (the OS's page cache)
  // before we answer, which a kill -9 cannot undo but a power loss or kernel crash can.
  const char* sync_env = std::getenv("CROWDGATE_SQLITE_SYNC");
  const std::string sync = sync_env != nullptr ? sync_env : "";
  if (!sync.empty() && sync != "full" && sync != "normal") {
    return Status::InvalidArgument("CROWDGATE_SQLITE_SYNC must be \"full\" (the default) or \"normal\", not \"" +
                                   sync + "\"");
  }
  const bool full_sync = sync != "normal";
  // temp_store = MEMORY: every decision of a group commit is a savepoint, and a savepoint copies each
  // page before its first change into a statement journal. In a temporary file that is a write
  // system call per page; in memory it is a copy (about a tenth of a request's CPU in http-work).
  for (const char* pragma : {"PRAGMA journal_mode = WAL",
                             full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                             "PRAGMA foreign_keys = ON", "PRAGMA cache_size = -32768", "PRAGMA temp_store = MEMORY"}) {
    rc = ExecText(db, pragma);
    if (rc != SQLITE_OK) return OpenError(db, rc, path).WithContext(pragma);
  }
  if (path != ":memory:") {
    // Our commits never checkpoint: the checkpointer does, on its own thread (replacing the hook
    // replaces SQLite's automatic checkpoint).
    store->checkpointer_ = std::make_unique<WalCheckpointer>(path);
    sqlite3_wal_hook(db, &SqliteStore::OnWalCommit, store->checkpointer_.get());
  }
  CG_RETURN_IF_ERROR(store->Migrate());
  return store;
}

int SqliteStore::OnWalCommit(void* checkpointer, sqlite3* db, const char* schema, int wal_pages) {
  if (static_cast<WalCheckpointer*>(checkpointer)->OnCommit(wal_pages)) {
    // The log reached the fallback bound: checkpoint here, as SQLite's own hook would.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

Status SqliteStore::Migrate() {
  // Up to date (the common case): say so without the write lock, which a busy server may hold
  // for a moment (a group commit), so that opening for a read never waits on a writer.
  {
    Result<SqliteQuery> q = Query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (q.ok()) {
      Result<bool> row = q->Next();
      if (row.ok() && *row && q->Int(0) == kSchemaVersion) return Status::Ok();
    }
  }
  int rc = ExecText(db_, "BEGIN IMMEDIATE");
  if (rc != SQLITE_OK) return OpenError(db_, rc, path_);
  auto fail = [this](Status s) {
    if (!sqlite3_get_autocommit(db_)) ExecText(db_, "ROLLBACK");
    return s;
  };
  rc = ExecText(db_,
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  if (rc != SQLITE_OK) return fail(OpenError(db_, rc, path_));
  int64_t current = 0;
  {
    Result<SqliteQuery> q = Query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (!q.ok()) return fail(q.status());
    Result<bool> row = q->Next();
    if (!row.ok()) return fail(row.status());
    current = q->Int(0);
  }
  if (current > kSchemaVersion) {
    return fail(Status::Unavailable("database '" + path_ + "' has schema version " + std::to_string(current) +
                                    ", newer than this crowdgate binary supports (" + std::to_string(kSchemaVersion) +
                                    "); use a newer crowdgate"));
  }
  for (int64_t v = current; v < kSchemaVersion; ++v) {
    rc = ExecText(db_, kMigrations[v]);
    if (rc != SQLITE_OK) return fail(FromSqlite(db_, rc, "migration " + std::to_string(v + 1)));
    Result<SqliteQuery> q = Query("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)");
    if (!q.ok()) return fail(q.status());
    Status s = q->Bind(1, v + 1).Bind(2, env_->NowMicros()).Run();
    if (!s.ok()) return fail(s);
  }
  rc = ExecText(db_, "COMMIT");
  if (rc != SQLITE_OK) return fail(OpenError(db_, rc, path_));
  return Status::Ok();
}

Result<SqliteQuery> SqliteStore::Query(std::string_view sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) return FromSqlite(db_, rc, "preparing a statement");
    it = stmts_.emplace(sql, stmt).first;
  }
  return SqliteQuery(db_, it->second);
}

Status SqliteStore::ExecCached(std::string_view sql) {
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(sql));
  return q.Run();
}

namespace {

// Runs a transaction body; an exception (a bug, or std::bad_alloc) becomes an Internal status.
Status RunGuarded(const std::function<Status()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("unexpected exception in the SQLite store: ") + e.what());
  }
}

}  // namespace

Status SqliteStore::CheckTransactionAlive() {
  if (InTransaction() && !tx_lost_ && sqlite3_get_autocommit(db_)) {
    tx_lost_ = true;
    run_rids_.clear();
  }
  if (tx_lost_) {
    return Status::Unavailable("SQLite rolled back the open transaction of database '" + path_ +
                               "' after an error: nothing of it is stored");
  }
  return Status::Ok();
}

Status SqliteStore::Transact(TxKind kind, const std::function<Status()>& body) {
  if (InTransaction()) {
    CG_RETURN_IF_ERROR(CheckTransactionAlive());
    if (kind == TxKind::kRead) return RunGuarded(body);  // nothing to undo
    // The open transaction already holds the write lock; a savepoint makes this call all-or-nothing.
    CG_RETURN_IF_ERROR(ExecCached("SAVEPOINT step"));
    Status s = RunGuarded(body);
    if (!s.ok()) {
      // A failed statement may have ended the whole transaction (SQLITE_FULL, IOERR, NOMEM): then
      // there is no savepoint to go back to, and the rest of the batch must fail too.
      CG_RETURN_IF_ERROR(CheckTransactionAlive().WithContext(s.message()));
      (void)ExecCached("ROLLBACK TO step");
      run_rids_.clear();
    }
    Status released = ExecCached("RELEASE step");
    if (!released.ok()) CG_RETURN_IF_ERROR(CheckTransactionAlive());
    return s.ok() ? released : s;
  }
  // Writers take the write lock up front (BEGIN IMMEDIATE): a deferred transaction that reads and
  // then writes can fail with SQLITE_BUSY in the middle, without the busy timeout helping.
  CG_RETURN_IF_ERROR(ExecCached(kind == TxKind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"));
  Status s = RunGuarded(body);
  if (s.ok()) {
    s = ExecCached("COMMIT");
    if (s.ok()) return s;
  }
  run_rids_.clear();
  if (!sqlite3_get_autocommit(db_)) {
    // A failed ROLLBACK leaves nothing better to report than the original error.
    (void)ExecCached("ROLLBACK");
  }
  return s;
}

Status SqliteStore::BeginBatch() {
  if (in_batch_ || in_decision_) return Status::Internal("BeginBatch: a batch or a decision is already open");
  CG_RETURN_IF_ERROR(ExecCached("BEGIN IMMEDIATE"));
  in_batch_ = true;
  tx_lost_ = false;
  return Status::Ok();
}

Status SqliteStore::EndBatch(bool commit) {
  if (!in_batch_) return Status::Internal("EndBatch without BeginBatch");
  if (in_decision_) (void)EndDecision(/*commit=*/false);
  Status s = commit ? CheckTransactionAlive() : Status::Ok();
  in_batch_ = false;
  tx_lost_ = false;
  if (commit && s.ok()) s = ExecCached("COMMIT");
  if (!commit || !s.ok()) {
    run_rids_.clear();
    if (!sqlite3_get_autocommit(db_)) (void)ExecCached("ROLLBACK");
  }
  return s;
}

// Inside a batch the batch's write lock already keeps every other connection out; the savepoint
// makes the decision all-or-nothing. Outside one, the decision's own IMMEDIATE transaction does both.
Status SqliteStore::BeginDecision(WorkerId /*worker*/) {
  if (in_decision_) return Status::Internal("BeginDecision: a decision is already open");
  if (in_batch_) {
    CG_RETURN_IF_ERROR(CheckTransactionAlive());
    Status s = ExecCached("SAVEPOINT decision");
    if (!s.ok()) {
      CG_RETURN_IF_ERROR(CheckTransactionAlive());
      return s;
    }
  } else {
    CG_RETURN_IF_ERROR(ExecCached("BEGIN IMMEDIATE"));
    own_decision_tx_ = true;
    tx_lost_ = false;
  }
  in_decision_ = true;
  return Status::Ok();
}

Status SqliteStore::EndDecision(bool commit) {
  if (!in_decision_) return Status::Internal("EndDecision without BeginDecision");
  in_decision_ = false;
  Status alive = CheckTransactionAlive();
  if (own_decision_tx_) {
    own_decision_tx_ = false;
    tx_lost_ = false;
    Status s = alive;
    if (commit && s.ok()) s = ExecCached("COMMIT");
    if (!commit || !s.ok()) {
      run_rids_.clear();
      if (!sqlite3_get_autocommit(db_)) (void)ExecCached("ROLLBACK");
    }
    return commit ? s : Status::Ok();
  }
  if (!alive.ok()) return commit ? alive : Status::Ok();  // the batch fails as a whole
  Status s;
  if (!commit) {
    run_rids_.clear();
    s = ExecCached("ROLLBACK TO decision");
  }
  Status released = ExecCached("RELEASE decision");
  if (s.ok()) s = released;
  if (!s.ok()) CG_RETURN_IF_ERROR(CheckTransactionAlive());
  return s;
}

Result<int64_t> SqliteStore::RunRowId(const std::string& run_id) {
  auto it = run_rids_.find(run_id);
  if (it != run_rids_.end()) return it->second;
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT rid FROM runs WHERE id = ?1"));
  q.Bind(1, run_id);
  CG_ASSIGN_OR_RETURN(bool row, q.Next());
  if (!row) return Status::NotFound("run '" + run_id + "' does not exist");
  // Runs are never deleted or renamed, so the row id of a committed run never changes. (A row
  // read inside a transaction that then rolls back is forgotten: see Transact / EndBatch.)
  run_rids_.emplace(run_id, q.Int(0));
  return q.Int(0);
}

Status SqliteStore::CheckWorkerExists(WorkerId worker, WorkerRef* ref) {
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT provider, name FROM workers WHERE id = ?1"));
  q.Bind(1, worker);
  CG_ASSIGN_OR_RETURN(bool row, q.Next());
  if (!row) return Status::NotFound("worker id " + std::to_string(worker) + " does not exist");
  if (ref != nullptr) *ref = WorkerRef{q.Text(0), q.Text(1)};
  return Status::Ok();
}

}  // namespace crowdgate
