#include "cli/import_file.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace crowdgate::cli {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

Result<std::vector<ImportRow>> ParseImportText(std::string_view text, const std::string& file_name,
                                               int64_t default_value) {
  std::vector<ImportRow> rows;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto where = [&] { return file_name + ":" + std::to_string(line_no) + ": "; };
    if (Trim(line).empty()) continue;
    const size_t comma = line.find(',');
    std::string_view worker = Trim(line.substr(0, comma));
    std::string_view value_text = comma == std::string_view::npos ? std::string_view() : Trim(line.substr(comma + 1));
    if (rows.empty() && (worker == "worker" || worker == "worker_id")) continue;  // header row
    if (value_text.find(',') != std::string_view::npos) {
      return Status::InvalidArgument(where() + "expected `worker` or `worker,value`, got more than two fields");
    }
    if (worker.empty()) return Status::InvalidArgument(where() + "the worker field is empty");
    // Name the file and line of a bad worker here; the engine only knows row numbers.
    if (auto ref = ParseWorkerRef(worker); !ref.ok()) return Status::InvalidArgument(where() + ref.status().message());
    ImportRow row{std::string(worker), default_value, line_no};
    if (!value_text.empty()) {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(value_text.data(), value_text.data() + value_text.size(), v);
      if (ec != std::errc() || p != value_text.data() + value_text.size()) {
        return Status::InvalidArgument(where() + "value \"" + std::string(value_text) + "\" is not an integer");
      }
      row.value = v;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<std::vector<ImportRow>> ReadImportFile(const std::string& path, int64_t default_value) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Status::InvalidArgument(path + ": is a directory, not a CSV file");  // ifstream would read it as empty
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(path + ": cannot open: " + std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status::InvalidArgument(path + ": read error");
  return ParseImportText(buffer.str(), path, default_value);
}

}  // namespace crowdgate::cli
