// PgStore: the provider outbox and database secrets. See pg_store.hpp for the contract (the outbox
// lock, claims with SKIP LOCKED) and pg_store.cpp for the plumbing and the schema.
#include <algorithm>
#include <map>
#include <set>

#include "store/outbox_rows.hpp"
#include "store/postgres/pg_internal.hpp"
#include "store/postgres/pg_store.hpp"

namespace crowdgate {

using pg_internal::Args;
using pg_internal::Int;
using pg_internal::PgArray;
using pg_internal::Sql;
using pg_internal::Text;
using pg_internal::Tx;

namespace {

// Transaction-level advisory lock taken by every transaction that inserts outbox rows (ASCII
// "cgoutbx1"). Why: ids come from a sequence, and ids taken by concurrent transactions can commit
// out of order. Were row 11 of a key visible while row 10 of the same key was still uncommitted, a
// drainer would find 11 first in its key and deliver it before 10. Under the lock, ids are handed
// out in commit order. Grant writers take it while holding the audit lock; nobody takes the audit
// lock while holding this one, so the two cannot deadlock.
constexpr int64_t kOutboxLockKey = 0x63676f7574627831;

#define CG_PG_OUTBOX_COLUMNS                                                                              \
  "id, provider, kind, run_id, order_key, payload_json, state, attempts, next_attempt_at, last_error, " \
  "progress_json, created_at, updated_at, claimed_by, claimed_until"

constexpr Sql kLockOutbox{"cg_lock_outbox", "SELECT pg_advisory_xact_lock(7162816282610530353)"};
// Rows in array order, so ids increase in that order; updated_at = created_at.
constexpr Sql kOutboxInsert{
    "cg_outbox_insert",
    "INSERT INTO outbox (provider, kind, run_id, order_key, payload_json, next_attempt_at, progress_json, created_at, "
    "updated_at, state, attempts, last_error, claimed_by, claimed_until) "
    "SELECT t.provider, t.kind, t.run_id, t.order_key, t.payload, t.next_at, t.progress, t.created, t.created, "
    "'pending', 0, '', '', 0 "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[]) "
    "WITH ORDINALITY AS t (provider, kind, run_id, order_key, payload, next_at, progress, created, ord) "
    "ORDER BY t.ord"};
// One statement picks and marks: the undelivered rows in id order (outbox_undelivered), due, not
// held under a live claim, first of their key among the undelivered (outbox_undelivered_by_key),
// skipping rows another transaction has locked (it is claiming or updating them).
constexpr Sql kOutboxClaim{
    "cg_outbox_claim",
    "WITH c AS (SELECT o.id FROM outbox o "
    "WHERE o.state IN ('pending', 'retrying') AND o.next_attempt_at <= $1 AND o.claimed_until <= $1 "
    "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.order_key = o.order_key AND "
    "p.state IN ('pending', 'retrying') AND p.id < o.id) "
    "ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED) "
    "UPDATE outbox o SET claimed_by = $3, claimed_until = $4 FROM c WHERE o.id = c.id "
    "RETURNING o.id, o.provider, o.kind, o.run_id, o.order_key, o.payload_json, o.state, o.attempts, "
    "o.next_attempt_at, o.last_error, o.progress_json, o.created_at, o.updated_at, o.claimed_by, o.claimed_until"};
constexpr Sql kOutboxUpdate{"cg_outbox_update",
                            "UPDATE outbox SET state = $3, attempts = $4, next_attempt_at = $5, last_error = $6, "
                            "progress_json = $7, updated_at = $8, "
                            "claimed_by = CASE WHEN $9::int = 1 THEN '' ELSE claimed_by END, "
                            "claimed_until = CASE WHEN $9::int = 1 THEN 0 ELSE claimed_until END "
                            "WHERE id = $1 AND claimed_by = $2 RETURNING id"};
constexpr Sql kOutboxHolder{"cg_outbox_holder", "SELECT claimed_by FROM outbox WHERE id = $1"};
// UpdateOutboxRows: every row in one statement; a row not held by its claimer is left alone.
constexpr Sql kOutboxUpdateMany{
    "cg_outbox_update_many",
    "UPDATE outbox o SET state = t.state, attempts = t.attempts, next_attempt_at = t.next_at, last_error = t.err, "
    "progress_json = t.progress, updated_at = $8, "
    "claimed_by = CASE WHEN $9::int = 1 THEN '' ELSE o.claimed_by END, "
    "claimed_until = CASE WHEN $9::int = 1 THEN 0 ELSE o.claimed_until END "
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[]) "
    "AS t (id, claimer, state, attempts, next_at, err, progress) "
    "WHERE o.id = t.id AND o.claimed_by = t.claimer RETURNING o.id"};
