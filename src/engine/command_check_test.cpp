#include "engine/command_check.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace crowdgate {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

CheckSpec Shell(const std::string& script, double timeout_s = 10) {
  CheckSpec spec;
  spec.command = {"/bin/sh", "-c", script};
  spec.timeout_s = timeout_s;
  return spec;
}

CheckResult RunCheck(const CheckSpec& spec) {
  return RunCommandCheck(spec, {{"text", "hello"}}, {{"label", "pos"}}, {{"label", "pos"}});
}

TEST(CommandCheckTest, ExitZeroPasses) {
  CheckResult r = RunCheck(Shell("exit 0"));
  EXPECT_EQ(r.outcome, CheckOutcome::kPass) << r.detail;
}

TEST(CommandCheckTest, ExitOneFails) {
  CheckResult r = RunCheck(Shell("exit 1"));
  EXPECT_EQ(r.outcome, CheckOutcome::kFail) << r.detail;
}

TEST(CommandCheckTest, OtherExitCodesAreErrors) {
  CheckResult r = RunCheck(Shell("exit 3"));
  EXPECT_EQ(r.outcome, CheckOutcome::kError);
  EXPECT_THAT(r.detail, HasSubstr("exited 3"));
}

TEST(CommandCheckTest, ReadsTheDocumentFromStdin) {
  const CheckSpec spec = Shell(R"sh(doc=$(cat)
case "$doc" in
  *'"answer":{"label":"pos"}'*'"inputs":{"text":"hello"}'*'"submission":{"label":"neg"}'*) exit 0 ;;
  *) echo "unexpected: $doc" >&2; exit 1 ;;
esac)sh");
  CheckResult r = RunCommandCheck(spec, {{"text", "hello"}}, {{"label", "pos"}}, {{"label", "neg"}});
  EXPECT_EQ(r.outcome, CheckOutcome::kPass) << r.detail;
}

TEST(CommandCheckTest, ProgramCanJudgeTheSubmission) {
  // A realistic checker: pass when the submission's label equals the answer's.
  const CheckSpec spec = Shell(R"sh(doc=$(cat)
a=$(printf '%s' "$doc" | sed 's/.*"answer":{"label":"\([a-z]*\)".*/\1/')
s=$(printf '%s' "$doc" | sed 's/.*"submission":{"label":"\([a-z]*\)".*/\1/')
[ "$a" = "$s" ])sh");
  EXPECT_EQ(RunCommandCheck(spec, json::object(), {{"label", "pos"}}, {{"label", "pos"}}).outcome, CheckOutcome::kPass);
  EXPECT_EQ(RunCommandCheck(spec, json::object(), {{"label", "pos"}}, {{"label", "neg"}}).outcome, CheckOutcome::kFail);
}

TEST(CommandCheckTest, StderrIsQuotedInTheDetail) {
  CheckResult r = RunCheck(Shell("echo 'label field missing' >&2; exit 2"));
  EXPECT_EQ(r.outcome, CheckOutcome::kError);
  EXPECT_THAT(r.detail, HasSubstr("stderr: label field missing"));
}

TEST(CommandCheckTest, StderrIsCappedAtFourKiB) {
  CheckResult r = RunCheck(Shell("head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1"));
  EXPECT_EQ(r.outcome, CheckOutcome::kFail) << r.detail.substr(0, 200);
  EXPECT_THAT(r.detail, HasSubstr(std::string(4096, 'x') + " [truncated]"));
  EXPECT_THAT(r.detail, ::testing::Not(HasSubstr(std::string(4097, 'x'))));
}

TEST(CommandCheckTest, StdoutIsIgnored) {
  ::testing::internal::CaptureStdout();  // the program must not write into the server's stdout
  CheckResult r = RunCheck(Shell("echo \"out$((6 * 7))put\"; exit 0"));
  const std::string our_stdout = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(r.outcome, CheckOutcome::kPass);
  EXPECT_THAT(our_stdout, ::testing::Not(HasSubstr("out42put")));
  EXPECT_THAT(r.detail, ::testing::Not(HasSubstr("out42put")));
}

