// crowdgate::Store: the domain-level storage interface. Backends are chosen by URI
// ("sqlite:PATH", a bare PATH, ":memory:", "postgresql://...") and own their SQL.
//
// Contract:
//  - Every method is one transaction: it commits as a whole or changes nothing. Inside a
//    batch (BeginBatch .. EndBatch) each method is still all-or-nothing, but nothing is
//    durable or visible to other connections until EndBatch commits the whole batch.
//  - Methods return Status codes, never throw; library exceptions are caught inside.
//  - A Store object is used by one thread at a time (callers serialise); several Store
//    objects (several processes) may share one database, and each sees the others'
//    commits. ChangesSince() is the feed caches use to learn of them.
//  - Unknown qualification / worker / run / agent -> NotFound. Duplicate -> Conflict.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crowdgate/env.hpp"
#include "crowdgate/status.hpp"
#include "crowdgate/kinds.hpp"
#include "crowdgate/types.hpp"

namespace crowdgate {

// ---- run-side records (used by the task server) ----------------------------------

struct RunRecord {
  std::string id;            // "run_" + 16 hex
  std::string task_name;
  std::string config_json;   // the validated, fully resolved run config
  RunStatus status = RunStatus::kOpen;
  int64_t created_at = 0;
  int64_t num_items = 0;
  int64_t num_units = 0;
  int64_t gold_served = 0;       // gold units counted against max_gold_units
  int64_t screening_served = 0;  // screening units counted against max_screening_units
  // What the run's provider created for it (Prolific: study id, completion codes, participant
  // groups), as a JSON object; "{}" until the provider's launch step stores it.
  std::string provider_state_json = "{}";
};

struct UnitRecord {
  int64_t id = 0;
  std::string run_id;
  AgentKind kind = AgentKind::kUnit;  // unit | gold | screening (never onboarding)
  int64_t item_index = -1;     // index into the run's items (kind unit), or the gold /
                               // screening item index (kind gold / screening)
  int64_t copy_index = 0;      // 0 .. units_per_item-1
  UnitStatus status = UnitStatus::kLaunched;
  std::optional<WorkerId> worker_id;
  std::optional<std::string> agent_id;
};

struct AgentRecord {
  std::string id;              // "ag_" + 32 hex
  std::string token_hash;      // the agent's 128-bit token (32 hex), stored as issued so a reconnect can
                               // return it; the name is historical
  std::string run_id;
  std::optional<int64_t> unit_id;  // absent for onboarding
  WorkerId worker_id = 0;
  WorkerRef worker;
  AgentKind kind = AgentKind::kUnit;
  AgentStatus status = AgentStatus::kInTask;
  int64_t item_index = -1;     // same meaning as UnitRecord::item_index
  std::string session;         // provider session (assignmentId / SESSION_ID), may be empty
  std::string eval_set;        // gold: the gold_qualification_base; screening: the passed qualification;
                               // a unit deciding a screening: kScreeningEvalSet
  int64_t created_at = 0;
  int64_t deadline = 0;        // lease end; open agents past it time out
  std::optional<int64_t> submitted_at;
  std::string data_json;       // the worker's submission, unchanged ("" until submitted)
  std::string check_result;    // "" | pass | fail | error
};

// The kind exports and agent lists show: a unit deciding a screening shows as kScreening.
inline AgentKind ShownKind(const AgentRecord& a) {
  return a.kind == AgentKind::kUnit && a.eval_set == kScreeningEvalSet ? AgentKind::kScreening : a.kind;
}

// What FinishAgent should do, decided by the engine before it commits.
struct AgentFinish {
  std::string agent_id;
  AgentStatus expect_status = AgentStatus::kInTask;  // the agent must still be in this status, else Conflict
  AgentStatus new_status = AgentStatus::kCompleted;
  std::optional<UnitStatus> unit_status;  // new status of its unit (if any)
  bool release_unit = false;     // unit goes back to launched, worker/agent cleared
  bool refund_gold_slot = false;
  bool refund_screening_slot = false;
  std::optional<std::string> data_json;
  std::optional<int64_t> submitted_at;
  std::string check_result;
  std::vector<GrantOp> grant_ops;  // counters / qualifications, in the same transaction
  // Units of the agent's run to reject for relabelling (a quality rule's reject_units), after
  // the agent itself is finished: each one still `completed` becomes `rejected` (its agent
  // too) and a new launched unit of the same item is added, so the item goes back to the pool
  // for a worker who has not held it. Units in any other status are left alone.
  std::vector<int64_t> reject_unit_ids;
};

// One change bound for a crowd provider (a participant-group update, an approval, a bonus), written
// in the same transaction as the change itself and delivered later by the outbox drainer.
struct OutboxRow {
  int64_t id = 0;                 // increasing: delivery order within an order_key
  std::string provider;           // "prolific"
  std::string kind;               // grant_sync | approve | reject | bonus
  std::string run_id;             // "" for grant_sync (it concerns every run using the qualification)
  std::string order_key;          // rows with the same key are delivered one at a time, in id order
  std::string payload_json = "{}";   // what to deliver, provider-neutral JSON
  std::string state = "pending";  // pending | retrying | done | failed
  int64_t attempts = 0;
  int64_t next_attempt_at = 0;    // not claimed before this time
  std::string last_error;         // the provider's message of the last failure ("" if none)
  std::string progress_json = "{}";  // steps already taken (a bonus set-up id, "pay sent", ...)
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string claimed_by;         // the drainer holding the row ("" = none)
  int64_t claimed_until = 0;      // the claim's lease end
};

struct OutboxCounts {
  int64_t pending = 0;
  int64_t retrying = 0;
  int64_t done = 0;
  int64_t failed = 0;
  std::optional<int64_t> oldest_undelivered_at;  // created_at of the oldest pending/retrying row
};

// Which agents of a run a page lists (ListRunAgents); empty / nullopt fields match everything.
struct AgentFilter {
  std::string status;               // an agent status (in_task, completed, approved, rejected, ...)
  std::string kind;                 // unit | gold | screening | onboarding (a unit deciding a screening is "screening")
  std::optional<WorkerId> worker;
};

// One page of a run's agents in creation order; next_cursor is 0 when there are no more.
struct AgentPage {
  std::vector<AgentRecord> agents;
  int64_t next_cursor = 0;
};

// What one worker did in one run, counted by SQL (ListRunWorkerStats).
struct WorkerRunStats {
  WorkerId worker_id = 0;
  WorkerRef worker;
  int64_t units_submitted = 0;   // kind unit (not screening), submitted
  int64_t units_open = 0;        // any kind, still in_task / onboarding
  int64_t golds_right = 0;
  int64_t golds_wrong = 0;
  int64_t screening_passed = 0;
  int64_t screening_failed = 0;
  std::string onboarding;        // "" (none) | passed | failed | in_task ... (the last onboarding agent's status)
  int64_t unit_seconds_total_micros = 0;  // sum of (submitted_at - created_at) over submitted units
  int64_t first_seen = 0;        // created_at of their first agent
  int64_t last_seen = 0;         // latest created_at / submitted_at
};

struct CompletedCount {
  WorkerId worker_id;
  int64_t count;
};

class Store {
 public:
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens (creating and migrating if needed) the database named by `uri`.
  static Result<std::unique_ptr<Store>> Open(const std::string& uri, Env* env);

