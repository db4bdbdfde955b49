#include "cli/csv_columns.hpp"

#include <cstdio>
#include <memory>

namespace crowdgate::cli {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

}  // namespace

Result<CsvFile> CsvFile::Open(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Status::InvalidArgument(path + ": cannot read the file");
  CsvFile csv;
  csv.name_ = path;
  char buffer[1 << 16];
  if (std::fseek(f.get(), 0, SEEK_END) == 0) {
    const long size = std::ftell(f.get());
    if (size > 0) csv.text_.reserve(static_cast<size_t>(size));
    std::fseek(f.get(), 0, SEEK_SET);
  }
  size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof(buffer), f.get())) > 0) csv.text_.append(buffer, got);
  if (std::ferror(f.get())) return Status::InvalidArgument(path + ": cannot read the file");
  return csv;
}

CsvFile CsvFile::FromText(std::string text, std::string name) {
  CsvFile csv;
  csv.name_ = std::move(name);
  csv.text_ = std::move(text);
  return csv;
}

Status CsvFile::ForEachRow(const std::vector<std::string>& columns,
                           const std::function<Status(int64_t line, const std::string_view* fields)>& row) {
  const char* s = text_.data();
  const size_t n = text_.size();
  size_t p = 0;
  if (n >= 3 && text_.compare(0, 3, "\xEF\xBB\xBF") == 0) p = 3;
  int64_t line = 1;
  int64_t record_line = 1;
  std::vector<std::string_view> fields;
  std::vector<std::string> header;

  auto error = [&](size_t column, const std::string& message) {
    std::string where = name_ + ":" + std::to_string(record_line);
    if (column > 0) {
      where += ", column " + std::to_string(column);
      if (column <= header.size()) where += " (" + header[column - 1] + ")";
    }
    return Status::InvalidArgument(where + ": " + message);
  };

  // Parses the record at p into `fields`; leaves p at the start of the next record.
  auto parse = [&]() -> Status {
    fields.clear();
    record_line = line;
    while (true) {
      if (p < n && s[p] == '"') {
        const size_t start = ++p;
        bool doubled = false;
        while (true) {
          if (p >= n) return error(fields.size() + 1, "unterminated quoted field");
          if (s[p] == '"') {
            if (p + 1 < n && s[p + 1] == '"') {
              doubled = true;
              p += 2;
              continue;
            }
            break;
          }
          if (s[p] == '\n') ++line;
          ++p;
        }
        std::string_view value(s + start, p - start);
        ++p;  // the closing quote
        if (doubled) {
          std::string plain;
          plain.reserve(value.size());
          for (size_t k = 0; k < value.size(); ++k) {
            plain += value[k];
            if (value[k] == '"') ++k;
          }
          unescaped_.push_back(std::move(plain));
          value = unescaped_.back();
        }
        fields.push_back(value);
        if (p < n && s[p] == '\r' && (p + 1 == n || s[p + 1] == '\n')) ++p;
        if (p >= n) return Status::Ok();
        if (s[p] == ',') {
          ++p;
          continue;
        }
        if (s[p] == '\n') {
          ++p;
          ++line;
          return Status::Ok();
        }
        return error(fields.size(), "unexpected character after the closing quote");
      }
      const size_t start = p;
      while (p < n && s[p] != ',' && s[p] != '\n') ++p;
      size_t end = p;
      if (end > start && s[end - 1] == '\r' && (p == n || s[p] == '\n')) --end;
      fields.emplace_back(s + start, end - start);
      if (p >= n) return Status::Ok();
      ++p;
      if (s[p - 1] == ',') continue;
      ++line;
      return Status::Ok();
    }
  };
  auto blank = [&] { return fields.size() == 1 && fields[0].empty(); };

  // The header: the first non-blank record.
  while (p < n && header.empty()) {
    CG_RETURN_IF_ERROR(parse());
    if (blank()) continue;
    for (std::string_view f : fields) header.emplace_back(Trim(f));
  }
  if (header.empty()) return error(0, "no header row (expected columns " + JoinNames(columns) + ")");
  std::vector<size_t> index;
  for (const auto& c : columns) {
    size_t k = 0;
    while (k < header.size() && header[k] != c) ++k;
    if (k == header.size()) {
      return error(0, "the header has no column \"" + c + "\" (expected columns " + JoinNames(columns) + ")");
    }
    index.push_back(k);
  }
  std::vector<std::string_view> wanted(columns.size());
  while (p < n) {
    CG_RETURN_IF_ERROR(parse());
    if (blank()) continue;
    if (fields.size() != header.size()) {
      return error(0, std::to_string(fields.size()) + " fields, expected " + std::to_string(header.size()) + " (" +
                          JoinNames(header) + ")");
    }
    for (size_t k = 0; k < index.size(); ++k) {
      wanted[k] = fields[index[k]];
      if (wanted[k].empty()) return error(index[k] + 1, "empty value");
    }
    CG_RETURN_IF_ERROR(row(record_line, wanted.data()));
  }
  return Status::Ok();
}

}  // namespace crowdgate::cli
