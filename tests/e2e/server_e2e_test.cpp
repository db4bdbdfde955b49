// The live task server as a user runs it: the real binary launches runs (`crowdgate launch`), serves them
// (`crowdgate serve --port 0`, a child process) and a client drives the worker HTTP API. Proves the response
// shapes and status codes of the worker API, that a CLI grant reaches a running server at the next request,
// that pages are HTML-escaped, that no gold/screening/onboarding answer reaches anything a worker can fetch,
// and the requester commands (status, export, review), bad configs (exit 2 naming the key) and `simulate`.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

using Headers = std::vector<std::pair<std::string, std::string>>;

Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// These tests name their workers with ?worker= / {"worker": ...}; signed links have their own test.
const char* kTrustedLocal = "provider:\n  type: local\n  trust_worker_param: true\n";

class ServerE2eTest : public CrowdgateFixture {
 protected:
  // Writes config.yaml (static_html, task.html, units.jsonl) with `extra` lines appended to blueprint and
  // `task_extra` to task, launches it and returns the run id (the last line of stdout).
  std::string Launch(const std::string& task_extra = "", const std::string& extra = "",
                     const std::string& quals = "[]") {
    Write("task.html", "<h1>Label this</h1><p class=\"text\">${text}</p><input name=\"label\">");
    const std::string config =
        Write("config.yaml", "task:\n  task_name: e2e\n  task_title: E2E task\n" + task_extra +
                                 "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n" +
                                 extra + "qualifications: " + quals + "\n" + kTrustedLocal);
    CommandResult r = Run("launch " + ShellQuote(config));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const std::string last = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    EXPECT_TRUE(std::regex_match(last, std::regex("run_[0-9a-f]{16}"))) << r.out;
    return last;
  }

  void WriteUnits(const std::vector<std::string>& texts) {
    std::string text;
    for (const auto& t : texts) text += json{{"text", t}}.dump() + "\n";
    Write("units.jsonl", text);
  }

