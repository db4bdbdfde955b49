// The requester API against a live `crowdgate serve`: every endpoint refuses a missing or wrong token,
// lists page with ?limit=&cursor= without gaps or repeats, filters work, bad input is a 400 JSON error,
// review changes what export shows, the dashboard login sets a HttpOnly SameSite=Strict cookie and a
// change through that session needs the CSRF header, and /metrics parses as Prometheus text.
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kToken = "requester-api-test-token-0123456789";

class RequesterApiE2eTest : public CrowdgateFixture {
 protected:
  void SetUp() override {
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    std::string units;
    for (int i = 0; i < 25; ++i) units += "{\"text\": \"t" + std::to_string(i) + "\"}\n";
    Write("units.jsonl", units);
    Write("config.yaml",
          "task:\n  task_name: api\n  task_title: Api\n  allowed_concurrent: 1\n"
          "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
          "  block_qualification: api-blocked\n"
          "qualifications: []\nprovider:\n  type: local\n  trust_worker_param: true\n");
    ASSERT_EQ(Run("qual create api-blocked").exit_code, 0);
    CommandResult r = Run("--json launch " + ShellQuote(dir_.File("config.yaml")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run_ = json::parse(r.out)["run_id"];
  }

  static Headers Auth(const std::string& token = kToken) {
    return {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
  }
  static json Body(const HttpClientResponse& r) { return json::parse(r.body, nullptr, false); }

  // A worker takes a unit and submits it.
  void Work(HttpClient& c, const std::string& worker, int units) {
    for (int i = 0; i < units; ++i) {
      auto w = c.Post("/api/v1/runs/" + run_ + "/work", json{{"worker", worker}}.dump(),
                      {{"Content-Type", "application/json"}});
      ASSERT_TRUE(w.ok());
      json j = Body(*w);
      ASSERT_EQ(j["outcome"], "unit") << w->body;
      auto s = c.Post("/api/v1/agents/" + j["agent_id"].get<std::string>() + "/submit",
                      json{{"data", {{"label", worker + std::to_string(i)}}}}.dump(),
                      {{"Authorization", "Bearer " + j["token"].get<std::string>()}, {"Content-Type", "application/json"}});
      ASSERT_TRUE(s.ok());
      ASSERT_EQ(s->status, 200) << s->body;
    }
  }

  std::string run_;
};

TEST_F(RequesterApiE2eTest, EveryEndpointNeedsTheRequesterToken) {
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  const std::vector<std::pair<std::string, std::string>> endpoints = {
      {"GET", "/api/v1/requester/runs"},
      {"GET", "/api/v1/requester/runs/" + run_},
      {"GET", "/api/v1/requester/runs/" + run_ + "/throughput"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/workers"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/timeline"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/aggregate"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/units"},
      {"POST", "/api/v1/requester/runs/" + run_ + "/review"},
      {"POST", "/api/v1/requester/runs/" + run_ + "/close"},
      {"POST", "/api/v1/requester/runs/" + run_ + "/links"},
      {"GET", "/api/v1/requester/agents/ag_00000000000000000000000000000000"},
      {"GET", "/api/v1/requester/agents/ag_00000000000000000000000000000000/preview"},
      {"GET", "/api/v1/requester/qualifications"},
      {"POST", "/api/v1/requester/qualifications"},
      {"GET", "/api/v1/requester/qualifications/api-blocked/holders"},
      {"POST", "/api/v1/requester/qualifications/api-blocked/grant"},
      {"POST", "/api/v1/requester/qualifications/api-blocked/revoke"},
      {"POST", "/api/v1/requester/qualifications/api-blocked/import"},
      {"GET", "/api/v1/requester/history"},
      {"GET", "/api/v1/requester/workers/alice"},
      {"POST", "/api/v1/requester/workers/alice/block"},
      {"GET", "/api/v1/requester/outbox"},
      {"GET", "/metrics"},
  };
  for (const auto& [method, target] : endpoints) {
    for (const std::string& token : {std::string(), std::string("wrong-token")}) {
      Headers h = {{"Content-Type", "application/json"}};
      if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
      auto r = c.Request(method, target, method == "POST" ? "{}" : "", h);
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->status, 401) << method << " " << target << " token '" << token << "': " << r->body;
      EXPECT_EQ(Body(*r)["error"]["code"], "unauthenticated") << target;
    }
  }
  // The run is still open: nothing changed.
  auto run = c.Get("/api/v1/requester/runs/" + run_, Auth());
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(Body(*run)["status"], "open");
}

TEST_F(RequesterApiE2eTest, ListsPageWithACursorAndFilter) {
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  Work(c, "alice", 7);
  Work(c, "bob", 5);

  // Units: pages of 4 cover the 12 submissions once each.
  std::set<int64_t> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto r = c.Get("/api/v1/requester/runs/" + run_ + "/units?limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor),
                   Auth());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    json j = Body(*r);
    for (const auto& it : j["items"]) EXPECT_TRUE(seen.insert(it["unit_id"].get<int64_t>()).second);
    cursor = j["next_cursor"].is_null() ? "" : j["next_cursor"].get<std::string>();
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  EXPECT_EQ(seen.size(), 12u);

  auto bob = c.Get("/api/v1/requester/runs/" + run_ + "/units?worker=bob&status=completed", Auth());
  ASSERT_TRUE(bob.ok());
  json bj = Body(*bob);
  ASSERT_EQ(bj["items"].size(), 5u);
  for (const auto& it : bj["items"]) EXPECT_EQ(it["worker"], "local:bob");
  auto nobody = c.Get("/api/v1/requester/runs/" + run_ + "/units?worker=nobody", Auth());
  ASSERT_TRUE(nobody.ok());
  EXPECT_EQ(Body(*nobody)["items"].size(), 0u);

  // Workers: one per page, then none.
  auto w1 = c.Get("/api/v1/requester/runs/" + run_ + "/workers?limit=1", Auth());
  ASSERT_TRUE(w1.ok());
  json j1 = Body(*w1);
  ASSERT_EQ(j1["items"].size(), 1u);
  EXPECT_EQ(j1["items"][0]["worker"], "local:alice");
  EXPECT_EQ(j1["items"][0]["units"], 7);
  auto w2 = c.Get("/api/v1/requester/runs/" + run_ + "/workers?limit=1&cursor=" + j1["next_cursor"].get<std::string>(),
                  Auth());
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ(Body(*w2)["items"][0]["worker"], "local:bob");
  EXPECT_EQ(Body(*w2)["items"][0]["units"], 5);

  auto tp = c.Get("/api/v1/requester/runs/" + run_ + "/throughput?bucket_s=3600", Auth());
  ASSERT_TRUE(tp.ok());
  int64_t total = 0;
  const json points = Body(*tp)["points"];
  for (const auto& p : points) total += p["submitted"].get<int64_t>();
  EXPECT_EQ(total, 12);

  // Runs and qualifications page too.
  auto runs = c.Get("/api/v1/requester/runs?limit=1", Auth());
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(Body(*runs)["items"][0]["run_id"], run_);
  EXPECT_EQ(Body(*runs)["items"][0]["units"]["completed"], 12);
  auto quals = c.Get("/api/v1/requester/qualifications?limit=1", Auth());
  ASSERT_TRUE(quals.ok());
  EXPECT_EQ(Body(*quals)["items"].size(), 1u);
}

TEST_F(RequesterApiE2eTest, BadInputIsA400AndChangesNothing) {
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  struct Case {
    std::string method, target, body;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"GET", "/api/v1/requester/runs?limit=0", "", 400, "invalid_argument"},
      {"GET", "/api/v1/requester/runs?limit=1001", "", 400, "invalid_argument"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/units?cursor=-1", "", 400, "invalid_argument"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/units?kind=bogus", "", 400, "invalid_argument"},
      {"GET", "/api/v1/requester/runs/" + run_ + "/throughput?bucket_s=0", "", 400, "invalid_argument"},
      {"GET", "/api/v1/requester/runs/run_0000000000000000", "", 404, "not_found"},
      {"GET", "/api/v1/requester/runs/run_0000000000000000/units", "", 404, "not_found"},
      {"GET", "/api/v1/requester/runs/run_0000000000000000/workers", "", 404, "not_found"},
      {"GET", "/api/v1/requester/agents/ag_nope", "", 404, "not_found"},
      {"POST", "/api/v1/requester/runs/" + run_ + "/review", "{\"action\": \"approve\"}", 400, "invalid_argument"},
      {"POST", "/api/v1/requester/runs/" + run_ + "/review", "{\"action\": \"bless\", \"all\": true}", 400,
       "invalid_argument"},
      {"POST", "/api/v1/requester/runs/" + run_ + "/review", "not json", 400, "invalid_argument"},
      {"POST", "/api/v1/requester/qualifications", "{\"name\": \"api-blocked\"}", 409, "conflict"},
      {"POST", "/api/v1/requester/qualifications", "{\"nom\": \"x\"}", 400, "invalid_argument"},
      {"POST", "/api/v1/requester/qualifications/api-blocked/grant", "{\"worker\": \"a\", \"expires\": \"soon\"}", 400,
       "invalid_argument"},
      {"POST", "/api/v1/requester/qualifications/nosuch/grant", "{\"worker\": \"a\"}", 404, "not_found"},
      {"POST", "/api/v1/requester/qualifications/api-blocked/import", "{\"csv\": \"a,x\\n\"}", 400, "invalid_argument"},
      {"POST", "/api/v1/requester/workers/alice/block", "{}", 400, "invalid_argument"},
      {"GET", "/api/v1/requester/outbox?state=lost", "", 400, "invalid_argument"},
  };
  for (const Case& k : cases) {
    auto r = c.Request(k.method, k.target, k.body, Auth());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, k.status) << k.method << " " << k.target << " " << k.body << ": " << r->body;
    EXPECT_EQ(Body(*r)["error"]["code"], k.code) << k.target << ": " << r->body;
  }
  auto holders = c.Get("/api/v1/requester/qualifications/api-blocked/holders", Auth());
  ASSERT_TRUE(holders.ok());
  EXPECT_EQ(Body(*holders)["items"].size(), 0u);
}

