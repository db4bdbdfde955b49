// PgStore: the PostgreSQL backend of crowdgate::Store (see include/crowdgate/store.hpp for the
// contract every backend keeps), for several crowdgate processes sharing one database. Reached
// through Store::Open("postgresql://..." | "postgres://..."); the URI goes to libpq unchanged, so
// anything libpq accepts there works (sslmode=, connect_timeout=, a unix socket via host=...).
// The database must exist; Open creates crowdgate's tables in it (the connection's default schema).
//
// Contract, beyond store.hpp:
//  - Thread-safety: a PgStore owns one connection and is used by one thread at a time. Any number
//    of PgStore objects, in any number of processes, may share one database.
//  - Transactions: every public method that writes is one READ COMMITTED transaction; reads that
//    need one snapshot across statements (ScanAllGrants) run REPEATABLE READ, READ ONLY; other
//    reads are single statements (or independent lookups) in autocommit. A transaction that fails
//    with serialization_failure or deadlock_detected is retried a few times before Unavailable.
//  - Group commit (unless CROWDGATE_PG_GROUP_COMMIT=off, which makes BeginBatch / EndBatch do nothing
//    and every call or decision commit on its own): a batch is one READ COMMITTED transaction; every call
//    inside runs in it, a write outside a decision behind a savepoint of its own (a failing call
//    spares the others). A serialization failure, a deadlock or a lost connection breaks the batch:
//    EndBatch(true) then fails, nothing of the batch is stored, and LastBatchMayBeRetried() says
//    whether the same calls may succeed when run again (a conflict with another writer). A batch is
//    never retried here: its calls' answers depend on state the caller holds.
//  - A decision (BeginDecision .. EndDecision) starts by locking the worker's row (FOR NO KEY
//    UPDATE, which does not block foreign-key checks): in a transaction of its own, or inside a
//    batch behind a savepoint. Calls inside run without savepoints of their own: after a failed
//    write the decision only accepts EndDecision, which undoes all of it. Lock order: worker row,
//    then the audit lock, then the outbox lock.
//  - BoundLockWaitsInBatch: the rest of the batch waits at most 50 ms for a lock (lock_timeout;
//    CROWDGATE_PG_BATCH_LOCK_WAIT_MS changes it), and
//    a decision inside it does not wait for the worker's row at all (NOWAIT): such a call fails with
//    Busy, having changed nothing, and the caller decides that request outside the batch.
//  - Inside a batch or a decision the change token does not move: the server holds notifications
//    back until the transaction ends. BeginBatch reads it first, so a batch sees every change
//    committed before it began.
//  - Errors: every exception is caught here. A constraint violation (a duplicate name, agent id or
//    run id) -> Conflict, as SQLite; a lost or refused connection -> Unavailable, with a message
//    naming host, port and database but never the password (the next call reconnects); a data
//    error (e.g. an integer out of range) -> InvalidArgument; anything else -> Internal with
//    PostgreSQL's message and SQLSTATE.
//  - Schema: an ordered list of migrations, applied at Open under an advisory lock (so several
//    processes starting at once do not race) and recorded in schema_version. A database whose
//    schema is newer than this binary knows -> Unavailable.
//  - SQL is built only from string literals; every input is a bound parameter (bulk paths pass
//    arrays, built by our own escaping, as one parameter and unnest them). Statements are prepared
//    once per connection.
//
// Scale-out, i.e. what several processes on one database can rely on:
//  - ReserveUnit picks the unit with SELECT ... FOR NO KEY UPDATE SKIP LOCKED LIMIT 1 after locking
//    the worker's row: two processes never hand out one unit twice, and one worker asking two
//    processes at once never gets two copies of one item.
//  - CreateEvalUnit counts against the cap with one conditional UPDATE (gold_served < cap) in the
//    same transaction: caps are never overrun.
//  - The audit log is the change feed. Every transaction that writes audit rows first takes one
//    transaction-level advisory lock (kAuditLockKey in pg_store.cpp), so audit seqs are handed out
//    in commit order and ChangesSince(after_seq) never skips an entry that commits later with a
//    smaller seq. The same lock serialises every grant writer, so kAdd counters are exact.
//  - The outbox: every transaction that inserts outbox rows first takes one transaction-level
//    advisory lock (kOutboxLockKey in pg_store_outbox.cpp), so row ids are handed out in commit order
//    and a drainer never delivers row N+1 of a key while row N, with a smaller id, is still
//    uncommitted and invisible to it. Grant writers take it after the audit lock, never before.
//    ClaimOutbox picks rows with SELECT ... FOR UPDATE SKIP LOCKED and marks them claimed in the
//    same statement: two processes never claim one row. A row whose claim another drainer is
//    writing at that moment is re-checked once that commits (READ COMMITTED re-evaluates a locked
//    row's conditions), so a row just claimed, or just delivered, is not claimed again.
//  - ExternalChangeToken: the connection LISTENs on channel "crowdgate_changes"; every transaction
//    that writes audit rows or creates a run or changes its status NOTIFYs it (delivered at
//    commit). The token counts notifications from OTHER connections (our own writes are already
//    known to the caller) and goes up by one when the connection was re-established (anything may
//    have been missed). Each call makes one round trip to the server before reading the
//    notifications: whatever another process committed before the call started is counted, as
//    with SQLite's data_version, rather than only what happened to have arrived on the socket.
//
// Choices the contract leaves open are the same as SqliteStore's (see sqlite_store.hpp); the
// contract suite pins them for both backends.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crowdgate/store.hpp"

