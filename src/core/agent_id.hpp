// Agent ids: "ag_" and 32 hex digits. The first 13 digits are the creation time (microseconds),
// the other 19 are random. Ids made later sort later, so the store's unique index on agent ids
// grows at its end instead of at a random page per new agent: a group commit then writes a few
// index pages instead of one per request. The id names an agent; it is not a secret (the token
// is), and the time it shows is in every export anyway.
#pragma once

#include <cstdint>
#include <string>

namespace crowdgate {

// `random_hex` is 32 hex digits (Env::RandomHex128); its last 19 are used.
std::string NewAgentId(int64_t created_at_micros, const std::string& random_hex);

}  // namespace crowdgate
