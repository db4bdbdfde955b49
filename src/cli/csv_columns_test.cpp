#include "cli/csv_columns.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "cli/aggregate_input.hpp"
#include "engine/interner.hpp"
#include "core/run_config.hpp"

namespace crowdgate::cli {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kColumns = {"item", "worker", "label"};

struct Rows {
  std::vector<std::vector<std::string>> values;
  std::vector<int64_t> lines;
};

Result<Rows> Read(std::string text) {
  CsvFile csv = CsvFile::FromText(std::move(text), "votes.csv");
  Rows rows;
  CG_RETURN_IF_ERROR(csv.ForEachRow(kColumns, [&](int64_t line, const std::string_view* f) {
    rows.values.push_back({std::string(f[0]), std::string(f[1]), std::string(f[2])});
    rows.lines.push_back(line);
    return Status::Ok();
  }));
  return rows;
}

TEST(CsvColumnsTest, ReadsColumnsByHeaderNameInAnyOrder) {
  auto r = Read("\xEF\xBB\xBFlabel,extra,worker,item\r\ncat,x,w1,a\r\n\r\ndog,y,w2,b");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->values.size(), 2u);
  EXPECT_EQ(r->values[0], (std::vector<std::string>{"a", "w1", "cat"}));
  EXPECT_EQ(r->values[1], (std::vector<std::string>{"b", "w2", "dog"}));
  EXPECT_EQ(r->lines, (std::vector<int64_t>{2, 4}));
}

TEST(CsvColumnsTest, QuotedFieldsHoldCommasQuotesAndNewlines) {
  auto r = Read("item,worker,label\n\"a,1\",w,\"say \"\"hi\"\"\"\n\"multi\nline\",w,x\nc,w,y\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->values.size(), 3u);
  EXPECT_EQ(r->values[0][0], "a,1");
  EXPECT_EQ(r->values[0][2], "say \"hi\"");
  EXPECT_EQ(r->values[1][0], "multi\nline");
  EXPECT_EQ(r->lines[2], 5);  // the quoted newline counts as a line
}

TEST(CsvColumnsTest, ErrorsNameFileLineAndColumn) {
  EXPECT_THAT(Read("").status().message(), HasSubstr("votes.csv:1: no header row"));
  EXPECT_THAT(Read("item,label\na,b\n").status().message(),
              HasSubstr("votes.csv:1: the header has no column \"worker\""));
  EXPECT_THAT(Read("item,worker,label\na,w,x\nb,w\n").status().message(),
              HasSubstr("votes.csv:3: 2 fields, expected 3"));
  EXPECT_THAT(Read("item,worker,label\na,w,x\nb,w,\n").status().message(),
              HasSubstr("votes.csv:3, column 3 (label): empty value"));
  EXPECT_THAT(Read("item,worker,label\na,\"w,x\n").status().message(),
              HasSubstr("votes.csv:2, column 2 (worker): unterminated quoted field"));
  EXPECT_THAT(Read("item,worker,label\na,\"w\"z,x\n").status().message(),
              HasSubstr("votes.csv:2, column 2 (worker): unexpected character after the closing quote"));
}

TEST(CsvColumnsTest, AnyFieldsSurviveQuotingAndReadBack) {
  rc::check([] {
    // Fields from an alphabet rich in what CSV must escape; never empty (empty values are refused).
    const auto field = rc::gen::nonEmpty(rc::gen::container<std::string>(rc::gen::elementOf(
        std::vector<char>{'a', 'b', ',', '"', '\n', '\r', ' ', 'x', '\xC3', '\xA9'})));
    const auto rows = *rc::gen::container<std::vector<std::vector<std::string>>>(
        rc::gen::container<std::vector<std::string>>(3, field));
    const bool crlf = *rc::gen::arbitrary<bool>();
    auto quote = [](const std::string& v) {
      std::string out = "\"";
      for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
      return out + "\"";
    };
    std::string text = std::string("item,worker,label") + (crlf ? "\r\n" : "\n");
    for (const auto& r : rows) text += quote(r[0]) + "," + quote(r[1]) + "," + quote(r[2]) + (crlf ? "\r\n" : "\n");
    auto back = Read(text);
    RC_ASSERT(back.ok());
    RC_ASSERT(back->values == rows);
  });
}

TEST(CsvColumnsTest, RowCallbackErrorStopsTheRead) {
  CsvFile csv = CsvFile::FromText("item,worker,label\na,w,x\nb,w,y\n", "v.csv");
  int calls = 0;
  Status s = csv.ForEachRow(kColumns, [&](int64_t, const std::string_view*) {
    ++calls;
    return Status::InvalidArgument("stop");
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.message(), "stop");
}

// ---- interning -------------------------------------------------------------------------

TEST(InternerTest, DenseIdsInOrderOfFirstAppearanceThroughGrowth) {
  std::deque<std::string> names;
  for (int i = 0; i < 5000; ++i) names.push_back((i % 2 ? "a-rather-long-item-name-" : "i") + std::to_string(i));
  Interner in;
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < names.size(); ++i) ASSERT_EQ(in.Intern(names[i]), static_cast<int32_t>(i));
  }
  EXPECT_EQ(in.size(), names.size());
  EXPECT_EQ(in.Find("i4998"), 4998);
  EXPECT_EQ(in.Find("a-rather-long-item-name-4999"), 4999);
  EXPECT_EQ(in.Find("a-rather-long-item-name-4998"), -1);
  EXPECT_EQ(in.Find(""), -1);
  EXPECT_EQ(in.name(1), "a-rather-long-item-name-1");
}

