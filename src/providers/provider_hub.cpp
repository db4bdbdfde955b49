#include "providers/provider_hub.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <random>
#include <thread>

#include "providers/local/worker_link.hpp"
#include "providers/mturk/mturk_provider.hpp"
#include "providers/outbox_backoff.hpp"
#include "providers/prolific/prolific_client.hpp"
#include "providers/prolific/prolific_provider.hpp"

namespace crowdgate {

namespace {

constexpr int kClaimBatch = 200;
constexpr size_t kDeliveryStrands = 4;  // rows of one claim delivered side by side
constexpr int64_t kClaimLease = 60 * kMicrosPerSecond;  // a crashed drainer's rows come back after this
const char* kLinkSecret = "worker_links";

}  // namespace

// The background thread of `serve`: delivers due rows as they come, polls every poll_ms.
class ProviderHub::Drainer {
 public:
  Drainer(ProviderHub* hub, int poll_ms) : hub_(hub), poll_ms_(poll_ms), claimer_(hub->env_->RandomHex128()) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Drainer() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Sleep(int64_t micros) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::microseconds(micros), [this] { return stop_; });
  }
  bool Stopping() {
    std::lock_guard<std::mutex> l(mu_);
    return stop_;
  }
  void Loop() {
    int64_t next_poll = 0;
    int64_t pause_until = 0;
    while (!Stopping()) {
      const int64_t now = hub_->env_->NowMicros();
      if (now >= next_poll) {
        Status s = hub_->RefreshRuns();
        if (s.ok()) s = hub_->PollProviders();
        if (!s.ok()) std::cerr << "crowdgate: provider poll: " << s.ToString() << "\n";
        next_poll = now + int64_t{poll_ms_} * 1000;
      }
      if (now < pause_until) {
        Sleep(std::min(pause_until - now, next_poll - now));
        continue;
      }
      DrainReport report;
      Result<bool> more = hub_->DrainBatch(claimer_, &report, &pause_until);
      if (!more.ok()) {
        std::cerr << "crowdgate: provider outbox: " << more.status().ToString() << "\n";
        Sleep(kMicrosPerSecond);
      } else if (!*more) {
        Sleep(100'000);  // nothing due: look again soon
      }
    }
  }

  ProviderHub* hub_;
  int poll_ms_;
  std::string claimer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

ProviderHub::ProviderHub(ProviderHubOptions options, Engine* engine, Dispatcher* dispatcher,
                         std::unique_ptr<Store> store)
    : options_(std::move(options)),
      env_(options_.env ? options_.env : Env::Default()),
      engine_(engine),
      dispatcher_(dispatcher),
      store_(std::move(store)) {}

ProviderHub::~ProviderHub() { StopDrainer(); }

Result<std::unique_ptr<ProviderHub>> ProviderHub::Open(ProviderHubOptions options, Engine* engine,
                                                       Dispatcher* dispatcher) {
  Env* env = options.env ? options.env : Env::Default();
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(options.db_uri, env));
  CG_ASSIGN_OR_RETURN(std::string secret, store->DatabaseSecret(kLinkSecret));
  std::unique_ptr<prolific::Client> client = std::move(options.prolific_client);
  std::unique_ptr<ProviderHub> hub(new ProviderHub(std::move(options), engine, dispatcher, std::move(store)));
  hub->local_ = std::make_unique<LocalProvider>(std::move(secret), hub->env_);
  ProviderContext ctx;
  ctx.engine = engine;
  ctx.env = hub->env_;
  ProviderHub* h = hub.get();
  ctx.runs = [h] { return h->Runs(); };
  ctx.save_state = [h](const std::string& run_id, const nlohmann::json& state) { return h->SaveState(run_id, state); };
  hub->providers_["prolific"] = std::make_unique<ProlificProvider>(ctx, std::move(client));
  hub->providers_["mturk"] = std::make_unique<MturkProvider>("mturk");
  hub->providers_["mturk_sandbox"] = std::make_unique<MturkProvider>("mturk_sandbox");
  return hub;
}

Provider* ProviderHub::ProviderFor(const std::string& type) {
  if (type == "local") return local_.get();
  auto it = providers_.find(type);
  return it == providers_.end() ? nullptr : it->second.get();
}

