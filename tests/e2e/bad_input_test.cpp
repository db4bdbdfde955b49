// Bad input, everywhere (the promises on bad input), against the real binary:
//  - every HTTP endpoint of `crowdgate serve` (a child process) is fed a table of bad requests (malformed JSON,
//    wrong types, unknown fields, bodies over the 1 MiB limit, invalid ids, path tricks, missing, forged and
//    other agents' tokens, requester endpoints without the requester token): each gets its 4xx status and a
//    {"error": {"code", "message"}} body, the server stays up, and the database is unchanged (same agents with the
//    same status and data, same audit history); the right tokens still work afterwards;
//  - template fields reach the worker page HTML-escaped (script payloads);
//  - every CLI command given bad arguments or an unreadable or malformed config / data file / CSV exits 2 with a
//    message naming the problem (the file, the `file:LINE`, the key or the name), and changes nothing.
#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kRequesterToken[] = "5f3c9a0e7b2d4c6e8a1f0b3d5c7e9a2b";
constexpr char kScript[] = "<script>alert('x')</script>";

Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// A snapshot of what a refused request must not change.
struct DbState {
  std::vector<std::string> agents;  // id status data_json check_result
  size_t history = 0;
  size_t qualifications = 0;
  std::vector<std::string> units;  // status=count

  bool operator==(const DbState&) const = default;
};

class BadInputTest : public CrowdgateFixture {
 protected:
  // A static_html run of `n` units whose text is a script payload; returns its id.
  std::string Launch(int n) {
    Write("task.html", "<h1>Label</h1><p class=\"text\">${text}</p><input name=\"label\">");
    std::string units;
    for (int i = 0; i < n; ++i) units += json{{"text", std::string(kScript) + " #" + std::to_string(i)}}.dump() + "\n";
    Write("units.jsonl", units);
    const std::string config =
        Write("config.yaml",
              "task:\n  task_name: bad-input\n  task_title: Bad input\n  assignment_duration_in_seconds: 600\n"
              "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\nqualifications: []\n"
              "provider:\n  type: local\n  trust_worker_param: true\n");
    CommandResult r = Run("--json launch " + ShellQuote(config));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? json::parse(r.out)["run_id"].get<std::string>() : "";
  }

  DbState Snapshot(const std::string& run) {
    DbState s;
    auto store = Store::Open(db_, Env::Default());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return s;
    auto agents = (*store)->RunAgents(run);
    EXPECT_TRUE(agents.ok());
    for (const auto& a : *agents) s.agents.push_back(a.id + " " + ToString(a.status) + " " + a.data_json + " " + a.check_result);
    auto history = (*store)->History(std::nullopt, std::nullopt);
    EXPECT_TRUE(history.ok());
    s.history = history.ok() ? history->size() : 0;
    auto quals = (*store)->ListQualifications();
    s.qualifications = quals.ok() ? quals->size() : 0;
    auto units = (*store)->UnitStatusCounts(run);
    if (units.ok()) {
      for (const auto& [k, n] : *units) s.units.push_back(k + "=" + std::to_string(n));
    }
    return s;
  }

  // Checks the {"error": {"code", "message"}} shape; returns the code.
  static std::string ErrorCode(const HttpClientResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || j.size() != 1 || !j.contains("error") || !j["error"].is_object() ||
        j["error"].size() != 2 || !j["error"]["code"].is_string() || !j["error"]["message"].is_string() ||
        j["error"]["message"].get<std::string>().empty()) {
      ADD_FAILURE() << "not an error body: " << r.body;
      return "";
    }
    return j["error"]["code"];
  }
};

struct HttpCase {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  Headers headers;
  int status;
  std::string code;  // "" = any code
};

