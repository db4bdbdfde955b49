// Group commit on PostgreSQL, across servers: two dispatchers (two "servers") on one database run
// batches that touch the same rows.
//  - Submits that cross (A submits X then Y, B submits Y then X) deadlock (the test database checks
//    for deadlocks after 10 ms, long before a batch's lock wait runs out); PostgreSQL picks a
//    victim, whose batch is rolled back and decided again from scratch (perhaps more than once):
//    every submission is accepted exactly once, the other attempt answered Conflict, nothing
//    doubled, and the victim's memory agrees with the store afterwards.
//  - Work requests never wait inside a batch for another server's decision about the same worker
//    (that is how crossing work requests would deadlock): TryRequestWorkWithoutBlocking says
//    "decide it outside the batch" instead, and there the worker gets the agent the other server
//    gave them.
// Group commit is on by default on PostgreSQL (CROWDGATE_PG_GROUP_COMMIT=off turns it off): this test
// says so explicitly, whatever the environment it runs in.
// Needs CROWDGATE_TEST_PG (scripts/with_pg.sh).
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/run_config.hpp"
#include "engine/engine_test_util.hpp"
#include "engine/run_dispatcher.hpp"
#include "store/postgres/pg_scratch_db.hpp"

namespace crowdgate {
namespace {

using testing::OpenTestDispatcher;
using testing::TempDir;

// One side of a test: a latch that opens once.
class Latch {
 public:
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitFor(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, d, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

class PgBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* admin = std::getenv("CROWDGATE_TEST_PG");
    if (admin == nullptr || *admin == '\0') {
      GTEST_SKIP() << "CROWDGATE_TEST_PG is not set: run through scripts/with_pg.sh";
    }
    admin_ = admin;
    ::setenv("CROWDGATE_PG_GROUP_COMMIT", "on", 1);
    // A batch gives up waiting for a lock after this long (50 ms by default): long enough here that
    // PostgreSQL's deadlock check (10 ms on this database, below) always comes first, however
    // loaded the machine.
    ::setenv("CROWDGATE_PG_BATCH_LOCK_WAIT_MS", "5000", 1);
    db_ = "cg_batch_" + std::to_string(::getpid()) + "_" + std::to_string(std::random_device{}() % 1000000);
    ASSERT_EQ(pg_scratch::Exec(admin_, "CREATE DATABASE " + db_), "");
    // Detect a deadlock within 10 ms, before a batch's bounded lock wait gives up on its own: the
    // crossing batches below then really deadlock.
    ASSERT_EQ(pg_scratch::Exec(admin_, "ALTER DATABASE " + db_ + " SET deadlock_timeout = '10ms'"), "");
    uri_ = pg_scratch::WithDatabase(admin_, db_);
    OpenTestDispatcher(&env_, uri_, engine_a_, a_);
    OpenTestDispatcher(&env_, uri_, engine_b_, b_);
    ASSERT_TRUE(a_ && b_);
  }

