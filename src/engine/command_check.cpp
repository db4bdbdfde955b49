#include "engine/command_check.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

namespace crowdgate {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxStderr = 4096;
// Without pidfd (kernels before 5.3) the child's exit is noticed by polling this often.
constexpr int kFallbackPollMs = 5;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Close();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Close(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string ErrnoText(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);  // GNU strerror_r: returns the message
}

// Blocks SIGPIPE in this thread while alive, and swallows a SIGPIPE our own writes raised,
// so a program that exits without reading stdin cannot kill the server.
class SigpipeBlocker {
 public:
  SigpipeBlocker() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  SigpipeBlocker(const SigpipeBlocker&) = delete;
  SigpipeBlocker& operator=(const SigpipeBlocker&) = delete;
  ~SigpipeBlocker() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  sigset_t pipe_set_;
  sigset_t old_mask_;
  bool was_pending_ = false;
};

struct Pipe {
  Fd read;
  Fd write;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::Internal("pipe2: " + ErrnoText(errno));
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string DescribeCommand(const std::vector<std::string>& argv) { return nlohmann::json(argv).dump(); }

// posix_spawn with the child's stdin/stderr on our pipes, stdout on /dev/null, a clean
// signal mask, default SIGPIPE and a process group of its own.
Result<pid_t> Spawn(const std::vector<std::string>& command, int stdin_fd, int stderr_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
  sigset_t empty;
  sigset_t defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> argv;
  for (const auto& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int err = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return Status::Unavailable("cannot start " + DescribeCommand(command) + ": " + ErrnoText(err));
  return pid;
}

Fd OpenPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return Fd(static_cast<int>(fd));
  }
#endif
  return Fd();
}

bool HasExited(pid_t pid) {
  siginfo_t info{};
  // WNOWAIT leaves the zombie in place, so the pid (and process group) stay ours until reaped.
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

struct ChildIo {
  std::string payload;
  size_t written = 0;
  Fd stdin_w;
  Fd stderr_r;
  std::string stderr_text;
  bool stderr_truncated = false;
};

void WriteSome(ChildIo& io) {
  while (io.written < io.payload.size()) {
    const ssize_t n = ::write(io.stdin_w.get(), io.payload.data() + io.written, io.payload.size() - io.written);
    if (n > 0) {
      io.written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    io.stdin_w.Close();  // EPIPE: the program does not want (the rest of) its input
    return;
  }
  io.stdin_w.Close();
}

// Reads what is available; bytes beyond kMaxStderr are read and dropped so the child never
// blocks on a full pipe.
void ReadSome(ChildIo& io) {
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(io.stderr_r.get(), buf, sizeof buf);
    if (n > 0) {
      const size_t room = kMaxStderr - std::min(kMaxStderr, io.stderr_text.size());
      io.stderr_text.append(buf, std::min(room, static_cast<size_t>(n)));
      if (static_cast<size_t>(n) > room) io.stderr_truncated = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) io.stderr_r.Close();
    return;
  }
}

// Feeds stdin and collects stderr until the child exits (true) or the deadline passes (false).
bool Supervise(pid_t pid, ChildIo& io, Clock::time_point deadline) {
  Fd pidfd = OpenPidFd(pid);
  while (true) {
    if (HasExited(pid)) return true;
    const auto now = Clock::now();
    if (now >= deadline) return false;
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    if (!pidfd.open()) wait_ms = std::min<long>(wait_ms, kFallbackPollMs);

    pollfd fds[3];
    nfds_t n = 0;
    int stdin_slot = -1;
    int stderr_slot = -1;
    if (pidfd.open()) fds[n++] = {pidfd.get(), POLLIN, 0};
    if (io.stdin_w.open()) {
      stdin_slot = static_cast<int>(n);
      fds[n++] = {io.stdin_w.get(), POLLOUT, 0};
    }
    if (io.stderr_r.open()) {
      stderr_slot = static_cast<int>(n);
      fds[n++] = {io.stderr_r.get(), POLLIN, 0};
    }
    if (n == 0) {
      // Nothing to watch but no pidfd either: sleep a tick before looking again.
      poll(nullptr, 0, kFallbackPollMs);
      continue;
    }
    if (poll(fds, n, static_cast<int>(wait_ms)) < 0 && errno != EINTR) return HasExited(pid);
    if (stdin_slot >= 0 && fds[stdin_slot].revents != 0) WriteSome(io);
    if (stderr_slot >= 0 && fds[stderr_slot].revents != 0) ReadSome(io);
  }
}

int Reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

std::string StderrSuffix(const ChildIo& io) {
  if (io.stderr_text.empty()) return "";
  std::string text = io.stderr_text;
  for (char& c : text) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f) c = '?';
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return "; stderr: " + text + (io.stderr_truncated ? " [truncated]" : "");
}

std::string FormatSeconds(double s) {
  std::string text = std::to_string(s);
  while (text.size() > 1 && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + "s";
}

CheckResult Classify(const std::string& what, int status, const ChildIo& io) {
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == 0) return {CheckOutcome::kPass, what + " exited 0 (pass)" + StderrSuffix(io)};
    if (code == 1) return {CheckOutcome::kFail, what + " exited 1 (fail)" + StderrSuffix(io)};
    return {CheckOutcome::kError,
            what + " exited " + std::to_string(code) + " (expected 0 = pass or 1 = fail)" + StderrSuffix(io)};
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return {CheckOutcome::kError, what + " was killed by signal " + std::to_string(sig) +
                                      (abbrev ? " (SIG" + std::string(abbrev) + ")" : "") + StderrSuffix(io)};
  }
  return {CheckOutcome::kError, what + " ended with unexpected wait status " + std::to_string(status)};
}

