// EngineCore: the state the engine's parts share — the store, the in-memory grant index,
// a small worker-id cache, the qualification-name cache, and the mutex that serialises them.
//
// Thread-safety: callers hold mu() for every call (Engine and Dispatcher do so). The mutex is
// recursive so that Dispatcher::Batch can hold it across the engine calls of a whole batch.
// Invariant: after Refresh() returns OK, index() reflects every grant change committed
// to the store (by any process) up to that moment.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "engine/grant_index.hpp"

namespace crowdgate {

using EngineLock = std::lock_guard<std::recursive_mutex>;

// Actors the engine records for the grants it makes itself; grants by kScreeningActor
// are tagged so a refusal can say "screening_failed" rather than "blocked".
inline constexpr const char* kOnboardingActor = "crowdgate:onboarding";
inline constexpr const char* kScreeningActor = "crowdgate:screening";
inline constexpr const char* kGoldActor = "crowdgate:gold";
inline constexpr const char* kQualityActor = "crowdgate:quality";
// The expiry sweep (Engine::RevokeExpiredGrants) revokes lapsed grants as this actor, reason kExpiredReason.
inline constexpr const char* kExpiryActor = "crowdgate:expiry";
inline constexpr const char* kExpiredReason = "expired";
inline constexpr int32_t kFlagByScreening = 1;

class EngineCore {
 public:
  EngineCore(std::unique_ptr<Store> store, Env* env, std::string actor);

  std::recursive_mutex& mu() { return mu_; }
  Store& store() { return *store_; }
  Env& env() { return *env_; }
  const std::string& actor() const { return actor_; }
  const GrantIndex& index() const { return index_; }
  // Grows each time Refresh() sees a commit by another connection; cached rows other than
  // grants (a run's open/closed status) are re-read when it has moved.
  int64_t external_epoch() const { return external_epoch_; }

  // Loads every grant (first call) or replays the change feed since the last call.
  Status Refresh();
  // Brings the index up to date after our own write: replays the change feed from the
  // last seen seq. When `written` (the entries our write returned) follows on directly
  // from what the index has seen, they are applied as they are, without reading them back.
  Status AfterWrite(const std::vector<AuditEntry>& written = {});

  // Cached lookups (NotFound when absent from the store).
  Result<Qualification> Qual(const std::string& name);
  void ForgetQualification(const std::string& name) { quals_.erase(name); }
  // The worker's id, or nullopt when the store has never seen the worker (so it holds no
  // grant). Not every worker's name is held in memory (that cost ~80 bytes per worker at
  // 1M workers): ids come from a bounded cache, else from the store (ids never change).
  Result<std::optional<WorkerId>> WorkerIdOf(const WorkerRef& ref);
  // Most worker ids WorkerIdOf() keeps (it starts over when full).
  static constexpr size_t kWorkerIdCacheSize = 1 << 16;
  // Drops every cache: the next Refresh() reloads from the store. For when writes the caches
  // have already seen were rolled back (a failed batch commit).
  void Invalidate();

 private:
  void ApplyEntry(const AuditEntry& e);

  std::recursive_mutex mu_;
  std::unique_ptr<Store> store_;
  Env* env_;
  std::string actor_;
  GrantIndex index_;
  bool loaded_ = false;
  int64_t last_seq_ = 0;
  int64_t last_token_ = -1;
  int64_t external_epoch_ = 0;
  std::unordered_map<std::string, WorkerId> worker_ids_;  // "provider:name" -> id, at most kWorkerIdCacheSize
  std::unordered_map<std::string, Qualification> quals_;  // name -> row
};

}  // namespace crowdgate
