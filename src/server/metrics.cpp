#include "server/metrics.hpp"

#include <cstdio>
#include <set>

namespace crowdgate {

std::string PromLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void ServerMetrics::ObserveRequest(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.counts[i];
  }
  ++h.count;
  h.sum += seconds;
}

void ServerMetrics::ObserveWork(const std::string& outcome, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++work_[{outcome, reason}];
}

std::string ServerMetrics::Render(const std::vector<Sample>& extra) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out += "# HELP crowdgate_http_requests_total HTTP requests answered, by route and status.\n";
    out += "# TYPE crowdgate_http_requests_total counter\n";
    for (const auto& [key, n] : requests_) {
      out += "crowdgate_http_requests_total{route=\"" + PromLabel(key.first) + "\",status=\"" +
             std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
    }
    out += "# HELP crowdgate_http_request_duration_seconds Time from dispatch to answer, by route.\n";
    out += "# TYPE crowdgate_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
      const std::string r = "route=\"" + PromLabel(route) + "\"";
      for (size_t i = 0; i < kBuckets.size(); ++i) {
        out += "crowdgate_http_request_duration_seconds_bucket{" + r + ",le=\"" + Num(kBuckets[i]) + "\"} " +
               std::to_string(h.counts[i]) + "\n";
      }
      out += "crowdgate_http_request_duration_seconds_bucket{" + r + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
      out += "crowdgate_http_request_duration_seconds_sum{" + r + "} " + Num(h.sum) + "\n";
      out += "crowdgate_http_request_duration_seconds_count{" + r + "} " + std::to_string(h.count) + "\n";
    }
    out += "# HELP crowdgate_work_outcomes_total Answers to work requests, by outcome and reason.\n";
    out += "# TYPE crowdgate_work_outcomes_total counter\n";
    for (const auto& [key, n] : work_) {
      out += "crowdgate_work_outcomes_total{outcome=\"" + PromLabel(key.first) + "\",reason=\"" +
             PromLabel(key.second) + "\"} " + std::to_string(n) + "\n";
    }
  }
  std::set<std::string> described;
  for (const Sample& s : extra) {
    if (described.insert(s.name).second) {
      out += "# HELP " + s.name + " " + s.help + "\n# TYPE " + s.name + " " + s.type + "\n";
    }
    out += s.name + (s.labels.empty() ? "" : "{" + s.labels + "}") + " " + Num(s.value) + "\n";
  }
  return out;
}

}  // namespace crowdgate
