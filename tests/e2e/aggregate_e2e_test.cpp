// `crowdgate aggregate` as a user runs it: on CSV files (every method, both output formats,
// --workers, --gold, the --json summary, --out) and on a run whose units were labelled over
// HTTP, golds included; bad input exits 2 with a message naming the file, line and column.
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::vector<json> JsonLines(const std::string& text) {
  std::vector<json> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) out.push_back(json::parse(text.substr(start, end - start)));
    start = end + 1;
  }
  return out;
}

class AggregateE2eTest : public CrowdgateFixture {
 protected:
  // Items a, b, c. a: 2 x cat vs 1 dog; b: a tie, dog seen first; c: one label.
  std::string Votes() {
    return Write("votes.csv",
                 "item,worker,label\n"
                 "a,w1,cat\n"
                 "a,w2,cat\n"
                 "a,w3,dog\n"
                 "b,w3,dog\n"
                 "b,w1,cat\n"
                 "c,w2,\"bird, small\"\n");
  }
};

TEST_F(AggregateE2eTest, MajorityRowsWithTiesToTheLabelSeenFirst) {
  CommandResult r = Run("aggregate --input " + ShellQuote(Votes()) + " --method majority");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<json> rows = JsonLines(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[0], json::parse(R"({"item": "a", "label": "cat", "confidence": 0.666667, "labels": 3})"));
  EXPECT_EQ(rows[1], json::parse(R"({"item": "b", "label": "dog", "confidence": 0.5, "labels": 2})"));
  EXPECT_EQ(rows[2], json::parse(R"({"item": "c", "label": "bird, small", "confidence": 1, "labels": 1})"));
  EXPECT_THAT(r.err, HasSubstr("aggregated 3 items (6 judgments, 3 workers, 3 labels) with majority"));
}

TEST_F(AggregateE2eTest, EveryMethodLabelsEveryItem) {
  const std::string votes = Votes();
  for (const char* method : {"majority", "dawid-skene", "wawa"}) {
    CommandResult r = Run("aggregate --input " + ShellQuote(votes) + " --method " + method);
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    const std::vector<json> rows = JsonLines(r.out);
    ASSERT_EQ(rows.size(), 3u) << method;
    EXPECT_EQ(rows[0]["label"], "cat") << method;
    for (const json& row : rows) {
      EXPECT_GT(row["confidence"].get<double>(), 0.0);
      EXPECT_LE(row["confidence"].get<double>(), 1.0);
    }
  }
  // The default is Dawid-Skene.
  EXPECT_THAT(Run("aggregate --input " + ShellQuote(votes)).err, HasSubstr("with dawid-skene: converged after"));
}

TEST_F(AggregateE2eTest, CsvFormatWorkersGoldAndJsonSummary) {
  const std::string votes = Votes();
  CommandResult csv = Run("aggregate --input " + ShellQuote(votes) + " --method majority --format csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out, "item,label,confidence,labels\na,cat,0.666667,3\nb,dog,0.5,2\nc,\"bird, small\",1,1\n");

  CommandResult workers = Run("aggregate --input " + ShellQuote(votes) + " --method majority --workers");
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  const std::vector<json> w = JsonLines(workers.out);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], json::parse(R"({"worker": "w1", "accuracy": 0.5, "labels": 2})"));  // agrees on a, not on b
  EXPECT_EQ(w[2], json::parse(R"({"worker": "w3", "accuracy": 0.5, "labels": 2})"));

  // Gold says a=cat, b=cat, z (never labelled).
  const std::string gold = Write("gold.csv", "item,label\na,cat\nb,cat\nz,dog\n");
  CommandResult text = Run("aggregate --input " + ShellQuote(votes) + " --method majority --gold " + ShellQuote(gold));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.err, HasSubstr("accuracy against " + gold + ": 0.5000 (1 of 2 items; 1 gold items not in the data)"));

  const std::string out = dir_.File("labels.jsonl");
  CommandResult summary = Run("--json aggregate --input " + ShellQuote(votes) + " --method majority --gold " +
                              ShellQuote(gold) + " --out " + ShellQuote(out));
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  const json s = json::parse(summary.out);
  EXPECT_EQ(s["method"], "majority");
  EXPECT_EQ(s["judgments"], 6);
  EXPECT_EQ(s["items"], 3);
  EXPECT_EQ(s["workers"], 3);
  EXPECT_EQ(s["gold"], json::parse(R"({"items": 2, "correct": 1, "accuracy": 0.5, "missing": 1})"));
  EXPECT_EQ(JsonLines(Slurp(out)).size(), 3u);
}