// ---- a run's export as judgments ----------------------------------------------------------

ExportRow Row(std::string kind, int64_t item, std::string worker, nlohmann::json data, std::string status = "completed") {
  ExportRow r;
  r.run_id = "r1";
  r.unit_id = item;
  r.item = item;
  r.worker = std::move(worker);
  r.agent_id = "ag-" + r.worker + "-" + std::to_string(item);
  r.kind = ParseAgentKind(kind).value();
  r.status = ParseAgentStatus(status).value();
  r.submitted_at = 1;
  r.data = std::move(data);
  return r;
}

TEST(LoadRunJudgmentsTest, TakesSubmittedUnitsAndUsesGoldsAsKnownTruths) {
  RunConfig config;
  config.blueprint.gold_items.resize(2);
  config.blueprint.gold_items[0].answer = {{"sentiment", "pos"}};
  config.blueprint.gold_items[1].answer = {{"other", "x"}};  // no answer for the field: skipped
  std::vector<ExportRow> rows = {
      Row("unit", 7, "local:a", {{"sentiment", "neg"}}),
      Row("unit", 3, "local:b", {{"sentiment", "pos"}}),
      Row("unit", 3, "local:c", {{"sentiment", "pos"}}, "rejected"),  // rejected by review
      Row("screening", 3, "local:d", {{"sentiment", "pos"}}),
      Row("gold", 0, "local:a", {{"sentiment", "neg"}}),
      Row("gold", 1, "local:b", {{"sentiment", "neg"}}),
  };
  ExportRow open = Row("unit", 9, "local:e", nullptr, "in_task");
  open.submitted_at.reset();
  rows.push_back(open);
  auto l = LoadRunJudgments(rows, config, "");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ((*l)->field, "sentiment");
  EXPECT_EQ((*l)->judgments.size(), 3u);  // two units, one gold
  ASSERT_EQ((*l)->output_items.size(), 2u);
  EXPECT_EQ((*l)->items.name((*l)->output_items[0]), "3");  // sorted by item index
  EXPECT_EQ((*l)->items.name((*l)->output_items[1]), "7");
  EXPECT_EQ((*l)->golds_used, 1);
  EXPECT_EQ((*l)->golds_skipped, 1);
  const int32_t gold_item = (*l)->items.Find("gold:0");
  ASSERT_GE(gold_item, 0);
  EXPECT_EQ((*l)->label_text[static_cast<size_t>((*l)->known[static_cast<size_t>(gold_item)])], "pos");
  EXPECT_EQ((*l)->label_json[0], "\"neg\"");
}

TEST(LoadRunJudgmentsTest, FieldErrorsNameTheFieldsAndTheUnit) {
  RunConfig config;
  std::vector<ExportRow> rows = {Row("unit", 1, "local:a", {{"x", 1}, {"y", 2}})};
  EXPECT_THAT(LoadRunJudgments(rows, config, "").status().message(), HasSubstr("several fields (x, y)"));
  EXPECT_TRUE(LoadRunJudgments(rows, config, "y").ok());
  EXPECT_THAT(LoadRunJudgments(rows, config, "z").status().message(),
              HasSubstr("unit 1 (agent ag-local:a-1): the answer has no field \"z\""));
  rows = {Row("unit", 1, "local:a", {{"x", {1, 2}}})};
  EXPECT_THAT(LoadRunJudgments(rows, config, "").status().message(), HasSubstr("is not a single label"));
}

}  // namespace
}  // namespace crowdgate::cli
