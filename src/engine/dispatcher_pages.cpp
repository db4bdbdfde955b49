// The requester's pages: one page of agents or one SQL aggregate per call, under the core lock
// (the store serves one thread at a time), never a walk over every row of the run.
#include <algorithm>

#include "core/run_config.hpp"
#include "engine/dispatcher_impl.hpp"

namespace crowdgate {

using Lock = EngineLock;

namespace {

Status RunNotFound(const Status& s, const std::string& run_id) {
  if (s.IsNotFound()) return Status::NotFound("run " + run_id + " does not exist");
  return s;
}

}  // namespace

Result<AgentListPage> DispatcherImpl::ListAgents(const AgentListRequest& request) {
  if (request.limit < 1) return Status::InvalidArgument("limit: expected at least 1");
  AgentFilter filter;
  filter.status = request.status;
  filter.kind = request.kind;
  Lock l(core_.mu());
  if (!request.worker.empty()) {
    CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(request.worker));
    Result<Worker> w = core_.store().GetWorker(ref);
    if (!w.ok() && !w.status().IsNotFound()) return w.status();
    if (!w.ok()) {  // never seen: nothing of theirs, but the run must still exist
      Result<RunRecord> run = core_.store().GetRun(request.run_id);
      if (!run.ok()) return RunNotFound(run.status(), request.run_id);
      return AgentListPage{};
    }
    filter.worker = w->id;
  }
  Result<AgentPage> page = core_.store().ListRunAgents(request.run_id, filter, request.cursor, request.limit);
  if (!page.ok()) return RunNotFound(page.status(), request.run_id);
  AgentListPage out;
  out.next_cursor = page->next_cursor;
  out.rows.reserve(page->agents.size());
  for (const AgentRecord& a : page->agents) out.rows.push_back(ToExportRow(a));
  return out;
}

Result<ExportRow> DispatcherImpl::AgentRow(const std::string& agent_id, nlohmann::json* inputs) {
  Lock l(core_.mu());
  Result<AgentRecord> a = core_.store().GetAgent(agent_id);
  if (!a.ok()) {
    if (a.status().IsNotFound()) return Status::NotFound("agent " + agent_id + " does not exist");
    return a.status();
  }
  if (inputs != nullptr) {
    CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(a->run_id));
    *inputs = InputsOf(*run, *a);
  }
  return ToExportRow(*a);
}

Result<std::vector<WorkerRunStats>> DispatcherImpl::WorkerStats(const std::string& run_id, WorkerId after_worker,
                                                                int64_t limit) {
  if (limit < 1) return Status::InvalidArgument("limit: expected at least 1");
  Lock l(core_.mu());
  Result<std::vector<WorkerRunStats>> r = core_.store().ListRunWorkerStats(run_id, after_worker, limit);
  if (!r.ok()) return RunNotFound(r.status(), run_id);
  return r;
}

Result<std::vector<AuditEntry>> DispatcherImpl::Timeline(const std::string& run_id) {
  Lock l(core_.mu());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(run_id));
  const BlueprintConfig& b = run->config->blueprint;
  std::vector<std::string> names;
  if (b.block_qualification) names.push_back(*b.block_qualification);
  if (b.onboarding_qualification) names.push_back(DerivedNames::OnboardingFailed(*b.onboarding_qualification));
  if (b.use_golds) names.push_back(DerivedNames::GoldDisqualified(b.gold_qualification_base));
  std::vector<AuditEntry> out;
  for (const std::string& name : names) {
    Result<Qualification> q = core_.store().GetQualification(name);
    if (!q.ok() && q.status().IsNotFound()) continue;
    if (!q.ok()) return q.status();
    CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> h, core_.store().History(q->id, std::nullopt));
    out.insert(out.end(), h.begin(), h.end());
  }
  std::sort(out.begin(), out.end(), [](const AuditEntry& a, const AuditEntry& b) { return a.seq < b.seq; });
  return out;
}

Result<std::vector<std::pair<int64_t, int64_t>>> DispatcherImpl::Throughput(const std::string& run_id,
                                                                            int64_t bucket_micros) {
  if (bucket_micros <= 0) return Status::InvalidArgument("throughput bucket must be above 0");
  Lock l(core_.mu());
  if (throughput_cache_.size() > 256) throughput_cache_.clear();
  ThroughputCache& cache = throughput_cache_[{run_id, bucket_micros}];
  // complete_until is a bucket boundary: every bucket from it on is counted whole by this query.
  Result<std::vector<std::pair<int64_t, int64_t>>> fresh =
      core_.store().RunThroughput(run_id, bucket_micros, cache.complete_until);
  if (!fresh.ok()) {
    throughput_cache_.erase({run_id, bucket_micros});
    return RunNotFound(fresh.status(), run_id);
  }
  std::map<int64_t, int64_t> all = cache.buckets;
  for (const auto& [b, n] : *fresh) all[b] = n;
  // A submission's time is the moment it is decided; one committed a little later (group commit, a
  // check command) still lands within this margin, so buckets older than it are final.
  constexpr int64_t kSettleMicros = 30 * kMicrosPerSecond;
  const int64_t settled = (core_.env().NowMicros() - kSettleMicros) / bucket_micros * bucket_micros;
  if (settled > cache.complete_until) {
    for (const auto& [b, n] : *fresh) {
      if (b < settled) cache.buckets[b] = n;
    }
    cache.complete_until = settled;
  }
  return std::vector<std::pair<int64_t, int64_t>>(all.begin(), all.end());
}

}  // namespace crowdgate
