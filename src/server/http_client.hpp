// HttpClient: a small synchronous HTTP/1.1 keep-alive client (Boost.Beast behind a pimpl) for the load
// generator (`crowdgate simulate`) and end-to-end tests. Plain http only.
//
// Contract: one HttpClient is one connection used by one thread at a time (not thread-safe; use one per
// thread). Request() reuses the open connection; if the server had closed it while idle, the request is
// sent again once on a fresh connection, transparently. Any HTTP status is a successful Result (a 404 is
// a response, not an error); connection failures and timeouts (each connect, write and read is bounded by
// `timeout`, default 10 s) are Unavailable naming host:port. A Connection: close from the server closes
// the connection; the next Request() reconnects.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate {

struct HttpClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  // The header's value, or "" when absent. `name` is matched case-insensitively.
  std::string Header(std::string_view name) const;
};

class HttpClient {
 public:
  HttpClient(std::string host, int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request. `target` is the path and query ("/runs/r1?worker=alice"). A non-empty body gets
  // Content-Type: application/json unless `headers` sets one. Host is set automatically.
  Result<HttpClientResponse> Request(std::string_view method, std::string_view target, std::string_view body = {},
                                     const std::vector<std::pair<std::string, std::string>>& headers = {});
  Result<HttpClientResponse> Get(std::string_view target,
                                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Request("GET", target, {}, headers);
  }
  Result<HttpClientResponse> Post(std::string_view target, std::string_view body,
                                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    return Request("POST", target, body, headers);
  }

  // Closes the connection (the next Request() reconnects).
  void Close();
  // How many TCP connections this client has opened so far (keep-alive reuse shows as 1).
  int connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ParsedUrl {
  std::string host;  // "127.0.0.1", "localhost", "::1" (brackets removed)
  int port = 80;
  std::string path;  // path and query, "/" when absent: "/runs/run_x"
};

// Parses "http://host[:port][/path[?query]]". https is refused with InvalidArgument "https is not
// supported by the simulator; use http on loopback"; other schemes, a missing host or a bad port are
// InvalidArgument too.
Result<ParsedUrl> ParseHttpUrl(std::string_view url);

}  // namespace crowdgate
