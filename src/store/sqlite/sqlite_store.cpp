#include "store/sqlite/sqlite_store.hpp"

#include <cstdlib>

#include <algorithm>
#include <array>
#include <concepts>
#include <exception>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/grant_rule.hpp"
#include "store/outbox_rows.hpp"

namespace crowdgate {

namespace {

// ---- schema ------------------------------------------------------------------------------------
// Runs are referenced by an integer key (runs.rid) rather than their 20-character public id, which
// keeps the units/items/agents rows and their indexes small for runs of a million units.
//
// Indexes, and the queries they serve:
//  grants_by_qual            GrantsForQualification, CountGrants (covering: qual_id, expires_at, pk)
//  audit_by_worker           History with a worker filter. (History by qualification alone scans the
//                            log: it is a rare admin query, and one index less makes bulk grants faster.)
//  units_by_run_status       ReserveUnit (run, 'launched', 'unit', lowest id), UnitStatusCounts
//  units_by_worker           CountWorkerUnitsForTask (partial: only units someone holds)
//  agents_by_run_worker      ReserveUnit's "never held this item" NOT EXISTS probe, OpenAgents, RunAgents
//  agents_open_by_deadline   OverdueAgents (partial: open agents only)
//  agents_scored_gold        RecentGoldResults (partial: scored gold agents only)
constexpr const char* kMigration1 = R"sql(
CREATE TABLE workers (
  id         INTEGER PRIMARY KEY,
  provider   TEXT NOT NULL,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (provider, name)
);
-- AUTOINCREMENT: a deleted qualification's id is never reused, so a cache or a compiled
-- requirement holding the old id can never silently match a new qualification.
CREATE TABLE qualifications (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE TABLE grants (
  worker_id  INTEGER NOT NULL REFERENCES workers (id),
  qual_id    INTEGER NOT NULL REFERENCES qualifications (id),
  value      INTEGER NOT NULL,
  granted_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  actor      TEXT NOT NULL,
  PRIMARY KEY (worker_id, qual_id)
) WITHOUT ROWID;
CREATE INDEX grants_by_qual ON grants (qual_id, expires_at);
-- The audit log keeps ids and the qualification's name without foreign keys: history outlives
-- deleted qualifications. worker_id is NULL for qualification_deleted.
CREATE TABLE audit (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  at             INTEGER NOT NULL,
  kind           TEXT NOT NULL CHECK (kind IN ('grant', 'change', 'revoke', 'qualification_deleted')),
  worker_id      INTEGER,
  qual_id        INTEGER NOT NULL,
  qualification  TEXT NOT NULL,
  old_value      INTEGER,
  new_value      INTEGER,
  new_expires_at INTEGER,
  actor          TEXT NOT NULL,
  reason         TEXT NOT NULL
);
CREATE INDEX audit_by_worker ON audit (worker_id, seq);
CREATE TABLE runs (
  rid              INTEGER PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  task_name        TEXT NOT NULL,
  config_json      TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  created_at       INTEGER NOT NULL,
  num_items        INTEGER NOT NULL,
  num_units        INTEGER NOT NULL,
  gold_served      INTEGER NOT NULL DEFAULT 0 CHECK (gold_served >= 0),
  screening_served INTEGER NOT NULL DEFAULT 0 CHECK (screening_served >= 0)
);
CREATE INDEX runs_by_task ON runs (task_name);
CREATE TABLE items (
  run        INTEGER NOT NULL REFERENCES runs (rid),
  item_index INTEGER NOT NULL,
  data_json  TEXT NOT NULL,
  PRIMARY KEY (run, item_index)
);
CREATE TABLE units (
  id         INTEGER PRIMARY KEY,
  run        INTEGER NOT NULL REFERENCES runs (rid),
  kind       TEXT NOT NULL CHECK (kind IN ('unit', 'gold', 'screening')),
  item_index INTEGER NOT NULL,
  copy_index INTEGER NOT NULL,
  status     TEXT NOT NULL,
  worker_id  INTEGER REFERENCES workers (id),
  agent_id   TEXT
);
CREATE INDEX units_by_run_status ON units (run, status, kind, id);
CREATE INDEX units_by_worker ON units (worker_id, run) WHERE worker_id IS NOT NULL;
CREATE TABLE agents (
  id           TEXT NOT NULL UNIQUE,
  token_hash   TEXT NOT NULL,
  run          INTEGER NOT NULL REFERENCES runs (rid),
  unit_id      INTEGER REFERENCES units (id),
  worker_id    INTEGER NOT NULL REFERENCES workers (id),
  kind         TEXT NOT NULL CHECK (kind IN ('unit', 'gold', 'screening', 'onboarding')),
  status       TEXT NOT NULL,
  item_index   INTEGER NOT NULL,
  session      TEXT NOT NULL,
  eval_set     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  deadline     INTEGER NOT NULL,
  submitted_at INTEGER,
  data_json    TEXT NOT NULL,
  check_result TEXT NOT NULL
);
CREATE INDEX agents_by_run_worker ON agents (run, worker_id, kind, item_index);
CREATE INDEX agents_open_by_deadline ON agents (deadline) WHERE status IN ('in_task', 'onboarding');
CREATE INDEX agents_scored_gold ON agents (worker_id, eval_set)
  WHERE kind = 'gold' AND check_result IN ('pass', 'fail');
CREATE TABLE golds_seen (
  worker_id  INTEGER NOT NULL REFERENCES workers (id),
  gold_set   TEXT NOT NULL,
  item_index INTEGER NOT NULL,
  PRIMARY KEY (worker_id, gold_set, item_index)
) WITHOUT ROWID;
)sql";

// Migration 2: OpenAgents, asked on every work request, walked every agent the worker
// ever had in the run (agents_by_run_worker), so a worker's requests slowed as their history grew.
constexpr const char* kMigration2 = R"sql(
CREATE INDEX agents_open_by_run_worker ON agents (run, worker_id) WHERE status IN ('in_task', 'onboarding');
)sql";

// Migration 3: the provider outbox, database secrets and what a run's provider created for it.
//  outbox_due                  CountOutbox, ListOutbox by state
//  outbox_undelivered          ClaimOutbox's walk in id order (partial: pending and retrying only,
//                              so delivered rows, however many, cost nothing)
//  outbox_undelivered_by_key   ClaimOutbox's head-of-key test: the first undelivered row of the key
// AUTOINCREMENT: ids only ever grow, so "after id N" (ListOutbox) and delivery order stay meaningful.
constexpr const char* kMigration3 = R"sql(
ALTER TABLE runs ADD COLUMN provider_state TEXT NOT NULL DEFAULT '{}';
CREATE TABLE secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  provider        TEXT NOT NULL,
  kind            TEXT NOT NULL,
  run_id          TEXT NOT NULL,
  order_key       TEXT NOT NULL,
  payload_json    TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'done', 'failed')),
  attempts        INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT NOT NULL,
  progress_json   TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  claimed_by      TEXT NOT NULL,
  claimed_until   INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE state IN ('pending', 'retrying');
CREATE INDEX outbox_undelivered_by_key ON outbox (order_key, id) WHERE state IN ('pending', 'retrying');
)sql";

// Migration 4: the dashboard's throughput series reads only the newest submissions of a run
// (RunThroughput with `since`), not every agent of it.
constexpr const char* kMigration4 = R"sql(
CREATE INDEX agents_submitted_by_run ON agents (run, submitted_at) WHERE submitted_at IS NOT NULL;
)sql";

// Ordered; entry i upgrades version i to i + 1. Never edit a shipped migration: append one.
constexpr const char* kMigrations[] = {kMigration1, kMigration2, kMigration3, kMigration4};

constexpr size_t kProgressEvery = 10000;

// Bulk paths insert several rows per statement: executing a statement opens a cursor on the table
// and on each index, which costs as much as the insert itself, so one statement per row roughly
// doubles the time of a million-row import.
constexpr int kAuditBatch = 32;
constexpr int kAuditColumns = 10;
constexpr int kItemBatch = 64;
constexpr int kGrantBatch = 32;
constexpr int kGrantColumns = 6;
constexpr int kOutboxBatch = 32;
constexpr int kOutboxColumns = 8;

// "INSERT ... VALUES (?1, ..., ?10), (?11, ..., ?20), ..." built once from constants, never from input.
// Function-local statics, so the text lives as long as the statement cache keyed by it.
std::string_view AuditBatchSql() {
  static const std::string sql = [] {
    std::string s =
        "INSERT INTO audit (at, kind, worker_id, qual_id, qualification, old_value, new_value, new_expires_at, "
        "actor, reason) VALUES ";
    for (int r = 0; r < kAuditBatch; ++r) {
      s += r == 0 ? "(" : ", (";
      for (int c = 0; c < kAuditColumns; ++c) s += (c == 0 ? "?" : ", ?") + std::to_string(r * kAuditColumns + c + 1);
      s += ")";
    }
    return s;
  }();
  return sql;
}

