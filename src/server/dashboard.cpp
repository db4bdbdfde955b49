#include "server/dashboard.hpp"

#include <string_view>

#include "core/secure_compare.hpp"
#include "server/web_assets.hpp"

namespace crowdgate {

using namespace requester;

const char* const kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

namespace {

std::string ContentType(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

HttpResponse Asset(const WebAsset& a) {
  HttpResponse r;
  r.content_type = ContentType(a.path);
  r.body.assign(reinterpret_cast<const char*>(a.data), a.size);
  r.headers.emplace_back("Content-Security-Policy", kDashboardCsp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

const WebAsset* FindAsset(const std::string& path) {
  for (const WebAsset& a : WebAssets()) {
    if (path == a.path) return &a;
  }
  return nullptr;
}

HttpResponse Serve(const std::string& path) {
  const WebAsset* a = FindAsset(path);
  if (a == nullptr && path.starts_with("vendor/")) {
    // A build made without scripts/setup.sh has no uPlot: an empty file keeps the page working (the
    // plots say what is missing) instead of a failed load.
    static const unsigned char kEmpty[] = "/* uPlot not embedded: run scripts/setup.sh and rebuild */\n";
    static const WebAsset empty{"vendor/missing", kEmpty, sizeof(kEmpty) - 1};
    HttpResponse r = Asset(empty);
    r.content_type = ContentType(path);
    return r;
  }
  if (a == nullptr) return ErrorResponse(Status::NotFound("no such dashboard file: " + path));
  return Asset(*a);
}

std::string SessionCookie(const std::string& value, int64_t max_age_s) {
  return "cg_session=" + value + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
}

}  // namespace

void AddDashboardRoutes(Router& router, const RequesterContext& ctx) {
  // "/dashboard" and "/dashboard/" are one route (the router skips empty segments).
  router.Add("GET", "/dashboard/", [](const HttpRequest&) { return Serve("index.html"); });
  router.Add("GET", "/dashboard/{file}", [](const HttpRequest& req) { return Serve(req.path_params.at("file")); });
  router.Add("GET", "/dashboard/{dir}/{file}", [](const HttpRequest& req) {
    return Serve(req.path_params.at("dir") + "/" + req.path_params.at("file"));
  });

  DashboardSessions* sessions = ctx.sessions;
  const std::string token = ctx.token;
  // {"token": REQUESTER_TOKEN} -> the session cookie and {"csrf": ...}.
  router.Add("POST", "/dashboard/api/login", [sessions, token](const HttpRequest& req) -> HttpResponse {
    Result<nlohmann::json> body = ParseBody(req);
    if (!body.ok()) return ErrorResponse(body.status());
    Result<std::string> given = StringField(*body, "token", true);
    if (!given.ok()) return ErrorResponse(given.status());
    if (!ConstantTimeEqual(*given, token)) return ErrorResponse(Status::Unauthenticated("wrong requester token"));
    DashboardSessions::Session s = sessions->Create(Env::Default()->NowMicros());
    HttpResponse r = JsonResponse(200, {{"csrf", s.csrf}});
    r.headers.emplace_back("Set-Cookie", SessionCookie(s.id, DashboardSessions::kLifetimeMicros / kMicrosPerSecond));
    return r;
  });
  // The page asks on load whether it is logged in, and gets the CSRF token back.
  router.Add("GET", "/dashboard/api/session", [sessions](const HttpRequest& req) -> HttpResponse {
    auto cookie = req.headers.find("cookie");
    const std::string id = cookie == req.headers.end() ? "" : CookieValue(cookie->second, "cg_session");
    auto s = sessions->Find(id, Env::Default()->NowMicros());
    if (!s) return ErrorResponse(Status::Unauthenticated("not logged in"));
    return JsonResponse(200, {{"csrf", s->csrf}});
  });
  router.Add("POST", "/dashboard/api/logout", Route(ctx, [sessions](const HttpRequest& req) -> Result<HttpResponse> {
               auto cookie = req.headers.find("cookie");
               if (cookie != req.headers.end()) sessions->Remove(CookieValue(cookie->second, "cg_session"));
               HttpResponse r = JsonResponse(200, {{"logged_out", true}});
               r.headers.emplace_back("Set-Cookie", SessionCookie("", 0));
               return r;
             }));
}

}  // namespace crowdgate
