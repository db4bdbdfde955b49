#include "engine/engine_impl.hpp"

#include <algorithm>

namespace crowdgate {

using Lock = EngineLock;

Result<std::unique_ptr<Engine>> Engine::Open(std::unique_ptr<Store> store, EngineOptions options) {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<EngineImpl> engine, OpenEngineImpl(std::move(store), std::move(options)));
  return std::unique_ptr<Engine>(std::move(engine));
}

Result<std::unique_ptr<EngineImpl>> OpenEngineImpl(std::unique_ptr<Store> store, EngineOptions options) {
  if (store == nullptr) return Status::InvalidArgument("Engine::Open needs a store");
  Env* env = options.env != nullptr ? options.env : Env::Default();
  auto core = std::make_shared<EngineCore>(std::move(store), env, options.actor);
  {
    Lock l(core->mu());
    CG_RETURN_IF_ERROR(core->Refresh());
  }
  return std::make_unique<EngineImpl>(std::move(core));
}

Result<Qualification> EngineImpl::CreateQualification(const std::string& name, const std::string& description) {
  CG_RETURN_IF_ERROR(ValidateQualificationName(name));
  Lock l(core_->mu());
  return core_->store().CreateQualification(name, description);
}

Status EngineImpl::CheckStore() {
  Lock l(core_->mu());
  // Reads the change token without applying it: the next Refresh() still sees any change.
  return core_->store().ExternalChangeToken().status();
}

Result<std::vector<QualificationSummary>> EngineImpl::ListQualifications() {
  Lock l(core_->mu());
  CG_ASSIGN_OR_RETURN(std::vector<Qualification> quals, core_->store().ListQualifications());
  CG_ASSIGN_OR_RETURN(auto counts, core_->store().CountGrants(core_->env().NowMicros()));
  std::vector<QualificationSummary> out;
  out.reserve(quals.size());
  for (auto& q : quals) {
    QualificationSummary s{q, 0};
    for (const auto& [id, n] : counts) {
      if (id == q.id) s.live_grants = n;
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<Qualification> EngineImpl::GetQualification(const std::string& name) {
  Lock l(core_->mu());
  return core_->store().GetQualification(name);
}

Result<std::vector<crowdgate::Grant>> EngineImpl::ListGrants(const std::string& qualification) {
  Lock l(core_->mu());
  CG_ASSIGN_OR_RETURN(Qualification q, core_->store().GetQualification(qualification));
  CG_ASSIGN_OR_RETURN(std::vector<crowdgate::Grant> grants, core_->store().GrantsForQualification(q.id));
  const int64_t now = core_->env().NowMicros();
  grants.erase(std::remove_if(grants.begin(), grants.end(), [now](const auto& g) { return g.ExpiredAt(now); }),
               grants.end());
  std::sort(grants.begin(), grants.end(), [](const auto& a, const auto& b) { return a.worker < b.worker; });
  return grants;
}

Status EngineImpl::DeleteQualification(const std::string& name) {
  Lock l(core_->mu());
  CG_RETURN_IF_ERROR(core_->store().DeleteQualification(name, core_->actor()));
  core_->ForgetQualification(name);
  return core_->AfterWrite();
}

Result<AuditEntry> EngineImpl::Grant(const GrantRequest& request) {
  CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(request.worker));
  Lock l(core_->mu());
  CG_ASSIGN_OR_RETURN(Qualification q, core_->Qual(request.qualification));
  GrantOp op;
  op.kind = GrantOp::Kind::kSet;
  op.worker = ref;
  op.qual_id = q.id;
  op.value = request.value;
  op.expires_at = request.expires_at;
  op.actor = core_->actor();
  op.reason = request.reason;
  op.provider_sync = request.provider_sync;
  CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, core_->store().ApplyGrantOps({op}));
  CG_RETURN_IF_ERROR(core_->AfterWrite(entries));
  if (entries.empty()) return Status::Internal("grant wrote no audit entry");
  return entries.front();
}

Result<bool> EngineImpl::Revoke(const std::string& qualification, const std::string& worker,
                                const std::string& reason, bool provider_sync) {
  CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(worker));
  Lock l(core_->mu());
  CG_ASSIGN_OR_RETURN(Qualification q, core_->Qual(qualification));
  GrantOp op;
  op.kind = GrantOp::Kind::kRevoke;
  op.worker = ref;
  op.qual_id = q.id;
  op.actor = core_->actor();
  op.reason = reason;
  op.provider_sync = provider_sync;
  CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, core_->store().ApplyGrantOps({op}));
  CG_RETURN_IF_ERROR(core_->AfterWrite());
  return !entries.empty();
}

