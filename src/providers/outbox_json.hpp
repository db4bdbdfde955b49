// The outbox as JSON, the same for `crowdgate provider status --json` and the requester API.
#pragma once

#include <nlohmann/json.hpp>

#include "crowdgate/store.hpp"

namespace crowdgate {

nlohmann::json OutboxRowJson(const OutboxRow& row);
nlohmann::json OutboxCountsJson(const OutboxCounts& counts);

}  // namespace crowdgate
