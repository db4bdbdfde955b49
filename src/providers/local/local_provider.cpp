#include "providers/local/local_provider.hpp"

#include "providers/local/worker_link.hpp"

namespace crowdgate {

Status LocalProvider::Publish(const ProviderRun& run) {
  return Status::InvalidArgument("run " + run.run_id + " has local workers: there is nothing to publish; send each "
                                 "worker their link (crowdgate worker link WORKER " + run.run_id + ")");
}

Result<WorkRequest> LocalProvider::Recognize(const ProviderRun& run, const Landing& landing) {
  if (run.config->provider.trust_worker_param) return TrustedLanding(run.run_id, landing);
  if (landing.worker.provider != "local") {
    return Status::Unauthenticated("run " + run.run_id + " takes local workers with a signed link (?worker=NAME&sig=...), "
                                   "not " + landing.worker.provider + " workers");
  }
  CG_RETURN_IF_ERROR(VerifyWorkerLink(secret_, run.run_id, landing.worker, landing.sig,
                                      env_->NowMicros() / kMicrosPerSecond));
  return TrustedLanding(run.run_id, landing);
}

Delivery LocalProvider::Deliver(const OutboxRow& row, const std::function<Status(const nlohmann::json&)>&) {
  Delivery d;
  d.outcome = Delivery::Outcome::kFailed;
  d.message = "local workers have no provider to tell (outbox row " + std::to_string(row.id) + ")";
  return d;
}

}  // namespace crowdgate
