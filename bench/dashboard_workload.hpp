// The `dashboard` workload of crowdgate_bench: every requester API call the dashboard makes, over
// HTTP against an in-process TaskServer, on a SQLite run of `units` submitted units by `workers`
// workers (one gold per 50 units). The rows are written straight into the database (the workload
// measures reading, not filling): p50/p99 per call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crowdgate::bench {

struct DashboardCall {
  std::string name;    // "units page (deep cursor)"
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  int errors = 0;
};

struct DashboardFigures {
  int64_t units = 0;
  int64_t workers = 0;
  double fill_s = 0;
  std::vector<DashboardCall> calls;
  std::vector<std::string> errors;
};

DashboardFigures RunDashboardWorkload(int64_t units, int64_t workers, int repeats);

}  // namespace crowdgate::bench
