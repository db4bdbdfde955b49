// ProviderHub: the providers of one process and what they share. It picks each run's provider
// (local, prolific, mturk), keeps a cache of the runs' configs and provider state, recognises
// landing workers, signs local workers' links, launches / publishes / closes provider objects,
// and drains the outbox (outbox_drainer.hpp) on its own store connection.
//
// Thread-safety: every method may be called from any thread. The hub's store connection is used
// under one mutex; provider calls (network) are made without it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "providers/local/local_provider.hpp"
#include "providers/prolific/prolific_client.hpp"
#include "providers/provider.hpp"

namespace crowdgate {

struct ProviderHubOptions {
  std::string db_uri;          // the database the engine uses (the hub opens its own connection)
  Env* env = nullptr;          // default Env::Default()
  std::string public_url;      // `--public-url`: where providers send workers (else provider.public_url)
  // The Prolific API client; null = from the environment on first use (PROLIFIC_API_TOKEN,
  // CROWDGATE_PROLIFIC_URL).
  std::unique_ptr<prolific::Client> prolific_client;
};

class ProviderHub {
 public:
  static Result<std::unique_ptr<ProviderHub>> Open(ProviderHubOptions options, Engine* engine, Dispatcher* dispatcher);
  ~ProviderHub();

  // ---- workers ----
  // Who a landing request is, checked by the run's provider; Unauthenticated when it cannot vouch.
  Result<WorkRequest> Recognize(const std::string& run_id, const Landing& landing);
  // Where a worker whose session is over goes (Prolific's completion URL), or nullopt.
  std::optional<std::string> SessionEndUrl(const std::string& run_id, bool refused);
  // provider.units_per_session of the run (0 = no limit).
  int64_t UnitsPerSession(const std::string& run_id);
  // A signed link path for a local worker: /runs/RUN?worker=NAME&sig=...; expires_at_s 0 = never.
  Result<std::string> WorkerLink(const std::string& run_id, const std::string& worker, int64_t expires_at_s);

  // ---- runs ----
  // Refuses what the run's provider cannot launch, before the run is stored.
  Status CheckLaunch(const RunConfig& config);
  // Creates the provider's object for a stored run (Prolific: the draft study; published when the
  // config says so).
  Status Launch(const std::string& run_id);
  Status Publish(const std::string& run_id);
  // No new work (the run is closed) and no new participants (the Prolific study is stopped).
  Status Close(const std::string& run_id);
  // The run's provider's objections to a review, before anything changes.
  Status CheckReview(const ReviewRequest& review);
  // The public address used for `config`: --public-url, else provider.public_url.
  std::string PublicUrlFor(const RunConfig& config) const;

  // ---- outbox ----
  struct DrainReport {
    int64_t delivered = 0;
    int64_t retrying = 0;   // deliveries that will be tried again later
    int64_t failed = 0;     // permanent refusals (recorded with the provider's message)
    int64_t calls = 0;      // provider API calls made
  };
  // Delivers every due row (and polls the providers once); returns when none is left due.
  Result<DrainReport> DrainOnce();
  // The background drainer of `serve`: delivers rows as they come and polls every poll_ms.
  void StartDrainer(int poll_ms);
  void StopDrainer();
  Result<OutboxCounts> CountOutbox();
  Result<std::vector<OutboxRow>> ListOutbox(const std::vector<std::string>& states, int64_t after_id, int64_t limit);
  // Totals since start (for /metrics and tests).
  DrainReport totals() const;

  // Reloads every run's status and provider state from the database.
  Status RefreshRuns();

 private:
  class Drainer;
  ProviderHub(ProviderHubOptions options, Engine* engine, Dispatcher* dispatcher, std::unique_ptr<Store> store);

  Result<std::shared_ptr<const ProviderRun>> RunOf(const std::string& run_id);
  Result<std::shared_ptr<const ProviderRun>> LoadRunLocked(const RunRecord& record);
  Provider* ProviderFor(const std::string& type);
  Status SaveState(const std::string& run_id, const nlohmann::json& state);
  std::vector<std::shared_ptr<const ProviderRun>> Runs();
  // One claim of due rows, delivered; false when nothing was due.
  Result<bool> DrainBatch(const std::string& claimer, DrainReport* report, int64_t* pause_until);
  Status PollProviders();

  ProviderHubOptions options_;
  Env* env_;
  Engine* engine_;
  Dispatcher* dispatcher_;
  std::mutex store_mu_;
  std::unique_ptr<Store> store_;
  std::mutex runs_mu_;
  std::map<std::string, std::shared_ptr<const ProviderRun>> runs_;
  std::unique_ptr<LocalProvider> local_;
  std::map<std::string, std::unique_ptr<Provider>> providers_;  // prolific, mturk, mturk_sandbox
  mutable std::mutex totals_mu_;
  DrainReport totals_;
  std::unique_ptr<Drainer> drainer_;
};

}  // namespace crowdgate
