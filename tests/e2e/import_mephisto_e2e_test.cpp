// `crowdgate import-mephisto` as a user moving from Mephisto runs it: Mephisto databases
// of both schema versions are built here from the SQL in tests/data/mephisto, imported by
// the real binary, and read back with `qual show` / `worker show` / `qual history`.
#include <sqlite3.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A connection to a Mephisto database, as Mephisto (or a test playing it) holds one.
class MephistoDb {
 public:
  explicit MephistoDb(const std::string& path) { EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK); }
  ~MephistoDb() { sqlite3_close(db_); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
  }

 private:
  sqlite3* db_ = nullptr;
};

class ImportMephistoTest : public CrowdgateFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  // Builds a Mephisto database of the given schema ("before_2024" | "after_2024") with data.sql.
  std::string MakeMephisto(const std::string& schema, const std::string& name = "database.db") {
    const std::string path = dir_.File(name);
    MephistoDb m(path);
    m.Exec(ReadFile("tests/data/mephisto/schema_" + schema + ".sql"));
    m.Exec(ReadFile("tests/data/mephisto/data.sql"));
    return path;
  }
  json Import(const std::string& args) {
    auto r = Run("--json import-mephisto " + args);
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    return json::parse(r.out, nullptr, false);
  }
  // qualification -> {worker -> value}, for every qualification in crowdgate.
  std::map<std::string, std::map<std::string, int64_t>> AllGrants() {
    std::map<std::string, std::map<std::string, int64_t>> out;
    auto list = Run("--json qual list");
    EXPECT_EQ(list.exit_code, 0) << list.err;
    for (const auto& q : json::parse(list.out)) {
      const std::string name = q["name"];
      auto show = Run("--json qual show " + ShellQuote(name));
      auto& grants = out[name];
      for (const auto& g : json::parse(show.out)) grants[g["worker"]] = g["value"];
    }
    return out;
  }
  size_t HistoryLength() { return json::parse(Run("--json qual history").out).size(); }
  // Launches a static_html run of two items with `blueprint` lines appended; returns the run id.
  std::string LaunchRun(const std::string& blueprint) {
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    Write("units.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
    const std::string config =
        Write("config.yaml", "task:\n  task_name: moved\n  task_title: Moved from Mephisto\n"
                             "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n" +
                                 blueprint +
                                 // The test names workers in the request body instead of signing links.
                                 "provider:\n  type: local\n  trust_worker_param: true\n");
    auto launched = Run("launch " + ShellQuote(config));
    EXPECT_EQ(launched.exit_code, 0) << launched.err;
    std::string run = launched.out;
    while (!run.empty() && run.back() == '\n') run.pop_back();
    return run.substr(run.rfind('\n') == std::string::npos ? 0 : run.rfind('\n') + 1);
  }
  json Work(HttpClient& c, const std::string& run, const std::string& worker) {
    auto r = c.Request("POST", "/api/v1/runs/" + run + "/work", json{{"provider", "local"}, {"worker", worker}}.dump());
    EXPECT_TRUE(r.ok());
    return r.ok() ? json::parse(r->body, nullptr, false) : json();
  }
};

const std::map<std::string, std::map<std::string, int64_t>> kExpected = {
    {"sentiment-block", {{"mturk:A1B2C3D4E5", 1}}},
    {"sentiment-onboarding",
     {{"prolific:5f3a9c0e1d2b4a6f7e8d9c0b", 1}, {"mturk_sandbox:AXSANDBOX1", 1}, {"local:alice", 1}, {"local:bob", 0}}},
    {"sentiment-onboarding-failed", {{"local:bob", 0}}},
    {"gold-correct-golds", {{"prolific:5f3a9c0e1d2b4a6f7e8d9c0b", 3}}},
    {"gold-wrong-golds", {{"prolific:5f3a9c0e1d2b4a6f7e8d9c0b", 0}, {"local:carol", 2}}},
    {"gold-completed-count", {{"prolific:5f3a9c0e1d2b4a6f7e8d9c0b", 41}}},
    {"english-level", {{"mturk:A1B2C3D4E5", 85}, {"local:alice", -2}}},
};

