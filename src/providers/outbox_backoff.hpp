// When an outbox row that could not be delivered is tried again: exponential backoff with jitter,
// never sooner than the provider asked (Retry-After).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "crowdgate/env.hpp"

namespace crowdgate {

constexpr int64_t kOutboxBackoffBase = 500'000;       // 0.5 s after the first failure
constexpr int64_t kOutboxBackoffCap = 15'000'000;     // never more than 15 s between tries

// Delay before try number attempts + 1 (attempts >= 1 failures so far); `unit_random` in [0, 1)
// spreads retries of many rows (jitter: between half and all of the exponential step).
inline int64_t OutboxBackoffMicros(int64_t attempts, std::optional<int> retry_after_s, double unit_random) {
  const int64_t shift = std::clamp<int64_t>(attempts - 1, 0, 30);
  const int64_t step = std::min(kOutboxBackoffCap, kOutboxBackoffBase << std::min<int64_t>(shift, 20));
  const int64_t jittered = step / 2 + static_cast<int64_t>(static_cast<double>(step / 2) * unit_random);
  const int64_t asked = retry_after_s ? int64_t{*retry_after_s} * kMicrosPerSecond : 0;
  return std::max(jittered, asked);
}

}  // namespace crowdgate
