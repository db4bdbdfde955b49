// Quality rules against a served run, driven by `crowdgate simulate` with the worker profiles
// the rules exist for: an instant answerer is banned by fast_submissions, a contrarian by
// majority_agreement, a returner by returned_units; honest workers are left alone, and each
// firing is in the block qualification's history with the rule and its figures, once, even
// when the server is killed (-9) between the units that make a rule cross its line.
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class QualityRulesE2eTest : public CrowdgateFixture {
 protected:
  // Launches 12 items x 3 with `rules`; returns the run id.
  std::string LaunchRun(const std::string& rules) {
    const char* labels[] = {"pos", "neg", "neu"};
    std::string units, truth;
    for (int i = 0; i < 12; ++i) {
      const json inputs = {{"text", "item " + std::to_string(i)}};
      units += inputs.dump() + "\n";
      truth += json{{"inputs", inputs}, {"answer", {{"label", labels[i % 3]}}}}.dump() + "\n";
    }
    Write("units.jsonl", units);
    Write("truth.jsonl", truth);
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    const std::string config =
        Write("config.yaml",
              "task:\n  task_name: rules\n"
              "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n  units_per_item: 3\n"
              "  block_qualification: rules-blocked\n"
              "quality_rules: " + rules + "\nprovider:\n  type: local\n  trust_worker_param: true\n");
    CommandResult launched = Run("--json launch " + ShellQuote(config));
    EXPECT_EQ(launched.exit_code, 0) << launched.err;
    if (launched.exit_code != 0) return "";
    run_ = json::parse(launched.out)["run_id"];
    return run_;
  }

  // Runs `simulate` against the server on `port` with `args`; the per-worker JSON by worker name.
  std::map<std::string, json> Sim(int port, const std::string& args) {
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/runs/" + run_;
    CommandResult sim =
        RunCrowdgate(dir_, "--json simulate " + url + " --answers " + ShellQuote(dir_.File("truth.jsonl")) + " " + args);
    EXPECT_EQ(sim.exit_code, 0) << sim.err << sim.out;
    std::map<std::string, json> out;
    if (sim.exit_code != 0) return out;
    const json report = json::parse(sim.out);
    for (const json& w : report["workers"]) out[w["worker"].get<std::string>()] = w;
    return out;
  }

  // Launches, serves and simulates.
  std::map<std::string, json> Simulate(const std::string& rules, const std::string& args) {
    if (LaunchRun(rules).empty()) return {};
    ServerProcess server(dir_, db_);
    return Sim(server.port(), args);
  }

  // The block qualification's audit history, as the CLI prints it.
  std::string History() {
    CommandResult h = Run("qual history rules-blocked");
    EXPECT_EQ(h.exit_code, 0) << h.err;
    return h.out;
  }

  std::string run_;
};

TEST_F(QualityRulesE2eTest, InstantAnswererIsBannedForADay) {
  auto workers = Simulate("[{rule: fast_submissions, min_seconds: 0.3, count: 3, window: 5, action: {block: 1d}}]",
                          "--workers 3 --threads 3 --profile good:1,good:1,instant:1 --think-ms 400");
  ASSERT_EQ(workers.size(), 3u);
  const json& instant = workers["local:instant-003"];
  EXPECT_EQ(instant["ended"], "not_qualified");
  EXPECT_EQ(instant["reason"], "blocked");
  EXPECT_EQ(instant["units"], 3);  // banned on the third instant unit
  EXPECT_EQ(workers["local:good-001"]["ended"], "no_work");
  EXPECT_EQ(workers["local:good-002"]["ended"], "no_work");
  const std::string history = History();
  EXPECT_THAT(history, HasSubstr("fast_submissions: 3 of the last 3 units under 0.3 s; blocked for 1d"));
  EXPECT_THAT(history, HasSubstr("local:instant-003"));
  EXPECT_THAT(history, ::testing::Not(HasSubstr("local:good-")));
}

