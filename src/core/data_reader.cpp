#include "core/data_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <utility>

namespace crowdgate {
namespace {

constexpr size_t kChunkSize = 1 << 20;
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// "units.csv:" + 12 -> "units.csv:12"; "line " + 12 -> "line 12".
std::string LineTag(std::string_view prefix, int64_t line) { return std::string(prefix) + std::to_string(line); }
std::string LinePrefix(std::string_view prefix, int64_t line) { return LineTag(prefix, line) + ": "; }

// Calls a user callback, keeping exceptions inside this file.
template <typename Fn, typename... Args>
Status CallUser(const Fn& fn, Args&&... args) {
  try {
    return fn(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("unexpected exception while handling a record: ") + e.what());
  }
}

// Reads a file in large chunks; each chunk is handed to `fn` (the first one without a
// UTF-8 BOM). Open and read failures name the path and strerror.
class ChunkReader {
 public:
  explicit ChunkReader(const std::string& path) : path_(path) {}

  Status ForEachChunk(const std::function<Status(std::string_view)>& fn) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path_.c_str(), "rb"), &std::fclose);
    if (!f) return Status::InvalidArgument(path_ + ": cannot open: " + std::strerror(errno));
    std::string buf(kChunkSize, '\0');
    bool first = true;
    while (true) {
      errno = 0;
      size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
      if (n == 0) {
        if (std::ferror(f.get())) return Status::InvalidArgument(path_ + ": cannot read: " + std::strerror(errno));
        return Status::Ok();
      }
      std::string_view chunk(buf.data(), n);
      if (first && chunk.substr(0, kUtf8Bom.size()) == kUtf8Bom) chunk.remove_prefix(kUtf8Bom.size());
      first = false;
      CG_RETURN_IF_ERROR(fn(chunk));
    }
  }

 private:
  std::string path_;
};

// Splits a file into lines (LF or CRLF; the CR is removed) and calls fn(line_no, line).
Status ForEachLine(const std::string& path, const std::function<Status(int64_t, std::string_view)>& fn) {
  std::string carry;
  int64_t line_no = 0;
  auto emit = [&](std::string_view line) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return fn(line_no, line);
  };
  ChunkReader reader(path);
  CG_RETURN_IF_ERROR(reader.ForEachChunk([&](std::string_view chunk) -> Status {
    while (!chunk.empty()) {
      const void* nl = std::memchr(chunk.data(), '\n', chunk.size());
      if (nl == nullptr) {
        carry.append(chunk);
        break;
      }
      size_t len = static_cast<const char*>(nl) - chunk.data();
      if (carry.empty()) {
        CG_RETURN_IF_ERROR(emit(chunk.substr(0, len)));
      } else {
        carry.append(chunk.substr(0, len));
        CG_RETURN_IF_ERROR(emit(carry));
        carry.clear();
      }
      chunk.remove_prefix(len + 1);
    }
    return Status::Ok();
  }));
  if (!carry.empty()) return emit(carry);
  return Status::Ok();
}

bool IsBlank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// "[json.exception.parse_error.101] parse error at line 1, column 3: ..." ->
// "parse error at column 3: ...".
std::string CleanJsonMessage(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  std::string msg(what);
  const std::string kLine1 = "at line 1, ";
  size_t pos = msg.find(kLine1);
  if (pos != std::string::npos) msg.replace(pos, kLine1.size(), "at ");
  return msg;
}

std::string_view JsonTypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::array: return "a list";
    case nlohmann::json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
}

// RFC 4180 parser fed in chunks. Records go to `fn` with the line they start on.
class CsvParser {
 public:
  // `prefix` starts every error message, before the line number ("units.csv:" or "line ").
  CsvParser(std::string prefix, CsvRecordFn fn) : prefix_(std::move(prefix)), fn_(std::move(fn)) {}

  Status Feed(std::string_view chunk) {
    for (char c : chunk) CG_RETURN_IF_ERROR(Consume(c));
    return Status::Ok();
  }