namespace crowdgate {

namespace pg_internal {
class Session;  // the connection, its LISTEN receiver and its prepared statements (pg_store.cpp)
class Tx;       // a transaction in progress (pg_internal.hpp)
class OpenTx;   // the transaction a batch or a decision holds open (pg_internal.hpp)
struct Failure;  // what an exception means (pg_internal.hpp)
}  // namespace pg_internal

class PgStore final : public Store {
 public:
  // The newest schema version this binary knows (the number of migrations).
  static const int kSchemaVersion;

  // `uri` is a libpq connection URI (postgresql://user:pass@host:port/dbname?...). `env` must
  // outlive the store.
  static Result<std::unique_ptr<PgStore>> Open(const std::string& uri, Env* env);
  ~PgStore() override;

  Result<Qualification> CreateQualification(const std::string& name, const std::string& description) override;
  Result<Qualification> EnsureQualification(const std::string& name, const std::string& description) override;
  Result<Qualification> GetQualification(const std::string& name) override;
  Result<std::vector<Qualification>> ListQualifications() override;
  Status DeleteQualification(const std::string& name, const std::string& actor) override;
  Result<std::vector<std::pair<QualId, int64_t>>> CountGrants(int64_t now) override;

  Result<Worker> EnsureWorker(const WorkerRef& ref) override;
  Result<Worker> GetWorker(const WorkerRef& ref) override;
  Result<Worker> GetWorkerById(WorkerId id) override;

  Result<std::vector<AuditEntry>> ApplyGrantOps(const std::vector<GrantOp>& ops,
                                                const std::function<void(size_t)>& progress = {}) override;
  Result<std::vector<Grant>> GrantsForQualification(QualId qual) override;
  Result<std::vector<Grant>> GrantsForWorker(WorkerId worker) override;
  Result<std::vector<Grant>> ExpiredGrants(int64_t now, int64_t limit) override;
  Status ScanAllGrants(const std::function<void(const Grant&)>& fn, int64_t* as_of_seq) override;
  Result<std::vector<AuditEntry>> ChangesSince(int64_t after_seq, int64_t limit) override;
  Result<std::vector<AuditEntry>> History(std::optional<QualId> qual, std::optional<WorkerId> worker) override;
  Result<int64_t> ExternalChangeToken() override;

  Status CreateRun(const RunRecord& run, const std::vector<std::string>& items_json, int units_per_item,
                   const std::function<void(size_t)>& progress = {}) override;
  Result<RunRecord> GetRun(const std::string& run_id) override;
  Result<std::vector<RunRecord>> ListRuns() override;
  Status SetRunStatus(const std::string& run_id, RunStatus status) override;
  Result<std::string> GetItem(const std::string& run_id, int64_t item_index) override;