  // ---- qualifications -------------------------------------------------------------
  virtual Result<Qualification> CreateQualification(const std::string& name, const std::string& description) = 0;
  // Creates it when missing; returns the existing one otherwise.
  virtual Result<Qualification> EnsureQualification(const std::string& name, const std::string& description) = 0;
  virtual Result<Qualification> GetQualification(const std::string& name) = 0;
  virtual Result<std::vector<Qualification>> ListQualifications() = 0;
  // Deletes the qualification and all its grants; writes one kQualificationDeleted
  // audit entry plus one kRevoke entry per grant removed.
  virtual Status DeleteQualification(const std::string& name, const std::string& actor) = 0;
  // Number of live (unexpired at `now`) grants per qualification id.
  virtual Result<std::vector<std::pair<QualId, int64_t>>> CountGrants(int64_t now) = 0;

  // ---- workers ----------------------------------------------------------------------
  virtual Result<Worker> EnsureWorker(const WorkerRef& ref) = 0;
  virtual Result<Worker> GetWorker(const WorkerRef& ref) = 0;  // NotFound if never seen
  virtual Result<Worker> GetWorkerById(WorkerId id) = 0;

  // ---- grants -----------------------------------------------------------------------
  // Applies every op in order in one transaction (workers created as needed), writing
  // one audit entry per actual change; returns those entries. `progress`, if set, is
  // called now and then with the number of ops applied so far.
  virtual Result<std::vector<AuditEntry>> ApplyGrantOps(const std::vector<GrantOp>& ops,
                                                        const std::function<void(size_t)>& progress = {}) = 0;
  // Grants, including expired ones (callers filter with Grant::ExpiredAt).
  virtual Result<std::vector<Grant>> GrantsForQualification(QualId qual) = 0;
  virtual Result<std::vector<Grant>> GrantsForWorker(WorkerId worker) = 0;
  // Stored grants whose expiry has passed (expires_at <= now), at most `limit`, by qualification id,
  // then expiry, then worker id. What the expiry sweep removes (each with a kRevoke op carrying
  // revoke_if_expires_at, so a grant renewed since this read is kept).
  virtual Result<std::vector<Grant>> ExpiredGrants(int64_t now, int64_t limit) = 0;
  // Every grant, with the audit seq it is current as of (for loading a cache).
  virtual Status ScanAllGrants(const std::function<void(const Grant&)>& fn, int64_t* as_of_seq) = 0;
  // Audit entries with seq > after_seq, oldest first, at most `limit`.
  virtual Result<std::vector<AuditEntry>> ChangesSince(int64_t after_seq, int64_t limit) = 0;
  // Audit history, newest last; empty filters match everything.
  virtual Result<std::vector<AuditEntry>> History(std::optional<QualId> qual, std::optional<WorkerId> worker) = 0;
  // A cheap number that changes when ANOTHER connection commits (SQLite data_version).
  virtual Result<int64_t> ExternalChangeToken() = 0;

