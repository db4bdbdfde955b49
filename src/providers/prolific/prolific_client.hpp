// prolific::Client: Prolific's REST API over libcurl, each call answered with a CallResult that says whether it
// is safe to send again.
//
// Classification (the outbox decides retries from it):
//   2xx                                          kOk
//   429, 5xx, 408                                kRetry (Retry-After parsed when given)
//   could not resolve / connect, TLS handshake   kRetry: nothing was sent, so no effect
//   any other failure once the request was sent  kUnknown: timeout or connection lost; it may have taken effect
//   other 4xx (and 3xx: redirects not followed)  kPermanent: Prolific refused; `message` carries its title/detail
//
// Contract: thread-safe (a pool of curl handles, one per concurrent call, keeps connections alive). Every call
// is bounded by ClientOptions::timeout_ms. The token goes only into the Authorization header: it is never part
// of a CallResult's message (any occurrence, e.g. echoed by a server, is replaced by "[redacted]").
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"
#include "providers/prolific/prolific_wire.hpp"

namespace crowdgate::prolific {

enum class CallOutcome {
  kOk,
  kRetry,      // 429, 5xx, connection failed before sending: safe to send again
  kPermanent,  // other 4xx: Prolific refused; message says why
  kUnknown,    // timeout or connection lost after the request was sent: it may have taken effect
};
std::string_view OutcomeName(CallOutcome outcome);  // "ok", "retry", "permanent", "unknown"

struct CallResult {
  CallOutcome outcome = CallOutcome::kUnknown;
  int http_status = 0;             // 0 when no answer came
  nlohmann::json body;             // parsed answer (null when empty or not JSON)
  std::string message;             // empty for kOk; otherwise what happened, for logs and `provider status`
  std::optional<int> retry_after_s;
  bool ok() const { return outcome == CallOutcome::kOk; }
};

struct ClientOptions {
  std::string base_url = "https://api.prolific.com";  // no trailing slash needed
  std::string token;                                  // PROLIFIC_API_TOKEN
  int timeout_ms = 10000;                             // whole call, connect included
};

// PROLIFIC_API_TOKEN (required: InvalidArgument naming the variable when missing or empty),
// CROWDGATE_PROLIFIC_URL (optional, default the real API; must be http:// or https://) and
// CROWDGATE_PROLIFIC_TIMEOUT_MS (optional, default 10000: the bound of every call).
Result<ClientOptions> ClientOptionsFromEnv();

// The outcome of an HTTP answer's status code (200 → kOk, 429 → kRetry, 400 → kPermanent, ...).
CallOutcome OutcomeForStatus(int http_status);
// Retry-After as seconds: delta-seconds ("3") or an HTTP date relative to `now_unix_s`; nullopt when absent or
// unreadable. Negative waits become 0.
std::optional<int> ParseRetryAfter(std::string_view value, int64_t now_unix_s);
// What Prolific said in an error body: its {"error": {title, detail}} shape, the bare inner object, or a
// {"detail": ...} object; detail may be a string or structured (then compact JSON). Empty when none.
std::string ErrorText(const nlohmann::json& body);

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  CallResult GetMe();
  CallResult ListWorkspaces();
  CallResult CreateStudy(const nlohmann::json& study);
  CallResult GetStudy(const std::string& id);
  CallResult TransitionStudy(const std::string& id, const std::string& action);  // PUBLISH | PAUSE | START | STOP
  CallResult ListSubmissions(const std::string& study_id, int page, int page_size);  // page from 1
  CallResult GetSubmission(const std::string& submission_id);
  // {"action":"APPROVE"} or a REJECT body (see BuildRejectBody).
  CallResult TransitionSubmission(const std::string& submission_id, const nlohmann::json& body);
  CallResult CreateParticipantGroup(const std::string& name, const std::string& workspace_id,
                                    const std::vector<std::string>& participant_ids);
  CallResult AddToGroup(const std::string& group_id, const std::vector<std::string>& participant_ids);
  CallResult RemoveFromGroup(const std::string& group_id, const std::vector<std::string>& participant_ids);
  // csv_bonuses as built by BuildBonusCsv. The answer's body["id"] is the bulk bonus id to pay.
  CallResult SetUpBonus(const std::string& study_id, const std::string& csv_bonuses);
  // NOT idempotent: each call pays again. Record the attempt before calling; after kUnknown, read the
  // submission's bonus_payments instead of calling again.
  CallResult PayBonus(const std::string& bulk_bonus_id);

  // Any request: `path` starts with "/" and includes the query; `body` null sends no body. For endpoints
  // without a method above and for tests.
  CallResult Request(std::string_view method, const std::string& path, const nlohmann::json& body = nullptr);

  const ClientOptions& options() const { return options_; }

 private:
  struct HandlePool;
  // `send_once`: the request goes out at most once, on a new connection. libcurl re-sends a request
  // whose pooled connection closed before any answer came (it takes the connection for a stale
  // keep-alive one); for a call that is not idempotent that second send would act twice.
  CallResult Send(std::string_view method, const std::string& path, const nlohmann::json& body, bool send_once);
  std::string Redact(std::string text) const;

  ClientOptions options_;
  std::unique_ptr<HandlePool> pool_;
};

}  // namespace crowdgate::prolific