  Status Finish() {
    if (pending_cr_) {
      pending_cr_ = false;
      CG_RETURN_IF_ERROR(Consume('\n'));
    }
    if (state_ == State::kQuoted) return Error(record_line_, "unterminated quoted field (a closing \" is missing)");
    if (in_record_) return EndRecord();
    return Status::Ok();
  }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };

  Status Error(int64_t line, std::string_view msg) const {
    return Status::InvalidArgument(LinePrefix(prefix_, line) + std::string(msg));
  }

  Status Consume(char c) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (c != '\n') CG_RETURN_IF_ERROR(ConsumeLoneCr());
    }
    if (!in_record_) {
      in_record_ = true;
      record_line_ = line_;
    }
    if (c == '\n') ++line_;
    switch (state_) {
      case State::kFieldStart:
      case State::kUnquoted: return ConsumeUnquoted(c);
      case State::kQuoted: return ConsumeQuoted(c);
      case State::kQuoteInQuoted: return ConsumeAfterQuote(c);
    }
    return Status::Ok();
  }

  // A CR not followed by LF, outside quotes: kept as data in an unquoted field.
  Status ConsumeLoneCr() {
    if (state_ == State::kQuoteInQuoted) return Error(line_, "unexpected character after a closing quote");
    field_ += '\r';
    state_ = State::kUnquoted;
    return Status::Ok();
  }

  Status ConsumeUnquoted(char c) {
    switch (c) {
      case ',': EndField(); return Status::Ok();
      case '\n': EndField(); return EndRecord();
      case '\r': pending_cr_ = true; return Status::Ok();
      case '"':
        if (state_ == State::kFieldStart) {
          state_ = State::kQuoted;
          field_quoted_ = true;
          return Status::Ok();
        }
        return Error(line_, "unexpected quote in an unquoted field (quote the whole field and double the quote)");
      default:
        field_ += c;
        state_ = State::kUnquoted;
        return Status::Ok();
    }
  }

  Status ConsumeQuoted(char c) {
    if (c == '"') {
      state_ = State::kQuoteInQuoted;
    } else {
      field_ += c;
    }
    return Status::Ok();
  }

  Status ConsumeAfterQuote(char c) {
    switch (c) {
      case '"': field_ += '"'; state_ = State::kQuoted; return Status::Ok();
      case ',': EndField(); return Status::Ok();
      case '\n': EndField(); return EndRecord();
      case '\r': pending_cr_ = true; return Status::Ok();
      default: return Error(line_, "unexpected character after a closing quote");
    }
  }

  void EndField() {
    fields_.push_back(std::move(field_));
    field_.clear();
    state_ = State::kFieldStart;
    any_quoted_ = any_quoted_ || field_quoted_;
    field_quoted_ = false;
  }

  Status EndRecord() {
    if (state_ != State::kFieldStart) EndField();
    in_record_ = false;
    bool blank = !any_quoted_ && fields_.size() == 1 && IsBlank(fields_[0]);
    any_quoted_ = false;
    std::vector<std::string> fields;
    fields.swap(fields_);
    if (blank) return Status::Ok();
    Status s = CallUser(fn_, record_line_, std::move(fields));
    return s.WithContext(LineTag(prefix_, record_line_));
  }

  std::string prefix_;
  CsvRecordFn fn_;
  State state_ = State::kFieldStart;
  bool pending_cr_ = false;
  bool in_record_ = false;
  bool field_quoted_ = false;
  bool any_quoted_ = false;
  int64_t line_ = 1;
  int64_t record_line_ = 1;
  std::string field_;
  std::vector<std::string> fields_;
};

Status ParseCsvFile(const std::string& path, const CsvRecordFn& fn) {
  CsvParser parser(path + ":", fn);
  ChunkReader reader(path);
  CG_RETURN_IF_ERROR(reader.ForEachChunk([&](std::string_view chunk) { return parser.Feed(chunk); }));
  return parser.Finish();
}

std::string LowerExtension(const std::string& path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

Status ReadJsonl(const std::string& path, const JsonRecordFn& fn) {
  return ForEachLine(path, [&](int64_t line_no, std::string_view line) -> Status {
    if (IsBlank(line)) return Status::Ok();
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(line.begin(), line.end());
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument(LinePrefix(path + ":", line_no) +
                                     "expected a JSON object: " + CleanJsonMessage(e.what()));
    }
    if (!obj.is_object()) {
      return Status::InvalidArgument(LinePrefix(path + ":", line_no) + "expected a JSON object, got " +
                                     std::string(JsonTypeName(obj)));
    }
    return CallUser(fn, line_no, std::move(obj)).WithContext(LineTag(path + ":", line_no));
  });
}

