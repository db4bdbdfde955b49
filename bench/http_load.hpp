// HttpLoad: the bench's own load generator for workload `http-work`. Simulated workers, each on
// its own keep-alive TCP connection over loopback, all driven from one epoll thread, repeat
// "POST /work, then POST /agents/{id}/submit" with a think time that paces the whole crowd at
// an offered rate (each think time drawn at random between half and one and a half of the mean,
// so that the crowd does not fall into step). It records the latency of every request (send of the first byte to the
// last byte of the response) and counts every non-200, closed connection or non-"unit" work
// outcome as an error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crowdgate::bench {

struct HttpLoadOptions {
  int port = 0;
  std::vector<int> ports;            // several servers: connection i uses ports[i % size] (else `port`)
  std::string run_id;
  int connections = 1000;            // concurrent simulated workers, one connection each
  int64_t worker_population = 1000;  // worker names w1..wN; a connection takes the next name per cycle
  double offered_rate = 10000;       // requests/s for the whole crowd; 0 = closed loop, no think time
  double warmup_s = 1;
  double duration_s = 5;
  double backoff_after_503_s = 0;    // a connection answered 503 waits this long before its next request
};

struct HttpLoadResult {
  int64_t requests = 0;       // completed within the measured window
  int64_t errors = 0;
  int64_t no_work = 0;        // work answered no_work / not_qualified (counted in errors too)
  int64_t shed = 0;           // answered 503 (load shedding; counted in errors too), within the measured window
  int64_t shed_all = 0;       // answered 503 at any time, warm-up included (like errors)
  double elapsed_s = 0;
  double throughput = 0;      // requests/s in the measured window
  std::vector<double> latencies_ms;
  std::vector<std::string> error_samples;
};

HttpLoadResult RunHttpLoad(const HttpLoadOptions& options);

}  // namespace crowdgate::bench
