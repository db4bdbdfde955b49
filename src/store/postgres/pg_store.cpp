// PgStore: connection, transactions, error mapping, schema, qualifications, workers and the change
// token. Grants and the audit log are in pg_store_grants.cpp; runs, units and agents in
// pg_store_runs.cpp.
#include "store/postgres/pg_store.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "store/postgres/pg_internal.hpp"

namespace crowdgate {

using pg_internal::Args;
using pg_internal::Int;
using pg_internal::Sql;
using pg_internal::Text;
using pg_internal::Tx;

namespace {

// ---- schema ------------------------------------------------------------------------------------
// The same tables as the SQLite backend (sqlite_schema.hpp explains the choices). Differences:
//  - BIGSERIAL keys never reuse a value, like SQLite's AUTOINCREMENT (a deleted qualification's id
//    never comes back).
//  - agents has a seq column: its creation order (SQLite's rowid), used by "oldest first" queries.
//  - audit.seq is a BIGSERIAL, but rows are inserted with seqs taken from its sequence while the
//    audit advisory lock is held (InsertAudit), so they are in commit order.
//  - Text is compared and sorted byte-wise (COLLATE "C" where we ORDER BY text), as in SQLite.
//
// Indexes, and the queries they serve:
//  grants_by_qual            GrantsForQualification, CountGrants
//  audit_by_worker           History with a worker filter
//  units_by_run_status       UnitStatusCounts
//  units_to_serve            ReserveUnit's pick (partial: launched units only; ordered by id + 0)
//  units_by_worker           CountWorkerUnitsForTask (partial: only units someone holds)
//  agents_by_run_worker      RunAgents with a worker filter
//  agents_unit_items         ReserveUnit's "never held this item" probe (partial: units only)
//  agents_by_run             RunAgents (creation order)
//  agents_open_by_deadline   OverdueAgents (partial: open agents only)
//  agents_scored_gold        RecentGoldResults (partial: scored gold agents only)
constexpr const char* kMigration1 = R"sql(
CREATE TABLE workers (
  id         BIGSERIAL PRIMARY KEY,
  provider   TEXT NOT NULL,
  name       TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (provider, name)
);
CREATE TABLE qualifications (
  id          BIGSERIAL PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  created_at  BIGINT NOT NULL
);
CREATE TABLE grants (
  worker_id  BIGINT NOT NULL REFERENCES workers (id),
  qual_id    BIGINT NOT NULL REFERENCES qualifications (id),
  value      BIGINT NOT NULL,
  granted_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT,
  actor      TEXT NOT NULL,
  PRIMARY KEY (worker_id, qual_id)
);
CREATE INDEX grants_by_qual ON grants (qual_id, expires_at);
CREATE TABLE audit (
  seq            BIGSERIAL PRIMARY KEY,
  at             BIGINT NOT NULL,
  kind           TEXT NOT NULL CHECK (kind IN ('grant', 'change', 'revoke', 'qualification_deleted')),
  worker_id      BIGINT,
  qual_id        BIGINT NOT NULL,
  qualification  TEXT NOT NULL,
  old_value      BIGINT,
  new_value      BIGINT,
  new_expires_at BIGINT,
  actor          TEXT NOT NULL,
  reason         TEXT NOT NULL
);
CREATE INDEX audit_by_worker ON audit (worker_id, seq);
CREATE TABLE runs (
  rid              BIGSERIAL PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  task_name        TEXT NOT NULL,
  config_json      TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  created_at       BIGINT NOT NULL,
  num_items        BIGINT NOT NULL,
  num_units        BIGINT NOT NULL,
  gold_served      BIGINT NOT NULL DEFAULT 0 CHECK (gold_served >= 0),
  screening_served BIGINT NOT NULL DEFAULT 0 CHECK (screening_served >= 0)
);
CREATE INDEX runs_by_task ON runs (task_name);
CREATE TABLE items (
  run        BIGINT NOT NULL REFERENCES runs (rid),
  item_index BIGINT NOT NULL,
  data_json  TEXT NOT NULL,
  PRIMARY KEY (run, item_index)
);
CREATE TABLE units (
  id         BIGSERIAL PRIMARY KEY,
  run        BIGINT NOT NULL REFERENCES runs (rid),
  kind       TEXT NOT NULL CHECK (kind IN ('unit', 'gold', 'screening')),
  item_index BIGINT NOT NULL,
  copy_index BIGINT NOT NULL,
  status     TEXT NOT NULL,
  worker_id  BIGINT REFERENCES workers (id),
  agent_id   TEXT
);
CREATE INDEX units_by_run_status ON units (run, status, kind, id);
-- ReserveUnit's pick: without it the planner walks units_pkey in id order past every unit
-- already taken, so each reservation got slower as a run progressed (quadratic in all).
CREATE INDEX units_launched ON units (run, id) WHERE status = 'launched' AND kind = 'unit';
CREATE INDEX units_by_worker ON units (worker_id, run) WHERE worker_id IS NOT NULL;
CREATE TABLE agents (
  seq          BIGSERIAL PRIMARY KEY,
  id           TEXT NOT NULL UNIQUE,
  token_hash   TEXT NOT NULL,
  run          BIGINT NOT NULL REFERENCES runs (rid),
  unit_id      BIGINT REFERENCES units (id),
  worker_id    BIGINT NOT NULL REFERENCES workers (id),
  kind         TEXT NOT NULL CHECK (kind IN ('unit', 'gold', 'screening', 'onboarding')),
  status       TEXT NOT NULL,
  item_index   BIGINT NOT NULL,
  session      TEXT NOT NULL,
  eval_set     TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  deadline     BIGINT NOT NULL,
  submitted_at BIGINT,
  data_json    TEXT NOT NULL,
  check_result TEXT NOT NULL
);
CREATE INDEX agents_by_run_worker ON agents (run, worker_id, kind, item_index);
-- OpenAgents, on every work request: only the open ones, not the worker's whole history.
CREATE INDEX agents_open_by_run_worker ON agents (run, worker_id, seq) WHERE status IN ('in_task', 'onboarding');
CREATE INDEX agents_by_run ON agents (run, seq);
CREATE INDEX agents_open_by_deadline ON agents (deadline, seq) WHERE status IN ('in_task', 'onboarding');
CREATE INDEX agents_scored_gold ON agents (worker_id, eval_set, seq)
  WHERE kind = 'gold' AND check_result IN ('pass', 'fail');
CREATE TABLE golds_seen (
  worker_id  BIGINT NOT NULL REFERENCES workers (id),
  gold_set   TEXT NOT NULL,
  item_index BIGINT NOT NULL,
  PRIMARY KEY (worker_id, gold_set, item_index)
);
)sql";

// Migration 2: the provider outbox, database secrets and what a run's provider created for it
// (sqlite_schema.hpp's migration 3 explains the indexes).
constexpr const char* kMigration2 = R"sql(
ALTER TABLE runs ADD COLUMN provider_state TEXT NOT NULL DEFAULT '{}';
CREATE TABLE secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE outbox (
  id              BIGSERIAL PRIMARY KEY,
  provider        TEXT NOT NULL,
  kind            TEXT NOT NULL,
  run_id          TEXT NOT NULL,
  order_key       TEXT COLLATE "C" NOT NULL,
  payload_json    TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'done', 'failed')),
  attempts        BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  last_error      TEXT NOT NULL,
  progress_json   TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL,
  claimed_by      TEXT NOT NULL,
  claimed_until   BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE state IN ('pending', 'retrying');