TEST_F(RequesterApiE2eTest, ReviewGrantBlockImportAndHistory) {
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  Work(c, "alice", 2);
  Work(c, "bob", 1);
  auto units = c.Get("/api/v1/requester/runs/" + run_ + "/units?worker=alice", Auth());
  ASSERT_TRUE(units.ok());
  const int64_t unit = Body(*units)["items"][0]["unit_id"];
  const std::string agent = Body(*units)["items"][0]["agent_id"];

  auto detail = c.Get("/api/v1/requester/agents/" + agent, Auth());
  ASSERT_TRUE(detail.ok());
  EXPECT_EQ(Body(*detail)["inputs"]["text"].get<std::string>().substr(0, 1), "t");
  auto preview = c.Get("/api/v1/requester/agents/" + agent + "/preview", Auth());
  ASSERT_TRUE(preview.ok());
  EXPECT_NE(preview->Header("content-security-policy").find("sandbox"), std::string::npos);
  EXPECT_NE(preview->body.find("<p>t"), std::string::npos) << preview->body;

  auto rej = c.Post("/api/v1/requester/runs/" + run_ + "/review",
                    json{{"action", "reject"}, {"units", {unit}}, {"reason", "wrong"}}.dump(), Auth());
  ASSERT_TRUE(rej.ok());
  EXPECT_EQ(Body(*rej)["reviewed"], 1) << rej->body;
  auto byw = c.Post("/api/v1/requester/runs/" + run_ + "/review", json{{"action", "approve"}, {"worker", "bob"}}.dump(),
                    Auth());
  ASSERT_TRUE(byw.ok());
  EXPECT_EQ(Body(*byw)["reviewed"], 1) << byw->body;
  CommandResult exported = Run("export " + run_);
  ASSERT_EQ(exported.exit_code, 0);
  std::map<std::string, std::string> status_of;
  std::istringstream lines(exported.out);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);
    if (j["unit_id"] == unit) status_of["alice"] = j["status"];
    if (j["worker"] == "local:bob") status_of["bob"] = j["status"];
  }
  EXPECT_EQ(status_of["alice"], "rejected");
  EXPECT_EQ(status_of["bob"], "approved");

  // Block from the API: the next work request is refused "blocked".
  auto blocked = c.Post("/api/v1/requester/workers/bob/block", json{{"run_id", run_}, {"reason", "spam"}}.dump(), Auth());
  ASSERT_TRUE(blocked.ok());
  ASSERT_EQ(blocked->status, 200) << blocked->body;
  auto refused = c.Post("/api/v1/runs/" + run_ + "/work", json{{"worker", "bob"}}.dump(), {{"Content-Type", "application/json"}});
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(Body(*refused)["reason"], "blocked") << refused->body;

  auto grant = c.Post("/api/v1/requester/qualifications/api-blocked/grant",
                      json{{"worker", "carol"}, {"expires", "2d"}, {"reason", "trial"}}.dump(), Auth());
  ASSERT_TRUE(grant.ok());
  EXPECT_FALSE(Body(*grant)["expires_at"].is_null()) << grant->body;
  auto imported = c.Post("/api/v1/requester/qualifications/api-blocked/import",
                         json{{"csv", "worker\ndave\nerin,2\n"}, {"reason", "list"}}.dump(), Auth());
  ASSERT_TRUE(imported.ok());
  EXPECT_EQ(Body(*imported)["rows"], 2) << imported->body;
  auto holders = c.Get("/api/v1/requester/qualifications/api-blocked/holders?limit=2", Auth());
  ASSERT_TRUE(holders.ok());
  json hj = Body(*holders);
  ASSERT_EQ(hj["items"].size(), 2u);
  auto rest = c.Get("/api/v1/requester/qualifications/api-blocked/holders?limit=2&cursor=" +
                        hj["next_cursor"].get<std::string>(),
                    Auth());
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Body(*rest)["items"].size(), 2u);  // bob, carol, dave, erin

  auto hist = c.Get("/api/v1/requester/history?qualification=api-blocked&limit=100", Auth());
  ASSERT_TRUE(hist.ok());
  EXPECT_EQ(Body(*hist)["items"].size(), 4u);
  EXPECT_EQ(Body(*hist)["items"][0]["worker"], "local:erin");  // newest first

  auto worker = c.Get("/api/v1/requester/workers/bob", Auth());
  ASSERT_TRUE(worker.ok());
  json wj = Body(*worker);
  EXPECT_EQ(wj["runs"][0]["run_id"], run_);
  EXPECT_EQ(wj["grants"][0]["qualification"], "api-blocked");
  auto timeline = c.Get("/api/v1/requester/runs/" + run_ + "/timeline", Auth());
  ASSERT_TRUE(timeline.ok());
  EXPECT_EQ(Body(*timeline)["items"].size(), 4u);
  auto workers = c.Get("/api/v1/requester/runs/" + run_ + "/workers", Auth());
  ASSERT_TRUE(workers.ok());
  EXPECT_EQ(Body(*workers)["items"][1]["state"], "blocked");
}

