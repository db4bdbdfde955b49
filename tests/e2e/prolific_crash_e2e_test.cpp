// kill -9 of `serve` while its outbox drains thousands of grant changes and a few bonuses to the fake
// Prolific server, with the pay call answering slowly so the kill lands while a payment is in flight.
// After a restart and an empty outbox: the block group on the fake equals crowdgate's grants, every
// submission is approved, and every bonus was paid exactly once.
#include <fstream>

#include "server/http_client.hpp"
#include "tests/e2e/prolific_e2e_support.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

class ProlificCrashTest : public ProlificE2eFixture {};

TEST_F(ProlificCrashTest, KillDuringDrainDeliversEverythingOnce) {
  timeout_ms_ = 10000;
  Write("task.html", "<p>${text}</p><input name=\"label\">");
  std::string units;
  for (int i = 0; i < 6; ++i) units += "{\"text\": \"s" + std::to_string(i) + "\"}\n";
  Write("units.jsonl", units);
  const std::string config = Write(
      "config.yaml",
      "task:\n  task_name: crash\n  task_title: Crash\n  task_reward: 0.1\n"
      "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
      "  block_qualification: blocked\n"
      "qualifications: []\n"
      "provider:\n  type: prolific\n  public_url: https://tasks.example.org\n  prolific_places: 10\n"
      "  units_per_session: 1\n  publish: true\n");
  Must("qual create blocked");
  const std::string run = MustJson("launch " + ShellQuote(config))["run_id"];
  const json study = fake_.State()["studies"].begin().value();
  ASSERT_EQ(study["status"], "ACTIVE");
  std::string block_group, completed;
  for (const auto& f : study["filters"]) {
    if (f["filter_id"] == "participant_group_blocklist") block_group = f["selected_values"][0];
  }
  for (const auto& c : study["completion_codes"]) {
    if (c["code_type"] == "COMPLETED") completed = c["code"];
  }

  // Four participants each do their unit and go back to Prolific.
  const std::vector<std::string> pids = {"P0", "P1", "P2", "P3"};
  std::map<std::string, std::string> session_of;
  {
    auto server = Serve();
    HttpClient c("127.0.0.1", server->port());
    for (const std::string& pid : pids) {
      json s = fake_.Control("POST", "participants", {{"study_id", study["id"]}, {"participant_id", pid}});
      session_of[pid] = s["id"];
      auto w = c.Post("/api/v1/runs/" + run + "/work",
                      json{{"provider", "prolific"}, {"worker", pid}, {"session", s["id"]}}.dump(),
                      {{"Content-Type", "application/json"}});
      ASSERT_TRUE(w.ok());
      json work = json::parse(w->body);
      ASSERT_EQ(work["outcome"], "unit") << work;
      auto sub = c.Post("/api/v1/agents/" + work["agent_id"].get<std::string>() + "/submit",
                        json{{"data", {{"label", "x"}}}}.dump(),
                        {{"Content-Type", "application/json"},
                         {"Authorization", "Bearer " + work["token"].get<std::string>()}});
      ASSERT_TRUE(sub.ok());
      ASSERT_EQ(sub->status, 200) << sub->body;
      fake_.Control("POST", "submissions/" + s["id"].get<std::string>() + "/complete", {{"code", completed}});
    }
    server->Stop();
  }

  // The queue: approvals and bonuses first, then thousands of grant changes.
  Must("review " + run + " approve --all --bonus 0.5");
  constexpr int kWorkers = 1500;
  std::string csv;
  for (int i = 0; i < kWorkers; ++i) csv += "prolific:W" + std::to_string(i) + "\n";
  const std::string file = Write("blocked.csv", csv);
  Must("qual import blocked " + ShellQuote(file));
  Must("qual import blocked " + ShellQuote(file) + " --value 2");
  std::set<std::string> expected;
  for (int i = 0; i < kWorkers; ++i) expected.insert("W" + std::to_string(i));
  for (int i = 0; i < kWorkers; i += 25) {  // 60 revokes
    Must("qual revoke blocked prolific:W" + std::to_string(i));
    expected.erase("W" + std::to_string(i));
  }
  const json queued = OutboxCounts();
  EXPECT_GE(queued["pending"].get<int>(), 3000) << queued;

  // Every pay call takes effect at once and answers 2 s later; kill -9 while the first is in flight.
  fake_.Configure({{"slow_paths", {{"/pay/", 2.0}}}});
  {
    auto server = Serve(200, "server-1-stderr.txt");
    bool paying = false;
    for (int i = 0; i < 600 && !paying; ++i) {
      for (const auto& c : fake_.Calls()) paying = paying || c["path"].get<std::string>().find("/pay/") != std::string::npos;
      if (!paying) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(paying) << "no pay call within 12 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    server->Kill();
  }
  const json at_kill = OutboxCounts();
  EXPECT_GT(at_kill["pending"].get<int>() + at_kill["retrying"].get<int>(), 0) << "the kill came after the drain";

  // Restart: the killed drainer's claims lapse (60 s lease), then everything is delivered.
  auto server = Serve(200, "server-2-stderr.txt");
  ASSERT_TRUE(WaitOutboxEmpty(110)) << OutboxCounts() << RunP("provider status").out;
  server->Stop();
  const json counts = OutboxCounts();
  EXPECT_EQ(counts["failed"], 0) << RunP("provider status").out;

  EXPECT_EQ(Members(block_group), expected);
  const json state = fake_.State();
  for (const std::string& pid : pids) {
    EXPECT_EQ(state["submissions"][session_of[pid]]["status"], "APPROVED") << pid;
    int paid = 0;
    for (const auto& p : state["payments"]) paid += p["participant_id"] == pid;
    EXPECT_EQ(paid, 1) << pid;
  }
  for (const auto& [id, setup] : state["bonus_setups"].items()) EXPECT_LE(setup["times_paid"].get<int>(), 1) << setup;
  EXPECT_EQ(state["payments"].size(), pids.size());
  EXPECT_TRUE(fake_.Violations().empty()) << fake_.Violations().dump(2);
}

}  // namespace
}  // namespace crowdgate::testing