  HttpClientResponse Call(HttpClient& c, const std::string& method, const std::string& target,
                          const std::string& body = "", const Headers& headers = {}) {
    auto r = c.Request(method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpClientResponse{};
  }

  json Work(HttpClient& c, const std::string& run, const std::string& worker) {
    auto r = Call(c, "POST", "/api/v1/runs/" + run + "/work", json{{"provider", "local"}, {"worker", worker}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  HttpClientResponse Submit(HttpClient& c, const json& work, const json& data) {
    return Call(c, "POST", "/api/v1/agents/" + work["agent_id"].get<std::string>() + "/submit",
                json{{"data", data}}.dump(), Bearer(work["token"]));
  }

  // The error body of a 4xx: {"error": {"code", "message"}}; returns the code.
  static std::string ErrorCode(const HttpClientResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.size() == 1 && j.contains("error")) << r.body;
    if (!j.is_object() || !j.contains("error")) return "";
    EXPECT_EQ(j["error"].size(), 2u) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string() && !j["error"]["message"].get<std::string>().empty()) << r.body;
    return j["error"].value("code", "");
  }

  static std::set<std::string> Keys(const json& j) {
    std::set<std::string> out;
    for (const auto& [k, v] : j.items()) out.insert(k);
    return out;
  }
};

const std::regex kAgentId("ag_[0-9a-f]{32}");
const std::regex kToken("[0-9a-f]{32}");

TEST_F(ServerE2eTest, WorkAndSubmitOverHttp) {
  WriteUnits({"first", "second"});
  Launch();
  // --json launch prints {"run_id": ...}.
  CommandResult j = Run("--json launch " + ShellQuote(dir_.File("config.yaml")));
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const std::string run = json::parse(j.out)["run_id"];
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());

  json work = Work(c, run, "alice");
  EXPECT_EQ(Keys(work), (std::set<std::string>{"outcome", "reason", "agent_id", "token", "data"}));
  EXPECT_EQ(work["outcome"], "unit");
  EXPECT_TRUE(work["reason"].is_null());
  EXPECT_TRUE(std::regex_match(work["agent_id"].get<std::string>(), kAgentId)) << work;
  EXPECT_TRUE(std::regex_match(work["token"].get<std::string>(), kToken)) << work;
  EXPECT_EQ(work["data"], json({{"text", "first"}}));
  EXPECT_EQ(Work(c, run, "alice")["agent_id"], work["agent_id"]);  // reconnect

  auto agent = Call(c, "GET", "/api/v1/agents/" + work["agent_id"].get<std::string>(), "", Bearer(work["token"]));
  ASSERT_EQ(agent.status, 200) << agent.body;
  EXPECT_EQ(json::parse(agent.body)["status"], "in_task");

  auto submitted = Submit(c, work, {{"label", "pos"}});
  ASSERT_EQ(submitted.status, 200) << submitted.body;
  EXPECT_EQ(json::parse(submitted.body), json({{"outcome", "accepted"}}));
  agent = Call(c, "GET", "/api/v1/agents/" + work["agent_id"].get<std::string>(), "", Bearer(work["token"]));
  EXPECT_EQ(json::parse(agent.body)["status"], "completed");
  EXPECT_EQ(json::parse(agent.body)["submission"], json({{"label", "pos"}}));

  json next = Work(c, run, "alice");
  EXPECT_EQ(next["outcome"], "unit");
  EXPECT_EQ(next["data"], json({{"text", "second"}}));
  json none = Work(c, run, "bob");
  EXPECT_EQ(none, json({{"outcome", "no_work"}, {"reason", "no_units_left"}, {"agent_id", nullptr},
                        {"token", nullptr}, {"data", nullptr}}));
}

TEST_F(ServerE2eTest, ErrorStatusesAndBodies) {
  WriteUnits({"a", "b"});
  const std::string run = Launch();
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  json work = Work(c, run, "alice");
  const std::string submit = "/api/v1/agents/" + work["agent_id"].get<std::string>() + "/submit";
  const std::string body = json{{"data", {{"label", "pos"}}}}.dump();

  auto missing = Call(c, "POST", submit, body);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(ErrorCode(missing), "unauthenticated");
  auto wrong = Call(c, "POST", submit, body, Bearer(std::string(32, '0')));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(ErrorCode(wrong), "unauthenticated");
  EXPECT_EQ(Call(c, "GET", "/api/v1/agents/" + work["agent_id"].get<std::string>(), "", Bearer("x")).status, 401);

  ASSERT_EQ(Submit(c, work, {{"label", "pos"}}).status, 200);
  auto twice = Submit(c, work, {{"label", "neg"}});
  EXPECT_EQ(twice.status, 409);
  EXPECT_EQ(ErrorCode(twice), "conflict");

  auto unknown_run = Call(c, "POST", "/api/v1/runs/run_0000000000000000/work", R"({"worker": "alice"})");
  EXPECT_EQ(unknown_run.status, 404);
  EXPECT_EQ(ErrorCode(unknown_run), "not_found");
  auto unknown_agent = Call(c, "POST", "/api/v1/agents/ag_00000000000000000000000000000000/submit", body,
                            Bearer(work["token"]));
  EXPECT_EQ(unknown_agent.status, 404);
  EXPECT_EQ(ErrorCode(unknown_agent), "not_found");

  const std::string work_path = "/api/v1/runs/" + run + "/work";
  for (const std::string& bad : {std::string("{not json"), std::string(R"({"worker": "alice", "color": "red"})"),
                                 std::string(R"({"worker": "bad name!"})"), std::string(R"({"worker": 7})"),
                                 std::string("[]"), std::string(R"({"provider": "local"})")}) {
    auto r = Call(c, "POST", work_path, bad);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_EQ(ErrorCode(r), "invalid_argument") << bad;
  }
  json bob = Work(c, run, "bob");
  const std::string bob_submit = "/api/v1/agents/" + bob["agent_id"].get<std::string>() + "/submit";
  for (const std::string& bad : {std::string(R"({"data": {"label": "x"}, "extra": 1})"), std::string(R"({"data": 5})"),
                                 std::string("{\"data\": ")}) {
    auto r = Call(c, "POST", bob_submit, bad, Bearer(bob["token"]));
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_EQ(ErrorCode(r), "invalid_argument") << bad;
  }
  EXPECT_EQ(Submit(c, bob, {{"label", "x"}}).status, 200);  // bad bodies changed nothing
  // The server stays up after all of that.
  EXPECT_EQ(Call(c, "GET", "/healthz").status, 200);
}

TEST_F(ServerE2eTest, ExpiredAgentIsGone) {
  WriteUnits({"only"});
  const std::string run = Launch("  assignment_duration_in_seconds: 1\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  json work = Work(c, run, "alice");
  ASSERT_EQ(work["outcome"], "unit");
  EXPECT_EQ(Work(c, run, "bob")["reason"], "no_units_left");
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto late = Submit(c, work, {{"label", "pos"}});
  EXPECT_EQ(late.status, 410) << late.body;
  EXPECT_EQ(ErrorCode(late), "gone");
  json bob = Work(c, run, "bob");  // the unit went back to the pool
  EXPECT_EQ(bob["outcome"], "unit");
  EXPECT_EQ(bob["data"], work["data"]);
}

TEST_F(ServerE2eTest, CliGrantReachesTheRunningServerAtTheNextRequest) {
  WriteUnits({"a", "b", "c"});
  const std::string run = Launch("", "  block_qualification: e2e-blocked\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  json first = Work(c, run, "alice");
  ASSERT_EQ(first["outcome"], "unit");
  CommandResult grant = Run("qual grant e2e-blocked alice --reason spam");
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  json blocked = Work(c, run, "alice");
  EXPECT_EQ(blocked["outcome"], "not_qualified");
  EXPECT_EQ(blocked["reason"], "blocked");
  auto page = Call(c, "GET", "/runs/" + run + "?worker=alice");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("blocked"), std::string::npos);
  EXPECT_EQ(Work(c, run, "bob")["outcome"], "unit");
  ASSERT_EQ(Run("qual revoke e2e-blocked alice").exit_code, 0);
  json back = Work(c, run, "alice");
  EXPECT_EQ(back["outcome"], "unit");
  EXPECT_EQ(back["agent_id"], first["agent_id"]);
}

TEST_F(ServerE2eTest, WorkerPageFillsTheTemplateEscaped) {
  WriteUnits({"<script>alert(1)</script> & \"quotes\""});
  const std::string run = Launch();
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  auto page = Call(c, "GET", "/runs/" + run + "?worker=alice");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_NE(page.Header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<p class=\"text\">&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;</p>"),
            std::string::npos)
      << page.body;
  EXPECT_EQ(page.body.find("<script>alert(1)"), std::string::npos);
  EXPECT_EQ(page.body.find("${text}"), std::string::npos);
  // The page carries the agent it assigned: the API reconnects to it.
  json work = Work(c, run, "alice");
  EXPECT_NE(page.body.find(work["agent_id"].get<std::string>()), std::string::npos);
  EXPECT_EQ(Call(c, "GET", "/runs/" + run).status, 400);  // who are you?
  EXPECT_EQ(Call(c, "GET", "/runs/run_0000000000000000?worker=alice").status, 404);
}

TEST_F(ServerE2eTest, NoAnswerReachesAWorkerAndGoldsLookLikeUnits) {
  WriteUnits({"item 0", "item 1", "item 2", "item 3", "item 4", "item 5"});
  std::string golds;
  std::string screening;
  for (int i = 0; i < 3; ++i) {
    golds += json{{"inputs", {{"text", "gold " + std::to_string(i)}}}, {"answer", {{"label", "SECRET-GOLD"}}}}.dump() +
             "\n";
    screening +=
        json{{"inputs", {{"text", "screen " + std::to_string(i)}}}, {"answer", {{"label", "SECRET-SCREEN"}}}}.dump() +
        "\n";
  }
  Write("golds.jsonl", golds);
  Write("screening.jsonl", screening);
  Write("onboarding_answer.json", R"({"label": "SECRET-ONBOARDING"})");
  // Screening and golds cannot share a run (as in Mephisto): one run onboards and serves golds, one screens.
  const std::string gold_run = Launch(
      "",
      "  onboarding_qualification: e2e-onb\n  onboarding_data: {text: \"what is the secret\"}\n"
      "  onboarding_answer: onboarding_answer.json\n"
      "  use_golds: true\n  gold_qualification_base: e2e-gold\n  gold_file: golds.jsonl\n  max_gold_units: 10\n");
  const std::string screen_run = Launch(
      "", "  use_screening_task: true\n  passed_qualification_name: e2e-screened\n  block_qualification: e2e-block\n"
          "  screening_file: screening.jsonl\n  max_screening_units: 10\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  std::vector<std::string> fetched;  // every body a worker fetched
  auto fetch = [&](const std::string& method, const std::string& target, const std::string& body = "",
                   const Headers& h = {}) {
    auto r = Call(c, method, target, body, h);
    fetched.push_back(r.body);
    return r;
  };
  auto work = [&](const std::string& run, const std::string& worker) {
    auto r = fetch("POST", "/api/v1/runs/" + run + "/work", json{{"worker", worker}}.dump());
    return json::parse(r.body, nullptr, false);
  };
  // Looks at an assigned agent every way a worker can (page, agent read), then submits.
  auto visit_and_submit = [&](const std::string& run, const std::string& worker, const json& w,
                              const std::string& answer) {
    fetch("GET", "/runs/" + run + "?worker=" + worker);
    fetch("GET", "/api/v1/agents/" + w["agent_id"].get<std::string>(), "", Bearer(w["token"]));
    auto s = fetch("POST", "/api/v1/agents/" + w["agent_id"].get<std::string>() + "/submit",
                   json{{"data", {{"label", answer}}}}.dump(), Bearer(w["token"]));
    EXPECT_EQ(s.status, 200) << s.body;
    return json::parse(s.body, nullptr, false).value("outcome", "");
  };

  // alice: onboarding -> gold -> real, answering right each time.
  json onb = work(gold_run, "alice");
  ASSERT_EQ(onb["outcome"], "onboarding");
  EXPECT_EQ(onb["data"], json({{"text", "what is the secret"}}));
  EXPECT_EQ(visit_and_submit(gold_run, "alice", onb, "SECRET-ONBOARDING"), "passed");
  json gold = work(gold_run, "alice");
  ASSERT_EQ(gold["outcome"], "unit");
  EXPECT_EQ(gold["data"]["text"].get<std::string>().rfind("gold ", 0), 0u);
  EXPECT_EQ(visit_and_submit(gold_run, "alice", gold, "SECRET-GOLD"), "accepted");
  json real = work(gold_run, "alice");
  ASSERT_EQ(real["outcome"], "unit");
  EXPECT_EQ(real["data"]["text"].get<std::string>().rfind("item ", 0), 0u);
  fetch("GET", "/runs/" + gold_run + "?worker=alice");
  // bob fails onboarding; dave fails his gold: each sees only refusals after.
  EXPECT_EQ(visit_and_submit(gold_run, "bob", work(gold_run, "bob"), "wrong"), "failed");
  EXPECT_EQ(work(gold_run, "bob")["reason"], "onboarding_failed");
  fetch("GET", "/runs/" + gold_run + "?worker=bob");
  EXPECT_EQ(visit_and_submit(gold_run, "dave", work(gold_run, "dave"), "SECRET-ONBOARDING"), "passed");
  EXPECT_EQ(visit_and_submit(gold_run, "dave", work(gold_run, "dave"), "wrong"), "accepted");
  EXPECT_EQ(work(gold_run, "dave")["reason"], "gold_disqualified");
  fetch("GET", "/runs/" + gold_run + "?worker=dave");
  // Screening: alice passes and gets real units, carol fails and is refused.
  json scr = work(screen_run, "alice");
  ASSERT_EQ(scr["outcome"], "unit");
  EXPECT_EQ(scr["data"]["text"].get<std::string>().rfind("screen ", 0), 0u);
  EXPECT_EQ(visit_and_submit(screen_run, "alice", scr, "SECRET-SCREEN"), "accepted");
  json screened_real = work(screen_run, "alice");
  EXPECT_EQ(screened_real["data"]["text"].get<std::string>().rfind("item ", 0), 0u);
  EXPECT_EQ(visit_and_submit(screen_run, "carol", work(screen_run, "carol"), "wrong"), "accepted");
  EXPECT_EQ(work(screen_run, "carol")["reason"], "screening_failed");
  fetch("GET", "/runs/" + screen_run + "?worker=carol");

  // Answers never leave the server (agents are read before they are submitted, so no body echoes a worker's
  // own typed answer back).
  ASSERT_GE(fetched.size(), 25u);
  for (const auto& body : fetched) EXPECT_EQ(body.find("SECRET-"), std::string::npos) << body;
  // A gold is indistinguishable from a real unit in shape and id format.
  EXPECT_EQ(Keys(gold), Keys(real));
  EXPECT_EQ(Keys(gold["data"]), Keys(real["data"]));
  for (const json* w : {&gold, &real, &scr}) {
    EXPECT_TRUE(std::regex_match((*w)["agent_id"].get<std::string>(), kAgentId)) << *w;
    EXPECT_TRUE(std::regex_match((*w)["token"].get<std::string>(), kToken)) << *w;
    EXPECT_TRUE((*w)["reason"].is_null());
  }
}

// A worker refused for gold reasons sees a neutral page; the API keeps the exact reason.
TEST_F(ServerE2eTest, GoldRefusalPagesAreNeutral) {
  WriteUnits({"item 0", "item 1", "item 2", "item 3"});
  Write("golds.jsonl", json{{"inputs", {{"text", "item 9"}}}, {"answer", {{"label", "pos"}}}}.dump() + "\n");
  const std::string run =
      Launch("", "  use_golds: true\n  gold_qualification_base: neutral-gold\n  gold_file: golds.jsonl\n"
                 "  max_gold_units: 1\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  auto visible_message = [&](const std::string& worker) {
    auto page = Call(c, "GET", "/runs/" + run + "?worker=" + worker);
    EXPECT_EQ(page.status, 200) << page.body;
    const size_t p = page.body.find("<p>");
    std::string text = p == std::string::npos ? page.body : page.body.substr(p);
    for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return text;
  };
  // dave answers his gold wrong: disqualified.
  json gold = Work(c, run, "dave");
  ASSERT_EQ(gold["outcome"], "unit");
  ASSERT_EQ(Submit(c, gold, {{"label", "neg"}}).status, 200);
  EXPECT_EQ(Work(c, run, "dave")["reason"], "gold_disqualified");
  std::string text = visible_message("dave");
  EXPECT_NE(text.find("no work for you right now"), std::string::npos) << text;
  EXPECT_EQ(text.find("gold"), std::string::npos) << text;
  EXPECT_EQ(text.find("qualified"), std::string::npos) << text;
  // The run's one gold slot went to dave: erin needs a gold and the cap is reached.
  EXPECT_EQ(Work(c, run, "erin")["reason"], "gold_cap_reached");
  text = visible_message("erin");
  EXPECT_NE(text.find("no work for you right now"), std::string::npos) << text;
  EXPECT_EQ(text.find("gold"), std::string::npos) << text;
}

// Golds whose fields differ from the units' are refused at launch (exit 2, naming the file and
// the field); golds numbered unlike the units launch with a warning.
TEST_F(ServerE2eTest, LaunchChecksThatGoldsLookLikeUnits) {
  Write("task.html", "<p>${text}</p>");
  Write("units.jsonl", "{\"id\": \"s001\", \"text\": \"one\"}\n{\"id\": \"s002\", \"text\": \"two\"}\n"
                       "{\"id\": \"s003\", \"text\": \"three\"}\n");
  const std::string config = Write(
      "golds.yaml", "task:\n  task_name: lookalike\nblueprint:\n  type: static_html\n  task_source: task.html\n"
                    "  data: units.jsonl\n  use_golds: true\n  gold_qualification_base: la-gold\n"
                    "  gold_file: golds.jsonl\n  max_gold_units: 5\n");
  Write("golds.jsonl", "{\"inputs\": {\"id\": \"s004\", \"prompt\": \"four\"}, \"answer\": {\"label\": \"a\"}}\n");
  CommandResult r = Run("launch " + ShellQuote(config));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("blueprint.gold_file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("golds.jsonl"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"prompt\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"text\""), std::string::npos) << r.err;
  Write("golds.jsonl", "{\"inputs\": {\"id\": \"g001\", \"text\": \"four\"}, \"answer\": {\"label\": \"a\"}}\n"
                       "{\"inputs\": {\"id\": \"g002\", \"text\": \"five\"}, \"answer\": {\"label\": \"a\"}}\n");
  r = Run("launch " + ShellQuote(config));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"g00\""), std::string::npos) << r.err;
}

