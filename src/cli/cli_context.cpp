#include "cli/cli_context.hpp"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <regex>

#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"

namespace crowdgate::cli {

std::string CliContext::ResolvedDb() const {
  if (!db.empty()) return db;
  const char* env = std::getenv("CROWDGATE_DB");
  if (env != nullptr && *env != '\0') return env;
  return "crowdgate.db";
}

Result<std::unique_ptr<EngineImpl>> CliContext::OpenEngine() const {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(ResolvedDb(), Env::Default()));
  EngineOptions options;
  options.actor = CliActor();
  return OpenEngineImpl(std::move(store), options);
}

int Fail(const Status& status) {
  std::cerr << "crowdgate: " << status.message() << "\n";
  return ExitCodeFor(status.code());
}

void PrintJson(const nlohmann::json& j) {
  std::cout << (isatty(STDOUT_FILENO) ? j.dump(2) : j.dump()) << "\n";
}

std::string CliActor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user != nullptr && *user != '\0' ? user : "unknown");
}

bool StderrIsTerminal() { return isatty(STDERR_FILENO) != 0; }

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  measure(header_);
  for (const auto& r : rows_) measure(r);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  };
  print(header_);
  for (const auto& r : rows_) print(r);
}

Progress::Progress(std::string label) : label_(std::move(label)), enabled_(StderrIsTerminal()) {}

void Progress::Update(size_t done, size_t total) {
  if (!enabled_) return;
  const int64_t now = Env::Default()->NowMicros();
  if (drawn_ && done != total && now - last_draw_us_ < 100'000) return;
  last_draw_us_ = now;
  drawn_ = true;
  const int pct = total == 0 ? 100 : static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total));
  const int bar = pct / 5;
  std::cerr << "\r" << label_ << " [" << std::string(bar, '#') << std::string(20 - bar, ' ') << "] " << done << "/"
            << total << " " << pct << "%" << std::flush;
}

void Progress::Finish() {
  if (enabled_ && drawn_) std::cerr << "\n";
  drawn_ = false;
}

Result<int64_t> ParseExpiry(const std::string& text, int64_t now_micros) {
  static const std::regex kRelative(R"(^(\d{1,6})([smhdw])$)");
  static const std::regex kDate(R"(^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?)?$)");
  std::smatch m;
  if (std::regex_match(text, m, kRelative)) {
    const int64_t n = std::stoll(m[1]);
    int64_t unit = 1;
    switch (m[2].str()[0]) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      case 'w': unit = 7 * 86400; break;
    }
    if (n == 0) return Status::InvalidArgument("--expires " + text + ": must be in the future");
    return now_micros + n * unit * kMicrosPerSecond;
  }
  if (std::regex_match(text, m, kDate)) {
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    tm.tm_hour = m[4].matched ? std::stoi(m[4]) : 0;
    tm.tm_min = m[5].matched ? std::stoi(m[5]) : 0;
    tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60) {
      return Status::InvalidArgument("--expires " + text + ": not a valid date");
    }
    const int64_t t = static_cast<int64_t>(timegm(&tm)) * kMicrosPerSecond;
    if (t <= now_micros) return Status::InvalidArgument("--expires " + text + ": must be in the future");
    return t;
  }
  return Status::InvalidArgument("--expires " + text +
                                  ": expected a duration like 30d, 12h, 90m, 45s, 2w or a UTC date like 2027-01-31");
}

std::string FormatOptionalTime(const std::optional<int64_t>& t) { return t ? FormatTimestamp(*t) : "-"; }

}  // namespace crowdgate::cli
