// crowdgate::Engine: the decisions. Qualifications, grants and their audit, eligibility
// of workers against requirements; the task-server verbs live in dispatcher.hpp.
//
// Contract:
//  - Open() takes ownership of a Store and loads every grant into memory.
//  - Every public method is thread-safe (one internal mutex; decisions are short).
//  - Before answering any read, the engine replays changes committed by other processes
//    (another `crowdgate` invocation, another server) from the store's change feed, so a
//    grant or revoke takes effect at the next call, with no restart.
//  - Requirements naming a qualification that does not exist fail to compile
//    (fail closed) with an error naming it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crowdgate/env.hpp"
#include "crowdgate/requirement.hpp"
#include "crowdgate/status.hpp"
#include "crowdgate/store.hpp"
#include "crowdgate/types.hpp"

namespace crowdgate {

struct EngineOptions {
  Env* env = nullptr;            // default: Env::Default()
  std::string actor = "cli";     // recorded in the audit log for changes made through this engine
};

struct QualificationSummary {
  Qualification qualification;
  int64_t live_grants = 0;  // unexpired grants
};

struct GrantRequest {
  std::string qualification;
  std::string worker;  // PROVIDER:NAME or NAME
  int64_t value = 1;
  std::optional<int64_t> expires_at;
  std::string reason;
  bool provider_sync = true;  // false (`--no-sync`): the worker's provider is not told
};

// One row of a bulk import: worker text and value, with the line it came from.
struct ImportRow {
  std::string worker;
  int64_t value = 1;
  int64_t line = 0;
};

struct ImportSummary {
  int64_t rows = 0;
  int64_t granted = 0;   // new grants
  int64_t changed = 0;   // existing grants replaced
};

// A set of changes brought in from another system (an import): qualifications, workers,
// grants and revokes, classified against what the engine holds and applied together.
struct BulkQualification {
  std::string name;
  std::string description;  // used when the qualification is created; an existing one keeps its own
};

struct BulkRevoke {
  std::string qualification;
  std::string worker;  // PROVIDER:NAME or NAME
  std::string reason;
};

struct BulkChange {
  std::vector<BulkQualification> qualifications;  // created when missing
  std::vector<std::string> workers;               // registered when never seen (PROVIDER:NAME or NAME)
  std::vector<GrantRequest> grants;               // written only where the live value or expiry differs
  std::vector<BulkRevoke> revokes;                // written only where a grant exists
  std::string reason;  // audit reason of the grants and revokes that give none of their own
};

struct BulkCounts {
  int64_t added = 0;      // did not exist
  int64_t changed = 0;    // existed with another value or expiry (grants only)
  int64_t unchanged = 0;  // already as asked: nothing written
};

struct BulkSummary {
  BulkCounts qualifications;
  BulkCounts workers;
  BulkCounts grants;
  int64_t revoked = 0;  // revokes that removed a grant
};

struct WorkerInfo {
  Worker worker;
  std::vector<Grant> grants;  // live and expired; see Grant::ExpiredAt
};

// Requirements resolved against the qualification table, ready for the hot path.
struct CompiledRequirements;

class Dispatcher;  // dispatcher.hpp

struct EligibilityVerdict {
  bool passed = true;
  int failed_index = -1;           // index into the requirement list, -1 when passed
  std::string failed_qualification;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Open(std::unique_ptr<Store> store, EngineOptions options);
  virtual ~Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- qualifications ----
  virtual Result<Qualification> CreateQualification(const std::string& name, const std::string& description) = 0;
  virtual Result<std::vector<QualificationSummary>> ListQualifications() = 0;
  virtual Result<Qualification> GetQualification(const std::string& name) = 0;
  // Live (unexpired) grants of the qualification, sorted by worker.
  virtual Result<std::vector<crowdgate::Grant>> ListGrants(const std::string& qualification) = 0;
  virtual Status DeleteQualification(const std::string& name) = 0;

  // ---- grants ----
  // Grants or replaces a value; creates the worker record if never seen.
  virtual Result<AuditEntry> Grant(const GrantRequest& request) = 0;
  // Returns false when the worker held no grant (nothing changes, nothing is logged).
  // provider_sync false (`--no-sync`): the worker's provider is not told.
  virtual Result<bool> Revoke(const std::string& qualification, const std::string& worker,
                              const std::string& reason, bool provider_sync = true) = 0;
  // All rows or none: a bad worker name fails the whole import naming its line.
  virtual Result<ImportSummary> Import(const std::string& qualification, const std::vector<ImportRow>& rows,
                                       const std::string& reason,
                                       const std::function<void(size_t done, size_t total)>& progress) = 0;
  // Applies a BulkChange: every name is validated first (a bad one fails the whole change
  // naming it, and nothing is written); then, in one store batch (one transaction on SQLite,
  // holding its write lock; a store without batches commits piece by piece), what is there is
  // compared with the change and qualifications, workers, grants and revokes are written
  // only where they differ, so applying the same change twice writes nothing the second
  // time. With `dry_run` nothing is written and the summary says what would have been.
  // `progress` is called with (done, total) writes.
  virtual Result<BulkSummary> ApplyBulk(const BulkChange& change, bool dry_run,
                                        const std::function<void(size_t done, size_t total)>& progress) = 0;
  virtual Result<std::vector<AuditEntry>> History(const std::optional<std::string>& qualification,
                                                  const std::optional<std::string>& worker) = 0;
  // The expiry sweep: revokes every stored grant whose expiry has passed, through the store's revoke
  // path (actor "crowdgate:expiry", reason "expired": one audit entry and, for a worker whose provider
  // keeps participant groups, one outbox row each), a batch at a time. Each revoke is conditional on
  // the grant still being the expired one, so a grant renewed meanwhile is kept, and several servers
  // sweeping one database remove each grant once. Returns how many grants this call removed; a sweep
  // that finds nothing writes nothing.
  virtual Result<int64_t> RevokeExpiredGrants() = 0;

  // ---- workers ----
  virtual Result<WorkerInfo> ShowWorker(const std::string& worker) = 0;
  // Removes Q and Q-failed for the worker so they can onboard again.
  virtual Status ResetOnboarding(const std::string& qualification, const std::string& worker) = 0;

  // ---- eligibility ----
  // Fails closed: NotFound naming the first requirement whose qualification is missing.
  virtual Result<std::shared_ptr<const CompiledRequirements>> Compile(const std::vector<Requirement>& reqs) = 0;
  virtual Result<EligibilityVerdict> Check(const std::string& worker, const CompiledRequirements& reqs) = 0;

  // ---- health ----
  // One cheap round trip to the database (SQLite: a pragma read; PostgreSQL: a ping query), for
  // `GET /readyz`. OK means the store answers; the schema was migrated when the store was opened.
  virtual Status CheckStore() = 0;

  // ---- task server ----
  // A Dispatcher (dispatcher.hpp) sharing this engine's store, grant index and lock; the engine
  // must outlive it. Dispatcher::Create(engine) is the same call.
  virtual Result<std::unique_ptr<Dispatcher>> NewDispatcher() = 0;

 protected:
  Engine() = default;
};

}  // namespace crowdgate
