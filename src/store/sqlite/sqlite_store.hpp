// SqliteStore: the embedded SQLite backend of crowdgate::Store (see include/crowdgate/store.hpp
// for the contract every backend keeps). Reached through Store::Open("sqlite:PATH" | PATH | ":memory:").
//
// Contract, beyond store.hpp:
//  - Thread-safety: a SqliteStore is used by one thread at a time (the connection is opened
//    SQLITE_OPEN_NOMUTEX). Several SqliteStore objects, in one process or many, may open the same
//    file; SQLite serialises their writers and each sees the others' commits.
//  - Connection settings: WAL, synchronous=FULL, a wait of up to 5 s for another writer (BusyWait:
//    tries every 50-400 µs, where SQLite's busy_timeout sleeps up to 100 ms), foreign_keys=ON,
//    temp_store=MEMORY; the WAL is checkpointed by a thread of its own (WalCheckpointer), never by
//    a commit. With
//    FULL every commit is fsynced before it returns, so what we answered survives a kill -9 and
//    a power cut alike. CROWDGATE_SQLITE_SYNC=normal selects synchronous=NORMAL (the commit is
//    in the WAL, not yet on the platter: a kill -9 loses nothing, a power cut may lose the last
//    commits); any other value is InvalidArgument at open.
//  - Every public method is one transaction (BEGIN IMMEDIATE for writes, a deferred read
//    transaction for reads). Any error rolls back and is returned as a Status: SQLITE_BUSY/LOCKED
//    -> Unavailable, constraint violations -> Conflict, anything else -> Internal with SQLite's
//    message.
//  - Schema: an ordered list of migrations applied at open and recorded in schema_version. A file
//    whose schema version is newer than this binary knows -> Unavailable; a path that cannot be
//    opened as a database -> InvalidArgument naming it.
//  - SQL is built only from string literals; every input is a bound parameter. Prepared statements
//    are cached per object for its lifetime.
//
// Choices the contract leaves open (a PostgreSQL backend must make the same ones; the contract
// suite pins them):
//  - The grant rules (the next two points) are DecideGrantStep's (core/grant_rule.hpp), which every
//    backend calls.
//  - GrantOp::kSet on an existing grant always writes a kChange entry, even when value and expiry
//    are unchanged: actor and updated_at change, and "granted again" stays visible in History.
//  - A grant that has expired counts as absent: kSet / kAdd on it is a fresh kGrant (old_value
//    absent, granted_at reset, kAdd starts from 0 and takes the op's expiry). kRevoke deletes any
//    stored grant, expired or not, and writes kRevoke.
//  - The kRevoke entries written by DeleteQualification carry reason "qualification deleted".
//  - CountGrants lists every qualification, with 0 for those without live grants.
//  - UnitStatusCounts counts units of kind "unit" only (gold/screening units are not run progress).
//  - ReviewUnits accepts new_status accepted | rejected | soft_rejected and counts rows whose status
//    actually changed.
//  - FinishAgent: release_unit wins over unit_status; a unit is released only if it is still held
//    by this agent.
//  - Provider outbox: EnqueueOutbox and ReviewUnits store rows as pending, unattempted and unclaimed
//    whatever those fields say (created_at 0 = now; next_attempt_at as given, 0 = due at once);
//    provider, kind and order_key must not be empty. ReviewUnits writes its rows even when no unit
//    changed (the caller decides what is owed). A row whose claim has not lapsed is not claimed
//    again, not even by the same claimer. UpdateOutboxRow with an empty claimed_by updates a row no
//    one holds (an operator's retry); unknown id -> NotFound; unknown state -> InvalidArgument.
//    The claim lease is checked at claim time only: an update by a claimer whose lease lapsed
//    succeeds as long as nobody else took the row.
//  - grant_sync rows are written for the ops that write a kGrant, kChange or kRevoke audit entry
//    (so a kSet repeating the same value writes one too). DeleteQualification writes none.
//  - CountSessionSubmissions counts agents with submitted_at set; OpenAgentsOfSession and
//    CountSessionSubmissions answer NotFound for an unknown run (and the latter for an unknown worker).
//  - SetRunProviderState needs a JSON object (else InvalidArgument). DatabaseSecret needs a name.
//  - Units are numbered item-major (item 0 copy 0, item 0 copy 1, ...), so ReserveUnit hands out
//    the copies of early items first, as Mephisto does.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "crowdgate/store.hpp"
#include "store/sqlite/busy_wait.hpp"
#include "store/sqlite/wal_checkpointer.hpp"

