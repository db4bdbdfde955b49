#include "core/data_reader.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crowdgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;

class DataReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (std::filesystem::temp_directory_path() / "cg_reader_XXXXXX").string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  struct Row {
    int64_t line;
    json obj;
  };
  Status ReadAll(Status (*reader)(const std::string&, const JsonRecordFn&), const std::string& path,
                 std::vector<Row>* rows) {
    return reader(path, [rows](int64_t line, json obj) {
      rows->push_back({line, std::move(obj)});
      return Status::Ok();
    });
  }

  std::string dir_;
};

// ---- JSONL ----------------------------------------------------------------------------

TEST_F(DataReaderTest, JsonlReadsObjectsWithLineNumbersSkippingBlankLines) {
  std::string path = Write("u.jsonl", "{\"a\":1}\n\n   \n{\"a\":2}\r\n{\"a\":3}");
  std::vector<Row> rows;
  ASSERT_TRUE(ReadAll(ReadJsonl, path, &rows).ok());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].line, 1);
  EXPECT_EQ(rows[1].line, 4);
  EXPECT_EQ(rows[2].line, 5);  // last line without a newline
  EXPECT_EQ(rows[2].obj["a"], 3);
}

TEST_F(DataReaderTest, JsonlIgnoresUtf8Bom) {
  std::string path = Write("u.jsonl", "\xEF\xBB\xBF{\"a\":1}\n");
  std::vector<Row> rows;
  ASSERT_TRUE(ReadAll(ReadJsonl, path, &rows).ok());
  ASSERT_EQ(rows.size(), 1u);
}

TEST_F(DataReaderTest, JsonlBadLineNamesFileAndLine) {
  std::string path = Write("units.jsonl", "{\"a\":1}\n{\"a\":2}\n\n{\"a\": nope}\n{\"a\":5}\n");
  std::vector<Row> rows;
  Status s = ReadAll(ReadJsonl, path, &rows);
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_THAT(s.message(), StartsWith(path + ":4: expected a JSON object: "));
  EXPECT_THAT(s.message(), HasSubstr("parse error at column"));
  EXPECT_THAT(s.message(), Not(HasSubstr("[json.exception")));
  EXPECT_EQ(rows.size(), 2u);  // stops at the bad line
}

TEST_F(DataReaderTest, JsonlNonObjectLineIsRefused) {
  std::string path = Write("units.jsonl", "{\"a\":1}\n[1,2]\n");
  std::vector<Row> rows;
  Status s = ReadAll(ReadJsonl, path, &rows);
  EXPECT_EQ(s.message(), path + ":2: expected a JSON object, got a list");
}

TEST_F(DataReaderTest, JsonlTrailingGarbageIsRefused) {
  std::string path = Write("units.jsonl", "{\"a\":1} {\"b\":2}\n");
  std::vector<Row> rows;
  Status s = ReadAll(ReadJsonl, path, &rows);
  EXPECT_THAT(s.message(), StartsWith(path + ":1: expected a JSON object: "));
}

TEST_F(DataReaderTest, CallbackErrorGetsFileAndLineAndStops) {
  std::string path = Write("units.jsonl", "{}\n{}\n{}\n");
  int calls = 0;
  Status s = ReadJsonl(path, [&](int64_t line, json) {
    ++calls;
    return line == 2 ? Status::Conflict("duplicate item") : Status::Ok();
  });
  EXPECT_TRUE(s.IsConflict());
  EXPECT_EQ(s.message(), path + ":2: duplicate item");
  EXPECT_EQ(calls, 2);
}

TEST_F(DataReaderTest, CallbackExceptionDoesNotEscape) {
  std::string path = Write("units.jsonl", "{\"a\":1}\n");
  Status s = ReadJsonl(path, [](int64_t, json obj) {
    (void)obj.at("missing");  // throws
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), Status::Code::kInternal);
}

TEST_F(DataReaderTest, MissingFileNamesPathAndReason) {
  std::string path = dir_ + "/nope.jsonl";
  Status s = ReadJsonl(path, [](int64_t, json) { return Status::Ok(); });
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_THAT(s.message(), HasSubstr("No such file"));
}

TEST_F(DataReaderTest, DirectoryIsRefused) {
  Status s = ReadJsonl(dir_, [](int64_t, json) { return Status::Ok(); });
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_THAT(s.message(), HasSubstr(dir_));
}

