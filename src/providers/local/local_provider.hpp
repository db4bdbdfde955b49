// The local provider: in-house workers, identified by signed links (worker_link.hpp), or by a
// bare ?worker=NAME when the run sets provider.trust_worker_param (simulations, demos, tests).
#pragma once

#include <string>

#include "providers/provider.hpp"

namespace crowdgate {

class LocalProvider : public Provider {
 public:
  // `link_secret`: the database's worker-link secret (Store::DatabaseSecret).
  LocalProvider(std::string link_secret, Env* env) : secret_(std::move(link_secret)), env_(env) {}

  Status CheckLaunch(const RunConfig&, const std::string&) override { return Status::Ok(); }
  Status Launch(const ProviderRun&, const std::string&) override { return Status::Ok(); }
  Status Publish(const ProviderRun& run) override;
  Status Close(const ProviderRun&) override { return Status::Ok(); }
  Result<WorkRequest> Recognize(const ProviderRun& run, const Landing& landing) override;
  std::optional<std::string> SessionEndUrl(const ProviderRun&, bool) override { return std::nullopt; }
  Delivery Deliver(const OutboxRow& row, const std::function<Status(const nlohmann::json&)>&) override;

  const std::string& secret() const { return secret_; }

 private:
  std::string secret_;
  Env* env_;
};

}  // namespace crowdgate
