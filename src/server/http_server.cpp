#include "server/http_server.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace crowdgate {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using ErrorCode = boost::system::error_code;

// ---------------------------------------------------------------------------------------------------
// Router

struct Router::Route {
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  std::string method;
  std::string pattern;
  std::vector<Segment> segments;
  int literals = 0;
  AsyncHttpHandler handler;
};

Router::Router() = default;
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;
Router::Router(const Router&) = default;
Router& Router::operator=(const Router&) = default;

Router& Router::Add(std::string_view method, std::string_view pattern, HttpHandler handler) {
  if (!handler) throw std::invalid_argument("Router::Add: empty handler for " + std::string(pattern));
  return AddAsync(method, pattern, [h = std::move(handler)](const HttpRequest& req, HttpResponder respond) {
    respond(h(req));
  });
}

Router& Router::AddAsync(std::string_view method, std::string_view pattern, AsyncHttpHandler handler) {
  if (method.empty()) throw std::invalid_argument("Router::Add: empty method");
  if (!handler) throw std::invalid_argument("Router::Add: empty handler for " + std::string(pattern));
  if (pattern.empty() || pattern[0] != '/') {
    throw std::invalid_argument("Router::Add: pattern \"" + std::string(pattern) + "\" must start with '/'");
  }
  Route route;
  route.method = std::string(method);
  route.pattern = std::string(pattern);
  route.handler = std::move(handler);
  size_t pos = 1;
  while (pos <= pattern.size()) {
    size_t end = pattern.find('/', pos);
    if (end == std::string_view::npos) end = pattern.size();
    std::string_view seg = pattern.substr(pos, end - pos);
    pos = end + 1;
    if (seg.empty()) continue;
    Route::Segment s;
    if (seg.front() == '{' || seg.back() == '}') {
      if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}' ||
          seg.substr(1, seg.size() - 2).find_first_of("{}/") != std::string_view::npos) {
        throw std::invalid_argument("Router::Add: bad parameter segment \"" + std::string(seg) + "\" in " +
                                    std::string(pattern));
      }
      s.text = std::string(seg.substr(1, seg.size() - 2));
      s.is_param = true;
    } else {
      s.text = std::string(seg);
      ++route.literals;
    }
    route.segments.push_back(std::move(s));
  }
  for (const Route& r : routes_) {
    if (r.method != route.method || r.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < r.segments.size() && same; ++i) {
      same = r.segments[i].is_param == route.segments[i].is_param &&
             (r.segments[i].is_param || r.segments[i].text == route.segments[i].text);
    }
    if (same) {
      throw std::invalid_argument("Router::Add: " + route.method + " " + route.pattern + " duplicates " + r.pattern);
    }
  }
  routes_.push_back(std::move(route));
  return *this;
}

HttpResponse Router::Dispatch(HttpRequest* req) const {
  std::promise<HttpResponse> answer;
  std::future<HttpResponse> result = answer.get_future();
  DispatchAsync(req, [&answer](HttpResponse res) { answer.set_value(std::move(res)); });
  return result.get();
}

Router& Router::Observe(Observer observer) {
  observer_ = std::make_shared<const Observer>(std::move(observer));
  return *this;
}

void Router::DispatchAsync(HttpRequest* req, HttpResponder respond) const {
  if (observer_) {
    // Wrap the responder: the route is known once matched; "unmatched" until then.
    auto route = std::make_shared<std::string>("unmatched");
    const auto start = std::chrono::steady_clock::now();
    respond = [observer = observer_, route, start, inner = std::move(respond)](HttpResponse res) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      (*observer)(*route, res.status, secs);
      inner(std::move(res));
    };
    return DispatchMatched(req, std::move(respond), route.get());
  }
  return DispatchMatched(req, std::move(respond), nullptr);
}