TEST_P(ImportMephistoTest, EveryGrantArrivesWithItsValueAndProvider) {
  const std::string mephisto = MakeMephisto(GetParam());
  json r = Import(ShellQuote(mephisto));
  EXPECT_EQ(r["mephisto_schema"], GetParam() == "after_2024" ? "after_2024_qualification_migration"
                                                             : "before_2024_qualification_migration");
  EXPECT_EQ(r["qualifications"], json({{"new", 7}, {"changed", 0}, {"unchanged", 0}, {"refused", 0}}));
  EXPECT_EQ(r["workers"], json({{"new", 7}, {"changed", 0}, {"unchanged", 0}, {"refused", 1}}));
  EXPECT_EQ(r["grants"], json({{"new", 12}, {"changed", 0}, {"unchanged", 0}, {"refused", 2}, {"revoked", 0}}));
  EXPECT_EQ(AllGrants(), kExpected);
  // A worker with no grant still comes over; the audit log says where grants came from.
  EXPECT_EQ(Run("worker show prolific:nograntsyet").exit_code, 0);
  for (const auto& e : json::parse(Run("--json qual history").out)) EXPECT_EQ(e["reason"], "imported from Mephisto");
  // The human summary says which schema it found.
  auto text = Run("import-mephisto --dry-run " + ShellQuote(mephisto));
  EXPECT_NE(text.out.find(GetParam() == "after_2024" ? "after Mephisto's 2024" : "before Mephisto's 2024"),
            std::string::npos)
      << text.out;
}

TEST_P(ImportMephistoTest, BadWorkerNameIsReportedByName) {
  const std::string mephisto = MakeMephisto(GetParam());
  json r = Import(ShellQuote(mephisto));
  ASSERT_EQ(r["refused"].size(), 1u) << r.dump();
  EXPECT_EQ(r["refused"][0]["kind"], "worker");
  EXPECT_EQ(r["refused"][0]["name"], "has space_sandbox");
  EXPECT_NE(r["refused"][0]["reason"].get<std::string>().find("2 grant(s) not imported"), std::string::npos);
  auto text = Run("import-mephisto " + ShellQuote(mephisto));
  EXPECT_NE(text.out.find("refused worker 'has space_sandbox'"), std::string::npos) << text.out;
}

TEST_P(ImportMephistoTest, CollidingAndUnknownProviderWorkersAreReported) {
  const std::string mephisto = MakeMephisto(GetParam());
  {
    MephistoDb m(mephisto);
    // mock carol_sandbox would be local:carol, which inhouse carol already is.
    m.Exec("INSERT INTO workers (worker_id, worker_name, provider_type) VALUES (109, 'carol_sandbox', 'mock'),"
           " (110, 'T-1', 'toloka');"
           "INSERT INTO granted_qualifications (worker_id, qualification_id, value) VALUES (109, 1, 1), (110, 1, 1);");
  }
  json r = Import(ShellQuote(mephisto));
  EXPECT_EQ(r["workers"]["refused"], 3);
  EXPECT_EQ(r["grants"]["refused"], 4);
  std::map<std::string, std::string> reasons;
  for (const auto& f : r["refused"]) reasons[f["name"]] = f["reason"];
  EXPECT_NE(reasons["carol_sandbox"].find("local:carol"), std::string::npos) << r.dump();
  EXPECT_NE(reasons["T-1"].find("toloka"), std::string::npos) << r.dump();
  EXPECT_EQ(AllGrants()["sentiment-block"].count("local:carol"), 0u);  // carol's own grants are hers alone
}

TEST_P(ImportMephistoTest, RerunChangesNothing) {
  const std::string mephisto = MakeMephisto(GetParam());
  Import(ShellQuote(mephisto));
  const size_t history = HistoryLength();
  json again = Import(ShellQuote(mephisto));
  EXPECT_EQ(again["grants"], json({{"new", 0}, {"changed", 0}, {"unchanged", 12}, {"refused", 2}, {"revoked", 0}}));
  EXPECT_EQ(again["qualifications"]["unchanged"], 7);
  EXPECT_EQ(again["workers"]["unchanged"], 7);
  EXPECT_EQ(HistoryLength(), history);
  EXPECT_EQ(AllGrants(), kExpected);
}

