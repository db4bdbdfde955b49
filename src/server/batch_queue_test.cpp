// BatchQueue: group commit for the worker API. A job's answer leaves only after the transaction
// holding its writes has committed; jobs that would block go to the slow lane; every job gets
// exactly one answer, also when it throws and when the server stops.
#include "server/batch_queue.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "crowdgate/engine.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_test_util.hpp"

namespace crowdgate {
namespace {

using testing::OpenTestEngine;
using testing::TempDir;

class BatchQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = OpenTestEngine(Env::Default(), db_);
    ASSERT_TRUE(engine_->CreateQualification("vetted", "").ok());
    auto d = Dispatcher::Create(engine_.get());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dispatcher_ = std::move(d).value();
  }

  // A job that grants `vetted` to `worker` (a store write made inside the batch).
  BatchQueue::Job GrantJob(const std::string& worker) {
    return [this, worker](bool) -> std::optional<HttpResponse> {
      auto r = engine_->Grant({"vetted", worker, 1, std::nullopt, "test"});
      if (!r.ok()) return ErrorResponse(r.status());
      return JsonResponse(200, {{"worker", worker}});
    };
  }

  // Whether another connection (another process) sees the worker's grant now.
  bool VisibleOutside(const std::string& worker) {
    auto store = Store::Open(db_, Env::Default());
    if (!store.ok()) return false;
    auto w = (*store)->GetWorker(*ParseWorkerRef(worker));
    if (!w.ok()) return false;
    auto grants = (*store)->GrantsForWorker(w->id);
    return grants.ok() && !grants->empty();
  }

  TempDir dir_;
  std::string db_ = dir_.File("queue.db");
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Dispatcher> dispatcher_;
};

TEST_F(BatchQueueTest, AnAnswerLeavesOnlyOnceItsWritesAreCommitted) {
  BatchQueue queue(dispatcher_.get());
  queue.Start();
  constexpr int kJobs = 40;
  std::vector<std::promise<bool>> seen(kJobs);
  std::vector<std::future<bool>> results;
  for (auto& p : seen) results.push_back(p.get_future());
  for (int i = 0; i < kJobs; ++i) {
    const std::string worker = "w" + std::to_string(i);
    queue.Submit(GrantJob(worker), [this, worker, &seen, i](HttpResponse res) {
      seen[i].set_value(res.status == 200 && VisibleOutside(worker));
    });
  }
  for (int i = 0; i < kJobs; ++i) EXPECT_TRUE(results[i].get()) << "job " << i;
  queue.Stop();
  EXPECT_EQ(queue.stats().jobs, static_cast<uint64_t>(kJobs));
}

TEST_F(BatchQueueTest, RequestsThatQueueUpShareOneTransaction) {
  BatchQueue queue(dispatcher_.get());
  queue.Start();
  std::promise<void> release, running;
  std::shared_future<void> go = release.get_future().share();
  std::atomic<int> answered{0};
  // The first job holds the batch thread (once it is surely running) until every other job is queued.
  queue.Submit([go, &running](bool) -> std::optional<HttpResponse> {
    running.set_value();
    go.wait();
    return JsonResponse(200, {});
  }, [&](HttpResponse) { ++answered; });
  running.get_future().wait();
  for (int i = 0; i < 50; ++i) queue.Submit(GrantJob("q" + std::to_string(i)), [&](HttpResponse) { ++answered; });
  release.set_value();
  queue.Stop();  // answers everything queued before returning
  EXPECT_EQ(answered.load(), 51);
  EXPECT_EQ(queue.stats().largest_batch, 50u);  // the 50 queued behind the first share one transaction
  EXPECT_EQ(queue.stats().batches, 2u);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(VisibleOutside("q" + std::to_string(i)));
}

TEST_F(BatchQueueTest, AJobThatWouldBlockRunsAloneOutsideTheBatch) {
  BatchQueue queue(dispatcher_.get());
  queue.Start();
  std::promise<std::pair<int, bool>> out;
  std::atomic<int> calls{0};
  queue.Submit([&](bool in_batch) -> std::optional<HttpResponse> {
    ++calls;
    if (in_batch) return std::nullopt;
    return JsonResponse(201, {});
  }, [&](HttpResponse res) { out.set_value({res.status, true}); });
  EXPECT_EQ(out.get_future().get().first, 201);
  queue.Stop();
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(queue.stats().slow_lane_jobs, 1u);
}

TEST_F(BatchQueueTest, AThrowingJobGetsA500AndTheOthersAreCommitted) {
  BatchQueue queue(dispatcher_.get());
  queue.Start();
  std::mutex mu;
  std::vector<int> statuses;
  auto record = [&](HttpResponse res) {
    std::lock_guard<std::mutex> l(mu);
    statuses.push_back(res.status);
  };
  queue.Submit(GrantJob("before"), record);
  queue.Submit([](bool) -> std::optional<HttpResponse> { throw std::runtime_error("bug"); }, record);
  queue.Submit(GrantJob("after"), record);
  queue.Stop();
  std::sort(statuses.begin(), statuses.end());
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 500}));
  EXPECT_TRUE(VisibleOutside("before"));
  EXPECT_TRUE(VisibleOutside("after"));
}