void Router::DispatchMatched(HttpRequest* req, HttpResponder respond, std::string* matched) const {
  if (Status st = ParseTarget(req); !st.ok()) return respond(ErrorResponse(st));
  auto segments = SplitPath(req->path);  // req->path is already decoded and validated: cannot fail
  if (!segments.ok()) return respond(ErrorResponse(segments.status()));
  const std::vector<std::string>& segs = *segments;

  const Route* best = nullptr;
  std::vector<std::string> allowed;
  for (const Route& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    bool match = true;
    for (size_t i = 0; i < segs.size() && match; ++i) {
      match = r.segments[i].is_param || r.segments[i].text == segs[i];
    }
    if (!match) continue;
    if (r.method == req->method) {
      if (best == nullptr || r.literals > best->literals) best = &r;
    } else if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end()) {
      allowed.push_back(r.method);
    }
  }
  if (best == nullptr) {
    if (allowed.empty()) return respond(ErrorResponse(Status::NotFound("no such endpoint: " + req->path)));
    std::sort(allowed.begin(), allowed.end());
    std::string allow;
    for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    HttpResponse res = JsonResponse(
        405, {{"error",
               {{"code", "method_not_allowed"},
                {"message", "method " + req->method + " is not allowed on " + req->path + "; allowed: " + allow}}}});
    res.headers.emplace_back("Allow", allow);
    return respond(std::move(res));
  }
  if (matched != nullptr) *matched = best->method + " " + best->pattern;
  req->path_params.clear();
  for (size_t i = 0; i < segs.size(); ++i) {
    if (best->segments[i].is_param) req->path_params[best->segments[i].text] = segs[i];
  }
  best->handler(*req, std::move(respond));
}

// ---------------------------------------------------------------------------------------------------
// HttpServer

