#include "crowdgate/env.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <stdexcept>

namespace crowdgate {

namespace {
// std::random_device on Linux/glibc reads the kernel's getrandom(), which is the
// strength tokens need; the mutex keeps concurrent callers from sharing its state.
class PosixEnv : public Env {
 public:
  int64_t NowMicros() override {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  }
  void RandomBytes(uint8_t* out, size_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    size_t i = 0;
    while (i < n) {
      unsigned int r = dev_();
      for (int b = 0; b < 4 && i < n; ++b, ++i) out[i] = static_cast<uint8_t>(r >> (8 * b));
    }
  }

 private:
  std::mutex mu_;
  std::random_device dev_;
};
}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();  // never destroyed: used by detached threads at exit
  return env;
}

uint64_t Env::Uniform(uint64_t bound) {
  if (bound <= 1) return 0;
  // Rejection sampling so every value is equally likely.
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  while (true) {
    uint64_t v = 0;
    RandomBytes(reinterpret_cast<uint8_t*>(&v), sizeof(v));
    if (v < limit) return v % bound;
  }
}

std::string Env::RandomHex128() {
  uint8_t bytes[16];
  RandomBytes(bytes, sizeof(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

std::string FormatTimestamp(int64_t micros) {
  std::time_t secs = static_cast<std::time_t>(micros / kMicrosPerSecond);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace crowdgate