constexpr Sql kOutboxHolders{"cg_outbox_holders",
                             "SELECT id, claimed_by FROM outbox WHERE id = ANY($1::bigint[])"};
constexpr Sql kOutboxCount{"cg_outbox_count", "SELECT state, COUNT(*), MIN(created_at) FROM outbox GROUP BY state"};
constexpr Sql kOutboxList{"cg_outbox_list", "SELECT " CG_PG_OUTBOX_COLUMNS " FROM outbox WHERE id > $1 AND "
                                            "(cardinality($3::text[]) = 0 OR state = ANY($3::text[])) "
                                            "ORDER BY id LIMIT $2"};
constexpr Sql kSecretGet{"cg_secret_get", "SELECT value FROM secrets WHERE name = $1"};
constexpr Sql kSecretInsert{"cg_secret_insert",
                            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"};

OutboxRow ReadOutboxRow(const pqxx::row& r) {
  OutboxRow o;
  o.id = Int(r[0]);
  o.provider = Text(r[1]);
  o.kind = Text(r[2]);
  o.run_id = Text(r[3]);
  o.order_key = Text(r[4]);
  o.payload_json = Text(r[5]);
  o.state = Text(r[6]);
  o.attempts = Int(r[7]);
  o.next_attempt_at = Int(r[8]);
  o.last_error = Text(r[9]);
  o.progress_json = Text(r[10]);
  o.created_at = Int(r[11]);
  o.updated_at = Int(r[12]);
  o.claimed_by = Text(r[13]);
  o.claimed_until = Int(r[14]);
  return o;
}

}  // namespace

void PgStore::InsertOutbox(Tx& tx, const std::vector<OutboxRow>& rows) {
  if (rows.empty()) return;
  static_assert(kOutboxLockKey == 7162816282610530353, "keep kLockOutbox in step");
  tx.Run(kLockOutbox);
  const int64_t now = env_->NowMicros();
  PgArray provider, kind, run_id, order_key, payload, next_at, progress, created;
  for (const OutboxRow& r : rows) {
    provider.Add(r.provider);
    kind.Add(r.kind);
    run_id.Add(r.run_id);
    order_key.Add(r.order_key);
    payload.Add(r.payload_json);
    next_at.Add(r.next_attempt_at);
    progress.Add(r.progress_json.empty() ? std::string_view("{}") : std::string_view(r.progress_json));
    created.Add(r.created_at != 0 ? r.created_at : now);
  }
  tx.Run(kOutboxInsert, Args(provider, kind, run_id, order_key, payload, next_at, progress, created));
}

// ---- secrets -------------------------------------------------------------------------------------
Result<std::string> PgStore::DatabaseSecret(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("a secret needs a name");
  std::string out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    pqxx::result r = tx.Run(kSecretGet, Args(name));
    out = r.empty() ? std::string() : Text(r[0][0]);
    return Status::Ok();
  }));
  if (!out.empty()) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    // Whoever inserts first wins (a concurrent insert waits for the winner's commit, then does
    // nothing); everyone reads the winner's value.
    tx.Run(kSecretInsert, Args(name, env_->RandomHex128() + env_->RandomHex128()));
    pqxx::result r = tx.Run(kSecretGet, Args(name));
    out = r.empty() ? std::string() : Text(r[0][0]);
    return Status::Ok();
  }));
  if (out.empty()) return Status::Internal("secret '" + name + "' vanished after it was stored");
  return out;
}

// ---- provider outbox -----------------------------------------------------------------------------
Status PgStore::EnqueueOutbox(const std::vector<OutboxRow>& rows) {
  for (const OutboxRow& row : rows) CG_RETURN_IF_ERROR(store_outbox::CheckNewOutboxRow(row));
  if (rows.empty()) return Status::Ok();
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    InsertOutbox(tx, rows);
    return Status::Ok();
  });
}

