#include "server/http_util.hpp"

#include <gtest/gtest.h>

#include "server/http_client.hpp"

namespace crowdgate {
namespace {

TEST(HtmlEscapeTest, EscapesScriptPayload) {
  EXPECT_EQ(HtmlEscape("<script>alert('x') && \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp;&amp; &quot;y&quot;&lt;/script&gt;");
  EXPECT_EQ(HtmlEscape("plain text"), "plain text");
  EXPECT_EQ(HtmlEscape(""), "");
}

TEST(PercentDecodeTest, DecodesValidSequences) {
  EXPECT_EQ(*PercentDecode("a%20b%2Fc%e2%9c%93"), "a b/c\xe2\x9c\x93");
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", /*plus_as_space=*/true), "a b");
}

TEST(PercentDecodeTest, RefusesInvalidSequencesAndNul) {
  for (const char* bad : {"%", "%2", "%zz", "abc%4", "%g0", "x%00y", "%00"}) {
    auto r = PercentDecode(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
  EXPECT_FALSE(PercentDecode(std::string_view("a\0b", 3)).ok());
}

TEST(PercentEncodeTest, RoundTrips) {
  std::string s = "alice bob/?&=\xe2\x9c\x93~._-";
  std::string enc = PercentEncode(s);
  EXPECT_EQ(enc.find_first_of(" /?&="), std::string::npos);
  EXPECT_EQ(*PercentDecode(enc), s);
}

TEST(SplitPathTest, SplitsAndDecodes) {
  auto r = SplitPath("/api/v1//runs/run%201/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<std::string>{"api", "v1", "runs", "run 1"}));
  EXPECT_TRUE(SplitPath("/")->empty());
}

TEST(SplitPathTest, RefusesTricks) {
  for (const char* bad : {"/../etc/passwd", "/a/..", "/a/./b", "/%2e%2e/x", "/%2E%2e", "/a%2Fb", "/a%5cb", "/a%00",
                          "relative", "", "/%zz"}) {
    EXPECT_FALSE(SplitPath(bad).ok()) << bad;
  }
  EXPECT_TRUE(SplitPath("/a..b/.hidden/...x").ok());
}

TEST(ParseQueryTest, ParsesPairs) {
  auto q = ParseQuery("worker=alice+smith&x=%26%3D&flag&worker=bob&&=skip");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->at("worker"), "alice smith");  // the first occurrence wins
  EXPECT_EQ(q->at("x"), "&=");
  EXPECT_EQ(q->at("flag"), "");
  EXPECT_EQ(q->size(), 3u);
  EXPECT_FALSE(ParseQuery("a=%ZZ").ok());
  EXPECT_FALSE(ParseQuery("a=%00").ok());
}

TEST(ParseTargetTest, FillsPathAndQuery) {
  HttpRequest req;
  req.target = "/runs/r%5F1?worker=alice#frag";
  ASSERT_TRUE(ParseTarget(&req).ok());
  EXPECT_EQ(req.path, "/runs/r_1");
  EXPECT_EQ(req.query.at("worker"), "alice");
  req.target = "http://evil/x";
  EXPECT_FALSE(ParseTarget(&req).ok());
  req.target = "/";
  ASSERT_TRUE(ParseTarget(&req).ok());
  EXPECT_EQ(req.path, "/");
}

TEST(ConstantTimeEqualsTest, Compares) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("0123456789abcdef", "0123456789abcdef"));
  EXPECT_FALSE(ConstantTimeEquals("0123456789abcdef", "0123456789abcdeF"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST(BearerTokenTest, Parses) {
  HttpRequest req;
  EXPECT_FALSE(BearerToken(req).has_value());
  req.headers["authorization"] = "Bearer abc123";
  EXPECT_EQ(BearerToken(req), "abc123");
  req.headers["authorization"] = "  bearer   abc123  ";
  EXPECT_EQ(BearerToken(req), "abc123");
  req.headers["authorization"] = "BEARER\tx.y-z";
  EXPECT_EQ(BearerToken(req), "x.y-z");
  for (const char* bad : {"Bearer", "Bearer ", "Bearer    ", "Basic abc", "Bearerabc", "Bearer a b", "Token abc", ""}) {
    req.headers["authorization"] = bad;
    EXPECT_FALSE(BearerToken(req).has_value()) << bad;
  }
}

TEST(ResponsesTest, ErrorResponseUsesTheMappingTable) {
  HttpResponse r = ErrorResponse(Status::Gone("agent a1 expired"));
  EXPECT_EQ(r.status, 410);
  EXPECT_EQ(r.content_type, "application/json");
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "gone");
  EXPECT_EQ(body["error"]["message"], "agent a1 expired");
  EXPECT_EQ(ErrorResponse(Status::RateLimited("x")).status, 429);
  EXPECT_EQ(ErrorResponse(Status()).status, 500);
}

TEST(ResponsesTest, JsonResponseToleratesInvalidUtf8) {
  HttpResponse r = JsonResponse(200, {{"s", "bad \xff byte"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(nlohmann::json::accept(r.body));
}

TEST(ParseHttpUrlTest, Parses) {
  auto u = ParseHttpUrl("http://127.0.0.1:8080/runs/run_x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/runs/run_x");
  u = ParseHttpUrl("HTTP://localhost");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "localhost");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");
  u = ParseHttpUrl("http://[::1]:9000?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9000);
  EXPECT_EQ(u->path, "/?x=1");
}

TEST(ParseHttpUrlTest, Refuses) {
  auto https = ParseHttpUrl("https://example.com/runs/x");
  ASSERT_FALSE(https.ok());
  EXPECT_TRUE(https.status().IsInvalidArgument());
  EXPECT_EQ(https.status().message(), "https is not supported by the simulator; use http on loopback");
  for (const char* bad : {"127.0.0.1:8080/x", "ftp://h/x", "http://", "http://:80/x", "http://h:0/", "http://h:65536/",
                          "http://h:abc/", "http://h:/", "http://u@h/", "http://[::1/"}) {
    auto r = ParseHttpUrl(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
}

}  // namespace
}  // namespace crowdgate