std::string_view GrantBatchSql() {
  static const std::string sql = [] {
    std::string s = "INSERT INTO grants (worker_id, qual_id, value, granted_at, updated_at, expires_at, actor) VALUES ";
    for (int r = 0; r < kGrantBatch; ++r) {
      const int b = r * kGrantColumns;
      s += (r == 0 ? "(?" : ", (?") + std::to_string(b + 1) + ", ?" + std::to_string(b + 2) + ", ?" +
           std::to_string(b + 3) + ", ?" + std::to_string(b + 4) + ", ?" + std::to_string(b + 4) + ", ?" +
           std::to_string(b + 5) + ", ?" + std::to_string(b + 6) + ")";
    }
    return s;
  }();
  return sql;
}

// Outbox rows: 8 bound columns each; state, attempts, last_error and the claim are constants, and
// updated_at = created_at.
std::string_view OutboxBatchSql(int rows) {
  static const std::array<std::string, 2> sqls = [] {
    auto make = [](int n) {
      std::string s =
          "INSERT INTO outbox (provider, kind, run_id, order_key, payload_json, next_attempt_at, progress_json, "
          "created_at, updated_at, state, attempts, last_error, claimed_by, claimed_until) VALUES ";
      for (int r = 0; r < n; ++r) {
        const int b = r * kOutboxColumns;
        s += r == 0 ? "(" : ", (";
        for (int c = 0; c < kOutboxColumns; ++c) s += (c == 0 ? "?" : ", ?") + std::to_string(b + c + 1);
        s += ", ?" + std::to_string(b + 8) + ", 'pending', 0, '', '', 0)";
      }
      return s;
    };
    return std::array<std::string, 2>{make(1), make(kOutboxBatch)};
  }();
  return rows == 1 ? sqls[0] : sqls[1];
}

// "INSERT INTO items ... VALUES (?1, ?2, ?3), (?1, ?4, ?5), ...": ?1 is the run.
std::string_view ItemBatchSql() {
  static const std::string sql = [] {
    std::string s = "INSERT INTO items (run, item_index, data_json) VALUES ";
    for (int r = 0; r < kItemBatch; ++r) {
      s += (r == 0 ? "(?1, ?" : ", (?1, ?") + std::to_string(2 * r + 2) + ", ?" + std::to_string(2 * r + 3) + ")";
    }
    return s;
  }();
  return sql;
}

// ---- status mapping ----------------------------------------------------------------------------
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

// AuditKindName returns string literals, so data() is NUL-terminated.
const char* KindName(AuditEntry::Kind kind) { return AuditKindName(kind).data(); }

AuditEntry::Kind KindFromName(std::string_view name) {
  if (name == "grant") return AuditEntry::Kind::kGrant;
  if (name == "change") return AuditEntry::Kind::kChange;
  if (name == "revoke") return AuditEntry::Kind::kRevoke;
  return AuditEntry::Kind::kQualificationDeleted;
}

Status CheckWorkerRef(const WorkerRef& ref) {
  Result<WorkerRef> parsed = ParseWorkerRef(ref.ToString());
  if (!parsed.ok()) return parsed.status();
  if (!(*parsed == ref)) return Status::InvalidArgument("invalid worker '" + ref.ToString() + "'");
  return Status::Ok();
}

}  // namespace

// ---- SqliteQuery -------------------------------------------------------------------------------
// A cached statement in use: binds, steps, reads columns, and resets the statement when it goes
// out of scope so the next user finds it clean. Bind errors are remembered and reported by Next().
class SqliteQuery {
 public:
  SqliteQuery(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteQuery(SqliteQuery&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)), bind_rc_(o.bind_rc_) {}
  SqliteQuery& operator=(SqliteQuery&&) = delete;
  SqliteQuery(const SqliteQuery&) = delete;
  ~SqliteQuery() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  template <std::integral T>
  SqliteQuery& Bind(int i, T v) {
    Note(sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v)));
    return *this;
  }
  SqliteQuery& Bind(int i, std::string_view v) {
    Note(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  SqliteQuery& Bind(int i, const std::optional<int64_t>& v) {
    Note(v ? sqlite3_bind_int64(stmt_, i, *v) : sqlite3_bind_null(stmt_, i));
    return *this;
  }
  SqliteQuery& BindNull(int i) {
    Note(sqlite3_bind_null(stmt_, i));
    return *this;
  }

  // True when a row is available, false when done.
  Result<bool> Next() {
    if (bind_rc_ != SQLITE_OK) return FromSqlite(db_, bind_rc_, "binding a parameter");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return FromSqlite(db_, rc, "executing a statement");
  }
  // Runs a statement that returns no rows (or whose rows are ignored).
  Status Run() {
    while (true) {
      Result<bool> row = Next();
      if (!row.ok()) return row.status();
      if (!*row) return Status::Ok();
    }
  }
  // Makes the statement runnable again with the same bindings (for loops that rebind a few).
  void ResetKeepBindings() { sqlite3_reset(stmt_); }
  // Changes made by the last Run() of an INSERT/UPDATE/DELETE.
  int64_t Changes() const { return sqlite3_changes64(db_); }

  int64_t Int(int c) const { return sqlite3_column_int64(stmt_, c); }
  bool IsNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::optional<int64_t> OptInt(int c) const {
    if (IsNull(c)) return std::nullopt;
    return Int(c);
  }
  std::string Text(int c) const {
    const unsigned char* p = sqlite3_column_text(stmt_, c);
    if (p == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, c)));
  }

 private:
  void Note(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// ---- column lists shared by several queries (string literals, so statements stay cacheable) ----
#define CG_QUAL_SELECT "SELECT id, name, description, created_at FROM qualifications "
#define CG_GRANT_SELECT                                                                                  \
  "SELECT g.worker_id, w.provider, w.name, g.qual_id, q.name, g.value, g.granted_at, g.updated_at, " \
  "g.expires_at, g.actor FROM grants g JOIN workers w ON w.id = g.worker_id "                         \
  "JOIN qualifications q ON q.id = g.qual_id "
#define CG_AUDIT_SELECT                                                                                    \
  "SELECT a.seq, a.at, a.kind, a.worker_id, w.provider, w.name, a.qual_id, a.qualification, a.old_value, " \
  "a.new_value, a.new_expires_at, a.actor, a.reason FROM audit a LEFT JOIN workers w ON w.id = a.worker_id "
#define CG_RUN_SELECT                                                                                  \
  "SELECT id, task_name, config_json, status, created_at, num_items, num_units, gold_served, " \
  "screening_served, provider_state FROM runs "
#define CG_OUTBOX_SELECT                                                                                     \
  "SELECT id, provider, kind, run_id, order_key, payload_json, state, attempts, next_attempt_at, last_error, " \
  "progress_json, created_at, updated_at, claimed_by, claimed_until FROM outbox "
#define CG_AGENT_SELECT                                                                                         \
  "SELECT a.id, a.token_hash, r.id, a.unit_id, a.worker_id, w.provider, w.name, a.kind, a.status, "            \
  "a.item_index, a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result " \
  "FROM agents a JOIN runs r ON r.rid = a.run JOIN workers w ON w.id = a.worker_id "
// The same, reading agents through the named index.
#define CG_AGENT_SELECT_INDEXED(index)                                                                          \
  "SELECT a.id, a.token_hash, r.id, a.unit_id, a.worker_id, w.provider, w.name, a.kind, a.status, "            \
  "a.item_index, a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result " \
  "FROM agents a INDEXED BY " index " JOIN runs r ON r.rid = a.run JOIN workers w ON w.id = a.worker_id "

namespace {

Qualification ReadQualification(const SqliteQuery& q) {
  return Qualification{q.Int(0), q.Text(1), q.Text(2), q.Int(3)};
}

Grant ReadGrant(const SqliteQuery& q) {
  Grant g;
  g.worker_id = q.Int(0);
  g.worker = WorkerRef{q.Text(1), q.Text(2)};
  g.qual_id = q.Int(3);
  g.qualification = q.Text(4);
  g.value = q.Int(5);
  g.granted_at = q.Int(6);
  g.updated_at = q.Int(7);
  g.expires_at = q.OptInt(8);
  g.actor = q.Text(9);
  return g;
}

AuditEntry ReadAudit(const SqliteQuery& q) {
  AuditEntry e;
  e.seq = q.Int(0);
  e.at = q.Int(1);
  e.kind = KindFromName(q.Text(2));
  e.worker_id = q.IsNull(3) ? 0 : q.Int(3);
  if (!q.IsNull(4)) e.worker = WorkerRef{q.Text(4), q.Text(5)};
  e.qual_id = q.Int(6);
  e.qualification = q.Text(7);
  e.old_value = q.OptInt(8);
  e.new_value = q.OptInt(9);
  e.new_expires_at = q.OptInt(10);
  e.actor = q.Text(11);
  e.reason = q.Text(12);
  return e;
}

RunRecord ReadRun(const SqliteQuery& q) {
  RunRecord r;
  r.id = q.Text(0);
  r.task_name = q.Text(1);
  r.config_json = q.Text(2);
  r.status = q.Text(3);
  r.created_at = q.Int(4);
  r.num_items = q.Int(5);
  r.num_units = q.Int(6);
  r.gold_served = q.Int(7);
  r.screening_served = q.Int(8);
  r.provider_state_json = q.Text(9);
  return r;
}

OutboxRow ReadOutboxRow(const SqliteQuery& q) {
  OutboxRow r;
  r.id = q.Int(0);
  r.provider = q.Text(1);
  r.kind = q.Text(2);
  r.run_id = q.Text(3);
  r.order_key = q.Text(4);
  r.payload_json = q.Text(5);
  r.state = q.Text(6);
  r.attempts = q.Int(7);
  r.next_attempt_at = q.Int(8);
  r.last_error = q.Text(9);
  r.progress_json = q.Text(10);
  r.created_at = q.Int(11);
  r.updated_at = q.Int(12);
  r.claimed_by = q.Text(13);
  r.claimed_until = q.Int(14);
  return r;
}

AgentRecord ReadAgent(const SqliteQuery& q) {
  AgentRecord a;
  a.id = q.Text(0);
  a.token_hash = q.Text(1);
  a.run_id = q.Text(2);
  a.unit_id = q.OptInt(3);
  a.worker_id = q.Int(4);
  a.worker = WorkerRef{q.Text(5), q.Text(6)};
  a.kind = q.Text(7);
  a.status = q.Text(8);
  a.item_index = q.Int(9);
  a.session = q.Text(10);
  a.eval_set = q.Text(11);
  a.created_at = q.Int(12);
  a.deadline = q.Int(13);
  a.submitted_at = q.OptInt(14);
  a.data_json = q.Text(15);
  a.check_result = q.Text(16);
  return a;
}

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
  sqlite3_busy_timeout(db, 5000);
  sqlite3_extended_result_codes(db, 1);
  // journal_mode is the first statement that reads the file, so it is where "not a database"
  // shows up. In-memory databases answer "memory"; that is fine.
  // WAL with synchronous=NORMAL: a commit is in the WAL file (the OS's page cache) before
  // we answer, so a kill -9 of the server loses nothing; only a power loss or kernel crash
  // can roll back the last commits. CROWDGATE_SQLITE_SYNC=full fsyncs every commit too,
  // at a few milliseconds per write.
  const char* sync_env = std::getenv("CROWDGATE_SQLITE_SYNC");
  const bool full_sync = sync_env != nullptr && std::string(sync_env) == "full";
  for (const char* pragma : {"PRAGMA journal_mode = WAL",
                             full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                             "PRAGMA foreign_keys = ON", "PRAGMA cache_size = -32768"}) {
    rc = ExecText(db, pragma);
    if (rc != SQLITE_OK) return OpenError(db, rc, path).WithContext(pragma);
  }
  CG_RETURN_IF_ERROR(store->Migrate());
  return store;
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

// ---- qualifications ----------------------------------------------------------------------------
Result<Qualification> SqliteStore::CreateQualification(const std::string& name, const std::string& description) {
  CG_RETURN_IF_ERROR(ValidateQualificationName(name));
  Qualification out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_QUAL_SELECT "WHERE name = ?1"));
      q.Bind(1, name);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (row) return Status::Conflict("qualification '" + name + "' already exists");
    }
    out = Qualification{0, name, description, env_->NowMicros()};
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        Query("INSERT INTO qualifications (name, description, created_at) VALUES (?1, ?2, ?3)"));
    CG_RETURN_IF_ERROR(q.Bind(1, name).Bind(2, description).Bind(3, out.created_at).Run());
    out.id = sqlite3_last_insert_rowid(db_);
    return Status::Ok();
  }));
  return out;
}