TEST_F(BatchQueueTest, AfterStopJobsAreRefusedWith503) {
  BatchQueue queue(dispatcher_.get());
  queue.Start();
  queue.Stop();
  int status = 0;
  queue.Submit(GrantJob("late"), [&](HttpResponse res) { status = res.status; });
  EXPECT_EQ(status, 503);
  EXPECT_FALSE(VisibleOutside("late"));
}

// The header `name` of a response, "" when absent.
std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

// Load shedding: with the batch thread held (a slow database), max_queue jobs wait; the next one is
// answered 503 "unavailable" with Retry-After on the caller's thread, without waiting and without running.
// Once the queue drains, jobs are accepted again.
TEST_F(BatchQueueTest, PastMaxQueueAJobIsRefusedAtOnceWith503AndRetryAfter) {
  BatchQueue::Options options;
  options.max_queue = 5;
  options.retry_after_seconds = 2;
  BatchQueue queue(dispatcher_.get(), options);
  queue.Start();
  std::promise<void> release, running;
  std::shared_future<void> go = release.get_future().share();
  std::atomic<int> ok{0};
  auto count_ok = [&](HttpResponse res) {
    if (res.status == 200) ++ok;
  };
  // Taken off the queue by the batch thread, which it then holds: it is not waiting, so it does not count.
  queue.Submit([go, &running](bool) -> std::optional<HttpResponse> {
    running.set_value();
    go.wait();
    return JsonResponse(200, {});
  }, count_ok);
  running.get_future().wait();
  for (int i = 0; i < 5; ++i) queue.Submit(GrantJob("q" + std::to_string(i)), count_ok);
  EXPECT_EQ(queue.stats().queued, 5u);

  std::optional<HttpResponse> refused;
  queue.Submit(GrantJob("over"), [&](HttpResponse res) { refused = std::move(res); });
  ASSERT_TRUE(refused.has_value()) << "not answered at once";
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(Header(*refused, "Retry-After"), "2");
  const auto body = nlohmann::json::parse(refused->body);
  EXPECT_EQ(body["error"]["code"], "unavailable") << refused->body;
  EXPECT_EQ(queue.stats().shed, 1u);
  EXPECT_EQ(queue.stats().queued, 5u);  // the refused job took no place

  release.set_value();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ok.load() < 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(ok.load(), 6);
  std::promise<int> later;
  queue.Submit(GrantJob("later"), [&](HttpResponse res) { later.set_value(res.status); });
  EXPECT_EQ(later.get_future().get(), 200);
  queue.Stop();
  EXPECT_EQ(queue.stats().shed, 1u);
  EXPECT_FALSE(VisibleOutside("over"));
  EXPECT_TRUE(VisibleOutside("later"));
}

// Jobs waiting for the slow lane count against max_queue too: with every slow-lane thread held, the
// deferred jobs fill the queue and the next job is refused.
TEST_F(BatchQueueTest, JobsWaitingForTheSlowLaneCountAgainstMaxQueue) {
  BatchQueue::Options options;
  options.max_queue = 3;
  options.slow_lane_threads = 1;
  BatchQueue queue(dispatcher_.get(), options);
  queue.Start();
  std::promise<void> release;
  std::shared_future<void> go = release.get_future().share();
  std::atomic<int> ran_alone{0}, answered{0};
  auto slow_job = [go, &ran_alone](bool in_batch) -> std::optional<HttpResponse> {
    if (in_batch) return std::nullopt;
    ++ran_alone;
    go.wait();
    return JsonResponse(200, {});
  };
  auto count = [&](HttpResponse res) {
    if (res.status == 200) ++answered;
  };
  queue.Submit(slow_job, count);  // holds the one slow-lane thread
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ran_alone.load() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(ran_alone.load(), 1);
  for (int i = 0; i < 3; ++i) queue.Submit(slow_job, count);
  // Deferred by the batch thread into the slow lane's queue, where they wait.
  while (queue.stats().slow_lane_jobs < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(queue.stats().queued, 3u);
  int status = 0;
  queue.Submit(GrantJob("over"), [&](HttpResponse res) { status = res.status; });
  EXPECT_EQ(status, 503);
  release.set_value();
  queue.Stop();
  EXPECT_EQ(answered.load(), 4);
  EXPECT_FALSE(VisibleOutside("over"));
}

TEST_F(BatchQueueTest, ManyThreadsEachGetExactlyTheirOwnAnswer) {
  BatchQueue queue(dispatcher_.get());
  queue.Start();
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> wrong{0}, answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string worker = "t" + std::to_string(t) + "-" + std::to_string(i);
        std::promise<std::string> got;
        queue.Submit(GrantJob(worker), [&got](HttpResponse res) { got.set_value(res.body); });
        if (got.get_future().get().find("\"" + worker + "\"") == std::string::npos) ++wrong;
        ++answered;
      }
    });
  }
  for (auto& th : threads) th.join();
  queue.Stop();
  EXPECT_EQ(answered.load(), kThreads * kEach);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace crowdgate
