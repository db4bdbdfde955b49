// Router and HttpServer: the generic HTTP/1.1 layer (Boost.Beast + Asio behind a pimpl; this header
// includes no Boost, so files that register routes compile fast).
//
// Contract:
//  - Router maps (method, "/path/{param}") to a handler. Build it completely before handing it to the
//    server; after that it is only read, so Dispatch() is safe from many threads at once. Add() throws
//    std::invalid_argument on a malformed pattern or a duplicate (method, pattern): a programming error.
//    Unknown path -> 404, known path with another method -> 405 with an Allow header, undecodable or
//    tricky target ("..", "%2e%2e", "%2F", "%00", bad %) -> 400; all as JSON errors (ErrorResponse).
//    When several patterns match, the one with the most literal segments wins.
//  - HttpServer serves one Router on asynchronous keep-alive sessions: idle connections cost memory,
//    not threads. Handlers run on the io threads (`threads` of them), concurrently, so they must be
//    thread-safe and short. A handler that throws gets a logged 500 JSON error; the server keeps
//    serving. Limits answer JSON errors: body too large 413, headers too large 431, rate limited 429
//    (with Retry-After); connections beyond max_connections_per_ip are closed at once.
//  - Start() binds and listens, then returns; Stop() (also run by the destructor) stops accepting,
//    closes idle connections, lets in-flight requests finish (at most shutdown_grace), and joins the
//    threads. Start/Stop/port() are for the owning thread; never call Stop() from a handler. A server
//    is started at most once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crowdgate/status.hpp"
#include "server/http_util.hpp"

namespace crowdgate {

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Delivers a handler's response; may be called from any thread, exactly once.
using HttpResponder = std::function<void(HttpResponse)>;
// A handler that answers later (e.g. after a group commit): it must arrange for `respond` to be
// called exactly once, from any thread. The request is only valid during the call: copy what
// you need. The io thread is free meanwhile.
using AsyncHttpHandler = std::function<void(const HttpRequest&, HttpResponder respond)>;

class Router {
 public:
  Router();
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;
  Router(const Router&);
  Router& operator=(const Router&);

  // method: "GET", "POST", ...; pattern: "/api/v1/agents/{agent_id}/submit" ({name} = one whole
  // segment, captured decoded into HttpRequest::path_params). Returns *this for chaining.
  Router& Add(std::string_view method, std::string_view pattern, HttpHandler handler);
  Router& AddAsync(std::string_view method, std::string_view pattern, AsyncHttpHandler handler);

  // Called once per answered request with the matched route ("GET /runs/{run_id}", or "unmatched"),
  // the status and the seconds from dispatch to answer (for /metrics). Must be thread-safe.
  using Observer = std::function<void(const std::string& route, int status, double seconds)>;
  Router& Observe(Observer observer);

  // Parses req->target (path, query), matches, fills req->path_params and calls the handler,
  // which answers through `respond` (at once for Add() handlers, later for AddAsync() ones).
  // Exceptions thrown by the handler itself propagate (the server turns them into 500s).
  void DispatchAsync(HttpRequest* req, HttpResponder respond) const;
  // The same, waiting for the answer (tests, fuzzing). Do not call it from a thread the async
  // handler needs in order to answer.
  HttpResponse Dispatch(HttpRequest* req) const;

 private:
  struct Route;
  void DispatchMatched(HttpRequest* req, HttpResponder respond, std::string* matched) const;
  std::vector<Route> routes_;
  std::shared_ptr<const Observer> observer_;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to bind; a name ("localhost") is resolved once
  int port = 0;                    // 0 = let the kernel pick a free port (see HttpServer::port())
  int threads = 2;                 // io threads; handlers run on them
  uint64_t max_body_bytes = 1 << 20;      // 1 MiB; larger bodies get 413
  uint32_t max_header_bytes = 16 << 10;   // 16 KiB for the request line and headers; more gets 431
  int max_connections_per_ip = 256;       // further connections from the same address are closed at once
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);   // to read a request / write a response
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);      // keep-alive wait for the next request
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(5);     // Stop() waits this long for in-flight
  double rate_limit_per_second = 0;  // per-IP token bucket refill rate; 0 = no rate limit
  double rate_limit_burst = 0;       // bucket size; 0 = max(1, rate_limit_per_second)
  // Where errors go (handler exceptions, accept failures). Called from io threads; must be thread-safe.
  // Default (empty): one line to stderr.
  std::function<void(const std::string&)> log;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions opts, Router router);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the io threads. Errors are Unavailable naming the address and the
  // reason: "127.0.0.1:8080: address already in use".
  Status Start();
  // The bound port (useful with port 0); 0 before a successful Start().
  int port() const;
  // Idempotent. Returns once every io thread has exited.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace crowdgate
