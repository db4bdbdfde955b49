// Helpers shared by the crowdgate_bench workloads: wall-clock timing, resident size from
// /proc, medians and spreads over repeated runs, scratch files, and dying on a failed setup step.
// Measures nothing itself.
#pragma once

#include <algorithm>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate::bench {

inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A field of /proc/self/status in kB (e.g. "VmRSS", "VmHWM"), or -1.
inline int64_t ProcStatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

inline double RssMb() { return static_cast<double>(ProcStatusKb("VmRSS")) / 1024.0; }

struct Stats {
  double median = 0;
  double min = 0;
  double max = 0;
  // (max - min) / median: the spread reported next to every median.
  double spread() const { return median != 0 ? (max - min) / median : 0; }
};

inline Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  return s;
}

// Percentile p (0-100) of an unsorted sample, nearest-rank.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// A fresh scratch directory, removed with its contents when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    namespace fs = std::filesystem;
    const char* base = std::getenv("CROWDGATE_BENCH_DIR");
    const fs::path root = base != nullptr ? fs::path(base) : fs::temp_directory_path();
    path_ = (root / ("crowdgate-bench-" + tag + "-" + std::to_string(::getpid()))).string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A setup step that failed: the benchmark cannot go on (exit 2).
[[noreturn]] inline void Die(const Status& s, const std::string& where) {
  std::cerr << where << ": " << s.ToString() << "\n";
  std::exit(2);
}

template <typename T>
T Must(Result<T> r, const std::string& where) {
  if (!r.ok()) Die(r.status(), where);
  return std::move(r).value();
}

}  // namespace crowdgate::bench