  Result<std::optional<AgentRecord>> ReserveUnit(const std::string& run_id, AgentRecord agent) override;
  Result<std::optional<AgentRecord>> ReserveUnitWithItem(const std::string& run_id, AgentRecord agent,
                                                         std::string* item_json) override;
  Result<bool> CreateEvalUnit(const std::string& run_id, AgentRecord agent, int64_t cap,
                              const std::string& gold_set) override;
  Status CreateOnboardingAgent(const AgentRecord& agent) override;
  Result<AgentRecord> GetAgent(const std::string& agent_id) override;
  Result<std::vector<AgentRecord>> OpenAgents(const std::string& run_id, WorkerId worker) override;
  Result<std::vector<AgentRecord>> OverdueAgents(int64_t now) override;
  Result<std::vector<AuditEntry>> FinishAgent(const AgentFinish& finish) override;
  Result<std::vector<int64_t>> GoldsSeen(WorkerId worker, const std::string& gold_set) override;
  Status ForgetGoldsSeen(WorkerId worker, const std::string& gold_set) override;
  Result<std::vector<bool>> RecentGoldResults(WorkerId worker, const std::string& gold_set, int64_t n) override;
  Result<int64_t> CountWorkerUnitsForTask(const std::string& task_name, WorkerId worker) override;
  Result<std::vector<AgentRecord>> RunAgents(const std::string& run_id) override;
  Result<std::vector<std::pair<std::string, int64_t>>> UnitStatusCounts(const std::string& run_id) override;
  Result<AgentPage> ListRunAgents(const std::string& run_id, const AgentFilter& filter, int64_t cursor,
                                  int64_t limit) override;
  Result<std::vector<WorkerRunStats>> ListRunWorkerStats(const std::string& run_id, WorkerId after_worker,
                                                         int64_t limit) override;
  Result<std::vector<std::pair<int64_t, int64_t>>> RunThroughput(const std::string& run_id, int64_t bucket_micros,
                                                                 int64_t since) override;
  Result<int64_t> ReviewUnits(const std::string& run_id, const std::vector<int64_t>& unit_ids,
                              UnitStatus new_status, const std::vector<OutboxRow>& outbox = {}) override;
  Status SetRunProviderState(const std::string& run_id, const std::string& state_json) override;
  Result<int64_t> CountSessionSubmissions(const std::string& run_id, WorkerId worker,
                                          const std::string& session) override;
  Result<std::vector<AgentRecord>> OpenAgentsOfSession(const std::string& run_id, const std::string& session) override;

  Result<std::string> DatabaseSecret(const std::string& name) override;

  Status EnqueueOutbox(const std::vector<OutboxRow>& rows) override;
  Result<std::vector<OutboxRow>> ClaimOutbox(const std::string& claimer, int64_t now, int64_t lease_micros,
                                             int limit) override;
  Status UpdateOutboxRow(const OutboxRow& row, bool release) override;
  Result<std::vector<Status>> UpdateOutboxRows(const std::vector<OutboxRow>& rows, bool release) override;
  Result<OutboxCounts> CountOutbox() override;
  Result<std::vector<OutboxRow>> ListOutbox(const std::vector<std::string>& states, int64_t after_id,
                                            int64_t limit) override;

  Status BeginBatch() override;
  Status EndBatch(bool commit) override;
  bool LastBatchMayBeRetried() const override;
  Status BoundLockWaitsInBatch() override;
  // Each write in a batch is a subtransaction; past 64 of them in one transaction PostgreSQL keeps
  // their ids in pg_subtrans instead of shared memory, and every other connection's visibility
  // checks against the batch slow down (SubtransSLRU waits). 48 keeps well below that.
  size_t PreferredBatchLimit() const override;
  Status BeginDecision(WorkerId worker) override;
  // The savepoint (in a batch), the worker's lock and their open agents in the run: one round trip.
  Status BeginRunDecision(WorkerId worker, const std::string& run_id) override;
  Status EndDecision(bool commit) override;

  // Group commit is on unless CROWDGATE_PG_GROUP_COMMIT=off (on|off; anything else is refused).
  // With a decision's savepoint, lock and first read in one round trip, and a write's savepoint
  // riding with its statement, a batch costs fewer round trips than as many transactions of their
  // own, for one server and for several (README, "Scale-out on PostgreSQL").
  static constexpr bool kGroupCommitByDefault = true;

  // Test-only: the server process id behind the current connection (0 when disconnected).
  int TEST_backend_pid() const;

 private:
  enum class TxKind {
    kRead,      // autocommit: each statement sees the latest commits
    kSnapshot,  // REPEATABLE READ, READ ONLY: one snapshot for every statement
    kWrite,     // READ COMMITTED; retried on serialization failure / deadlock
  };
  using Body = std::function<Status(pg_internal::Tx&)>;

  PgStore(std::string uri, std::string where, Env* env);

  // (Re)connects when there is no usable connection.
  Status EnsureConnected();
  // Drops the connection (and the transaction open on it, which the server rolls back).
  void DropSession();
  // BEGIN on open_ (reconnecting once when the connection died while idle).
  Status OpenTransaction();
  // COMMIT or ROLLBACK of open_; clears it.
  Status FinishTransaction(bool commit);
  // A statement failed in a way the open batch or decision cannot survive.
  void BreakOpenTransaction(const pg_internal::Failure& f);
  // Transact inside an open batch or decision (see pg_store_tx.cpp).
  Status TransactInOpen(TxKind kind, const Body& body);
  // The ref of `worker` when the open decision holds its row lock (its existence is known), else null.
  const WorkerRef* LockedWorker(WorkerId worker) const;
  // Runs `body` in one transaction of `kind`; commits if it returns OK. Catches every exception.
  // Inside a decision it runs in the decision's transaction instead.
  // A kWrite body may run more than once (retries): it must reset what it fills in.
  Status Transact(TxKind kind, const Body& body);
  Status Migrate();