CREATE INDEX outbox_undelivered_by_key ON outbox (order_key, id) WHERE state IN ('pending', 'retrying');
)sql";

// Ordered; entry i upgrades version i to i + 1. Never edit a shipped migration: append one.
// Migration 3: the dashboard's throughput series reads only the newest submissions of a run.
constexpr const char* kMigration3 = R"sql(
CREATE INDEX agents_submitted_by_run ON agents (run, submitted_at) WHERE submitted_at IS NOT NULL;
)sql";

// Migration 4: ReserveUnit's pick stops depending on the planner's guesses. A connection keeps the
// plan of a prepared statement; two plans it could keep made every reservation cost time
// proportional to the run's progress:
//  - planned while `agents` was empty, the "never held this item" probe walked agents_by_run and
//    filtered every agent of the run. The probe now has an index of its own, agents_unit_items.
//  - planned after an ANALYZE that saw every unit launched, the pick walked units_pkey in id order
//    past every unit already taken (units_launched was there, but the planner may prefer the
//    primary key for "ORDER BY id"). The pick now orders by `id + 0`, an order only
//    units_to_serve provides.
constexpr const char* kMigration4 = R"sql(
CREATE INDEX agents_unit_items ON agents (worker_id, run, item_index) WHERE kind = 'unit';
DROP INDEX units_launched;
CREATE INDEX units_to_serve ON units (run, (id + 0)) WHERE status = 'launched' AND kind = 'unit';
)sql";