Result<std::vector<OutboxRow>> PgStore::ClaimOutbox(const std::string& claimer, int64_t now, int64_t lease_micros,
                                                    int limit) {
  if (claimer.empty()) return Status::InvalidArgument("a claimer needs a name");
  if (lease_micros <= 0) return Status::InvalidArgument("a claim's lease must be positive");
  std::vector<OutboxRow> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kOutboxClaim, Args(now, limit, claimer, now + lease_micros))) {
      out.push_back(ReadOutboxRow(row));
    }
    return Status::Ok();
  }));
  // RETURNING gives no order.
  std::sort(out.begin(), out.end(), [](const OutboxRow& a, const OutboxRow& b) { return a.id < b.id; });
  return out;
}

Status PgStore::UpdateOutboxRow(const OutboxRow& row, bool release) {
  if (!store_outbox::IsOutboxState(row.state)) return store_outbox::BadState(row.state);
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    const std::string progress = row.progress_json.empty() ? std::string("{}") : row.progress_json;
    if (!tx.Run(kOutboxUpdate, Args(row.id, row.claimed_by, row.state, row.attempts, row.next_attempt_at,
                                    row.last_error, progress, env_->NowMicros(), release ? 1 : 0))
             .empty()) {
      return Status::Ok();
    }
    pqxx::result r = tx.Run(kOutboxHolder, Args(row.id));
    if (r.empty()) return Status::NotFound("outbox row " + std::to_string(row.id) + " does not exist");
    return store_outbox::NotHeld(row, Text(r[0][0]));
  });
}

Result<std::vector<Status>> PgStore::UpdateOutboxRows(const std::vector<OutboxRow>& rows, bool release) {
  CG_RETURN_IF_ERROR(CheckOutboxUpdates(rows));
  std::vector<Status> out;
  if (rows.empty()) return out;
  PgArray id, claimer, state, attempts, next_at, err, progress;
  for (const OutboxRow& r : rows) {
    id.Add(r.id);
    claimer.Add(r.claimed_by);
    state.Add(r.state);
    attempts.Add(r.attempts);
    next_at.Add(r.next_attempt_at);
    err.Add(r.last_error);
    progress.Add(r.progress_json.empty() ? std::string_view("{}") : std::string_view(r.progress_json));
  }
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    out.assign(rows.size(), Status::Ok());
    std::set<int64_t> written;
    for (const pqxx::row& r : tx.Run(kOutboxUpdateMany, Args(id, claimer, state, attempts, next_at, err, progress,
                                                             env_->NowMicros(), release ? 1 : 0))) {
      written.insert(Int(r[0]));
    }
    if (written.size() == rows.size()) return Status::Ok();
    // Say why for the rest: gone, or held by someone else.
    PgArray missed;
    for (const OutboxRow& r : rows) {
      if (written.count(r.id) == 0) missed.Add(r.id);
    }
    std::map<int64_t, std::string> holders;
    for (const pqxx::row& r : tx.Run(kOutboxHolders, Args(missed))) holders[Int(r[0])] = Text(r[1]);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (written.count(rows[i].id) != 0) continue;
      auto h = holders.find(rows[i].id);
      out[i] = h == holders.end()
                   ? Status::NotFound("outbox row " + std::to_string(rows[i].id) + " does not exist")
                   : store_outbox::NotHeld(rows[i], h->second);
    }
    return Status::Ok();
  }));
  return out;
}

Result<OutboxCounts> PgStore::CountOutbox() {
  OutboxCounts out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out = OutboxCounts{};
    for (const pqxx::row& row : tx.Run(kOutboxCount)) {
      const std::string state = Text(row[0]);
      const int64_t n = Int(row[1]);
      if (state == "pending") out.pending = n;
      if (state == "retrying") out.retrying = n;
      if (state == "done") out.done = n;
      if (state == "failed") out.failed = n;
      if ((state == "pending" || state == "retrying") &&
          (!out.oldest_undelivered_at || Int(row[2]) < *out.oldest_undelivered_at)) {
        out.oldest_undelivered_at = Int(row[2]);
      }
    }
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<OutboxRow>> PgStore::ListOutbox(const std::vector<std::string>& states, int64_t after_id,
                                                   int64_t limit) {
  PgArray filter;
  for (const std::string& s : states) {
    if (!store_outbox::IsOutboxState(s)) return store_outbox::BadState(s);
    filter.Add(s);
  }
  std::vector<OutboxRow> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kOutboxList, Args(after_id, limit, filter))) out.push_back(ReadOutboxRow(row));
    return Status::Ok();
  }));
  return out;
}

}  // namespace crowdgate
