#include "providers/prolific/prolific_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <utility>

namespace crowdgate::prolific {

using nlohmann::json;

std::string_view OutcomeName(CallOutcome outcome) {
  switch (outcome) {
    case CallOutcome::kOk: return "ok";
    case CallOutcome::kRetry: return "retry";
    case CallOutcome::kPermanent: return "permanent";
    case CallOutcome::kUnknown: return "unknown";
  }
  return "unknown";
}

Result<ClientOptions> ClientOptionsFromEnv() {
  ClientOptions options;
  const char* token = std::getenv("PROLIFIC_API_TOKEN");
  if (token == nullptr || *token == '\0') {
    return Status::InvalidArgument(
        "PROLIFIC_API_TOKEN is not set: create an API token in Prolific (Settings > Go to API token page) and "
        "export PROLIFIC_API_TOKEN=<token>");
  }
  options.token = token;
  if (const char* url = std::getenv("CROWDGATE_PROLIFIC_URL"); url != nullptr && *url != '\0') {
    std::string base = url;
    if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0) {
      return Status::InvalidArgument("CROWDGATE_PROLIFIC_URL must start with http:// or https://, got '" + base +
                                     "'");
    }
    options.base_url = std::move(base);
  }
  if (const char* t = std::getenv("CROWDGATE_PROLIFIC_TIMEOUT_MS"); t != nullptr && *t != '\0') {
    char* end = nullptr;
    const long ms = std::strtol(t, &end, 10);
    if (end == t || *end != '\0' || ms < 100 || ms > 600000) {
      return Status::InvalidArgument("CROWDGATE_PROLIFIC_TIMEOUT_MS: expected milliseconds from 100 to 600000, got '" +
                                     std::string(t) + "'");
    }
    options.timeout_ms = static_cast<int>(ms);
  }
  return options;
}

CallOutcome OutcomeForStatus(int http_status) {
  if (http_status >= 200 && http_status < 300) return CallOutcome::kOk;
  // 408: the server gave up waiting for the request, so it was not acted on.
  if (http_status == 429 || http_status == 408 || (http_status >= 500 && http_status < 600)) {
    return CallOutcome::kRetry;
  }
  return CallOutcome::kPermanent;
}

std::optional<int> ParseRetryAfter(std::string_view value, int64_t now_unix_s) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (value.size() > 6) return 86400;  // absurdly long: cap at a day
    return std::min(std::stoi(std::string(value)), 86400);
  }
  const time_t when = curl_getdate(std::string(value).c_str(), nullptr);
  if (when == static_cast<time_t>(-1)) return std::nullopt;
  const int64_t wait = static_cast<int64_t>(when) - now_unix_s;
  return static_cast<int>(std::clamp<int64_t>(wait, 0, 86400));
}

std::string ErrorText(const json& body) {
  if (body.is_string()) return body.get<std::string>();
  if (!body.is_object()) return "";
  const json& e = body.contains("error") && body["error"].is_object() ? body["error"] : body;
  auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  std::string out;
  if (e.contains("title") && !e["title"].is_null()) out = text(e["title"]);
  if (e.contains("detail") && !e["detail"].is_null()) out += (out.empty() ? "" : ": ") + text(e["detail"]);
  if (e.contains("additional_information") && !e["additional_information"].is_null()) {
    out += " (" + text(e["additional_information"]) + ")";
  }
  return out;
}

// ---- the curl handle pool ----------------------------------------------------------------------------------

namespace {
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Keeps Retry-After (the only header the classification needs).
size_t KeepRetryAfter(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string lower(line.substr(0, kName.size()));
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == kName) *static_cast<std::string*>(user) = std::string(line.substr(kName.size()));
  }
  return size * n;
}
}  // namespace

