#include "store/sqlite/busy_wait.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace crowdgate {

namespace {

int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void BusyWait::Install(sqlite3* db, BusyWait* wait) { sqlite3_busy_handler(db, &BusyWait::OnBusy, wait); }

int64_t BusyWait::PauseMicros(int tries, int64_t waited_micros) {
  if (waited_micros >= kBudgetMicros) return -1;
  const int64_t pause = int64_t{50} << std::clamp(tries, 0, 3);
  return std::min(pause, kBudgetMicros - waited_micros);
}

int BusyWait::OnBusy(void* wait, int tries) {
  auto* self = static_cast<BusyWait*>(wait);
  const int64_t now = MonotonicMicros();
  if (tries == 0) self->started_micros_ = now;
  const int64_t pause = PauseMicros(tries, now - self->started_micros_);
  if (pause < 0) return 0;  // SQLITE_BUSY goes to the caller
  std::this_thread::sleep_for(std::chrono::microseconds(pause));
  return 1;
}

}  // namespace crowdgate