constexpr const char* kMigrations[] = {kMigration1, kMigration2, kMigration3, kMigration4};

// Transaction-level advisory lock keys (bigint; ASCII "cgaudit1" / "cgmigrat"). Advisory locks are
// per database, so these collide with nothing but other crowdgate processes on the same database.
//
// Why the audit lock exists: audit.seq comes from a sequence, and values taken by concurrent
// transactions can commit out of order — seq 11 visible while seq 10 is still uncommitted. A cache
// that read ChangesSince(9), got 11 and moved on to ChangesSince(11) would never see 10. So every
// transaction that writes audit rows takes this lock before taking any seq and holds it to commit:
// seqs are then handed out in commit order, and a reader that sees seq s sees every seq below it.
// The lock also serialises every grant writer, which makes kAdd's read-modify-write exact.
constexpr int64_t kAuditLockKey = 0x6367617564697431;
constexpr int64_t kMigrateLockKey = 0x63676d6967726174;

// ---- statements -----------------------------------------------------------------------------------
#define CG_PG_QUAL_SELECT "SELECT id, name, description, created_at FROM qualifications "

constexpr Sql kLockAuditAndNotify{"cg_lock_audit",
                                  "SELECT pg_advisory_xact_lock(7162800889179763761), "
                                  "pg_notify('crowdgate_changes', '')"};
// The audit lock alone: a multi-statement read inside an open transaction holds it so that no grant
// writer commits between its statements (see PgStore::Transact).
constexpr Sql kLockAudit{"cg_lock_audit_only", "SELECT pg_advisory_xact_lock(7162800889179763761)"};
constexpr Sql kNotify{"cg_notify", "SELECT pg_notify('crowdgate_changes', '')"};
constexpr Sql kSchemaVersionMax{"cg_schema_version_max", "SELECT COALESCE(MAX(version), 0) FROM schema_version"};
constexpr Sql kSchemaVersionInsert{"cg_schema_version_insert",
                                   "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)"};

constexpr Sql kQualByName{"cg_qual_by_name", CG_PG_QUAL_SELECT "WHERE name = $1"};
constexpr Sql kQualInsert{"cg_qual_insert",
                          "INSERT INTO qualifications (name, description, created_at) VALUES ($1, $2, $3) "
                          "ON CONFLICT (name) DO NOTHING RETURNING id"};
constexpr Sql kQualList{"cg_qual_list", CG_PG_QUAL_SELECT "ORDER BY name COLLATE \"C\""};
constexpr Sql kGrantsOfQual{"cg_grants_of_qual",
                            "SELECT worker_id, value FROM grants WHERE qual_id = $1 ORDER BY worker_id"};
constexpr Sql kDeleteGrantsOfQual{"cg_delete_grants_of_qual", "DELETE FROM grants WHERE qual_id = $1"};
constexpr Sql kDeleteQual{"cg_delete_qual", "DELETE FROM qualifications WHERE id = $1"};
constexpr Sql kCountGrants{"cg_count_grants",
                           "SELECT q.id, (SELECT COUNT(*) FROM grants g WHERE g.qual_id = q.id AND "
                           "(g.expires_at IS NULL OR g.expires_at > $1)) FROM qualifications q ORDER BY q.id"};

