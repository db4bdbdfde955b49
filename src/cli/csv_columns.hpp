// A fast reader of CSV files with a header row, for `crowdgate aggregate` (millions of rows):
// the whole file is read into memory once and fields are views into it.
//
// Contract:
//  - RFC 4180 fields: quoted fields may hold commas, newlines and doubled quotes (""). Line
//    ends may be \n or \r\n; a UTF-8 byte-order mark before the header is skipped; blank lines
//    are skipped.
//  - The header must name every column in `columns` (any order; other columns are ignored).
//    Every row must have as many fields as the header, and the wanted fields must not be empty.
//  - Errors are InvalidArgument and name the file, the line and, where there is one, the
//    column: "votes.csv:7, column 3 (label): empty value".
//  - The views passed to `row` stay valid as long as the CsvFile lives.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate::cli {

class CsvFile {
 public:
  // Reads the whole file (an unreadable file is InvalidArgument naming it).
  static Result<CsvFile> Open(const std::string& path);
  // Parses text as if it were the content of `name` (for tests).
  static CsvFile FromText(std::string text, std::string name);

  // Calls row(line, fields) for every data row; fields[k] is the value of columns[k].
  // Stops at the first error, which is returned; an error returned by `row` is passed on.
  Status ForEachRow(const std::vector<std::string>& columns,
                    const std::function<Status(int64_t line, const std::string_view* fields)>& row);

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string text_;
  std::deque<std::string> unescaped_;  // quoted fields with "" inside, unescaped
};

}  // namespace crowdgate::cli
