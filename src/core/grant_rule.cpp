#include "core/grant_rule.hpp"

namespace crowdgate {

void GrantStep::FillAudit(AuditEntry* entry) const {
  entry->kind = audit_kind;
  entry->old_value = old_value;
  entry->new_value = new_value;
  entry->new_expires_at = new_expires_at;
}

GrantStep DecideGrantStep(const GrantOp& op, const std::optional<StoredGrant>& stored, int64_t now) {
  GrantStep step;
  if (op.kind == GrantOp::Kind::kRevoke) {
    if (!stored) return step;  // nothing to revoke: no change, no audit entry
    if (op.revoke_if_expires_at &&
        (stored->expires_at != op.revoke_if_expires_at || !stored->ExpiredAt(now))) {
      return step;  // not the expired grant the op was about (renewed since): kept
    }
    step.write = GrantStep::Write::kDelete;
    step.audit_kind = AuditEntry::Kind::kRevoke;
    step.old_value = stored->value;  // an expired grant's too: the row being deleted
    return step;
  }
  const bool current = stored && !stored->ExpiredAt(now);
  step.write = stored ? GrantStep::Write::kUpdate : GrantStep::Write::kInsert;
  step.row = StoredGrant{op.value, now, op.expires_at};
  if (current) {
    step.row.granted_at = stored->granted_at;
    if (op.kind == GrantOp::Kind::kAdd) {
      step.row.value = stored->value + op.value;
      step.row.expires_at = stored->expires_at;  // a counter keeps its expiry
    }
    step.audit_kind = AuditEntry::Kind::kChange;
    step.old_value = stored->value;
  } else {
    step.audit_kind = AuditEntry::Kind::kGrant;
  }
  step.new_value = step.row.value;
  step.new_expires_at = step.row.expires_at;
  return step;
}

}  // namespace crowdgate