constexpr Sql kWorkerByRef{"cg_worker_by_ref", "SELECT id, created_at FROM workers WHERE provider = $1 AND name = $2"};
constexpr Sql kWorkerInsert{"cg_worker_insert",
                            "INSERT INTO workers (provider, name, created_at) VALUES ($1, $2, $3) "
                            "ON CONFLICT (provider, name) DO NOTHING RETURNING id"};
constexpr Sql kWorkerById{"cg_worker_by_id", "SELECT provider, name, created_at FROM workers WHERE id = $1"};

// ---- helpers -----------------------------------------------------------------------------------
Qualification ReadQualification(const pqxx::row& r) {
  return Qualification{Int(r[0]), Text(r[1]), Text(r[2]), Int(r[3])};
}

std::string TrimMessage(std::string msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ' || msg.back() == '\t')) msg.pop_back();
  // libpq messages start with "ERROR:  "; the code says as much.
  for (const char* prefix : {"ERROR:  ", "FATAL:  "}) {
    if (msg.rfind(prefix, 0) == 0) msg = msg.substr(std::char_traits<char>::length(prefix));
  }
  return msg;
}

// The connection options of `uri`, parsed by libpq itself (URI or key=value form).
struct UriParts {
  std::string where;     // user@host:port/dbname, for messages
  std::string password;  // to scrub it from messages; never shown
};

Result<UriParts> ParseUri(const std::string& uri) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(uri.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err != nullptr ? TrimMessage(err) : std::string("out of memory");
    if (err != nullptr) PQfreemem(err);
    return Status::InvalidArgument("invalid PostgreSQL connection URI: " + msg);
  }
  std::map<std::string, std::string> v;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') v[o->keyword] = o->val;
  }
  PQconninfoFree(opts);
  UriParts out;
  std::string host = v.count("host") ? v["host"] : v.count("hostaddr") ? v["hostaddr"] : "localhost";
  out.where = (v.count("user") ? v["user"] + "@" : "") + host + (v.count("port") ? ":" + v["port"] : "") + "/" +
              (v.count("dbname") ? v["dbname"] : "(default database)");
  out.password = v.count("password") ? v["password"] : "";
  return out;
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

// ---- Session ---------------------------------------------------------------------------------------
namespace pg_internal {

Session::Session(const std::string& uri, int64_t* change_counter) {
  conn_ = std::make_unique<pqxx::connection>(uri);
  // A lost connection must surface as an error, never be re-established behind our back: a batch's
  // transaction is ours (OpenTx), and a silent reconnect would run its next statements outside it.
  // PgStore drops the session on a broken connection and opens a new one itself.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  conn_->inhibit_reactivation(true);
#pragma GCC diagnostic pop
  errors_ = std::make_unique<QuietErrors>(*conn_);
  conn_->set_variable("client_min_messages", "warning");
  receiver_ = std::make_unique<ChangeReceiver>(*conn_, change_counter);  // LISTEN
  pid_ = conn_->backendpid();
}

Session::~Session() {
  // Members go in reverse order; the receiver's UNLISTEN on a dead connection is ignored by pqxx.
  receiver_.reset();
  errors_.reset();
  conn_.reset();
}

void Session::Declare(const Sql& sql) {
  if (prepared_.count(sql.name) != 0) return;
  conn_->prepare(sql.name, sql.text);
  prepared_.insert(sql.name);
}

std::string Session::ExecuteText(pqxx::transaction_base& tx, const Sql& sql, const Args& args) {
  Declare(sql);
  conn_->prepare_now(sql.name);  // libpqxx prepares lazily (and again after a reconnect); EXECUTE needs it now
  std::string text = "EXECUTE ";
  text += sql.name;
  if (args.values().empty()) return text;
  text += '(';
  bool first = true;
  for (const std::optional<std::string>& v : args.values()) {
    if (!first) text += ", ";
    first = false;
    text += v ? tx.quote(*v) : std::string("NULL");
  }
  text += ')';
  return text;
}

pqxx::result Session::Run(pqxx::transaction_base& tx, const Sql& sql, const Args& args) {
  Declare(sql);
  std::vector<const char*> values;
  values.reserve(args.values().size());
  for (const std::optional<std::string>& v : args.values()) values.push_back(v ? v->c_str() : nullptr);
  return tx.exec_prepared(sql.name, pqxx::prepare::make_dynamic_params(values));
}

Status CheckWorkerRef(const WorkerRef& ref) {
  Result<WorkerRef> parsed = ParseWorkerRef(ref.ToString());
  if (!parsed.ok()) return parsed.status();
  if (!(*parsed == ref)) return Status::InvalidArgument("invalid worker '" + ref.ToString() + "'");
  return Status::Ok();
}

}  // namespace pg_internal