  void TearDown() override {
    a_.reset();
    b_.reset();
    engine_a_.reset();
    engine_b_.reset();
    if (!db_.empty()) (void)pg_scratch::Exec(admin_, "DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }

  std::string Launch(int units) {
    std::ofstream(dir_.File("units.jsonl")) << [&] {
      std::string t;
      for (int i = 0; i < units; ++i) t += "{\"text\": \"item " + std::to_string(i) + "\"}\n";
      return t;
    }();
    std::ofstream(dir_.File("config.yaml"))
        << "task:\n  task_name: t\n  allowed_concurrent: 1\n  assignment_duration_in_seconds: 600\n"
           "blueprint:\n  type: json\n  data: units.jsonl\nqualifications: []\nprovider:\n  type: local\n";
    auto config = LoadRunConfig(dir_.File("config.yaml"), {});
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    if (!config.ok()) return "";
    auto r = a_->Launch(*config, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->run_id : "";
  }

  static WorkRequest Req(const std::string& run, const std::string& worker) {
    return WorkRequest{run, WorkerRef{"local", worker}, ""};
  }

  FakeEnv env_;
  TempDir dir_;
  std::string admin_, db_, uri_;
  std::unique_ptr<EngineImpl> engine_a_, engine_b_;
  std::unique_ptr<RunDispatcher> a_, b_;
};

// Runs `first` on A's batch thread and `second` on B's, each inside one Batch.
template <typename F, typename G>
void RunBatches(Dispatcher* a, Dispatcher* b, F first, G second, Status* a_done, Status* b_done) {
  std::thread ta([&] { *a_done = a->Batch(first); });
  std::thread tb([&] { *b_done = b->Batch(second); });
  ta.join();
  tb.join();
}

TEST_F(PgBatchTest, CrossingSubmitsDeadlockAndTheLosingBatchIsDecidedAgain) {
  const std::string run = Launch(10);
  ASSERT_FALSE(run.empty());
  auto x = a_->RequestWork(Req(run, "w1"));
  auto y = a_->RequestWork(Req(run, "w2"));
  ASSERT_TRUE(x.ok() && y.ok());
  ASSERT_EQ(x->outcome, "unit");
  ASSERT_EQ(y->outcome, "unit");
  const nlohmann::json data_a{{"label", "from a"}}, data_b{{"label", "from b"}};

  Latch a_holds_x, b_holds_y;
  int a_runs = 0, b_runs = 0;
  using Answer = Result<std::optional<SubmitResponse>>;
  Answer ax = Status::Internal("unset"), ay = ax, bx = ax, by = ax;
  Status a_done, b_done;
  RunBatches(
      a_.get(), b_.get(),
      [&] {
        ++a_runs;
        ax = a_->TrySubmitWithoutBlocking(x->agent_id, x->token, data_a);
        if (a_runs == 1) {
          a_holds_x.Open();
          b_holds_y.WaitFor(std::chrono::seconds(10));
        }
        ay = a_->TrySubmitWithoutBlocking(y->agent_id, y->token, data_a);
      },
      [&] {
        ++b_runs;
        by = b_->TrySubmitWithoutBlocking(y->agent_id, y->token, data_b);
        if (b_runs == 1) {
          b_holds_y.Open();
          a_holds_x.WaitFor(std::chrono::seconds(10));
        }
        bx = b_->TrySubmitWithoutBlocking(x->agent_id, x->token, data_b);
      },
      &a_done, &b_done);

  ASSERT_TRUE(a_done.ok()) << a_done.ToString();
  ASSERT_TRUE(b_done.ok()) << b_done.ToString();
  // At least one of them lost the deadlock and ran its batch again; every run but the first of each
  // is a retry. (Usually exactly one retry. But the loser's retry can take the row the winner was
  // waiting for before the winner wakes up: PostgreSQL does not queue a row lock behind an aborted
  // locker's waiters. Then the same crossing deadlocks again, and either side may lose it.)
  const int64_t retries = a_->BatchesRetried() + b_->BatchesRetried();
  EXPECT_GE(retries, 1);
  EXPECT_EQ(a_runs + b_runs, 2 + retries);
  // Each submission was accepted once, by the batch that committed first; the other server's
  // attempt, decided again after it, found it submitted. The same batch won both.
  const bool a_won = ax.ok() && ax->has_value() && (*ax)->outcome == "accepted";
  for (const auto& [winner, loser] : {std::pair{a_won ? &ax : &bx, a_won ? &bx : &ax},
                                      std::pair{a_won ? &ay : &by, a_won ? &by : &ay}}) {
    ASSERT_TRUE(winner->ok()) << winner->status().ToString();
    ASSERT_TRUE(winner->value().has_value());
    EXPECT_EQ((*winner)->value().outcome, "accepted");
    EXPECT_TRUE(loser->status().IsConflict()) << loser->status().ToString();
  }

  // The store holds each submission once, with the winner's data.
  auto store = Store::Open(uri_, &env_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (const auto* w : {&*x, &*y}) {
    auto agent = (*store)->GetAgent(w->agent_id);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    EXPECT_EQ(agent->status, AgentStatus::kCompleted);
    EXPECT_EQ(nlohmann::json::parse(agent->data_json), a_won ? data_a : data_b);
  }
  // Both servers' memory agrees with the store: the next request of each worker is a new unit.
  for (Dispatcher* d : {a_.get(), b_.get()}) {
    auto next = d->RequestWork(Req(run, d == a_.get() ? "w1" : "w2"));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->outcome, "unit");
    EXPECT_FALSE(next->reconnected);
  }
}

TEST_F(PgBatchTest, AWorkRequestInsideABatchDoesNotWaitForAnotherServersDecision) {
  const std::string run = Launch(10);
  ASSERT_FALSE(run.empty());
  ASSERT_TRUE(engine_a_->CreateQualification("seen", "").ok());
  ASSERT_TRUE(engine_a_->Grant({"seen", "w1", 1, std::nullopt, "test"}).ok());  // w1's row exists

  Latch a_decided, b_asked;
  Result<std::optional<WorkResponse>> from_a = Status::Internal("unset"), from_b = from_a;
  Status a_done, b_done;
  RunBatches(
      a_.get(), b_.get(),
      [&] {
        from_a = a_->TryRequestWorkWithoutBlocking(Req(run, "w1"));
        a_decided.Open();
        b_asked.WaitFor(std::chrono::seconds(10));  // A's batch (and w1's row lock) stays open meanwhile
      },
      [&] {
        a_decided.WaitFor(std::chrono::seconds(10));
        from_b = b_->TryRequestWorkWithoutBlocking(Req(run, "w1"));
        b_asked.Open();
      },
      &a_done, &b_done);
  ASSERT_TRUE(a_done.ok()) << a_done.ToString();
  ASSERT_TRUE(b_done.ok()) << b_done.ToString();
  ASSERT_TRUE(from_a.ok() && from_a->has_value()) << from_a.status().ToString();
  EXPECT_EQ((*from_a)->outcome, "unit");
  ASSERT_TRUE(from_b.ok()) << from_b.status().ToString();
  EXPECT_FALSE(from_b->has_value()) << "B decided about w1 while A's batch held w1's decision";
  EXPECT_EQ(a_->BatchesRetried() + b_->BatchesRetried(), 0);
  // Outside any batch B waits for nobody (A committed) and hands w1 the same agent.
  auto alone = b_->RequestWork(Req(run, "w1"));
  ASSERT_TRUE(alone.ok()) << alone.status().ToString();
  EXPECT_TRUE(alone->reconnected);
  EXPECT_EQ(alone->agent_id, (*from_a)->agent_id);
}

// The batch settings come from the environment; a value that means nothing is refused at open,
// naming the variable, rather than silently replaced by the default.
TEST_F(PgBatchTest, BadBatchSettingsAreRefusedAtOpen) {
  ::setenv("CROWDGATE_PG_GROUP_COMMIT", "yes", 1);
  auto bad_switch = Store::Open(uri_, &env_);
  ::setenv("CROWDGATE_PG_GROUP_COMMIT", "on", 1);
  ::setenv("CROWDGATE_PG_BATCH_LOCK_WAIT_MS", "0", 1);
  auto bad_wait = Store::Open(uri_, &env_);
  ::setenv("CROWDGATE_PG_BATCH_LOCK_WAIT_MS", "5000", 1);
  ASSERT_FALSE(bad_switch.ok());
  EXPECT_TRUE(bad_switch.status().IsInvalidArgument());
  EXPECT_NE(bad_switch.status().message().find("CROWDGATE_PG_GROUP_COMMIT"), std::string::npos);
  ASSERT_FALSE(bad_wait.ok());
  EXPECT_NE(bad_wait.status().message().find("CROWDGATE_PG_BATCH_LOCK_WAIT_MS"), std::string::npos);
  EXPECT_TRUE(Store::Open(uri_, &env_).ok());
}

}  // namespace
}  // namespace crowdgate