TEST_P(ImportMephistoTest, ChangeInMephistoArrivesAndMirrorRevokes) {
  const std::string mephisto = MakeMephisto(GetParam());
  Import(ShellQuote(mephisto));
  {
    MephistoDb m(mephisto);
    m.Exec("UPDATE granted_qualifications SET value = 90 WHERE worker_id = 101 AND qualification_id = 7;"
           "INSERT INTO granted_qualifications (worker_id, qualification_id, value) VALUES (108, 1, 1);"
           "DELETE FROM granted_qualifications WHERE worker_id = 106 AND qualification_id = 5;");
  }
  json r = Import(ShellQuote(mephisto));
  EXPECT_EQ(r["grants"], json({{"new", 1}, {"changed", 1}, {"unchanged", 10}, {"refused", 2}, {"revoked", 0}}));
  auto grants = AllGrants();
  EXPECT_EQ(grants["english-level"]["mturk:A1B2C3D4E5"], 90);
  EXPECT_EQ(grants["sentiment-block"]["prolific:nograntsyet"], 1);
  EXPECT_EQ(grants["gold-wrong-golds"].count("local:carol"), 1u);  // kept without --mirror

  json dry = Import("--mirror --dry-run " + ShellQuote(mephisto));
  EXPECT_EQ(dry["grants"]["revoked"], 1);
  EXPECT_EQ(AllGrants()["gold-wrong-golds"].count("local:carol"), 1u);  // dry run wrote nothing

  json mirrored = Import("--mirror " + ShellQuote(mephisto));
  EXPECT_EQ(mirrored["grants"]["revoked"], 1);
  EXPECT_EQ(AllGrants()["gold-wrong-golds"].count("local:carol"), 0u);
  auto history = json::parse(Run("--json qual history gold-wrong-golds --worker local:carol").out);
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history.back()["kind"], "revoke");
  // A grant made in crowdgate on a qualification Mephisto does not have is never touched.
  ASSERT_EQ(Run("qual create crowdgate-only").exit_code, 0);
  ASSERT_EQ(Run("qual grant crowdgate-only dave").exit_code, 0);
  Import("--mirror " + ShellQuote(mephisto));
  EXPECT_EQ(AllGrants()["crowdgate-only"].count("local:dave"), 1u);
}

TEST_P(ImportMephistoTest, DryRunChangesNothing) {
  const std::string mephisto = MakeMephisto(GetParam());
  json r = Import("--dry-run " + ShellQuote(mephisto));
  EXPECT_EQ(r["dry_run"], true);
  EXPECT_EQ(r["grants"]["new"], 12);
  EXPECT_EQ(r["qualifications"]["new"], 7);
  EXPECT_TRUE(AllGrants().empty());
  EXPECT_EQ(HistoryLength(), 0u);
  EXPECT_NE(Run("worker show prolific:nograntsyet").exit_code, 0);
}

TEST_P(ImportMephistoTest, MephistoFileIsByteIdenticalAfterwards) {
  const std::string mephisto = MakeMephisto(GetParam());
  const std::string before = ReadFile(mephisto);
  Import(ShellQuote(mephisto));
  Import("--mirror " + ShellQuote(mephisto));
  EXPECT_EQ(ReadFile(mephisto), before);
  EXPECT_FALSE(std::ifstream(mephisto + "-journal").good());
  EXPECT_FALSE(std::ifstream(mephisto + "-wal").good());
}

TEST_P(ImportMephistoTest, ImportsWhileMephistoHoldsAWriteTransaction) {
  const std::string mephisto = MakeMephisto(GetParam());
  MephistoDb writer(mephisto);
  writer.Exec("BEGIN IMMEDIATE;"
              "INSERT INTO granted_qualifications (worker_id, qualification_id, value) VALUES (108, 7, 5);");
  json r = Import(ShellQuote(mephisto));
  EXPECT_EQ(r["grants"]["new"], 12);  // the last committed state, not the open transaction
  EXPECT_EQ(AllGrants(), kExpected);
  writer.Exec("COMMIT;");
  json after = Import(ShellQuote(mephisto));
  EXPECT_EQ(after["grants"]["new"], 1);
}