Result<std::shared_ptr<const ProviderRun>> ProviderHub::LoadRunLocked(const RunRecord& record) {
  auto run = std::make_shared<ProviderRun>();
  run->run_id = record.id;
  run->status = record.status;
  // The dispatcher stores {"config": resolved config, "task_html", "onboarding_html"}.
  auto stored = nlohmann::json::parse(record.config_json, nullptr, false);
  if (!stored.is_object() || !stored.contains("config")) {
    return Status::Internal("run " + record.id + ": stored config is unreadable");
  }
  CG_ASSIGN_OR_RETURN(RunConfig parsed, RunConfigFromJson(stored["config"]));
  run->config = std::make_shared<const RunConfig>(std::move(parsed));
  run->state = nlohmann::json::parse(record.provider_state_json.empty() ? "{}" : record.provider_state_json, nullptr,
                                     false);
  if (!run->state.is_object()) run->state = nlohmann::json::object();
  return std::shared_ptr<const ProviderRun>(std::move(run));
}

Result<std::shared_ptr<const ProviderRun>> ProviderHub::RunOf(const std::string& run_id) {
  {
    std::lock_guard<std::mutex> l(runs_mu_);
    auto it = runs_.find(run_id);
    if (it != runs_.end()) return it->second;
  }
  Result<RunRecord> record = [&] {
    std::lock_guard<std::mutex> l(store_mu_);
    return store_->GetRun(run_id);
  }();
  if (!record.ok()) {
    if (record.status().IsNotFound()) return Status::NotFound("run " + run_id + " does not exist");
    return record.status();
  }
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, LoadRunLocked(*record));
  std::lock_guard<std::mutex> l(runs_mu_);
  runs_[run_id] = run;
  return run;
}

Status ProviderHub::RefreshRuns() {
  Result<std::vector<RunRecord>> records = [&] {
    std::lock_guard<std::mutex> l(store_mu_);
    return store_->ListRuns();
  }();
  if (!records.ok()) return records.status();
  for (const RunRecord& r : *records) {
    std::shared_ptr<const ProviderRun> cached;
    {
      std::lock_guard<std::mutex> l(runs_mu_);
      auto it = runs_.find(r.id);
      if (it != runs_.end()) cached = it->second;
    }
    std::shared_ptr<ProviderRun> fresh;
    if (cached) {
      fresh = std::make_shared<ProviderRun>(*cached);  // the config never changes; status and state may
      fresh->status = r.status;
      auto state = nlohmann::json::parse(r.provider_state_json.empty() ? "{}" : r.provider_state_json, nullptr, false);
      if (state.is_object()) fresh->state = std::move(state);
    } else {
      auto loaded = LoadRunLocked(r);
      if (!loaded.ok()) continue;  // a run this binary cannot read is not ours to drive
      fresh = std::make_shared<ProviderRun>(**loaded);
    }
    std::lock_guard<std::mutex> l(runs_mu_);
    runs_[r.id] = std::move(fresh);
  }
  return Status::Ok();
}

std::vector<std::shared_ptr<const ProviderRun>> ProviderHub::Runs() {
  std::lock_guard<std::mutex> l(runs_mu_);
  std::vector<std::shared_ptr<const ProviderRun>> out;
  out.reserve(runs_.size());
  for (const auto& [id, run] : runs_) out.push_back(run);
  return out;
}

Status ProviderHub::SaveState(const std::string& run_id, const nlohmann::json& state) {
  {
    std::lock_guard<std::mutex> l(store_mu_);
    CG_RETURN_IF_ERROR(store_->SetRunProviderState(run_id, state.dump()));
  }
  std::lock_guard<std::mutex> l(runs_mu_);
  auto it = runs_.find(run_id);
  if (it != runs_.end()) {
    auto updated = std::make_shared<ProviderRun>(*it->second);
    updated->state = state;
    it->second = std::move(updated);
  }
  return Status::Ok();
}

Result<WorkRequest> ProviderHub::Recognize(const std::string& run_id, const Landing& landing) {
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, RunOf(run_id));
  Provider* p = ProviderFor(run->config->provider.type);
  if (!p) return Status::Internal("run " + run_id + ": unknown provider " + run->config->provider.type);
  return p->Recognize(*run, landing);
}

std::optional<std::string> ProviderHub::SessionEndUrl(const std::string& run_id, bool refused) {
  auto run = RunOf(run_id);
  if (!run.ok()) return std::nullopt;
  Provider* p = ProviderFor((*run)->config->provider.type);
  return p ? p->SessionEndUrl(**run, refused) : std::nullopt;
}

