// crowdgate::Dispatcher: the task server's decisions. For every worker who asks for
// work it decides, in this order: run open? requirements (the run's own plus the
// derived block, Q-failed and G-disqualified) -> capacity (allowed_concurrent,
// maximum_units_per_worker) -> onboarding -> screening -> gold -> a real unit; and it
// turns submissions into counters, grants and disqualifications.
//
// Contract:
//  - Outcomes ("unit", "onboarding", "not_qualified", "no_work") and their reason words
//    are values (WorkResponse), exactly as the worker API spells them. Errors (unknown
//    run or agent, wrong token, double submit, expired agent, bad body) are Status codes:
//    NotFound, Unauthenticated, Conflict, Gone, InvalidArgument.
//  - A gold or screening unit looks exactly like a real one to the worker: same outcome
//    word, same id format, same response fields; answers never leave the engine.
//  - A submission answered OK is committed: agent, unit, counters and grants change in
//    one store transaction, and a second submit of the same agent is a Conflict.
//  - Thread-safe. External check commands run outside the engine lock (and never in a Batch).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/engine.hpp"
#include "crowdgate/kinds.hpp"
#include "crowdgate/status.hpp"

namespace crowdgate {

struct WorkRequest {
  std::string run_id;
  WorkerRef worker;
  std::string session;  // provider session (MTurk assignmentId, Prolific SESSION_ID); may be empty
};

struct WorkResponse {
  std::string outcome;  // unit | onboarding | not_qualified | no_work
  std::string reason;   // with not_qualified / no_work, else empty
  std::string agent_id;
  std::string token;
  nlohmann::json data;  // what the worker sees: item inputs or onboarding data
  bool reconnected = false;

  nlohmann::json ToJson() const;
};

struct SubmitResponse {
  std::string outcome;  // accepted (units of every kind) | passed | failed (onboarding)
};

// What a worker holding the token may read about their agent.
struct AgentView {
  std::string agent_id;
  std::string run_id;
  AgentStatus status = AgentStatus::kInTask;
  bool onboarding = false;
  nlohmann::json data;        // the inputs shown
  nlohmann::json submission;  // null until submitted
  int64_t deadline = 0;
};

struct LaunchResult {
  std::string run_id;
  int64_t items = 0;
  int64_t units = 0;
  // Things that may let workers spot gold or screening units (their values look unlike the
  // units'); the launch went ahead. The CLI prints them on stderr.
  std::vector<std::string> warnings;
};

struct RunSummary {
  std::string run_id;
  std::string task_name;
  RunStatus status = RunStatus::kOpen;
  int64_t created_at = 0;
  std::vector<std::pair<std::string, int64_t>> units_by_status;
  int64_t gold_served = 0;
  int64_t screening_served = 0;
  // Golds scored right / wrong through this Dispatcher since it was created (a server's tally).
  int64_t golds_right_since_start = 0;
  int64_t golds_wrong_since_start = 0;
};

// One row of `crowdgate export`.
struct ExportRow {
  std::string run_id;
  std::optional<int64_t> unit_id;
  int64_t item = -1;
  std::string worker;
  std::string agent_id;
  AgentKind kind = AgentKind::kUnit;  // a unit deciding a screening is kScreening
  AgentStatus status = AgentStatus::kInTask;
  std::optional<int64_t> submitted_at;
  std::optional<double> duration_s;
  nlohmann::json data;  // the submission, unchanged (null if none)
  std::string check_result;
};

// `crowdgate review`: which submitted units, what to do, and what the provider is told.
struct ReviewRequest {
  std::string run_id;
  std::string action;              // approve | reject | soft-reject
  std::vector<int64_t> unit_ids;   // explicit units, or
  bool all = false;                // every submitted, not yet reviewed unit, or
  std::string worker;              // every submitted, not yet reviewed unit of this worker
  std::string reason;              // to the provider (Prolific: the message a rejection needs, >= 100 chars)
  std::string category;            // Prolific's rejection category (TOO_QUICKLY, LOW_EFFORT, ...)
  std::optional<double> bonus;     // paid once per reviewed provider session, in the study's currency
};

// One page of a run's agents for the requester (filters as AgentFilter; worker by name).
struct AgentListRequest {
  std::string run_id;
  std::string status;
  std::string kind;
  std::string worker;   // "alice" or "prolific:PID"; "" = every worker
  int64_t cursor = 0;   // 0 = from the start, else a next_cursor
  int64_t limit = 100;
};

struct AgentListPage {
  std::vector<ExportRow> rows;
  int64_t next_cursor = 0;  // 0 = no more
};

struct ReviewResult {
  int64_t reviewed = 0;        // units whose status changed
  int64_t provider_rows = 0;   // changes queued for the provider (approvals, rejections, bonuses)
};

class Dispatcher {
 public:
  // Shares the engine's store, grant index and lock; `engine` must outlive it.
  static Result<std::unique_ptr<Dispatcher>> Create(Engine* engine);
  virtual ~Dispatcher() = default;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  virtual Result<WorkResponse> RequestWork(const WorkRequest& request) = 0;
  virtual Result<SubmitResponse> Submit(const std::string& agent_id, const std::string& token,
                                        const nlohmann::json& body_data) = 0;
  virtual Status Return(const std::string& agent_id, const std::string& token) = 0;

