// Dashboard logins: a random session id (the HttpOnly cookie) mapped to a random CSRF token that
// every change must echo in X-CSRF-Token. In memory: a restarted server asks to log in again.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace crowdgate {

class DashboardSessions {
 public:
  static constexpr int64_t kLifetimeMicros = 12LL * 3600 * 1000000;

  struct Session {
    std::string id;
    std::string csrf;
    int64_t expires_at = 0;
  };

  Session Create(int64_t now_micros);
  // The live session with this id, if any.
  std::optional<Session> Find(const std::string& id, int64_t now_micros);
  void Remove(const std::string& id);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;
};

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(const std::string& header, const std::string& name);

}  // namespace crowdgate