namespace {
class Session;

// Per-IP token bucket.
struct Bucket {
  double tokens = 0;
  std::chrono::steady_clock::time_point last;
};

std::string_view ToStd(beast::string_view s) { return std::string_view(s.data(), s.size()); }

bool HasNoLineBreak(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

std::string LowerFirst(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

bool IsQuietNetworkError(const ErrorCode& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
         ec == beast::error::timeout || ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted || ec == net::error::not_connected || ec == net::error::bad_descriptor;
}

}  // namespace

// Everything the server shares between its io threads and the owning thread. (A namespace-level class,
// so that Session can name it; HttpServer::Impl is just this.)
class HttpServerCore {
 public:
  HttpServerCore(HttpServerOptions opts, Router router) : opts_(std::move(opts)), router_(std::move(router)) {
    if (opts_.threads < 1) opts_.threads = 1;
    if (opts_.max_connections_per_ip < 1) opts_.max_connections_per_ip = 1;
    if (opts_.rate_limit_burst <= 0) opts_.rate_limit_burst = std::max(1.0, opts_.rate_limit_per_second);
  }
  ~HttpServerCore() { Stop(); }

  Status Start();
  void Stop();
  int port() const { return port_; }

  const HttpServerOptions& opts() const { return opts_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void Log(const std::string& line) const {
    if (opts_.log) {
      opts_.log(line);
    } else {
      std::fprintf(stderr, "crowdgate http: %s\n", line.c_str());
    }
  }

  // Runs the request through the rate limiter and the router; never throws. `respond` is called
  // exactly once (maybe later, from another thread).
  void Handle(HttpRequest* req, HttpResponder respond);

  // Session registry and per-IP connection counts. Register is called on the acceptor strand.
  void RegisterSession(uint64_t id, const std::weak_ptr<Session>& session);
  void UnregisterSession(uint64_t id, const std::string& ip);

 private:
  void DoAccept();
  void OnAccept(ErrorCode ec, tcp::socket socket);
  void StartSession(tcp::socket socket);  // on the acceptor strand

  static constexpr int kAcceptBatch = 64;
  bool AllowRequest(const std::string& ip);

  HttpServerOptions opts_;
  Router router_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
  int port_ = 0;
  uint64_t next_session_id_ = 1;  // acceptor strand only

  std::mutex sessions_mu_;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions_;
  std::unordered_map<std::string, int> connections_per_ip_;

  std::mutex rate_mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::time_point last_prune_;

  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  int running_threads_ = 0;

  // Declared last so they are destroyed first: destroying the io_context destroys queued handlers,
  // which may own Sessions, whose destructors touch the registry above.
  net::io_context ioc_;
  std::optional<net::strand<net::io_context::executor_type>> accept_strand_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<net::steady_timer> accept_retry_timer_;
  std::vector<std::thread> threads_;
};

namespace {

// One connection. All its handlers run on its own strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServerCore* server, uint64_t id, std::string ip)
      : executor_(socket.get_executor()), stream_(std::move(socket)), server_(server), id_(id), ip_(std::move(ip)) {}
  ~Session() { server_->UnregisterSession(id_, ip_); }

  // The connection's strand. Safe from any thread (it never changes).
  const beast::tcp_stream::executor_type& executor() const { return executor_; }

  void Run() {
    net::dispatch(executor_, [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Posted to the strand by HttpServer::Stop(): closes an idle connection now; a busy one closes after
  // its response.
  void OnServerStop() {
    stop_requested_ = true;
    if (state_ == State::kIdle || state_ == State::kDraining) CloseNow();
  }

 private:
  enum class State { kIdle, kBusy, kDraining, kClosed };

  const HttpServerOptions& opts() const { return server_->opts(); }

  void ReadHeader() {
    if (stop_requested_ || server_->stopping()) return CloseNow();
    state_ = State::kIdle;
    parser_.emplace();
    parser_->header_limit(opts().max_header_bytes);
    parser_->body_limit(opts().max_body_bytes);
    stream_.expires_after(first_request_ ? opts().request_timeout : opts().idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](ErrorCode ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(ErrorCode ec) {
    if (ec) return OnReadError(ec);
    state_ = State::kBusy;
    stream_.expires_after(opts().request_timeout);
    if (parser_->is_done()) return OnRequest();
    auto& req = parser_->get();
    auto expect = req[http::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      continue_.emplace(http::status::continue_, req.version());
      return http::async_write(stream_, *continue_, [self = shared_from_this()](ErrorCode ec, size_t) {
        if (ec) return self->CloseNow();
        self->ReadBody();
      });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](ErrorCode ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->OnRequest();
                     });
  }

  void OnReadError(const ErrorCode& ec) {
    if (ec == http::error::body_limit) {
      return SendAndClose(ErrorResponse(Status::TooLarge("request body is larger than the limit of " +
                                                         std::to_string(opts().max_body_bytes) + " bytes")),
                          /*drain=*/true);
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      HttpResponse res = ErrorResponse(Status::InvalidArgument("request headers are larger than the limit of " +
                                                               std::to_string(opts().max_header_bytes) + " bytes"));
      res.status = 431;
      return SendAndClose(std::move(res), /*drain=*/true);
    }
    if (IsQuietNetworkError(ec) || ec == http::error::partial_message || !parser_ || !parser_->got_some()) {
      return CloseNow();
    }
    // A malformed request: say so, then hang up (we cannot find the start of the next request).
    SendAndClose(ErrorResponse(Status::InvalidArgument("malformed HTTP request: " + ec.message())), /*drain=*/true);
  }

  void OnRequest() {
    auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg) {
      std::string name = AsciiLower(ToStd(field.name_string()));
      auto [it, inserted] = req.headers.emplace(std::move(name), std::string(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second.append(field.value().data(), field.value().size());
      }
    }
    req.body = std::move(msg.body());
    req.remote_ip = ip_;
    version_ = msg.version();
    const bool keep_alive = msg.keep_alive();
    // The answer may come from another thread (async handlers): hop back onto this connection's
    // strand to write it. The tracked executor keeps the io threads running until it arrives.
    auto tracked = net::prefer(executor_, net::execution::outstanding_work.tracked);
    server_->Handle(&req, [self = shared_from_this(), tracked, keep_alive](HttpResponse res) {
      net::dispatch(tracked, [self, res = std::move(res), keep_alive]() mutable {
        self->Write(std::move(res), keep_alive && !self->stop_requested_ && !self->server_->stopping(),
                    /*drain=*/false);
      });
    });
  }

  void SendAndClose(HttpResponse res, bool drain) {
    state_ = State::kBusy;
    if (parser_ && parser_->got_some()) version_ = parser_->get().version();
    stream_.expires_after(opts().request_timeout);
    Write(std::move(res), /*keep_alive=*/false, drain);
  }

  void Write(HttpResponse res, bool keep_alive, bool drain) {
    if (res.status < 100 || res.status > 999) {
      server_->Log("handler returned invalid HTTP status " + std::to_string(res.status));
      res = ErrorResponse(Status::Internal("internal server error"));
    }
    res_.emplace();
    res_->version(version_ == 10 ? 10 : 11);
    res_->result(static_cast<unsigned>(res.status));
    res_->set(http::field::server, "crowdgate");
    if (HasNoLineBreak(res.content_type)) res_->set(http::field::content_type, res.content_type);
    if (res.content_type.rfind("application/json", 0) == 0) res_->set(http::field::cache_control, "no-store");
    for (auto& [name, value] : res.headers) {
      if (name.empty() || !HasNoLineBreak(name) || !HasNoLineBreak(value)) {  // no header injection
        server_->Log("dropped response header with a line break or an empty name: " + name);
        continue;
      }
      res_->set(name, value);
    }
    res_->body() = std::move(res.body);
    res_->keep_alive(keep_alive);
    res_->prepare_payload();
    stream_.expires_after(opts().request_timeout);
    http::async_write(stream_, *res_, [self = shared_from_this(), keep_alive, drain](ErrorCode ec, size_t) {
      self->OnWrite(ec, keep_alive, drain);
    });
  }

  void OnWrite(ErrorCode ec, bool keep_alive, bool drain) {
    res_.reset();
    if (ec) return CloseNow();
    if (!keep_alive) {
      if (drain && !stop_requested_) return StartDrain();
      return CloseNow();
    }
    first_request_ = false;
    ReadHeader();
  }

  // After an early error response (413, 431, 400) the client may still be sending: shut down our side,
  // then read and discard for a while so the client can finish writing and read our answer instead of
  // getting a connection reset.
  void StartDrain() {
    state_ = State::kDraining;
    ErrorCode ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    drained_ = 0;
    drain_buffer_.resize(64 << 10);
    stream_.expires_after(std::min<std::chrono::milliseconds>(opts().request_timeout, std::chrono::seconds(5)));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_buffer_), [self = shared_from_this()](ErrorCode ec, size_t n) {
      self->drained_ += n;
      const uint64_t cap = std::max<uint64_t>(8u << 20, 4 * self->opts().max_body_bytes);
      if (ec || self->drained_ > cap || self->stop_requested_) return self->CloseNow();
      self->Drain();
    });
  }

  void CloseNow() {
    state_ = State::kClosed;
    ErrorCode ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  const beast::tcp_stream::executor_type executor_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::optional<http::response<http::empty_body>> continue_;
  std::string drain_buffer_;
  uint64_t drained_ = 0;
  HttpServerCore* server_;
  const uint64_t id_;
  const std::string ip_;
  State state_ = State::kIdle;
  unsigned version_ = 11;
  bool first_request_ = true;
  bool stop_requested_ = false;
};

}  // namespace

void HttpServerCore::Handle(HttpRequest* req, HttpResponder respond) {
  if (!AllowRequest(req->remote_ip)) {
    HttpResponse res = ErrorResponse(Status::RateLimited("too many requests from " + req->remote_ip + "; slow down"));
    res.headers.emplace_back("Retry-After", "1");
    return respond(std::move(res));
  }
  // The responder may be moved into the handler before it throws; answer through a shared copy
  // that knows whether it was used.
  auto state = std::make_shared<std::pair<HttpResponder, std::atomic<bool>>>(std::move(respond), false);
  auto once = [state](HttpResponse res) {
    if (!state->second.exchange(true)) state->first(std::move(res));
  };
  try {
    router_.DispatchAsync(req, once);
    return;
  } catch (const std::exception& e) {
    Log("handler for " + req->method + " " + req->path + " threw: " + e.what());
  } catch (...) {
    Log("handler for " + req->method + " " + req->path + " threw a non-standard exception");
  }
  once(ErrorResponse(Status::Internal("internal server error")));
}

bool HttpServerCore::AllowRequest(const std::string& ip) {
  if (opts_.rate_limit_per_second <= 0) return true;
  const auto now = std::chrono::steady_clock::now();
  const double rate = opts_.rate_limit_per_second;
  const double burst = opts_.rate_limit_burst;
  std::lock_guard<std::mutex> lock(rate_mu_);
  // Forget buckets that have refilled completely, now and then, so the map stays small.
  if (buckets_.size() > 4096 && now - last_prune_ > std::chrono::seconds(1)) {
    last_prune_ = now;
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double secs = std::chrono::duration<double>(now - it->second.last).count();
      it = it->second.tokens + secs * rate >= burst ? buckets_.erase(it) : std::next(it);
    }
  }
  auto [it, inserted] = buckets_.try_emplace(ip);
  Bucket& b = it->second;
  if (inserted) {
    b.tokens = burst;
  } else {
    double secs = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + secs * rate);
  }
  b.last = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void HttpServerCore::RegisterSession(uint64_t id, const std::weak_ptr<Session>& session) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  sessions_.emplace(id, session);
}

void HttpServerCore::UnregisterSession(uint64_t id, const std::string& ip) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  sessions_.erase(id);
  auto it = connections_per_ip_.find(ip);
  if (it != connections_per_ip_.end() && --it->second <= 0) connections_per_ip_.erase(it);
}

Status HttpServerCore::Start() {
  const std::string where = opts_.host + ":" + std::to_string(opts_.port);
  if (started_) return Status::Internal(where + ": HttpServer::Start called twice");
  if (opts_.port < 0 || opts_.port > 65535) return Status::InvalidArgument(where + ": port must be in 0..65535");
  started_ = true;

  ErrorCode ec;
  tcp::endpoint endpoint;
  net::ip::address address = net::ip::make_address(opts_.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(opts_.port));
  } else {
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(opts_.host, std::to_string(opts_.port), ec);
    if (ec || results.empty()) {
      return Status::Unavailable(where + ": cannot resolve host: " + LowerFirst(ec ? ec.message() : "no address"));
    }
    endpoint = results.begin()->endpoint();
  }

  accept_strand_.emplace(net::make_strand(ioc_));
  acceptor_.emplace(*accept_strand_);
  accept_retry_timer_.emplace(*accept_strand_);
  auto fail = [&](const char* what) {
    ErrorCode ignored;
    acceptor_->close(ignored);
    return Status::Unavailable(where + ": " + LowerFirst(ec.message()) + " (" + what + ")");
  };
  if (acceptor_->open(endpoint.protocol(), ec)) return fail("open");
  if (acceptor_->set_option(net::socket_base::reuse_address(true), ec)) return fail("setsockopt");
  if (acceptor_->bind(endpoint, ec)) {
    ErrorCode ignored;
    acceptor_->close(ignored);
    return Status::Unavailable(where + ": " + LowerFirst(ec.message()));
  }
  if (acceptor_->listen(net::socket_base::max_listen_connections, ec)) return fail("listen");
  if (acceptor_->non_blocking(true, ec)) return fail("non-blocking");
  port_ = acceptor_->local_endpoint(ec).port();

  DoAccept();
  running_threads_ = opts_.threads;
  threads_.reserve(opts_.threads);
  for (int i = 0; i < opts_.threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          break;
        } catch (const std::exception& e) {  // a handler escaped our catch-alls: log and keep serving
          Log(std::string("io thread caught: ") + e.what());
        } catch (...) {
          Log("io thread caught a non-standard exception");
        }
      }
      std::lock_guard<std::mutex> lock(exit_mu_);
      --running_threads_;
      exit_cv_.notify_all();
    });
  }
  return Status::Ok();
}

