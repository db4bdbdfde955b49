#include "cli/import_file.hpp"

#include <gtest/gtest.h>

namespace crowdgate::cli {
namespace {

TEST(ImportFileTest, ParsesWorkerAndOptionalValueWithHeader) {
  auto rows = ParseImportText("worker,value\nalice,3\n\n\"mturk:A1\" , 5\r\nbob\n", "list.csv", 1);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].worker, "alice");
  EXPECT_EQ((*rows)[0].value, 3);
  EXPECT_EQ((*rows)[0].line, 2);
  EXPECT_EQ((*rows)[1].worker, "mturk:A1");
  EXPECT_EQ((*rows)[1].value, 5);
  EXPECT_EQ((*rows)[2].worker, "bob");
  EXPECT_EQ((*rows)[2].value, 1);
  EXPECT_EQ((*rows)[2].line, 5);
}

TEST(ImportFileTest, BadValueNamesFileAndLine) {
  auto rows = ParseImportText("alice,1\nbob,high\n", "list.csv", 1);
  ASSERT_FALSE(rows.ok());
  EXPECT_TRUE(rows.status().IsInvalidArgument());
  EXPECT_EQ(rows.status().message(), "list.csv:2: value \"high\" is not an integer");
}

TEST(ImportFileTest, TooManyFieldsAndEmptyWorkerAreErrors) {
  EXPECT_FALSE(ParseImportText("alice,1,2\n", "f", 1).ok());
  EXPECT_FALSE(ParseImportText(",1\n", "f", 1).ok());
}

TEST(ImportFileTest, MissingFileIsAnInputError) {
  auto rows = ReadImportFile("/nonexistent/list.csv", 1);
  ASSERT_FALSE(rows.ok());
  EXPECT_TRUE(rows.status().IsInvalidArgument());
  EXPECT_NE(rows.status().message().find("/nonexistent/list.csv"), std::string::npos);
}

TEST(ImportFileTest, BadWorkerNameNamesFileAndLine) {
  auto rows = ParseImportText("alice\nbad name!\n", "list.csv", 1);
  ASSERT_FALSE(rows.ok());
  EXPECT_TRUE(rows.status().IsInvalidArgument());
  EXPECT_EQ(rows.status().message().rfind("list.csv:2: ", 0), 0u) << rows.status().message();
}

TEST(ImportFileTest, DirectoryIsAnInputErrorNotAnEmptyFile) {
  auto rows = ReadImportFile("/tmp", 1);
  ASSERT_FALSE(rows.ok());
  EXPECT_TRUE(rows.status().IsInvalidArgument());
  EXPECT_NE(rows.status().message().find("directory"), std::string::npos) << rows.status().message();
}

}  // namespace
}  // namespace crowdgate::cli