Result<int64_t> EngineImpl::RevokeExpiredGrants() {
  // Grants per round: the engine lock is held for one round, so workers' requests interleave with a
  // large backlog (a bulk grant that all lapsed at once).
  constexpr int64_t kSweepBatch = 1000;
  int64_t removed = 0;
  while (true) {
    Lock l(core_->mu());
    CG_RETURN_IF_ERROR(core_->Refresh());  // so the index has other servers' sweeps too
    const int64_t now = core_->env().NowMicros();
    CG_ASSIGN_OR_RETURN(std::vector<crowdgate::Grant> expired, core_->store().ExpiredGrants(now, kSweepBatch));
    if (expired.empty()) return removed;
    std::vector<GrantOp> ops;
    ops.reserve(expired.size());
    for (const crowdgate::Grant& g : expired) {
      GrantOp op;
      op.kind = GrantOp::Kind::kRevoke;
      op.worker = g.worker;
      op.qual_id = g.qual_id;
      op.actor = kExpiryActor;
      op.reason = kExpiredReason;
      // Only the grant read above: one renewed since (or revoked by another server) is left alone.
      op.revoke_if_expires_at = g.expires_at;
      ops.push_back(std::move(op));
    }
    CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, core_->store().ApplyGrantOps(ops));
    CG_RETURN_IF_ERROR(core_->AfterWrite(entries));
    removed += static_cast<int64_t>(entries.size());
    // A short page is the last; a page that removed nothing (every grant renewed or taken by another
    // server) is not read again in this call.
    if (static_cast<int64_t>(expired.size()) < kSweepBatch || entries.empty()) return removed;
  }
}

Result<ImportSummary> EngineImpl::Import(const std::string& qualification, const std::vector<ImportRow>& rows,
                                         const std::string& reason,
                                         const std::function<void(size_t, size_t)>& progress) {
  // Validate every row before touching the store, so a bad row changes nothing.
  std::vector<GrantOp> ops;
  ops.reserve(rows.size());
  Lock l(core_->mu());
  CG_ASSIGN_OR_RETURN(Qualification q, core_->Qual(qualification));
  for (const auto& row : rows) {
    auto ref = ParseWorkerRef(row.worker);
    if (!ref.ok()) return ref.status().WithContext("line " + std::to_string(row.line));
    GrantOp op;
    op.kind = GrantOp::Kind::kSet;
    op.worker = std::move(ref).value();
    op.qual_id = q.id;
    op.value = row.value;
    op.actor = core_->actor();
    op.reason = reason;
    ops.push_back(std::move(op));
  }
  const size_t total = ops.size();
  auto entries = core_->store().ApplyGrantOps(ops, [&](size_t done) {
    if (progress) progress(done, total);
  });
  // Memory: at 1M rows the ops (~170 B each) and the entries the store returns
  // (~250 B each) are the bulk of the import's peak; the ops go as soon as the store is done.
  // (Store::ApplyGrantOps returns every entry it wrote; not holding them at all would need a
  // streaming variant of that interface.)
  std::vector<GrantOp>().swap(ops);
  if (!entries.ok()) return entries.status();
  if (progress) progress(total, total);
  ImportSummary summary;
  summary.rows = static_cast<int64_t>(rows.size());
  for (const auto& e : *entries) {
    if (e.kind == AuditEntry::Kind::kGrant) ++summary.granted;
    if (e.kind == AuditEntry::Kind::kChange) ++summary.changed;
  }
  CG_RETURN_IF_ERROR(core_->AfterWrite(*entries));
  return summary;
}

