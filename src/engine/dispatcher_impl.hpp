// DispatcherImpl: the (Run)Dispatcher over the engine's shared core. Internal.
//
// Thread-safety: every public method takes the core lock; external check commands run
// with the lock released, and the submission then commits only if the agent is still
// in the status it had before the check (so a racing second submit gets Conflict).
#pragma once

#include <atomic>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "engine/run_state.hpp"

namespace crowdgate {

// An agent as `crowdgate export` shows it.
ExportRow ToExportRow(const AgentRecord& a);

class DispatcherImpl : public RunDispatcher {
 public:
  explicit DispatcherImpl(EngineImpl* engine) : engine_(engine), core_(engine->core()) {}

  Result<LaunchResult> Launch(const RunConfig& config,
                              const std::function<void(size_t done, size_t total)>& progress) override;
  Result<WorkResponse> RequestWork(const WorkRequest& request) override;
  Result<std::optional<WorkResponse>> TryRequestWorkWithoutBlocking(const WorkRequest& request) override;
  Result<SubmitResponse> Submit(const std::string& agent_id, const std::string& token,
                                const nlohmann::json& body_data) override;
  Status Return(const std::string& agent_id, const std::string& token) override;
  Status Batch(const std::function<void()>& work) override;
  int64_t BatchesRetried() const override;
  size_t PreferredBatchLimit() const override;
  Result<std::optional<SubmitResponse>> TrySubmitWithoutBlocking(const std::string& agent_id, const std::string& token,
                                                                 const nlohmann::json& body_data) override;
  Result<AgentView> GetAgent(const std::string& agent_id, const std::string& token) override;
  Result<int64_t> ExpireOverdue() override;
  Result<std::vector<RunSummary>> ListRuns() override;
  Result<RunSummary> Summarize(const std::string& run_id) override;
  Result<std::vector<ExportRow>> Export(const std::string& run_id) override;
  Result<AgentListPage> ListAgents(const AgentListRequest& request) override;
  Result<ExportRow> AgentRow(const std::string& agent_id, nlohmann::json* inputs) override;
  Result<std::vector<WorkerRunStats>> WorkerStats(const std::string& run_id, WorkerId after_worker,
                                                  int64_t limit) override;
  Result<std::vector<AuditEntry>> Timeline(const std::string& run_id) override;
  Result<std::vector<std::pair<int64_t, int64_t>>> Throughput(const std::string& run_id,
                                                              int64_t bucket_micros) override;
  Result<ReviewResult> Review(const ReviewRequest& request) override;
  Result<int64_t> EndSession(const std::string& run_id, const std::string& session) override;
  Result<int64_t> SessionSubmissions(const std::string& run_id, const WorkerRef& worker,
                                     const std::string& session) override;
  Status CloseRun(const std::string& run_id) override;
  Result<std::shared_ptr<const RunView>> RunViewOf(const std::string& run_id) override;

 private:
  Result<std::shared_ptr<RunState>> RunLocked(const std::string& run_id);
  Result<WorkerId> WorkerIdLocked(const WorkerRef& ref);
  // Throughput buckets that can no longer change (they ended well before now), per (run, bucket size):
  // a call reads only the submissions after them.
  struct ThroughputCache {
    int64_t complete_until = 0;
    std::map<int64_t, int64_t> buckets;
  };
  std::map<std::pair<std::string, int64_t>, ThroughputCache> throughput_cache_;
  Result<int64_t> ExpireOverdueLocked();
  Status MaybeExpireLocked();
  Result<WorkResponse> DecideLocked(const RunState& run, const WorkRequest& request, WorkerId worker);
  Result<WorkResponse> ServeEvalUnit(const RunState& run, const WorkerRef& ref, WorkerId worker,
                                     const std::string& session, bool gold);
  // RequestWork and TryRequestWorkWithoutBlocking; nullopt only when another connection is
  // deciding about the worker and the store would not wait for it (inside a batch).
  Result<std::optional<WorkResponse>> RequestWorkImpl(const WorkRequest& request);
  // Submit and TrySubmitWithoutBlocking; nullopt only when !may_block and the check is a command.
  Result<std::optional<SubmitResponse>> SubmitImpl(const std::string& agent_id, const std::string& token,
                                                   const nlohmann::json& body_data, bool may_block);
  void DropCachesLocked();
  Result<AgentRecord> AuthorizedAgentLocked(const std::string& agent_id, const std::string& token);
  AgentRecord NewAgent(const RunState& run, const WorkerRef& ref, WorkerId worker, AgentKind kind,
                       const std::string& session);
  // item_json: the unit's item when the caller already has it (else it is read).
  WorkResponse Respond(const RunState& run, const AgentRecord& agent, bool reconnected,
                       const std::string* item_json = nullptr);
  nlohmann::json InputsOf(const RunState& run, const AgentRecord& agent);
  AgentFinish EndAgent(const AgentRecord& agent, AgentStatus new_status);
  // EndAgent committed, with the quality rules a unit's return or timeout feeds.
  Result<std::vector<AuditEntry>> FinishEndedLocked(const AgentRecord& agent, AgentStatus new_status);
  // Adds the actions of quality-rule firings for the agent's worker to `f`.
  void AddQualityActions(const RunState& run, const AgentRecord& agent, const std::vector<QualityFiring>& firings,
                         AgentFinish* f);

  EngineImpl* engine_;
  EngineCore& core_;
  std::unordered_map<std::string, std::shared_ptr<RunState>> runs_;
  std::unordered_map<std::string, WorkerId> worker_ids_;
  int64_t last_expiry_us_ = 0;
  bool in_batch_ = false;  // Batch() is running (on the thread that holds the lock)
  bool batch_refreshed_ = false;  // the running batch has looked at the change feed
  bool undo_decision_ = false;
  // Attempts of a batch that loses a conflict with another server before its failure is answered.
  static constexpr int kBatchAttempts = 4;
  std::atomic<int64_t> batch_retries_{0};  // batches decided again after such a conflict (for tests and /metrics)
  // Golds scored right / wrong per run by this process since it started (for /metrics).
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> gold_tally_;  // the decision being made ends in a refusal that must not store its writes
};

}  // namespace crowdgate
