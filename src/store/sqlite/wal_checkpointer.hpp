// WalCheckpointer: copies a WAL-mode SQLite database's log back into the database file on a
// thread and connection of its own, so that no commit waits for a checkpoint.
//
// Why: SQLite's default is that the commit which takes the log past 1,000 pages runs the
// checkpoint itself, on the committing thread: it writes those pages into the database file and
// fsyncs it. On the task server that thread is the one deciding every worker request, so every
// few hundred commits a whole batch of requests waited several milliseconds for the disk; that
// was the tail of the latency.
//
// How: the owner disables the automatic checkpoint and calls OnCommit after each commit with
// the log's size (sqlite3_wal_hook gives it). Past `threshold_pages` the checkpointer wakes and
// runs a PASSIVE checkpoint, which never blocks writers or readers and copies what no reader
// still needs. The thread and its connection start at the first checkpoint, so a short CLI
// command that never fills the log starts neither. Should the log still grow to
// `writer_fallback_pages` (the checkpointer stuck behind a long reader, say), OnCommit says so
// and the owner checkpoints on its own thread, as SQLite would have: the log stays bounded.
//
// Thread-safety: OnCommit from the owner's writing thread; the rest is internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace crowdgate {

class WalCheckpointer {
 public:
  static constexpr int kDefaultThresholdPages = 1000;  // SQLite's own automatic checkpoint size

  WalCheckpointer(std::string path, int threshold_pages = kDefaultThresholdPages);
  ~WalCheckpointer();  // stops and joins the thread (a checkpoint under way finishes first)
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // After a commit: the log now holds `wal_pages` pages. Returns true when the caller should
  // checkpoint right away on its own connection (the log reached the fallback bound).
  bool OnCommit(int wal_pages);

  // Checkpoints run so far (for tests and diagnostics).
  int64_t checkpoints() const;
  // The last error of the checkpoint connection ("" = none); checkpoints are retried on the next
  // commit past the threshold, and the owner's fallback bounds the log meanwhile.
  std::string last_error() const;

 private:
  void Loop();

  const std::string path_;
  const int threshold_pages_;
  const int writer_fallback_pages_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  bool started_ = false;
  int64_t checkpoints_ = 0;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace crowdgate