TEST(CommandCheckTest, TimeoutKillsTheProgram) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult r = RunCheck(Shell("sleep 30", 0.3));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.outcome, CheckOutcome::kError);
  EXPECT_THAT(r.detail, HasSubstr("timed out after 0.3s"));
  EXPECT_GE(elapsed, std::chrono::milliseconds(300));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(CommandCheckTest, BackgroundChildrenDoNotHoldTheCheck) {
  // The shell exits at once but leaves a sleeper holding stderr; the check must not wait for it.
  const auto start = std::chrono::steady_clock::now();
  CheckResult r = RunCheck(Shell("sleep 30 & exit 0", 5));
  EXPECT_EQ(r.outcome, CheckOutcome::kPass) << r.detail;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// True once /proc says the process is gone or a zombie (waiting for init to reap it).
bool ProcessIsDead(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST(CommandCheckTest, BackgroundChildrenAreKilled) {
  CheckResult r = RunCheck(Shell("sleep 30 & echo \"bg=$!\" >&2; exit 0"));
  ASSERT_EQ(r.outcome, CheckOutcome::kPass) << r.detail;
  const size_t at = r.detail.rfind("bg=");  // the last one is in the quoted stderr
  ASSERT_NE(at, std::string::npos) << r.detail;
  const std::string pid = r.detail.substr(at + 3, r.detail.find_first_not_of("0123456789", at + 3) - at - 3);
  ASSERT_FALSE(pid.empty());
  bool dead = false;
  for (int i = 0; i < 100 && !dead; ++i) {
    dead = ProcessIsDead(pid);
    if (!dead) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(dead) << "background process " << pid << " outlived the check";
}

TEST(CommandCheckTest, ProgramThatIgnoresStdinStillWorks) {
  // A large document and a program that never reads it: no SIGPIPE may reach us.
  json big = json::object();
  big["text"] = std::string(1 << 20, 'a');
  CheckResult r = RunCommandCheck(Shell("exit 0"), big, big, big);
  EXPECT_EQ(r.outcome, CheckOutcome::kPass) << r.detail;
}

TEST(CommandCheckTest, SignalDeathIsAnError) {
  CheckResult r = RunCheck(Shell("kill -SEGV $$"));
  EXPECT_EQ(r.outcome, CheckOutcome::kError);
  EXPECT_THAT(r.detail, HasSubstr("killed by signal 11 (SIGSEGV)"));
}

TEST(CommandCheckTest, MissingProgramIsAnError) {
  CheckSpec spec;
  spec.command = {"/nonexistent/crowdgate-checker"};
  CheckResult r = RunCheck(spec);
  EXPECT_EQ(r.outcome, CheckOutcome::kError);
  EXPECT_THAT(r.detail, HasSubstr("crowdgate-checker"));
}

TEST(CommandCheckTest, EmptyCommandIsAnError) { EXPECT_EQ(RunCheck(CheckSpec{}).outcome, CheckOutcome::kError); }

TEST(CommandCheckTest, LooksUpTheProgramInPath) {
  CheckSpec spec;
  spec.command = {"true"};
  EXPECT_EQ(RunCheck(spec).outcome, CheckOutcome::kPass);
  spec.command = {"false"};
  EXPECT_EQ(RunCheck(spec).outcome, CheckOutcome::kFail);
}

TEST(CommandCheckTest, ConcurrentChecksDoNotInterfere) {
  std::vector<std::thread> threads;
  std::vector<CheckOutcome> outcomes(16, CheckOutcome::kError);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([i, &outcomes] {
      // Each program reads its own document and exits with the number it finds there.
      const CheckSpec spec = Shell("grep -q '\"n\":" + std::to_string(i) + "}' && exit " + std::to_string(i % 2));
      outcomes[i] = RunCommandCheck(spec, {{"n", i}}, json::object(), json::object()).outcome;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(outcomes[i], i % 2 == 0 ? CheckOutcome::kPass : CheckOutcome::kFail) << i;
  }
}

TEST(CommandCheckTest, SigpipeMaskIsRestored) {
  sigset_t before;
  sigset_t after;
  pthread_sigmask(SIG_SETMASK, nullptr, &before);
  (void)RunCheck(Shell("exit 0"));
  pthread_sigmask(SIG_SETMASK, nullptr, &after);
  EXPECT_EQ(sigismember(&before, SIGPIPE), sigismember(&after, SIGPIPE));
}

}  // namespace
}  // namespace crowdgate
