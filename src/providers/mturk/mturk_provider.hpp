// Amazon Mechanical Turk closed on 2026-09-30. crowdgate keeps MTurk's requirement model, its
// worker ids (imported from Mephisto) and its landing parameters (workerId, assignmentId, hitId),
// but there is no service left to launch on: every launch is refused with a message saying so.
#pragma once

#include "providers/local/local_provider.hpp"
#include "providers/provider.hpp"

namespace crowdgate {

class MturkProvider : public Provider {
 public:
  explicit MturkProvider(std::string type) : type_(std::move(type)) {}

  Status CheckLaunch(const RunConfig&, const std::string&) override { return Closed(); }
  Status Launch(const ProviderRun&, const std::string&) override { return Closed(); }
  Status Publish(const ProviderRun&) override { return Closed(); }
  Status Close(const ProviderRun&) override { return Status::Ok(); }
  Result<WorkRequest> Recognize(const ProviderRun& run, const Landing& landing) override {
    if (run.config->provider.trust_worker_param) return TrustedLanding(run.run_id, landing);
    return Status::Unauthenticated("Amazon Mechanical Turk has closed: this run cannot vouch for MTurk workers");
  }
  std::optional<std::string> SessionEndUrl(const ProviderRun&, bool) override { return std::nullopt; }
  Delivery Deliver(const OutboxRow&, const std::function<Status(const nlohmann::json&)>&) override {
    return {Delivery::Outcome::kFailed, Closed().message(), std::nullopt, 0, false};
  }

 private:
  Status Closed() const {
    return Status::InvalidArgument("provider.type " + type_ +
                                   ": Amazon Mechanical Turk closed on 2026-09-30, so crowdgate cannot launch on it. "
                                   "Use provider.type prolific, or local with signed worker links; MTurk worker ids "
                                   "and their qualifications still work (crowdgate import-mephisto)");
  }
  std::string type_;
};

}  // namespace crowdgate
