// FaultyStore (tests only): a Store that forwards every call to a real store and fails one chosen call.
//
// The plan names the call to fail by its number (1 = the first call counted since Arm()), counting
// either every call or only the calls of one method, and says what the failed call returns (e.g.
// Unavailable, as a lost connection or a busy database would) and when it fails:
//   kBefore  the call is not forwarded: the store is untouched, exactly what the Store contract
//            promises for a failed call ("commits as a whole or changes nothing").
//   kAfter   the call is forwarded and its answer replaced by the error: "written, but the answer
//            was lost". Outside the contract for writes (a failed call must change nothing) except
//            for a commit whose acknowledgement is lost (EndBatch / EndDecision with commit = true on
//            a network database); tests use it to show what the caller does then.
// Every call's method name is recorded, so a test can first run a scenario clean, learn how many
// store calls it makes, and then sweep the fault over each of them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crowdgate/store.hpp"

namespace crowdgate::testing {

struct FaultPlan {
  enum class When { kBefore, kAfter };
  int64_t fail_call = 0;   // 1-based number of the call to fail among the counted ones; 0 = never
  std::string method;      // count only calls of this method ("" = every call)
  Status error = Status::Unavailable("injected fault: the database connection was lost");
  When when = When::kBefore;
  // The failure also cost the connection. The PostgreSQL store reconnects and then changes its
  // ExternalChangeToken (a reconnected session may have missed notifications); this wrapper changes
  // the token it reports once the fault has fired, so callers see what they would see then.
  bool connection_lost = false;
};

class FaultyStore : public Store {
 public:
  explicit FaultyStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}

  // Starts counting calls afresh under `plan`.
  void Arm(FaultPlan plan) {
    plan_ = std::move(plan);
    counted_ = 0;
    fired_.reset();
    calls_.clear();
  }
  void Disarm() { plan_ = FaultPlan{}; }
  // The calls made since Arm(), by method name (the failed one included).
  const std::vector<std::string>& calls() const { return calls_; }
  // The method that was failed, if the fault fired.
  const std::optional<std::string>& fired() const { return fired_; }
  Store& inner() { return *inner_; }