  // ---- group commit ---------------------------------------------------------------------
  // Opens a batch: the following method calls share one database transaction, each as a
  // nested all-or-nothing step, so N decisions cost one commit instead of N. The caller
  // must not answer anyone about those calls before EndBatch(true) returns OK.
  // EndBatch(false), or a failed commit, rolls back every call made since BeginBatch.
  // A backend without batching keeps the defaults: every call commits on its own.
  virtual Status BeginBatch() { return Status::Ok(); }
  virtual Status EndBatch(bool commit) {
    (void)commit;
    return Status::Ok();
  }
  // After EndBatch(true) failed: true when the batch lost a conflict with another connection
  // (PostgreSQL: a deadlock or a serialization failure). Nothing of it is stored, and making the
  // same calls again, in a new batch, may succeed.
  virtual bool LastBatchMayBeRetried() const { return false; }
  // For the open batch: a call that would wait more than a moment for a lock another connection
  // holds fails with Busy instead, having changed nothing (inside a decision: failing the
  // decision). Two batches waiting for each other's locks would otherwise deadlock; the caller
  // runs such a request again outside any batch, where waiting is safe. A backend whose batch
  // excludes every other writer never waits for one and keeps this default.
  virtual Status BoundLockWaitsInBatch() { return Status::Ok(); }
  // How many decisions (or other writing calls) one batch should hold at most; 0 = no limit.
  virtual size_t PreferredBatchLimit() const { return 0; }
  // ---- decisions ----------------------------------------------------------------------------
  // Opens one decision about one worker (a request for work): the calls up to EndDecision are one
  // all-or-nothing step, inside a batch as outside one, and no other connection can decide about
  // the same worker until it ends. So a limit read inside a decision (OpenAgents,
  // CountWorkerUnitsForTask) still holds when the decision's reservation commits, on every server.
  // PostgreSQL: one transaction that holds the worker's row lock; SQLite: a savepoint inside a
  // batch (the batch holds the write lock), else an IMMEDIATE transaction.
  // EndDecision(false), or a failed call inside, undoes every write of the decision; after a failed
  // call the decision only accepts EndDecision. Decisions do not nest.
  // Inside a batch a backend may refuse to wait for another connection's decision about the same
  // worker (its batch holds other locks: waiting could deadlock): BeginDecision then returns Busy
  // at once, no decision is open, and the caller decides that request outside the batch.
  virtual Status BeginDecision(WorkerId worker) {
    (void)worker;
    return Status::Ok();
  }
  // BeginDecision for a decision about the worker's work in run `run_id`, whose first read is
  // OpenAgents(run_id, worker): a backend may read those in the same round trip as the lock and
  // answer that OpenAgents from it (until the decision writes something). Such a backend returns
  // NotFound for an unknown run, with no decision open; one that does not read ahead returns
  // NotFound from OpenAgents.
  virtual Status BeginRunDecision(WorkerId worker, const std::string& run_id) {
    (void)run_id;
    return BeginDecision(worker);
  }
  virtual Status EndDecision(bool commit) {
    (void)commit;
    return Status::Ok();
  }
  // True when no other connection can commit while a batch is open (SQLite: the batch holds the
  // database's write lock), so a cache refreshed once per batch stays current for all of it.
  virtual bool BatchExcludesOtherWriters() const { return false; }