Result<Qualification> SqliteStore::EnsureQualification(const std::string& name, const std::string& description) {
  CG_RETURN_IF_ERROR(ValidateQualificationName(name));
  Qualification out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_QUAL_SELECT "WHERE name = ?1"));
      q.Bind(1, name);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (row) {
        out = ReadQualification(q);
        return Status::Ok();
      }
    }
    out = Qualification{0, name, description, env_->NowMicros()};
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        Query("INSERT INTO qualifications (name, description, created_at) VALUES (?1, ?2, ?3)"));
    CG_RETURN_IF_ERROR(q.Bind(1, name).Bind(2, description).Bind(3, out.created_at).Run());
    out.id = sqlite3_last_insert_rowid(db_);
    return Status::Ok();
  }));
  return out;
}

Result<Qualification> SqliteStore::GetQualification(const std::string& name) {
  Qualification out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_QUAL_SELECT "WHERE name = ?1"));
    q.Bind(1, name);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("qualification '" + name + "' does not exist");
    out = ReadQualification(q);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Qualification>> SqliteStore::ListQualifications() {
  std::vector<Qualification> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_QUAL_SELECT "ORDER BY name"));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadQualification(q));
    }
  }));
  return out;
}

Status SqliteStore::DeleteQualification(const std::string& name, const std::string& actor) {
  return Transact(TxKind::kWrite, [&]() -> Status {
    QualId qual = 0;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT id FROM qualifications WHERE name = ?1"));
      q.Bind(1, name);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("qualification '" + name + "' does not exist");
      qual = q.Int(0);
    }
    const int64_t now = env_->NowMicros();
    std::vector<std::pair<WorkerId, int64_t>> removed;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q,
                          Query("SELECT worker_id, value FROM grants WHERE qual_id = ?1 ORDER BY worker_id"));
      q.Bind(1, qual);
      while (true) {
        CG_ASSIGN_OR_RETURN(bool row, q.Next());
        if (!row) break;
        removed.emplace_back(q.Int(0), q.Int(1));
      }
    }
    for (const auto& [worker, value] : removed) {
      AuditEntry e;
      e.at = now;
      e.kind = AuditEntry::Kind::kRevoke;
      e.worker_id = worker;
      e.qual_id = qual;
      e.qualification = name;
      e.old_value = value;
      e.actor = actor;
      e.reason = "qualification deleted";
      CG_RETURN_IF_ERROR(InsertAudit(&e));
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("DELETE FROM grants WHERE qual_id = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, qual).Run());
    }
    AuditEntry e;
    e.at = now;
    e.kind = AuditEntry::Kind::kQualificationDeleted;
    e.qual_id = qual;
    e.qualification = name;
    e.actor = actor;
    CG_RETURN_IF_ERROR(InsertAudit(&e));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("DELETE FROM qualifications WHERE id = ?1"));
    return q.Bind(1, qual).Run();
  });
}

Result<std::vector<std::pair<QualId, int64_t>>> SqliteStore::CountGrants(int64_t now) {
  std::vector<std::pair<QualId, int64_t>> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT q.id, (SELECT COUNT(*) FROM grants g WHERE g.qual_id = q.id AND "
                                             "(g.expires_at IS NULL OR g.expires_at > ?1)) "
                                             "FROM qualifications q ORDER BY q.id"));
    q.Bind(1, now);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.emplace_back(q.Int(0), q.Int(1));
    }
  }));
  return out;
}

// ---- workers -----------------------------------------------------------------------------------
Result<Worker> SqliteStore::EnsureWorkerInTx(const WorkerRef& ref, bool* created) {
  if (created != nullptr) *created = false;
  {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT id, created_at FROM workers WHERE provider = ?1 AND name = ?2"));
    q.Bind(1, ref.provider).Bind(2, ref.name);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (row) return Worker{q.Int(0), ref, q.Int(1)};
  }
  CG_RETURN_IF_ERROR(CheckWorkerRef(ref));
  Worker w{0, ref, env_->NowMicros()};
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO workers (provider, name, created_at) VALUES (?1, ?2, ?3)"));
  CG_RETURN_IF_ERROR(q.Bind(1, ref.provider).Bind(2, ref.name).Bind(3, w.created_at).Run());
  w.id = sqlite3_last_insert_rowid(db_);
  if (created != nullptr) *created = true;
  return w;
}

Result<Worker> SqliteStore::EnsureWorker(const WorkerRef& ref) {
  Worker out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(out, EnsureWorkerInTx(ref, nullptr));
    return Status::Ok();
  }));
  return out;
}

Result<Worker> SqliteStore::GetWorker(const WorkerRef& ref) {
  Worker out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT id, created_at FROM workers WHERE provider = ?1 AND name = ?2"));
    q.Bind(1, ref.provider).Bind(2, ref.name);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("worker '" + ref.ToString() + "' does not exist");
    out = Worker{q.Int(0), ref, q.Int(1)};
    return Status::Ok();
  }));
  return out;
}

Result<Worker> SqliteStore::GetWorkerById(WorkerId id) {
  Worker out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT provider, name, created_at FROM workers WHERE id = ?1"));
    q.Bind(1, id);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("worker id " + std::to_string(id) + " does not exist");
    out = Worker{id, WorkerRef{q.Text(0), q.Text(1)}, q.Int(2)};
    return Status::Ok();
  }));
  return out;
}

// ---- grants ------------------------------------------------------------------------------------
namespace {
// Binds one audit row at parameters base+1 .. base+10.
void BindAudit(SqliteQuery& q, int base, const AuditEntry& e) {
  q.Bind(base + 1, e.at).Bind(base + 2, std::string_view(KindName(e.kind)));
  if (e.worker_id == 0) {
    q.BindNull(base + 3);
  } else {
    q.Bind(base + 3, e.worker_id);
  }
  q.Bind(base + 4, e.qual_id).Bind(base + 5, e.qualification).Bind(base + 6, e.old_value);
  q.Bind(base + 7, e.new_value).Bind(base + 8, e.new_expires_at).Bind(base + 9, e.actor).Bind(base + 10, e.reason);
}
}  // namespace

