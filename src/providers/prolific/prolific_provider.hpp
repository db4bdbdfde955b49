// The Prolific provider: a run is a Prolific study. Launch creates the study as a draft (its
// external URL points at the run's page with Prolific's three placeholders; completion codes;
// places, reward and time; the run's allow and block lists as participant groups built from
// current grants), Publish and Close move it through Prolific's states. A landing participant is
// prolific:PID and gets work only while (PID, SESSION_ID) is an active submission of the study.
// Reviews, bonuses and group changes arrive as outbox rows and are delivered here; Poll hands the
// units of returned and timed-out submissions back.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "providers/prolific/prolific_client.hpp"
#include "providers/provider.hpp"

namespace crowdgate {

class ProlificProvider : public Provider {
 public:
  // `client` null: made on first use from the environment (PROLIFIC_API_TOKEN, CROWDGATE_PROLIFIC_URL).
  ProlificProvider(ProviderContext ctx, std::unique_ptr<prolific::Client> client);

  Status CheckLaunch(const RunConfig& config, const std::string& public_url) override;
  Status Launch(const ProviderRun& run, const std::string& public_url) override;
  Status Publish(const ProviderRun& run) override;
  Status Close(const ProviderRun& run) override;
  Result<WorkRequest> Recognize(const ProviderRun& run, const Landing& landing) override;
  std::optional<std::string> SessionEndUrl(const ProviderRun& run, bool refused) override;
  Status CheckReview(const ProviderRun& run, const ReviewRequest& review) override;
  Delivery Deliver(const OutboxRow& row, const std::function<Status(const nlohmann::json&)>& save_progress) override;
  Status Poll(const std::function<Status(const std::string& run_id, const std::string& session)>& end_session) override;

 private:
  struct SessionInfo {
    std::string participant;
    std::string study;
    std::string status;   // Prolific's words: ACTIVE, RETURNED, TIMED-OUT, AWAITING REVIEW, ...
    int64_t read_at = 0;  // micros
  };

  Result<prolific::Client*> ClientOrError();
  // The submission, from the cache when it is fresh enough, else read from Prolific.
  Result<SessionInfo> Session(const std::string& session_id, bool force_read);
  Delivery DeliverGrantSync(const OutboxRow& row, const nlohmann::json& payload);
  Delivery DeliverReview(const OutboxRow& row, const nlohmann::json& payload);
  Delivery DeliverBonus(const OutboxRow& row, const nlohmann::json& payload,
                        const std::function<Status(const nlohmann::json&)>& save_progress);

  ProviderContext ctx_;
  std::mutex client_mu_;
  std::unique_ptr<prolific::Client> client_;
  std::mutex sessions_mu_;
  std::map<std::string, SessionInfo> sessions_;  // by submission id (SESSION_ID)
};

// Requirements of a run that Prolific can enforce itself, as participant groups: allow lists
// (Exists) and block lists (DoesNotExist, including the engine's derived block qualifications),
// restricted to requirements that apply to Prolific workers.
struct ProlificLists {
  std::vector<std::string> allow;  // a participant must hold every one
  std::vector<std::string> block;  // a participant holding any one is blocked
};
ProlificLists ListsOf(const RunConfig& config);

}  // namespace crowdgate