TEST_F(ServerE2eTest, StatusExportAndReview) {
  WriteUnits({"x", "y"});
  Write("golds.jsonl", R"({"inputs": {"text": "g"}, "answer": {"label": "pos"}})" "\n");
  const std::string run = Launch(
      "", "  use_golds: true\n  gold_qualification_base: sx-gold\n  gold_file: golds.jsonl\n  max_gold_units: 5\n"
          "  gold_check: {fields: [label]}\n");
  const json submission = {{"label", "pos"}, {"notes", {{"n", {1, 2.5, "three"}}, {"empty", nullptr}}}};
  {
    ServerProcess server(dir_, db_);
    HttpClient c("127.0.0.1", server.port());
    for (int i = 0; i < 3; ++i) {
      json w = Work(c, run, "alice");
      ASSERT_EQ(w["outcome"], "unit");
      ASSERT_EQ(Submit(c, w, submission).status, 200);
    }
  }
  CommandResult status = Run("--json status " + run);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  json s = json::parse(status.out);
  EXPECT_EQ(s["run_id"], run);
  EXPECT_EQ(s["gold_served"], 1);
  EXPECT_EQ(s["units"]["completed"], 2);  // status counts real units; golds are counted by gold_served
  ASSERT_EQ(Run("status").exit_code, 0);

  CommandResult exported = Run("export " + run + " --format jsonl");
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::vector<json> rows;
  std::istringstream lines(exported.out);
  for (std::string line; std::getline(lines, line);) rows.push_back(json::parse(line));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) {
    for (const char* key : {"run_id", "unit_id", "item", "worker", "agent_id", "kind", "status", "submitted_at",
                            "duration_s", "data"}) {
      EXPECT_TRUE(r.contains(key)) << key << " missing in " << r;
    }
    EXPECT_EQ(r["run_id"], run);
    EXPECT_EQ(r["worker"], "local:alice");
    EXPECT_EQ(r["status"], "completed");
    EXPECT_EQ(r["data"], submission);  // unchanged
    EXPECT_TRUE(r["submitted_at"].is_string());
    EXPECT_TRUE(r["duration_s"].is_number());
  }
  EXPECT_EQ(rows[0]["kind"], "gold");
  EXPECT_EQ(rows[1]["kind"], "unit");
  EXPECT_EQ(rows[2]["kind"], "unit");

  CommandResult review = Run("review " + run + " approve --all");
  ASSERT_EQ(review.exit_code, 0) << review.err;
  json after = json::parse(Run("--json status " + run).out);
  EXPECT_EQ(after["units"].value("accepted", 0), 2) << after;
  EXPECT_EQ(after["units"].value("completed", 0), 0) << after;
  // The export shows the reviewed agents as approved.
  std::istringstream reviewed(Run("export " + run + " --format jsonl").out);
  int approved = 0;
  for (std::string line; std::getline(reviewed, line);) {
    if (!line.empty() && json::parse(line)["status"] == "approved") ++approved;
  }
  EXPECT_GE(approved, 2);
  EXPECT_EQ(Run("review " + run + " frobnicate --all").exit_code, 2);
  EXPECT_NE(Run("export run_0000000000000000").exit_code, 0);
}

