// Fuzzes the HTTP request handling that sits behind Boost.Beast: ParseTarget, the Router
// (with routes shaped like the task server's) and the decoding helpers.
// Input: "METHOD TARGET\n", then optional "Name: value" header lines, a blank line, the body.
// Invariants: Dispatch answers 200/400/404/405 (405 with an Allow header) and never lets
// a handler see a path segment with a '/' or a NUL, or a "." / ".." segment; decoded
// segments re-encode and split back to themselves; PercentEncode/PercentDecode round-trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "server/http_server.hpp"
#include "server/http_util.hpp"

namespace {

using namespace crowdgate;

HttpResponse Echo(const HttpRequest& req) {
  for (const auto& [name, value] : req.path_params) {
    FUZZ_CHECK(!value.empty(), "empty path parameter");
    FUZZ_CHECK(value.find('/') == std::string::npos, "a '/' inside a path parameter");
    FUZZ_CHECK(value.find('\0') == std::string::npos, "a NUL inside a path parameter");
    FUZZ_CHECK(value != "." && value != "..", "a dot segment reached a handler");
  }
  nlohmann::json j = {{"path", req.path}, {"params", req.path_params}, {"query", req.query}};
  if (auto token = BearerToken(req)) j["token"] = *token;
  return JsonResponse(200, j);
}

const Router& TheRouter() {
  static const Router* router = [] {
    auto* r = new Router();
    r->Add("GET", "/healthz", Echo);
    r->Add("GET", "/runs/{run_id}", Echo);
    r->Add("POST", "/api/v1/runs/{run_id}/work", Echo);
    r->Add("POST", "/api/v1/agents/{agent_id}/submit", Echo);
    r->Add("POST", "/api/v1/agents/{agent_id}/return", Echo);
    r->Add("GET", "/api/v1/agents/{agent_id}", Echo);
    r->Add("GET", "/api/v1/agents/stats", Echo);
    r->Add("DELETE", "/api/v1/agents/{agent_id}", Echo);
    r->Add("GET", "/api/v1/requester/runs", Echo);
    r->Add("POST", "/api/v1/requester/qualifications/{name}/grant", Echo);
    r->Add("POST", "/api/v1/requester/qualifications/{name}/revoke", Echo);
    return r;
  }();
  return *router;
}

std::string_view NextLine(std::string_view* rest) {
  size_t nl = rest->find('\n');
  std::string_view line = rest->substr(0, nl);
  *rest = nl == std::string_view::npos ? std::string_view() : rest->substr(nl + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void CheckHelpers(std::string_view s) {
  auto decoded = PercentDecode(s);
  auto plus = PercentDecode(s, /*plus_as_space=*/true);
  (void)plus;
  if (decoded.ok()) {
    FUZZ_CHECK(decoded->find('\0') == std::string::npos, "PercentDecode let a NUL through");
    auto back = PercentDecode(PercentEncode(*decoded));
    FUZZ_CHECK(back.ok() && *back == *decoded, "PercentEncode/PercentDecode do not round-trip");
  }
  auto segments = SplitPath(s);
  if (segments.ok()) {
    std::string rebuilt;
    for (const auto& seg : *segments) {
      FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..", "SplitPath let a bad segment through");
      FUZZ_CHECK(seg.find('/') == std::string::npos && seg.find('\\') == std::string::npos,
                 "SplitPath let a slash through");
      rebuilt += "/" + PercentEncode(seg);
    }
    if (rebuilt.empty()) rebuilt = "/";
    auto again = SplitPath(rebuilt);
    FUZZ_CHECK(again.ok() && *again == *segments, "SplitPath of re-encoded segments differs");
  }
  (void)ParseQuery(s);
  (void)HtmlEscape(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string_view first = NextLine(&rest);
  HttpRequest req;
  size_t sp = first.find(' ');
  req.method = std::string(first.substr(0, sp));
  req.target = sp == std::string_view::npos ? std::string() : std::string(first.substr(sp + 1));
  while (!rest.empty()) {
    std::string_view line = NextLine(&rest);
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string value(line.substr(colon + 1));
    req.headers[AsciiLower(line.substr(0, colon))] = value;
  }
  req.body = std::string(rest);
  req.remote_ip = "127.0.0.1";

  CheckHelpers(req.target);
  (void)BearerToken(req);

  HttpRequest parsed = req;
  Status st = ParseTarget(&parsed);
  if (st.ok()) {
    FUZZ_CHECK(!parsed.path.empty() && parsed.path[0] == '/', "ParseTarget gave a path not starting with '/'");
  }

  HttpRequest dispatched = req;
  HttpResponse resp = TheRouter().Dispatch(&dispatched);
  FUZZ_CHECK(resp.status == 200 || resp.status == 400 || resp.status == 404 || resp.status == 405,
             "unexpected status from Dispatch");
  if (resp.status == 200) FUZZ_CHECK(st.ok(), "a target ParseTarget refuses was dispatched");
  if (resp.status == 405) {
    bool allow = false;
    for (const auto& [name, value] : resp.headers) allow = allow || name == "Allow";
    FUZZ_CHECK(allow, "405 without an Allow header");
  }
  return 0;
}
