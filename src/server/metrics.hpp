// ServerMetrics: the counters behind GET /metrics, rendered in the Prometheus text format
// (version 0.0.4). Thread-safe; a request costs one short lock.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace crowdgate {

class ServerMetrics {
 public:
  // Latency histogram bucket bounds, seconds.
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,     2.5};

  void ObserveRequest(const std::string& route, int status, double seconds);
  void ObserveWork(const std::string& outcome, const std::string& reason);

  // One gauge or counter sample appended by the caller at render time.
  struct Sample {
    std::string name;    // crowdgate_outbox_rows
    std::string type;    // gauge | counter
    std::string help;
    std::string labels;  // state="pending" (without braces), or ""
    double value = 0;
  };
  std::string Render(const std::vector<Sample>& extra) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> counts{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (route, status)
  std::map<std::string, Histogram> latency_;                  // route
  std::map<std::pair<std::string, std::string>, uint64_t> work_;  // (outcome, reason)
};

// Escapes a label value (backslash, quote, newline).
std::string PromLabel(const std::string& v);

}  // namespace crowdgate