int64_t ProviderHub::UnitsPerSession(const std::string& run_id) {
  auto run = RunOf(run_id);
  return run.ok() ? (*run)->config->provider.units_per_session : 0;
}

Result<std::string> ProviderHub::WorkerLink(const std::string& run_id, const std::string& worker,
                                            int64_t expires_at_s) {
  CG_ASSIGN_OR_RETURN(WorkerRef ref, ParseWorkerRef(worker));
  if (ref.provider != "local") {
    return Status::InvalidArgument("worker links are for local workers; " + ref.ToString() + " lands through " +
                                   ref.provider);
  }
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, RunOf(run_id));
  if (run->config->provider.type != "local") {
    return Status::InvalidArgument("run " + run_id + " takes " + run->config->provider.type +
                                   " workers, who land through the provider, not through signed links");
  }
  if (expires_at_s < 0) return Status::InvalidArgument("link expiry: expected a time in the future");
  return WorkerLinkPath(run_id, ref, SignWorkerLink(local_->secret(), run_id, ref, expires_at_s));
}

std::string ProviderHub::PublicUrlFor(const RunConfig& config) const {
  std::string url = options_.public_url.empty() ? config.provider.public_url : options_.public_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

Status ProviderHub::CheckLaunch(const RunConfig& config) {
  Provider* p = ProviderFor(config.provider.type);
  if (!p) return Status::InvalidArgument("provider.type: unknown provider " + config.provider.type);
  return p->CheckLaunch(config, PublicUrlFor(config));
}

Status ProviderHub::Launch(const std::string& run_id) {
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, RunOf(run_id));
  Provider* p = ProviderFor(run->config->provider.type);
  if (!p) return Status::Internal("run " + run_id + ": unknown provider");
  return p->Launch(*run, PublicUrlFor(*run->config));
}

Status ProviderHub::Publish(const std::string& run_id) {
  CG_RETURN_IF_ERROR(RefreshRuns());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, RunOf(run_id));
  if (run->status != RunStatus::kOpen) return Status::InvalidArgument("run " + run_id + " is closed");
  Provider* p = ProviderFor(run->config->provider.type);
  if (!p) return Status::Internal("run " + run_id + ": unknown provider");
  return p->Publish(*run);
}

Status ProviderHub::Close(const std::string& run_id) {
  CG_RETURN_IF_ERROR(dispatcher_->CloseRun(run_id));
  CG_RETURN_IF_ERROR(RefreshRuns());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, RunOf(run_id));
  Provider* p = ProviderFor(run->config->provider.type);
  if (!p) return Status::Internal("run " + run_id + ": unknown provider");
  return p->Close(*run);
}

Status ProviderHub::CheckReview(const ReviewRequest& review) {
  CG_ASSIGN_OR_RETURN(std::shared_ptr<const ProviderRun> run, RunOf(review.run_id));
  Provider* p = ProviderFor(run->config->provider.type);
  return p ? p->CheckReview(*run, review) : Status::Ok();
}

Status ProviderHub::PollProviders() {
  auto end_session = [this](const std::string& run_id, const std::string& session) -> Status {
    Result<int64_t> n = dispatcher_->EndSession(run_id, session);
    return n.ok() ? Status::Ok() : n.status();
  };
  bool any = false;
  for (const auto& run : Runs()) any = any || (run->status == RunStatus::kOpen && run->config->provider.type == "prolific");
  if (!any) return Status::Ok();  // no study to look at: no token needed
  return providers_["prolific"]->Poll(end_session);
}

