// PgStore: grants and the audit log (the change feed). See pg_store.hpp for the contract and
// pg_store.cpp for the plumbing, the schema and the audit lock.
#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "core/grant_rule.hpp"
#include "store/outbox_rows.hpp"
#include "store/postgres/pg_internal.hpp"
#include "store/postgres/pg_store.hpp"

namespace crowdgate {

using pg_internal::Args;
using pg_internal::Int;
using pg_internal::kProgressEvery;
using pg_internal::OptInt;
using pg_internal::PgArray;
using pg_internal::Sql;
using pg_internal::Text;
using pg_internal::Tx;

namespace {

// Ops per round of bulk statements in ApplyGrantOps (arrays of up to this many elements).
constexpr size_t kGrantChunk = 5000;
// Rows per page in ScanAllGrants (a cache load never holds the whole table in one result).
constexpr int64_t kScanPage = 10000;

#define CG_PG_GRANT_SELECT                                                                            \
  "SELECT g.worker_id, w.provider, w.name, g.qual_id, q.name, g.value, g.granted_at, g.updated_at, " \
  "g.expires_at, g.actor FROM grants g JOIN workers w ON w.id = g.worker_id "                        \
  "JOIN qualifications q ON q.id = g.qual_id "
#define CG_PG_AUDIT_SELECT                                                                                 \
  "SELECT a.seq, a.at, a.kind, a.worker_id, w.provider, w.name, a.qual_id, a.qualification, a.old_value, " \
  "a.new_value, a.new_expires_at, a.actor, a.reason FROM audit a LEFT JOIN workers w ON w.id = a.worker_id "
// Takes N consecutive seqs from audit's sequence in one step (nextval, then setval to the last one)
// and inserts the rows with them, in array order: seq = first + position. Only ever run under the
// audit lock, so no other transaction takes seqs in between (see kAuditLockKey in pg_store.cpp).
// N is the first parameter, the ten columns' arrays the next ten.
#define CG_PG_AUDIT_INSERT(N, A)                                                                                   \
  "blk AS (SELECT setval(pg_get_serial_sequence('audit', 'seq'), "                                                \
  "nextval(pg_get_serial_sequence('audit', 'seq')) + $" N "::bigint - 1) AS last) "                               \
  "INSERT INTO audit (seq, at, kind, worker_id, qual_id, qualification, old_value, new_value, new_expires_at, "    \
  "actor, reason) SELECT blk.last - $" N "::bigint + t.ord, t.at, t.kind, t.worker_id, t.qual_id, "               \
  "t.qualification, t.old_value, t.new_value, t.new_expires_at, t.actor, t.reason FROM blk, unnest(" A ") "       \
  "WITH ORDINALITY AS t (at, kind, worker_id, qual_id, qualification, old_value, new_value, new_expires_at, " \
  "actor, reason, ord) RETURNING seq"

constexpr Sql kAuditInsert{"cg_audit_insert",
                           "WITH " CG_PG_AUDIT_INSERT("1", "$2::bigint[], $3::text[], $4::bigint[], $5::bigint[], "
                                                          "$6::text[], $7::bigint[], $8::bigint[], $9::bigint[], "
                                                          "$10::text[], $11::text[]")};
// Everything ApplyGrantOps needs to know about the (worker, qualification) pairs of a chunk, in one
// query: the worker's id (NULL: never seen), the qualification's name (NULL: no such
// qualification) and the stored grant (NULL: none).
constexpr Sql kGrantOpLookup{"cg_grant_op_lookup",
                             "SELECT k.ord, w.id, q.name, g.value, g.granted_at, g.expires_at "
                             "FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY "
                             "AS k (provider, name, qual_id, ord) "
                             "LEFT JOIN workers w ON w.provider = k.provider AND w.name = k.name "
                             "LEFT JOIN qualifications q ON q.id = k.qual_id "
                             "LEFT JOIN grants g ON g.worker_id = w.id AND g.qual_id = k.qual_id"};
constexpr Sql kWorkersByRefs{"cg_workers_by_refs",
                             "SELECT w.id, w.provider, w.name FROM workers w "
                             "JOIN unnest($1::text[], $2::text[]) AS k (provider, name) "
                             "ON w.provider = k.provider AND w.name = k.name"};
constexpr Sql kWorkersInsert{"cg_workers_insert",
                             "INSERT INTO workers (provider, name, created_at) "
                             "SELECT k.provider, k.name, $3::bigint "
                             "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (provider, name, ord) "
                             "ORDER BY k.ord ON CONFLICT (provider, name) DO NOTHING RETURNING id, provider, name"};
// The chunk's writes in one statement: grants removed, grants inserted or replaced (updated_at =
// $7 for all), and the audit rows.
constexpr Sql kGrantsWrite{
    "cg_grants_write",
    "WITH del AS (DELETE FROM grants g USING unnest($1::bigint[], $2::bigint[]) AS k (worker_id, qual_id) "
    "WHERE g.worker_id = k.worker_id AND g.qual_id = k.qual_id), "
    "up AS (INSERT INTO grants (worker_id, qual_id, value, granted_at, updated_at, expires_at, actor) "
    "SELECT k.w, k.q, k.v, k.g, $7::bigint, k.e, k.a FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], "
    "$6::bigint[], $8::bigint[], $9::text[]) AS k (w, q, v, g, e, a) "
    "ON CONFLICT (worker_id, qual_id) DO UPDATE SET value = EXCLUDED.value, granted_at = EXCLUDED.granted_at, "
    "updated_at = EXCLUDED.updated_at, expires_at = EXCLUDED.expires_at, actor = EXCLUDED.actor), " CG_PG_AUDIT_INSERT(
        "10", "$11::bigint[], $12::text[], $13::bigint[], $14::bigint[], $15::text[], $16::bigint[], $17::bigint[], "
              "$18::bigint[], $19::text[], $20::text[]")};

constexpr Sql kQualExists{"cg_qual_exists", "SELECT 1 FROM qualifications WHERE id = $1"};
constexpr Sql kGrantsForQual{"cg_grants_for_qual", CG_PG_GRANT_SELECT "WHERE g.qual_id = $1 ORDER BY g.worker_id"};
constexpr Sql kGrantsForWorker{"cg_grants_for_worker", CG_PG_GRANT_SELECT "WHERE g.worker_id = $1 ORDER BY g.qual_id"};
constexpr Sql kGrantsPage{"cg_grants_page", CG_PG_GRANT_SELECT
                          "WHERE (g.worker_id, g.qual_id) > ($1, $2) ORDER BY g.worker_id, g.qual_id LIMIT $3"};
// Per qualification, one range of grants_by_qual (qual_id, expires_at <= now); NULL expiries never match.
constexpr Sql kExpiredGrants{"cg_expired_grants",
                             "SELECT g.worker_id, w.provider, w.name, g.qual_id, q.name, g.value, g.granted_at, "
                             "g.updated_at, g.expires_at, g.actor FROM qualifications q "
                             "JOIN grants g ON g.qual_id = q.id AND g.expires_at <= $1 "
                             "JOIN workers w ON w.id = g.worker_id "
                             "ORDER BY q.id, g.expires_at, g.worker_id LIMIT $2"};
constexpr Sql kMaxAuditSeq{"cg_max_audit_seq", "SELECT COALESCE(MAX(seq), 0) FROM audit"};
constexpr Sql kChangesSince{"cg_changes_since", CG_PG_AUDIT_SELECT "WHERE a.seq > $1 ORDER BY a.seq LIMIT $2"};
constexpr Sql kHistoryAll{"cg_history_all", CG_PG_AUDIT_SELECT "ORDER BY a.seq"};
constexpr Sql kHistoryQual{"cg_history_qual", CG_PG_AUDIT_SELECT "WHERE a.qual_id = $1 ORDER BY a.seq"};
constexpr Sql kHistoryWorker{"cg_history_worker", CG_PG_AUDIT_SELECT "WHERE a.worker_id = $1 ORDER BY a.seq"};
constexpr Sql kHistoryBoth{"cg_history_both",
                           CG_PG_AUDIT_SELECT "WHERE a.worker_id = $2 AND a.qual_id = $1 ORDER BY a.seq"};

AuditEntry::Kind KindFromName(std::string_view name) {
  if (name == "grant") return AuditEntry::Kind::kGrant;
  if (name == "change") return AuditEntry::Kind::kChange;
  if (name == "revoke") return AuditEntry::Kind::kRevoke;
  return AuditEntry::Kind::kQualificationDeleted;
}

Grant ReadGrant(const pqxx::row& r) {
  Grant g;
  g.worker_id = Int(r[0]);
  g.worker = WorkerRef{Text(r[1]), Text(r[2])};
  g.qual_id = Int(r[3]);
  g.qualification = Text(r[4]);
  g.value = Int(r[5]);
  g.granted_at = Int(r[6]);
  g.updated_at = Int(r[7]);
  g.expires_at = OptInt(r[8]);
  g.actor = Text(r[9]);
  return g;
}

AuditEntry ReadAudit(const pqxx::row& r) {
  AuditEntry e;
  e.seq = Int(r[0]);
  e.at = Int(r[1]);
  e.kind = KindFromName(Text(r[2]));
  e.worker_id = Int(r[3]);
  if (!r[4].is_null()) e.worker = WorkerRef{Text(r[4]), Text(r[5])};
  e.qual_id = Int(r[6]);
  e.qualification = Text(r[7]);
  e.old_value = OptInt(r[8]);
  e.new_value = OptInt(r[9]);
  e.new_expires_at = OptInt(r[10]);
  e.actor = Text(r[11]);
  e.reason = Text(r[12]);
  return e;
}

// Appends (*entries)[first..] as the count and the ten column arrays of CG_PG_AUDIT_INSERT.
void AddAuditArgs(const std::vector<AuditEntry>& entries, size_t first, Args* args) {
  PgArray at, kind, worker, qual, qualification, old_value, new_value, new_expires, actor, reason;
  for (size_t i = first; i < entries.size(); ++i) {
    const AuditEntry& e = entries[i];
    at.Add(e.at);
    kind.Add(AuditKindName(e.kind));
    worker.Add(e.worker_id == 0 ? std::optional<int64_t>() : std::optional<int64_t>(e.worker_id));
    qual.Add(e.qual_id);
    qualification.Add(e.qualification);
    old_value.Add(e.old_value);
    new_value.Add(e.new_value);
    new_expires.Add(e.new_expires_at);
    actor.Add(e.actor);
    reason.Add(e.reason);
  }
  args->Add(static_cast<int64_t>(entries.size() - first));
  for (const PgArray* a : {&at, &kind, &worker, &qual, &qualification, &old_value, &new_value, &new_expires, &actor,
                           &reason}) {
    args->Add(*a);
  }
}

// Fills in the seqs RETURNed by an audit insert: first + array position, so sorted order.
Status AssignSeqs(const pqxx::result& r, std::vector<AuditEntry>* entries, size_t first) {
  const size_t n = entries->size() - first;
  if (r.size() != n) {
    return Status::Internal("audit insert wrote " + std::to_string(r.size()) + " rows, expected " + std::to_string(n));
  }
  std::vector<int64_t> seqs;
  seqs.reserve(n);
  for (const pqxx::row& row : r) seqs.push_back(Int(row[0]));
  std::sort(seqs.begin(), seqs.end());
  for (size_t i = 0; i < n; ++i) (*entries)[first + i].seq = seqs[i];
  return Status::Ok();
}

// An unambiguous key for (provider, name, qualification): the provider is length-prefixed.
std::string PairKey(const WorkerRef& ref, QualId qual) {
  return std::to_string(ref.provider.size()) + ":" + ref.provider + ref.name + "\n" + std::to_string(qual);
}

}  // namespace

Status PgStore::InsertAudit(Tx& tx, std::vector<AuditEntry>* entries, size_t first) {
  if (entries->size() == first) return Status::Ok();
  Args args;
  AddAuditArgs(*entries, first, &args);
  return AssignSeqs(tx.Run(kAuditInsert, args), entries, first);
}

// Applies the ops a chunk at a time, each chunk in two or three statements: look up the
// (worker, qualification) pairs it touches, create the workers never seen, then, after replaying
// the ops in order in memory with DecideGrantStep (as SqliteStore does), write the final grants and
// the audit rows. The caller holds the audit lock, so no other transaction changes grants meanwhile.
Status PgStore::ApplyGrantOpsInTx(Tx& tx, const std::vector<GrantOp>& ops,
                                  const std::function<void(size_t)>& progress, std::vector<AuditEntry>* out) {
  const int64_t now = env_->NowMicros();
  out->reserve(out->size() + ops.size());
  for (size_t begin = 0; begin < ops.size(); begin += kGrantChunk) {
    const size_t end = std::min(ops.size(), begin + kGrantChunk);

    struct Pair {
      const GrantOp* op = nullptr;  // the first op on the pair (its worker and qualification)
      WorkerId worker = 0;          // 0: never seen
      bool qual_found = false;
      std::string qual_name;
      bool in_db = false;                // a grant row exists in the table now
      std::optional<StoredGrant> grant;  // the row after the ops replayed so far
      bool dirty = false;
      const std::string* actor = nullptr;
    };
    std::vector<Pair> pairs;
    std::vector<size_t> pair_of(end - begin);
    {
      std::unordered_map<std::string, size_t> index;
      PgArray providers, names, quals;
      for (size_t i = begin; i < end; ++i) {
        auto [it, added] = index.emplace(PairKey(ops[i].worker, ops[i].qual_id), pairs.size());
        if (added) {
          Pair p;
          p.op = &ops[i];
          pairs.push_back(std::move(p));
          providers.Add(ops[i].worker.provider);
          names.Add(ops[i].worker.name);
          quals.Add(ops[i].qual_id);
        }
        pair_of[i - begin] = it->second;
      }
      for (const pqxx::row& row : tx.Run(kGrantOpLookup, Args(providers, names, quals))) {
        Pair& p = pairs.at(static_cast<size_t>(Int(row[0]) - 1));
        p.worker = Int(row[1]);
        p.qual_found = !row[2].is_null();
        p.qual_name = Text(row[2]);
        if (!row[3].is_null()) {
          p.in_db = true;
          p.grant = StoredGrant{Int(row[3]), Int(row[4]), OptInt(row[5])};
        }
      }
    }

    // Errors in op order, as SqliteStore reports them: the qualification first, then the worker.
    std::vector<const WorkerRef*> fresh;
    {
      std::map<WorkerRef, bool> queued;
      for (size_t i = begin; i < end; ++i) {
        const Pair& p = pairs[pair_of[i - begin]];
        if (!p.qual_found) {
          return Status::NotFound("qualification id " + std::to_string(ops[i].qual_id) + " does not exist");
        }
        if (p.worker == 0 && queued.emplace(ops[i].worker, true).second) {
          CG_RETURN_IF_ERROR(pg_internal::CheckWorkerRef(ops[i].worker));
          fresh.push_back(&ops[i].worker);
        }
      }
    }
    if (!fresh.empty()) {
      // New workers have no grants. One inserted by another process since the lookup (EnsureWorker
      // does not take the audit lock) is skipped by ON CONFLICT and read back.
      std::map<WorkerRef, WorkerId> ids;
      PgArray providers, names;
      for (const WorkerRef* ref : fresh) {
        providers.Add(ref->provider);
        names.Add(ref->name);
      }
      for (const pqxx::row& row : tx.Run(kWorkersInsert, Args(providers, names, now))) {
        ids[WorkerRef{Text(row[1]), Text(row[2])}] = Int(row[0]);
      }
      if (ids.size() < fresh.size()) {
        for (const pqxx::row& row : tx.Run(kWorkersByRefs, Args(providers, names))) {
          ids[WorkerRef{Text(row[1]), Text(row[2])}] = Int(row[0]);
        }
      }
      for (Pair& p : pairs) {
        if (p.worker != 0) continue;
        auto it = ids.find(p.op->worker);
        if (it == ids.end()) return Status::Unavailable("worker '" + p.op->worker.ToString() + "' changed, try again");
        p.worker = it->second;
      }
    }

    // Replay the ops in order.
    const size_t first_entry = out->size();
    std::vector<OutboxRow> sync_rows;  // grant_sync rows for the workers' providers
    for (size_t i = begin; i < end; ++i) {
      const GrantOp& op = ops[i];
      Pair& p = pairs[pair_of[i - begin]];
      const GrantStep step = DecideGrantStep(op, p.grant, now);
      if (step.write == GrantStep::Write::kNone) continue;
      AuditEntry e;
      e.at = now;
      e.worker_id = p.worker;
      e.worker = op.worker;
      e.qual_id = op.qual_id;
      e.qualification = p.qual_name;
      e.actor = op.actor;
      e.reason = op.reason;
      step.FillAudit(&e);
      p.dirty = true;
      if (step.write == GrantStep::Write::kDelete) {
        p.grant.reset();
      } else {
        p.grant = step.row;
        p.actor = &op.actor;
      }
      if (store_outbox::NeedsGrantSync(op)) sync_rows.push_back(store_outbox::GrantSyncRow(op, e, now));
      out->push_back(std::move(e));
    }

    // Write the final state of every pair that changed, and the audit rows.
    if (out->size() > first_entry) {
      PgArray dw, dq, uw, uq, uv, ug, ue, ua;
      for (const Pair& p : pairs) {
        if (!p.dirty) continue;
        if (p.grant) {
          uw.Add(p.worker);
          uq.Add(p.op->qual_id);
          uv.Add(p.grant->value);
          ug.Add(p.grant->granted_at);
          ue.Add(p.grant->expires_at);
          ua.Add(*p.actor);
        } else if (p.in_db) {
          dw.Add(p.worker);
          dq.Add(p.op->qual_id);
        }
      }
      Args args(dw, dq, uw, uq, uv, ug, now, ue, ua);
      AddAuditArgs(*out, first_entry, &args);
      CG_RETURN_IF_ERROR(AssignSeqs(tx.Run(kGrantsWrite, args), out, first_entry));
    }
    InsertOutbox(tx, sync_rows);

    if (progress) {
      for (size_t k = (begin / kProgressEvery + 1) * kProgressEvery; k <= end && k < ops.size(); k += kProgressEvery) {
        progress(k);
      }
    }
  }
  if (progress) progress(ops.size());
  return Status::Ok();
}

Result<std::vector<AuditEntry>> PgStore::ApplyGrantOps(const std::vector<GrantOp>& ops,
                                                       const std::function<void(size_t)>& progress) {
  std::vector<AuditEntry> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    out.clear();
    if (!ops.empty()) LockAuditAndNotify(tx);
    return ApplyGrantOpsInTx(tx, ops, progress, &out);
  }));
  return out;
}