Result<std::vector<AuditEntry>> EngineImpl::History(const std::optional<std::string>& qualification,
                                                    const std::optional<std::string>& worker) {
  Lock l(core_->mu());
  std::optional<QualId> qid;
  std::optional<WorkerId> wid;
  if (qualification) {
    CG_ASSIGN_OR_RETURN(Qualification q, core_->store().GetQualification(*qualification));
    qid = q.id;
  }
  if (worker) {
    CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(*worker));
    auto w = core_->store().GetWorker(ref);
    if (!w.ok() && w.status().IsNotFound()) return std::vector<AuditEntry>{};
    if (!w.ok()) return w.status();
    wid = w->id;
  }
  return core_->store().History(qid, wid);
}

Result<WorkerInfo> EngineImpl::ShowWorker(const std::string& worker) {
  CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(worker));
  Lock l(core_->mu());
  auto w = core_->store().GetWorker(ref);
  if (!w.ok()) {
    if (w.status().IsNotFound()) return Status::NotFound("worker " + ref.ToString() + " has never been seen");
    return w.status();
  }
  WorkerInfo info;
  info.worker = *w;
  CG_ASSIGN_OR_RETURN(info.grants, core_->store().GrantsForWorker(w->id));
  return info;
}

Status EngineImpl::ResetOnboarding(const std::string& qualification, const std::string& worker) {
  CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(worker));
  Lock l(core_->mu());
  CG_ASSIGN_OR_RETURN(Qualification q, core_->Qual(qualification));
  std::vector<GrantOp> ops;
  GrantOp op;
  op.kind = GrantOp::Kind::kRevoke;
  op.worker = ref;
  op.qual_id = q.id;
  op.actor = core_->actor();
  op.reason = "reset-onboarding";
  ops.push_back(op);
  // Unlike Mephisto's clear_onboarding, the local Q-failed grant goes too, so the
  // worker really can onboard again.
  auto failed = core_->Qual(qualification + "-failed");
  if (failed.ok()) {
    op.qual_id = failed->id;
    ops.push_back(op);
  } else if (!failed.status().IsNotFound()) {
    return failed.status();
  }
  CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, core_->store().ApplyGrantOps(ops));
  return core_->AfterWrite();
}

Result<std::shared_ptr<const CompiledRequirements>> EngineImpl::CompileLocked(const std::vector<Requirement>& reqs) {
  auto out = std::make_shared<CompiledRequirements>();
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Requirement& r = reqs[i];
    auto q = core_->Qual(r.qualification_name);
    if (!q.ok()) {
      if (q.status().IsNotFound()) {
        return Status::NotFound("requirement " + std::to_string(i) + " names qualification \"" + r.qualification_name +
                                "\", which does not exist (create it with `crowdgate qual create " +
                                r.qualification_name + "`); refusing to run without it");
      }
      return q.status();
    }
    CompiledRequirement c;
    c.qual_id = q->id;
    c.comparator = r.comparator;
    c.value = r.value;
    c.values = r.values;
    std::sort(c.values.begin(), c.values.end());
    if (r.applicable_providers) {
      c.provider_mask = 0;
      for (const auto& p : *r.applicable_providers) c.provider_mask |= ProviderBit(p);
    }
    c.source_index = static_cast<int>(i);
    out->reqs.push_back(std::move(c));
    out->names.push_back(r.qualification_name);
  }
  return std::shared_ptr<const CompiledRequirements>(std::move(out));
}

Result<std::shared_ptr<const CompiledRequirements>> EngineImpl::Compile(const std::vector<Requirement>& reqs) {
  Lock l(core_->mu());
  return CompileLocked(reqs);
}

Result<EligibilityVerdict> EngineImpl::Check(const std::string& worker, const CompiledRequirements& reqs) {
  CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(worker));
  Lock l(core_->mu());
  CG_RETURN_IF_ERROR(core_->Refresh());
  CG_ASSIGN_OR_RETURN(const std::optional<WorkerId> wid, core_->WorkerIdOf(ref));
  EligibilityResult r =
      core_->index().Check(wid.value_or(0), ProviderBit(ref.provider), reqs.reqs, core_->env().NowMicros());
  EligibilityVerdict v;
  v.passed = r.passed;
  v.failed_index = r.failed_index;
  if (!r.passed) v.failed_qualification = reqs.names[static_cast<size_t>(r.failed_index)];
  return v;
}

}  // namespace crowdgate