TEST_F(QualityRulesE2eTest, ContrarianIsDisqualifiedByMajorityAgreement) {
  // One connection: each round the two good workers label an item before the contrarian does.
  auto workers =
      Simulate("[{rule: majority_agreement, min_agreement: 0.5, window: 5, min_overlap: 3, action: disqualify}]",
               "--workers 3 --threads 1 --profile good:1,good:1,contrarian:1");
  ASSERT_EQ(workers.size(), 3u);
  EXPECT_EQ(workers["local:contrarian-003"]["reason"], "blocked");
  EXPECT_EQ(workers["local:contrarian-003"]["units"], 3);
  EXPECT_EQ(workers["local:good-001"]["ended"], "no_work");
  EXPECT_EQ(workers["local:good-002"]["ended"], "no_work");
  const std::string history = History();
  EXPECT_THAT(history,
              HasSubstr("majority_agreement: agreement 0.00 over the last 3 overlapping units, below 0.5; disqualified"));
  EXPECT_THAT(history, ::testing::Not(HasSubstr("local:good-")));
}

TEST_F(QualityRulesE2eTest, ReturnerIsBannedByReturnedUnits) {
  auto workers = Simulate("[{rule: returned_units, count: 3, window: 5, action: {block: 12h}}]",
                          "--workers 2 --threads 2 --profile good:1,returner:1");
  ASSERT_EQ(workers.size(), 2u);
  const json& returner = workers["local:returner-002"];
  EXPECT_EQ(returner["reason"], "blocked");
  EXPECT_GE(returner["returns"].get<int>(), 3);
  EXPECT_EQ(workers["local:good-001"]["ended"], "no_work");
  EXPECT_THAT(History(), HasSubstr("units returned or expired; blocked for 12h"));
}

TEST_F(QualityRulesE2eTest, AKilledServerNeitherForgetsNorRepeatsAFiring) {
  ASSERT_FALSE(LaunchRun("[{rule: fast_submissions, min_seconds: 0.3, count: 3, window: 5, action: {block: 1d}}]")
                   .empty());
  const std::string args = "--workers 1 --profile instant:1 --max-units 2";
  {
    ServerProcess server(dir_, db_);
    EXPECT_EQ(Sim(server.port(), args)["local:instant-001"]["units"], 2);  // two fast units: no firing yet
    server.Kill();
  }
  {
    ServerProcess server(dir_, db_, {}, "server2-stderr.txt");
    auto w = Sim(server.port(), args)["local:instant-001"];
    EXPECT_EQ(w["units"], 1);  // the third fast unit, counted across the crash, bans the worker
    EXPECT_EQ(w["reason"], "blocked");
    server.Kill();
  }
  {
    ServerProcess server(dir_, db_, {}, "server3-stderr.txt");
    auto w = Sim(server.port(), args)["local:instant-001"];
    EXPECT_EQ(w["units"], 0);
    EXPECT_EQ(w["reason"], "blocked");
  }
  const std::string history = History();
  size_t firings = 0;
  for (size_t at = history.find("fast_submissions:"); at != std::string::npos;
       at = history.find("fast_submissions:", at + 1)) {
    ++firings;
  }
  EXPECT_EQ(firings, 1u) << history;
  EXPECT_THAT(history, HasSubstr("fast_submissions: 3 of the last 3 units under 0.3 s; blocked for 1d"));
}

TEST_F(QualityRulesE2eTest, ConfigErrorsNameTheKeyAndExitTwo) {
  Write("units.jsonl", "{\"text\": \"a\"}\n");
  const std::string config = Write("config.yaml",
                                   "task:\n  task_name: rules\nblueprint:\n  type: json\n  data: units.jsonl\n"
                                   "quality_rules:\n  - {rule: fast_submissions, min_seconds: 3, count: 3, window: 10, "
                                   "action: {block: 1d}}\n");
  CommandResult r = Run("launch " + ShellQuote(config));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("quality_rules[0].action: block grants the run's block qualification, but "
                               "blueprint.block_qualification is not set"));
}

}  // namespace
}  // namespace crowdgate::testing
