#include "server/http_util.hpp"

#include "core/secure_compare.hpp"

#include <cstdint>

namespace crowdgate {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Quotes user input in an error message without letting it run on forever.
std::string Quoted(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += "\"";
  return out;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view in, bool plus_as_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
      int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument("invalid percent-encoding in " + Quoted(in) +
                                       ": '%' must be followed by two hex digits");
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_as_space) {
      c = ' ';
    }
    if (c == '\0') return Status::InvalidArgument("NUL byte in " + Quoted(in) + " is not allowed");
    out.push_back(c);
  }
  return out;
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<std::vector<std::string>> SplitPath(std::string_view path) {
  if (path.empty() || path[0] != '/') return Status::InvalidArgument("path " + Quoted(path) + " must start with '/'");
  std::vector<std::string> segments;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view raw = path.substr(pos, end - pos);
    pos = end + 1;
    if (raw.empty()) continue;
    CG_ASSIGN_OR_RETURN(std::string segment, PercentDecode(raw));
    if (segment == "." || segment == "..") {
      return Status::InvalidArgument("path " + Quoted(path) + " contains a '" + segment + "' segment");
    }
    if (segment.find('/') != std::string::npos || segment.find('\\') != std::string::npos) {
      return Status::InvalidArgument("path " + Quoted(path) + " contains an encoded slash or backslash");
    }
    segments.push_back(std::move(segment));
  }
  return segments;
}

Result<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(pos, end - pos);
    pos = end + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view raw_key = pair.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    CG_ASSIGN_OR_RETURN(std::string key, PercentDecode(raw_key, /*plus_as_space=*/true));
    CG_ASSIGN_OR_RETURN(std::string value, PercentDecode(raw_value, /*plus_as_space=*/true));
    if (key.empty()) continue;
    out.emplace(std::move(key), std::move(value));  // first occurrence wins
  }
  return out;
}

Status ParseTarget(HttpRequest* req) {
  std::string_view target = req->target;
  if (target.empty() || target[0] != '/') {
    return Status::InvalidArgument("request target " + Quoted(target) + " must be an absolute path starting with '/'");
  }
  size_t q = target.find('?');
  std::string_view raw_path = target.substr(0, q);
  size_t hash = raw_path.find('#');
  if (hash != std::string_view::npos) raw_path = raw_path.substr(0, hash);
  CG_ASSIGN_OR_RETURN(std::vector<std::string> segments, SplitPath(raw_path));
  std::string path;
  for (const std::string& s : segments) {
    path += '/';
    path += s;
  }
  if (path.empty()) path = "/";
  req->path = std::move(path);
  req->query.clear();
  if (q != std::string_view::npos) {
    std::string_view raw_query = target.substr(q + 1);
    size_t frag = raw_query.find('#');
    if (frag != std::string_view::npos) raw_query = raw_query.substr(0, frag);
    CG_ASSIGN_OR_RETURN(req->query, ParseQuery(raw_query));
  }
  return Status::Ok();
}

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  HttpResponse res;
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Error bodies echo input (a bad worker name, say): never let a browser sniff them as HTML.
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return res;
}

Result<nlohmann::json> ParseBody(const HttpRequest& req) {
  if (req.body.empty()) return Status::InvalidArgument("request body: expected a JSON object");
  auto j = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("request body is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("request body: expected a JSON object");
  return j;
}

Status OnlyKeys(const nlohmann::json& j, std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || k == a;
    if (!known) return Status::InvalidArgument("unknown field \"" + k + "\" in request body");
  }
  return Status::Ok();
}

HttpResponse ErrorResponse(const Status& status) {
  if (status.ok()) return ErrorResponse(Status::Internal("ErrorResponse called with an OK status"));
  nlohmann::json body = {{"error", {{"code", std::string(CodeName(status.code()))}, {"message", status.message()}}}};
  return JsonResponse(HttpStatusFor(status.code()), body);
}

std::string HtmlEscape(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 8);
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) { return ConstantTimeEqual(a, b); }

std::optional<std::string> BearerToken(const HttpRequest& req) {
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return std::nullopt;
  std::string_view v = it->second;
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!v.empty() && is_space(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_space(v.back())) v.remove_suffix(1);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || AsciiLower(v.substr(0, kScheme.size())) != kScheme ||
      !is_space(v[kScheme.size()])) {
    return std::nullopt;
  }
  v.remove_prefix(kScheme.size());
  while (!v.empty() && is_space(v.front())) v.remove_prefix(1);
  if (v.empty()) return std::nullopt;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) return std::nullopt;  // spaces, controls and non-ASCII are not token characters
  }
  return std::string(v);
}

std::string AsciiLower(std::string_view in) {
  std::string out(in);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace crowdgate
