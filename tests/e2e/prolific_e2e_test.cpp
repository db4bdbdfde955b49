// A Prolific run end to end over HTTP, with the real binary and the fake Prolific server: launch creates
// the study (URL, reward, codes, allow and block groups from current grants), publish, participants land
// from Prolific and work over the page and the JSON API, go back with the right completion code, grants
// and revokes reach the groups, reviews approve / reject on Prolific, a bonus is paid exactly once even
// when the pay call's answer is slow or lost, a returned submission frees its unit, close stops the study,
// a block that lapses by its expiry is taken out of the block group by serve's expiry sweep.
// Also: launches crowdgate must refuse, and the fake going away for 30 s.
#include <regex>

#include "server/http_client.hpp"
#include "tests/e2e/prolific_e2e_support.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

constexpr const char* kReason =
    "Your answers did not follow the instructions: most labels were the same option whatever the sentence, and the "
    "attention item was missed.";

class ProlificE2eTest : public ProlificE2eFixture {
 protected:
  void SetUp() override {
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    std::string units;
    for (int i = 0; i < 7; ++i) units += "{\"text\": \"sentence " + std::to_string(i) + "\"}\n";
    Write("units.jsonl", units);
  }

  std::string Config(const std::string& provider_type, const std::string& extra = "",
                     const std::string& name = "config.yaml") {
    return Write(name,
                 "task:\n  task_name: sentiment\n  task_title: Label sentences\n  task_reward: 0.15\n"
                 "  allowed_concurrent: 1\n"
                 "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
                 "  block_qualification: blocked\n"
                 "qualifications:\n  - {qualification_name: trusted, comparator: Exists}\n"
                 "provider:\n  type: " + provider_type + "\n  prolific_places: 10\n  units_per_session: 2\n"
                 "  estimated_completion_time: 5\n" + extra);
  }

  // A participant opens the study on Prolific: their submission id and the page path on our server.
  struct Participant {
    std::string pid, session, path;
  };
  Participant Land(const std::string& study, const std::string& pid) {
    json s = fake_.Control("POST", "participants", {{"study_id", study}, {"participant_id", pid}});
    Participant p{pid, s.value("id", ""), ""};
    const std::string url = s.value("url", "");
    EXPECT_EQ(url.rfind(kPublicUrl, 0), 0u) << url;
    p.path = url.substr(std::string(kPublicUrl).size());  // the same URL on the test's server
    return p;
  }

  HttpClientResponse Get(HttpClient& c, const std::string& target) {
    auto r = c.Get(target);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpClientResponse{};
  }
  HttpClientResponse Post(HttpClient& c, const std::string& path, const json& body,
                          const std::string& token = "") {
    std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/json"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + token);
    auto r = c.Post(path, body.dump(), h);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpClientResponse{};
  }
  json Work(HttpClient& c, const std::string& run, const Participant& p, int* status = nullptr) {
    auto r = Post(c, "/api/v1/runs/" + run + "/work",
                  {{"provider", "prolific"}, {"worker", p.pid}, {"session", p.session}});
    if (status) *status = r.status;
    return json::parse(r.body, nullptr, false);
  }
  void Submit(HttpClient& c, const std::string& agent, const std::string& token) {
    auto r = Post(c, "/api/v1/agents/" + agent + "/submit", {{"data", {{"label", "pos"}}}}, token);
    EXPECT_EQ(r.status, 200) << r.body;
  }
  // One unit over the page (the agent and token the page's script posts with), submitted.
  void WorkOnPage(HttpClient& c, const Participant& p) {
    auto page = Get(c, p.path);
    ASSERT_EQ(page.status, 200) << page.body;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(page.body, m,
                                  std::regex("const CG = \\{\"agent_id\":\"([^\"]+)\",\"token\":\"([^\"]+)\"\\}")))
        << page.body;
    Submit(c, m[1], m[2]);
  }
  void WorkOverApi(HttpClient& c, const std::string& run, const Participant& p) {
    json w = Work(c, run, p);
    ASSERT_EQ(w.value("outcome", ""), "unit") << w;
    Submit(c, w["agent_id"], w["token"]);
  }
  // The code in a completion page's link.
  static std::string CodeOnPage(const std::string& body) {
    std::smatch m;
    if (!std::regex_search(body, m, std::regex("id=\"cg-complete\" href=\"https://app\\.prolific\\.com/submissions/"
                                               "complete\\?cc=([A-Z0-9]+)\""))) {
      return "";
    }
    return m[1];
  }
  // The study's completion code of a type (COMPLETED, SCREENED_OUT).
  static std::string CodeOf(const json& study, const std::string& type) {
    for (const auto& c : study["completion_codes"]) {
      if (c["code_type"] == type) return c["code"];
    }
    return "";
  }
  // The participant group a study filter names ("participant_group_allowlist" / "..._blocklist"); "" if none.
  static std::string GroupOf(const json& study, const std::string& filter_id) {
    for (const auto& f : study["filters"]) {
      if (f["filter_id"] == filter_id) return f["selected_values"][0];
    }
    return "";
  }
  // The calls to the fake matching a method and a path fragment.
  std::vector<json> CallsTo(const std::string& method, const std::string& path_part) {
    std::vector<json> out;
    for (const auto& c : fake_.Calls()) {
      if (c["method"] == method && c["path"].get<std::string>().find(path_part) != std::string::npos) out.push_back(c);
    }
    return out;
  }
  // Bonus payments made for a participant on the fake (each pay call pays every entry of its set-up).
  int PaymentsFor(const std::string& pid) {
    int n = 0;
    const json state = fake_.State();
    for (const auto& p : state["payments"]) n += p["participant_id"] == pid;
    return n;
  }
};

