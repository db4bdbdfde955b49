// SqliteStore: database secrets and the provider outbox. See sqlite_store.hpp for the contract and
// sqlite_store.cpp for the plumbing.
#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "store/outbox_rows.hpp"
#include "store/sqlite/sqlite_internal.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace crowdgate {

using sqlite_internal::kOutboxBatch;
using sqlite_internal::kOutboxColumns;

namespace {

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

}  // namespace

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
