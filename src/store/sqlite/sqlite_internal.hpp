// Internals shared by the SQLite backend's translation units (sqlite_store.cpp and the
// sqlite_store_*.cpp files): the cached-statement handle, the column lists several queries share and
// the bulk-insert sizes. Not part of any public interface.
#pragma once

#include <sqlite3.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "crowdgate/status.hpp"
#include "crowdgate/store.hpp"

namespace crowdgate {

namespace sqlite_internal {

inline constexpr size_t kProgressEvery = 10000;

// Bulk paths insert several rows per statement: executing a statement opens a cursor on the table
// and on each index, which costs as much as the insert itself, so one statement per row roughly
// doubles the time of a million-row import.
inline constexpr int kAuditBatch = 32;
inline constexpr int kAuditColumns = 10;
inline constexpr int kItemBatch = 64;
inline constexpr int kGrantBatch = 32;
inline constexpr int kGrantColumns = 6;
inline constexpr int kOutboxBatch = 32;
inline constexpr int kOutboxColumns = 8;

// ---- status mapping ----------------------------------------------------------------------------
Status FromSqlite(sqlite3* db, int rc, std::string_view what);

}  // namespace sqlite_internal

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
    if (bind_rc_ != SQLITE_OK) return sqlite_internal::FromSqlite(db_, bind_rc_, "binding a parameter");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return sqlite_internal::FromSqlite(db_, rc, "executing a statement");
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

namespace sqlite_internal {

// Reads the columns of CG_AGENT_SELECT (and of the queries that start with them).
Result<AgentRecord> ReadAgent(const SqliteQuery& q);

}  // namespace sqlite_internal

}  // namespace crowdgate
