#include "server/dashboard_sessions.hpp"

#include "crowdgate/env.hpp"

namespace crowdgate {

DashboardSessions::Session DashboardSessions::Create(int64_t now_micros) {
  Session s;
  s.id = Env::Default()->RandomHex128() + Env::Default()->RandomHex128();
  s.csrf = Env::Default()->RandomHex128();
  s.expires_at = now_micros + kLifetimeMicros;
  std::lock_guard<std::mutex> lock(mu_);
  // Drop lapsed sessions now and then so logins never pile up.
  if (sessions_.size() > 1024) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      it = it->second.expires_at <= now_micros ? sessions_.erase(it) : std::next(it);
    }
  }
  sessions_[s.id] = s;
  return s;
}

std::optional<DashboardSessions::Session> DashboardSessions::Find(const std::string& id, int64_t now_micros) {
  if (id.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires_at <= now_micros) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void DashboardSessions::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(id);
}

std::string CookieValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    size_t b = pos;
    while (b < end && header[b] == ' ') ++b;
    const size_t eq = header.find('=', b);
    if (eq != std::string::npos && eq < end && header.compare(b, eq - b, name) == 0 && eq - b == name.size()) {
      return header.substr(eq + 1, end - eq - 1);
    }
    pos = end + 1;
  }
  return "";
}

}  // namespace crowdgate