namespace crowdgate {

class SqliteQuery;  // RAII handle on a cached statement; defined in sqlite_internal.hpp

class SqliteStore final : public Store {
 public:
  // The newest schema version this binary knows (the number of migrations).
  static const int kSchemaVersion;

  // `path` is a file path or ":memory:". `env` must outlive the store.
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, Env* env);
  ~SqliteStore() override;

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
  bool BatchExcludesOtherWriters() const override { return true; }  // BEGIN IMMEDIATE
  Status BeginDecision(WorkerId worker) override;
  Status EndDecision(bool commit) override;

  // Test-only: the raw connection (to check pragmas, or to end a transaction behind the store's
  // back as SQLite itself does after SQLITE_FULL or an I/O error).
  sqlite3* TEST_db() { return db_; }
  // Test-only: the background checkpointer of a file database (null for ":memory:").
  const WalCheckpointer* TEST_checkpointer() const { return checkpointer_.get(); }

 private:
  enum class TxKind { kRead, kWrite };

  SqliteStore(sqlite3* db, Env* env, std::string path);
  // sqlite3_wal_hook: after each commit of this connection.
  static int OnWalCommit(void* checkpointer, sqlite3* db, const char* schema, int wal_pages);

  // Returns a handle on the cached statement for `sql`, preparing it on first use. `sql` must
  // have static storage duration (a literal): it is the cache key.
  Result<SqliteQuery> Query(std::string_view sql);
  // Runs `body` in one transaction; commits if it returns OK, rolls back otherwise. Inside a
  // batch, `body` runs in a savepoint of the batch's transaction instead.
  Status Transact(TxKind kind, const std::function<Status()>& body);
  Status ExecCached(std::string_view sql);
  Status Migrate();

  // Helpers that run inside a transaction opened by the caller.
  // *created (if given) tells whether the worker was inserted now.
  Result<Worker> EnsureWorkerInTx(const WorkerRef& ref, bool* created);
  Result<int64_t> RunRowId(const std::string& run_id);
  Status CheckWorkerExists(WorkerId worker, WorkerRef* ref);
  // FinishAgent's reject_unit_ids (see AgentFinish), inside the open transaction.
  Status RejectForRelabelInTx(int64_t rid, const std::vector<int64_t>& unit_ids);
  Status ApplyGrantOpsInTx(const std::vector<GrantOp>& ops, const std::function<void(size_t)>& progress,
                           std::vector<AuditEntry>* out);
  Status InsertAudit(AuditEntry* entry);
  // Writes (*entries)[first..] to the audit log, several rows per statement, and fills in their seq.
  Status FlushAudit(std::vector<AuditEntry>* entries, size_t first);
  Status InsertAgent(const AgentRecord& agent, int64_t run_rowid);
  // Appends rows[first..] to the outbox (state pending), several rows per statement, in order.
  Status InsertOutbox(const std::vector<OutboxRow>& rows, size_t first);
  // UpdateOutboxRow's write; Conflict / NotFound when the row is not `row.claimed_by`'s.
  Status UpdateOutboxRowInTx(const OutboxRow& row, bool release, int64_t now);
  // ReserveUnit; also reads the unit's item into *item_json when it is not null.
  Result<std::optional<AgentRecord>> Reserve(const std::string& run_id, AgentRecord agent, std::string* item_json);
  Result<std::vector<AgentRecord>> ReadAgents(SqliteQuery& q);

  sqlite3* db_;
  Env* env_;
  std::string path_;
  BusyWait busy_wait_;
  // Checkpoints the WAL off this connection's thread (see wal_checkpointer.hpp); file databases only.
  std::unique_ptr<WalCheckpointer> checkpointer_;
  // True while this store's own transaction is open (a batch, or a decision outside one).
  bool InTransaction() const { return in_batch_ || own_decision_tx_; }
  // Fails once SQLite has ended the open transaction on its own (after SQLITE_FULL, an I/O error,
  // SQLITE_NOMEM...): every later call of the batch or decision would otherwise run in autocommit
  // and be stored while the batch as a whole reports failure.
  Status CheckTransactionAlive();

  bool in_batch_ = false;  // BeginBatch .. EndBatch: Transact uses savepoints
  bool in_decision_ = false;  // BeginDecision .. EndDecision
  bool own_decision_tx_ = false;  // the decision opened the transaction (no batch around it)
  bool tx_lost_ = false;  // SQLite rolled the open transaction back (CheckTransactionAlive)
  std::unordered_map<std::string, int64_t> run_rids_;  // run id -> rowid (RunRowId)
  // Keyed by the SQL literal itself; finalized in the destructor.
  std::unordered_map<std::string_view, sqlite3_stmt*> stmts_;
};

}  // namespace crowdgate
