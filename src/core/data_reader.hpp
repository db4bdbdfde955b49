// Data readers: the JSONL and CSV files a run is made from (units data, gold and
// screening files) and the CSV files `qual import` reads.
//
// Contract:
//  - Every reader streams the file in large chunks; memory use is one record plus one
//    chunk, whatever the file size (1 million JSONL lines take about a second).
//  - Line numbers are 1-based physical lines of the file. A CSV record that spans
//    lines (a quoted field with embedded newlines) is numbered by its first line.
//  - Errors are InvalidArgument and start with "PATH:LINE: " (or "PATH: " when no line
//    applies), PATH as the caller spelled it. An unreadable file names the path and the
//    system's reason (strerror).
//  - The callback is called once per record, in file order; a non-OK Status from it
//    stops the read and is returned with "PATH:LINE: " prefixed (code kept).
//  - A UTF-8 byte-order mark at the start of a file is ignored. Blank lines (only spaces,
//    tabs or a CR) are skipped. CRLF and LF line endings are both accepted.
//  - Nothing here throws.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/status.hpp"

namespace crowdgate {

// Called with the record's line number and the record.
using JsonRecordFn = std::function<Status(int64_t line_no, nlohmann::json obj)>;
using CsvRecordFn = std::function<Status(int64_t line_no, std::vector<std::string> fields)>;

// JSONL (also called NDJSON): one JSON object per line. A line that is not a JSON object
// fails with "PATH:12: expected a JSON object: <parser message>" (or "..., got <type>").
Status ReadJsonl(const std::string& path, const JsonRecordFn& fn);

// CSV as in RFC 4180 (quoted fields, "" for a quote inside quotes, commas and newlines
// inside quotes, CRLF or LF). The first record is the header (non-empty, distinct
// names); every later record must have as many fields and is given to `fn` as a JSON
// object of strings {header[i]: field[i]}. A wrong field count names the line and both
// counts.
Status ReadCsv(const std::string& path, const JsonRecordFn& fn);

// Raw CSV records (same dialect, no header, any number of fields per record), streamed.
// For `qual import` files of `worker[,value]` rows.
Status ReadCsvRecords(const std::string& path, const CsvRecordFn& fn);

// Raw CSV records of an in-memory text (same dialect, no header, records may differ in
// length; blank lines skipped). Errors start with "line N: ".
Result<std::vector<std::vector<std::string>>> ParseCsvRecords(std::string_view text);

// Picks the reader by extension (case-insensitive): .jsonl, .ndjson, .json -> ReadJsonl;
// .csv -> ReadCsv; anything else is an error naming the path and the known extensions.
Status ReadDataFile(const std::string& path, const JsonRecordFn& fn);

// One gold or screening item: what the worker is shown and the expected answer (which
// never leaves the server).
struct EvalItem {
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json answer = nlohmann::json::object();

  bool operator==(const EvalItem& o) const { return inputs == o.inputs && answer == o.answer; }
};

// Reads a gold/screening file: JSONL whose every line is {"inputs": {...}, "answer":
// {...}}; both keys required and objects, any other key refused; errors name the line.
// An empty file gives an empty list (callers decide whether that is allowed).
Result<std::vector<EvalItem>> ReadEvalFile(const std::string& path);

// EvalItem <-> {"inputs": ..., "answer": ...}. The parser applies the rules above and
// names `where` in errors.
nlohmann::json EvalItemToJson(const EvalItem& item);
Result<EvalItem> EvalItemFromJson(const nlohmann::json& j, std::string_view where);

}  // namespace crowdgate
