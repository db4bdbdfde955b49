// HTTP values and pure helpers shared by the server, the router, the client and the API handlers.
//
// Contract: no I/O, no Boost here (this header is cheap to include). Every function is pure and
// thread-safe. Decoding helpers refuse rather than repair: an invalid percent sequence, a NUL byte,
// a "." or ".." path segment or an encoded slash is an InvalidArgument (HTTP 400), never silently
// normalised, so no handler ever sees a path that means something else than it says.
// ErrorResponse() is the only way errors reach the wire: {"error": {"code": ..., "message": ...}} with
// the status from the one mapping table (HttpStatusFor / CodeName in crowdgate/status.hpp).
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"

namespace crowdgate {

// One parsed request, as handlers see it.
struct HttpRequest {
  std::string method;                             // "GET", "POST", ... as sent (upper case by convention)
  std::string target;                             // raw request target: "/runs/r1?worker=alice"
  std::string path;                               // percent-decoded path without the query: "/runs/r1"
  std::map<std::string, std::string> query;       // decoded query parameters ('+' is a space); first wins
  std::map<std::string, std::string> headers;     // lower-case names; repeated headers joined with ", "
  std::string body;
  std::string remote_ip;                          // peer address, e.g. "127.0.0.1"
  std::map<std::string, std::string> path_params;  // {name} captures of the matched route, decoded
};

// One response, as handlers produce it. The server adds Content-Length, Server and (for JSON)
// Cache-Control: no-store.
struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. {"Allow", "GET, POST"}
};

// Decodes %XX sequences (and '+' as a space when plus_as_space, for query strings). Refuses a '%' not
// followed by two hex digits and any decoded NUL byte.
Result<std::string> PercentDecode(std::string_view in, bool plus_as_space = false);

// Encodes everything except unreserved characters (A-Z a-z 0-9 - . _ ~) as %XX. For building targets.
std::string PercentEncode(std::string_view in);

// Splits an absolute path ("/a/b%20c/") into decoded segments {"a", "b c"}. Empty segments are
// skipped. Refuses a path not starting with '/', "." and ".." segments (also when encoded, "%2e%2e"),
// encoded slashes or backslashes ("%2F", "%5C") and NUL bytes.
Result<std::vector<std::string>> SplitPath(std::string_view path);

// Parses "a=1&b=x%20y&flag" into {a: "1", b: "x y", flag: ""}. The first occurrence of a key wins.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

// Fills req->path (decoded, "/" + segments joined by '/') and req->query from req->target.
// Refuses a target that is not in origin form ("/..."), and everything SplitPath/ParseQuery refuse.
Status ParseTarget(HttpRequest* req);

// A JSON response. Invalid UTF-8 in strings is replaced (U+FFFD) rather than throwing.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// status HttpStatusFor(code), body {"error": {"code": CodeName(code), "message": message}}.
// An OK status (a caller bug) becomes a 500 "internal".
HttpResponse ErrorResponse(const Status& status);

// A request body that must be one JSON object: InvalidArgument when it is empty, not JSON, or
// another JSON value.
Result<nlohmann::json> ParseBody(const HttpRequest& req);
// InvalidArgument naming the first key of `j` that is not in `allowed`.
Status OnlyKeys(const nlohmann::json& j, std::initializer_list<const char*> allowed);

// Escapes & < > " ' for HTML text and attribute values.
std::string HtmlEscape(std::string_view in);

// Compares in time depending only on the lengths (tokens have a fixed length, so that leaks nothing).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// The token of "Authorization: Bearer <token>" (scheme case-insensitive, surrounding spaces ignored);
// nullopt when the header is missing, another scheme, empty, or the token contains whitespace.
std::optional<std::string> BearerToken(const HttpRequest& req);

// ASCII lower-casing, for header names.
std::string AsciiLower(std::string_view in);

}  // namespace crowdgate