  // ---- runs (task server) -------------------------------------------------------------
  // Stores the run, its items (JSON objects) and units_per_item units per item.
  virtual Status CreateRun(const RunRecord& run, const std::vector<std::string>& items_json, int units_per_item,
                           const std::function<void(size_t)>& progress = {}) = 0;
  virtual Result<RunRecord> GetRun(const std::string& run_id) = 0;
  virtual Result<std::vector<RunRecord>> ListRuns() = 0;
  virtual Status SetRunStatus(const std::string& run_id, RunStatus status) = 0;
  virtual Result<std::string> GetItem(const std::string& run_id, int64_t item_index) = 0;

  // Reserves the oldest launched unit of the run whose item this worker has never held
  // in this run, and inserts `agent` (unit_id/item_index filled in) in one transaction.
  // Returns nullopt when there is none.
  virtual Result<std::optional<AgentRecord>> ReserveUnit(const std::string& run_id, AgentRecord agent) = 0;
  // ReserveUnit that also returns the reserved unit's item (what GetItem would return) in
  // *item_json. The default makes the two calls; a backend may answer both at once.
  virtual Result<std::optional<AgentRecord>> ReserveUnitWithItem(const std::string& run_id, AgentRecord agent,
                                                                 std::string* item_json) {
    CG_ASSIGN_OR_RETURN(std::optional<AgentRecord> got, ReserveUnit(run_id, std::move(agent)));
    if (got) {
      CG_ASSIGN_OR_RETURN(*item_json, GetItem(run_id, got->item_index));
    }
    return got;
  }
  // Creates a gold or screening unit plus its agent, counting it against the run's cap;
  // returns false (and changes nothing) when `cap` is reached. For golds, also records
  // (worker, gold_set, item_index) as seen.
  virtual Result<bool> CreateEvalUnit(const std::string& run_id, AgentRecord agent, int64_t cap,
                                      const std::string& gold_set) = 0;
  // Inserts an onboarding agent (no unit).
  virtual Status CreateOnboardingAgent(const AgentRecord& agent) = 0;
  virtual Result<AgentRecord> GetAgent(const std::string& agent_id) = 0;
  // Open agents (status in_task or onboarding) of this worker in this run, oldest first.
  virtual Result<std::vector<AgentRecord>> OpenAgents(const std::string& run_id, WorkerId worker) = 0;
  // Open agents whose deadline <= now, in any run.
  virtual Result<std::vector<AgentRecord>> OverdueAgents(int64_t now) = 0;
  // Applies `finish` atomically; Conflict if the agent is no longer in expect_status.
  virtual Result<std::vector<AuditEntry>> FinishAgent(const AgentFinish& finish) = 0;
  // Gold items of `gold_set` this worker has been served (in any run).
  virtual Result<std::vector<int64_t>> GoldsSeen(WorkerId worker, const std::string& gold_set) = 0;
  virtual Status ForgetGoldsSeen(WorkerId worker, const std::string& gold_set) = 0;
  // Check results (true = pass) of this worker's last `n` scored gold agents of
  // `gold_set` (eval_set), in any run, oldest first. Agents with check_result "error" or
  // "" are not scored and not returned.
  virtual Result<std::vector<bool>> RecentGoldResults(WorkerId worker, const std::string& gold_set, int64_t n) = 0;
  // Units of kind `unit` this worker holds or has submitted across every run of the task
  // (statuses assigned, completed, accepted, rejected, soft_rejected).
  virtual Result<int64_t> CountWorkerUnitsForTask(const std::string& task_name, WorkerId worker) = 0;
  // Every agent of the run (for export/status), oldest first.
  virtual Result<std::vector<AgentRecord>> RunAgents(const std::string& run_id) = 0;
  // One page of the run's agents matching `filter`, in creation order, after `cursor` (0 = from the
  // start; otherwise a next_cursor of an earlier page), at most `limit`. Reads the page, not the run.
  virtual Result<AgentPage> ListRunAgents(const std::string& run_id, const AgentFilter& filter, int64_t cursor,
                                          int64_t limit) = 0;
  // Per-worker figures of the run for workers with id > after_worker, by worker id, at most `limit`
  // workers (keyset pagination: pass the last worker_id of a page to get the next).
  virtual Result<std::vector<WorkerRunStats>> ListRunWorkerStats(const std::string& run_id, WorkerId after_worker,
                                                                 int64_t limit) = 0;
  // Agents of the run (every kind) submitted at or after `since`, per time bucket of `bucket_micros`:
  // {bucket start, count}, oldest first. Reads only those submissions (an index on submission time).
  virtual Result<std::vector<std::pair<int64_t, int64_t>>> RunThroughput(const std::string& run_id,
                                                                         int64_t bucket_micros, int64_t since) = 0;
  // Unit counts by status for the run: {status, count}.
  virtual Result<std::vector<std::pair<std::string, int64_t>>> UnitStatusCounts(const std::string& run_id) = 0;
  // Sets the status of submitted units (review) and of the agents that submitted them
  // (AgentStatusAfterReview: accepted -> approved, rejected, soft_rejected; any other `new_status`
  // is InvalidArgument). Only units in status completed (or already reviewed) may change; returns
  // how many units changed.
  // `outbox` rows (the provider's side of the review: approvals, rejections, bonuses) are written
  // in the same transaction.
  virtual Result<int64_t> ReviewUnits(const std::string& run_id, const std::vector<int64_t>& unit_ids,
                                      UnitStatus new_status, const std::vector<OutboxRow>& outbox = {}) = 0;
  // Stores what the run's provider created for it (RunRecord::provider_state_json).
  virtual Status SetRunProviderState(const std::string& run_id, const std::string& state_json) = 0;
  // Agents of this worker in this run under provider session `session` that were submitted
  // (kinds unit, gold and screening; onboarding not counted).
  virtual Result<int64_t> CountSessionSubmissions(const std::string& run_id, WorkerId worker,
                                                  const std::string& session) = 0;
  // Open agents (in_task or onboarding) of the run under provider session `session`, oldest first.
  virtual Result<std::vector<AgentRecord>> OpenAgentsOfSession(const std::string& run_id,
                                                               const std::string& session) = 0;