// ---- open, transactions, errors ------------------------------------------------------------------
const int PgStore::kSchemaVersion = static_cast<int>(std::size(kMigrations));

PgStore::PgStore(std::string uri, std::string where, Env* env)
    : uri_(std::move(uri)), where_(std::move(where)), env_(env) {}

PgStore::~PgStore() = default;

int PgStore::TEST_backend_pid() const { return session_ ? session_->conn().backendpid() : 0; }

Result<std::unique_ptr<PgStore>> PgStore::Open(const std::string& uri, Env* env) {
  if (env == nullptr) env = Env::Default();
  CG_ASSIGN_OR_RETURN(UriParts parts, ParseUri(uri));
  std::unique_ptr<PgStore> store(new PgStore(uri, parts.where, env));
  store->password_ = parts.password;
  CG_RETURN_IF_ERROR(store->BatchSettingsFromEnvironment());
  CG_RETURN_IF_ERROR(store->EnsureConnected());
  CG_RETURN_IF_ERROR(store->Migrate());
  return store;
}

namespace pg_internal {

Failure Classify(const std::string& where, const std::string& password) {
  Failure f;
  auto scrub = [&](std::string msg) {
    msg = TrimMessage(std::move(msg));
    if (password.size() >= 3) {
      for (size_t p = msg.find(password); p != std::string::npos; p = msg.find(password, p)) {
        msg.replace(p, password.size(), "***");
      }
    }
    return msg;
  };
  const std::string at = "PostgreSQL at " + where;
  try {
    throw;
  } catch (const pqxx::deadlock_detected& e) {
    f.retry = true;
    f.status = Status::Unavailable(at + ": deadlock, try again (" + scrub(e.what()) + ")");
  } catch (const pqxx::serialization_failure& e) {
    f.retry = true;
    f.status = Status::Unavailable(at + ": concurrent update, try again (" + scrub(e.what()) + ")");
  } catch (const pqxx::in_doubt_error& e) {
    f.broken = true;
    f.status = Status::Unavailable(at + ": the connection was lost during COMMIT; the change may or may not "
                                        "have been applied (" + scrub(e.what()) + ")");
  } catch (const pqxx::statement_completion_unknown& e) {
    f.broken = true;
    f.status = Status::Unavailable(at + ": the connection was lost during a statement (" + scrub(e.what()) + ")");
  } catch (const pqxx::broken_connection& e) {
    f.broken = true;
    f.status = Status::Unavailable("lost the connection to " + at + ": " + scrub(e.what()));
  } catch (const pqxx::integrity_constraint_violation& e) {
    f.status = Status::Conflict(scrub(e.what()));
  } catch (const pqxx::data_exception& e) {
    f.status = Status::InvalidArgument(at + ": " + scrub(e.what()));
  } catch (const pqxx::sql_error& e) {
    const std::string state = e.sqlstate();
    const std::string msg = scrub(e.what());
    if (state == "40001" || state == "40P01") {
      f.retry = true;
      f.status = Status::Unavailable(at + ": concurrent update, try again (" + msg + ")");
    } else if (StartsWith(state, "08") || state == "57P01" || state == "57P02" || state == "57P03") {
      f.broken = true;
      f.status = Status::Unavailable("lost the connection to " + at + ": " + msg);
    } else if (state == "55P03") {  // lock_not_available: NOWAIT, or lock_timeout inside a batch
      f.status = Status::Busy(at + ": a lock another connection holds was not waited for (" + msg + ")");
    } else if (StartsWith(state, "53") || state == "57014") {
      f.status = Status::Unavailable(at + " is busy, try again (" + msg + ")");
    } else if (StartsWith(state, "23")) {
      f.status = Status::Conflict(msg);
    } else if (StartsWith(state, "22")) {
      f.status = Status::InvalidArgument(at + ": " + msg);
    } else {
      f.status = Status::Internal(at + ": " + msg + " (SQLSTATE " + state + ")");
    }
  } catch (const std::exception& e) {
    f.status = Status::Internal(at + ": unexpected error: " + scrub(e.what()));
  } catch (...) {
    f.status = Status::Internal(at + ": unexpected non-standard exception");
  }
  return f;
}

void Backoff(int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  const int base_us = 1000 << std::min(attempt, 6);
  std::this_thread::sleep_for(std::chrono::microseconds(base_us + static_cast<int>(rng() % base_us)));
}

}  // namespace pg_internal