TEST_F(ServerE2eTest, BadConfigsAreRefusedNamingTheKey) {
  WriteUnits({"x"});
  Write("task.html", "<p>${text}</p>");
  const std::string good_blueprint = "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n";
  struct Case {
    std::string yaml;
    std::string named;
  };
  const std::vector<Case> cases = {
      {"task:\n  task_name: t\n  task_nmae: typo\n" + good_blueprint, "task.task_nmae"},
      {"task:\n  task_name: t\n  allowed_concurrent: many\n" + good_blueprint, "task.allowed_concurrent"},
      {"task:\n  task_name: t\nblueprint:\n  type: static_html\n  task_source: task.html\n", "blueprint.data"},
      {"task:\n  task_name: t\n" + good_blueprint + "qualifications: [{qualification_name: nonexistent-q, "
                                                    "comparator: Exists}]\n",
       "nonexistent-q"},
  };
  for (const auto& c : cases) {
    const std::string path = Write("bad.yaml", c.yaml);
    CommandResult r = Run("launch " + ShellQuote(path));
    EXPECT_EQ(r.exit_code, 2) << c.yaml << r.err;
    EXPECT_NE(r.err.find(c.named), std::string::npos) << "stderr should name " << c.named << ": " << r.err;
  }
  CommandResult status = Run("--json status");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out), json::array());  // nothing was launched
}