// Idle handles keep their connections open, so a busy caller reuses connections instead of reconnecting.
struct Client::HandlePool {
  std::mutex mu;
  std::vector<CURL*> idle;

  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void Release(CURL* h) {
    std::lock_guard<std::mutex> l(mu);
    idle.push_back(h);
  }
  ~HandlePool() {
    for (CURL* h : idle) curl_easy_cleanup(h);
  }
};

Client::Client(ClientOptions options) : options_(std::move(options)), pool_(std::make_unique<HandlePool>()) {
  GlobalInit();
  while (!options_.base_url.empty() && options_.base_url.back() == '/') options_.base_url.pop_back();
  if (options_.timeout_ms <= 0) options_.timeout_ms = 10000;
}

Client::~Client() = default;

std::string Client::Redact(std::string text) const {
  const std::string& token = options_.token;
  if (token.empty()) return text;
  for (size_t pos = text.find(token); pos != std::string::npos; pos = text.find(token, pos)) {
    text.replace(pos, token.size(), "[redacted]");
  }
  return text;
}

CallResult Client::Request(std::string_view method, const std::string& path, const json& body) {
  return Send(method, path, body, false);
}

CallResult Client::Send(std::string_view method, const std::string& path, const json& body, bool send_once) {
  CallResult r;
  const std::string what = std::string(method) + " " + path.substr(0, path.find('?'));
  CURL* h = pool_->Acquire();
  if (h == nullptr) {
    r.outcome = CallOutcome::kRetry;
    r.message = what + ": could not create a curl handle";
    return r;
  }
  curl_easy_reset(h);  // keeps the handle's open connections
  const std::string url = options_.base_url + path;
  const bool has_body = !body.is_null();
  const std::string payload = has_body ? body.dump() : "";
  const std::string auth = "Authorization: Token " + options_.token;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, auth.c_str());
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, has_body ? "Content-Type: application/json" : "Content-Type:");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip for larger bodies
  std::string response, retry_after;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, KeepRetryAfter);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (send_once) {
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
  }
  if (method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    // POST semantics (a body, possibly empty) under the requested method: PATCH and DELETE carry JSON too.
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
    if (method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, std::string(method).c_str());
  }

  const CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  long request_size = 0;
  curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
  curl_off_t pretransfer_us = 0;
  curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);
  pool_->Release(h);

  if (rc != CURLE_OK) {
    const std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
    switch (rc) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT:
      case CURLE_SSL_CONNECT_ERROR:
        r.outcome = CallOutcome::kRetry;
        r.message = what + ": could not reach " + options_.base_url + ": " + detail;
        break;
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        r.outcome = CallOutcome::kPermanent;
        r.message = what + ": bad Prolific URL " + options_.base_url + ": " + detail;
        break;
      default:
        // Nothing sent (e.g. the connect phase timed out) is safe to repeat; anything later may have acted.
        if (request_size == 0 && pretransfer_us == 0) {
          r.outcome = CallOutcome::kRetry;
          r.message = what + ": could not reach " + options_.base_url + ": " + detail;
        } else {
          r.outcome = CallOutcome::kUnknown;
          r.message = what + ": no complete answer from Prolific (it may have taken effect): " + detail;
        }
    }
    r.http_status = static_cast<int>(status);
    r.message = Redact(std::move(r.message));
    return r;
  }

  r.http_status = static_cast<int>(status);
  if (!response.empty()) r.body = json::parse(response, nullptr, /*allow_exceptions=*/false);
  if (r.body.is_discarded()) r.body = nullptr;
  r.outcome = OutcomeForStatus(r.http_status);
  if (r.outcome == CallOutcome::kOk) return r;
  if (!retry_after.empty()) r.retry_after_s = ParseRetryAfter(retry_after, static_cast<int64_t>(std::time(nullptr)));
  std::string text = ErrorText(r.body);
  if (text.empty()) text = response.substr(0, 300);
  r.message = what + ": Prolific answered HTTP " + std::to_string(r.http_status) + (text.empty() ? "" : ": " + text);
  if (r.http_status >= 300 && r.http_status < 400) r.message += " (redirects are not followed)";
  r.message = Redact(std::move(r.message));
  return r;
}

