// crowdgate::Env: the seam for everything that is not ours — clock, randomness and id
// generation. The engine reaches these only through an Env, so tests can fake time
// (lease and grant expiry) and randomness (gold picking).
//
// Contract: Env::Default() is thread-safe and lives for the whole process. NowMicros()
// is wall-clock time in microseconds since the Unix epoch. RandomBytes() is
// cryptographically strong in the default Env (tokens are made from it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace crowdgate {

class Env {
 public:
  virtual ~Env() = default;
  static Env* Default();

  virtual int64_t NowMicros() = 0;
  // Fills `out` with `n` random bytes.
  virtual void RandomBytes(uint8_t* out, size_t n) = 0;
  // Uniform integer in [0, bound). bound must be > 0.
  virtual uint64_t Uniform(uint64_t bound);

  // A fresh 128-bit random value as 32 lowercase hex characters (tokens, agent ids).
  std::string RandomHex128();
};

// Forwards every call to another Env; override what a test needs to change.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  int64_t NowMicros() override { return target_->NowMicros(); }
  void RandomBytes(uint8_t* out, size_t n) override { target_->RandomBytes(out, n); }
  uint64_t Uniform(uint64_t bound) override { return target_->Uniform(bound); }

 private:
  Env* target_;
};

// A deterministic Env for tests: time moves only when told, randomness is seeded.
class FakeEnv : public Env {
 public:
  explicit FakeEnv(int64_t start_micros = 1'700'000'000'000'000, uint64_t seed = 42)
      : now_(start_micros), rng_(seed) {}
  int64_t NowMicros() override {
    std::lock_guard<std::mutex> l(mu_);
    return now_;
  }
  void AdvanceSeconds(double s) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += static_cast<int64_t>(s * 1e6);
  }
  void SetNowMicros(int64_t t) {
    std::lock_guard<std::mutex> l(mu_);
    now_ = t;
  }
  void RandomBytes(uint8_t* out, size_t n) override {
    std::lock_guard<std::mutex> l(mu_);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(rng_());
  }

 private:
  std::mutex mu_;
  int64_t now_;
  std::mt19937_64 rng_;
};

// Time helpers shared by every layer.
constexpr int64_t kMicrosPerSecond = 1'000'000;
// "2026-11-25T21:13:12Z" (UTC, second precision).
std::string FormatTimestamp(int64_t micros);

}  // namespace crowdgate
