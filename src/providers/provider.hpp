// Crowd providers behind one interface. A provider launches the crowd-side object of a run (a
// Prolific study), recognises the workers who land on the run's page, says where a finished
// session goes, reviews and pays through the outbox, keeps its participant lists in step with
// grants, and closes. The server and the CLI talk to providers only through this interface
// (and ProviderHub, which picks the provider of each run); each provider's wire format lives in
// its own folder.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "crowdgate/dispatcher.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/status.hpp"
#include "crowdgate/store.hpp"

namespace crowdgate {

// Who a request says it is, before anyone believes it: the page's query parameters or the
// JSON work request's fields, normalised.
struct Landing {
  WorkerRef worker;        // local:NAME (?worker=), prolific:PID (PROLIFIC_PID), mturk:ID (workerId)
  std::string session;     // Prolific SESSION_ID / MTurk assignmentId; "" for local workers
  std::string study;       // Prolific STUDY_ID ("" when not given)
  std::string sig;         // local workers' link signature
};

// A landing the provider believes (or a run that trusts the worker parameter): the work request.
inline WorkRequest TrustedLanding(const std::string& run_id, const Landing& landing) {
  WorkRequest w;
  w.run_id = run_id;
  w.worker = landing.worker;
  w.session = landing.session;
  return w;
}

// What a provider knows about one run: its resolved config and what the provider created for it.
struct ProviderRun {
  std::string run_id;
  RunStatus status = RunStatus::kOpen;
  std::shared_ptr<const RunConfig> config;
  nlohmann::json state = nlohmann::json::object();  // RunRecord::provider_state_json
};

// The outcome of delivering one outbox row.
struct Delivery {
  enum class Outcome { kDone, kRetry, kFailed };
  Outcome outcome = Outcome::kDone;
  std::string message;                 // why it must wait or failed (the provider's words); "" when done
  std::optional<int> retry_after_s;    // the provider asked us to wait this long
  int64_t calls = 0;                   // provider API calls made
  // kRetry because the provider is throttling or away (not because of the row): the drainer backs
  // off the whole provider instead of trying the next rows at once.
  bool provider_unavailable = false;
};

// What a provider may use while it works.
struct ProviderContext {
  Engine* engine = nullptr;
  // Every known run of this provider (open and closed), from the hub's cache.
  std::function<std::vector<std::shared_ptr<const ProviderRun>>()> runs;
  // Stores a run's provider state (RunRecord::provider_state_json) and refreshes the cache.
  std::function<Status(const std::string& run_id, const nlohmann::json& state)> save_state;
  Env* env = nullptr;
};

class Provider {
 public:
  virtual ~Provider() = default;

  // Refuses a run this provider cannot launch (MTurk is closed; Prolific needs a token and a
  // public address), before anything is stored. InvalidArgument names what is missing.
  virtual Status CheckLaunch(const RunConfig& config, const std::string& public_url) = 0;
  // Creates the crowd-side object for a freshly stored run and saves its state.
  virtual Status Launch(const ProviderRun& run, const std::string& public_url) = 0;
  virtual Status Publish(const ProviderRun& run) = 0;
  // No new participants (Prolific: the study is stopped). Open agents may still submit.
  virtual Status Close(const ProviderRun& run) = 0;

  // The worker and session of a landing request, or Unauthenticated (a missing, wrong or expired
  // signature; a Prolific session that is not an active submission of the run's study).
  virtual Result<WorkRequest> Recognize(const ProviderRun& run, const Landing& landing) = 0;
  // Where a worker whose session ended goes: a URL to send them to, or nullopt (stay on our page).
  // `refused` = they were turned away (not qualified), never paid as a normal completion.
  virtual std::optional<std::string> SessionEndUrl(const ProviderRun& run, bool refused) = 0;

  // Refuses a review the provider would refuse (before anything changes).
  virtual Status CheckReview(const ProviderRun& run, const ReviewRequest& review) { return Status::Ok(); }

  // Delivers one outbox row. `save_progress` records a step before it is taken (a bonus "pay
  // sent" mark); when it fails the provider must stop without taking the step.
  virtual Delivery Deliver(const OutboxRow& row, const std::function<Status(const nlohmann::json&)>& save_progress) = 0;
  // Periodic work of the drainer: Prolific reads each open study's submissions and hands the
  // units of returned or timed-out ones back through `end_session`.
  virtual Status Poll(const std::function<Status(const std::string& run_id, const std::string& session)>& end_session) {
    return Status::Ok();
  }
};

}  // namespace crowdgate
