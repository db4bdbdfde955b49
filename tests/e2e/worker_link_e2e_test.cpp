// Signed worker links: on a run that does not trust the worker parameter, a local worker gets work
// only with their own link's signature; a missing, wrong, expired or other run's signature is 401
// for the page and the JSON work API alike, and a worker cannot take another's name.
#include <chrono>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

class WorkerLinkE2eTest : public CrowdgateFixture {
 protected:
  void SetUp() override {
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    Write("units.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": \"c\"}\n");
  }

  std::string Launch(const std::string& provider_lines) {
    const std::string config =
        Write("config-" + std::to_string(++launches_) + ".yaml",
              "task:\n  task_name: links\n  task_title: Links\n"
              "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
              "qualifications: []\nprovider:\n  type: local\n" + provider_lines);
    CommandResult r = Run("--json launch " + ShellQuote(config));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out)["run_id"];
  }

  // `crowdgate worker link`: the printed path and its sig.
  std::string Link(const std::string& worker, const std::string& run, const std::string& extra = "") {
    CommandResult r = Run("worker link " + worker + " " + run + extra);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  static std::string SigOf(const std::string& link) { return link.substr(link.find("&sig=") + 5); }

  HttpClientResponse Work(HttpClient& c, const std::string& run, json body) {
    auto r = c.Post("/api/v1/runs/" + run + "/work", body.dump(), {{"Content-Type", "application/json"}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpClientResponse{};
  }
  HttpClientResponse Page(HttpClient& c, const std::string& target) {
    auto r = c.Get(target);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpClientResponse{};
  }

  int launches_ = 0;
};

TEST_F(WorkerLinkE2eTest, OnlyTheRightSignatureGetsWork) {
  const std::string run = Launch("");
  const std::string other_run = Launch("");
  const std::string link = Link("alice", run);
  EXPECT_TRUE(std::regex_match(link, std::regex("/runs/" + run + "\\?worker=alice&sig=[0-9]+\\.[0-9a-f]{64}")))
      << link;
  const std::string sig = SigOf(link);
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());

  // The page: the right link works and shows the task.
  auto ok = Page(c, link);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("cg-form"), std::string::npos) << ok.body;

  // Missing, wrong, another worker's name, another run's link: 401 and a page that says so.
  std::string tampered = sig;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  const std::string other_run_sig = SigOf(Link("alice", other_run));
  for (const std::string& target :
       {"/runs/" + run + "?worker=alice", "/runs/" + run + "?worker=alice&sig=" + tampered,
        "/runs/" + run + "?worker=mallory&sig=" + sig, "/runs/" + run + "?worker=alice&sig=" + other_run_sig,
        "/runs/" + run + "?worker=alice&sig=garbage", "/runs/" + run + "?PROLIFIC_PID=alice&SESSION_ID=s1"}) {
    auto r = Page(c, target);
    EXPECT_EQ(r.status, 401) << target << "\n" << r.body;
    EXPECT_NE(r.body.find("<html"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("cg-form"), std::string::npos) << r.body;
  }

  // The JSON work API takes the same signature.
  EXPECT_EQ(Work(c, run, {{"provider", "local"}, {"worker", "alice"}}).status, 401);
  EXPECT_EQ(Work(c, run, {{"provider", "local"}, {"worker", "alice"}, {"sig", tampered}}).status, 401);
  EXPECT_EQ(Work(c, run, {{"provider", "local"}, {"worker", "bob"}, {"sig", sig}}).status, 401);
  EXPECT_EQ(Work(c, run, {{"provider", "local"}, {"worker", "alice"}, {"sig", other_run_sig}}).status, 401);
  auto good = Work(c, run, {{"provider", "local"}, {"worker", "alice"}, {"sig", sig}});
  ASSERT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(json::parse(good.body)["outcome"], "unit");
  auto err = json::parse(Work(c, run, {{"worker", "bob"}, {"sig", sig}}).body);
  EXPECT_EQ(err["error"]["code"], "unauthenticated") << err;
}

TEST_F(WorkerLinkE2eTest, ExpiredLinkIsRefused) {
  const std::string run = Launch("");
  const std::string link = Link("carol", run, " --expires 1s");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  auto r = Page(c, link);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("expired"), std::string::npos) << r.body;
  EXPECT_EQ(Work(c, run, {{"worker", "carol"}, {"sig", SigOf(link)}}).status, 401);
  // A link that never expires keeps working.
  const std::string forever = Link("carol", run, " --expires never");
  EXPECT_EQ(Page(c, forever).status, 200);
}

TEST_F(WorkerLinkE2eTest, UnsignedWorkerOnlyWhenTheRunTrustsIt) {
  const std::string strict = Launch("");
  const std::string trusting = Launch("  trust_worker_param: true\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  EXPECT_EQ(Page(c, "/runs/" + strict + "?worker=dave").status, 401);
  EXPECT_EQ(Page(c, "/runs/" + trusting + "?worker=dave").status, 200);
  EXPECT_EQ(Work(c, trusting, {{"provider", "local"}, {"worker", "erin"}}).status, 200);
}

TEST_F(WorkerLinkE2eTest, RequesterApiMakesLinksAndCliRefusesBadInput) {
  const std::string run = Launch("");
  ServerProcess server(dir_, db_, {"CROWDGATE_REQUESTER_TOKEN=req-token-1"});
  HttpClient c("127.0.0.1", server.port());
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer req-token-1"}, {"Content-Type", "application/json"}};
  auto made = c.Post("/api/v1/requester/runs/" + run + "/links", json{{"worker", "frank"}}.dump(), auth);
  ASSERT_TRUE(made.ok());
  ASSERT_EQ(made->status, 200) << made->body;
  const std::string link = json::parse(made->body)["link"];
  EXPECT_EQ(Page(c, link).status, 200);
  auto no_token = c.Post("/api/v1/requester/runs/" + run + "/links", json{{"worker", "frank"}}.dump(),
                         {{"Content-Type", "application/json"}});
  EXPECT_EQ(no_token->status, 401);
  auto unknown_run = c.Post("/api/v1/requester/runs/run_0000000000000000/links", json{{"worker", "x"}}.dump(), auth);
  EXPECT_EQ(unknown_run->status, 404);

  EXPECT_EQ(Run("worker link alice run_0000000000000000").exit_code, 2);
  EXPECT_EQ(Run("worker link prolific:abc " + run).exit_code, 2);
  EXPECT_EQ(Run("worker link alice " + run + " --expires soon").exit_code, 2);
  EXPECT_EQ(Run("worker link 'bad name' " + run).exit_code, 2);
}

}  // namespace
}  // namespace crowdgate::testing