TEST_F(AggregateE2eTest, BadInputExitsTwoNamingFileLineAndColumn) {
  const std::string votes = Votes();
  struct Case {
    std::string args;
    std::string message;
  };
  const std::string missing = dir_.File("missing.csv");
  const std::string no_label = Write("no_label.csv", "item,worker\na,w1\n");
  const std::string short_row = Write("short.csv", "item,worker,label\na,w1,cat\nb,w2\n");
  const std::string empty = Write("empty.csv", "item,worker,label\na,w1,cat\nb,,dog\n");
  const std::string quote = Write("quote.csv", "item,worker,label\na,w1,\"cat\n");
  const std::string dup_gold = Write("dup_gold.csv", "item,label\na,cat\na,dog\n");
  const std::vector<Case> cases = {
      {"aggregate --input " + ShellQuote(missing), missing + ": cannot read the file"},
      {"aggregate --input " + ShellQuote(no_label), no_label + ":1: the header has no column \"label\""},
      {"aggregate --input " + ShellQuote(short_row), short_row + ":3: 2 fields, expected 3"},
      {"aggregate --input " + ShellQuote(empty), empty + ":3, column 2 (worker): empty value"},
      {"aggregate --input " + ShellQuote(quote), quote + ":2, column 3 (label): unterminated quoted field"},
      {"aggregate --input " + ShellQuote(votes) + " --gold " + ShellQuote(dup_gold),
       dup_gold + ":3: item \"a\" appears twice"},
      {"aggregate", "give a RUN or --input FILE.csv"},
      {"aggregate run_0000000000000000 --input " + ShellQuote(votes), "give a RUN or --input FILE.csv"},
      {"aggregate --input " + ShellQuote(votes) + " --field label", "--field applies to a RUN"},
      {"aggregate --input " + ShellQuote(votes) + " --method mean", "--method"},
      {"aggregate --input " + ShellQuote(votes) + " --format xml", "--format"},
  };
  for (const Case& c : cases) {
    CommandResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
}

TEST_F(AggregateE2eTest, RunLabelsFromHttpSubmissionsWithGoldsAsKnownTruths) {
  std::string units;
  for (int i = 0; i < 3; ++i) units += json{{"text", "item " + std::to_string(i)}}.dump() + "\n";
  Write("units.jsonl", units);
  Write("golds.jsonl", json{{"inputs", {{"text", "gold 0"}}}, {"answer", {{"label", "pos"}}}}.dump() + "\n");
  Write("task.html", "<p>${text}</p><input name=\"label\">");
  const std::string config = Write(
      "config.yaml",
      "task:\n  task_name: agg\n  task_title: Aggregate\n"
      "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n  units_per_item: 3\n"
      "  use_golds: true\n  gold_qualification_base: agg-gold\n  gold_file: golds.jsonl\n  max_incorrect_golds: 5\n"
      "  max_gold_units: 30\n"
      "qualifications: []\nprovider:\n  type: local\n  trust_worker_param: true\n");
  CommandResult launched = Run("--json launch " + ShellQuote(config));
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  const std::string run = json::parse(launched.out)["run_id"];

  // The truth: item 0 pos, item 1 neg, item 2 pos; alice and bob answer it, carol answers the
  // gold right (or she would get nothing but golds) and every real item wrong.
  auto answer = [](const std::string& worker, const std::string& text) {
    if (text == "gold 0") return "pos";
    const bool pos = text == "item 0" || text == "item 2";
    return (worker == "carol") == pos ? "neg" : "pos";
  };
  {
    ServerProcess server(dir_, db_);
    HttpClient c("127.0.0.1", server.port());
    for (const std::string worker : {"alice", "bob", "carol"}) {
      for (int k = 0; k < 10; ++k) {
        auto w = c.Request("POST", "/api/v1/runs/" + run + "/work", json{{"worker", worker}}.dump(), {});
        ASSERT_TRUE(w.ok());
        const json work = json::parse(w->body);
        if (work["outcome"] != "unit") break;
        auto s = c.Request("POST", "/api/v1/agents/" + work["agent_id"].get<std::string>() + "/submit",
                           json{{"data", {{"label", answer(worker, work["data"]["text"])}}}}.dump(),
                           {{"Authorization", "Bearer " + work["token"].get<std::string>()}});
        ASSERT_TRUE(s.ok());
        ASSERT_EQ(s->status, 200) << s->body;
      }
    }
  }

  CommandResult r = Run("aggregate " + run + " --method majority");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<json> rows = JsonLines(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;  // the real items only, by item index
  EXPECT_EQ(rows[0], json::parse(R"({"item": 0, "label": "pos", "confidence": 0.666667, "labels": 3})"));
  EXPECT_EQ(rows[1], json::parse(R"({"item": 1, "label": "neg", "confidence": 0.666667, "labels": 3})"));
  EXPECT_EQ(rows[2]["label"], "pos");

  CommandResult ds = Run("--json aggregate " + run + " --out " + ShellQuote(dir_.File("ds.jsonl")));
  ASSERT_EQ(ds.exit_code, 0) << ds.err;
  const json s = json::parse(ds.out);
  EXPECT_EQ(s["field"], "label");
  EXPECT_EQ(s["items"], 3);
  EXPECT_GE(s["golds_used"].get<int>(), 3);  // each worker answered the gold at least once
  EXPECT_EQ(s["golds_skipped"], 0);
  for (const json& row : JsonLines(Slurp(dir_.File("ds.jsonl")))) EXPECT_TRUE(row["item"].is_number());

  // Per worker: carol, who disagreed on every real item, is estimated below alice and bob.
  CommandResult workers = Run("aggregate " + run + " --workers");
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  std::map<std::string, double> accuracy;
  for (const json& w : JsonLines(workers.out)) accuracy[w["worker"]] = w["accuracy"];
  ASSERT_EQ(accuracy.size(), 3u) << workers.out;
  EXPECT_LT(accuracy["local:carol"], accuracy["local:alice"]);
  EXPECT_LT(accuracy["local:carol"], accuracy["local:bob"]);

  CommandResult unknown = Run("aggregate run_0000000000000000");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, HasSubstr("run_0000000000000000"));
  CommandResult bad_field = Run("aggregate " + run + " --field sentiment");
  EXPECT_EQ(bad_field.exit_code, 2);
  EXPECT_THAT(bad_field.err, HasSubstr("the answer has no field \"sentiment\""));
}

}  // namespace
}  // namespace crowdgate::testing
