// TaskServer: crowdgate's HTTP face. The worker API and pages (README "HTTP API"), the
// requester API (behind the requester token), a lease-expiry timer and the grant expiry sweep, over one
// RunDispatcher (the pages need the run's config). Every error leaves through ErrorResponse
// (the one Status -> HTTP table).
//
// Thread-safety: Start/Stop from one thread; handlers run on the HTTP io threads and
// call the thread-safe Dispatcher and Engine. The requests that write (work, the task page,
// submit, return) are decided on the BatchQueue's thread, many per store transaction
// (group commit), and answered once that transaction has committed.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "crowdgate/engine.hpp"
#include "engine/run_dispatcher.hpp"
#include "providers/provider_hub.hpp"
#include "server/batch_queue.hpp"
#include "server/dashboard_sessions.hpp"
#include "server/http_server.hpp"
#include "server/metrics.hpp"

namespace crowdgate {

struct TaskServerOptions {
  HttpServerOptions http;
  std::string requester_token;  // required for /api/v1/requester/...; empty = generated at Start
  int expiry_interval_ms = 1000;  // how often overdue agents are timed out
  // How often grants whose expiry has passed are revoked (Engine::RevokeExpiredGrants), and once at
  // Start; `serve` takes it from CROWDGATE_GRANT_SWEEP_SECONDS.
  int grant_sweep_interval_ms = 60000;
  BatchQueue::Options batching;
  // Recognises landing workers (signed links, Prolific sessions) and says where finished sessions
  // go; required. Not owned.
  ProviderHub* providers = nullptr;
  bool metrics_public = false;  // GET /metrics without the requester token (`serve --metrics-public`)
};

class TaskServer {
 public:
  TaskServer(Engine* engine, RunDispatcher* dispatcher, TaskServerOptions options);
  ~TaskServer();
  Status Start();
  void Stop();
  int port() const;
  const std::string& requester_token() const { return options_.requester_token; }
  BatchQueue::Stats batch_stats() const { return queue_ ? queue_->stats() : BatchQueue::Stats{}; }

 private:
  Router BuildRouter();
  std::vector<ServerMetrics::Sample> MetricSamples() const;

  Engine* engine_;
  RunDispatcher* dispatcher_;
  TaskServerOptions options_;
  std::unique_ptr<DashboardSessions> sessions_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<BatchQueue> queue_;  // after http_: destroyed first, while the server's executors live
  // One expiry sweep; adds what it removed to grants_expired_ and logs it.
  void SweepExpiredGrants();

  std::atomic<bool> stop_{false};
  std::thread expiry_thread_;
  std::thread grant_sweep_thread_;
  std::atomic<int64_t> grants_expired_{0};  // grants revoked by this process's expiry sweeps
};

// Fills ${field} placeholders of a template with HTML-escaped values of `data`; unknown
// placeholders become empty. Non-string values are written as JSON.
std::string FillTemplate(const std::string& html, const nlohmann::json& data);

}  // namespace crowdgate