TEST_F(ProlificE2eTest, LaunchWorkReviewAndClose) {
  Must("qual create trusted");
  Must("qual create blocked");
  for (const char* w : {"A", "B", "C", "D", "F", "G", "H"}) Must(std::string("qual grant trusted prolific:") + w);
  Must("qual grant blocked prolific:D");
  Must("qual grant trusted local:alice");  // not a Prolific worker: in no group

  // ---- launch: the draft study ----
  const std::string run = MustJson("launch " + ShellQuote(Config("prolific", "  public_url: https://tasks.example.org\n")))["run_id"];
  json state = fake_.State();
  ASSERT_EQ(state["studies"].size(), 1u) << state;
  const json study = state["studies"].begin().value();
  const std::string study_id = study["id"];
  EXPECT_EQ(study["status"], "UNPUBLISHED");
  EXPECT_EQ(study["external_study_url"], std::string(kPublicUrl) + "/runs/" + run +
                                             "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
                                             "&SESSION_ID={{%SESSION_ID%}}");
  EXPECT_EQ(study["reward"], 30);  // 0.15 x 2 units, in cents
  EXPECT_EQ(study["total_available_places"], 10);
  const std::string completed = CodeOf(study, "COMPLETED");
  const std::string screened_out = CodeOf(study, "SCREENED_OUT");
  ASSERT_FALSE(completed.empty()) << study;
  ASSERT_FALSE(screened_out.empty()) << study;
  EXPECT_NE(completed, screened_out);
  const std::string allow_group = GroupOf(study, "participant_group_allowlist");
  const std::string block_group = GroupOf(study, "participant_group_blocklist");
  ASSERT_FALSE(allow_group.empty()) << study;
  ASSERT_FALSE(block_group.empty()) << study;
  EXPECT_EQ(Members(allow_group), (std::set<std::string>{"A", "B", "C", "D", "F", "G", "H"}));
  EXPECT_EQ(Members(block_group), (std::set<std::string>{"D"}));

  // ---- publish ----
  Must("provider publish " + run);
  EXPECT_EQ(fake_.State()["studies"][study_id]["status"], "ACTIVE");

  auto server = Serve();
  HttpClient c("127.0.0.1", server->port());

  // ---- A works two units (page, then API), then goes back with the COMPLETED code ----
  const Participant a = Land(study_id, "A");
  EXPECT_EQ(a.path, "/runs/" + run + "?PROLIFIC_PID=A&STUDY_ID=" + study_id + "&SESSION_ID=" + a.session);
  WorkOnPage(c, a);
  WorkOverApi(c, run, a);
  auto done_page = Get(c, a.path);
  EXPECT_EQ(done_page.status, 200);
  EXPECT_EQ(CodeOnPage(done_page.body), completed) << done_page.body;
  json done_api = Work(c, run, a);
  EXPECT_EQ(done_api.value("completion_url", ""), "https://app.prolific.com/submissions/complete?cc=" + completed)
      << done_api;

  // ---- who is not an active submission of the study gets 401 ----
  const Participant b = Land(study_id, "B");
  for (const std::string& target :
       {"/runs/" + run + "?PROLIFIC_PID=NOBODY&STUDY_ID=" + study_id + "&SESSION_ID=madeup",
        "/runs/" + run + "?PROLIFIC_PID=NOBODY&STUDY_ID=" + study_id + "&SESSION_ID=" + a.session,
        "/runs/" + run + "?PROLIFIC_PID=B&STUDY_ID=" + study_id + "&SESSION_ID=" + a.session,
        "/runs/" + run + "?PROLIFIC_PID=B&STUDY_ID=" + study_id}) {
    auto r = Get(c, target);
    EXPECT_EQ(r.status, 401) << target << "\n" << r.body;
    EXPECT_EQ(r.body.find("cg-form"), std::string::npos) << r.body;
  }
  int status = 0;
  Work(c, run, {"NOBODY", "madeup", ""}, &status);
  EXPECT_EQ(status, 401);
  Work(c, run, {"B", a.session, ""}, &status);
  EXPECT_EQ(status, 401);

  // ---- a block granted mid-run: B is refused with the SCREENED_OUT code and joins the block group ----
  Must("qual grant blocked prolific:B --reason spam");
  auto refused = Get(c, b.path);
  EXPECT_EQ(refused.status, 200) << refused.body;
  EXPECT_EQ(CodeOnPage(refused.body), screened_out) << refused.body;
  EXPECT_EQ(refused.body.find(completed), std::string::npos);
  json refused_api = Work(c, run, b);
  EXPECT_EQ(refused_api.value("completion_url", ""), "https://app.prolific.com/submissions/complete?cc=" + screened_out)
      << refused_api;

  // ---- C and F work their sessions ----
  const Participant cp = Land(study_id, "C");
  WorkOverApi(c, run, cp);
  WorkOnPage(c, cp);
  const Participant f = Land(study_id, "F");
  WorkOverApi(c, run, f);
  WorkOverApi(c, run, f);

  // ---- a revoke leaves the allow group; --no-sync sends nothing ----
  Must("qual revoke trusted prolific:C --reason done");
  Must("qual create extra");
  Must("qual grant blocked prolific:E --no-sync");
  ASSERT_TRUE(WaitOutboxEmpty(30));
  EXPECT_EQ(Members(block_group), (std::set<std::string>{"B", "D"}));
  EXPECT_EQ(Members(allow_group), (std::set<std::string>{"A", "B", "D", "F", "G", "H"}));
  for (const auto& call : fake_.Calls()) EXPECT_EQ(call.dump().find("\"E\""), std::string::npos) << call;

  // ---- participants go back to Prolific with the code ----
  for (const Participant* p : {&a, &cp, &f}) {
    fake_.Control("POST", "submissions/" + p->session + "/complete", {{"code", completed}});
  }

  // ---- approve with a bonus: the pay call answers after the client's timeout ----
  fake_.Configure({{"slow_paths", {{"/pay/", 2.5}}}});
  Must("review " + run + " approve --worker prolific:A --bonus 0.5");
  ASSERT_TRUE(WaitOutboxEmpty(40)) << OutboxCounts();
  EXPECT_EQ(fake_.State()["submissions"][a.session]["status"], "APPROVED");
  EXPECT_EQ(PaymentsFor("A"), 1);
  EXPECT_EQ(CallsTo("POST", "/pay/").size(), 1u);  // looked at the submission, never paid again
  // The same review again (a retried command) owes Prolific nothing more: no second approval, no
  // second bonus.
  const json after_first = OutboxCounts();
  Must("review " + run + " approve --worker prolific:A --bonus 0.5");
  EXPECT_EQ(OutboxCounts(), after_first);
  EXPECT_EQ(PaymentsFor("A"), 1);

  // ---- the same when the pay call's answer is lost ----
  fake_.Configure({{"slow_paths", json::object()}, {"drop_paths", {"/pay/"}}});
  Must("review " + run + " approve --worker prolific:C --bonus 0.5");
  ASSERT_TRUE(WaitOutboxEmpty(40)) << OutboxCounts();
  EXPECT_EQ(fake_.State()["submissions"][cp.session]["status"], "APPROVED");
  EXPECT_EQ(PaymentsFor("C"), 1);
  EXPECT_EQ(CallsTo("POST", "/pay/").size(), 2u);
  fake_.Configure({{"drop_paths", json::array()}});
  const json setups = fake_.State()["bonus_setups"];
  for (const auto& s : setups) EXPECT_LE(s["times_paid"].get<int>(), 1) << s;

  // ---- reject: a short reason is refused before anything changes ----
  const json before = OutboxCounts();
  CommandResult short_reason = RunP("review " + run + " reject --worker prolific:F --reason 'too short'");
  EXPECT_EQ(short_reason.exit_code, 2) << short_reason.err;
  EXPECT_NE(short_reason.err.find("100"), std::string::npos) << short_reason.err;
  EXPECT_EQ(OutboxCounts(), before);
  EXPECT_EQ(fake_.State()["submissions"][f.session]["status"], "AWAITING REVIEW");
  Must("review " + run + " reject --worker prolific:F --reason " + ShellQuote(kReason) + " --category LOW_EFFORT");
  ASSERT_TRUE(WaitOutboxEmpty(30)) << OutboxCounts();
  EXPECT_EQ(fake_.State()["submissions"][f.session]["status"], "REJECTED");
  auto rejects = CallsTo("POST", "/submissions/" + f.session + "/transition/");
  ASSERT_FALSE(rejects.empty());
  EXPECT_EQ(rejects.back()["body"]["action"], "REJECT");
  EXPECT_EQ(rejects.back()["body"]["rejection_category"], "LOW_EFFORT");
  EXPECT_EQ(rejects.back()["body"]["message"], kReason);

  // ---- a returned submission gives its unit back ----
  const Participant g = Land(study_id, "G");
  json held = Work(c, run, g);
  ASSERT_EQ(held.value("outcome", ""), "unit") << held;  // the last unit
  const Participant h = Land(study_id, "H");
  EXPECT_NE(Work(c, run, h).value("outcome", ""), "unit");
  fake_.Control("POST", "submissions/" + g.session + "/status", {{"status", "RETURNED"}});
  json freed = json::object();
  for (int i = 0; i < 50 && freed.value("outcome", "") != "unit"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    freed = Work(c, run, h);
  }
  EXPECT_EQ(freed.value("outcome", ""), "unit") << freed;
  Work(c, run, g, &status);
  EXPECT_EQ(status, 401);  // the returned session has no more work

  // ---- close stops the study ----
  Must("close " + run);
  EXPECT_EQ(fake_.State()["studies"][study_id]["status"], "COMPLETED");
  EXPECT_TRUE(fake_.Violations().empty()) << fake_.Violations().dump(2);
  server->Stop();
}

