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