Result<std::vector<Grant>> PgStore::GrantsForQualification(QualId qual) {
  std::vector<Grant> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    if (tx.Run(kQualExists, Args(qual)).empty()) {
      return Status::NotFound("qualification id " + std::to_string(qual) + " does not exist");
    }
    for (const pqxx::row& row : tx.Run(kGrantsForQual, Args(qual))) out.push_back(ReadGrant(row));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Grant>> PgStore::GrantsForWorker(WorkerId worker) {
  std::vector<Grant> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    for (const pqxx::row& row : tx.Run(kGrantsForWorker, Args(worker))) out.push_back(ReadGrant(row));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Grant>> PgStore::ExpiredGrants(int64_t now, int64_t limit) {
  std::vector<Grant> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kExpiredGrants, Args(now, limit))) out.push_back(ReadGrant(row));
    return Status::Ok();
  }));
  return out;
}

Status PgStore::ScanAllGrants(const std::function<void(const Grant&)>& fn, int64_t* as_of_seq) {
  int64_t seq = 0;
  // One REPEATABLE READ snapshot: the grants seen are exactly those as of `seq` (audit seqs are in
  // commit order), so a cache loaded from the scan and then fed ChangesSince(seq) misses nothing
  // and replays nothing twice. Read in pages, in key order.
  CG_RETURN_IF_ERROR(Transact(TxKind::kSnapshot, [&](Tx& tx) -> Status {
    seq = Int(tx.Run(kMaxAuditSeq)[0][0]);
    int64_t after_worker = -1;
    int64_t after_qual = -1;
    while (true) {
      pqxx::result page = tx.Run(kGrantsPage, Args(after_worker, after_qual, kScanPage));
      for (const pqxx::row& row : page) {
        Grant g = ReadGrant(row);
        after_worker = g.worker_id;
        after_qual = g.qual_id;
        fn(g);
      }
      if (static_cast<int64_t>(page.size()) < kScanPage) return Status::Ok();
    }
  }));
  if (as_of_seq != nullptr) *as_of_seq = seq;
  return Status::Ok();
}

Result<std::vector<AuditEntry>> PgStore::ChangesSince(int64_t after_seq, int64_t limit) {
  std::vector<AuditEntry> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kChangesSince, Args(after_seq, limit))) out.push_back(ReadAudit(row));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AuditEntry>> PgStore::History(std::optional<QualId> qual, std::optional<WorkerId> worker) {
  std::vector<AuditEntry> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    pqxx::result r;
    if (qual && worker) {
      r = tx.Run(kHistoryBoth, Args(*qual, *worker));
    } else if (qual) {
      r = tx.Run(kHistoryQual, Args(*qual));
    } else if (worker) {
      r = tx.Run(kHistoryWorker, Args(*worker));
    } else {
      r = tx.Run(kHistoryAll);
    }
    for (const pqxx::row& row : r) out.push_back(ReadAudit(row));
    return Status::Ok();
  }));
  return out;
}

}  // namespace crowdgate
