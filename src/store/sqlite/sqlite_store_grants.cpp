// SqliteStore: qualifications, workers, grants and the audit log (the change feed). See
// sqlite_store.hpp for the contract and sqlite_store.cpp for the plumbing.
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/grant_rule.hpp"
#include "store/outbox_rows.hpp"
#include "store/sqlite/sqlite_internal.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace crowdgate {

using sqlite_internal::kAuditBatch;
using sqlite_internal::kAuditColumns;
using sqlite_internal::kGrantBatch;
using sqlite_internal::kGrantColumns;
using sqlite_internal::kOutboxBatch;
using sqlite_internal::kProgressEvery;

namespace {

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

}  // namespace

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

Result<std::vector<Grant>> SqliteStore::ExpiredGrants(int64_t now, int64_t limit) {
  std::vector<Grant> out;
  if (limit <= 0) return out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    // Qualification by qualification (CROSS JOIN keeps them the outer loop): each is one range of
    // grants_by_qual (qual_id, expires_at <= now), already in the order asked, so a sweep that finds
    // nothing reads no grant row rather than the whole table. NULL expiries sort first and never match.
    CG_ASSIGN_OR_RETURN(
        SqliteQuery q,
        Query("SELECT g.worker_id, w.provider, w.name, g.qual_id, q.name, g.value, g.granted_at, g.updated_at, "
              "g.expires_at, g.actor FROM qualifications q CROSS JOIN grants g ON g.qual_id = q.id "
              "AND g.expires_at <= ?1 JOIN workers w ON w.id = g.worker_id "
              "ORDER BY q.id, g.expires_at, g.worker_id LIMIT ?2"));
    q.Bind(1, now).Bind(2, limit);
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

}  // namespace crowdgate