Status SqliteStore::InsertAudit(AuditEntry* e) {
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO audit (at, kind, worker_id, qual_id, qualification, "
                                           "old_value, new_value, new_expires_at, actor, reason) "
                                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  BindAudit(q, 0, *e);
  CG_RETURN_IF_ERROR(q.Run());
  e->seq = sqlite3_last_insert_rowid(db_);
  return Status::Ok();
}

Status SqliteStore::InsertOutbox(const std::vector<OutboxRow>& rows, size_t first) {
  const int64_t now = env_->NowMicros();
  auto bind = [&](SqliteQuery& q, int base, const OutboxRow& r) {
    q.Bind(base + 1, r.provider).Bind(base + 2, r.kind).Bind(base + 3, r.run_id).Bind(base + 4, r.order_key);
    q.Bind(base + 5, r.payload_json).Bind(base + 6, r.next_attempt_at);
    q.Bind(base + 7, r.progress_json.empty() ? std::string_view("{}") : std::string_view(r.progress_json));
    q.Bind(base + 8, r.created_at != 0 ? r.created_at : now);
  };
  size_t i = first;
  if (rows.size() - i >= static_cast<size_t>(kOutboxBatch)) {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(OutboxBatchSql(kOutboxBatch)));
    for (; rows.size() - i >= static_cast<size_t>(kOutboxBatch); i += kOutboxBatch) {
      for (int r = 0; r < kOutboxBatch; ++r) bind(q, r * kOutboxColumns, rows[i + r]);
      CG_RETURN_IF_ERROR(q.Run());
      q.ResetKeepBindings();
    }
  }
  for (; i < rows.size(); ++i) {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(OutboxBatchSql(1)));
    bind(q, 0, rows[i]);
    CG_RETURN_IF_ERROR(q.Run());
  }
  return Status::Ok();
}

Status SqliteStore::FlushAudit(std::vector<AuditEntry>* entries, size_t first) {
  size_t i = first;
  if (entries->size() - i >= static_cast<size_t>(kAuditBatch)) {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(AuditBatchSql()));
    for (; entries->size() - i >= static_cast<size_t>(kAuditBatch); i += kAuditBatch) {
      for (int r = 0; r < kAuditBatch; ++r) BindAudit(q, r * kAuditColumns, (*entries)[i + r]);
      CG_RETURN_IF_ERROR(q.Run());
      q.ResetKeepBindings();
      // AUTOINCREMENT gives each new row one more than the largest rowid ever used, and we are the
      // only writer inside this transaction: the rows of one statement get consecutive seqs.
      const int64_t last = sqlite3_last_insert_rowid(db_);
      for (int r = 0; r < kAuditBatch; ++r) (*entries)[i + r].seq = last - (kAuditBatch - 1) + r;
    }
  }
  for (; i < entries->size(); ++i) CG_RETURN_IF_ERROR(InsertAudit(&(*entries)[i]));
  return Status::Ok();
}

Status SqliteStore::ApplyGrantOpsInTx(const std::vector<GrantOp>& ops, const std::function<void(size_t)>& progress,
                                      std::vector<AuditEntry>* out) {
  const int64_t now = env_->NowMicros();
  // Batches are typically grouped by qualification and often by worker: remember the last ones.
  std::unordered_map<QualId, std::string> qual_names;
  std::optional<Worker> last_worker;
  bool last_worker_is_new = false;
  out->reserve(out->size() + ops.size());
  // Audit rows are written in batches; nothing reads the log inside this transaction.
  size_t unflushed = out->size();
  // So are the first grants of workers created by this batch (a bulk import), until an op needs to
  // read grants: every grant read below flushes first, so no op ever misses a pending row.
  struct PendingGrant {
    WorkerId worker;
    QualId qual;
    int64_t value;
    std::optional<int64_t> expires;
    const std::string* actor;
  };
  std::vector<PendingGrant> pending;
  // grant_sync rows for the worker's provider, written in batches like the audit rows.
  std::vector<OutboxRow> sync_rows;
  auto flush_grants = [&]() -> Status {
    size_t i = 0;
    auto bind = [&](SqliteQuery& q, int base, const PendingGrant& g) {
      q.Bind(base + 1, g.worker).Bind(base + 2, g.qual).Bind(base + 3, g.value).Bind(base + 4, now);
      q.Bind(base + 5, g.expires).Bind(base + 6, *g.actor);
    };
    if (pending.size() >= static_cast<size_t>(kGrantBatch)) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(GrantBatchSql()));
      for (; pending.size() - i >= static_cast<size_t>(kGrantBatch); i += kGrantBatch) {
        for (int r = 0; r < kGrantBatch; ++r) bind(q, r * kGrantColumns, pending[i + r]);
        CG_RETURN_IF_ERROR(q.Run());
        q.ResetKeepBindings();
      }
    }
    for (; i < pending.size(); ++i) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO grants (worker_id, qual_id, value, granted_at, "
                                               "updated_at, expires_at, actor) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)"));
      bind(q, 0, pending[i]);
      CG_RETURN_IF_ERROR(q.Run());
    }
    pending.clear();
    return Status::Ok();
  };

  for (size_t i = 0; i < ops.size(); ++i) {
    if (progress && i > 0 && i % kProgressEvery == 0) progress(i);
    const GrantOp& op = ops[i];
    auto qn = qual_names.find(op.qual_id);
    if (qn == qual_names.end()) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT name FROM qualifications WHERE id = ?1"));
      q.Bind(1, op.qual_id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("qualification id " + std::to_string(op.qual_id) + " does not exist");
      qn = qual_names.emplace(op.qual_id, q.Text(0)).first;
    }
    if (!last_worker || !(last_worker->ref == op.worker)) {
      // A worker created by this op has no grants yet; knowing it saves the grant lookup, which
      // matters for bulk imports of new workers.
      CG_ASSIGN_OR_RETURN(last_worker, EnsureWorkerInTx(op.worker, &last_worker_is_new));
    }
    const WorkerId worker = last_worker->id;

    // The stored grant, expired or not: DecideGrantStep knows when an expired one counts as absent.
    std::optional<StoredGrant> stored;
    if (!last_worker_is_new || op.kind == GrantOp::Kind::kRevoke) {
      CG_RETURN_IF_ERROR(flush_grants());
      CG_ASSIGN_OR_RETURN(SqliteQuery q,
                          Query("SELECT value, granted_at, expires_at FROM grants "
                                "WHERE worker_id = ?1 AND qual_id = ?2"));
      q.Bind(1, worker).Bind(2, op.qual_id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (row) stored = StoredGrant{q.Int(0), q.Int(1), q.OptInt(2)};
    }
    const GrantStep step = DecideGrantStep(op, stored, now);
    if (step.write == GrantStep::Write::kNone) continue;

    AuditEntry e;
    e.at = now;
    e.worker_id = worker;
    e.worker = op.worker;
    e.qual_id = op.qual_id;
    e.qualification = qn->second;
    e.actor = op.actor;
    e.reason = op.reason;
    step.FillAudit(&e);
    if (step.write == GrantStep::Write::kDelete) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("DELETE FROM grants WHERE worker_id = ?1 AND qual_id = ?2"));
      CG_RETURN_IF_ERROR(q.Bind(1, worker).Bind(2, op.qual_id).Run());
    } else if (step.write == GrantStep::Write::kUpdate) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE grants SET value = ?3, granted_at = ?4, updated_at = ?5, "
                                               "expires_at = ?6, actor = ?7 WHERE worker_id = ?1 AND qual_id = ?2"));
      q.Bind(1, worker).Bind(2, op.qual_id).Bind(3, step.row.value).Bind(4, step.row.granted_at).Bind(5, now);
      CG_RETURN_IF_ERROR(q.Bind(6, step.row.expires_at).Bind(7, op.actor).Run());
    } else {
      pending.push_back(PendingGrant{worker, op.qual_id, step.row.value, step.row.expires_at, &op.actor});
      if (pending.size() == static_cast<size_t>(kGrantBatch)) CG_RETURN_IF_ERROR(flush_grants());
    }
    // The next op on this worker must look its grants up again.
    last_worker_is_new = false;
    if (store_outbox::NeedsGrantSync(op)) {
      sync_rows.push_back(store_outbox::GrantSyncRow(op, e, now));
      if (sync_rows.size() == static_cast<size_t>(kOutboxBatch)) {
        CG_RETURN_IF_ERROR(InsertOutbox(sync_rows, 0));
        sync_rows.clear();
      }
    }
    out->push_back(std::move(e));
    if (out->size() - unflushed == static_cast<size_t>(kAuditBatch)) {
      CG_RETURN_IF_ERROR(FlushAudit(out, unflushed));
      unflushed = out->size();
    }
  }
  CG_RETURN_IF_ERROR(flush_grants());
  CG_RETURN_IF_ERROR(FlushAudit(out, unflushed));
  CG_RETURN_IF_ERROR(InsertOutbox(sync_rows, 0));
  if (progress) progress(ops.size());
  return Status::Ok();
}

Result<std::vector<AuditEntry>> SqliteStore::ApplyGrantOps(const std::vector<GrantOp>& ops,
                                                           const std::function<void(size_t)>& progress) {
  std::vector<AuditEntry> out;
  Status s = Transact(TxKind::kWrite, [&]() -> Status { return ApplyGrantOpsInTx(ops, progress, &out); });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Grant>> SqliteStore::GrantsForQualification(QualId qual) {
  std::vector<Grant> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT 1 FROM qualifications WHERE id = ?1"));
      q.Bind(1, qual);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("qualification id " + std::to_string(qual) + " does not exist");
    }
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_GRANT_SELECT "WHERE g.qual_id = ?1 ORDER BY g.worker_id"));
    q.Bind(1, qual);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadGrant(q));
    }
  }));
  return out;
}

