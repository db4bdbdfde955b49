// PgStore: the connection and the transactions every store call runs in — a call of its own, a
// batch (group commit) or a decision — and the change token, which depends on them.
//
// Inside a batch or a decision every call runs in the one transaction they hold open:
//  - A decision's calls run without savepoints of their own: a failed call fails the decision,
//    and EndDecision undoes all of it (ROLLBACK TO the decision's savepoint inside a batch, ROLLBACK
//    outside one). That is the store contract, and it saves two round trips per write.
//  - A write outside any decision but inside a batch runs behind a savepoint, so a failing call
//    spares the batch's other calls. Reads need none: a read that fails breaks the batch.
//  - A serialization failure, a deadlock or a lost connection breaks the whole batch: nothing of
//    it is stored, and LastBatchMayBeRetried() tells the caller whether deciding it again may work.
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "store/postgres/pg_internal.hpp"
#include "store/postgres/pg_store.hpp"

namespace crowdgate {

using pg_internal::Args;
using pg_internal::Failure;
using pg_internal::Sql;
using pg_internal::Text;
using pg_internal::Tx;

namespace {

// Attempts of a transaction that fails with a serialization failure or a deadlock.
constexpr int kMaxAttempts = 5;

constexpr Sql kPing{"cg_ping", "SELECT 1"};
constexpr Sql kDecisionWorkerLock{"cg_decision_worker_lock",
                                  "SELECT provider, name FROM workers WHERE id = $1 FOR NO KEY UPDATE"};
// Inside a batch: waiting for another server's batch while holding our own batch's locks could
// close a cycle of waits (a deadlock, which PostgreSQL only breaks after deadlock_timeout).
constexpr Sql kDecisionWorkerLockNowait{"cg_decision_worker_lock_nowait",
                                        "SELECT provider, name FROM workers WHERE id = $1 FOR NO KEY UPDATE NOWAIT"};

// Savepoint names: a decision's, and a lone write's inside a batch. Names may repeat: ROLLBACK TO
// goes back to the most recent savepoint of that name.
constexpr const char* kDecisionSavepoint = "SAVEPOINT cg_decision";
constexpr const char* kDecisionRollback = "ROLLBACK TO SAVEPOINT cg_decision";
constexpr const char* kCallSavepoint = "SAVEPOINT cg_call";
constexpr const char* kCallRollback = "ROLLBACK TO SAVEPOINT cg_call";
// The batch's lock_timeout (for the rest of its transaction): see PgStore::BatchLockWaitMs.
constexpr Sql kBoundLockWaits{"cg_bound_lock_waits", "SELECT set_config('lock_timeout', $1, true)"};

}  // namespace

Status PgStore::EnsureConnected() {
  if (session_) return Status::Ok();
  try {
    session_ = std::make_unique<pg_internal::Session>(uri_, &external_changes_);
  } catch (...) {
    session_.reset();
    Failure f = pg_internal::Classify(where_, password_);
    if (f.broken || f.status.IsUnavailable()) {
      std::string msg = f.status.message();
      const std::string lost = "lost the connection to ";
      if (msg.rfind(lost, 0) == 0) msg = msg.substr(lost.size());
      return Status::Unavailable("cannot connect to " + msg);
    }
    return f.status;
  }
  // Notifications sent while we had no connection are lost: report "something may have changed".
  if (ever_connected_) ++external_changes_;
  ever_connected_ = true;
  return Status::Ok();
}

void PgStore::DropSession() {
  open_.reset();
  session_.reset();
}

Status PgStore::OpenTransaction() {
  for (int attempt = 1;; ++attempt) {
    CG_RETURN_IF_ERROR(EnsureConnected());
    try {
      open_ = std::make_unique<pg_internal::OpenTx>(session_->conn(), *session_);
      return Status::Ok();
    } catch (...) {
      Failure f = pg_internal::Classify(where_, password_);
      open_.reset();
      if (f.broken) DropSession();
      // A connection libpqxx already knows is broken fails here (BEGIN itself waits for the first
      // statement; a connection that died while idle is found by the ping before each batch or
      // decision): nothing was written yet, try once more.
      if ((f.broken || f.retry) && attempt < 2) continue;
      return f.status;
    }
  }
}

Status PgStore::FinishTransaction(bool commit) {
  try {
    if (commit) {
      open_->Commit();
    } else {
      open_->Rollback();
    }
    open_.reset();
    return Status::Ok();
  } catch (...) {
    Failure f = pg_internal::Classify(where_, password_);
    open_.reset();
    if (f.broken) DropSession();
    last_batch_retryable_ = f.retry;
    return f.status;
  }
}

void PgStore::BreakOpenTransaction(const Failure& f) {
  if (in_decision_) decision_failed_ = true;
  if (in_batch_ && batch_failure_.ok()) {
    batch_failure_ = f.status;
    batch_retryable_ = f.retry;
  }
  if (f.broken) DropSession();
}

Status PgStore::BeginBatch() {
  if (in_batch_ || in_decision_) return Status::Internal("BeginBatch: a batch or a decision is already open");
  last_batch_retryable_ = false;
  if (!group_commit_) return Status::Ok();  // every call (and decision) commits on its own
  // Count what other processes committed before the batch: inside a transaction the server holds
  // notifications back until it ends, so ExternalChangeToken cannot ask again until EndBatch.
  CG_RETURN_IF_ERROR(ExternalChangeToken().status());
  CG_RETURN_IF_ERROR(OpenTransaction());
  in_batch_ = true;
  batch_failure_ = Status::Ok();
  batch_retryable_ = false;
  return Status::Ok();
}

Status PgStore::EndBatch(bool commit) {
  if (!group_commit_) return Status::Ok();
  if (!in_batch_) return Status::Internal("EndBatch without BeginBatch");
  if (in_decision_) (void)EndDecision(/*commit=*/false);
  in_batch_ = false;
  bounded_waits_ = false;
  const Status failure = batch_failure_;
  batch_failure_ = Status::Ok();
  last_batch_retryable_ = batch_retryable_;
  if (!open_) {
    if (!commit) return Status::Ok();
    return failure.ok() ? Status::Unavailable("lost the connection to PostgreSQL at " + where_ +
                                              " during a batch: nothing of it is stored")
                        : failure;
  }
  Status finished = FinishTransaction(commit && failure.ok());
  if (!commit) return Status::Ok();
  if (!failure.ok()) return failure;
  return finished;
}

bool PgStore::LastBatchMayBeRetried() const { return last_batch_retryable_; }

size_t PgStore::PreferredBatchLimit() const { return group_commit_ ? 48 : 0; }

Status PgStore::BatchSettingsFromEnvironment() {
  if (const char* v = std::getenv("CROWDGATE_PG_GROUP_COMMIT"); v != nullptr && *v != '\0') {
    const std::string value(v);
    if (value != "on" && value != "off") {
      return Status::InvalidArgument("CROWDGATE_PG_GROUP_COMMIT must be \"on\" or \"off\", not \"" + value + "\"");
    }
    group_commit_ = value == "on";
  }
  if (const char* v = std::getenv("CROWDGATE_PG_BATCH_LOCK_WAIT_MS"); v != nullptr && *v != '\0') {
    const std::string value(v);
    char* end = nullptr;
    const long ms = std::strtol(value.c_str(), &end, 10);
    if (end == value.c_str() || *end != '\0' || ms < 1 || ms > 60000) {
      return Status::InvalidArgument("CROWDGATE_PG_BATCH_LOCK_WAIT_MS must be a whole number of milliseconds from 1 "
                                     "to 60000, not \"" + value + "\"");
    }
    batch_lock_wait_ms_ = static_cast<int>(ms);
  }
  return Status::Ok();
}

Status PgStore::BoundLockWaitsInBatch() {
  if (!group_commit_) return Status::Ok();
  if (!in_batch_) return Status::Internal("BoundLockWaitsInBatch outside a batch");
  if (!batch_failure_.ok()) return batch_failure_;
  if (!open_) return Status::Unavailable("lost the connection to PostgreSQL at " + where_ + " during a batch");
  try {
    Tx tx = open_->Statements();
    tx.Run(kBoundLockWaits, Args(std::to_string(batch_lock_wait_ms_) + "ms"));
    bounded_waits_ = true;
    return Status::Ok();
  } catch (...) {
    Failure f = pg_internal::Classify(where_, password_);
    BreakOpenTransaction(f);
    return f.status;
  }
}

Status PgStore::BeginDecision(WorkerId worker) { return OpenDecision(worker, nullptr); }

Status PgStore::BeginRunDecision(WorkerId worker, const std::string& run_id) { return OpenDecision(worker, &run_id); }

std::optional<std::vector<AgentRecord>> PgStore::TakePrefetchedOpenAgents(const std::string& run_id,
                                                                          WorkerId worker) {
  if (!prefetched_open_ || !in_decision_ || !batch_failure_.ok() || prefetched_open_->worker != worker ||
      prefetched_open_->run_id != run_id) {
    return std::nullopt;
  }
  std::vector<AgentRecord> agents = std::move(prefetched_open_->agents);
  prefetched_open_.reset();
  return agents;
}

Status PgStore::OpenDecision(WorkerId worker, const std::string* run_id) {
  if (in_decision_) return Status::Internal("BeginDecision: a decision is already open");
  decision_failed_ = false;
  decision_worker_.reset();
  prefetched_open_.reset();
  if (in_batch_) {
    if (!batch_failure_.ok()) return batch_failure_;
    if (!open_) return Status::Unavailable("lost the connection to PostgreSQL at " + where_ + " during a batch");
  } else {
    CG_RETURN_IF_ERROR(OpenTransaction());
  }
  try {
    Tx tx = open_->Statements();
    std::optional<int64_t> rid;
    if (run_id != nullptr) {
      Result<int64_t> found = RunRowId(tx, *run_id);  // cached after the run's first request
      if (!found.ok()) {
        if (!in_batch_) open_.reset();
        return found.status();
      }
      rid = *found;
    }
    // One round trip: [the decision's savepoint;] the worker's lock, which waits for any other
    // server's decision about this worker to commit (inside a batch: does not wait but says so);
    // [then, as a statement of its own so that it sees what such a decision committed, the worker's
    // open agents in the run].
    if (in_batch_) tx.Prefix(kDecisionSavepoint);
    std::string statements =
        tx.ExecuteText(bounded_waits_ ? kDecisionWorkerLockNowait : kDecisionWorkerLock, Args(worker));
    if (rid) statements += "; " + tx.ExecuteText(pg_internal::kDecisionOpenAgents, Args(*rid, worker));
    pqxx::result r;
    try {
      r = tx.ExecLiteral(statements);
    } catch (const pqxx::sql_error& e) {
      if (!bounded_waits_ || e.sqlstate() != "55P03") throw;
      tx.ExecLiteral(kDecisionRollback);
      return Status::Busy("another connection is deciding about worker id " + std::to_string(worker) +
                          " right now: decide outside this batch");
    }
    if (rid) {
      if (std::optional<pg_internal::DecisionOpenAgents> read = pg_internal::ReadDecisionOpenAgents(r)) {
        decision_worker_ = std::make_pair(worker, read->worker);
        prefetched_open_ = PrefetchedOpenAgents{*run_id, worker, std::move(read->agents)};
      }
    } else if (!r.empty()) {
      decision_worker_ = std::make_pair(worker, WorkerRef{Text(r[0][0]), Text(r[0][1])});
    }
    in_decision_ = true;
    return Status::Ok();
  } catch (...) {
    Failure f = pg_internal::Classify(where_, password_);
    if (in_batch_) {
      BreakOpenTransaction(f);
    } else {
      open_.reset();
      if (f.broken) DropSession();
    }
    return f.status;
  }
}

Status PgStore::EndDecision(bool commit) {
  if (!in_decision_) return Status::Internal("EndDecision without BeginDecision");
  in_decision_ = false;
  decision_worker_.reset();
  prefetched_open_.reset();
  const bool failed = decision_failed_;
  decision_failed_ = false;
  const Status lost = Status::Unavailable("a statement of the decision failed: nothing of it is stored");
  if (in_batch_) {
    if (!batch_failure_.ok()) return commit ? batch_failure_ : Status::Ok();
    if (!open_) return commit ? lost : Status::Ok();
    if (commit && !failed) return Status::Ok();  // the batch's commit stores it
    try {
      Tx tx = open_->Statements();
      tx.ExecLiteral(kDecisionRollback);
    } catch (...) {
      Failure f = pg_internal::Classify(where_, password_);
      BreakOpenTransaction(f);
      return commit ? f.status : Status::Ok();
    }
    return commit ? lost : Status::Ok();
  }
  if (!open_) {
    return commit ? Status::Unavailable("lost the connection in a decision: nothing of it is stored") : Status::Ok();
  }
  Status finished = FinishTransaction(commit && !failed);
  if (!commit) return Status::Ok();
  if (failed) return lost;
  return finished;
}

const WorkerRef* PgStore::LockedWorker(WorkerId worker) const {
  if (!in_decision_ || !decision_worker_ || decision_worker_->first != worker) return nullptr;
  return &decision_worker_->second;
}

Status PgStore::TransactInOpen(TxKind kind, const Body& body) {
  if (!batch_failure_.ok()) return batch_failure_;
  if (in_decision_ && decision_failed_) {
    return Status::Unavailable("a statement of this decision failed: nothing of it is stored");
  }
  if (!open_) return Status::Unavailable("lost the connection to PostgreSQL at " + where_ + ": nothing of it is stored");
  // A write of its own inside a batch: a savepoint lets it fail alone.
  const bool guarded = !in_decision_ && kind == TxKind::kWrite;
  if (kind == TxKind::kWrite) prefetched_open_.reset();  // the write may change the agents read ahead
  bool savepoint_sent = false;
  try {
    Tx tx = open_->Statements();
    if (guarded) tx.Prefix(kCallSavepoint);  // sent with the call's first statement: no round trip of its own
    // A snapshot read of several statements: with the audit lock held no grant writer commits
    // between them (every grant writer takes it first), so they all see one state.
    if (kind == TxKind::kSnapshot) LockAudit(tx);
    Status s;
    try {
      s = body(tx);
    } catch (...) {
      savepoint_sent = guarded && !tx.PrefixPending();
      tx.DropPrefix();
      throw;
    }
    if (!s.ok()) {
      if (in_decision_ && kind == TxKind::kWrite) {
        decision_failed_ = true;  // EndDecision undoes whatever the call wrote
      } else if (guarded && tx.PrefixPending()) {  // nothing ran: nothing to undo
        tx.DropPrefix();
      } else if (guarded) {
        tx.ExecLiteral(kCallRollback);
      }
    }
    return s;
  } catch (...) {
    Failure f = pg_internal::Classify(where_, password_);
    if (f.broken || f.retry) {
      BreakOpenTransaction(f);
      return f.status;
    }
    if (in_decision_) {  // EndDecision undoes the decision (and ends the aborted state)
      decision_failed_ = true;
      return f.status;
    }
    if (!guarded) {  // a read failed: the transaction is aborted and nothing marks where to go back to
      BreakOpenTransaction(f);
      return f.status;
    }
    // Failed before its first statement went out: the transaction is untouched, and the most recent
    // savepoint of that name is an earlier call's (going back to it would undo that call).
    if (!savepoint_sent) return f.status;
    try {  // an ordinary error (a constraint, bad data, a lock not waited for): undo this call only
      Tx tx = open_->Statements();
      tx.ExecLiteral(kCallRollback);
    } catch (...) {
      BreakOpenTransaction(pg_internal::Classify(where_, password_));
    }
    return f.status;
  }
}

Status PgStore::Transact(TxKind kind, const Body& body) {
  if (in_batch_ || in_decision_) return TransactInOpen(kind, body);
  bool reconnected = false;
  for (int attempt = 1;; ++attempt) {
    CG_RETURN_IF_ERROR(EnsureConnected());
    bool begun = false;  // BEGIN went through: a write may have reached the server
    try {
      pqxx::connection& c = session_->conn();
      Status s;
      if (kind == TxKind::kWrite) {
        pqxx::work t(c);
        begun = true;
        pg_internal::Tx tx(t, *session_);
        s = body(tx);
        if (s.ok()) t.commit();  // otherwise the destructor rolls back
      } else if (kind == TxKind::kSnapshot) {
        pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> t(c);
        pg_internal::Tx tx(t, *session_);
        s = body(tx);
        if (s.ok()) t.commit();
      } else {
        pqxx::nontransaction t(c);
        pg_internal::Tx tx(t, *session_);
        s = body(tx);
      }
      return s;
    } catch (...) {
      Failure f = pg_internal::Classify(where_, password_);
      if (f.broken) DropSession();
      if (f.retry && attempt < kMaxAttempts) {
        pg_internal::Backoff(attempt);
        continue;
      }
      // A connection that died while idle (a server restart) shows up at the first statement:
      // reconnect once and run again when nothing can have been written.
      if (f.broken && !reconnected && (kind != TxKind::kWrite || !begun)) {
        reconnected = true;
        continue;
      }
      return f.status;
    }
  }
}

// ---- change token ------------------------------------------------------------------------------
Result<int64_t> PgStore::ExternalChangeToken() {
  // Inside a batch or a decision the server delivers no notifications until the transaction ends:
  // the token stays what BeginBatch (or the last call before the decision) counted.
  if (in_batch_ || in_decision_) return external_changes_;
  // The round trip makes the server send us every notification committed before it: a backend
  // that is signalled about a NOTIFY passes it on before it answers our next query. Without it we
  // would only see what happened to have reached the socket already.
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    tx.Run(kPing);
    return Status::Ok();
  }));
  try {
    session_->conn().get_notifs();
    if (session_->ReconnectedSinceLastCheck()) ++external_changes_;
  } catch (...) {
    Failure f = pg_internal::Classify(where_, password_);
    if (f.broken) DropSession();
    return f.status;
  }
  return external_changes_;
}

}  // namespace crowdgate
