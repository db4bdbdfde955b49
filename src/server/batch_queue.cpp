#include "server/batch_queue.hpp"

#include <chrono>
#include <string>
#include <utility>

#include "core/thread_cpu_time.hpp"

namespace crowdgate {

namespace {

// A job that threw: the same answer the HTTP server gives a throwing handler.
HttpResponse Crashed() { return ErrorResponse(Status::Internal("internal server error")); }

}  // namespace

BatchQueue::BatchQueue(Dispatcher* dispatcher, Options options) : dispatcher_(dispatcher), options_(options) {
  if (options_.max_batch < 1) options_.max_batch = 1;
  if (options_.slow_lane_threads < 1) options_.slow_lane_threads = 1;
  if (options_.max_queue < 1) options_.max_queue = 1;
  if (options_.retry_after_seconds < 1) options_.retry_after_seconds = 1;
}

HttpResponse BatchQueue::Overloaded() const {
  HttpResponse r = ErrorResponse(Status::Unavailable("the server is overloaded (" + std::to_string(options_.max_queue) +
                                                     " requests waiting); retry after " +
                                                     std::to_string(options_.retry_after_seconds) + " s"));
  r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_seconds));
  return r;
}

BatchQueue::~BatchQueue() { Stop(); }

void BatchQueue::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  batch_done_ = false;
  batch_thread_ = std::thread([this] { BatchLoop(); });
  for (int i = 0; i < options_.slow_lane_threads; ++i) slow_threads_.emplace_back([this] { SlowLaneLoop(); });
}

void BatchQueue::Submit(Job job, HttpResponder respond) {
  bool shed = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_ && !stopping_) {
      if (jobs_.size() + slow_.size() < options_.max_queue) {
        jobs_.push_back({std::move(job), std::move(respond)});
        batch_cv_.notify_one();
        return;
      }
      ++stats_.shed;
      shed = true;
    }
  }
  if (shed) {
    respond(Overloaded());
    return;
  }
  respond(ErrorResponse(Status::Unavailable("the server is shutting down; try again shortly")));
}

void BatchQueue::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!started_) return;
    stopping_ = true;
  }
  batch_cv_.notify_all();
  // The batch thread drains jobs_ (possibly feeding the slow lane) before it exits; only then may
  // the slow lane stop, after draining slow_.
  if (batch_thread_.joinable()) batch_thread_.join();
  for (auto& t : slow_threads_) t.join();
  slow_threads_.clear();
  std::lock_guard<std::mutex> l(mu_);
  started_ = false;
}

BatchQueue::Stats BatchQueue::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  Stats s = stats_;
  s.queued = jobs_.size() + slow_.size();
  return s;
}

void BatchQueue::BatchLoop() {
  std::vector<Pending> batch;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      batch_cv_.wait(l, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {  // stopping and drained: the slow lane may finish once slow_ is empty
        batch_done_ = true;
        slow_cv_.notify_all();
        return;
      }
      while (!jobs_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
    }
    RunBatch(&batch);
    batch.clear();
  }
}

void BatchQueue::RunBatch(std::vector<Pending>* batch) {
  std::vector<std::optional<HttpResponse>> answers(batch->size());
  std::vector<bool> deferred(batch->size(), false);
  Status committed;
  const auto started = std::chrono::steady_clock::now();
  const double cpu_started = ThreadCpuSeconds();
  try {
    committed = dispatcher_->Batch([&] {
      for (size_t i = 0; i < batch->size(); ++i) {
        try {
          answers[i] = (*batch)[i].job(/*in_batch=*/true);
          deferred[i] = !answers[i].has_value();
        } catch (...) {
          answers[i] = Crashed();
        }
      }
    });
  } catch (...) {
    committed = Status::Internal("a batch of requests failed unexpectedly");
  }
  size_t slow = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.batches;
    stats_.jobs += batch->size();
    stats_.batch_seconds_total += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    stats_.batch_cpu_seconds_total += ThreadCpuSeconds() - cpu_started;
    if (batch->size() > stats_.largest_batch) stats_.largest_batch = batch->size();
    if (committed.ok()) {
      for (size_t i = 0; i < batch->size(); ++i) {
        if (!deferred[i]) continue;
        slow_.push_back(std::move((*batch)[i]));
        ++slow;
        ++stats_.slow_lane_jobs;
      }
    }
  }
  if (slow > 0) slow_cv_.notify_all();
  for (size_t i = 0; i < batch->size(); ++i) {
    Pending& p = (*batch)[i];
    if (!committed.ok()) {
      // Nothing of this batch is stored: say so to everyone in it (a retry is safe).
      p.respond(ErrorResponse(committed));
    } else if (!deferred[i]) {
      p.respond(std::move(*answers[i]));
    }
  }
}

void BatchQueue::SlowLaneLoop() {
  while (true) {
    Pending p;
    {
      std::unique_lock<std::mutex> l(mu_);
      // Exit only once the batch thread is gone (it may still add work) and slow_ is empty.
      slow_cv_.wait(l, [this] { return !slow_.empty() || batch_done_; });
      if (slow_.empty()) return;
      p = std::move(slow_.front());
      slow_.pop_front();
    }
    std::optional<HttpResponse> answer;
    try {
      answer = p.job(/*in_batch=*/false);
    } catch (...) {
      answer = Crashed();
    }
    p.respond(answer ? std::move(*answer) : ErrorResponse(Status::Internal("a request could not be decided")));
  }
}

}  // namespace crowdgate
