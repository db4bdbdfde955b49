// How a SQLite connection waits for another connection's write lock (another server process on
// the same file, or a CLI command).
//
// SQLite's own busy timeout sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between
// tries. A server whose batch found another server's batch committing thus slept on long after
// the lock was free: with three servers on one file and an even crowd, the p99 was over half a
// second. BusyWait tries again after 50, 100, 200 and then every 400 µs, for at most 5 s in all
// (the budget SQLite's timeout had), and then gives up: the call fails as busy (Unavailable).
#pragma once

#include <sqlite3.h>

#include <cstdint>

namespace crowdgate {

class BusyWait {
 public:
  static constexpr int64_t kBudgetMicros = 5'000'000;

  // Installs the wait on `db` (replacing any busy timeout). `wait` must outlive the connection's use.
  static void Install(sqlite3* db, BusyWait* wait);

  // The pause before try number `tries` + 1, after `waited_micros` of waiting in all; -1 = give up.
  static int64_t PauseMicros(int tries, int64_t waited_micros);

 private:
  static int OnBusy(void* wait, int tries);
  int64_t started_micros_ = 0;  // when the current wait began (tries == 0)
};

}  // namespace crowdgate
