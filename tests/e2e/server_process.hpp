// `crowdgate --db DB serve --port 0` as a child process for end-to-end tests: waits for the "serving on" line
// on its stderr (a file) to learn the port, and can be stopped cleanly (SIGTERM) or killed (SIGKILL).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/run_command.hpp"

namespace crowdgate::testing {

class ServerProcess {
 public:
  // `env` entries ("NAME=value") are added to the child's environment; `extra_args` follow
  // `serve --port 0` (e.g. {"--rate-limit", "5"}).
  ServerProcess(const TempDir& dir, const std::string& db, const std::vector<std::string>& env = {},
                const std::string& stderr_name = "server-stderr.txt",
                const std::vector<std::string>& extra_args = {})
      : err_path_(dir.File(stderr_name)) {
    const std::string bin = CrowdgateBin();
    std::vector<std::string> args = {bin, "--db", db, "serve", "--port", "0"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      const int err_fd = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int null_fd = open("/dev/null", O_WRONLY);
      if (err_fd < 0 || null_fd < 0 || dup2(err_fd, STDERR_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0) _exit(127);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    const std::regex serving("serving on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 600 && port_ == 0; ++i) {  // up to 30 s (sanitizer builds start slowly)
      std::smatch m;
      const std::string text = Slurp(err_path_);
      if (std::regex_search(text, m, serving)) {
        port_ = std::stoi(m[1]);
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "server exited early: " << text;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_NE(port_, 0) << "no port in server stderr: " << Slurp(err_path_);
  }
  ~ServerProcess() { Stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // SIGTERM and wait; expects a clean exit 0.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "server did not stop cleanly: " << status << "\n" << Slurp(err_path_);
  }

  // kill -9 and reap.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // True while the child has not exited.
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  int port() const { return port_; }
  std::string StderrText() const { return Slurp(err_path_); }

 private:
  std::string err_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace crowdgate::testing