TEST_F(ServerE2eTest, SimulatedCrowdAgainstAServedRun) {
  std::vector<std::string> items;
  for (int i = 0; i < 20; ++i) items.push_back("sentence " + std::to_string(i));
  WriteUnits(items);
  std::string golds;
  for (int i = 0; i < 5; ++i) {
    golds += json{{"inputs", {{"text", "gold " + std::to_string(i)}}}, {"answer", {{"label", i % 2 ? "pos" : "neg"}}}}
                 .dump() +
             "\n";
  }
  const std::string gold_file = Write("golds.jsonl", golds);
  const std::string run =
      Launch("", "  units_per_item: 2\n  use_golds: true\n  gold_qualification_base: sim-gold\n"
                 "  gold_file: golds.jsonl\n  max_gold_units: 50\n");
  ServerProcess server(dir_, db_);
  CommandResult sim = Run("--json simulate http://127.0.0.1:" + std::to_string(server.port()) + "/runs/" + run +
                          " --workers 5 --profile good:1.0 --answers " + ShellQuote(gold_file));
  ASSERT_EQ(sim.exit_code, 0) << sim.out << sim.err;
  json report = json::parse(sim.out);
  EXPECT_EQ(report["errors"], 0);
  ASSERT_EQ(report["workers"].size(), 5u);
  int64_t units = 0;
  for (const auto& w : report["workers"]) units += w["units"].get<int64_t>();
  EXPECT_GE(units, 40) << report;  // every real unit was done (golds come on top)
  json s = json::parse(Run("--json status " + run).out);
  EXPECT_EQ(s["units"].value("completed", 0), 40) << s;
  EXPECT_GE(s["gold_served"].get<int64_t>(), 5) << s;  // at least one gold per worker
}

