// Constant-time string comparison for secrets (agent tokens, the requester token): the
// time taken depends only on the lengths, never on where the strings first differ.
#pragma once

#include <string_view>

namespace crowdgate {

inline bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;  // volatile: keep the compiler from stopping at the first difference
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace crowdgate
