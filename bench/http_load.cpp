// HttpLoad (see http_load.hpp): measures throughput, latency and errors of work + submit over
// loopback keep-alive connections, from one epoll thread so the client costs little CPU.
#include "http_load.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <queue>
#include <random>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"

namespace crowdgate::bench {

namespace {

enum class Phase { kIdle, kWork, kSubmit };

struct Conn {
  int fd = -1;
  int index = 0;
  Phase phase = Phase::kIdle;
  int64_t cycle = 0;
  std::string worker;
  std::string agent_id;
  std::string token;
  std::string out;
  size_t out_off = 0;
  std::string in;
  double sent_at = 0;
  bool want_write = false;
};

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Parses one complete response at the front of `in`: status and body; false if incomplete.
bool ParseResponse(std::string* in, int* status, std::string* body) {
  const size_t head_end = in->find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  size_t length = 0;
  for (size_t pos = in->find("\r\n"); pos < head_end; pos = in->find("\r\n", pos + 2)) {
    static constexpr char kName[] = "content-length:";
    if (strncasecmp(in->data() + pos + 2, kName, sizeof(kName) - 1) == 0) {
      length = std::strtoull(in->data() + pos + 2 + sizeof(kName) - 1, nullptr, 10);
    }
  }
  if (in->size() < head_end + 4 + length) return false;
  *status = in->size() > 12 ? std::atoi(in->data() + 9) : 0;
  body->assign(*in, head_end + 4, length);
  in->erase(0, head_end + 4 + length);
  return true;
}

class Load {
 public:
  explicit Load(const HttpLoadOptions& o) : o_(o), conns_(static_cast<size_t>(o.connections)) {}

  HttpLoadResult Run() {
    ep_ = ::epoll_create1(0);
    const double start = NowSeconds();
    warm_ = start + o_.warmup_s;
    end_ = warm_ + o_.duration_s;
    // Each connection sends one request per `interval`; starts are staggered over one interval.
    interval_ = o_.offered_rate > 0 ? static_cast<double>(o_.connections) / o_.offered_rate : 0;
    for (int i = 0; i < o_.connections; ++i) {
      Conn& c = conns_[static_cast<size_t>(i)];
      c.index = i;
      if (!Reconnect(c)) return Finish(start);
      timers_.push({start + interval_ * i / o_.connections, i});
    }
    std::vector<epoll_event> events(256);
    while (true) {
      const double now = NowSeconds();
      if (now >= end_) break;
      while (!timers_.empty() && timers_.top().first <= now) {
        const int i = timers_.top().second;
        timers_.pop();
        SendNext(conns_[static_cast<size_t>(i)], now);
      }
      double wait = end_ - now;
      if (!timers_.empty()) wait = std::min(wait, timers_.top().first - now);
      const int timeout_ms = static_cast<int>(std::max(0.0, std::min(wait, 0.01)) * 1000);
      const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
      for (int k = 0; k < n; ++k) {
        Conn& c = conns_[static_cast<size_t>(events[k].data.u32)];
        if ((events[k].events & EPOLLOUT) != 0) Flush(c);
        if ((events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) Read(c);
      }
    }
    return Finish(start);
  }

 private:
  bool Reconnect(Conn& c) {
    if (c.fd >= 0) {
      ::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
    }
    c.fd = Connect(o_.ports.empty() ? o_.port : o_.ports[static_cast<size_t>(c.index) % o_.ports.size()]);
    c.in.clear();
    c.out.clear();
    c.out_off = 0;
    c.phase = Phase::kIdle;
    c.want_write = false;
    if (c.fd < 0) {
      Error("connect: " + std::string(std::strerror(errno)));
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(c.index);
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  void Error(const std::string& what) {
    ++r_.errors;
    if (r_.error_samples.size() < 10) r_.error_samples.push_back(what);
  }

  void SendNext(Conn& c, double now) {
    if (c.phase != Phase::kIdle) return;
    std::string target;
    std::string body;
    std::string extra;
    if (c.agent_id.empty()) {
      const int64_t n = (c.index + c.cycle * o_.connections) % o_.worker_population + 1;
      ++c.cycle;
      c.worker = "w" + std::to_string(n);
      target = "/api/v1/runs/" + o_.run_id + "/work";
      body = R"({"provider": "local", "worker": ")" + c.worker + "\"}";
      c.phase = Phase::kWork;
    } else {
      target = "/api/v1/agents/" + c.agent_id + "/submit";
      body = R"({"data": {"label": "x"}})";
      extra = "Authorization: Bearer " + c.token + "\r\n";
      c.phase = Phase::kSubmit;
    }
    c.out = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + extra +
            "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    c.out_off = 0;
    c.sent_at = now;
    Flush(c);
  }

  void Flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Error("send: " + std::string(std::strerror(errno)));
      Retry(c);
      return;
    }
    const bool want = c.out_off < c.out.size();
    if (want != c.want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
      ev.data.u32 = static_cast<uint32_t>(c.index);
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
      c.want_write = want;
    }
  }

