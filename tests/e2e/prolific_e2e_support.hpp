// Shared pieces of the Prolific end-to-end tests: a fixture that runs the real binary against the fake
// Prolific server (tests/fakes/prolific_fake.py), with the environment crowdgate reads
// (PROLIFIC_API_TOKEN, CROWDGATE_PROLIFIC_URL, CROWDGATE_PROLIFIC_TIMEOUT_MS), and helpers that read
// the outbox and the fake's groups.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"
#include "tests/fakes/prolific_fake_process.hpp"

namespace crowdgate::testing {

class ProlificE2eFixture : public CrowdgateFixture {
 protected:
  static constexpr const char* kPublicUrl = "https://tasks.example.org";

  // The environment of every command that talks to Prolific.
  std::vector<std::string> Env() const {
    return {std::string("PROLIFIC_API_TOKEN=") + ProlificFake::kToken, "CROWDGATE_PROLIFIC_URL=" + fake_.base_url(),
            "CROWDGATE_PROLIFIC_TIMEOUT_MS=" + std::to_string(timeout_ms_)};
  }
  std::string EnvPrefix() const {
    std::string out;
    for (const std::string& e : Env()) out += ShellQuote(e) + " ";
    return "env " + out;
  }
  // crowdgate with the Prolific environment.
  CommandResult RunP(const std::string& args) {
    return RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " " + args, EnvPrefix());
  }
  CommandResult Must(const std::string& args) {
    CommandResult r = RunP(args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out << r.err;
    return r;
  }
  nlohmann::json MustJson(const std::string& args) {
    CommandResult r = Must("--json " + args);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << args << ": " << r.out;
    return j;
  }
  std::unique_ptr<ServerProcess> Serve(int poll_ms = 200, const std::string& stderr_name = "server-stderr.txt") {
    return std::make_unique<ServerProcess>(
        dir_, db_, Env(), stderr_name,
        std::vector<std::string>{"--public-url", kPublicUrl, "--provider-poll-ms", std::to_string(poll_ms)});
  }

  nlohmann::json OutboxCounts() { return MustJson("provider status")["counts"]; }
  // Waits until nothing is pending or retrying (a running serve, or `provider sync --once` when
  // `sync` is set, delivers). False on timeout.
  bool WaitOutboxEmpty(int seconds, bool sync = false) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
      if (sync) RunP("provider sync --once");
      nlohmann::json c = OutboxCounts();
      if (c["pending"] == 0 && c["retrying"] == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  // The members of a participant group on the fake.
  std::set<std::string> Members(const std::string& group) {
    nlohmann::json g = fake_.State()["groups"][group];
    std::set<std::string> out;
    for (const auto& m : g["members"]) out.insert(m.get<std::string>());
    return out;
  }

  ProlificFake fake_;
  int timeout_ms_ = 1000;
};

}  // namespace crowdgate::testing