  // ---- secrets ------------------------------------------------------------------------
  // The database's secret called `name` (64 hex chars, 256 random bits), created on first use;
  // every process on the database gets the same value. Used to sign worker links.
  virtual Result<std::string> DatabaseSecret(const std::string& name) = 0;

  // ---- provider outbox ------------------------------------------------------------------
  // ApplyGrantOps (and FinishAgent's grant_ops) write one `grant_sync` row, in the same
  // transaction, for every kSet or kRevoke op that changes a grant of a worker whose provider
  // ProviderSyncsGrants() and whose op has provider_sync set: provider = the worker's provider,
  // order_key = "grant:" + worker + "|" + qualification, payload {"worker": "prolific:PID",
  // "qualification": NAME, "value": N or null when revoked, "expires_at": micros or null}.
  // Appends rows (state pending) in one transaction; ids are assigned in order.
  virtual Status EnqueueOutbox(const std::vector<OutboxRow>& rows) = 0;
  // Claims up to `limit` rows for `claimer` until now + lease: rows in state pending or
  // retrying, due (next_attempt_at <= now), not claimed by anyone else (or whose claim has
  // lapsed), and first in their order_key among the rows not yet done or failed. Oldest first.
  // Several processes may claim at once; no row is claimed by two of them (PostgreSQL:
  // FOR UPDATE SKIP LOCKED).
  virtual Result<std::vector<OutboxRow>> ClaimOutbox(const std::string& claimer, int64_t now, int64_t lease_micros,
                                                     int limit) = 0;
  // Writes state, attempts, next_attempt_at, last_error and progress_json of a row `row.claimed_by`
  // holds; release = true also drops the claim. Conflict when the row is no longer claimed by
  // row.claimed_by (its lease lapsed and another drainer took it).
  virtual Status UpdateOutboxRow(const OutboxRow& row, bool release) = 0;
  // UpdateOutboxRow for several rows in ONE transaction (one commit instead of one per row: on a
  // durable PostgreSQL a commit costs milliseconds, so a drainer reporting row by row tops out at a
  // few hundred rows/s). Each row is judged on its own: the answer holds one Status per input row, in
  // order (OK, Conflict, NotFound), and the rows that are OK are written even if others are not. An
  // unknown state or a row id given twice -> InvalidArgument for the call, and nothing is written.
  // The default checks the call, then makes one UpdateOutboxRow call (one commit) per row.
  virtual Result<std::vector<Status>> UpdateOutboxRows(const std::vector<OutboxRow>& rows, bool release) {
    CG_RETURN_IF_ERROR(CheckOutboxUpdates(rows));
    std::vector<Status> out;
    out.reserve(rows.size());
    for (const OutboxRow& row : rows) out.push_back(UpdateOutboxRow(row, release));
    return out;
  }
  virtual Result<OutboxCounts> CountOutbox() = 0;
  // Rows with id > after_id whose state is in `states` (empty = any), oldest first, at most `limit`.
  virtual Result<std::vector<OutboxRow>> ListOutbox(const std::vector<std::string>& states, int64_t after_id,
                                                    int64_t limit) = 0;

 protected:
  Store() = default;
  // What UpdateOutboxRows refuses as a whole: an unknown state, a row id given twice. (Inline, so a
  // Store implemented outside the store library links without it.)
  static Status CheckOutboxUpdates(const std::vector<OutboxRow>& rows) {
    std::vector<int64_t> ids;
    ids.reserve(rows.size());
    for (const OutboxRow& row : rows) {
      const std::string& s = row.state;
      if (s != "pending" && s != "retrying" && s != "done" && s != "failed") {
        return Status::InvalidArgument("outbox state must be pending, retrying, done or failed, got '" + s + "'");
      }
      ids.push_back(row.id);
    }
    std::sort(ids.begin(), ids.end());
    auto dup = std::adjacent_find(ids.begin(), ids.end());
    if (dup != ids.end()) {
      return Status::InvalidArgument("outbox row " + std::to_string(*dup) + " is given twice in one update");
    }
    return Status::Ok();
  }
};

}  // namespace crowdgate