// ---- the endpoints -------------------------------------------------------------------------------------------

namespace {
// An empty id would address another endpoint ("/studies//"): refuse before sending.
CallResult EmptyId(std::string_view what) {
  CallResult r;
  r.outcome = CallOutcome::kPermanent;
  r.message = std::string(what) + ": empty id";
  return r;
}
}  // namespace

CallResult Client::GetMe() { return Request("GET", "/api/v1/users/me/"); }

CallResult Client::ListWorkspaces() { return Request("GET", "/api/v1/workspaces/"); }

// Calls that act again when repeated (a second study, a refused second transition) go out once.
CallResult Client::CreateStudy(const json& study) { return Send("POST", "/api/v1/studies/", study, true); }

CallResult Client::GetStudy(const std::string& id) {
  if (id.empty()) return EmptyId("GetStudy");
  return Request("GET", "/api/v1/studies/" + PercentEncode(id) + "/");
}

CallResult Client::TransitionStudy(const std::string& id, const std::string& action) {
  if (id.empty()) return EmptyId("TransitionStudy");
  return Send("POST", "/api/v1/studies/" + PercentEncode(id) + "/transition/", json{{"action", action}}, true);
}

CallResult Client::ListSubmissions(const std::string& study_id, int page, int page_size) {
  if (study_id.empty()) return EmptyId("ListSubmissions");
  return Request("GET", "/api/v1/studies/" + PercentEncode(study_id) + "/submissions/?page=" +
                            std::to_string(page) + "&page_size=" + std::to_string(page_size));
}

CallResult Client::GetSubmission(const std::string& submission_id) {
  if (submission_id.empty()) return EmptyId("GetSubmission");
  return Request("GET", "/api/v1/submissions/" + PercentEncode(submission_id) + "/");
}

CallResult Client::TransitionSubmission(const std::string& submission_id, const json& body) {
  if (submission_id.empty()) return EmptyId("TransitionSubmission");
  return Send("POST", "/api/v1/submissions/" + PercentEncode(submission_id) + "/transition/", body, true);
}

CallResult Client::CreateParticipantGroup(const std::string& name, const std::string& workspace_id,
                                          const std::vector<std::string>& participant_ids) {
  json body = {{"name", name}, {"workspace_id", workspace_id}};
  if (!participant_ids.empty()) body["participant_ids"] = participant_ids;
  return Send("POST", "/api/v1/participant-groups/", body, true);
}

CallResult Client::AddToGroup(const std::string& group_id, const std::vector<std::string>& participant_ids) {
  if (group_id.empty()) return EmptyId("AddToGroup");
  return Request("POST", "/api/v1/participant-groups/" + PercentEncode(group_id) + "/participants/",
                 json{{"participant_ids", participant_ids}});
}

CallResult Client::RemoveFromGroup(const std::string& group_id, const std::vector<std::string>& participant_ids) {
  if (group_id.empty()) return EmptyId("RemoveFromGroup");
  // A DELETE with a JSON body, as Prolific documents it.
  return Request("DELETE", "/api/v1/participant-groups/" + PercentEncode(group_id) + "/participants/",
                 json{{"participant_ids", participant_ids}});
}

CallResult Client::SetUpBonus(const std::string& study_id, const std::string& csv_bonuses) {
  return Send("POST", "/api/v1/submissions/bonus-payments/",
              json{{"study_id", study_id}, {"csv_bonuses", csv_bonuses}}, true);
}

CallResult Client::PayBonus(const std::string& bulk_bonus_id) {
  if (bulk_bonus_id.empty()) return EmptyId("PayBonus");
  return Send("POST", "/api/v1/bulk-bonus-payments/" + PercentEncode(bulk_bonus_id) + "/pay/", nullptr,
              /*send_once=*/true);
}

}  // namespace crowdgate::prolific