TEST_F(DataReaderTest, JsonlLinesAcrossChunkBoundariesAndLongLines) {
  std::string content;
  const int kLines = 30'000;  // about 1.4 MB: crosses the 1 MiB read chunk
  for (int i = 0; i < kLines; ++i) content += "{\"i\":" + std::to_string(i) + ",\"text\":\"some words here\"}\n";
  std::string long_text(3 << 20, 'x');  // longer than a read chunk
  content += "{\"long\":\"" + long_text + "\"}\n";
  std::string path = Write("big.jsonl", content);
  int64_t n = 0;
  bool in_order = true;
  size_t long_size = 0;
  Status s = ReadJsonl(path, [&](int64_t line, json obj) {
    if (obj.contains("long")) {
      long_size = obj["long"].get_ref<const std::string&>().size();
    } else if (obj["i"] != n || line != n + 1) {
      in_order = false;
    }
    ++n;
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(n, kLines + 1);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(long_size, long_text.size());
}

// ---- CSV ------------------------------------------------------------------------------

TEST_F(DataReaderTest, CsvHeaderRowsBecomeObjectsOfStrings) {
  std::string path = Write("u.csv", "id,text\n1,hello\n2,\n");
  std::vector<Row> rows;
  ASSERT_TRUE(ReadAll(ReadCsv, path, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].obj, (json{{"id", "1"}, {"text", "hello"}}));
  EXPECT_EQ(rows[1].obj, (json{{"id", "2"}, {"text", ""}}));
  EXPECT_EQ(rows[1].line, 3);
}

TEST_F(DataReaderTest, CsvQuotingEdgeCases) {
  std::string path = Write("u.csv",
                           "id,text\r\n"
                           "1,\"a, b\"\r\n"                 // comma inside quotes
                           "2,\"say \"\"hi\"\"\"\r\n"       // doubled quotes
                           "3,\"two\nlines\"\r\n"           // embedded LF
                           "4,\"crlf\r\ninside\"\r\n"       // embedded CRLF kept
                           "5,\"\"\r\n"                     // empty quoted field
                           "\"6\",plain\r\n"                // quoted id
                           "7,last");                        // no final newline
  std::vector<Row> rows;
  Status s = ReadAll(ReadCsv, path, &rows);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0].obj["text"], "a, b");
  EXPECT_EQ(rows[1].obj["text"], "say \"hi\"");
  EXPECT_EQ(rows[2].obj["text"], "two\nlines");
  EXPECT_EQ(rows[3].obj["text"], "crlf\r\ninside");
  EXPECT_EQ(rows[4].obj["text"], "");
  EXPECT_EQ(rows[5].obj["id"], "6");
  EXPECT_EQ(rows[6].obj["text"], "last");
  // A record is numbered by the line it starts on.
  EXPECT_EQ(rows[2].line, 4);
  EXPECT_EQ(rows[3].line, 6);
  EXPECT_EQ(rows[4].line, 8);
  EXPECT_EQ(rows[6].line, 10);
}

TEST_F(DataReaderTest, CsvWrongColumnCountNamesLine) {
  std::string path = Write("u.csv", "id,text\n1,\"multi\nline\"\n2,a,extra\n");
  std::vector<Row> rows;
  Status s = ReadAll(ReadCsv, path, &rows);
  EXPECT_EQ(s.message(), path + ":4: expected 2 fields (as in the header), got 3");
}

TEST_F(DataReaderTest, CsvMalformedQuotesNameLine) {
  std::vector<Row> rows;
  std::string unterminated = Write("a.csv", "id,text\n1,ok\n2,\"never closed\n3,x\n");
  EXPECT_EQ(ReadAll(ReadCsv, unterminated, &rows).message(),
            unterminated + ":3: unterminated quoted field (a closing \" is missing)");
  std::string stray = Write("b.csv", "id,text\n1,ab\"c\n");
  EXPECT_THAT(ReadAll(ReadCsv, stray, &rows).message(), StartsWith(stray + ":2: unexpected quote"));
  std::string after = Write("c.csv", "id,text\n1,\"ab\"c\n");
  EXPECT_THAT(ReadAll(ReadCsv, after, &rows).message(),
              StartsWith(after + ":2: unexpected character after a closing quote"));
}

TEST_F(DataReaderTest, CsvHeaderMustHaveDistinctNonEmptyNames) {
  std::vector<Row> rows;
  std::string dup = Write("a.csv", "id,id\n1,2\n");
  EXPECT_EQ(ReadAll(ReadCsv, dup, &rows).message(), dup + ":1: duplicate column name \"id\" in the header");
  std::string empty = Write("b.csv", "id,\n1,2\n");
  EXPECT_EQ(ReadAll(ReadCsv, empty, &rows).message(), empty + ":1: empty column name in the header (column 2)");
}

TEST_F(DataReaderTest, CsvSkipsBlankLines) {
  std::string path = Write("u.csv", "id\n\n1\r\n\r\n2\n\n");
  std::vector<Row> rows;
  ASSERT_TRUE(ReadAll(ReadCsv, path, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].line, 5);
}

