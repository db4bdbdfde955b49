#include "engine/engine_core.hpp"

namespace crowdgate {

EngineCore::EngineCore(std::unique_ptr<Store> store, Env* env, std::string actor)
    : store_(std::move(store)), env_(env), actor_(std::move(actor)) {}

void EngineCore::ApplyEntry(const AuditEntry& e) {
  if (e.kind == AuditEntry::Kind::kQualificationDeleted) quals_.erase(e.qualification);
  index_.Apply(e, e.actor == kScreeningActor ? kFlagByScreening : 0);
}

Status EngineCore::Refresh() {
  CG_ASSIGN_OR_RETURN(int64_t token, store_->ExternalChangeToken());
  if (!loaded_) {
    index_.Clear();
    worker_ids_.clear();  // a reload after Invalidate(): ids cached since may have been rolled back
    int64_t as_of = 0;
    // In (worker_id, qual_id) order, so the grants are appended to the index's flat base.
    CG_RETURN_IF_ERROR(store_->ScanAllGrants(
        [this](const Grant& g) { index_.Load(g, g.actor == kScreeningActor ? kFlagByScreening : 0); }, &as_of));
    index_.Compact();
    last_seq_ = as_of;
    loaded_ = true;
  } else if (token == last_token_) {
    return Status::Ok();
  }
  last_token_ = token;
  ++external_epoch_;
  return AfterWrite();
}

Status EngineCore::AfterWrite(const std::vector<AuditEntry>& written) {
  if (!written.empty() && written.front().seq == last_seq_ + 1) {
    // Our write follows on from what the index has seen: nothing to read back. Anything other
    // connections commit later is for the next Refresh(), which their commit signals.
    for (const auto& e : written) ApplyEntry(e);
    last_seq_ = written.back().seq;
    return Status::Ok();
  }
  constexpr int64_t kBatch = 10000;
  while (true) {
    CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, store_->ChangesSince(last_seq_, kBatch));
    for (const auto& e : entries) ApplyEntry(e);
    if (!entries.empty()) last_seq_ = entries.back().seq;
    if (static_cast<int64_t>(entries.size()) < kBatch) return Status::Ok();
  }
}

Result<Qualification> EngineCore::Qual(const std::string& name) {
  auto it = quals_.find(name);
  if (it != quals_.end()) return it->second;
  CG_ASSIGN_OR_RETURN(Qualification q, store_->GetQualification(name));
  quals_.emplace(name, q);
  return q;
}

void EngineCore::Invalidate() {
  loaded_ = false;
  last_token_ = -1;
  ++external_epoch_;
  quals_.clear();
}

Result<std::optional<WorkerId>> EngineCore::WorkerIdOf(const WorkerRef& ref) {
  std::string key = ref.ToString();
  auto it = worker_ids_.find(key);
  if (it != worker_ids_.end()) return std::optional<WorkerId>(it->second);
  auto w = store_->GetWorker(ref);
  if (!w.ok()) {
    if (w.status().IsNotFound()) return std::optional<WorkerId>();  // not cached: it may appear later
    return w.status();
  }
  if (worker_ids_.size() >= kWorkerIdCacheSize) worker_ids_.clear();
  worker_ids_.emplace(std::move(key), w->id);
  return std::optional<WorkerId>(w->id);
}

}  // namespace crowdgate