TEST_F(BadInputTest, EveryHttpEndpointRefusesBadInputAndChangesNothing) {
  const std::string run = Launch(3);
  ASSERT_FALSE(run.empty());
  ServerProcess server(dir_, db_, {std::string("CROWDGATE_REQUESTER_TOKEN=") + kRequesterToken});
  ASSERT_NE(server.port(), 0);
  HttpClient c("127.0.0.1", server.port());
  ASSERT_EQ(Run("qual create known-qual").exit_code, 0);

  // Two workers hold an agent each.
  auto work = [&](const std::string& worker) {
    auto r = c.Post("/api/v1/runs/" + run + "/work", json{{"worker", worker}}.dump());
    EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
    return r.ok() ? json::parse(r->body) : json();
  };
  const json alice = work("alice");
  const json bob = work("bob");
  ASSERT_EQ(alice["outcome"], "unit");
  ASSERT_EQ(bob["outcome"], "unit");
  const std::string a_id = alice["agent_id"], a_token = alice["token"];
  const std::string b_id = bob["agent_id"], b_token = bob["token"];

  // The worker page shows the script payload escaped.
  auto page = c.Get("/runs/" + run + "?worker=alice");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->status, 200);
  EXPECT_EQ(page->body.find("<script>alert"), std::string::npos) << page->body;
  EXPECT_NE(page->body.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos) << page->body;

  const std::string work_path = "/api/v1/runs/" + run + "/work";
  const std::string a_submit = "/api/v1/agents/" + a_id + "/submit";
  const std::string good = json{{"data", {{"label", "pos"}}}}.dump();
  const std::string huge = json{{"data", {{"label", std::string(1 << 21, 'x')}}}}.dump();
  const std::string grant = "/api/v1/requester/qualifications/known-qual/grant";
  const std::string revoke = "/api/v1/requester/qualifications/known-qual/revoke";
  const Headers req = Bearer(kRequesterToken);
  const std::string forged = "00000000000000000000000000000000";

  const std::vector<HttpCase> cases = {
      // POST /api/v1/runs/{id}/work
      {"work: not JSON", "POST", work_path, "{not json", {}, 400, "invalid_argument"},
      {"work: empty body", "POST", work_path, "", {}, 400, "invalid_argument"},
      {"work: JSON array", "POST", work_path, "[]", {}, 400, "invalid_argument"},
      {"work: JSON string", "POST", work_path, "\"carol\"", {}, 400, "invalid_argument"},
      {"work: missing worker", "POST", work_path, R"({"provider": "local"})", {}, 400, "invalid_argument"},
      {"work: worker not a string", "POST", work_path, R"({"worker": 7})", {}, 400, "invalid_argument"},
      {"work: worker null", "POST", work_path, R"({"worker": null})", {}, 400, "invalid_argument"},
      {"work: provider not a string", "POST", work_path, R"({"worker": "carol", "provider": []})", {}, 400,
       "invalid_argument"},
      {"work: session not a string", "POST", work_path, R"({"worker": "carol", "session": 5})", {}, 400,
       "invalid_argument"},
      {"work: unknown field", "POST", work_path, R"({"worker": "carol", "color": "red"})", {}, 400,
       "invalid_argument"},
      {"work: bad worker name", "POST", work_path, R"({"worker": "bad name!"})", {}, 400, "invalid_argument"},
      {"work: empty worker name", "POST", work_path, R"({"worker": ""})", {}, 400, "invalid_argument"},
      {"work: script as worker name", "POST", work_path, json{{"worker", kScript}}.dump(), {}, 400,
       "invalid_argument"},
      {"work: unknown provider", "POST", work_path, R"({"provider": "nosuch", "worker": "carol"})", {}, 400,
       "invalid_argument"},
      {"work: provider mismatch", "POST", work_path, R"({"provider": "mturk", "worker": "local:carol"})", {}, 400,
       "invalid_argument"},
      {"work: unknown run", "POST", "/api/v1/runs/run_0000000000000000/work", R"({"worker": "carol"})", {}, 404,
       "not_found"},
      {"work: invalid run id", "POST", "/api/v1/runs/not-a-run/work", R"({"worker": "carol"})", {}, 404, "not_found"},
      {"work: body over 1 MiB", "POST", work_path, huge, {}, 413, "too_large"},
      {"work: GET", "GET", work_path, "", {}, 405, "method_not_allowed"},
      // POST /api/v1/agents/{id}/submit
      {"submit: no token", "POST", a_submit, good, {}, 401, "unauthenticated"},
      {"submit: empty bearer", "POST", a_submit, good, {{"Authorization", "Bearer "}}, 401, "unauthenticated"},
      {"submit: basic auth", "POST", a_submit, good, {{"Authorization", "Basic " + a_token}}, 401, "unauthenticated"},
      {"submit: forged token", "POST", a_submit, good, Bearer(forged), 401, "unauthenticated"},
      {"submit: token prefix", "POST", a_submit, good, Bearer(a_token.substr(0, 16)), 401, "unauthenticated"},
      {"submit: another agent's token", "POST", a_submit, good, Bearer(b_token), 401, "unauthenticated"},
      {"submit: requester token", "POST", a_submit, good, req, 401, "unauthenticated"},
      {"submit: not JSON", "POST", a_submit, "{\"data\": ", Bearer(a_token), 400, "invalid_argument"},
      {"submit: JSON array", "POST", a_submit, "[1]", Bearer(a_token), 400, "invalid_argument"},
      {"submit: missing data", "POST", a_submit, "{}", Bearer(a_token), 400, "invalid_argument"},
      {"submit: data a number", "POST", a_submit, R"({"data": 5})", Bearer(a_token), 400, "invalid_argument"},
      {"submit: data an array", "POST", a_submit, R"({"data": ["pos"]})", Bearer(a_token), 400, "invalid_argument"},
      {"submit: data a string", "POST", a_submit, R"({"data": "pos"})", Bearer(a_token), 400, "invalid_argument"},
      {"submit: unknown field", "POST", a_submit, R"({"data": {"label": "x"}, "extra": 1})", Bearer(a_token), 400,
       "invalid_argument"},
      {"submit: body over 1 MiB", "POST", a_submit, huge, Bearer(a_token), 413, "too_large"},
      {"submit: unknown agent", "POST", "/api/v1/agents/ag_00000000000000000000000000000000/submit", good,
       Bearer(a_token), 404, "not_found"},
      {"submit: invalid agent id", "POST", "/api/v1/agents/zz/submit", good, Bearer(a_token), 404, "not_found"},
      // POST /api/v1/agents/{id}/return, GET /api/v1/agents/{id}
      {"return: no token", "POST", "/api/v1/agents/" + a_id + "/return", "", {}, 401, "unauthenticated"},
      {"return: forged token", "POST", "/api/v1/agents/" + a_id + "/return", "", Bearer(forged), 401,
       "unauthenticated"},
      {"return: another agent's token", "POST", "/api/v1/agents/" + a_id + "/return", "", Bearer(b_token), 401,
       "unauthenticated"},
      {"get agent: no token", "GET", "/api/v1/agents/" + a_id, "", {}, 401, "unauthenticated"},
      {"get agent: forged token", "GET", "/api/v1/agents/" + a_id, "", Bearer(forged), 401, "unauthenticated"},
      {"get agent: another agent's token", "GET", "/api/v1/agents/" + a_id, "", Bearer(b_token), 401,
       "unauthenticated"},
      {"get agent: unknown", "GET", "/api/v1/agents/ag_00000000000000000000000000000000", "", Bearer(a_token), 404,
       "not_found"},
      // Path tricks.
      {"path: ..", "POST", "/api/v1/runs/../x", R"({"worker": "carol"})", {}, 400, "invalid_argument"},
      {"path: .. before work", "POST", "/api/v1/runs/" + run + "/../" + run + "/work", R"({"worker": "carol"})", {},
       400, "invalid_argument"},
      {"path: %2e%2e", "POST", "/api/v1/runs/%2e%2e/work", R"({"worker": "carol"})", {}, 400, "invalid_argument"},
      {"path: %2E%2E", "GET", "/runs/%2E%2E?worker=carol", "", {}, 400, "invalid_argument"},
      {"path: encoded slash", "POST", "/api/v1/agents/" + a_id + "%2fsubmit", good, Bearer(a_token), 400,
       "invalid_argument"},
      {"path: encoded backslash", "GET", "/api/v1/agents/..%5c" + a_id, "", Bearer(a_token), 400, "invalid_argument"},
      {"path: %00", "POST", "/api/v1/runs/" + run + "%00/work", R"({"worker": "carol"})", {}, 400,
       "invalid_argument"},
      {"path: bad percent", "POST", "/api/v1/runs/run_%zz/work", R"({"worker": "carol"})", {}, 400,
       "invalid_argument"},
      {"path: unknown endpoint", "GET", "/api/v1/secrets", "", {}, 404, "not_found"},
      {"path: query %00", "GET", "/runs/" + run + "?worker=al%00ice", "", {}, 400, "invalid_argument"},
      // The worker page.
      {"page: no worker", "GET", "/runs/" + run, "", {}, 400, "invalid_argument"},
      {"page: bad worker", "GET", "/runs/" + run + "?worker=bad%20name!", "", {}, 400, "invalid_argument"},
      {"page: script worker", "GET", "/runs/" + run + "?worker=%3Cscript%3E", "", {}, 400, "invalid_argument"},
      {"page: unknown run", "GET", "/runs/run_0000000000000000?worker=carol", "", {}, 404, "not_found"},
      // Requester endpoints.
      {"runs: no token", "GET", "/api/v1/requester/runs", "", {}, 401, "unauthenticated"},
      {"runs: wrong token", "GET", "/api/v1/requester/runs", "", Bearer(forged), 401, "unauthenticated"},
      {"runs: an agent's token", "GET", "/api/v1/requester/runs", "", Bearer(a_token), 401, "unauthenticated"},
      {"runs: token prefix", "GET", "/api/v1/requester/runs", "", Bearer(std::string(kRequesterToken).substr(0, 31)),
       401, "unauthenticated"},
      {"grant: no token", "POST", grant, R"({"worker": "carol"})", {}, 401, "unauthenticated"},
      {"grant: wrong token", "POST", grant, R"({"worker": "carol"})", Bearer(forged), 401, "unauthenticated"},
      {"grant: an agent's token", "POST", grant, R"({"worker": "carol"})", Bearer(a_token), 401, "unauthenticated"},
      {"revoke: no token", "POST", revoke, R"({"worker": "carol"})", {}, 401, "unauthenticated"},
      {"revoke: wrong token", "POST", revoke, R"({"worker": "carol"})", Bearer(forged), 401, "unauthenticated"},
      {"grant: not JSON", "POST", grant, "worker=carol", req, 400, "invalid_argument"},
      {"grant: missing worker", "POST", grant, R"({"value": 1})", req, 400, "invalid_argument"},
      {"grant: worker not a string", "POST", grant, R"({"worker": 1})", req, 400, "invalid_argument"},
      {"grant: value not an integer", "POST", grant, R"({"worker": "carol", "value": "1"})", req, 400,
       "invalid_argument"},
      {"grant: value a float", "POST", grant, R"({"worker": "carol", "value": 1.5})", req, 400, "invalid_argument"},
      {"grant: unknown field", "POST", grant, R"({"worker": "carol", "expiry": "1d"})", req, 400,
       "invalid_argument"},
      {"grant: bad worker name", "POST", grant, R"({"worker": "bad name!"})", req, 400, "invalid_argument"},
      {"grant: unknown qualification", "POST", "/api/v1/requester/qualifications/nosuch/grant",
       R"({"worker": "carol"})", req, 404, "not_found"},
      {"revoke: unknown qualification", "POST", "/api/v1/requester/qualifications/nosuch/revoke",
       R"({"worker": "carol"})", req, 404, "not_found"},
      {"grant: body over 1 MiB", "POST", grant, huge, req, 413, "too_large"},
      {"grant: GET", "GET", grant, "", req, 405, "method_not_allowed"},
  };

  const DbState before = Snapshot(run);
  ASSERT_EQ(before.agents.size(), 2u);
  int tried = 0;
  for (const HttpCase& k : cases) {
    SCOPED_TRACE(k.name);
    auto r = c.Request(k.method, k.target, k.body, k.headers);
    if (!r.ok()) {  // e.g. the server closed the connection after a 413: one fresh try
      c.Close();
      r = c.Request(k.method, k.target, k.body, k.headers);
    }
    ASSERT_TRUE(r.ok()) << k.name << ": " << r.status().ToString();
    EXPECT_EQ(r->status, k.status) << k.name << ": " << r->body.substr(0, 300);
    EXPECT_NE(r->Header("content-type").find("application/json"), std::string::npos) << k.name;
    const std::string code = ErrorCode(*r);
    if (!k.code.empty()) {
      EXPECT_EQ(code, k.code) << k.name << ": " << r->body.substr(0, 300);
    }
    EXPECT_EQ(r->body.find(kRequesterToken), std::string::npos) << k.name;
    ++tried;
    auto health = c.Get("/healthz");
    if (!health.ok()) {
      c.Close();
      health = c.Get("/healthz");
    }
    ASSERT_TRUE(health.ok() && health->status == 200) << "server down after " << k.name;
  }
  std::cerr << "bad input: " << tried << " bad HTTP requests refused\n";
  EXPECT_TRUE(server.Alive());

  // Nothing changed: same agents, same statuses and data, same audit history, same units.
  const DbState after = Snapshot(run);
  EXPECT_EQ(after.agents, before.agents);
  EXPECT_EQ(after.history, before.history);
  EXPECT_EQ(after.qualifications, before.qualifications);
  EXPECT_EQ(after.units, before.units);

  // The right tokens still work: each agent's own token, the requester token.
  auto view = c.Get("/api/v1/agents/" + a_id, Bearer(a_token));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->status, 200) << view->body;
  EXPECT_EQ(json::parse(view->body)["status"], "in_task");
  auto submitted = c.Post(a_submit, good, Bearer(a_token));
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(submitted->status, 200) << submitted->body;
  auto again = c.Post(a_submit, good, Bearer(a_token));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 409) << again->body;
  auto returned = c.Post("/api/v1/agents/" + b_id + "/return", "", Bearer(b_token));
  ASSERT_TRUE(returned.ok());
  EXPECT_EQ(returned->status, 200) << returned->body;
  auto runs = c.Get("/api/v1/requester/runs", req);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->status, 200) << runs->body;
  EXPECT_EQ(json::parse(runs->body)["items"][0]["run_id"], run);
  auto granted = c.Post(grant, R"({"worker": "carol", "value": 3, "reason": "test"})", req);
  ASSERT_TRUE(granted.ok());
  EXPECT_EQ(granted->status, 200) << granted->body;
  auto shown = Run("--json qual show known-qual");
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  ASSERT_EQ(json::parse(shown.out).size(), 1u);
  EXPECT_EQ(json::parse(shown.out)[0]["worker"], "local:carol");
  EXPECT_EQ(json::parse(shown.out)[0]["value"], 3);
  auto revoked = c.Post(revoke, R"({"worker": "carol"})", req);
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->status, 200) << revoked->body;
  EXPECT_EQ(json::parse(revoked->body)["revoked"], true);

  const DbState end = Snapshot(run);
  ASSERT_EQ(end.agents.size(), 2u);
  EXPECT_NE(end.agents[0].find("completed {\"label\":\"pos\"}"), std::string::npos) << end.agents[0];
  EXPECT_NE(end.agents[1].find(" returned "), std::string::npos) << end.agents[1];
}