Status PgStore::Migrate() {
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    // Several processes may open a fresh database at once: one migrates, the others wait.
    tx.ExecLiteral("SELECT pg_advisory_xact_lock(7162814031830606196)");
    static_assert(kMigrateLockKey == 7162814031830606196, "keep the literal above in step");
    static_assert(kAuditLockKey == 7162800889179763761, "keep kLockAuditAndNotify in step");
    tx.ExecLiteral(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)");
    const int64_t current = Int(tx.Run(kSchemaVersionMax)[0][0]);
    if (current > kSchemaVersion) {
      return Status::Unavailable("PostgreSQL database " + where_ + " has schema version " + std::to_string(current) +
                                 ", newer than this crowdgate binary supports (" + std::to_string(kSchemaVersion) +
                                 "); use a newer crowdgate");
    }
    for (int64_t v = current; v < kSchemaVersion; ++v) {
      tx.ExecLiteral(kMigrations[v]);
      tx.Run(kSchemaVersionInsert, Args(v + 1, env_->NowMicros()));
    }
    return Status::Ok();
  });
}

void PgStore::LockAuditAndNotify(Tx& tx) { tx.Run(kLockAuditAndNotify); }

void PgStore::LockAudit(Tx& tx) { tx.Run(kLockAudit); }

void PgStore::Notify(Tx& tx) { tx.Run(kNotify); }

// ---- qualifications ----------------------------------------------------------------------------
Result<Qualification> PgStore::CreateQualification(const std::string& name, const std::string& description) {
  CG_RETURN_IF_ERROR(ValidateQualificationName(name));
  Qualification out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    out = Qualification{0, name, description, env_->NowMicros()};
    pqxx::result r = tx.Run(kQualInsert, Args(name, description, out.created_at));
    if (r.empty()) return Status::Conflict("qualification '" + name + "' already exists");
    out.id = Int(r[0][0]);
    return Status::Ok();
  }));
  return out;
}

Result<Qualification> PgStore::EnsureQualification(const std::string& name, const std::string& description) {
  CG_RETURN_IF_ERROR(ValidateQualificationName(name));
  Qualification out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    // Look first: an INSERT that hits the unique name would still use up an id.
    pqxx::result found = tx.Run(kQualByName, Args(name));
    if (!found.empty()) {
      out = ReadQualification(found[0]);
      return Status::Ok();
    }
    out = Qualification{0, name, description, env_->NowMicros()};
    pqxx::result r = tx.Run(kQualInsert, Args(name, description, out.created_at));
    if (!r.empty()) {
      out.id = Int(r[0][0]);
      return Status::Ok();
    }
    // Another process created it since we looked (the INSERT waited for its commit).
    found = tx.Run(kQualByName, Args(name));
    if (found.empty()) return Status::Unavailable("qualification '" + name + "' changed concurrently, try again");
    out = ReadQualification(found[0]);
    return Status::Ok();
  }));
  return out;
}