Result<std::vector<Grant>> SqliteStore::GrantsForWorker(WorkerId worker) {
  std::vector<Grant> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_GRANT_SELECT "WHERE g.worker_id = ?1 ORDER BY g.qual_id"));
    q.Bind(1, worker);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadGrant(q));
    }
  }));
  return out;
}

Status SqliteStore::ScanAllGrants(const std::function<void(const Grant&)>& fn, int64_t* as_of_seq) {
  int64_t seq = 0;
  // One read transaction: the grants seen are exactly those as of `seq`, so a cache loaded from
  // the scan and then fed ChangesSince(seq) misses nothing and replays nothing twice.
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT COALESCE(MAX(seq), 0) FROM audit"));
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      seq = row ? q.Int(0) : 0;
    }
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_GRANT_SELECT "ORDER BY g.worker_id, g.qual_id"));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      fn(ReadGrant(q));
    }
  }));
  if (as_of_seq != nullptr) *as_of_seq = seq;
  return Status::Ok();
}

Result<std::vector<AuditEntry>> SqliteStore::ChangesSince(int64_t after_seq, int64_t limit) {
  std::vector<AuditEntry> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AUDIT_SELECT "WHERE a.seq > ?1 ORDER BY a.seq LIMIT ?2"));
    q.Bind(1, after_seq).Bind(2, limit);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadAudit(q));
    }
  }));
  return out;
}

Result<std::vector<AuditEntry>> SqliteStore::History(std::optional<QualId> qual, std::optional<WorkerId> worker) {
  std::vector<AuditEntry> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    // Separate statements per filter combination so each can use its own index.
    std::string_view sql = CG_AUDIT_SELECT "ORDER BY a.seq";
    if (qual && worker) {
      sql = CG_AUDIT_SELECT "WHERE a.worker_id = ?2 AND a.qual_id = ?1 ORDER BY a.seq";
    } else if (qual) {
      sql = CG_AUDIT_SELECT "WHERE a.qual_id = ?1 ORDER BY a.seq";
    } else if (worker) {
      sql = CG_AUDIT_SELECT "WHERE a.worker_id = ?2 ORDER BY a.seq";
    }
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(sql));
    if (qual) q.Bind(1, *qual);
    if (worker) q.Bind(2, *worker);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadAudit(q));
    }
  }));
  return out;
}

Result<int64_t> SqliteStore::ExternalChangeToken() {
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("PRAGMA data_version"));
  CG_ASSIGN_OR_RETURN(bool row, q.Next());
  if (!row) return Status::Internal("PRAGMA data_version returned no row");
  return q.Int(0);
}

// ---- runs --------------------------------------------------------------------------------------
Status SqliteStore::CreateRun(const RunRecord& run, const std::vector<std::string>& items_json, int units_per_item,
                              const std::function<void(size_t)>& progress) {
  if (run.id.empty()) return Status::InvalidArgument("run id is empty");
  if (units_per_item < 1) {
    return Status::InvalidArgument("units_per_item must be at least 1, got " + std::to_string(units_per_item));
  }
  if (run.status != "open" && run.status != "closed") {
    return Status::InvalidArgument("run status must be open or closed, got '" + run.status + "'");
  }
  return Transact(TxKind::kWrite, [&]() -> Status {
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT 1 FROM runs WHERE id = ?1"));
      q.Bind(1, run.id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (row) return Status::Conflict("run '" + run.id + "' already exists");
    }
    const int64_t num_items = static_cast<int64_t>(items_json.size());
    int64_t rid = 0;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO runs (id, task_name, config_json, status, created_at, "
                                               "num_items, num_units, gold_served, screening_served, provider_state) "
                                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
      q.Bind(1, run.id).Bind(2, run.task_name).Bind(3, run.config_json).Bind(4, run.status);
      q.Bind(5, run.created_at != 0 ? run.created_at : env_->NowMicros()).Bind(6, num_items);
      q.Bind(7, num_items * units_per_item).Bind(8, run.gold_served).Bind(9, run.screening_served);
      q.Bind(10, run.provider_state_json.empty() ? std::string_view("{}") : std::string_view(run.provider_state_json));
      CG_RETURN_IF_ERROR(q.Run());
      rid = sqlite3_last_insert_rowid(db_);
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery batch_q, Query(ItemBatchSql()));
      CG_ASSIGN_OR_RETURN(SqliteQuery item_q,
                          Query("INSERT INTO items (run, item_index, data_json) VALUES (?1, ?2, ?3)"));
      batch_q.Bind(1, rid);
      item_q.Bind(1, rid);
      int64_t i = 0;
      int64_t next_progress = static_cast<int64_t>(kProgressEvery);
      for (; num_items - i >= kItemBatch; i += kItemBatch) {
        for (int r = 0; r < kItemBatch; ++r) {
          batch_q.Bind(2 * r + 2, i + r).Bind(2 * r + 3, items_json[static_cast<size_t>(i + r)]);
        }
        CG_RETURN_IF_ERROR(batch_q.Run());
        batch_q.ResetKeepBindings();
        if (progress && i + kItemBatch >= next_progress) {
          progress(static_cast<size_t>(i + kItemBatch));
          next_progress += static_cast<int64_t>(kProgressEvery);
        }
      }
      for (; i < num_items; ++i) {
        CG_RETURN_IF_ERROR(item_q.Bind(2, i).Bind(3, items_json[static_cast<size_t>(i)]).Run());
        item_q.ResetKeepBindings();
      }
    }
    // Units are made from the items in one statement, item-major: (item 0, copy 0), (item 0, copy 1), ...
    CG_ASSIGN_OR_RETURN(SqliteQuery unit_q,
                        Query("WITH RECURSIVE copies (c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM copies WHERE "
                              "c + 1 < ?2) INSERT INTO units (run, kind, item_index, copy_index, status) "
                              "SELECT ?1, 'unit', i.item_index, copies.c, 'launched' FROM items i, copies "
                              "WHERE i.run = ?1 ORDER BY i.item_index, copies.c"));
    CG_RETURN_IF_ERROR(unit_q.Bind(1, rid).Bind(2, units_per_item).Run());
    if (progress) progress(items_json.size());
    return Status::Ok();
  });
}

Result<RunRecord> SqliteStore::GetRun(const std::string& run_id) {
  RunRecord out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_RUN_SELECT "WHERE id = ?1"));
    q.Bind(1, run_id);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("run '" + run_id + "' does not exist");
    out = ReadRun(q);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<RunRecord>> SqliteStore::ListRuns() {
  std::vector<RunRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_RUN_SELECT "ORDER BY created_at, rid"));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadRun(q));
    }
  }));
  return out;
}

Status SqliteStore::SetRunStatus(const std::string& run_id, const std::string& status) {
  if (status != "open" && status != "closed") {
    return Status::InvalidArgument("run status must be open or closed, got '" + status + "'");
  }
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE runs SET status = ?2 WHERE rid = ?1"));
    return q.Bind(1, rid).Bind(2, status).Run();
  });
}

Result<std::string> SqliteStore::GetItem(const std::string& run_id, int64_t item_index) {
  std::string out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT data_json FROM items WHERE run = ?1 AND item_index = ?2"));
    q.Bind(1, rid).Bind(2, item_index);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("run '" + run_id + "' has no item " + std::to_string(item_index));
    out = q.Text(0);
    return Status::Ok();
  }));
  return out;
}

// ---- units and agents --------------------------------------------------------------------------
Status SqliteStore::InsertAgent(const AgentRecord& a, int64_t run_rowid) {
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO agents (id, token_hash, run, unit_id, worker_id, kind, "
                                           "status, item_index, session, eval_set, created_at, deadline, "
                                           "submitted_at, data_json, check_result) "
                                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                                           "?15)"));
  q.Bind(1, a.id).Bind(2, a.token_hash).Bind(3, run_rowid).Bind(4, a.unit_id).Bind(5, a.worker_id);
  q.Bind(6, a.kind).Bind(7, a.status).Bind(8, a.item_index).Bind(9, a.session).Bind(10, a.eval_set);
  q.Bind(11, a.created_at).Bind(12, a.deadline).Bind(13, a.submitted_at).Bind(14, a.data_json);
  q.Bind(15, a.check_result);
  Status s = q.Run();
  if (s.IsConflict()) return Status::Conflict("agent '" + a.id + "' already exists");
  return s;
}

Result<std::vector<AgentRecord>> SqliteStore::ReadAgents(SqliteQuery& q) {
  std::vector<AgentRecord> out;
  while (true) {
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return out;
    out.push_back(ReadAgent(q));
  }
}

Result<std::optional<AgentRecord>> SqliteStore::ReserveUnit(const std::string& run_id, AgentRecord agent) {
  return Reserve(run_id, std::move(agent), nullptr);
}

Result<std::optional<AgentRecord>> SqliteStore::ReserveUnitWithItem(const std::string& run_id, AgentRecord agent,
                                                                    std::string* item_json) {
  return Reserve(run_id, std::move(agent), item_json);
}

