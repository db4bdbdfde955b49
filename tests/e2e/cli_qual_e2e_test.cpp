// The `qual` and `worker` commands as a user runs them: real binary, real database file,
// exit codes 0/1/2, human and --json output.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/run_command.hpp"

namespace crowdgate::testing {
namespace {

class CliQualTest : public CrowdgateFixture {
 protected:
  CommandResult RunJson(const std::string& args) {
    return RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " --json " + args);
  }
};

TEST_F(CliQualTest, CreateGrantShowAsJson) {
  ASSERT_EQ(Run("qual create english --description 'English level'").exit_code, 0);
  auto g = Run("qual grant english alice --value 85 --reason test");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_NE(g.out.find("local:alice"), std::string::npos);
  auto show = RunJson("qual show english");
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = nlohmann::json::parse(show.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["worker"], "local:alice");
  EXPECT_EQ(j[0]["value"], 85);
  EXPECT_TRUE(j[0]["granted_at"].is_string());
  EXPECT_TRUE(j[0]["expires_at"].is_null());
}

TEST_F(CliQualTest, ExitCodes) {
  EXPECT_EQ(Run("qual frobnicate").exit_code, 2);                 // unknown command
  EXPECT_EQ(Run("qual grant").exit_code, 2);                      // missing arguments
  auto unknown = Run("qual grant nosuchqual alice");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("nosuchqual"), std::string::npos) << unknown.err;
  ASSERT_EQ(Run("qual create q").exit_code, 0);
  EXPECT_EQ(Run("qual create q").exit_code, 2);                   // duplicate
  EXPECT_EQ(Run("qual grant q 'bad name'").exit_code, 2);         // invalid worker
  EXPECT_EQ(Run("qual grant q alice --value notanumber").exit_code, 2);
  EXPECT_EQ(Run("qual grant q alice --expires yesterday").exit_code, 2);
  EXPECT_EQ(RunCrowdgate(dir_, "--db /nonexistent/dir/x.db qual list").exit_code != 0, true);
  EXPECT_EQ(Run("--help").exit_code, 0);
}

TEST_F(CliQualTest, DatabaseFromEnvironment) {
  ASSERT_EQ(RunCrowdgate(dir_, "qual create fromenv", "CROWDGATE_DB=" + ShellQuote(db_)).exit_code, 0);
  auto list = RunJson("qual list");
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(list.out)[0]["name"], "fromenv");
}

TEST_F(CliQualTest, ImportBadRowImportsNothingAndNamesTheLine) {
  ASSERT_EQ(Run("qual create blocklist").exit_code, 0);
  const std::string csv = dir_.File("block.csv");
  std::ofstream(csv) << "worker,value\nalice,1\nbob,2\ncarol,oops\n";
  auto bad = Run("qual import blocklist " + ShellQuote(csv));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(":4:"), std::string::npos) << bad.err;
  EXPECT_EQ(nlohmann::json::parse(RunJson("qual show blocklist").out).size(), 0u);
  std::ofstream(csv) << "alice\nmturk:A2B\nbob,2\n";
  auto good = RunJson("qual import blocklist " + ShellQuote(csv));
  ASSERT_EQ(good.exit_code, 0) << good.err;
  EXPECT_EQ(nlohmann::json::parse(good.out)["rows"], 3);
  auto exported = Run("qual export blocklist --format csv");
  EXPECT_NE(exported.out.find("mturk:A2B,1"), std::string::npos) << exported.out;
  EXPECT_NE(exported.out.find("local:bob,2"), std::string::npos);
}