TEST_F(DataReaderTest, ParseCsvRecordsAllowsRaggedRows) {
  auto r = ParseCsvRecords("alice\nbob,2\n\n\"carol\",\"3\"\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], std::vector<std::string>{"alice"});
  EXPECT_EQ((*r)[1], (std::vector<std::string>{"bob", "2"}));
  EXPECT_EQ((*r)[2], (std::vector<std::string>{"carol", "3"}));
  auto bad = ParseCsvRecords("alice\nbob,\"2\n");
  EXPECT_EQ(bad.status().message(), "line 2: unterminated quoted field (a closing \" is missing)");
  auto empty = ParseCsvRecords("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(DataReaderTest, ReadCsvRecordsStreamsRawRecords) {
  std::string path = Write("list.csv", "worker,value\nalice,1\nbob\n");
  std::vector<std::vector<std::string>> records;
  std::vector<int64_t> lines;
  Status s = ReadCsvRecords(path, [&](int64_t line, std::vector<std::string> fields) {
    lines.push_back(line);
    records.push_back(std::move(fields));
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(records.size(), 3u);
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 3}));
}

// ---- by extension -----------------------------------------------------------------------

TEST_F(DataReaderTest, ReadDataFilePicksByExtension) {
  std::vector<Row> rows;
  EXPECT_TRUE(ReadAll(ReadDataFile, Write("a.JSONL", "{\"x\":1}\n"), &rows).ok());
  EXPECT_TRUE(ReadAll(ReadDataFile, Write("b.ndjson", "{\"x\":1}\n"), &rows).ok());
  EXPECT_TRUE(ReadAll(ReadDataFile, Write("c.json", "{\"x\":1}\n"), &rows).ok());
  EXPECT_TRUE(ReadAll(ReadDataFile, Write("d.csv", "x\n1\n"), &rows).ok());
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3].obj["x"], "1");
  std::string txt = Write("e.txt", "x\n");
  Status s = ReadAll(ReadDataFile, txt, &rows);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_THAT(s.message(), HasSubstr(txt));
  EXPECT_THAT(s.message(), HasSubstr(".csv"));
}

// ---- eval files -------------------------------------------------------------------------

TEST_F(DataReaderTest, EvalFileReadsItems) {
  std::string path = Write("golds.jsonl",
                           "{\"inputs\": {\"text\": \"great\"}, \"answer\": {\"label\": \"pos\"}}\n\n"
                           "{\"answer\": {\"label\": \"neg\"}, \"inputs\": {\"text\": \"awful\"}}\n");
  auto items = ReadEvalFile(path);
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[1].inputs["text"], "awful");
  EXPECT_EQ((*items)[1].answer["label"], "neg");
}

TEST_F(DataReaderTest, EvalFileErrorsNameTheLine) {
  struct Case {
    std::string line;
    std::string message;
  };
  std::vector<Case> cases = {
      {R"({"inputs": {}})", "missing \"answer\" (an object)"},
      {R"({"answer": {}})", "missing \"inputs\" (an object)"},
      {R"({"inputs": {}, "answer": "pos"})", "\"answer\" must be an object, got a string"},
      {R"({"inputs": [1], "answer": {}})", "\"inputs\" must be an object, got a list"},
      {R"({"inputs": {}, "answer": {}, "id": 3})", "unknown key \"id\" (an item has only \"inputs\" and \"answer\")"},
  };
  for (const Case& c : cases) {
    std::string path = Write("g.jsonl", "{\"inputs\": {}, \"answer\": {}}\n" + c.line + "\n");
    auto items = ReadEvalFile(path);
    ASSERT_FALSE(items.ok()) << c.line;
    EXPECT_EQ(items.status().message(), path + ":2: " + c.message);
  }
  std::string bad_json = Write("h.jsonl", "{\"inputs\": {}, \"answer\": {}\n");
  EXPECT_THAT(ReadEvalFile(bad_json).status().message(), StartsWith(bad_json + ":1: expected a JSON object"));
}

TEST_F(DataReaderTest, EmptyEvalFileGivesNoItems) {
  auto items = ReadEvalFile(Write("g.jsonl", "\n\n"));
  ASSERT_TRUE(items.ok());
  EXPECT_TRUE(items->empty());
}

TEST_F(DataReaderTest, EvalItemJsonRoundTrip) {
  EvalItem item{json{{"t", "x"}}, json{{"l", 1}}};
  auto back = EvalItemFromJson(EvalItemToJson(item), "gold_items[0]");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, item);
  EXPECT_EQ(EvalItemFromJson(json::array(), "gold_items[0]").status().message(),
            "gold_items[0]: expected an object, got a list");
}

}  // namespace
}  // namespace crowdgate