Result<std::optional<AgentRecord>> SqliteStore::Reserve(const std::string& run_id, AgentRecord agent,
                                                        std::string* item_json) {
  if (agent.kind != "unit") return Status::InvalidArgument("ReserveUnit needs an agent of kind unit");
  std::optional<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(agent.worker_id, &agent.worker));
    {
      // Walks units_by_run_status in id order; each candidate costs one probe of
      // agents_by_run_worker, so the scan only skips units whose items this worker already held.
      CG_ASSIGN_OR_RETURN(SqliteQuery q,
                          Query("SELECT u.id, u.item_index FROM units u "
                                "WHERE u.run = ?1 AND u.status = 'launched' AND u.kind = 'unit' AND NOT EXISTS ("
                                "SELECT 1 FROM agents a WHERE a.run = ?1 AND a.worker_id = ?2 AND a.kind = 'unit' "
                                "AND a.item_index = u.item_index) ORDER BY u.id LIMIT 1"));
      q.Bind(1, rid).Bind(2, agent.worker_id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      agent.unit_id = q.Int(0);
      agent.item_index = q.Int(1);
    }
    agent.run_id = run_id;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = 'assigned', worker_id = ?2, agent_id = ?3 "
                                               "WHERE id = ?1 AND status = 'launched'"));
      CG_RETURN_IF_ERROR(q.Bind(1, *agent.unit_id).Bind(2, agent.worker_id).Bind(3, agent.id).Run());
      if (q.Changes() != 1) return Status::Internal("unit vanished during ReserveUnit");
    }
    CG_RETURN_IF_ERROR(InsertAgent(agent, rid));
    if (item_json != nullptr) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT data_json FROM items WHERE run = ?1 AND item_index = ?2"));
      q.Bind(1, rid).Bind(2, agent.item_index);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Internal("run '" + run_id + "' has no item " + std::to_string(agent.item_index));
      *item_json = q.Text(0);
    }
    out = agent;
    return Status::Ok();
  }));
  return out;
}

Result<bool> SqliteStore::CreateEvalUnit(const std::string& run_id, AgentRecord agent, int64_t cap,
                                         const std::string& gold_set) {
  const bool gold = agent.kind == "gold";
  if (!gold && agent.kind != "screening") {
    return Status::InvalidArgument("CreateEvalUnit needs an agent of kind gold or screening, got '" + agent.kind + "'");
  }
  bool created = false;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(agent.worker_id, &agent.worker));
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT gold_served, screening_served FROM runs WHERE rid = ?1"));
      q.Bind(1, rid);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("run '" + run_id + "' does not exist");
      if ((gold ? q.Int(0) : q.Int(1)) >= cap) return Status::Ok();  // cap reached: change nothing
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(gold ? "UPDATE runs SET gold_served = gold_served + 1 WHERE rid = ?1"
                                                    : "UPDATE runs SET screening_served = screening_served + 1 "
                                                      "WHERE rid = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, rid).Run());
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO units (run, kind, item_index, copy_index, status, "
                                               "worker_id, agent_id) VALUES (?1, ?2, ?3, 0, 'assigned', ?4, ?5)"));
      q.Bind(1, rid).Bind(2, agent.kind).Bind(3, agent.item_index).Bind(4, agent.worker_id).Bind(5, agent.id);
      CG_RETURN_IF_ERROR(q.Run());
      agent.unit_id = sqlite3_last_insert_rowid(db_);
    }
    agent.run_id = run_id;
    CG_RETURN_IF_ERROR(InsertAgent(agent, rid));
    if (gold) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT OR IGNORE INTO golds_seen (worker_id, gold_set, item_index) "
                                               "VALUES (?1, ?2, ?3)"));
      CG_RETURN_IF_ERROR(q.Bind(1, agent.worker_id).Bind(2, gold_set).Bind(3, agent.item_index).Run());
    }
    created = true;
    return Status::Ok();
  }));
  return created;
}

Status SqliteStore::CreateOnboardingAgent(const AgentRecord& agent) {
  if (agent.unit_id) return Status::InvalidArgument("an onboarding agent has no unit");
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(agent.run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(agent.worker_id, nullptr));
    return InsertAgent(agent, rid);
  });
}

Result<AgentRecord> SqliteStore::GetAgent(const std::string& agent_id) {
  AgentRecord out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT "WHERE a.id = ?1"));
    q.Bind(1, agent_id);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("agent '" + agent_id + "' does not exist");
    out = ReadAgent(q);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::OpenAgents(const std::string& run_id, WorkerId worker) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    // INDEXED BY: without statistics the planner may take agents_by_run_worker, every agent ever.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT_INDEXED("agents_open_by_run_worker")
                                             "WHERE a.run = ?1 AND a.worker_id = ?2 AND "
                                             "a.status IN ('in_task', 'onboarding') ORDER BY a.rowid"));
    q.Bind(1, rid).Bind(2, worker);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::OverdueAgents(int64_t now) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    // The status test is spelled exactly as agents_open_by_deadline's WHERE so the planner uses it.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT "WHERE a.status IN ('in_task', 'onboarding') AND "
                                                             "a.deadline <= ?1 ORDER BY a.deadline, a.rowid"));
    q.Bind(1, now);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AuditEntry>> SqliteStore::FinishAgent(const AgentFinish& finish) {
  std::vector<AuditEntry> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    int64_t rid = 0;
    std::optional<int64_t> unit_id;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT status, run, unit_id FROM agents WHERE id = ?1"));
      q.Bind(1, finish.agent_id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("agent '" + finish.agent_id + "' does not exist");
      std::string status = q.Text(0);
      // The check-and-set that makes a double submit (or a submit racing a timeout) impossible.
      if (status != finish.expect_status) {
        return Status::Conflict("agent '" + finish.agent_id + "' is " + status + ", not " + finish.expect_status);
      }
      rid = q.Int(1);
      unit_id = q.OptInt(2);
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE agents SET status = ?2, data_json = COALESCE(?3, data_json), "
                                               "submitted_at = COALESCE(?4, submitted_at), check_result = ?5 "
                                               "WHERE id = ?1"));
      q.Bind(1, finish.agent_id).Bind(2, finish.new_status);
      if (finish.data_json) {
        q.Bind(3, *finish.data_json);
      } else {
        q.BindNull(3);
      }
      CG_RETURN_IF_ERROR(q.Bind(4, finish.submitted_at).Bind(5, finish.check_result).Run());
    }
    if (unit_id && finish.release_unit) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = 'launched', worker_id = NULL, "
                                               "agent_id = NULL WHERE id = ?1 AND agent_id = ?2"));
      CG_RETURN_IF_ERROR(q.Bind(1, *unit_id).Bind(2, finish.agent_id).Run());
    } else if (unit_id && finish.unit_status) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = ?2 WHERE id = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, *unit_id).Bind(2, *finish.unit_status).Run());
    }
    if (finish.refund_gold_slot) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE runs SET gold_served = MAX(gold_served - 1, 0) WHERE rid = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, rid).Run());
    }
    if (finish.refund_screening_slot) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q,
                          Query("UPDATE runs SET screening_served = MAX(screening_served - 1, 0) WHERE rid = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, rid).Run());
    }
    if (!finish.reject_unit_ids.empty()) CG_RETURN_IF_ERROR(RejectForRelabelInTx(rid, finish.reject_unit_ids));
    return ApplyGrantOpsInTx(finish.grant_ops, {}, &out);
  }));
  return out;
}

Status SqliteStore::RejectForRelabelInTx(int64_t rid, const std::vector<int64_t>& unit_ids) {
  CG_ASSIGN_OR_RETURN(SqliteQuery unit, Query("UPDATE units SET status = 'rejected' WHERE id = ?1 AND run = ?2 AND "
                                              "kind = 'unit' AND status = 'completed'"));
  CG_ASSIGN_OR_RETURN(SqliteQuery agent, Query("UPDATE agents SET status = 'rejected' WHERE id = (SELECT agent_id "
                                               "FROM units WHERE id = ?1) AND status = 'completed'"));
  CG_ASSIGN_OR_RETURN(SqliteQuery copy,
                      Query("INSERT INTO units (run, kind, item_index, copy_index, status) SELECT ?2, 'unit', "
                            "u.item_index, (SELECT MAX(c.copy_index) + 1 FROM units c WHERE c.run = ?2 AND "
                            "c.kind = 'unit' AND c.item_index = u.item_index), 'launched' FROM units u WHERE u.id = ?1"));
  CG_ASSIGN_OR_RETURN(SqliteQuery count, Query("UPDATE runs SET num_units = num_units + 1 WHERE rid = ?1"));
  for (int64_t id : unit_ids) {
    CG_RETURN_IF_ERROR(unit.Bind(1, id).Bind(2, rid).Run());
    const bool changed = unit.Changes() > 0;
    unit.ResetKeepBindings();
    if (!changed) continue;
    CG_RETURN_IF_ERROR(agent.Bind(1, id).Run());
    agent.ResetKeepBindings();
    CG_RETURN_IF_ERROR(copy.Bind(1, id).Bind(2, rid).Run());
    copy.ResetKeepBindings();
    CG_RETURN_IF_ERROR(count.Bind(1, rid).Run());
    count.ResetKeepBindings();
  }
  return Status::Ok();
}