TEST_F(RequesterApiE2eTest, DashboardSessionCookieAndCsrf) {
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  auto page = c.Get("/dashboard/");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->Header("content-security-policy").find("script-src 'self'"), std::string::npos);
  auto js = c.Get("/dashboard/app.js");
  ASSERT_TRUE(js.ok());
  EXPECT_EQ(js->status, 200);
  EXPECT_NE(js->Header("content-type").find("javascript"), std::string::npos);

  auto wrong = c.Post("/dashboard/api/login", json{{"token", "nope"}}.dump(), {{"Content-Type", "application/json"}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(wrong->Header("set-cookie"), "");
  auto login = c.Post("/dashboard/api/login", json{{"token", kToken}}.dump(), {{"Content-Type", "application/json"}});
  ASSERT_TRUE(login.ok());
  ASSERT_EQ(login->status, 200);
  const std::string cookie = login->Header("set-cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  const std::string session = cookie.substr(0, cookie.find(';'));
  const std::string csrf = Body(*login)["csrf"];

  auto read = c.Get("/api/v1/requester/runs", {{"Cookie", session}});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->status, 200);
  const std::string close = "/api/v1/requester/runs/" + run_ + "/close";
  auto no_csrf = c.Post(close, "{}", {{"Cookie", session}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(no_csrf.ok());
  EXPECT_EQ(no_csrf->status, 403);
  auto bad_csrf = c.Post(close, "{}", {{"Cookie", session}, {"X-CSRF-Token", "x"}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(bad_csrf.ok());
  EXPECT_EQ(bad_csrf->status, 403);
  auto run = c.Get("/api/v1/requester/runs/" + run_, Auth());
  EXPECT_EQ(Body(*run)["status"], "open");
  auto ok = c.Post(close, "{}", {{"Cookie", session}, {"X-CSRF-Token", csrf}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200) << ok->body;

  auto out = c.Post("/dashboard/api/logout", "{}", {{"Cookie", session}, {"X-CSRF-Token", csrf}, {"Content-Type", "application/json"}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->status, 200);
  auto after = c.Get("/api/v1/requester/runs", {{"Cookie", session}});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, 401);
}

// Prometheus text format: every sample line is NAME{LABELS} VALUE with a declared TYPE.
TEST_F(RequesterApiE2eTest, MetricsParseAsPrometheusText) {
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  Work(c, "alice", 2);
  auto nope = c.Post("/api/v1/runs/" + run_ + "/work", "{}", {{"Content-Type", "application/json"}});
  ASSERT_TRUE(nope.ok());
  auto m = c.Get("/metrics", Auth());
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->Header("content-type").find("text/plain; version=0.0.4"), std::string::npos);
  const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$)");
  const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  std::set<std::string> typed;
  std::map<std::string, double> values;
  std::istringstream in(m->body);
  for (std::string line; std::getline(in, line);) {
    std::smatch sm;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      ASSERT_TRUE(std::regex_match(line, sm, type)) << line;
      EXPECT_TRUE(typed.insert(sm[1]).second) << "declared twice: " << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, sm, sample)) << "not a sample: " << line;
    std::string family = sm[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (family.size() > s.size() && family.ends_with(s) && typed.count(family.substr(0, family.size() - s.size()))) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    EXPECT_TRUE(typed.count(family)) << "no TYPE before " << line;
    values[line.substr(0, line.rfind(' '))] = std::stod(line.substr(line.rfind(' ') + 1));
  }
  EXPECT_EQ((values["crowdgate_work_outcomes_total{outcome=\"unit\",reason=\"\"}"]), 2);
  EXPECT_EQ((values["crowdgate_http_requests_total{route=\"POST /api/v1/runs/{run_id}/work\",status=\"400\"}"]), 1);
  EXPECT_EQ((values["crowdgate_http_requests_total{route=\"POST /api/v1/agents/{agent_id}/submit\",status=\"200\"}"]), 2);
  EXPECT_GE((values["crowdgate_commit_batches_total"]), 1);
  // The deciding thread's CPU time is part of the batch time (never more), and not nothing.
  ASSERT_EQ(values.count("crowdgate_commit_batch_cpu_seconds_total"), 1u);
  EXPECT_GT((values["crowdgate_commit_batch_cpu_seconds_total"]), 0);
  EXPECT_LE((values["crowdgate_commit_batch_cpu_seconds_total"]), values["crowdgate_commit_batch_seconds_total"] * 1.01 + 1e-3);
  // Load shedding: nothing refused at this load, nothing waiting once answered.
  ASSERT_EQ(values.count("crowdgate_requests_shed_total"), 1u);
  EXPECT_EQ((values["crowdgate_requests_shed_total"]), 0);
  ASSERT_EQ(values.count("crowdgate_commit_queue_jobs"), 1u);
  EXPECT_EQ((values["crowdgate_commit_queue_jobs"]), 0);
  EXPECT_EQ((values["crowdgate_outbox_rows{state=\"pending\"}"]), 0);
  EXPECT_EQ((values["crowdgate_http_request_duration_seconds_count{route=\"POST /api/v1/agents/{agent_id}/submit\"}"]), 2);

  // --metrics-public: no token needed.
  server.Stop();
  ServerProcess open(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken}, "open-stderr.txt",
                     {"--metrics-public"});
  HttpClient c2("127.0.0.1", open.port());
  auto pub = c2.Get("/metrics");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(pub->status, 200);
}

}  // namespace
}  // namespace crowdgate::testing

