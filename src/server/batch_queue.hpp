// BatchQueue: answers the worker API with group commit.
//
// The io threads parse and validate a request, then queue a job. One thread takes every job
// queued so far, runs them all inside one Dispatcher::Batch (one store transaction) and, only
// after that transaction has committed, hands each job's response to its responder. Under load a
// batch holds many requests and they share one commit; an idle server runs batches of one.
// A response is never sent before its writes are durable, so a crash loses nothing answered.
//
// A job may refuse to run inside a batch (it would block: an external check command) by
// returning nullopt; it is then run again, alone and with in_batch = false, on a small pool of
// "slow lane" threads, so one slow check never holds up everyone else's requests.
//
// Load shedding: at most Options::max_queue jobs wait (for a batch or for the slow lane). Past that
// bound Submit answers at once 503 "unavailable" with a Retry-After header instead of queueing, so
// an overload costs memory bounded by max_queue and clients learn to back off, rather than every
// request waiting longer and longer until it times out.
//
// Thread-safety: Submit from any thread. Start/Stop from the owning thread. Stop() answers every
// job already queued (running it) and joins the threads; jobs submitted after Stop() are answered
// 503 at once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "crowdgate/dispatcher.hpp"
#include "server/http_server.hpp"

namespace crowdgate {

class BatchQueue {
 public:
  // Runs a request's dispatcher calls and returns its response; nullopt (only when in_batch)
  // = "run me outside any batch".
  using Job = std::function<std::optional<HttpResponse>(bool in_batch)>;

  struct Options {
    size_t max_batch = 128;   // jobs per transaction at most (bounds the latency one batch adds)
    int slow_lane_threads = 4;
    // Jobs waiting at most (queued for a batch or for the slow lane); more are refused with 503.
    size_t max_queue = kDefaultMaxQueue;
    int retry_after_seconds = 1;  // the Retry-After header of a refusal
  };
  static constexpr size_t kDefaultMaxQueue = 4096;

  explicit BatchQueue(Dispatcher* dispatcher) : BatchQueue(dispatcher, Options()) {}
  BatchQueue(Dispatcher* dispatcher, Options options);
  ~BatchQueue();
  BatchQueue(const BatchQueue&) = delete;
  BatchQueue& operator=(const BatchQueue&) = delete;

  void Start();
  void Submit(Job job, HttpResponder respond);
  void Stop();

  // Counters for tests and benchmarks.
  struct Stats {
    uint64_t batches = 0;
    uint64_t jobs = 0;
    uint64_t slow_lane_jobs = 0;
    size_t largest_batch = 0;
    uint64_t shed = 0;        // jobs refused with 503 because max_queue jobs were waiting
    size_t queued = 0;        // jobs waiting now (a gauge)
    double batch_seconds_total = 0;  // decide + commit time of every batch (for /metrics)
    double batch_cpu_seconds_total = 0;  // CPU time the batch thread spent on them (without waits for the disk or a core)
  };
  Stats stats() const;

 private:
  struct Pending {
    Job job;
    HttpResponder respond;
  };

  void BatchLoop();
  void SlowLaneLoop();
  void RunBatch(std::vector<Pending>* batch);
  HttpResponse Overloaded() const;

  Dispatcher* dispatcher_;
  Options options_;

  mutable std::mutex mu_;
  std::condition_variable batch_cv_;  // jobs_ gained an entry, or stopping
  std::condition_variable slow_cv_;   // slow_ gained an entry, or stopping
  std::deque<Pending> jobs_;
  std::deque<Pending> slow_;
  bool started_ = false;
  bool stopping_ = false;
  bool batch_done_ = false;  // the batch thread has drained jobs_ and exited
  Stats stats_;

  std::thread batch_thread_;
  std::vector<std::thread> slow_threads_;
};

}  // namespace crowdgate