  // Helpers that run inside a transaction opened by the caller.
  // Takes the audit advisory lock and queues the change notification (see the header comment).
  void LockAuditAndNotify(pg_internal::Tx& tx);
  // Takes the audit advisory lock only.
  void LockAudit(pg_internal::Tx& tx);
  void Notify(pg_internal::Tx& tx);
  Result<int64_t> RunRowId(pg_internal::Tx& tx, const std::string& run_id);
  Status CheckWorkerExists(pg_internal::Tx& tx, WorkerId worker, WorkerRef* ref);
  Result<Worker> EnsureWorkerInTx(pg_internal::Tx& tx, const WorkerRef& ref);
  Status ApplyGrantOpsInTx(pg_internal::Tx& tx, const std::vector<GrantOp>& ops,
                           const std::function<void(size_t)>& progress, std::vector<AuditEntry>* out);
  // Writes entries[first..] to the audit log and fills in their seq. Needs LockAuditAndNotify.
  Status InsertAudit(pg_internal::Tx& tx, std::vector<AuditEntry>* entries, size_t first);
  Status InsertAgent(pg_internal::Tx& tx, const AgentRecord& agent, int64_t run_rowid);
  // Appends rows (state pending) to the outbox under the outbox lock (see the header comment).
  void InsertOutbox(pg_internal::Tx& tx, const std::vector<OutboxRow>& rows);
  // ReserveUnit; also reads the unit's item into *item_json when it is not null.
  Result<std::optional<AgentRecord>> Reserve(const std::string& run_id, AgentRecord agent, std::string* item_json);

  std::string uri_;
  std::string where_;  // "host:port/dbname as user" for messages; never the password
  std::string password_;  // only to scrub it from library messages, should one ever quote it
  Env* env_;
  std::unique_ptr<pg_internal::Session> session_;
  // The transaction an open batch or decision holds (declared after session_: destroyed before the
  // connection).
  std::unique_ptr<pg_internal::OpenTx> open_;
  // Whether BeginBatch opens a transaction (CROWDGATE_PG_GROUP_COMMIT; see GroupCommitFromEnvironment).
  bool group_commit_ = kGroupCommitByDefault;
  // How long a call inside a batch waits for a lock before it fails with Busy
  // (CROWDGATE_PG_BATCH_LOCK_WAIT_MS, 1..60000). Long enough for another server's batch to commit
  // in the common case, short enough that two batches waiting for each other give up long before
  // PostgreSQL's deadlock check (deadlock_timeout, 1 s by default) runs.
  int batch_lock_wait_ms_ = 50;
  // Reads CROWDGATE_PG_GROUP_COMMIT and CROWDGATE_PG_BATCH_LOCK_WAIT_MS; InvalidArgument names a bad value.
  Status BatchSettingsFromEnvironment();
  bool in_batch_ = false;         // BeginBatch .. EndBatch
  bool bounded_waits_ = false;    // BoundLockWaitsInBatch was called for the open batch
  Status batch_failure_;          // why the open batch can no longer commit (OK while it can)
  bool batch_retryable_ = false;  // ... and that reason is a conflict with another writer
  bool last_batch_retryable_ = false;  // LastBatchMayBeRetried()
  bool in_decision_ = false;      // BeginDecision .. EndDecision
  bool decision_failed_ = false;  // a write of the open decision failed
  // The open decision's worker and its ref, when its row exists (and is locked).
  std::optional<std::pair<WorkerId, WorkerRef>> decision_worker_;
  // What BeginRunDecision read with the lock: the worker's open agents in one run. OpenAgents
  // answers from it once; a write of the decision (which may change them) drops it.
  struct PrefetchedOpenAgents {
    std::string run_id;
    WorkerId worker = 0;
    std::vector<AgentRecord> agents;
  };
  std::optional<PrefetchedOpenAgents> prefetched_open_;
  std::optional<std::vector<AgentRecord>> TakePrefetchedOpenAgents(const std::string& run_id, WorkerId worker);
  // BeginDecision and BeginRunDecision (run_id: the run whose open agents to read with the lock).
  Status OpenDecision(WorkerId worker, const std::string* run_id);
  bool ever_connected_ = false;
  // Notifications counted from other connections, plus reconnections (ExternalChangeToken).
  int64_t external_changes_ = 0;
  // Runs are never deleted or renamed: their row ids are cached once read.
  std::unordered_map<std::string, int64_t> run_rids_;
};

}  // namespace crowdgate