  // After an error the worker drops its agent and asks again on a new connection.
  void Retry(Conn& c) {
    c.agent_id.clear();
    if (Reconnect(c)) timers_.push({NowSeconds() + interval_, c.index});
  }

  void Read(Conn& c) {
    char buf[16384];
    while (true) {
      const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (c.phase != Phase::kIdle) Error("connection closed by the server");
      Retry(c);
      return;
    }
    int status = 0;
    std::string body;
    while (ParseResponse(&c.in, &status, &body)) Done(c, status, body);
  }

  void Done(Conn& c, int status, const std::string& body) {
    const double now = NowSeconds();
    if (c.phase == Phase::kIdle) {
      Error("response without a request");
      return;
    }
    if (c.sent_at >= warm_ && now <= end_) {
      ++r_.requests;
      if (status == 503) ++r_.shed;
      r_.latencies_ms.push_back((now - c.sent_at) * 1000);
    }
    const Phase phase = c.phase;
    c.phase = Phase::kIdle;
    double next = std::max(now, c.sent_at + ThinkTime());
    if (status != 200) {
      if (status == 503) {
        ++r_.shed_all;
        next = std::max(next, now + o_.backoff_after_503_s);
      }
      Error((phase == Phase::kWork ? "work: HTTP " : "submit: HTTP ") + std::to_string(status) + " " +
            body.substr(0, 200));
      c.agent_id.clear();
      timers_.push({next, c.index});
      return;
    }
    if (phase == Phase::kWork) {
      auto j = nlohmann::json::parse(body, nullptr, false);
      const std::string outcome = j.is_object() ? j.value("outcome", "") : "";
      if (outcome != "unit") {
        ++r_.no_work;
        Error("work: outcome " + outcome + " " + body.substr(0, 200));
        c.agent_id.clear();
      } else {
        c.agent_id = j.value("agent_id", "");
        c.token = j.value("token", "");
      }
    } else {
      c.agent_id.clear();
    }
    timers_.push({next, c.index});
  }

  HttpLoadResult Finish(double start) {
    for (auto& c : conns_) {
      if (c.fd >= 0) ::close(c.fd);
      c.fd = -1;
    }
    if (ep_ >= 0) ::close(ep_);
    r_.elapsed_s = std::min(NowSeconds(), end_) - std::max(start, warm_);
    r_.throughput = r_.elapsed_s > 0 ? static_cast<double>(r_.requests) / r_.elapsed_s : 0;
    return std::move(r_);
  }

  using Timer = std::pair<double, int>;
  const HttpLoadOptions& o_;
  std::vector<Conn> conns_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  int ep_ = -1;
  double warm_ = 0;
  double end_ = 0;
  double interval_ = 0;
  // A think time drawn around `interval_` (uniformly from half to one and a half of it; the mean
  // keeps the offered rate). With the same think time for everyone, connections that were once
  // answered late together stay together: the crowd turned into bursts (all of an interval's
  // requests within half of it, then nothing), and the latency measured was the bursts' queue.
  // Real workers do not think in step.
  double ThinkTime() { return interval_ * think_jitter_(rng_); }
  std::mt19937_64 rng_{20261129};
  std::uniform_real_distribution<double> think_jitter_{0.5, 1.5};
  HttpLoadResult r_;
};

}  // namespace

HttpLoadResult RunHttpLoad(const HttpLoadOptions& options) { return Load(options).Run(); }

}  // namespace crowdgate::bench