Result<Qualification> PgStore::GetQualification(const std::string& name) {
  Qualification out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    pqxx::result r = tx.Run(kQualByName, Args(name));
    if (r.empty()) return Status::NotFound("qualification '" + name + "' does not exist");
    out = ReadQualification(r[0]);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<Qualification>> PgStore::ListQualifications() {
  std::vector<Qualification> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kQualList)) out.push_back(ReadQualification(row));
    return Status::Ok();
  }));
  return out;
}

Status PgStore::DeleteQualification(const std::string& name, const std::string& actor) {
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    LockAuditAndNotify(tx);
    pqxx::result q = tx.Run(kQualByName, Args(name));
    if (q.empty()) return Status::NotFound("qualification '" + name + "' does not exist");
    const QualId qual = Int(q[0][0]);
    const int64_t now = env_->NowMicros();
    std::vector<AuditEntry> entries;
    for (const pqxx::row& row : tx.Run(kGrantsOfQual, Args(qual))) {
      AuditEntry e;
      e.at = now;
      e.kind = AuditEntry::Kind::kRevoke;
      e.worker_id = Int(row[0]);
      e.qual_id = qual;
      e.qualification = name;
      e.old_value = Int(row[1]);
      e.actor = actor;
      e.reason = "qualification deleted";
      entries.push_back(std::move(e));
    }
    tx.Run(kDeleteGrantsOfQual, Args(qual));
    AuditEntry e;
    e.at = now;
    e.kind = AuditEntry::Kind::kQualificationDeleted;
    e.qual_id = qual;
    e.qualification = name;
    e.actor = actor;
    entries.push_back(std::move(e));
    CG_RETURN_IF_ERROR(InsertAudit(tx, &entries, 0));
    tx.Run(kDeleteQual, Args(qual));
    return Status::Ok();
  });
}

Result<std::vector<std::pair<QualId, int64_t>>> PgStore::CountGrants(int64_t now) {
  std::vector<std::pair<QualId, int64_t>> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kCountGrants, Args(now))) out.emplace_back(Int(row[0]), Int(row[1]));
    return Status::Ok();
  }));
  return out;
}

// ---- workers -----------------------------------------------------------------------------------
Result<Worker> PgStore::EnsureWorkerInTx(Tx& tx, const WorkerRef& ref) {
  pqxx::result r = tx.Run(kWorkerByRef, Args(ref.provider, ref.name));
  if (!r.empty()) return Worker{Int(r[0][0]), ref, Int(r[0][1])};
  CG_RETURN_IF_ERROR(pg_internal::CheckWorkerRef(ref));
  Worker w{0, ref, env_->NowMicros()};
  r = tx.Run(kWorkerInsert, Args(ref.provider, ref.name, w.created_at));
  if (!r.empty()) {
    w.id = Int(r[0][0]);
    return w;
  }
  // Inserted by another process since we looked.
  r = tx.Run(kWorkerByRef, Args(ref.provider, ref.name));
  if (r.empty()) return Status::Unavailable("worker '" + ref.ToString() + "' changed concurrently, try again");
  return Worker{Int(r[0][0]), ref, Int(r[0][1])};
}

Result<Worker> PgStore::EnsureWorker(const WorkerRef& ref) {
  Worker out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(out, EnsureWorkerInTx(tx, ref));
    return Status::Ok();
  }));
  return out;
}

Result<Worker> PgStore::GetWorker(const WorkerRef& ref) {
  Worker out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    pqxx::result r = tx.Run(kWorkerByRef, Args(ref.provider, ref.name));
    if (r.empty()) return Status::NotFound("worker '" + ref.ToString() + "' does not exist");
    out = Worker{Int(r[0][0]), ref, Int(r[0][1])};
    return Status::Ok();
  }));
  return out;
}

Result<Worker> PgStore::GetWorkerById(WorkerId id) {
  Worker out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    pqxx::result r = tx.Run(kWorkerById, Args(id));
    if (r.empty()) return Status::NotFound("worker id " + std::to_string(id) + " does not exist");
    out = Worker{id, WorkerRef{Text(r[0][0]), Text(r[0][1])}, Int(r[0][2])};
    return Status::Ok();
  }));
  return out;
}

}  // namespace crowdgate