Result<bool> ProviderHub::DrainBatch(const std::string& claimer, DrainReport* report, int64_t* pause_until) {
  const int64_t now = env_->NowMicros();
  Result<std::vector<OutboxRow>> claimed = [&] {
    std::lock_guard<std::mutex> l(store_mu_);
    return store_->ClaimOutbox(claimer, now, kClaimLease, kClaimBatch);
  }();
  if (!claimed.ok()) return claimed.status();
  if (claimed->empty()) return false;
  // A claim holds at most one row per order key (the first undelivered one), so the rows of one
  // claim are independent: a few strands deliver them side by side without breaking the order
  // within a key. The provider's calls overlap; the store is still written under store_mu_.
  std::atomic<bool> paused{false};
  std::mutex mu;  // guards local, first_error and *pause_until
  DrainReport local;
  Status first_error = Status::Ok();
  auto strand = [&](size_t first, size_t step) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (size_t i = first; i < claimed->size(); i += step) {
      OutboxRow& row = (*claimed)[i];
      if (paused.load()) {  // the provider is away: hand the rest back untouched
        std::lock_guard<std::mutex> l(store_mu_);
        Status s = store_->UpdateOutboxRow(row, /*release=*/true);
        if (!s.ok() && !s.IsConflict()) {
          std::lock_guard<std::mutex> e(mu);
          if (first_error.ok()) first_error = s;
        }
        continue;
      }
      Provider* p = ProviderFor(row.provider);
      auto save_progress = [&](const nlohmann::json& progress) -> Status {
        row.progress_json = progress.dump();
        std::lock_guard<std::mutex> l(store_mu_);
        return store_->UpdateOutboxRow(row, /*release=*/false);
      };
      Delivery d = p ? p->Deliver(row, save_progress)
                     : Delivery{Delivery::Outcome::kFailed, "no provider " + row.provider, std::nullopt, 0, false};
      row.attempts += 1;
      row.last_error = d.message;
      {
        std::lock_guard<std::mutex> l(mu);
        local.calls += d.calls;
        switch (d.outcome) {
          case Delivery::Outcome::kDone:
            row.state = "done";
            ++local.delivered;
            break;
          case Delivery::Outcome::kFailed:
            row.state = "failed";
            ++local.failed;
            break;
          case Delivery::Outcome::kRetry: {
            row.state = "retrying";
            const int64_t delay = OutboxBackoffMicros(row.attempts, d.retry_after_s, unit(rng));
            row.next_attempt_at = env_->NowMicros() + delay;
            ++local.retrying;
            if (d.provider_unavailable) {
              paused.store(true);
              *pause_until = std::max(*pause_until, row.next_attempt_at);
            }
            break;
          }
        }
      }
      std::lock_guard<std::mutex> l(store_mu_);
      Status s = store_->UpdateOutboxRow(row, /*release=*/true);
      if (!s.ok() && !s.IsConflict()) {  // Conflict: our lease lapsed and another drainer has it
        std::lock_guard<std::mutex> e(mu);
        if (first_error.ok()) first_error = s;
      }
    }
  };
  const size_t strands = std::min<size_t>(kDeliveryStrands, claimed->size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < strands; ++t) threads.emplace_back(strand, t, strands);
  strand(0, strands);
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;
  report->delivered += local.delivered;
  report->retrying += local.retrying;
  report->failed += local.failed;
  report->calls += local.calls;
  std::lock_guard<std::mutex> l(totals_mu_);
  totals_.delivered += local.delivered;
  totals_.retrying += local.retrying;
  totals_.failed += local.failed;
  totals_.calls += local.calls;
  return !paused.load();
}

Result<ProviderHub::DrainReport> ProviderHub::DrainOnce() {
  CG_RETURN_IF_ERROR(RefreshRuns());
  DrainReport report;
  Status polled = PollProviders();
  if (!polled.ok()) std::cerr << "crowdgate: provider poll: " << polled.ToString() << "\n";
  const std::string claimer = env_->RandomHex128();
  int64_t pause_until = 0;
  while (true) {
    CG_ASSIGN_OR_RETURN(bool more, DrainBatch(claimer, &report, &pause_until));
    if (!more) break;
  }
  return report;
}

void ProviderHub::StartDrainer(int poll_ms) {
  if (!drainer_) drainer_ = std::make_unique<Drainer>(this, poll_ms);
}

void ProviderHub::StopDrainer() { drainer_.reset(); }

Result<OutboxCounts> ProviderHub::CountOutbox() {
  std::lock_guard<std::mutex> l(store_mu_);
  return store_->CountOutbox();
}

Result<std::vector<OutboxRow>> ProviderHub::ListOutbox(const std::vector<std::string>& states, int64_t after_id,
                                                       int64_t limit) {
  std::lock_guard<std::mutex> l(store_mu_);
  return store_->ListOutbox(states, after_id, limit);
}

ProviderHub::DrainReport ProviderHub::totals() const {
  std::lock_guard<std::mutex> l(totals_mu_);
  return totals_;
}

}  // namespace crowdgate