CheckResult RunUnchecked(const CheckSpec& spec, const nlohmann::json& inputs, const nlohmann::json& answer,
                         const nlohmann::json& submission) {
  if (spec.command.empty()) return {CheckOutcome::kError, "no command to run"};
  if (!(spec.timeout_s > 0) || !std::isfinite(spec.timeout_s)) {
    return {CheckOutcome::kError, "timeout_s must be a positive number of seconds"};
  }
  const std::string what = "check command " + DescribeCommand(spec.command);
  ChildIo io;
  io.payload = nlohmann::json{{"inputs", inputs}, {"answer", answer}, {"submission", submission}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);

  auto in = MakePipe();
  if (!in.ok()) return {CheckOutcome::kError, in.status().message()};
  auto err = MakePipe();
  if (!err.ok()) return {CheckOutcome::kError, err.status().message()};

  SigpipeBlocker sigpipe_blocker;
  const auto started = Clock::now();
  auto pid = Spawn(spec.command, in->read.get(), err->write.get());
  if (!pid.ok()) return {CheckOutcome::kError, pid.status().message()};
  in->read.Close();
  err->write.Close();
  io.stdin_w = std::move(in->write);
  io.stderr_r = std::move(err->read);
  SetNonBlocking(io.stdin_w.get());
  SetNonBlocking(io.stderr_r.get());

  const auto deadline =
      started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(spec.timeout_s));
  const bool exited = Supervise(*pid, io, deadline);
  // Kill the whole group (on timeout the program itself, otherwise background leftovers) before
  // reaping: the unreaped child keeps the group id from being reused.
  kill(-*pid, SIGKILL);
  if (exited && io.stderr_r.open()) ReadSome(io);  // what the program wrote just before exiting
  const int status = Reap(*pid);
  if (!exited) {
    return {CheckOutcome::kError,
            what + " timed out after " + FormatSeconds(spec.timeout_s) + " and was killed" + StderrSuffix(io)};
  }
  return Classify(what, status, io);
}

}  // namespace

CheckResult RunCommandCheck(const CheckSpec& spec, const nlohmann::json& inputs, const nlohmann::json& answer,
                            const nlohmann::json& submission) {
  try {
    return RunUnchecked(spec, inputs, answer, submission);
  } catch (const std::exception& e) {
    return {CheckOutcome::kError, std::string("check command failed unexpectedly: ") + e.what()};
  }
}

}  // namespace crowdgate
