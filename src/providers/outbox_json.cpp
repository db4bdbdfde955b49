#include "providers/outbox_json.hpp"

#include "crowdgate/status.hpp"

namespace crowdgate {

namespace {
nlohmann::json Time(int64_t micros) { return micros > 0 ? nlohmann::json(FormatTimestamp(micros)) : nlohmann::json(); }
}  // namespace

nlohmann::json OutboxRowJson(const OutboxRow& r) {
  nlohmann::json payload = nlohmann::json::parse(r.payload_json, nullptr, false);
  if (payload.is_discarded()) payload = nullptr;
  return {{"id", r.id},
          {"provider", r.provider},
          {"kind", r.kind},
          {"run_id", r.run_id.empty() ? nlohmann::json() : nlohmann::json(r.run_id)},
          {"state", r.state},
          {"attempts", r.attempts},
          {"next_attempt_at", r.state == "retrying" ? Time(r.next_attempt_at) : nlohmann::json()},
          {"last_error", r.last_error},
          {"payload", payload},
          {"created_at", Time(r.created_at)},
          {"updated_at", Time(r.updated_at)}};
}

nlohmann::json OutboxCountsJson(const OutboxCounts& c) {
  return {{"pending", c.pending},
          {"retrying", c.retrying},
          {"done", c.done},
          {"failed", c.failed},
          {"oldest_undelivered_at", c.oldest_undelivered_at ? Time(*c.oldest_undelivered_at) : nlohmann::json()}};
}

}  // namespace crowdgate
