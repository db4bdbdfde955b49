// Engine::ApplyBulk: a change brought in from another system, classified against the
// in-memory grant index (reads only) and then written in one store batch, only where it
// differs from what is there.
#include <cstdint>
#include <limits>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "engine/engine_impl.hpp"

namespace crowdgate {

namespace {

// Ops handed to the store per ApplyGrantOps call inside the batch: bounds the memory of
// the ops and of the audit entries returned, whatever the size of the import.
constexpr size_t kOpsPerCall = 50'000;

// What the classification decided for one grant or revoke.
enum class Verdict : uint8_t { kSkip, kWrite };

}  // namespace

Result<BulkSummary> EngineImpl::ApplyBulk(const BulkChange& change, bool dry_run,
                                          const std::function<void(size_t, size_t)>& progress) {
  // Validate every name before anything else, so a bad one changes nothing. Worker names are
  // parsed again where they are used rather than kept: at a million grants the parsed copies
  // would be the largest thing in memory.
  for (const auto& q : change.qualifications) CG_RETURN_IF_ERROR(ValidateQualificationName(q.name));
  std::vector<WorkerRef> workers;
  workers.reserve(change.workers.size());
  for (const auto& w : change.workers) {
    CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(w));
    workers.push_back(std::move(ref));
  }
  for (const auto& g : change.grants) CG_RETURN_IF_ERROR(ParseWorkerRef(g.worker).status());
  for (const auto& r : change.revokes) CG_RETURN_IF_ERROR(ParseWorkerRef(r.worker).status());
  auto ref_of = [](const std::string& text) { return ParseWorkerRef(text).value(); };  // validated above
  auto reason_of = [&change](const std::string& own) -> const std::string& {
    return own.empty() ? change.reason : own;
  };