Result<std::vector<int64_t>> SqliteStore::GoldsSeen(WorkerId worker, const std::string& gold_set) {
  std::vector<int64_t> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT item_index FROM golds_seen WHERE worker_id = ?1 AND "
                                             "gold_set = ?2 ORDER BY item_index"));
    q.Bind(1, worker).Bind(2, gold_set);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(q.Int(0));
    }
  }));
  return out;
}

Status SqliteStore::ForgetGoldsSeen(WorkerId worker, const std::string& gold_set) {
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("DELETE FROM golds_seen WHERE worker_id = ?1 AND gold_set = ?2"));
    return q.Bind(1, worker).Bind(2, gold_set).Run();
  });
}

Result<std::vector<bool>> SqliteStore::RecentGoldResults(WorkerId worker, const std::string& gold_set, int64_t n) {
  std::vector<bool> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    if (n <= 0) return Status::Ok();
    // Spelled as agents_scored_gold's WHERE; rowid order is creation order.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT check_result FROM agents WHERE worker_id = ?1 AND "
                                             "eval_set = ?2 AND kind = 'gold' AND check_result IN ('pass', 'fail') "
                                             "ORDER BY rowid DESC LIMIT ?3"));
    q.Bind(1, worker).Bind(2, gold_set).Bind(3, n);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) break;
      out.push_back(q.Text(0) == "pass");
    }
    std::reverse(out.begin(), out.end());
    return Status::Ok();
  }));
  return out;
}

Result<int64_t> SqliteStore::CountWorkerUnitsForTask(const std::string& task_name, WorkerId worker) {
  int64_t out = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        Query("SELECT COUNT(*) FROM units u JOIN runs r ON r.rid = u.run "
                              "WHERE u.worker_id = ?2 AND r.task_name = ?1 AND u.kind = 'unit' AND "
                              "u.status IN ('assigned', 'completed', 'accepted', 'rejected', 'soft_rejected')"));
    q.Bind(1, task_name).Bind(2, worker);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    out = row ? q.Int(0) : 0;
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::RunAgents(const std::string& run_id) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT "WHERE a.run = ?1 ORDER BY a.rowid"));
    q.Bind(1, rid);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> SqliteStore::UnitStatusCounts(const std::string& run_id) {
  std::vector<std::pair<std::string, int64_t>> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT status, COUNT(*) FROM units WHERE run = ?1 AND kind = 'unit' "
                                             "GROUP BY status ORDER BY status"));
    q.Bind(1, rid);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.emplace_back(q.Text(0), q.Int(1));
    }
  }));
  return out;
}

Result<int64_t> SqliteStore::ReviewUnits(const std::string& run_id, const std::vector<int64_t>& unit_ids,
                                         const std::string& new_status, const std::vector<OutboxRow>& outbox) {
  if (new_status != "accepted" && new_status != "rejected" && new_status != "soft_rejected") {
    return Status::InvalidArgument("review status must be accepted, rejected or soft_rejected, got '" + new_status +
                                   "'");
  }
  for (const OutboxRow& row : outbox) CG_RETURN_IF_ERROR(store_outbox::CheckNewOutboxRow(row));
  int64_t changed = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = ?3 WHERE id = ?1 AND run = ?2 AND "
                                             "status IN ('completed', 'accepted', 'rejected', 'soft_rejected') "
                                             "AND status <> ?3"));
    // The agent that submitted the unit follows: accepted -> approved, rejected, soft_rejected.
    CG_ASSIGN_OR_RETURN(SqliteQuery a, Query("UPDATE agents SET status = ?2 WHERE id = (SELECT agent_id FROM units "
                                             "WHERE id = ?1) AND status IN ('completed', 'approved', 'rejected', "
                                             "'soft_rejected')"));
    const std::string agent_status = new_status == "accepted" ? "approved" : new_status;
    for (int64_t id : unit_ids) {
      CG_RETURN_IF_ERROR(q.Bind(1, id).Bind(2, rid).Bind(3, new_status).Run());
      const int64_t n = q.Changes();
      changed += n;
      q.ResetKeepBindings();
      if (n > 0) {
        CG_RETURN_IF_ERROR(a.Bind(1, id).Bind(2, agent_status).Run());
        a.ResetKeepBindings();
      }
    }
    return InsertOutbox(outbox, 0);
  }));
  return changed;
}

Status SqliteStore::SetRunProviderState(const std::string& run_id, const std::string& state_json) {
  if (!nlohmann::json::accept(state_json) || !nlohmann::json::parse(state_json).is_object()) {
    return Status::InvalidArgument("a run's provider state must be a JSON object");
  }
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE runs SET provider_state = ?2 WHERE rid = ?1"));
    return q.Bind(1, rid).Bind(2, state_json).Run();
  });
}

Result<int64_t> SqliteStore::CountSessionSubmissions(const std::string& run_id, WorkerId worker,
                                                     const std::string& session) {
  int64_t out = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    // agents_by_run_worker narrows to the worker's agents in the run: a handful.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT COUNT(*) FROM agents WHERE run = ?1 AND worker_id = ?2 AND "
                                             "kind IN ('unit', 'gold', 'screening') AND session = ?3 AND "
                                             "submitted_at IS NOT NULL"));
    q.Bind(1, rid).Bind(2, worker).Bind(3, session);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    out = row ? q.Int(0) : 0;
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::OpenAgentsOfSession(const std::string& run_id,
                                                                  const std::string& session) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    // The run's open agents (a partial index: only open ones), filtered by session.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT_INDEXED("agents_open_by_run_worker")
                                             "WHERE a.run = ?1 AND a.status IN ('in_task', 'onboarding') AND "
                                             "a.session = ?2 ORDER BY a.rowid"));
    q.Bind(1, rid).Bind(2, session);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

// ---- secrets -----------------------------------------------------------------------------------
Result<std::string> SqliteStore::DatabaseSecret(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("a secret needs a name");
  std::string out;
  auto read = [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT value FROM secrets WHERE name = ?1"));
    q.Bind(1, name);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (row) out = q.Text(0);
    return Status::Ok();
  };
  // Made once per database: read without the write lock first.
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, read));
  if (!out.empty()) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    // Whoever inserts first wins; everyone reads the winner's value.
    const std::string fresh = env_->RandomHex128() + env_->RandomHex128();
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO secrets (name, value) VALUES (?1, ?2) "
                                             "ON CONFLICT (name) DO NOTHING"));
    CG_RETURN_IF_ERROR(q.Bind(1, name).Bind(2, fresh).Run());
    return read();
  }));
  if (out.empty()) return Status::Internal("secret '" + name + "' vanished after it was stored");
  return out;
}

// ---- provider outbox -----------------------------------------------------------------------------
Status SqliteStore::EnqueueOutbox(const std::vector<OutboxRow>& rows) {
  for (const OutboxRow& row : rows) CG_RETURN_IF_ERROR(store_outbox::CheckNewOutboxRow(row));
  if (rows.empty()) return Status::Ok();
  return Transact(TxKind::kWrite, [&]() -> Status { return InsertOutbox(rows, 0); });
}

Result<std::vector<OutboxRow>> SqliteStore::ClaimOutbox(const std::string& claimer, int64_t now,
                                                        int64_t lease_micros, int limit) {
  if (claimer.empty()) return Status::InvalidArgument("a claimer needs a name");
  if (lease_micros <= 0) return Status::InvalidArgument("a claim's lease must be positive");
  std::vector<OutboxRow> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    out.clear();
    // The single writer serialises claims. Walks the undelivered rows in id order and stops after
    // `limit` takers; each candidate costs one probe of the key's first undelivered row.
    CG_ASSIGN_OR_RETURN(
        SqliteQuery q,
        Query("UPDATE outbox SET claimed_by = ?3, claimed_until = ?4 WHERE id IN ("
              "SELECT o.id FROM outbox o INDEXED BY outbox_undelivered "
              "WHERE o.state IN ('pending', 'retrying') AND o.next_attempt_at <= ?1 AND o.claimed_until <= ?1 "
              "AND NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_undelivered_by_key "
              "WHERE p.order_key = o.order_key AND p.state IN ('pending', 'retrying') AND p.id < o.id) "
              "ORDER BY o.id LIMIT ?2) "
              "RETURNING id, provider, kind, run_id, order_key, payload_json, state, attempts, next_attempt_at, "
              "last_error, progress_json, created_at, updated_at, claimed_by, claimed_until"));
    q.Bind(1, now).Bind(2, limit).Bind(3, claimer).Bind(4, now + lease_micros);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) break;
      out.push_back(ReadOutboxRow(q));
    }
    return Status::Ok();
  }));
  // RETURNING gives no order.
  std::sort(out.begin(), out.end(), [](const OutboxRow& a, const OutboxRow& b) { return a.id < b.id; });
  return out;
}

