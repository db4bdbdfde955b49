#include "store/sqlite/wal_checkpointer.hpp"

#include <sqlite3.h>

#include <utility>

namespace crowdgate {

WalCheckpointer::WalCheckpointer(std::string path, int threshold_pages)
    : path_(std::move(path)),
      threshold_pages_(threshold_pages < 1 ? 1 : threshold_pages),
      writer_fallback_pages_(64 * threshold_pages_) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool WalCheckpointer::OnCommit(int wal_pages) {
  if (wal_pages < threshold_pages_) return false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return wal_pages >= writer_fallback_pages_;
    wanted_ = true;
    if (!started_) {
      started_ = true;
      thread_ = std::thread([this] { Loop(); });
    }
  }
  cv_.notify_one();
  return wal_pages >= writer_fallback_pages_;
}

int64_t WalCheckpointer::checkpoints() const {
  std::lock_guard<std::mutex> l(mu_);
  return checkpoints_;
}

std::string WalCheckpointer::last_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_error_;
}

void WalCheckpointer::Loop() {
  sqlite3* db = nullptr;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return wanted_ || stopping_; });
      if (stopping_) break;
      wanted_ = false;
    }
    std::string error;
    if (db == nullptr) {
      // SQLITE_OPEN_NOMUTEX: this connection is used by this thread only.
      const int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
      if (rc != SQLITE_OK) {
        error = "open " + path_ + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        db = nullptr;
      } else if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) != SQLITE_OK) {
        // A connection learns that the file is in WAL mode when it first reads it; until then a
        // checkpoint does nothing.
        error = "read " + path_ + ": " + sqlite3_errmsg(db);
        sqlite3_close_v2(db);
        db = nullptr;
      }
    }
    if (db != nullptr) {
      int log_frames = 0;
      int copied_frames = 0;
      // PASSIVE: takes no lock a writer or reader waits on; SQLITE_BUSY only means another
      // connection (another server on the same file) is checkpointing now, which is as good.
      const int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied_frames);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) error = "checkpoint " + path_ + ": " + sqlite3_errmsg(db);
    }
    std::lock_guard<std::mutex> l(mu_);
    if (error.empty()) ++checkpoints_;
    last_error_ = error;
  }
  sqlite3_close_v2(db);
}

}  // namespace crowdgate