namespace crowdgate::testing {
namespace {

// Three workers label every item of a run of four items (three copies each): two say "yes", one
// always says "no". The aggregate gives every item "yes", pages through items and workers, and
// reports each worker's agreement with it; a second call after more work sees the new labels.
TEST_F(RequesterApiE2eTest, AggregateGivesOneLabelPerItemAndEachWorkersAgreement) {
  std::string units;
  for (int i = 0; i < 4; ++i) units += "{\"text\": \"a" + std::to_string(i) + "\"}\n";
  Write("agg-units.jsonl", units);
  Write("agg.yaml",
        "task:\n  task_name: agg\n  task_title: Agg\n"
        "blueprint:\n  type: static_html\n  task_source: task.html\n  data: agg-units.jsonl\n  units_per_item: 3\n"
        "provider:\n  type: local\n  trust_worker_param: true\n");
  CommandResult launched = Run("--json launch " + ShellQuote(dir_.File("agg.yaml")));
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  const std::string run = json::parse(launched.out)["run_id"];
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kToken});
  HttpClient c("127.0.0.1", server.port());
  const auto label = [&](const std::string& worker, const std::string& answer, int units) {
    for (int i = 0; i < units; ++i) {
      auto w = c.Post("/api/v1/runs/" + run + "/work", json{{"worker", worker}}.dump(), {{"Content-Type", "application/json"}});
      ASSERT_TRUE(w.ok());
      json j = Body(*w);
      ASSERT_EQ(j["outcome"], "unit") << w->body;
      auto s = c.Post("/api/v1/agents/" + j["agent_id"].get<std::string>() + "/submit",
                      json{{"data", {{"label", answer}}}}.dump(),
                      {{"Authorization", "Bearer " + j["token"].get<std::string>()}, {"Content-Type", "application/json"}});
      ASSERT_TRUE(s.ok());
      ASSERT_EQ(s->status, 200) << s->body;
    }
  };
  label("yes1", "yes", 4);
  label("no", "no", 4);
  const std::string base = "/api/v1/requester/runs/" + run + "/aggregate";
  auto first = c.Get(base + "?method=majority", Auth());
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(Body(*first)["judgments"], 8);  // the cached result moves with the run:
  label("yes2", "yes", 4);