  EngineLock l(core_->mu());
  // The comparison and the writes happen in one batch: nobody else writes in between, and the
  // reads below need no transaction of their own.
  CG_RETURN_IF_ERROR(core_->store().BeginBatch());
  bool wrote = false;
  Result<BulkSummary> result = [&]() -> Result<BulkSummary> {
    CG_RETURN_IF_ERROR(core_->Refresh());
    const int64_t now = core_->env().NowMicros();
    BulkSummary summary;

    // ---- compare (reads only) ----
    // Qualifications: name -> id, 0 while it does not exist yet.
    std::unordered_map<std::string, QualId> qual_ids;
    auto qual_id = [&](const std::string& name) -> Result<QualId> {
      auto it = qual_ids.find(name);
      if (it != qual_ids.end()) return it->second;
      auto q = core_->Qual(name);
      if (!q.ok() && !q.status().IsNotFound()) return q.status();
      const QualId id = q.ok() ? q->id : 0;
      qual_ids.emplace(name, id);
      return id;
    };
    std::vector<const BulkQualification*> new_quals;
    std::unordered_set<std::string_view> listed;
    for (const auto& q : change.qualifications) {
      if (!listed.insert(q.name).second) continue;  // listed twice
      CG_ASSIGN_OR_RETURN(QualId id, qual_id(q.name));
      if (id == 0) {
        ++summary.qualifications.added;
        new_quals.push_back(&q);
      } else {
        ++summary.qualifications.unchanged;
      }
    }
    // A grant or revoke naming a qualification neither existing nor listed is an error.
    auto require_qual = [&](const std::string& name) -> Result<QualId> {
      CG_ASSIGN_OR_RETURN(QualId id, qual_id(name));
      if (id == 0 && listed.count(name) == 0) return Status::NotFound("qualification '" + name + "' does not exist");
      return id;
    };
    // Workers: the id of the last one looked up is kept, since imports come grouped by worker.
    WorkerRef last_ref;
    std::optional<WorkerId> last_id;
    bool have_last = false;
    auto worker_id = [&](const WorkerRef& ref) -> Result<std::optional<WorkerId>> {
      if (have_last && last_ref == ref) return last_id;
      CG_ASSIGN_OR_RETURN(last_id, core_->WorkerIdOf(ref));
      last_ref = ref;
      have_last = true;
      return last_id;
    };
    std::vector<size_t> new_workers;
    for (size_t i = 0; i < workers.size(); ++i) {
      CG_ASSIGN_OR_RETURN(std::optional<WorkerId> id, worker_id(workers[i]));
      if (id) {
        ++summary.workers.unchanged;
      } else {
        ++summary.workers.added;
        new_workers.push_back(i);
      }
    }
    std::vector<Verdict> grant_verdicts(change.grants.size(), Verdict::kSkip);
    for (size_t i = 0; i < change.grants.size(); ++i) {
      const GrantRequest& g = change.grants[i];
      CG_ASSIGN_OR_RETURN(QualId qid, require_qual(g.qualification));
      CG_ASSIGN_OR_RETURN(std::optional<WorkerId> wid, worker_id(ref_of(g.worker)));
      const GrantIndex::Entry* cur = (qid != 0 && wid) ? core_->index().Find(*wid, qid, now) : nullptr;
      const int64_t want_expiry = g.expires_at.value_or(std::numeric_limits<int64_t>::max());
      if (cur == nullptr) {
        ++summary.grants.added;
        grant_verdicts[i] = Verdict::kWrite;
      } else if (cur->value != g.value || cur->expires_at != want_expiry) {
        ++summary.grants.changed;
        grant_verdicts[i] = Verdict::kWrite;
      } else {
        ++summary.grants.unchanged;
      }
    }
    std::vector<Verdict> revoke_verdicts(change.revokes.size(), Verdict::kSkip);
    for (size_t i = 0; i < change.revokes.size(); ++i) {
      CG_ASSIGN_OR_RETURN(QualId qid, require_qual(change.revokes[i].qualification));
      CG_ASSIGN_OR_RETURN(std::optional<WorkerId> wid, worker_id(ref_of(change.revokes[i].worker)));
      // An expired grant is absent to every reader, but a revoke still removes its row.
      if (qid != 0 && wid && core_->index().Find(*wid, qid, std::numeric_limits<int64_t>::min()) != nullptr) {
        ++summary.revoked;
        revoke_verdicts[i] = Verdict::kWrite;
      }
    }
    if (dry_run) return summary;

    // ---- write ----
    const size_t total = new_quals.size() + new_workers.size() + static_cast<size_t>(summary.grants.added) +
                         static_cast<size_t>(summary.grants.changed) + static_cast<size_t>(summary.revoked);
    size_t done = 0;
    wrote = total > 0;
    for (const auto* q : new_quals) {
      CG_ASSIGN_OR_RETURN(Qualification created, core_->store().EnsureQualification(q->name, q->description));
      qual_ids[q->name] = created.id;
      ++done;
    }
    std::vector<GrantOp> ops;
    auto flush = [&]() -> Status {
      if (ops.empty()) return Status::Ok();
      const size_t base = done;
      CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, core_->store().ApplyGrantOps(ops, [&](size_t n) {
        if (progress) progress(base + n, total);
      }));
      done += ops.size();
      ops.clear();
      return core_->AfterWrite(entries);
    };
    auto add_op = [&](GrantOp op) -> Status {
      ops.push_back(std::move(op));
      return ops.size() >= kOpsPerCall ? flush() : Status::Ok();
    };
    // Workers the grant ops create; the others are registered on their own below.
    std::unordered_set<std::string_view> created_by_grants;
    for (size_t i = 0; i < change.grants.size(); ++i) {
      if (grant_verdicts[i] != Verdict::kWrite) continue;
      const GrantRequest& g = change.grants[i];
      if (!new_workers.empty()) created_by_grants.insert(g.worker);
      GrantOp op;
      op.kind = GrantOp::Kind::kSet;
      op.worker = ref_of(g.worker);
      op.qual_id = qual_ids[g.qualification];
      op.value = g.value;
      op.expires_at = g.expires_at;
      op.actor = core_->actor();
      op.reason = reason_of(g.reason);
      CG_RETURN_IF_ERROR(add_op(std::move(op)));
    }
    for (size_t i = 0; i < change.revokes.size(); ++i) {
      if (revoke_verdicts[i] != Verdict::kWrite) continue;
      GrantOp op;
      op.kind = GrantOp::Kind::kRevoke;
      op.worker = ref_of(change.revokes[i].worker);
      op.qual_id = qual_ids[change.revokes[i].qualification];
      op.actor = core_->actor();
      op.reason = reason_of(change.revokes[i].reason);
      CG_RETURN_IF_ERROR(add_op(std::move(op)));
    }
    CG_RETURN_IF_ERROR(flush());
    for (size_t i : new_workers) {
      ++done;
      if (created_by_grants.count(change.workers[i]) != 0) continue;
      CG_RETURN_IF_ERROR(core_->store().EnsureWorker(workers[i]).status());
      if (progress && done % 4096 == 0) progress(done, total);
    }
    if (progress && total > 0) progress(total, total);
    return summary;
  }();
  if (!result.ok() || !wrote) {
    (void)core_->store().EndBatch(/*commit=*/false);  // nothing written, or all of it undone
    if (!result.ok()) core_->Invalidate();            // the index may hold grants that were rolled back
    return result;
  }
  Status committed = core_->store().EndBatch(/*commit=*/true);
  if (!committed.ok()) {
    core_->Invalidate();
    return committed;
  }
  return result;
}

}  // namespace crowdgate
