// Runs the real crowdgate binary (from $CROWDGATE_BIN) in a shell and captures its
// exit code, stdout and stderr, for end-to-end tests.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "engine/engine_test_util.hpp"

namespace crowdgate::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string CrowdgateBin() {
  const char* bin = std::getenv("CROWDGATE_BIN");
  return bin != nullptr ? bin : "build/release/src/cli/crowdgate";
}

inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `args` is appended to the binary verbatim (quote what needs quoting).
inline CommandResult RunCrowdgate(const TempDir& dir, const std::string& args, const std::string& env_prefix = "") {
  const std::string out = dir.File("stdout.txt");
  const std::string err = dir.File("stderr.txt");
  const std::string cmd =
      env_prefix + " " + ShellQuote(CrowdgateBin()) + " " + args + " >" + ShellQuote(out) + " 2>" + ShellQuote(err);
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

// A fixture with a fresh directory, a database path in it, and helpers to write files there
// and to run crowdgate on that database.
class CrowdgateFixture : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

  CommandResult Run(const std::string& args) { return RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " " + args); }

  TempDir dir_;
  std::string db_ = dir_.File("crowdgate.db");
};

}  // namespace crowdgate::testing
