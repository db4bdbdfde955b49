#include "server/http_client.hpp"

#include <charconv>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "server/http_util.hpp"

namespace crowdgate {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using ErrorCode = boost::system::error_code;

namespace {
std::string_view ToStd(beast::string_view s) { return std::string_view(s.data(), s.size()); }
beast::string_view ToBeast(std::string_view s) { return beast::string_view(s.data(), s.size()); }
}  // namespace

std::string HttpClientResponse::Header(std::string_view name) const {
  auto it = headers.find(AsciiLower(name));
  return it == headers.end() ? std::string() : it->second;
}

struct HttpClient::Impl {
  Impl(std::string h, int p, std::chrono::milliseconds t) : host(std::move(h)), port(p), timeout(t) {}

  std::string Where() const { return host + ":" + std::to_string(port); }

  // Runs the io_context until the one pending operation (and its timer) completes. Each operation is
  // bounded by the stream's expiry, which closes the socket and completes it with beast::error::timeout.
  void RunPending() {
    ioc.restart();
    ioc.run();
  }

  Status Connect() {
    Close();
    ErrorCode ec;
    if (endpoints.empty()) {
      tcp::resolver resolver(ioc);
      auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec) return Status::Unavailable(Where() + ": cannot resolve host: " + ec.message());
      for (const auto& r : results) endpoints.push_back(r.endpoint());
      if (endpoints.empty()) return Status::Unavailable(Where() + ": cannot resolve host: no address");
    }
    stream.emplace(ioc);
    stream->expires_after(timeout);
    stream->async_connect(endpoints, [&ec](ErrorCode e, const tcp::endpoint&) { ec = e; });
    RunPending();
    if (ec) {
      Close();
      return Status::Unavailable(Where() + ": cannot connect: " + Describe(ec));
    }
    ErrorCode ignored;
    stream->socket().set_option(tcp::no_delay(true), ignored);
    ++connections_opened;
    return Status::Ok();
  }

  std::string Describe(const ErrorCode& ec) const {
    if (ec == beast::error::timeout) {
      return "timed out after " + std::to_string(timeout.count()) + " ms";
    }
    return ec.message();
  }

  void Close() {
    if (stream) {
      ErrorCode ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
      stream.reset();
    }
    buffer.clear();
  }

  static bool ServerClosedIdle(const ErrorCode& ec) {
    return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe || ec == net::error::connection_aborted;
  }

  std::string host;
  int port;
  std::chrono::milliseconds timeout;
  net::io_context ioc{1};
  std::vector<tcp::endpoint> endpoints;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  int connections_opened = 0;
};

HttpClient::HttpClient(std::string host, int port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(host), port, timeout)) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->Close();
}
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

void HttpClient::Close() { impl_->Close(); }
int HttpClient::connections_opened() const { return impl_->connections_opened; }

Result<HttpClientResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                               std::string_view body,
                                               const std::vector<std::pair<std::string, std::string>>& headers) {
  Impl& im = *impl_;
  if (method.empty()) return Status::InvalidArgument("HTTP method must not be empty");
  if (target.empty() || target[0] != '/') {
    return Status::InvalidArgument("request target \"" + std::string(target) + "\" must start with '/'");
  }

  http::request<http::string_body> req;
  http::verb verb = http::string_to_verb(ToBeast(method));
  if (verb == http::verb::unknown) {
    req.method_string(ToBeast(method));
  } else {
    req.method(verb);
  }
  req.target(ToBeast(target));
  req.version(11);
  req.set(http::field::host, im.Where());
  req.set(http::field::user_agent, "crowdgate-client");
  bool has_content_type = false;
  bool has_connection = false;
  for (const auto& [name, value] : headers) {
    if (beast::iequals(name, "content-type")) has_content_type = true;
    if (beast::iequals(name, "connection")) has_connection = true;
    req.set(name, value);
  }
  if (!body.empty() && !has_content_type) req.set(http::field::content_type, "application/json");
  req.body() = std::string(body);
  if (!has_connection) req.keep_alive(true);
  req.prepare_payload();

  for (int attempt = 0;; ++attempt) {
    const bool reused = im.stream.has_value();
    if (!reused) CG_RETURN_IF_ERROR(im.Connect());
    const bool may_retry = reused && attempt == 0;

    ErrorCode ec;
    im.stream->expires_after(im.timeout);
    http::async_write(*im.stream, req, [&ec](ErrorCode e, size_t) { ec = e; });
    im.RunPending();
    if (ec) {
      im.Close();
      if (may_retry && Impl::ServerClosedIdle(ec)) continue;
      return Status::Unavailable(im.Where() + ": sending " + std::string(method) + " " + std::string(target) +
                                 " failed: " + im.Describe(ec));
    }

    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    parser.header_limit(1u << 20);
    im.stream->expires_after(im.timeout);
    http::async_read(*im.stream, im.buffer, parser, [&ec](ErrorCode e, size_t) { ec = e; });
    im.RunPending();
    if (ec) {
      const bool got_some = parser.got_some();
      im.Close();
      if (may_retry && !got_some && Impl::ServerClosedIdle(ec)) continue;
      return Status::Unavailable(im.Where() + ": reading the response to " + std::string(method) + " " +
                                 std::string(target) + " failed: " + im.Describe(ec));
    }

    auto msg = parser.release();
    HttpClientResponse out;
    out.status = static_cast<int>(msg.result_int());
    for (const auto& field : msg) {
      auto [it, inserted] = out.headers.emplace(AsciiLower(ToStd(field.name_string())), std::string(field.value()));
      if (!inserted) {
        it->second += ", ";
        it->second.append(field.value().data(), field.value().size());
      }
    }
    out.body = std::move(msg.body());
    if (!msg.keep_alive()) im.Close();
    return out;
  }
}

Result<ParsedUrl> ParseHttpUrl(std::string_view url) {
  const std::string quoted = "\"" + std::string(url) + "\"";
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return Status::InvalidArgument("URL " + quoted + " must start with http://");
  }
  std::string scheme = AsciiLower(url.substr(0, scheme_end));
  if (scheme == "https") {
    return Status::InvalidArgument("https is not supported by the simulator; use http on loopback");
  }
  if (scheme != "http") return Status::InvalidArgument("URL " + quoted + ": scheme must be http");
  std::string_view rest = url.substr(scheme_end + 3);
  size_t path_start = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("URL " + quoted + ": user information is not supported");
  }

  ParsedUrl out;
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {  // [IPv6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("URL " + quoted + ": unterminated '['");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Status::InvalidArgument("URL " + quoted + ": unexpected text after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return Status::InvalidArgument("URL " + quoted + ": empty port");
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return Status::InvalidArgument("URL " + quoted + ": empty port");
    }
  }
  if (out.host.empty()) return Status::InvalidArgument("URL " + quoted + " has no host");
  if (!port_text.empty()) {
    int port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 1 || port > 65535) {
      return Status::InvalidArgument("URL " + quoted + ": port must be a number in 1..65535");
    }
    out.port = port;
  }
  size_t frag = path.find('#');
  if (frag != std::string_view::npos) path = path.substr(0, frag);
  if (path.empty()) {
    out.path = "/";
  } else if (path[0] == '?') {
    out.path = "/" + std::string(path);
  } else {
    out.path = std::string(path);
  }
  return out;
}

}  // namespace crowdgate