TEST_F(CliQualTest, RevokeHistoryAndWorkerShow) {
  ASSERT_EQ(Run("qual create vip").exit_code, 0);
  ASSERT_EQ(Run("qual grant vip mturk:A9 --value 2 --expires 30d").exit_code, 0);
  auto worker = RunJson("worker show mturk:A9");
  ASSERT_EQ(worker.exit_code, 0) << worker.err;
  auto w = nlohmann::json::parse(worker.out);
  EXPECT_EQ(w["worker"], "mturk:A9");
  EXPECT_EQ(w["grants"][0]["qualification"], "vip");
  EXPECT_TRUE(w["grants"][0]["expires_at"].is_string());
  ASSERT_EQ(Run("qual revoke vip mturk:A9 --reason done").exit_code, 0);
  auto history = RunJson("qual history vip");
  ASSERT_EQ(history.exit_code, 0);
  auto h = nlohmann::json::parse(history.out);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["kind"], "grant");
  EXPECT_EQ(h[1]["kind"], "revoke");
  EXPECT_EQ(h[1]["reason"], "done");
  EXPECT_EQ(Run("worker show nobody").exit_code, 2);
}

// SQL is never built from input: a qualification name full of SQL is just a name.
TEST_F(CliQualTest, SqlInNamesIsJustText) {
  const std::string evil = "x'); DROP TABLE grants; --";
  ASSERT_EQ(Run("qual create " + ShellQuote(evil)).exit_code, 0);
  ASSERT_EQ(Run("qual create safe").exit_code, 0);
  ASSERT_EQ(Run("qual grant safe alice").exit_code, 0);
  auto g = Run("qual grant " + ShellQuote(evil) + " bob --value 3 --reason " + ShellQuote("'; DELETE FROM audit; --"));
  ASSERT_EQ(g.exit_code, 0) << g.err;
  auto shown = nlohmann::json::parse(RunJson("qual show " + ShellQuote(evil)).out);
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0]["worker"], "local:bob");
  EXPECT_EQ(nlohmann::json::parse(RunJson("qual show safe").out).size(), 1u);  // other grants intact
  auto history = nlohmann::json::parse(RunJson("qual history").out);
  EXPECT_EQ(history.size(), 2u);  // the audit log is intact too
  EXPECT_EQ(history[1]["reason"], "'; DELETE FROM audit; --");
}

// The main job: `crowdgate demo` runs the example over HTTP and reports what quality control did.
TEST_F(CliQualTest, DemoRunsTheExampleAndReports) {
  auto demo = RunCrowdgate(dir_, "demo --demo-db " + ShellQuote(dir_.File("demo.db")));
  ASSERT_EQ(demo.exit_code, 0) << demo.err << demo.out;
  EXPECT_NE(demo.out.find(" 0 errors"), std::string::npos) << demo.out;
  EXPECT_NE(demo.out.find("\"reason\":\"blocked\""), std::string::npos) << demo.out;  // the block list works
  EXPECT_NE(demo.out.find("What quality control did, per worker"), std::string::npos);
  EXPECT_NE(demo.out.find("without disqualified workers"), std::string::npos);
  EXPECT_NE(demo.out.find("Units: completed=900"), std::string::npos) << demo.out;  // every unit was done
  // The instant answerers are banned for a day by the example's fast_submissions rule, and the
  // report puts the aggregated (Dawid-Skene) accuracy beside the raw one.
  EXPECT_NE(demo.out.find("local:instant-"), std::string::npos) << demo.out;
  // Both instant answerers are banned, and no one else: the demo's fast clock makes the others'
  // 60 ms look like 6 s.
  size_t bans = 0;
  for (size_t at = demo.out.find("fast_submissions, blocked for 1d"); at != std::string::npos;
       at = demo.out.find("fast_submissions, blocked for 1d", at + 1)) {
    ++bans;
  }
  EXPECT_EQ(bans, 2u) << demo.out;
  EXPECT_NE(demo.out.find("RAW ACCURACY  ITEMS  AGGREGATED ACCURACY"), std::string::npos) << demo.out;
  // It ends with where to see the run; stdout is not a terminal here, so it stopped serving at once.
  EXPECT_NE(demo.out.find("Dashboard: http://127.0.0.1:"), std::string::npos) << demo.out;
  EXPECT_NE(demo.out.find("/dashboard/#/run/run_"), std::string::npos) << demo.out;
  EXPECT_NE(demo.out.find("serving stopped"), std::string::npos) << demo.out;
}

}  // namespace
}  // namespace crowdgate::testing