Status SqliteStore::UpdateOutboxRowInTx(const OutboxRow& row, bool release, int64_t now) {
  {
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        Query("UPDATE outbox SET state = ?3, attempts = ?4, next_attempt_at = ?5, last_error = ?6, "
                              "progress_json = ?7, updated_at = ?8, "
                              "claimed_by = CASE WHEN ?9 THEN '' ELSE claimed_by END, "
                              "claimed_until = CASE WHEN ?9 THEN 0 ELSE claimed_until END "
                              "WHERE id = ?1 AND claimed_by = ?2"));
    q.Bind(1, row.id).Bind(2, row.claimed_by).Bind(3, row.state).Bind(4, row.attempts);
    q.Bind(5, row.next_attempt_at).Bind(6, row.last_error);
    q.Bind(7, row.progress_json.empty() ? std::string_view("{}") : std::string_view(row.progress_json));
    q.Bind(8, now).Bind(9, release ? 1 : 0);
    CG_RETURN_IF_ERROR(q.Run());
    if (q.Changes() == 1) return Status::Ok();
  }
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT claimed_by FROM outbox WHERE id = ?1"));
  q.Bind(1, row.id);
  CG_ASSIGN_OR_RETURN(bool found, q.Next());
  if (!found) return Status::NotFound("outbox row " + std::to_string(row.id) + " does not exist");
  return store_outbox::NotHeld(row, q.Text(0));
}

Status SqliteStore::UpdateOutboxRow(const OutboxRow& row, bool release) {
  if (!store_outbox::IsOutboxState(row.state)) return store_outbox::BadState(row.state);
  return Transact(TxKind::kWrite, [&]() -> Status { return UpdateOutboxRowInTx(row, release, env_->NowMicros()); });
}

Result<std::vector<Status>> SqliteStore::UpdateOutboxRows(const std::vector<OutboxRow>& rows, bool release) {
  CG_RETURN_IF_ERROR(CheckOutboxUpdates(rows));
  std::vector<Status> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    out.clear();
    const int64_t now = env_->NowMicros();
    for (const OutboxRow& row : rows) {
      Status s = UpdateOutboxRowInTx(row, release, now);
      // A row lost to another drainer (or gone) is that row's answer; anything else fails the call.
      if (!s.ok() && !s.IsConflict() && !s.IsNotFound()) return s;
      out.push_back(std::move(s));
    }
    return Status::Ok();
  }));
  return out;
}

Result<OutboxCounts> SqliteStore::CountOutbox() {
  OutboxCounts out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    out = OutboxCounts{};
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT state, COUNT(*), MIN(created_at) FROM outbox GROUP BY state"));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      const std::string state = q.Text(0);
      const int64_t n = q.Int(1);
      const bool undelivered = state == "pending" || state == "retrying";
      if (state == "pending") out.pending = n;
      if (state == "retrying") out.retrying = n;
      if (state == "done") out.done = n;
      if (state == "failed") out.failed = n;
      if (undelivered && (!out.oldest_undelivered_at || q.Int(2) < *out.oldest_undelivered_at)) {
        out.oldest_undelivered_at = q.Int(2);
      }
    }
  }));
  return out;
}

Result<std::vector<OutboxRow>> SqliteStore::ListOutbox(const std::vector<std::string>& states, int64_t after_id,
                                                       int64_t limit) {
  for (const std::string& s : states) {
    if (!store_outbox::IsOutboxState(s)) return store_outbox::BadState(s);
  }
  std::vector<OutboxRow> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    // At most four distinct states: the filter binds four slots, repeating the first to fill them.
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        Query(states.empty() ? CG_OUTBOX_SELECT "WHERE id > ?1 ORDER BY id LIMIT ?2"
                                             : CG_OUTBOX_SELECT "WHERE id > ?1 AND state IN (?3, ?4, ?5, ?6) "
                                                                "ORDER BY id LIMIT ?2"));
    q.Bind(1, after_id).Bind(2, limit);
    if (!states.empty()) {
      std::vector<std::string> slots(states.begin(), states.end());
      std::sort(slots.begin(), slots.end());
      slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
      for (int i = 0; i < 4; ++i) q.Bind(3 + i, slots[static_cast<size_t>(i) < slots.size() ? i : 0]);
    }
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(ReadOutboxRow(q));
    }
  }));
  return out;
}

}  // namespace crowdgate

// ---- requester pages: one page at a time ---------------------------------------------------------
namespace crowdgate {

// The agent columns of CG_AGENT_SELECT plus the rowid (the page cursor) as column 17. The kind test
// counts a unit that decides a screening as "screening", as export does.
#define CG_AGENT_PAGE_SELECT                                                                                    \
  "SELECT a.id, a.token_hash, r.id, a.unit_id, a.worker_id, w.provider, w.name, a.kind, a.status, "            \
  "a.item_index, a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result, " \
  "a.rowid FROM agents a JOIN runs r ON r.rid = a.run JOIN workers w ON w.id = a.worker_id "
#define CG_AGENT_PAGE_FILTER                                                                        \
  "AND (?3 = '' OR a.status = ?3) AND (?4 = '' OR (CASE WHEN a.kind = 'unit' AND a.eval_set = "    \
  "'screening' THEN 'screening' ELSE a.kind END) = ?4) ORDER BY a.rowid LIMIT ?5"

Result<AgentPage> SqliteStore::ListRunAgents(const std::string& run_id, const AgentFilter& filter, int64_t cursor,
                                             int64_t limit) {
  AgentPage page;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    page = AgentPage{};
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    // With a worker: agents_by_run_worker narrows to their agents; without: the rowid walk from the
    // cursor stops after `limit` matches.
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        filter.worker ? Query(CG_AGENT_PAGE_SELECT "WHERE a.run = ?1 AND a.worker_id = ?6 AND "
                                                                   "a.rowid > ?2 " CG_AGENT_PAGE_FILTER)
                                      : Query(CG_AGENT_PAGE_SELECT "WHERE a.run = ?1 AND a.rowid > ?2 " CG_AGENT_PAGE_FILTER));
    q.Bind(1, rid).Bind(2, cursor).Bind(3, std::string_view(filter.status)).Bind(4, std::string_view(filter.kind));
    q.Bind(5, limit);
    if (filter.worker) q.Bind(6, *filter.worker);
    int64_t last = 0;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) break;
      page.agents.push_back(ReadAgent(q));
      last = q.Int(17);
    }
    if (static_cast<int64_t>(page.agents.size()) == limit) page.next_cursor = last;
    return Status::Ok();
  }));
  return page;
}

Result<std::vector<WorkerRunStats>> SqliteStore::ListRunWorkerStats(const std::string& run_id, WorkerId after_worker,
                                                                    int64_t limit) {
  std::vector<WorkerRunStats> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    // agents_by_run_worker walks the run's workers in id order; the LIMIT stops after one page.
    CG_ASSIGN_OR_RETURN(
        SqliteQuery q,
        Query("SELECT a.worker_id, w.provider, w.name, "
              "SUM(a.kind = 'unit' AND a.eval_set <> 'screening' AND a.submitted_at IS NOT NULL), "
              "SUM(a.status IN ('in_task', 'onboarding')), "
              "SUM(a.kind = 'gold' AND a.check_result = 'pass'), SUM(a.kind = 'gold' AND a.check_result = 'fail'), "
              "SUM((a.kind = 'screening' OR a.eval_set = 'screening') AND a.check_result = 'pass'), "
              "SUM((a.kind = 'screening' OR a.eval_set = 'screening') AND a.check_result = 'fail'), "
              "(SELECT o.status FROM agents o WHERE o.run = ?1 AND o.worker_id = a.worker_id AND "
              "o.kind = 'onboarding' ORDER BY o.rowid DESC LIMIT 1), "
              "COALESCE(SUM(CASE WHEN a.kind = 'unit' AND a.eval_set <> 'screening' AND a.submitted_at IS NOT NULL "
              "THEN a.submitted_at - a.created_at END), 0), "
              "MIN(a.created_at), MAX(MAX(a.created_at), COALESCE(MAX(a.submitted_at), 0)) "
              "FROM agents a JOIN workers w ON w.id = a.worker_id WHERE a.run = ?1 AND a.worker_id > ?2 "
              "GROUP BY a.worker_id ORDER BY a.worker_id LIMIT ?3"));
    q.Bind(1, rid).Bind(2, after_worker).Bind(3, limit);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      WorkerRunStats s;
      s.worker_id = q.Int(0);
      s.worker = WorkerRef{q.Text(1), q.Text(2)};
      s.units_submitted = q.Int(3);
      s.units_open = q.Int(4);
      s.golds_right = q.Int(5);
      s.golds_wrong = q.Int(6);
      s.screening_passed = q.Int(7);
      s.screening_failed = q.Int(8);
      s.onboarding = q.Text(9);
      s.unit_seconds_total_micros = q.Int(10);
      s.first_seen = q.Int(11);
      s.last_seen = q.Int(12);
      out.push_back(std::move(s));
    }
  }));
  return out;
}

Result<std::vector<std::pair<int64_t, int64_t>>> SqliteStore::RunThroughput(const std::string& run_id,
                                                                            int64_t bucket_micros, int64_t since) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (bucket_micros <= 0) return Status::InvalidArgument("throughput bucket must be above 0");
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT (a.submitted_at / ?2) * ?2, COUNT(*) FROM agents a "
                                             "WHERE a.run = ?1 AND a.submitted_at IS NOT NULL AND a.submitted_at >= ?3 "
                                             "GROUP BY 1 ORDER BY 1"));
    q.Bind(1, rid).Bind(2, bucket_micros).Bind(3, since);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.emplace_back(q.Int(0), q.Int(1));
    }
  }));
  return out;
}

}  // namespace crowdgate
