// Domain values shared by every layer: workers, qualifications, grants, audit entries.
//
// Contract: plain values, no I/O. Times are microseconds since the Unix epoch (see Env).
// A worker is identified by (provider, name) and written PROVIDER:NAME; a bare NAME
// means local:NAME. Providers: local, prolific, mturk, mturk_sandbox. Names (of
// workers and of qualifications) are 1-128 characters; worker names use [A-Za-z0-9_.@-].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate {

using WorkerId = int64_t;
using QualId = int64_t;

struct WorkerRef {
  std::string provider = "local";
  std::string name;

  std::string ToString() const { return provider + ":" + name; }
  bool operator==(const WorkerRef& o) const { return provider == o.provider && name == o.name; }
  bool operator<(const WorkerRef& o) const { return provider != o.provider ? provider < o.provider : name < o.name; }
};

// The providers crowdgate knows.
const std::vector<std::string>& KnownProviders();
bool IsKnownProvider(std::string_view provider);
// "mturk:A1B2" -> {mturk, A1B2}; "alice" -> {local, alice}. Errors name what is wrong.
Result<WorkerRef> ParseWorkerRef(std::string_view text);
// Validates a qualification name: 1-128 characters, no control characters, no leading
// or trailing whitespace.
Status ValidateQualificationName(std::string_view name);

struct Worker {
  WorkerId id = 0;
  WorkerRef ref;
  int64_t created_at = 0;
};

struct Qualification {
  QualId id = 0;
  std::string name;
  std::string description;
  int64_t created_at = 0;
};

struct Grant {
  WorkerId worker_id = 0;
  WorkerRef worker;
  QualId qual_id = 0;
  std::string qualification;
  int64_t value = 0;
  int64_t granted_at = 0;   // first grant of this pair (kept across value changes)
  int64_t updated_at = 0;   // last change of value or expiry
  std::optional<int64_t> expires_at;  // absent = never expires
  std::string actor;        // who made the last change

  bool ExpiredAt(int64_t now) const { return expires_at.has_value() && *expires_at <= now; }
};

// One row of the grant audit log. `seq` increases with every change, so it doubles as
// a change feed that caches in other processes replay.
struct AuditEntry {
  enum class Kind { kGrant, kChange, kRevoke, kQualificationDeleted };
  int64_t seq = 0;
  int64_t at = 0;
  Kind kind = Kind::kGrant;
  WorkerId worker_id = 0;  // 0 for kQualificationDeleted
  WorkerRef worker;
  QualId qual_id = 0;
  std::string qualification;
  std::optional<int64_t> old_value;  // absent = there was no grant
  std::optional<int64_t> new_value;  // absent = revoked
  std::optional<int64_t> new_expires_at;
  std::string actor;
  std::string reason;
};
std::string_view AuditKindName(AuditEntry::Kind kind);

// One change to apply to grants, in a batch that commits or fails as a whole.
struct GrantOp {
  enum class Kind {
    kSet,     // grant or replace the value (and expiry)
    kAdd,     // atomic counter: value = (current or 0) + value; keeps expiry
    kRevoke,  // remove; a no-op (no audit entry) when there is no grant
  };
  Kind kind = Kind::kSet;
  WorkerRef worker;           // created if never seen
  QualId qual_id = 0;         // must exist
  int64_t value = 1;
  std::optional<int64_t> expires_at;
  std::string actor;
  std::string reason;
  // false = do not tell the worker's provider (`--no-sync`): no outbox row is written for this op.
  bool provider_sync = true;
  // kRevoke only: revoke only a grant that still has exactly this expiry and whose expiry has passed
  // when the op is applied; any other stored grant (renewed since it was read: a new expiry or none)
  // is kept and nothing is logged. The expiry sweep's condition, so that a renewal made between its
  // read and its write survives and two servers sweeping at once write one revoke, not two.
  std::optional<int64_t> revoke_if_expires_at;
};

// True for providers whose participant lists crowdgate keeps in step with grants (Prolific's
// participant groups): a kSet or kRevoke that changes such a worker's grant writes an outbox row.
bool ProviderSyncsGrants(std::string_view provider);
// True for providers that hold their own record of each worker's session and are told the outcome
// of a review (Prolific approves or rejects the submission, pays bonuses).
bool ProviderReviews(std::string_view provider);

}  // namespace crowdgate