TEST_P(ImportMephistoTest, GrantWithANonIntegerValueIsReported) {
  const std::string mephisto = MakeMephisto(GetParam());
  {
    MephistoDb m(mephisto);
    m.Exec("INSERT INTO granted_qualifications (worker_id, qualification_id, value) VALUES (108, 7, 'fluent');");
  }
  json r = Import(ShellQuote(mephisto));
  EXPECT_EQ(r["grants"]["refused"], 3);
  bool found = false;
  for (const auto& f : r["refused"]) {
    found = found || (f["kind"] == "grant" && f["name"] == "english-level/prolific:nograntsyet" &&
                      f["reason"].get<std::string>().find("'fluent'") != std::string::npos);
  }
  EXPECT_TRUE(found) << r.dump();
}

TEST_P(ImportMephistoTest, OnboardingFailuresStillRefuseTheWorker) {
  Import(ShellQuote(MakeMephisto(GetParam())));
  Write("answer.json", "{\"label\": \"x\"}");
  const std::string run = LaunchRun(
      "  onboarding_qualification: sentiment-onboarding\n  onboarding_data: {text: \"warm up\"}\n"
      "  onboarding_answer: answer.json\n  block_qualification: sentiment-block\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  // bob failed onboarding in Mephisto (sentiment-onboarding-failed, value 0): refused here too.
  json bob = Work(c, run, "bob");
  EXPECT_EQ(bob["outcome"], "not_qualified") << bob.dump();
  EXPECT_EQ(bob["reason"], "onboarding_failed") << bob.dump();
  // alice passed it in Mephisto: no second onboarding, straight to a unit.
  EXPECT_EQ(Work(c, run, "alice")["outcome"], "unit");
  // A worker never seen in Mephisto onboards.
  EXPECT_EQ(Work(c, run, "erin")["outcome"], "onboarding");
}

TEST_P(ImportMephistoTest, GoldCountersCarryOver) {
  Import(ShellQuote(MakeMephisto(GetParam())));
  Write("golds.jsonl", "{\"inputs\": {\"text\": \"g\"}, \"answer\": {\"label\": \"x\"}}\n");
  const std::string run = LaunchRun(
      "  use_golds: true\n  gold_qualification_base: gold\n  gold_file: golds.jsonl\n  max_gold_units: 10\n"
      "  max_incorrect_golds: 1\n");
  ServerProcess server(dir_, db_);
  HttpClient c("127.0.0.1", server.port());
  // carol has gold-wrong-golds = 2 from Mephisto: over max_incorrect_golds, disqualified at her first request.
  json carol = Work(c, run, "carol");
  EXPECT_EQ(carol["outcome"], "not_qualified") << carol.dump();
  EXPECT_EQ(carol["reason"], "gold_disqualified") << carol.dump();
  EXPECT_EQ(AllGrants()["gold-disqualified"].count("local:carol"), 1u);
  EXPECT_EQ(Work(c, run, "dave")["outcome"], "unit");  // a newcomer gets work (a gold, which looks like a unit)
}

INSTANTIATE_TEST_SUITE_P(Schemas, ImportMephistoTest, ::testing::Values("before_2024", "after_2024"));

class NotMephistoTest : public CrowdgateFixture {};

TEST_F(NotMephistoTest, FileThatIsNotAMephistoDatabaseExits2NamingWhatIsMissing) {
  const std::string other = dir_.File("other.db");
  {
    MephistoDb m(other);
    m.Exec("CREATE TABLE qualifications (qualification_id INTEGER PRIMARY KEY, qualification_name TEXT);"
           "CREATE TABLE workers (worker_id INTEGER PRIMARY KEY, worker_name TEXT, provider_type TEXT);");
  }
  auto r = Run("import-mephisto " + ShellQuote(other));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("granted_qualifications"), std::string::npos) << r.err;

  const std::string columns = dir_.File("columns.db");
  {
    MephistoDb m(columns);
    m.Exec("CREATE TABLE qualifications (qualification_id INTEGER PRIMARY KEY, name TEXT);");
  }
  r = Run("import-mephisto " + ShellQuote(columns));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("qualification_name"), std::string::npos) << r.err;

  r = Run("import-mephisto " + ShellQuote(Write("notes.txt", "this is not a database at all, just some text\n")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not an SQLite database"), std::string::npos) << r.err;

  r = Run("import-mephisto " + ShellQuote(dir_.File("missing.db")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.db"), std::string::npos) << r.err;
  EXPECT_FALSE(std::ifstream(dir_.File("missing.db")).good());  // never created
}

}  // namespace
}  // namespace crowdgate::testing