TEST_F(ProlificE2eTest, RefusedLaunchesStoreNothing) {
  Must("qual create trusted");
  Must("qual create blocked");
  CommandResult mturk = RunP("launch " + ShellQuote(Config("mturk", "", "mturk.yaml")));
  EXPECT_EQ(mturk.exit_code, 2) << mturk.err;
  EXPECT_NE(mturk.err.find("closed"), std::string::npos) << mturk.err;
  EXPECT_NE(mturk.err.find("2026-09-30"), std::string::npos) << mturk.err;

  const std::string config = Config("prolific", "", "prolific.yaml");  // no public_url
  CommandResult no_url = RunP("launch " + ShellQuote(config));
  EXPECT_EQ(no_url.exit_code, 2) << no_url.err;
  EXPECT_NE(no_url.err.find("--public-url"), std::string::npos) << no_url.err;

  CommandResult no_token = RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " launch " + ShellQuote(config) +
                                                  " --public-url https://tasks.example.org",
                                        "env -u PROLIFIC_API_TOKEN CROWDGATE_PROLIFIC_URL=" + fake_.base_url());
  EXPECT_EQ(no_token.exit_code, 2) << no_token.err;
  EXPECT_NE(no_token.err.find("PROLIFIC_API_TOKEN"), std::string::npos) << no_token.err;

  EXPECT_EQ(MustJson("status").size(), 0u);
  EXPECT_TRUE(fake_.Calls().empty());
  EXPECT_EQ(OutboxCounts()["pending"], 0);
}

