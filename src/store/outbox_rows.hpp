// Outbox rows as every backend writes them: which grant changes a provider must hear about, the
// grant_sync row for one, and the checks EnqueueOutbox and friends make. Shared by the SQLite and
// PostgreSQL backends so the two cannot drift apart. Internal to src/store.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"
#include "crowdgate/store.hpp"

namespace crowdgate::store_outbox {

inline bool IsOutboxState(std::string_view s) {
  return s == "pending" || s == "retrying" || s == "done" || s == "failed";
}

inline Status BadState(const std::string& state) {
  return Status::InvalidArgument("outbox state must be pending, retrying, done or failed, got '" + state + "'");
}

// UpdateOutboxRow's Conflict: the row is held by `holder` ("" = nobody), not by row.claimed_by.
inline Status NotHeld(const OutboxRow& row, const std::string& holder) {
  return Status::Conflict("outbox row " + std::to_string(row.id) + " is " +
                          (holder.empty() ? std::string("not claimed") : "claimed by '" + holder + "'") +
                          ", not by '" + row.claimed_by + "'");
}

// True when `op`, having changed a grant (it wrote audit entry `e`), must be told to the worker's
// provider: kSet and kRevoke only (kAdd counters stay local), unless the op opted out.
inline bool NeedsGrantSync(const GrantOp& op) {
  return op.kind != GrantOp::Kind::kAdd && op.provider_sync && ProviderSyncsGrants(op.worker.provider);
}

// The grant_sync row for the change `e` made by `op` (see Store's provider outbox comment).
inline OutboxRow GrantSyncRow(const GrantOp& op, const AuditEntry& e, int64_t now) {
  OutboxRow row;
  row.provider = op.worker.provider;
  row.kind = "grant_sync";
  const std::string worker = op.worker.ToString();
  row.order_key = "grant:" + worker + "|" + e.qualification;
  nlohmann::json payload = {{"worker", worker}, {"qualification", e.qualification}};
  const bool revoked = e.kind == AuditEntry::Kind::kRevoke;
  payload["value"] = revoked || !e.new_value ? nlohmann::json(nullptr) : nlohmann::json(*e.new_value);
  payload["expires_at"] =
      revoked || !e.new_expires_at ? nlohmann::json(nullptr) : nlohmann::json(*e.new_expires_at);
  // replace: a qualification name that is not valid UTF-8 must not make the grant fail.
  row.payload_json = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  row.next_attempt_at = now;
  row.created_at = now;
  return row;
}

// What EnqueueOutbox (and ReviewUnits' rows) require of a row before writing it.
inline Status CheckNewOutboxRow(const OutboxRow& row) {
  if (row.provider.empty() || row.kind.empty() || row.order_key.empty()) {
    return Status::InvalidArgument("an outbox row needs a provider, a kind and an order_key (got provider '" +
                                   row.provider + "', kind '" + row.kind + "', order_key '" + row.order_key + "')");
  }
  return Status::Ok();
}

}  // namespace crowdgate::store_outbox
