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

 private:
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
  Tx(pqxx::transaction_base& tx, Session& session) : tx_(tx), session_(session) {}
  pqxx::result Run(const Sql& sql, const Args& args = Args()) { return session_.Run(tx_, sql, args); }
  // Parameterless SQL text (migrations); may hold several statements.
  pqxx::result ExecLiteral(const char* sql) { return tx_.exec(sql); }

 private:
  pqxx::transaction_base& tx_;
  Session& session_;
};

// The transaction a batch or a decision holds open across store calls (PgStore::BeginBatch /
// BeginDecision .. EndBatch / EndDecision).
class OpenTx {
 public:
  explicit OpenTx(pqxx::connection& c) : work_(c) {}
  pqxx::work& work() { return work_; }

 private:
  pqxx::work work_;
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
