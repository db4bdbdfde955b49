#include "server/http_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "server/http_client.hpp"

namespace crowdgate {
namespace {

using std::chrono::milliseconds;

Router TestRouter() {
  Router r;
  r.Add("GET", "/hello", [](const HttpRequest& req) { return JsonResponse(200, {{"hello", "world"}}); });
  r.Add("POST", "/api/v1/agents/{agent_id}/submit", [](const HttpRequest& req) {
    nlohmann::json headers = req.headers;
    return JsonResponse(200, {{"agent_id", req.path_params.at("agent_id")},
                              {"query", req.query},
                              {"body", req.body},
                              {"path", req.path},
                              {"remote_ip", req.remote_ip},
                              {"token", BearerToken(req).value_or("")}});
  });
  r.Add("GET", "/api/v1/agents/{agent_id}", [](const HttpRequest& req) {
    return JsonResponse(200, {{"agent_id", req.path_params.at("agent_id")}});
  });
  r.Add("GET", "/api/v1/agents/stats", [](const HttpRequest& req) { return JsonResponse(200, {{"stats", true}}); });
  r.Add("DELETE", "/api/v1/agents/{agent_id}", [](const HttpRequest& req) { return JsonResponse(200, {}); });
  r.Add("GET", "/throw", [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
  r.Add("GET", "/throw-int", [](const HttpRequest&) -> HttpResponse { throw 42; });
  r.Add("GET", "/sleep/{ms}", [](const HttpRequest& req) {
    std::this_thread::sleep_for(milliseconds(std::stoi(req.path_params.at("ms"))));
    return JsonResponse(200, {{"slept", true}});
  });
  r.Add("GET", "/page", [](const HttpRequest&) {
    HttpResponse res;
    res.content_type = "text/html; charset=utf-8";
    res.body = "<p>" + HtmlEscape("<script>") + "</p>";
    return res;
  });
  return r;
}

// A started server plus the lines it logged.
struct TestServer {
  explicit TestServer(HttpServerOptions opts = {}, Router router = TestRouter()) {
    opts.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu);
      logs.push_back(line);
    };
    server = std::make_unique<HttpServer>(std::move(opts), std::move(router));
    Status st = server->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  ~TestServer() { server.reset(); }  // stop before `logs` goes away
  int port() const { return server->port(); }
  std::vector<std::string> Logs() {
    std::lock_guard<std::mutex> lock(mu);
    return logs;
  }

  std::mutex mu;
  std::vector<std::string> logs;
  std::unique_ptr<HttpServer> server;
};

nlohmann::json Json(const HttpClientResponse& r) { return nlohmann::json::parse(r.body); }

std::string ErrorCodeOf(const HttpClientResponse& r) { return Json(r)["error"]["code"].get<std::string>(); }

// A bare TCP connection, for what HttpClient would never send.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(std::string_view data) {
    ASSERT_EQ(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  }
  // Reads until `marker` has been seen, EOF or a timeout.
  std::string ReadUntil(std::string_view marker) {
    std::string out;
    char buf[4096];
    while (out.find(marker) == std::string::npos) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST(RouterTest, DispatchesWithoutAServer) {
  Router router = TestRouter();
  HttpRequest req;
  req.method = "GET";
  req.target = "/api/v1/agents/a%201";
  EXPECT_EQ(nlohmann::json::parse(router.Dispatch(&req).body)["agent_id"], "a 1");
  req.target = "/api/v1/agents/stats";  // the literal segment beats {agent_id}
  EXPECT_EQ(nlohmann::json::parse(router.Dispatch(&req).body)["stats"], true);
  EXPECT_THROW(router.Add("GET", "/api/v1/agents/{other}", [](const HttpRequest&) { return HttpResponse(); }),
               std::invalid_argument);
  EXPECT_THROW(router.Add("GET", "no-slash", [](const HttpRequest&) { return HttpResponse(); }),
               std::invalid_argument);
  EXPECT_THROW(router.Add("GET", "/a/{b", [](const HttpRequest&) { return HttpResponse(); }), std::invalid_argument);
}

TEST(HttpServerTest, StartsOnAFreePortAndAnswers) {
  TestServer ts;
  ASSERT_GT(ts.port(), 0);
  HttpClient client("127.0.0.1", ts.port());
  auto r = client.Get("/hello");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json(*r)["hello"], "world");
  EXPECT_EQ(r->Header("Server"), "crowdgate");
  EXPECT_EQ(r->Header("cache-control"), "no-store");
  EXPECT_EQ(r->Header("content-type"), "application/json");

  auto page = client.Get("/page");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->body, "<p>&lt;script&gt;</p>");
  EXPECT_EQ(page->Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page->Header("cache-control"), "");
}

TEST(HttpServerTest, BindErrorNamesTheAddress) {
  TestServer first;
  HttpServerOptions opts;
  opts.port = first.port();
  HttpServer second(opts, TestRouter());
  Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsUnavailable());
  EXPECT_EQ(st.message(), "127.0.0.1:" + std::to_string(first.port()) + ": address already in use");
}

TEST(HttpServerTest, DecodesParamsQueryHeadersAndBody) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  auto r = client.Post("/api/v1/agents/ag%2D7%20x/submit?worker=alice+b&x=%26", R"({"data": {"a": 1}})",
                       {{"Authorization", "Bearer tok123"}, {"X-Custom", "v"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = Json(*r);
  EXPECT_EQ(j["agent_id"], "ag-7 x");
  EXPECT_EQ(j["query"]["worker"], "alice b");
  EXPECT_EQ(j["query"]["x"], "&");
  EXPECT_EQ(j["body"], R"({"data": {"a": 1}})");
  EXPECT_EQ(j["path"], "/api/v1/agents/ag-7 x/submit");
  EXPECT_EQ(j["remote_ip"], "127.0.0.1");
  EXPECT_EQ(j["token"], "tok123");
}

TEST(HttpServerTest, NotFoundAndMethodNotAllowed) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  auto r = client.Get("/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(ErrorCodeOf(*r), "not_found");

  r = client.Get("/api/v1/agents/a1/submit");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "POST");
  EXPECT_EQ(ErrorCodeOf(*r), "method_not_allowed");

  r = client.Request("PUT", "/api/v1/agents/a1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "DELETE, GET");

  r = client.Request("BREW", "/hello");  // a method Beast does not know
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
}

TEST(HttpServerTest, PathTricksAreRefused) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  for (const char* target : {"/../hello", "/api/v1/agents/../../hello", "/%2e%2e/hello", "/api/v1/agents/%2E%2e",
                             "/hello/.", "/api/v1/agents/a%00b", "/api/v1/agents/a%2Fb", "/api/v1/agents/%zz",
                             "/hello?x=%00"}) {
    auto r = client.Get(target);
    ASSERT_TRUE(r.ok()) << target << ": " << r.status().ToString();
    EXPECT_EQ(r->status, 400) << target;
    EXPECT_EQ(ErrorCodeOf(*r), "invalid_argument") << target;
  }
  // The connection survived all of that.
  EXPECT_EQ(client.connections_opened(), 1);
  EXPECT_EQ(client.Get("/hello")->status, 200);
}

TEST(HttpServerTest, BodyTooLargeIs413) {
  HttpServerOptions opts;
  opts.max_body_bytes = 1000;
  TestServer ts(opts);
  HttpClient client("127.0.0.1", ts.port());
  auto ok = client.Post("/api/v1/agents/a/submit", std::string(1000, 'x'));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
  auto big = client.Post("/api/v1/agents/a/submit", std::string(1001, 'x'));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(ErrorCodeOf(*big), "too_large");
  // A body much bigger than the socket buffers still gets its 413 rather than a reset.
  auto huge = client.Post("/api/v1/agents/a/submit", std::string(3 << 20, 'x'));
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  EXPECT_EQ(huge->status, 413);
  EXPECT_EQ(client.Get("/hello")->status, 200);
}

TEST(HttpServerTest, DefaultBodyLimitIsOneMebibyte) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  EXPECT_EQ(client.Post("/api/v1/agents/a/submit", std::string(1 << 20, 'x'))->status, 200);
  EXPECT_EQ(client.Post("/api/v1/agents/a/submit", std::string((1 << 20) + 1, 'x'))->status, 413);
}

TEST(HttpServerTest, HugeHeadersAre431) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  auto r = client.Get("/hello", {{"X-Big", std::string(32 << 10, 'a')}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(client.Get("/hello")->status, 200);
}

TEST(HttpServerTest, HandlerExceptionIs500AndServerKeepsServing) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  auto r = client.Get("/throw");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(ErrorCodeOf(*r), "internal");
  EXPECT_EQ(Json(*r)["error"]["message"], "internal server error");  // no internals leak
  r = client.Get("/throw-int");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  r = client.Get("/hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  auto logs = ts.Logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_NE(logs[0].find("GET /throw threw: boom"), std::string::npos) << logs[0];
}

TEST(HttpServerTest, KeepAliveReusesOneConnection) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  for (int i = 0; i < 500; ++i) {
    auto r = client.Get("/api/v1/agents/a" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(Json(*r)["agent_id"], "a" + std::to_string(i));
  }
  EXPECT_EQ(client.connections_opened(), 1);
}

TEST(HttpServerTest, ConnectionCloseIsHonoured) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port());
  auto r = client.Get("/hello", {{"Connection", "close"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  ASSERT_TRUE(client.Get("/hello").ok());
  EXPECT_EQ(client.connections_opened(), 2);
}

TEST(HttpServerTest, ClientReconnectsAfterIdleTimeout) {
  HttpServerOptions opts;
  opts.idle_timeout = milliseconds(100);
  TestServer ts(opts);
  HttpClient client("127.0.0.1", ts.port());
  ASSERT_TRUE(client.Get("/hello").ok());
  std::this_thread::sleep_for(milliseconds(400));  // the server has closed the idle connection by now
  auto r = client.Get("/hello");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(client.connections_opened(), 2);
}

TEST(HttpServerTest, ManyConcurrentClients) {
  TestServer ts;
  constexpr int kClients = 200;
  constexpr int kRequests = 50;
  std::atomic<int> errors{0};
  std::atomic<int> oks{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      HttpClient client("127.0.0.1", ts.port());
      for (int i = 0; i < kRequests; ++i) {
        std::string id = std::to_string(c) + "-" + std::to_string(i);
        auto r = client.Post("/api/v1/agents/" + id + "/submit", R"({"i":1})");
        if (!r.ok() || r->status != 200 || Json(*r)["agent_id"] != id) {
          if (errors++ < 5) {
            ADD_FAILURE() << "client " << c << " request " << i << ": "
                          << (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString());
          }
        } else {
          ++oks;
        }
      }
      if (client.connections_opened() != 1) ++errors;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(oks.load(), kClients * kRequests);
}

TEST(HttpServerTest, RateLimitAnswers429) {
  HttpServerOptions opts;
  opts.rate_limit_per_second = 2;
  opts.rate_limit_burst = 5;
  TestServer ts(opts);
  HttpClient client("127.0.0.1", ts.port());
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = client.Get("/hello");
    ASSERT_TRUE(r.ok());
    if (r->status == 200) ++ok;
    if (r->status == 429) {
      ++limited;
      EXPECT_EQ(ErrorCodeOf(*r), "rate_limited");
      EXPECT_EQ(r->Header("retry-after"), "1");
    }
  }
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 7);  // the burst, plus what refills at 2/s while the loop runs
  EXPECT_EQ(ok + limited, 20);
  std::this_thread::sleep_for(milliseconds(600));
  EXPECT_EQ(client.Get("/hello")->status, 200);  // refilled
}

TEST(HttpServerTest, ConnectionsPerIpAreCapped) {
  HttpServerOptions opts;
  opts.max_connections_per_ip = 2;
  TestServer ts(opts);
  HttpClient a("127.0.0.1", ts.port());
  HttpClient b("127.0.0.1", ts.port());
  HttpClient c("127.0.0.1", ts.port(), milliseconds(2000));
  ASSERT_EQ(a.Get("/hello")->status, 200);
  ASSERT_EQ(b.Get("/hello")->status, 200);
  auto r = c.Get("/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  a.Close();
  // The slot frees once the server notices a's close.
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    auto again = c.Get("/hello");
    served = again.ok() && again->status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST(HttpServerTest, ClientTimeoutIsUnavailable) {
  TestServer ts;
  HttpClient client("127.0.0.1", ts.port(), milliseconds(100));
  auto r = client.Get("/sleep/600");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable());
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
}

TEST(HttpServerTest, ConnectFailureIsUnavailable) {
  int port;
  {
    TestServer ts;
    port = ts.port();
  }
  HttpClient client("127.0.0.1", port, milliseconds(1000));
  auto r = client.Get("/hello");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable());
  EXPECT_NE(r.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

TEST(HttpServerTest, MalformedRequestIs400) {
  TestServer ts;
  RawConnection raw(ts.port());
  ASSERT_TRUE(raw.connected());
  raw.Send("NOT HTTP AT ALL\r\n\r\n");
  std::string answer = raw.ReadUntil("}}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_NE(answer.find("invalid_argument"), std::string::npos) << answer;
}

TEST(HttpServerTest, RawDotDotTargetIs400) {
  TestServer ts;
  RawConnection raw(ts.port());
  ASSERT_TRUE(raw.connected());
  raw.Send("GET /api/v1/../../hello HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string answer = raw.ReadUntil("}}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
}

TEST(HttpServerTest, ExpectContinueIsAnswered) {
  TestServer ts;
  RawConnection raw(ts.port());
  ASSERT_TRUE(raw.connected());
  raw.Send("POST /api/v1/agents/a1/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  std::string cont = raw.ReadUntil("\r\n\r\n");
  EXPECT_EQ(cont.rfind("HTTP/1.1 100 Continue", 0), 0u) << cont;
  raw.Send("{}");
  std::string answer = raw.ReadUntil("}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
}

TEST(HttpServerTest, ThousandsOfIdleConnectionsDoNotBlockService) {
  HttpServerOptions opts;
  opts.max_connections_per_ip = 5000;
  TestServer ts(opts);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 2000; ++i) {
    idle.push_back(std::make_unique<RawConnection>(ts.port()));
    ASSERT_TRUE(idle.back()->connected());
  }
  idle.back()->Send("GET /he");  // and one with half a request
  HttpClient client("127.0.0.1", ts.port(), milliseconds(5000));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = client.Get("/hello");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  auto stop_start = std::chrono::steady_clock::now();
  ts.server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_start, std::chrono::seconds(3));
}

TEST(HttpServerTest, StopWithConnectedClientsIsPromptAndFinishesInFlight) {
  auto ts = std::make_unique<TestServer>();
  const int port = ts->port();
  std::vector<std::unique_ptr<HttpClient>> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(std::make_unique<HttpClient>("127.0.0.1", port));
    ASSERT_EQ(idle.back()->Get("/hello")->status, 200);
  }
  Result<HttpClientResponse> in_flight = Status::Internal("not run");
  std::thread slow([&] {
    HttpClient client("127.0.0.1", port);
    in_flight = client.Get("/sleep/300");
  });
  std::this_thread::sleep_for(milliseconds(100));  // the slow request is in its handler
  auto start = std::chrono::steady_clock::now();
  ts->server->Stop();
  auto took = std::chrono::steady_clock::now() - start;
  slow.join();
  EXPECT_LT(took, std::chrono::seconds(2));
  ASSERT_TRUE(in_flight.ok()) << in_flight.status().ToString();
  EXPECT_EQ(in_flight->status, 200);
  EXPECT_EQ(in_flight->Header("connection"), "close");
  auto after = idle[0]->Get("/hello");
  EXPECT_FALSE(after.ok());
  ts->server->Stop();  // idempotent
}

}  // namespace
}  // namespace crowdgate
