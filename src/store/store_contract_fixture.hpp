// The Store contract suite's shared parts: the backends under test and the StoreContractTest fixture
// (see store_contract_test.cpp). Every store_contract_*_test.cpp file adds its TEST_Ps to the one
// suite that store_contract_test.cpp instantiates for every backend.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "crowdgate/store.hpp"

namespace crowdgate::store_test {

// A backend under test.
struct StoreBackend {
  std::string name;
  // A URI naming a fresh, empty database; called once per test.
  std::function<std::string()> fresh_uri;
  // True when two Store::Open(uri) calls reach the same database (false for in-memory SQLite).
  bool shared = true;
  // Removes what fresh_uri made, after the test's stores are closed. May be empty.
  std::function<void(const std::string&)> drop;
};

void PrintTo(const StoreBackend& b, std::ostream* os);

// Adds a backend to every StoreContractTest (see store_contract_test.cpp).
int RegisterStoreBackend(std::string name, std::function<std::string()> fresh_uri, bool shared,
                         std::function<void(const std::string&)> drop);

namespace fs = std::filesystem;

inline fs::path TempDir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("crowdgate_store_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string FreshTempPath() {
  static std::atomic<int> counter{0};
  return (TempDir() / ("db" + std::to_string(counter++) + ".sqlite")).string();
}

inline void RemoveSqliteFiles(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path + suffix, ec);
}

inline constexpr int64_t kSec = kMicrosPerSecond;

// A grant op by the tests' actor, with their reason.
inline GrantOp OpFor(GrantOp::Kind kind, const WorkerRef& worker, QualId qual, int64_t value,
                     std::optional<int64_t> expires) {
  GrantOp op;
  op.kind = kind;
  op.worker = worker;
  op.qual_id = qual;
  op.value = value;
  op.expires_at = expires;
  op.actor = "tester";
  op.reason = "because";
  return op;
}

class StoreContractTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    uri_ = GetParam().fresh_uri();
    Result<std::unique_ptr<Store>> s = Store::Open(uri_, &env_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  void TearDown() override {
    store_.reset();
    if (GetParam().drop) GetParam().drop(uri_);
  }

  std::unique_ptr<Store> OpenAnother() {
    Result<std::unique_ptr<Store>> s = Store::Open(uri_, &env_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  QualId Qual(const std::string& name) {
    Result<Qualification> q = store_->EnsureQualification(name, "desc of " + name);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? q->id : 0;
  }
  WorkerId WorkerNamed(const std::string& name, const std::string& provider = "local") {
    Result<Worker> w = store_->EnsureWorker(WorkerRef{provider, name});
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    return w.ok() ? w->id : 0;
  }
  static GrantOp Op(GrantOp::Kind kind, const std::string& worker, QualId qual, int64_t value = 1,
                    std::optional<int64_t> expires = std::nullopt) {
    return OpFor(kind, WorkerRef{"local", worker}, qual, value, expires);
  }
  std::vector<AuditEntry> Apply(const std::vector<GrantOp>& ops) {
    Result<std::vector<AuditEntry>> r = store_->ApplyGrantOps(ops);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<AuditEntry>{};
  }
  std::optional<Grant> GrantOf(WorkerId worker, QualId qual) {
    Result<std::vector<Grant>> gs = store_->GrantsForWorker(worker);
    EXPECT_TRUE(gs.ok()) << gs.status().ToString();
    if (!gs.ok()) return std::nullopt;
    for (const Grant& g : *gs) {
      if (g.qual_id == qual) return g;
    }
    return std::nullopt;
  }

  RunRecord MakeRun(const std::string& id, const std::string& task, int num_items, int units_per_item = 1) {
    RunRecord run;
    run.id = id;
    run.task_name = task;
    run.config_json = R"({"task":{"task_name":")" + task + R"("}})";
    run.created_at = env_.NowMicros();
    std::vector<std::string> items;
    for (int i = 0; i < num_items; ++i) items.push_back(R"({"i":)" + std::to_string(i) + "}");
    Status s = store_->CreateRun(run, items, units_per_item);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return run;
  }
  AgentRecord NewAgent(const std::string& run_id, WorkerId worker, AgentKind kind = AgentKind::kUnit) {
    AgentRecord a;
    a.id = "ag_" + env_.RandomHex128();
    a.token_hash = "hash_" + a.id;
    a.run_id = run_id;
    a.worker_id = worker;
    a.kind = kind;
    a.status = kind == AgentKind::kOnboarding ? AgentStatus::kOnboarding : AgentStatus::kInTask;
    a.created_at = env_.NowMicros();
    a.deadline = a.created_at + 60 * kSec;
    return a;
  }
  AgentRecord Reserve(const std::string& run_id, WorkerId worker) {
    Result<std::optional<AgentRecord>> r = store_->ReserveUnit(run_id, NewAgent(run_id, worker));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.ok() && r->has_value()) << "no unit reserved";
    return r.ok() && r->has_value() ? **r : AgentRecord{};
  }
  std::map<std::string, int64_t> Counts(const std::string& run_id) {
    Result<std::vector<std::pair<std::string, int64_t>>> c = store_->UnitStatusCounts(run_id);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    std::map<std::string, int64_t> out;
    if (c.ok()) out.insert(c->begin(), c->end());
    return out;
  }
  AgentFinish Submit(const AgentRecord& a, const std::string& check = "") {
    AgentFinish f;
    f.agent_id = a.id;
    f.expect_status = AgentStatus::kInTask;
    f.new_status = AgentStatus::kCompleted;
    f.unit_status = UnitStatus::kCompleted;
    f.data_json = R"({"answer":1})";
    f.submitted_at = env_.NowMicros();
    f.check_result = check;
    return f;
  }

  FakeEnv env_;
  std::string uri_;
  std::unique_ptr<Store> store_;
};

}  // namespace crowdgate::store_test
