// The requester API (/api/v1/requester/...): everything the dashboard shows and does, behind the
// requester token (Authorization: Bearer) or a dashboard session (cookie, plus the CSRF header on
// every change). Routes are split by concern: runs, units and review, workers, qualifications,
// provider outbox and links (requester_api_*.cpp).
//
// Lists take ?limit= (1..1000, default 100) and ?cursor= (the next_cursor of the page before) and
// answer {"items": [...], "next_cursor": "..." | null}. Errors leave through ErrorResponse.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "crowdgate/engine.hpp"
#include "engine/run_dispatcher.hpp"
#include "providers/provider_hub.hpp"
#include "server/dashboard_sessions.hpp"
#include "server/http_server.hpp"

namespace crowdgate {

struct RequesterContext {
  Engine* engine = nullptr;
  RunDispatcher* dispatcher = nullptr;
  ProviderHub* hub = nullptr;
  std::string token;                         // the requester token
  DashboardSessions* sessions = nullptr;     // dashboard logins; not owned
};

// Registers every requester route.
void AddRequesterRoutes(Router& router, const RequesterContext& ctx);
void AddRequesterRunRoutes(Router& router, const RequesterContext& ctx);
void AddRequesterUnitRoutes(Router& router, const RequesterContext& ctx);
void AddRequesterWorkerRoutes(Router& router, const RequesterContext& ctx);
void AddRequesterQualificationRoutes(Router& router, const RequesterContext& ctx);
void AddRequesterOutboxRoutes(Router& router, const RequesterContext& ctx);
void AddRequesterAggregateRoutes(Router& router, const RequesterContext& ctx);

namespace requester {

// OK when the request carries the requester token, or a dashboard session (and, for anything but
// GET, that session's CSRF token in X-CSRF-Token).
Status Authorize(const RequesterContext& ctx, const HttpRequest& req);

// A handler behind Authorize whose errors become ErrorResponse.
HttpHandler Route(const RequesterContext& ctx, std::function<Result<HttpResponse>(const HttpRequest&)> f);

Result<std::string> StringField(const nlohmann::json& j, const char* key, bool required);
std::string QueryParam(const HttpRequest& req, const char* key);
// An integer query parameter within [lo, hi]; `fallback` when absent.
Result<int64_t> QueryInt(const HttpRequest& req, const char* name, int64_t fallback, int64_t lo, int64_t hi);
// ?limit= (1..1000, default 100).
Result<int64_t> PageLimit(const HttpRequest& req);
// {"items": items, "next_cursor": next or null}
HttpResponse Page(nlohmann::json items, const std::string& next_cursor);
nlohmann::json Timestamp(std::optional<int64_t> micros);
nlohmann::json ExportRowJson(const ExportRow& r);
nlohmann::json AuditJson(const AuditEntry& e);
nlohmann::json GrantJson(const Grant& g);
// An expiry given as "30d", "12h", "45m", "90s" or an RFC 3339 timestamp; nullopt when empty.
Result<std::optional<int64_t>> ParseExpiry(const std::string& text, int64_t now_micros);

}  // namespace requester
}  // namespace crowdgate