// A block with an expiry: the participant joins the run's block-list group while it holds, and once it
// lapses the expiry sweep (every second here) revokes it and the fake receives exactly that removal.
TEST_F(ProlificE2eTest, AnExpiredBlockLeavesTheBlockGroup) {
  Must("qual create trusted");
  Must("qual create blocked");
  const std::string run = MustJson("launch " + ShellQuote(Config("prolific")) + " --public-url " + kPublicUrl)["run_id"];
  Must("provider publish " + run);
  const json study = fake_.State()["studies"].begin().value();
  const std::string block_group = GroupOf(study, "participant_group_blocklist");
  ASSERT_FALSE(block_group.empty()) << study;

  // A bad sweep interval is refused before anything starts.
  for (const char* bad : {"0", "-5", "abc", "1.5", "86401"}) {
    CommandResult r = RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " serve --port 0",
                                   "timeout 30 " + EnvPrefix() + "CROWDGATE_GRANT_SWEEP_SECONDS=" + ShellQuote(bad));
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("CROWDGATE_GRANT_SWEEP_SECONDS"), std::string::npos) << r.err;
  }

  const std::string token = "expiry-test-token";
  std::vector<std::string> env = Env();
  env.push_back("CROWDGATE_GRANT_SWEEP_SECONDS=1");
  env.push_back("CROWDGATE_REQUESTER_TOKEN=" + token);
  ServerProcess server(dir_, db_, env, "server-stderr.txt",
                       {"--public-url", kPublicUrl, "--provider-poll-ms", "200"});
  ASSERT_NE(server.port(), 0);

  Must("qual grant blocked prolific:KEEP --reason spam");  // no expiry: stays blocked
  const double granted_wall =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto granted = std::chrono::steady_clock::now();
  constexpr int kExpirySeconds = 8;
  Must("qual grant blocked prolific:EXP1 --expires " + std::to_string(kExpirySeconds) + "s --reason 'cool off'");

  // While the block holds, EXP1 is in the block group (the removal below must not be the grant's own
  // row delivered after the expiry).
  bool joined = false;
  while (!joined && std::chrono::steady_clock::now() - granted < std::chrono::seconds(kExpirySeconds - 1)) {
    joined = Members(block_group) == std::set<std::string>{"KEEP", "EXP1"};
    if (!joined) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(joined) << "EXP1 did not join the block group before the block lapsed: " << fake_.State()["groups"];

  // After the expiry and a sweep, the fake receives the removal.
  bool removed = false;
  for (int i = 0; i < 300 && !removed; ++i) {  // up to 30 s
    removed = Members(block_group) == std::set<std::string>{"KEEP"};
    if (!removed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(removed) << fake_.State()["groups"] << "\n" << server.StderrText();
  EXPECT_GE(std::chrono::steady_clock::now() - granted, std::chrono::seconds(kExpirySeconds));

  // Exactly one removal from the block group, of EXP1, after the add and after the expiry; none of KEEP.
  const std::string members_path = "/api/v1/participant-groups/" + block_group + "/participants/";
  std::vector<json> adds, deletes;
  for (const auto& c : fake_.Calls()) {
    if (c["path"] != members_path) continue;
    if (c["method"] == "POST" && c["body"]["participant_ids"] == json::array({"EXP1"})) adds.push_back(c);
    if (c["method"] == "DELETE") deletes.push_back(c);
  }
  ASSERT_EQ(adds.size(), 1u) << fake_.Calls();
  ASSERT_EQ(deletes.size(), 1u) << fake_.Calls();
  EXPECT_EQ(deletes[0]["body"], json({{"participant_ids", {"EXP1"}}}));
  EXPECT_EQ(deletes[0]["status"], 200) << deletes[0];
  EXPECT_GT(deletes[0]["time"].get<double>(), adds[0]["time"].get<double>());
  EXPECT_GE(deletes[0]["time"].get<double>(), granted_wall + kExpirySeconds - 1) << "removed before the expiry";

  // The audit log says what happened; the grant is gone from the store.
  const json history = MustJson("qual history blocked --worker prolific:EXP1");
  ASSERT_EQ(history.size(), 2u) << history;
  EXPECT_EQ(history[1]["kind"], "revoke");
  EXPECT_EQ(history[1]["actor"], "crowdgate:expiry");
  EXPECT_EQ(history[1]["reason"], "expired");
  EXPECT_EQ(history[1]["old_value"], 1);
  EXPECT_EQ(MustJson("qual history blocked --worker prolific:KEEP").size(), 1u);
  EXPECT_TRUE(MustJson("worker show prolific:EXP1")["grants"].empty());

  // One line in the log, and the counter.
  EXPECT_NE(server.StderrText().find("grant expiry sweep revoked 1 expired grant\n"), std::string::npos)
      << server.StderrText();
  HttpClient c("127.0.0.1", server.port());
  auto metrics = c.Get("/metrics", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  EXPECT_NE(metrics->body.find("\ncrowdgate_grants_expired_total 1\n"), std::string::npos) << metrics->body;
  EXPECT_TRUE(fake_.Violations().empty()) << fake_.Violations().dump(2);
  server.Stop();
}

// The fake goes away for 30 s: grants made meanwhile wait in the outbox (provider status shows them
// with the error) and all reach the groups once it is back.
TEST_F(ProlificE2eTest, FakeDownThirtySecondsLosesNothing) {
  Must("qual create trusted");
  Must("qual create blocked");
  Must("qual grant trusted prolific:A");
  const std::string run = MustJson("launch " + ShellQuote(Config("prolific")) + " --public-url " + kPublicUrl)["run_id"];
  Must("provider publish " + run);
  const json study = fake_.State()["studies"].begin().value();
  const std::string block_group = GroupOf(study, "participant_group_blocklist");
  auto server = Serve(500);
  // What was queued before (A's grant) is delivered first: a slow build must not count it below.
  ASSERT_TRUE(WaitOutboxEmpty(30)) << OutboxCounts();
  fake_.Configure({{"down_for_s", 30}});
  const auto down_at = std::chrono::steady_clock::now();
  std::set<std::string> blocked;
  for (int i = 0; i < 20; ++i) {
    const std::string w = "P" + std::to_string(i);
    Must("qual grant blocked prolific:" + w);
    blocked.insert(w);
  }
  Must("qual revoke blocked prolific:P3");
  blocked.erase("P3");
  // While it is down: the backlog shows, with the error.
  json status;
  for (int i = 0; i < 50; ++i) {
    status = MustJson("provider status");
    if (status["counts"]["retrying"].get<int>() > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GT(status["counts"]["retrying"].get<int>(), 0) << status;
  EXPECT_EQ(status["counts"]["pending"].get<int>() + status["counts"]["retrying"].get<int>(), 21) << status;
  bool error_shown = false;
  for (const auto& r : status["rows"]) error_shown = error_shown || !r["last_error"].get<std::string>().empty();
  EXPECT_TRUE(error_shown) << status;
  CommandResult text = Must("provider status");
  EXPECT_NE(text.out.find("retrying"), std::string::npos) << text.out;
  EXPECT_LT(std::chrono::steady_clock::now() - down_at, std::chrono::seconds(30)) << "the checks took too long";

  ASSERT_TRUE(WaitOutboxEmpty(80)) << OutboxCounts();
  EXPECT_EQ(Members(block_group), blocked);
  EXPECT_EQ(OutboxCounts()["failed"], 0);
  EXPECT_TRUE(fake_.Violations().empty()) << fake_.Violations().dump(2);
  server->Stop();
}

}  // namespace
}  // namespace crowdgate::testing
