// The fake Prolific server (tests/fakes/prolific_fake.py) as a child process of a test: started on a free port
// (read back from its --port-file), driven through its /_fake/ control endpoints, stopped with SIGTERM.
// Tests run from the source tree root (crowdgate_test sets the working directory), or CROWDGATE_SOURCE_DIR
// points there.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "providers/prolific/prolific_client.hpp"

namespace crowdgate::testing {

class ProlificFake {
 public:
  static constexpr const char* kToken = "fake-prolific-token-4f1d9c";

  explicit ProlificFake(const std::string& token = kToken) : token_(token) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "prolific-fake-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    const std::string port_file = dir_ + "/port";
    const char* src = std::getenv("CROWDGATE_SOURCE_DIR");
    const std::string script = std::string(src != nullptr ? src : ".") + "/tests/fakes/prolific_fake.py";
    std::vector<std::string> args = {"/usr/bin/python3", script, "--port", "0", "--port-file", port_file};
    if (!token.empty()) args.insert(args.end(), {"--token", token});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      execv(argv[0], argv.data());
      _exit(127);
    }
    for (int i = 0; i < 400 && port_ == 0; ++i) {  // up to 20 s
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        port_ = port;
        break;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "the fake Prolific server exited early (status " << status << ")";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_NE(port_, 0) << "the fake Prolific server wrote no port";
    control_ = std::make_unique<prolific::Client>(prolific::ClientOptions{base_url(), "control", 30000});
  }
  ~ProlificFake() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  ProlificFake(const ProlificFake&) = delete;
  ProlificFake& operator=(const ProlificFake&) = delete;

  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Client options that the fake accepts.
  prolific::ClientOptions Options(int timeout_ms = 5000) const { return {base_url(), token_, timeout_ms}; }

  // A /_fake/ control call ("config", "state", "participants", ...); fails the test unless it answers 2xx.
  nlohmann::json Control(const std::string& method, const std::string& path, const nlohmann::json& body = nullptr) {
    prolific::CallResult r = control_->Request(method, "/_fake/" + path, body);
    EXPECT_TRUE(r.ok()) << method << " /_fake/" << path << ": " << r.message;
    return r.body;
  }
  nlohmann::json State() { return Control("GET", "state"); }
  nlohmann::json Violations() { return Control("GET", "violations")["violations"]; }
  nlohmann::json Calls() { return Control("GET", "calls")["calls"]; }
  void Configure(const nlohmann::json& config) { Control("POST", "config", config); }
  void Reset() { Control("POST", "reset", nlohmann::json::object()); }

 private:
  std::string token_;
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<prolific::Client> control_;
};

}  // namespace crowdgate::testing
