// The rule for applying one GrantOp to the grant stored for its (worker, qualification), stated once
// for every Store backend: a backend reads the stored row, asks DecideGrantStep what to write and
// what to log, and keeps only its SQL (and its batching).
//
// The rule (the Store contract suite pins it for every backend):
//  - A grant whose expiry has passed (expires_at <= now) counts as absent for kSet and kAdd: the op
//    is a fresh kGrant (no old value, granted_at = now, kAdd starts from 0 and takes the op's
//    expiry). The expired row is overwritten, not inserted again.
//  - kAdd on a current grant adds to its value and keeps its expiry; otherwise it acts as kSet.
//  - kSet / kAdd over a current grant logs kChange with the old value, even when value and expiry
//    stay the same (actor and updated_at change, and "granted again" stays visible in History);
//    over no grant, kGrant. granted_at is kept from a current grant, `now` otherwise.
//  - kRevoke deletes any stored row, expired or not, and logs kRevoke with the stored value. With
//    no stored row it changes nothing and logs nothing.
//  - kRevoke with revoke_if_expires_at deletes the stored row only when its expires_at equals that
//    value and has passed (expires_at <= now); otherwise (no row, no expiry, another expiry, not yet
//    expired) it changes nothing and logs nothing.
#pragma once

#include <cstdint>
#include <optional>

#include "crowdgate/types.hpp"

namespace crowdgate {

// The grant row of one (worker, qualification), as a backend stores it.
struct StoredGrant {
  int64_t value = 0;
  int64_t granted_at = 0;
  std::optional<int64_t> expires_at;  // absent = never expires

  bool ExpiredAt(int64_t now) const { return expires_at.has_value() && *expires_at <= now; }
  bool operator==(const StoredGrant&) const = default;
};

// What one op does: the write, and (for every write) the audit entry's fields.
struct GrantStep {
  enum class Write {
    kNone,    // nothing changes, no audit entry
    kDelete,  // remove the stored row
    kInsert,  // no row was stored: add `row`
    kUpdate,  // a row (maybe expired) was stored: replace it with `row`
  };
  Write write = Write::kNone;
  // The row after kInsert / kUpdate. Its updated_at is `now` and its actor the op's.
  StoredGrant row;

  AuditEntry::Kind audit_kind = AuditEntry::Kind::kGrant;
  std::optional<int64_t> old_value;  // absent = there was no current grant
  std::optional<int64_t> new_value;  // absent = revoked
  std::optional<int64_t> new_expires_at;

  // Sets the kind, old_value, new_value and new_expires_at of *entry.
  void FillAudit(AuditEntry* entry) const;
};

// `stored` is the row as stored before the op (expired or not), nullopt when there is none.
GrantStep DecideGrantStep(const GrantOp& op, const std::optional<StoredGrant>& stored, int64_t now);

}  // namespace crowdgate