  // Group commit. Runs `work` on this thread holding the dispatcher's lock, with every store
  // write of the calls it makes (RequestWork, TrySubmitWithoutBlocking, Return, ...) in one
  // transaction that is committed before Batch returns. Tell nobody the result of those calls
  // unless Batch returned OK: on an error every one of them was rolled back and the caches
  // were dropped. Batches do not nest.
  // When the batch loses a conflict with another server (PostgreSQL: a deadlock or a
  // serialization failure), it is rolled back, the caches are dropped and `work` runs again from
  // scratch, up to 4 times in all: `work` must be safe to run again, and an answer is only what
  // its last run produced.
  virtual Status Batch(const std::function<void()>& work) = 0;
  // Batches run again after such a conflict, since this dispatcher was created.
  virtual int64_t BatchesRetried() const = 0;
  // The most requests one Batch should decide, for the store behind it; 0 = no limit.
  virtual size_t PreferredBatchLimit() const = 0;
  // Submit for use inside Batch: it never runs an external command check (which could hold the
  // whole batch for seconds). When the agent's check is a command it returns nullopt having
  // changed nothing; call Submit, outside any batch, for that one.
  virtual Result<std::optional<SubmitResponse>> TrySubmitWithoutBlocking(const std::string& agent_id,
                                                                         const std::string& token,
                                                                         const nlohmann::json& body_data) = 0;
  // RequestWork for use inside Batch: it never waits for another server that is deciding about
  // the same worker at this moment (with several servers on PostgreSQL, waiting while the batch
  // holds its locks could deadlock). Then it returns nullopt having changed nothing; call
  // RequestWork, outside any batch, for that one.
  virtual Result<std::optional<WorkResponse>> TryRequestWorkWithoutBlocking(const WorkRequest& request) = 0;
  virtual Result<AgentView> GetAgent(const std::string& agent_id, const std::string& token) = 0;
  // Times out open agents whose lease has ended; their units go back to the pool (gold
  // and screening units are expired and their cap slot refunded). Returns how many.
  virtual Result<int64_t> ExpireOverdue() = 0;

  virtual Result<std::vector<RunSummary>> ListRuns() = 0;
  virtual Result<RunSummary> Summarize(const std::string& run_id) = 0;
  virtual Result<std::vector<ExportRow>> Export(const std::string& run_id) = 0;
  // Requester pages: each reads one page or one SQL aggregate, never every row of the run.
  virtual Result<AgentListPage> ListAgents(const AgentListRequest& request) = 0;
  // One agent of any run, as an export row (NotFound if there is none); *inputs (if given) gets
  // what the worker was shown (the item, or the gold / screening / onboarding inputs).
  virtual Result<ExportRow> AgentRow(const std::string& agent_id, nlohmann::json* inputs) = 0;
  // Per-worker figures of the run, workers with id > after_worker, at most `limit`.
  virtual Result<std::vector<WorkerRunStats>> WorkerStats(const std::string& run_id, WorkerId after_worker,
                                                          int64_t limit) = 0;
  // The run's disqualifications and blocks, oldest first: grants of its block qualification, its
  // onboarding-failed and gold-disqualified qualifications (and their revocations).
  virtual Result<std::vector<AuditEntry>> Timeline(const std::string& run_id) = 0;
  // Submissions per time bucket ({bucket start micros, count}), oldest first.
  virtual Result<std::vector<std::pair<int64_t, int64_t>>> Throughput(const std::string& run_id,
                                                                      int64_t bucket_micros) = 0;
  // Sets the units' status and, for a run whose provider reviews (ProviderReviews: Prolific), queues
  // the provider's side (approve / reject the participant's submission, a bonus) in the same
  // transaction. The provider's own rules (Prolific: a rejection needs a reason of at least 100
  // characters and a category) are checked before, by the caller (ProviderHub::CheckReview).
  virtual Result<ReviewResult> Review(const ReviewRequest& request) = 0;
  // The provider ended a worker's session (Prolific: the submission was returned or timed out):
  // every open agent of the run under `session` ends as "returned" and its unit goes back to the
  // pool. Returns how many agents ended.
  virtual Result<int64_t> EndSession(const std::string& run_id, const std::string& session) = 0;
  // Units (of every kind but onboarding) this worker submitted in the run under `session`.
  virtual Result<int64_t> SessionSubmissions(const std::string& run_id, const WorkerRef& worker,
                                             const std::string& session) = 0;
  virtual Status CloseRun(const std::string& run_id) = 0;

 protected:
  Dispatcher() = default;
};

}  // namespace crowdgate
