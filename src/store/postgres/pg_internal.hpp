// Internals shared by the PostgreSQL backend's translation units (pg_store.cpp, pg_store_runs.cpp).
// Not part of any public interface.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <pqxx/pqxx>

#include "crowdgate/store.hpp"

namespace crowdgate::pg_internal {

// The channel every change notification goes to (see pg_store.hpp, ExternalChangeToken).
inline constexpr const char* kChangeChannel = "crowdgate_changes";
// Bulk operations call their progress callback about every this many rows (as SqliteStore).
inline constexpr size_t kProgressEvery = 10000;

// A statement: prepared once per connection under `name`. Both are string literals.
struct Sql {
  const char* name;
  const char* text;
};

// A PostgreSQL array literal ('{1,2,NULL}', '{"a","b\"c"}') built from values, passed as ONE bound
// parameter and unnested in SQL. Every text element is quoted and escaped, so no input can change
// the array's shape.
class PgArray {
 public:
  template <std::integral T>
  void Add(T v) {
    Sep();
    s_ += std::to_string(v);
  }
  void Add(const std::optional<int64_t>& v) {
    Sep();
    s_ += v ? std::to_string(*v) : std::string("NULL");
  }
  void Add(std::string_view text) {
    Sep();
    s_ += '"';
    for (char c : text) {
      if (c == '"' || c == '\\') s_ += '\\';
      s_ += c;
    }
    s_ += '"';
  }
  size_t size() const { return n_; }
  size_t bytes() const { return s_.size(); }
  std::string Literal() const { return "{" + s_ + "}"; }

 private:
  void Sep() {
    if (n_++ > 0) s_ += ',';
  }
  std::string s_;
  size_t n_ = 0;
};

// Bound parameters of one statement, in order ($1, $2, ...). nullopt is SQL NULL.
class Args {
 public:
  Args() = default;
  template <typename... T>
  explicit Args(const T&... v) {
    (Add(v), ...);
  }

  template <std::integral T>
  Args& Add(T v) {
    static_assert(!std::is_same_v<T, bool>, "pass integers, not bools");
    values_.emplace_back(std::to_string(v));
    return *this;
  }
  Args& Add(const std::string& v) {
    values_.emplace_back(v);
    return *this;
  }
  Args& Add(std::string_view v) {
    values_.emplace_back(std::string(v));
    return *this;
  }
  Args& Add(const char* v) {
    values_.emplace_back(std::string(v));
    return *this;
  }
  Args& Add(const std::optional<int64_t>& v) {
    if (v) {
      values_.emplace_back(std::to_string(*v));
    } else {
      values_.emplace_back(std::nullopt);
    }
    return *this;
  }
  Args& Add(const std::optional<std::string>& v) {
    values_.emplace_back(v);
    return *this;
  }
  Args& Add(std::nullopt_t) {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  Args& Add(const PgArray& a) {
    values_.emplace_back(a.Literal());
    return *this;
  }

  const std::vector<std::optional<std::string>>& values() const { return values_; }

 private:
  std::vector<std::optional<std::string>> values_;
};

// Counts notifications on kChangeChannel sent by other backends.
class ChangeReceiver final : public pqxx::notification_receiver {
 public:
  ChangeReceiver(pqxx::connection_base& c, int64_t* counter)
      : pqxx::notification_receiver(c, kChangeChannel), counter_(counter) {}
  // `backend_pid` is the pid of the NOTIFYing backend (libpq's PGnotify::be_pid).
  void operator()(const std::string& /*payload*/, int backend_pid) override {
    if (backend_pid != conn().backendpid()) ++*counter_;
  }

 private:
  int64_t* counter_;
};

// Drops the server's notices and warnings: they would otherwise be printed on stderr, in the
// middle of the CLI's output.
class QuietErrors final : public pqxx::errorhandler {
 public:
  explicit QuietErrors(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
  bool operator()(const char[]) noexcept override { return false; }
};

// One connection with its LISTEN and its prepared statements. Constructing it connects (throws
// pqxx exceptions on failure).
class Session {
 public:
  Session(const std::string& uri, int64_t* change_counter);
  ~Session();

  pqxx::connection& conn() { return *conn_; }
  int backend_pid() const { return pid_; }
  // True (once) when libpqxx re-established the connection behind our back since we last looked:
  // notifications sent meanwhile were lost.
  bool ReconnectedSinceLastCheck() {
    const int pid = conn_->backendpid();
    if (pid == pid_) return false;
    pid_ = pid;
    return true;
  }
  // Executes `sql`, preparing it on this connection on first use.
  pqxx::result Run(pqxx::transaction_base& tx, const Sql& sql, const Args& args);
  // The SQL text "EXECUTE name(literal, ...)" that runs prepared `sql` with `args` (quoted by the
  // connection, NULL for nullopt), after making sure the server has it prepared now. Lets a
  // prepared statement ride in one round trip with other statements (Tx::Prefix, BeginDecision).
  std::string ExecuteText(pqxx::transaction_base& tx, const Sql& sql, const Args& args);

