#include <charconv>

#include "core/secure_compare.hpp"
#include "server/requester_api.hpp"

namespace crowdgate {

void AddRequesterRoutes(Router& router, const RequesterContext& ctx) {
  AddRequesterRunRoutes(router, ctx);
  AddRequesterUnitRoutes(router, ctx);
  AddRequesterWorkerRoutes(router, ctx);
  AddRequesterQualificationRoutes(router, ctx);
  AddRequesterOutboxRoutes(router, ctx);
  AddRequesterAggregateRoutes(router, ctx);
}

namespace requester {

Status Authorize(const RequesterContext& ctx, const HttpRequest& req) {
  if (std::optional<std::string> token = BearerToken(req)) {
    if (!ConstantTimeEqual(*token, ctx.token)) return Status::Unauthenticated("wrong requester token");
    return Status::Ok();
  }
  auto cookie = req.headers.find("cookie");
  if (ctx.sessions != nullptr && cookie != req.headers.end()) {
    const std::string id = CookieValue(cookie->second, "cg_session");
    if (auto s = ctx.sessions->Find(id, Env::Default()->NowMicros())) {
      if (req.method == "GET" || req.method == "HEAD") return Status::Ok();
      auto csrf = req.headers.find("x-csrf-token");
      if (csrf == req.headers.end() || !ConstantTimeEqual(csrf->second, s->csrf)) {
        return Status::PermissionDenied("a change from the dashboard needs its X-CSRF-Token header");
      }
      return Status::Ok();
    }
    if (!id.empty()) return Status::Unauthenticated("the dashboard session has ended; log in again");
  }
  return Status::Unauthenticated("requester endpoints need Authorization: Bearer REQUESTER_TOKEN");
}

HttpHandler Route(const RequesterContext& ctx, std::function<Result<HttpResponse>(const HttpRequest&)> f) {
  return [ctx, f = std::move(f)](const HttpRequest& req) -> HttpResponse {
    if (Status st = Authorize(ctx, req); !st.ok()) return ErrorResponse(st);
    Result<HttpResponse> r = f(req);
    if (!r.ok()) return ErrorResponse(r.status());
    return std::move(r).value();
  };
}

Result<std::string> StringField(const nlohmann::json& j, const char* key, bool required) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) return Status::InvalidArgument(std::string("missing field \"") + key + "\"");
    return std::string();
  }
  if (!j[key].is_string()) return Status::InvalidArgument(std::string("field \"") + key + "\": expected a string");
  return j[key].get<std::string>();
}

std::string QueryParam(const HttpRequest& req, const char* key) {
  auto it = req.query.find(key);
  return it == req.query.end() ? std::string() : it->second;
}

Result<int64_t> QueryInt(const HttpRequest& req, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const std::string text = QueryParam(req, name);
  if (text.empty()) return fallback;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    return Status::InvalidArgument(std::string("query parameter ") + name + ": expected an integer from " +
                                   std::to_string(lo) + " to " + std::to_string(hi) + ", got \"" + text + "\"");
  }
  return v;
}

Result<int64_t> PageLimit(const HttpRequest& req) { return QueryInt(req, "limit", 100, 1, 1000); }

HttpResponse Page(nlohmann::json items, const std::string& next_cursor) {
  return JsonResponse(200, {{"items", std::move(items)},
                            {"next_cursor", next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(next_cursor)}});
}

nlohmann::json Timestamp(std::optional<int64_t> micros) {
  return micros ? nlohmann::json(FormatTimestamp(*micros)) : nlohmann::json(nullptr);
}

nlohmann::json ExportRowJson(const ExportRow& r) {
  return {{"run_id", r.run_id},
          {"unit_id", r.unit_id ? nlohmann::json(*r.unit_id) : nlohmann::json(nullptr)},
          {"item", r.item},
          {"worker", r.worker},
          {"agent_id", r.agent_id},
          {"kind", r.kind},
          {"status", r.status},
          {"submitted_at", Timestamp(r.submitted_at)},
          {"duration_s", r.duration_s ? nlohmann::json(*r.duration_s) : nlohmann::json(nullptr)},
          {"check_result", r.check_result},
          {"data", r.data}};
}

nlohmann::json AuditJson(const AuditEntry& e) {
  auto opt = [](const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"seq", e.seq},
          {"at", FormatTimestamp(e.at)},
          {"kind", std::string(AuditKindName(e.kind))},
          {"worker", e.worker_id == 0 ? nlohmann::json(nullptr) : nlohmann::json(e.worker.ToString())},
          {"qualification", e.qualification},
          {"old_value", opt(e.old_value)},
          {"new_value", opt(e.new_value)},
          {"expires_at", Timestamp(e.new_expires_at)},
          {"actor", e.actor},
          {"reason", e.reason}};
}

nlohmann::json GrantJson(const Grant& g) {
  return {{"worker", g.worker.ToString()},
          {"qualification", g.qualification},
          {"value", g.value},
          {"granted_at", FormatTimestamp(g.granted_at)},
          {"updated_at", FormatTimestamp(g.updated_at)},
          {"expires_at", Timestamp(g.expires_at)},
          {"expired", g.ExpiredAt(Env::Default()->NowMicros())}};
}

Result<std::optional<int64_t>> ParseExpiry(const std::string& text, int64_t now_micros) {
  if (text.empty()) return std::optional<int64_t>();
  int64_t n = 0;
  const char* end = text.data() + text.size() - 1;
  auto [p, ec] = std::from_chars(text.data(), end, n);
  int64_t unit = 0;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default: break;
  }
  if (ec != std::errc() || p != end || unit == 0 || n <= 0 || n > 100000) {
    return Status::InvalidArgument("expires: expected a duration such as 90s, 45m, 12h, 30d or 2w, got \"" + text +
                                   "\"");
  }
  return std::optional<int64_t>(now_micros + n * unit * kMicrosPerSecond);
}

}  // namespace requester
}  // namespace crowdgate