// `serve --rate-limit N`: one client address past its budget gets 429 with the JSON error body, and is
// served again once the bucket refills; the server stays up.
TEST(ServeRateLimitTest, OneAddressPastItsBudgetGets429) {
  TempDir dir;
  const std::string db = dir.File("rate.db");
  ServerProcess server(dir, db, {}, "server-stderr.txt", {"--rate-limit", "5"});
  ASSERT_NE(server.port(), 0);
  HttpClient c("127.0.0.1", server.port());
  int ok = 0;
  int limited = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = c.Get("/healthz");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (r->status == 200) ++ok;
    if (r->status == 429) {
      ++limited;
      EXPECT_EQ(json::parse(r->body)["error"]["code"], "rate_limited") << r->body;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_LE(ok, 20);  // a burst of 2 x 5, plus what refills while the loop runs
  EXPECT_GE(limited, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  auto again = c.Get("/healthz");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 200);
}

// GET /readyz, for a load balancer: 200 {"status": "ready"} once the database answers (a fresh one, migrated
// on open), beside /healthz; the method is checked like every other route.
TEST(ServeReadyzTest, AFreshDatabaseIsReady) {
  TempDir dir;
  ServerProcess server(dir, dir.File("ready.db"));
  ASSERT_NE(server.port(), 0);
  HttpClient c("127.0.0.1", server.port());
  auto r = c.Get("/readyz");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body), (json{{"status", "ready"}}));
  auto post = c.Request("POST", "/readyz", "", {});
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->status, 405);
}

// `crowdgate --version`: the project version and the commit the build was configured from, exit 0, and no
// command needed.
TEST(VersionTest, PrintsVersionAndCommit) {
  TempDir dir;
  CommandResult r = RunCrowdgate(dir, "--version");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("^crowdgate [0-9]+\\.[0-9]+\\.[0-9]+ \\(commit ([0-9a-f]{4,}|unknown)\\)\n")))
      << r.out;
}

}  // namespace
}  // namespace crowdgate::testing