 private:
  // Defines `sql` on this connection once (libpqxx prepares it on the server at first use).
  void Declare(const Sql& sql);
  // Destroyed in reverse order: the receiver and the handler before their connection.
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<QuietErrors> errors_;
  std::unique_ptr<ChangeReceiver> receiver_;
  std::unordered_set<std::string> prepared_;
  int pid_ = 0;
};

// A transaction in progress, handed to the bodies of PgStore::Transact.
class Tx {
 public:
  // `pending`: statements still to send ahead of the next one (an open transaction's BEGIN); a Tx
  // of its own starts with none.
  Tx(pqxx::transaction_base& tx, Session& session, std::string* pending = nullptr)
      : tx_(tx), session_(session), pending_(pending != nullptr ? pending : &own_) {}
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  pqxx::result Run(const Sql& sql, const Args& args = Args()) {
    if (pending_->empty()) return session_.Run(tx_, sql, args);
    return ExecLiteral(session_.ExecuteText(tx_, sql, args));
  }
  // SQL text; may hold several statements. The result is the last one's.
  pqxx::result ExecLiteral(const std::string& sql) {
    if (pending_->empty()) return tx_.exec(sql);
    const std::string chained = *pending_ + "; " + sql;
    pending_->clear();  // sent, whatever comes back: a statement that fails after them still ran them
    prefix_at_ = std::string::npos;
    return tx_.exec(chained);
  }
  // Sends `statement` (one whose result nobody reads, such as SAVEPOINT) in the same round trip as
  // the next statement, ahead of it.
  void Prefix(const char* statement) {
    prefix_at_ = pending_->size();
    if (!pending_->empty()) *pending_ += "; ";
    *pending_ += statement;
  }
  // The statement given to Prefix has not been sent: nothing ran through this Tx since.
  bool PrefixPending() const { return prefix_at_ != std::string::npos; }
  // The text that runs prepared `sql` inside a chain of statements (Session::ExecuteText).
  std::string ExecuteText(const Sql& sql, const Args& args) { return session_.ExecuteText(tx_, sql, args); }
  // Takes back a Prefix that was never sent (what was pending before it stays).
  void DropPrefix() {
    if (!PrefixPending()) return;
    pending_->resize(prefix_at_);
    prefix_at_ = std::string::npos;
  }

 private:
  pqxx::transaction_base& tx_;
  Session& session_;
  std::string own_;
  std::string* pending_;
  size_t prefix_at_ = std::string::npos;
};

// The transaction a batch or a decision holds open across store calls (PgStore::BeginBatch /
// BeginDecision .. EndBatch / EndDecision). BEGIN, COMMIT and ROLLBACK are ours, sent through a
// pqxx::nontransaction: libpqxx's transaction classes roll back the whole transaction on any failed
// statement, which would undo a batch for one call that failed behind its savepoint (or one decision
// that found its worker locked). BEGIN goes with the first statement (no round trip of its own), and
// a transaction that ran nothing ends without one.
class OpenTx {
 public:
  OpenTx(pqxx::connection& c, Session& session) : tx_(c), session_(session) {}
  ~OpenTx() {
    if (!Untouched() && !ended_) {
      try {
        tx_.exec("ROLLBACK");
      } catch (...) {  // a broken connection: the server rolls back by itself
      }
    }
  }
  OpenTx(const OpenTx&) = delete;
  OpenTx& operator=(const OpenTx&) = delete;

  // A Tx that runs its statements in this transaction.
  Tx Statements() { return Tx(tx_, session_, &pending_); }
  // Nothing was sent yet (BEGIN is still pending, perhaps with statements queued behind it).
  bool Untouched() const { return pending_.rfind("BEGIN", 0) == 0; }
  // Throws as a statement does. The SELECT ahead of COMMIT fails when the transaction had failed
  // (a statement error nobody went back from): the server would answer a bare COMMIT then with a
  // ROLLBACK and no error, and the batch would look stored.
  void Commit() {
    if (!Untouched()) tx_.exec("SELECT 1; COMMIT");
    ended_ = true;  // not before: a failed COMMIT leaves the ROLLBACK to the destructor
  }
  void Rollback() {
    ended_ = true;
    if (!Untouched()) tx_.exec("ROLLBACK");
  }

 private:
  pqxx::nontransaction tx_;
  Session& session_;
  std::string pending_ = "BEGIN";
  bool ended_ = false;
};

// What an exception means for the caller.
struct Failure {
  Status status;
  bool retry = false;   // serialization failure or deadlock: run the transaction again
  bool broken = false;  // the connection is unusable: drop it, the next call reconnects
};
// Maps the exception in flight to a Status. `where` names the database; `password` is scrubbed.
Failure Classify(const std::string& where, const std::string& password);
// Sleeps before attempt `attempt` + 1 of a transaction that hit a conflict (jittered, growing).
void Backoff(int attempt);

// The reservation statement's text (pg_store_runs.cpp), for the test that checks its plan.
const char* ReserveUnitSqlText();

// A decision's first read (pg_store_runs.cpp): the worker's row and their open agents in one run,
// $1 = the run's row id, $2 = the worker id. No row: no such worker.
extern const Sql kDecisionOpenAgents;
struct DecisionOpenAgents {
  WorkerRef worker;
  std::vector<AgentRecord> agents;  // oldest first, as PgStore::OpenAgents
};
std::optional<DecisionOpenAgents> ReadDecisionOpenAgents(const pqxx::result& r);

// ---- reading columns -----------------------------------------------------------------------------
inline int64_t Int(const pqxx::field& f) { return f.is_null() ? 0 : f.as<int64_t>(); }
inline std::optional<int64_t> OptInt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int64_t>();
}
inline std::string Text(const pqxx::field& f) {
  if (f.is_null()) return std::string();
  return std::string(f.c_str(), f.size());
}

// Validates a worker reference the way every backend does (ParseWorkerRef round trip).
Status CheckWorkerRef(const WorkerRef& ref);

}  // namespace crowdgate::pg_internal