  std::vector<json> items;
  std::string cursor;
  for (int pages = 0; pages < 5; ++pages) {
    auto r = c.Get(base + "?method=majority&limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor), Auth());
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << r->body;
    json j = Body(*r);
    EXPECT_EQ(j["method"], "majority");
    EXPECT_EQ(j["field"], "label");
    EXPECT_EQ(j["items_total"], 4);
    EXPECT_EQ(j["judgments"], 12);
    EXPECT_EQ(j["workers_total"], 3);
    for (const auto& it : j["items"]) items.push_back(it);
    if (j["next_cursor"].is_null()) break;
    cursor = j["next_cursor"].get<std::string>();
  }
  ASSERT_EQ(items.size(), 4u);
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i]["item"], static_cast<int64_t>(i));
    EXPECT_EQ(items[i]["label"], "yes");
    EXPECT_NEAR(items[i]["confidence"].get<double>(), 2.0 / 3, 1e-9);
    EXPECT_EQ(items[i]["labels"], 3);
  }

  auto ws = c.Get(base + "?view=workers", Auth());  // dawid-skene by default
  ASSERT_TRUE(ws.ok());
  ASSERT_EQ(ws->status, 200) << ws->body;
  json wj = Body(*ws);
  EXPECT_EQ(wj["method"], "dawid-skene");
  std::map<std::string, double> agreement;
  for (const auto& w : wj["items"]) {
    agreement[w["worker"]] = w["agreement"];
    EXPECT_EQ(w["labels"], 4);
    EXPECT_TRUE(w["accuracy"].is_number());
    EXPECT_TRUE(w["median_seconds_per_unit"].is_number() && w["median_seconds_per_unit"].get<double>() >= 0) << w.dump();
  }
  EXPECT_EQ(agreement, (std::map<std::string, double>{{"local:yes1", 1.0}, {"local:yes2", 1.0}, {"local:no", 0.0}}));

  for (const std::string bad : {"?method=average", "?view=everything", "?limit=0", "?field=colour"}) {
    auto r = c.Get(base + bad, Auth());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << bad << ": " << r->body;
  }
  auto missing = c.Get("/api/v1/requester/runs/run_0000000000000000/aggregate", Auth());
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404) << missing->body;
}

}  // namespace
}  // namespace crowdgate::testing