  // ---- qualifications
  Result<Qualification> CreateQualification(const std::string& n, const std::string& d) override {
    return Call("CreateQualification", [&] { return inner_->CreateQualification(n, d); });
  }
  Result<Qualification> EnsureQualification(const std::string& n, const std::string& d) override {
    return Call("EnsureQualification", [&] { return inner_->EnsureQualification(n, d); });
  }
  Result<Qualification> GetQualification(const std::string& n) override {
    return Call("GetQualification", [&] { return inner_->GetQualification(n); });
  }
  Result<std::vector<Qualification>> ListQualifications() override {
    return Call("ListQualifications", [&] { return inner_->ListQualifications(); });
  }
  Status DeleteQualification(const std::string& n, const std::string& actor) override {
    return Call("DeleteQualification", [&] { return inner_->DeleteQualification(n, actor); });
  }
  Result<std::vector<std::pair<QualId, int64_t>>> CountGrants(int64_t now) override {
    return Call("CountGrants", [&] { return inner_->CountGrants(now); });
  }
  // ---- workers
  Result<Worker> EnsureWorker(const WorkerRef& ref) override {
    return Call("EnsureWorker", [&] { return inner_->EnsureWorker(ref); });
  }
  Result<Worker> GetWorker(const WorkerRef& ref) override {
    return Call("GetWorker", [&] { return inner_->GetWorker(ref); });
  }
  Result<Worker> GetWorkerById(WorkerId id) override {
    return Call("GetWorkerById", [&] { return inner_->GetWorkerById(id); });
  }
  // ---- grants
  Result<std::vector<AuditEntry>> ApplyGrantOps(const std::vector<GrantOp>& ops,
                                                const std::function<void(size_t)>& progress) override {
    return Call("ApplyGrantOps", [&] { return inner_->ApplyGrantOps(ops, progress); });
  }
  Result<std::vector<Grant>> GrantsForQualification(QualId qual) override {
    return Call("GrantsForQualification", [&] { return inner_->GrantsForQualification(qual); });
  }
  Result<std::vector<Grant>> GrantsForWorker(WorkerId worker) override {
    return Call("GrantsForWorker", [&] { return inner_->GrantsForWorker(worker); });
  }
  Result<std::vector<Grant>> ExpiredGrants(int64_t now, int64_t limit) override {
    return Call("ExpiredGrants", [&] { return inner_->ExpiredGrants(now, limit); });
  }
  Status ScanAllGrants(const std::function<void(const Grant&)>& fn, int64_t* as_of_seq) override {
    return Call("ScanAllGrants", [&] { return inner_->ScanAllGrants(fn, as_of_seq); });
  }
  Result<std::vector<AuditEntry>> ChangesSince(int64_t after_seq, int64_t limit) override {
    return Call("ChangesSince", [&] { return inner_->ChangesSince(after_seq, limit); });
  }
  Result<std::vector<AuditEntry>> History(std::optional<QualId> q, std::optional<WorkerId> w) override {
    return Call("History", [&] { return inner_->History(q, w); });
  }
  Result<int64_t> ExternalChangeToken() override {
    Result<int64_t> token = Call("ExternalChangeToken", [&] { return inner_->ExternalChangeToken(); });
    if (!token.ok()) return token;
    return *token + reconnects_;
  }
  // ---- group commit and decisions
  Status BeginBatch() override {
    return Call("BeginBatch", [&] { return inner_->BeginBatch(); });
  }
  Status EndBatch(bool commit) override {
    // A failed EndBatch must still end the batch (the caller never calls EndBatch again): roll it
    // back, as a commit or rollback on a lost connection would.
    if (WillFail("EndBatch") && plan_.when == FaultPlan::When::kBefore) {
      (void)inner_->EndBatch(false);
      return Fire("EndBatch");
    }
    return Call("EndBatch", [&] { return inner_->EndBatch(commit); });
  }
  Status BeginDecision(WorkerId worker) override {
    return Call("BeginDecision", [&] { return inner_->BeginDecision(worker); });
  }
  Status EndDecision(bool commit) override {  // as EndBatch
    if (WillFail("EndDecision") && plan_.when == FaultPlan::When::kBefore) {
      (void)inner_->EndDecision(false);
      return Fire("EndDecision");
    }
    return Call("EndDecision", [&] { return inner_->EndDecision(commit); });
  }
  bool BatchExcludesOtherWriters() const override { return inner_->BatchExcludesOtherWriters(); }
  bool LastBatchMayBeRetried() const override { return inner_->LastBatchMayBeRetried(); }
  Status BoundLockWaitsInBatch() override {
    return Call("BoundLockWaitsInBatch", [&] { return inner_->BoundLockWaitsInBatch(); });
  }
  size_t PreferredBatchLimit() const override { return inner_->PreferredBatchLimit(); }
  // ---- runs
  Status CreateRun(const RunRecord& run, const std::vector<std::string>& items, int units_per_item,
                   const std::function<void(size_t)>& progress) override {
    return Call("CreateRun", [&] { return inner_->CreateRun(run, items, units_per_item, progress); });
  }
  Result<RunRecord> GetRun(const std::string& run_id) override {
    return Call("GetRun", [&] { return inner_->GetRun(run_id); });
  }
  Result<std::vector<RunRecord>> ListRuns() override {
    return Call("ListRuns", [&] { return inner_->ListRuns(); });
  }
  Status SetRunStatus(const std::string& run_id, RunStatus status) override {
    return Call("SetRunStatus", [&] { return inner_->SetRunStatus(run_id, status); });
  }
  Result<std::string> GetItem(const std::string& run_id, int64_t item_index) override {
    return Call("GetItem", [&] { return inner_->GetItem(run_id, item_index); });
  }
  Result<std::optional<AgentRecord>> ReserveUnit(const std::string& run_id, AgentRecord agent) override {
    return Call("ReserveUnit", [&] { return inner_->ReserveUnit(run_id, agent); });
  }
  Result<std::optional<AgentRecord>> ReserveUnitWithItem(const std::string& run_id, AgentRecord agent,
                                                         std::string* item_json) override {
    return Call("ReserveUnitWithItem", [&] { return inner_->ReserveUnitWithItem(run_id, agent, item_json); });
  }
  Result<bool> CreateEvalUnit(const std::string& run_id, AgentRecord agent, int64_t cap,
                              const std::string& gold_set) override {
    return Call("CreateEvalUnit", [&] { return inner_->CreateEvalUnit(run_id, agent, cap, gold_set); });
  }
  Status CreateOnboardingAgent(const AgentRecord& agent) override {
    return Call("CreateOnboardingAgent", [&] { return inner_->CreateOnboardingAgent(agent); });
  }
  Result<AgentRecord> GetAgent(const std::string& agent_id) override {
    return Call("GetAgent", [&] { return inner_->GetAgent(agent_id); });
  }
  Result<std::vector<AgentRecord>> OpenAgents(const std::string& run_id, WorkerId worker) override {
    return Call("OpenAgents", [&] { return inner_->OpenAgents(run_id, worker); });
  }
  Result<std::vector<AgentRecord>> OverdueAgents(int64_t now) override {
    return Call("OverdueAgents", [&] { return inner_->OverdueAgents(now); });
  }
  Result<std::vector<AuditEntry>> FinishAgent(const AgentFinish& finish) override {
    return Call("FinishAgent", [&] { return inner_->FinishAgent(finish); });
  }
  Result<std::vector<int64_t>> GoldsSeen(WorkerId worker, const std::string& gold_set) override {
    return Call("GoldsSeen", [&] { return inner_->GoldsSeen(worker, gold_set); });
  }
  Status ForgetGoldsSeen(WorkerId worker, const std::string& gold_set) override {
    return Call("ForgetGoldsSeen", [&] { return inner_->ForgetGoldsSeen(worker, gold_set); });
  }
  Result<std::vector<bool>> RecentGoldResults(WorkerId worker, const std::string& gold_set, int64_t n) override {
    return Call("RecentGoldResults", [&] { return inner_->RecentGoldResults(worker, gold_set, n); });
  }
  Result<int64_t> CountWorkerUnitsForTask(const std::string& task_name, WorkerId worker) override {
    return Call("CountWorkerUnitsForTask", [&] { return inner_->CountWorkerUnitsForTask(task_name, worker); });
  }
  Result<std::vector<AgentRecord>> RunAgents(const std::string& run_id) override {
    return Call("RunAgents", [&] { return inner_->RunAgents(run_id); });
  }
  Result<AgentPage> ListRunAgents(const std::string& run_id, const AgentFilter& filter, int64_t cursor,
                                  int64_t limit) override {
    return Call("ListRunAgents", [&] { return inner_->ListRunAgents(run_id, filter, cursor, limit); });
  }
  Result<std::vector<WorkerRunStats>> ListRunWorkerStats(const std::string& run_id, WorkerId after_worker,
                                                         int64_t limit) override {
    return Call("ListRunWorkerStats", [&] { return inner_->ListRunWorkerStats(run_id, after_worker, limit); });
  }
  Result<std::vector<std::pair<int64_t, int64_t>>> RunThroughput(const std::string& run_id, int64_t bucket_micros,
                                                                 int64_t since) override {
    return Call("RunThroughput", [&] { return inner_->RunThroughput(run_id, bucket_micros, since); });
  }
  Result<std::vector<std::pair<std::string, int64_t>>> UnitStatusCounts(const std::string& run_id) override {
    return Call("UnitStatusCounts", [&] { return inner_->UnitStatusCounts(run_id); });
  }
  Result<int64_t> ReviewUnits(const std::string& run_id, const std::vector<int64_t>& unit_ids,
                              UnitStatus new_status, const std::vector<OutboxRow>& outbox) override {
    return Call("ReviewUnits", [&] { return inner_->ReviewUnits(run_id, unit_ids, new_status, outbox); });
  }
  Status SetRunProviderState(const std::string& run_id, const std::string& state_json) override {
    return Call("SetRunProviderState", [&] { return inner_->SetRunProviderState(run_id, state_json); });
  }
  Result<int64_t> CountSessionSubmissions(const std::string& run_id, WorkerId worker,
                                          const std::string& session) override {
    return Call("CountSessionSubmissions", [&] { return inner_->CountSessionSubmissions(run_id, worker, session); });
  }
  Result<std::vector<AgentRecord>> OpenAgentsOfSession(const std::string& run_id,
                                                       const std::string& session) override {
    return Call("OpenAgentsOfSession", [&] { return inner_->OpenAgentsOfSession(run_id, session); });
  }
  // ---- secrets and outbox
  Result<std::string> DatabaseSecret(const std::string& name) override {
    return Call("DatabaseSecret", [&] { return inner_->DatabaseSecret(name); });
  }
  Status EnqueueOutbox(const std::vector<OutboxRow>& rows) override {
    return Call("EnqueueOutbox", [&] { return inner_->EnqueueOutbox(rows); });
  }
  Result<std::vector<OutboxRow>> ClaimOutbox(const std::string& claimer, int64_t now, int64_t lease_micros,
                                             int limit) override {
    return Call("ClaimOutbox", [&] { return inner_->ClaimOutbox(claimer, now, lease_micros, limit); });
  }
  Status UpdateOutboxRow(const OutboxRow& row, bool release) override {
    return Call("UpdateOutboxRow", [&] { return inner_->UpdateOutboxRow(row, release); });
  }
  Result<std::vector<Status>> UpdateOutboxRows(const std::vector<OutboxRow>& rows, bool release) override {
    return Call("UpdateOutboxRows", [&] { return inner_->UpdateOutboxRows(rows, release); });
  }
  Result<OutboxCounts> CountOutbox() override {
    return Call("CountOutbox", [&] { return inner_->CountOutbox(); });
  }
  Result<std::vector<OutboxRow>> ListOutbox(const std::vector<std::string>& states, int64_t after_id,
                                            int64_t limit) override {
    return Call("ListOutbox", [&] { return inner_->ListOutbox(states, after_id, limit); });
  }

 private:
  // True when the next call of `method` is the one to fail (does not count it).
  bool WillFail(const char* method) const {
    if (plan_.fail_call <= 0 || fired_) return false;
    if (!plan_.method.empty() && plan_.method != method) return false;
    return counted_ + 1 == plan_.fail_call;
  }
  Status Fire(const char* method) {
    calls_.emplace_back(method);
    ++counted_;
    fired_ = method;
    if (plan_.connection_lost) ++reconnects_;
    return plan_.error;
  }

  template <typename F>
  auto Call(const char* method, F&& forward) -> decltype(forward()) {
    if (WillFail(method)) {
      if (plan_.when == FaultPlan::When::kAfter) (void)forward();
      return Fire(method);
    }
    calls_.emplace_back(method);
    if (plan_.method.empty() || plan_.method == method) ++counted_;
    return forward();
  }

  std::unique_ptr<Store> inner_;
  FaultPlan plan_;
  int64_t counted_ = 0;
  std::optional<std::string> fired_;
  std::vector<std::string> calls_;
  int64_t reconnects_ = 0;  // faults that cost the connection: added to ExternalChangeToken
};

}  // namespace crowdgate::testing