Status ReadCsv(const std::string& path, const JsonRecordFn& fn) {
  std::vector<std::string> header;
  return ParseCsvFile(path, [&](int64_t line_no, std::vector<std::string> fields) -> Status {
    if (header.empty()) {
      for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].empty()) return Status::InvalidArgument("empty column name in the header (column " +
                                                               std::to_string(i + 1) + ")");
        if (std::find(fields.begin(), fields.begin() + i, fields[i]) != fields.begin() + i) {
          return Status::InvalidArgument("duplicate column name \"" + fields[i] + "\" in the header");
        }
      }
      header = std::move(fields);
      return Status::Ok();
    }
    if (fields.size() != header.size()) {
      return Status::InvalidArgument("expected " + std::to_string(header.size()) + " fields (as in the header), got " +
                                     std::to_string(fields.size()));
    }
    nlohmann::json obj = nlohmann::json::object();
    for (size_t i = 0; i < fields.size(); ++i) obj[header[i]] = std::move(fields[i]);
    return fn(line_no, std::move(obj));
  });
}

Status ReadCsvRecords(const std::string& path, const CsvRecordFn& fn) { return ParseCsvFile(path, fn); }

Result<std::vector<std::vector<std::string>>> ParseCsvRecords(std::string_view text) {
  std::vector<std::vector<std::string>> records;
  CsvParser parser("line ", [&](int64_t, std::vector<std::string> fields) {
    records.push_back(std::move(fields));
    return Status::Ok();
  });
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) text.remove_prefix(kUtf8Bom.size());
  CG_RETURN_IF_ERROR(parser.Feed(text));
  CG_RETURN_IF_ERROR(parser.Finish());
  return records;
}

Status ReadDataFile(const std::string& path, const JsonRecordFn& fn) {
  std::string ext = LowerExtension(path);
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return ReadJsonl(path, fn);
  if (ext == ".csv") return ReadCsv(path, fn);
  return Status::InvalidArgument(path + ": unknown data file type \"" + ext +
                                 "\" (expected .jsonl, .ndjson or .json for JSON lines, or .csv)");
}

nlohmann::json EvalItemToJson(const EvalItem& item) {
  return nlohmann::json{{"inputs", item.inputs}, {"answer", item.answer}};
}

Result<EvalItem> EvalItemFromJson(const nlohmann::json& j, std::string_view where) {
  std::string w(where);
  if (!j.is_object()) return Status::InvalidArgument(w + ": expected an object, got " + std::string(JsonTypeName(j)));
  for (const auto& [key, value] : j.items()) {
    if (key != "inputs" && key != "answer") {
      return Status::InvalidArgument(w + ": unknown key \"" + key + "\" (an item has only \"inputs\" and \"answer\")");
    }
  }
  EvalItem item;
  for (const char* key : {"inputs", "answer"}) {
    auto it = j.find(key);
    if (it == j.end()) return Status::InvalidArgument(w + ": missing \"" + key + "\" (an object)");
    if (!it->is_object()) {
      return Status::InvalidArgument(w + ": \"" + key + "\" must be an object, got " + std::string(JsonTypeName(*it)));
    }
    (std::string_view(key) == "inputs" ? item.inputs : item.answer) = *it;
  }
  return item;
}

Result<std::vector<EvalItem>> ReadEvalFile(const std::string& path) {
  std::vector<EvalItem> items;
  Status s = ReadJsonl(path, [&](int64_t, nlohmann::json obj) -> Status {
    Result<EvalItem> item = EvalItemFromJson(obj, "item");
    if (!item.ok()) {
      // ReadJsonl adds "PATH:LINE"; drop our placeholder name.
      return Status::InvalidArgument(item.status().message().substr(std::string_view("item: ").size()));
    }
    items.push_back(std::move(item).value());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return items;
}

}  // namespace crowdgate