struct CliCase {
  std::string name;
  std::string args;
  std::string stderr_must_name;  // "" = only a non-empty message
};

TEST_F(BadInputTest, EveryCliCommandRefusesBadInputWithExitTwo) {
  // Files the cases refer to.
  Write("task.html", "<p>${text}</p>");
  Write("units.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
  Write("bad_units.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n{\"text\": oops}\n{\"text\": \"d\"}\n");
  Write("array_units.jsonl", "{\"text\": \"a\"}\n[1, 2]\n");
  Write("bad_units.csv", "text,label\n\"a\",x\n\"unterminated,y\n");
  const std::string base = "task:\n  task_name: cli-bad\n  task_title: CLI bad input\n"
                           "blueprint:\n  type: static_html\n  task_source: task.html\n";
  Write("good.yaml", base + "  data: units.jsonl\nqualifications: []\n");
  Write("bad_line.yaml", base + "  data: bad_units.jsonl\nqualifications: []\n");
  Write("array_line.yaml", base + "  data: array_units.jsonl\nqualifications: []\n");
  Write("bad_csv.yaml", base + "  data: bad_units.csv\nqualifications: []\n");
  Write("missing_data.yaml", base + "  data: nosuch.jsonl\nqualifications: []\n");
  Write("malformed.yaml", "task: [unclosed\n  task_name: x\n");
  Write("not_a_map.yaml", "- just\n- a list\n");
  Write("empty.yaml", "");
  Write("unknown_key.yaml", base + "  data: units.jsonl\n  colour: red\nqualifications: []\n");
  Write("wrong_type.yaml", base + "  data: units.jsonl\n  units_per_item: lots\nqualifications: []\n");
  Write("allow.csv", "alice\nbob,2\ncarol,notanumber\ndave\n");
  Write("allow_good.csv", "worker,value\nalice,1\nbob\n");
  Write("allow_bad_name.csv", "alice\nbad name!\n");
  const std::string unreadable = Write("unreadable.yaml", base + "  data: units.jsonl\nqualifications: []\n");
  chmod(unreadable.c_str(), 0);
  const bool root = geteuid() == 0;  // root reads mode-000 files: skip that one case

  ASSERT_EQ(Run("qual create q").exit_code, 0);
  ASSERT_EQ(Run("qual grant q zed --value 1").exit_code, 0);
  const std::string good = ShellQuote(dir_.File("good.yaml"));

  std::vector<CliCase> cases = {
      {"unknown command", "frobnicate", ""},
      {"unknown qual subcommand", "qual frobnicate", ""},
      {"unknown option", "status --colour", ""},
      {"launch without config", "launch", ""},
      {"launch missing config", "launch " + ShellQuote(dir_.File("nosuch.yaml")), "nosuch.yaml"},
      {"launch a directory", "launch " + ShellQuote(dir_.path()), dir_.path()},
      {"launch malformed YAML", "launch " + ShellQuote(dir_.File("malformed.yaml")), "malformed.yaml"},
      {"launch YAML not a map", "launch " + ShellQuote(dir_.File("not_a_map.yaml")), ""},
      {"launch empty YAML", "launch " + ShellQuote(dir_.File("empty.yaml")), ""},
      {"launch unknown key", "launch " + ShellQuote(dir_.File("unknown_key.yaml")), "colour"},
      {"launch wrong type", "launch " + ShellQuote(dir_.File("wrong_type.yaml")), "units_per_item"},
      {"launch JSONL bad line", "launch " + ShellQuote(dir_.File("bad_line.yaml")), "bad_units.jsonl:3"},
      {"launch JSONL not an object", "launch " + ShellQuote(dir_.File("array_line.yaml")), "array_units.jsonl:2"},
      {"launch CSV bad row", "launch " + ShellQuote(dir_.File("bad_csv.yaml")), "bad_units.csv:3"},
      {"launch missing data", "launch " + ShellQuote(dir_.File("missing_data.yaml")), "nosuch.jsonl"},
      {"launch bad override key", "launch " + good + " task.nosuch=1", "nosuch"},
      {"launch bad override value", "launch " + good + " blueprint.units_per_item=many", "units_per_item"},
      {"launch override not key=value", "launch " + good + " justaword", "justaword"},
      {"run missing config", "run " + ShellQuote(dir_.File("nosuch.yaml")) + " --port 0", "nosuch.yaml"},
      {"serve bad port", "serve --port 70000", ""},
      {"serve port not a number", "serve --port http", ""},
      {"qual grant unknown", "qual grant nosuch alice", "nosuch"},
      {"qual revoke unknown", "qual revoke nosuch alice", "nosuch"},
      {"qual show unknown", "qual show nosuch", "nosuch"},
      {"qual export unknown", "qual export nosuch", "nosuch"},
      {"qual history unknown", "qual history nosuch", "nosuch"},
      {"qual delete unknown", "qual delete nosuch", "nosuch"},
      {"qual import unknown", "qual import nosuch " + ShellQuote(dir_.File("allow_good.csv")), "nosuch"},
      {"qual grant bad worker", "qual grant q 'bad name!'", "bad name!"},
      {"qual grant bad value", "qual grant q alice --value many", ""},
      {"qual grant bad expiry", "qual grant q alice --expires soon", "soon"},
      {"qual export bad format", "qual export q --format xml", ""},
      {"qual import bad row", "qual import q " + ShellQuote(dir_.File("allow.csv")), "allow.csv:3"},
      {"qual import bad name row", "qual import q " + ShellQuote(dir_.File("allow_bad_name.csv")),
       "allow_bad_name.csv:2"},
      {"qual import missing file", "qual import q " + ShellQuote(dir_.File("nosuch.csv")), "nosuch.csv"},
      {"qual import a directory", "qual import q " + ShellQuote(dir_.path()), dir_.path()},
      {"qual create empty name", "qual create ''", ""},
      {"qual create name too long", "qual create " + std::string(129, 'q'), ""},
      {"qual create duplicate", "qual create q", "q"},
      {"worker show bad name", "worker show 'bad name!'", ""},
      {"worker reset-onboarding unknown qual", "worker reset-onboarding nosuch alice", "nosuch"},
      {"status unknown run", "status run_0000000000000000", "run_0000000000000000"},
      {"status invalid run", "status not-a-run", "not-a-run"},
      {"export unknown run", "export run_0000000000000000", "run_0000000000000000"},
      {"export bad format", "export run_0000000000000000 --format xml", ""},
      {"review unknown run", "review run_0000000000000000 approve --all", "run_0000000000000000"},
      {"review bad action", "review run_0000000000000000 frobnicate --all", ""},
      {"simulate bad url", "simulate ftp://127.0.0.1/runs/x --workers 1", ""},
      {"simulate https", "simulate https://127.0.0.1/runs/x --workers 1", "https"},
      {"simulate zero workers", "simulate http://127.0.0.1:1/runs/x --workers 0", ""},
      {"simulate bad profile", "simulate http://127.0.0.1:1/runs/x --profile good:lots", ""},
  };
  if (!root) cases.push_back({"launch unreadable config", "launch " + ShellQuote(unreadable), "unreadable.yaml"});

  const CommandResult quals_before = Run("--json qual show q");
  int tried = 0;
  for (const CliCase& k : cases) {
    SCOPED_TRACE(k.name);
    CommandResult r = Run(k.args);
    EXPECT_EQ(r.exit_code, 2) << k.name << ": crowdgate " << k.args << "\nstderr: " << r.err << "\nstdout: " << r.out;
    EXPECT_FALSE(r.err.empty()) << k.name;
    if (!k.stderr_must_name.empty()) {
      EXPECT_NE(r.err.find(k.stderr_must_name), std::string::npos)
          << k.name << ": stderr does not name " << k.stderr_must_name << ": " << r.err;
    }
    EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << k.name << ": " << r.err;
    ++tried;
  }
  std::cerr << "bad input: " << tried << " bad CLI invocations refused\n";

  // Nothing changed: no run was launched, the qualification and its one grant are as they were, no other
  // qualification appeared.
  CommandResult status = Run("--json status");
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(json::parse(status.out), json::array()) << status.out;
  CommandResult quals_after = Run("--json qual show q");
  EXPECT_EQ(quals_after.out, quals_before.out);
  CommandResult list = Run("--json qual list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(json::parse(list.out).size(), 1u) << list.out;
  CommandResult history = Run("--json qual history q");
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(json::parse(history.out).size(), 1u) << history.out;
  EXPECT_EQ(Run("launch " + good).exit_code, 0);  // the good config is good
}

}  // namespace
}  // namespace crowdgate::testing
