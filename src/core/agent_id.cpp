#include "core/agent_id.hpp"

#include <cstdio>

namespace crowdgate {

std::string NewAgentId(int64_t created_at_micros, const std::string& random_hex) {
  // 13 hex digits hold microseconds until the year 2112; earlier clocks (tests) pad with zeros.
  char time_hex[17];
  std::snprintf(time_hex, sizeof(time_hex), "%013llx",
                static_cast<unsigned long long>(created_at_micros < 0 ? 0 : created_at_micros) & 0xfffffffffffffULL);
  std::string tail = random_hex.size() >= 19 ? random_hex.substr(random_hex.size() - 19) : random_hex;
  tail.insert(0, 19 - tail.size(), '0');
  return "ag_" + std::string(time_hex) + tail;
}

}  // namespace crowdgate