void HttpServerCore::DoAccept() {
  acceptor_->async_accept(net::make_strand(ioc_), [this](ErrorCode ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void HttpServerCore::OnAccept(ErrorCode ec, tcp::socket socket) {
  if (stopping() || !acceptor_->is_open()) return;
  if (ec) {
    if (ec == net::error::operation_aborted) return;
    // Typically EMFILE: back off a little instead of spinning.
    Log("accept failed: " + ec.message());
    accept_retry_timer_->expires_after(std::chrono::milliseconds(50));
    accept_retry_timer_->async_wait([this](ErrorCode wait_ec) {
      if (!wait_ec && !stopping()) DoAccept();
    });
    return;
  }
  StartSession(std::move(socket));
  // Drain the backlog while we have the acceptor: one accept per trip through the io queue would leave a
  // burst of new connections waiting behind every busy session's handlers.
  for (int i = 0; i < kAcceptBatch && !stopping(); ++i) {
    tcp::socket next(net::make_strand(ioc_));
    ErrorCode accept_ec;
    acceptor_->accept(next, accept_ec);  // the acceptor is non-blocking: would_block when the backlog is empty
    if (accept_ec) break;
    StartSession(std::move(next));
  }
  DoAccept();
}

void HttpServerCore::StartSession(tcp::socket socket) {
  ErrorCode ec;
  std::string ip = socket.remote_endpoint(ec).address().to_string();
  if (ec) return;  // already gone
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    int& count = connections_per_ip_[ip];
    if (count >= opts_.max_connections_per_ip) {
      if (count == 0) connections_per_ip_.erase(ip);
      socket.close(ec);
      return;
    }
    ++count;
  }
  socket.set_option(tcp::no_delay(true), ec);
  const uint64_t id = next_session_id_++;
  auto session = std::make_shared<Session>(std::move(socket), this, id, ip);
  RegisterSession(id, session);
  session->Run();
}

void HttpServerCore::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);
  if (acceptor_) {
    net::post(*accept_strand_, [this] {
      ErrorCode ignored;
      acceptor_->close(ignored);
      accept_retry_timer_->cancel();
    });
  }
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (auto& [id, weak] : sessions_) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) {
    // Hand our reference to the strand so the last release happens on an io thread, never here.
    auto executor = s->executor();
    net::post(executor, [s = std::move(s)] { s->OnServerStop(); });
  }
  {
    std::unique_lock<std::mutex> lock(exit_mu_);
    exit_cv_.wait_for(lock, opts_.shutdown_grace, [this] { return running_threads_ == 0; });
  }
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

class HttpServer::Impl : public HttpServerCore {
 public:
  using HttpServerCore::HttpServerCore;
};

HttpServer::HttpServer(HttpServerOptions opts, Router router)
    : impl_(std::make_unique<Impl>(std::move(opts), std::move(router))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Start() { return impl_->Start(); }
int HttpServer::port() const { return impl_->port(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace crowdgate
