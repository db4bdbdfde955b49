// Honest answers under store faults: the Dispatcher runs over a FaultyStore that fails the k-th store call (for
// every k the scenario makes, one scenario per k), while five workers take onboarding, golds and units, in single
// calls and in group-commit batches (Dispatcher::Batch). After every round the REAL database is read through a
// second connection and must show that:
//   - every agent a worker was told about (a work request answered OK, by a batch that committed) is stored, and
//     nothing else is: a request that failed left no reservation, no onboarding or gold agent;
//   - every submission answered OK is stored once, with its data; every submission that failed left its agent open
//     and unsubmitted (the worker submits again next round, and that must work);
//   - golds seen, gold counters, G-completed-count and onboarding grants equal what the stored agents say, and
//     gold_served equals the gold agents (none expire here), within the cap;
//   - the per-worker limits hold (one open agent at a time, maximum_units_per_worker units, never an item twice).
// The same dispatcher goes on after the fault until every worker is refused: its caches must agree with the
// store, or a later round breaks one of the rules above. Finally the whole run must have been labelled as far as
// the limits allow: an item left unlabelled is one no worker may take.
//
// Faults in BeginBatch / EndBatch are injected only where the backend batches (probed at SetUp: PostgreSQL without
// group commit commits every call of a batch on its own, and its EndBatch cannot fail). Further tests: a full SQLite
// disk for a few rounds, and commits whose acknowledgement is lost (the change stored, the caller told an error).
// CROWDGATE_FAULT_K=k replays one scenario of the sweep, CROWDGATE_FAULT_TRACE=1 prints every answer.
//
// Parameterized over the database (as multi_server_test): SQLite (a file) always; PostgreSQL when
// $CROWDGATE_TEST_PG names a server (scripts/with_pg.sh sets it), else skipped with a message.
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_impl.hpp"
#include "engine/engine_test_util.hpp"
#include "engine/run_dispatcher.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/scratch_database.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

constexpr int kWorkers = 5;  // the first unit of each is a gold: one of them never gets past the gold cap
constexpr int kItems = 6;
constexpr int kUnitsPerItem = 2;
constexpr int kMaxUnitsPerWorker = 3;  // the 4 who get a gold x 3 = the 12 units
constexpr int kGolds = 3;
constexpr int kMaxGoldUnits = 4;       // fewer than the workers: the cap is reached
constexpr int kMaxRounds = 40;

// What the workers were told, i.e. what the database must show.
struct Told {
  std::map<std::string, std::string> agent_worker;  // agent id -> worker name, from work answered OK
  std::map<std::string, json> submitted;            // agent id -> data, from submits answered OK
  int64_t errors = 0;                                // requests (or whole batches) that failed
};

struct SimWorker {
  std::string name;
  std::optional<WorkResponse> held;  // told about and not yet submitted OK
  bool refused = false;              // the last work request was answered no_work / not_qualified
};

class DispatcherFaultTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string why = database_.Create(GetParam(), dir_.File("fault.db"), "crowdgate_fault");
    if (database_.no_server()) GTEST_SKIP() << why;
    ASSERT_EQ(why, "");
    uri_ = database_.uri();
    // Durability is not what is tested here (the faults are injected above the database): skip SQLite's fsyncs.
    setenv("CROWDGATE_SQLITE_SYNC", "normal", 1);
    std::string units, golds;
    for (int i = 0; i < kItems; ++i) units += json{{"text", "item " + std::to_string(i)}}.dump() + "\n";
    for (int i = 0; i < kGolds; ++i) {
      golds += json{{"inputs", {{"text", "item " + std::to_string(kItems + i)}}}, {"answer", {{"label", "pos"}}}}
                   .dump() +
               "\n";
    }
    Write("units.jsonl", units);
    Write("golds.jsonl", golds);
    auto observer = Store::Open(uri_, Env::Default());
    ASSERT_TRUE(observer.ok()) << observer.status().ToString();
    observer_ = std::move(observer).value();
    // Does the backend batch? Without group commit (the Store defaults) every call in a batch commits on its own and
    // EndBatch cannot fail, so a fault injected there would model a failure the backend cannot have.
    ASSERT_TRUE(observer_->BeginBatch().ok());
    ASSERT_TRUE(observer_->EnsureQualification("batch-probe", "").ok());
    ASSERT_TRUE(observer_->EndBatch(/*commit=*/false).ok());
    batches_ = observer_->GetQualification("batch-probe").status().IsNotFound();
  }

  // Whether a fault in this call models something the backend can do.
  bool Injectable(const std::string& method) const {
    return batches_ || (method != "BeginBatch" && method != "EndBatch");
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

  // Opens a dispatcher over a FaultyStore on the database and launches a fresh run of task `task` (every scenario
  // has its own task, workers and run, so scenarios on one database do not meet).
  void Start(const std::string& task) {
    d_.reset();
    engine_.reset();
    auto real = Store::Open(uri_, &env_);
    ASSERT_TRUE(real.ok()) << real.status().ToString();
    auto faulty = std::make_unique<FaultyStore>(std::move(real).value());
    faulty_ = faulty.get();
    EngineOptions options;
    options.env = &env_;
    options.actor = "test";
    auto engine = OpenEngineImpl(std::move(faulty), options);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    auto d = engine_->NewRunDispatcher();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    d_ = std::move(d).value();
    const std::string yaml =
        "task:\n  task_name: " + task + "\n  assignment_duration_in_seconds: 600\n  allowed_concurrent: 1\n" +
        "  maximum_units_per_worker: " + std::to_string(kMaxUnitsPerWorker) +
        "\nblueprint:\n  type: json\n  data: units.jsonl\n  units_per_item: " + std::to_string(kUnitsPerItem) +
        "\n  onboarding_qualification: " + task + "-onb\n  onboarding_data: {text: quiz}\n" +
        "  onboarding_answer: {label: secret-pos}\n  use_golds: true\n  gold_qualification_base: " + task +
        "-g\n  gold_file: golds.jsonl\n  min_golds: 1\n  max_gold_units: " + std::to_string(kMaxGoldUnits) +
        "\nqualifications: []\nprovider:\n  type: local\n";
    auto config = LoadRunConfig(Write(task + ".yaml", yaml), {});
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto launched = d_->Launch(*config, {});
    ASSERT_TRUE(launched.ok()) << launched.status().ToString();
    run_ = launched->run_id;
    task_ = task;
  }

  json AnswerFor(const WorkResponse& w) const {
    json data = w.outcome == "onboarding" ? json{{"label", "secret-pos"}} : json{{"label", "pos"}};
    if (!padding_.empty()) data["comment"] = padding_;
    return data;
  }

  // One work request; what it told the worker is recorded only when `answered` is true (outside a batch: the
  // call's own answer; inside one: the caller records after the batch committed).
  void WorkOnce(SimWorker& w, std::vector<std::function<void()>>& on_commit, Told& told) {
    WorkRequest req;
    req.run_id = run_;
    req.worker = *ParseWorkerRef(w.name);
    auto r = d_->RequestWork(req);
    if (!r.ok()) {
      if (std::getenv("CROWDGATE_FAULT_TRACE") != nullptr) std::cerr << "  " << w.name << " work: " << r.status().ToString() << "\n";
      ++told.errors;
      return;
    }
    WorkResponse resp = *r;
    if (std::getenv("CROWDGATE_FAULT_TRACE") != nullptr) {
      std::cerr << "  " << w.name << " work: " << resp.outcome << " " << resp.reason << " " << resp.agent_id << "\n";
    }
    on_commit.push_back([&w, &told, resp] {
      if (resp.outcome == "unit" || resp.outcome == "onboarding") {
        told.agent_worker[resp.agent_id] = w.name;
        w.held = resp;
        w.refused = false;
      } else {
        w.refused = true;
      }
    });
  }

  void SubmitOnce(SimWorker& w, bool in_batch, std::vector<std::function<void()>>& on_commit, Told& told) {
    const WorkResponse held = *w.held;
    const json data = AnswerFor(held);
    bool ok = false;
    if (in_batch) {
      auto r = d_->TrySubmitWithoutBlocking(held.agent_id, held.token, data);
      EXPECT_TRUE(!r.ok() || r->has_value()) << "no check here is a command";
      ok = r.ok();
    } else {
      ok = d_->Submit(held.agent_id, held.token, data).ok();
    }
    if (std::getenv("CROWDGATE_FAULT_TRACE") != nullptr) {
      std::cerr << "  " << w.name << " submit " << held.agent_id << ": " << (ok ? "ok" : "error") << "\n";
    }
    if (!ok) {
      ++told.errors;
      return;
    }
    on_commit.push_back([&w, &told, held, data] {
      told.submitted[held.agent_id] = data;
      w.held.reset();
    });
  }

  // Round r: every worker without an agent asks for work, then every worker holding one submits it; even rounds
  // in two batches (one for the work requests, one for the submits), odd rounds call by call.
  void Round(int r, std::vector<SimWorker>& workers, Told& told) {
    const bool batched = r % 2 == 0;
    for (int phase = 0; phase < 2; ++phase) {
      std::vector<std::function<void()>> on_commit;
      auto work = [&] {
        for (SimWorker& w : workers) {
          if (phase == 0 && !w.held) WorkOnce(w, on_commit, told);
          if (phase == 1 && w.held) SubmitOnce(w, batched, on_commit, told);
        }
      };
      if (batched) {
        Status s = d_->Batch(work);
        if (std::getenv("CROWDGATE_FAULT_TRACE") != nullptr) std::cerr << " batch: " << s.ToString() << "\n";
        if (!s.ok()) {
          ++told.errors;
          continue;  // nobody is told anything
        }
      } else {
        work();  // each call's answer is final (each worker makes one call per phase)
      }
      for (auto& f : on_commit) f();
    }
    env_.AdvanceSeconds(1);
  }

  // The database against what the workers were told. `where` names the scenario and round.
  void CheckStore(const Told& told, const std::vector<SimWorker>& workers, const std::string& where,
                  bool final = false) {
    SCOPED_TRACE(where);
    auto agents_or = observer_->RunAgents(run_);
    ASSERT_TRUE(agents_or.ok()) << agents_or.status().ToString();
    std::set<std::string> stored;
    struct Tally {
      int64_t open = 0, units = 0, gold_pass = 0, onb_passed = 0;
      std::set<int64_t> golds, items;
    };
    std::map<std::string, Tally> tally;  // by worker name
    int64_t gold_agents = 0;
    for (const AgentRecord& a : *agents_or) {
      stored.insert(a.id);
      auto it = told.agent_worker.find(a.id);
      if (it == told.agent_worker.end()) {
        ADD_FAILURE() << "agent " << a.id << " (" << a.kind << ", " << a.status << ", " << a.worker.ToString()
                      << ") is stored but nobody was told about it";
        continue;
      }
      EXPECT_EQ(a.worker.ToString(), "local:" + it->second) << a.id;
      Tally& t = tally[it->second];
      auto sub = told.submitted.find(a.id);
      const bool open = a.status == AgentStatus::kInTask || a.status == AgentStatus::kOnboarding;
      if (sub != told.submitted.end()) {
        EXPECT_TRUE(a.status == AgentStatus::kCompleted || a.status == AgentStatus::kPassed) << a.id << " answered OK but " << a.status;
        EXPECT_EQ(json::parse(a.data_json, nullptr, false), sub->second) << a.id;
      } else {
        EXPECT_TRUE(open) << a.id << " (" << a.kind << ") is " << a.status << " but no submit was answered OK";
        EXPECT_EQ(a.data_json, "") << a.id;
      }
      if (open) ++t.open;
      if (a.kind == AgentKind::kUnit) {
        ++t.units;
        EXPECT_TRUE(t.items.insert(a.item_index).second) << it->second << " holds item " << a.item_index << " twice";
      }
      if (a.kind == AgentKind::kGold) {
        ++gold_agents;
        t.golds.insert(a.item_index);
        if (a.status == AgentStatus::kCompleted && a.check_result == "pass") ++t.gold_pass;
      }
      if (a.kind == AgentKind::kOnboarding && a.status == AgentStatus::kPassed) ++t.onb_passed;
    }
    for (const auto& [id, worker] : told.agent_worker) {
      EXPECT_TRUE(stored.count(id) != 0) << "agent " << id << " told to " << worker << " is not stored";
    }
    int64_t completed_units = 0;
    for (const SimWorker& w : workers) {
      const Tally& t = tally[w.name];
      EXPECT_LE(t.open, 1) << w.name << " holds " << t.open << " agents (allowed_concurrent 1)";
      EXPECT_LE(t.units, kMaxUnitsPerWorker) << w.name;
      std::map<std::string, int64_t> value;
      std::set<int64_t> seen;
      auto worker = observer_->GetWorker(*ParseWorkerRef(w.name));
      if (worker.ok()) {
        auto grants = observer_->GrantsForWorker(worker->id);
        ASSERT_TRUE(grants.ok()) << grants.status().ToString();
        for (const Grant& g : *grants) value[g.qualification] = g.value;
        auto golds = observer_->GoldsSeen(worker->id, task_ + "-g");
        ASSERT_TRUE(golds.ok()) << golds.status().ToString();
        seen.insert(golds->begin(), golds->end());
      } else {
        EXPECT_TRUE(worker.status().IsNotFound()) << worker.status().ToString();
      }
      EXPECT_EQ(seen, t.golds) << w.name << ": golds seen differ from the gold agents stored";
      EXPECT_EQ(value[task_ + "-g-correct-golds"], t.gold_pass) << w.name;
      EXPECT_EQ(value[task_ + "-g-wrong-golds"], 0) << w.name;
      int64_t done = 0;
      for (const AgentRecord& a : *agents_or) {
        done += a.kind == AgentKind::kUnit && a.status == AgentStatus::kCompleted && a.worker.ToString() == "local:" + w.name ? 1 : 0;
      }
      completed_units += done;
      EXPECT_EQ(value[task_ + "-g-completed-count"], done) << w.name;
      EXPECT_EQ(value.count(task_ + "-onb") != 0 ? value[task_ + "-onb"] : 0, t.onb_passed) << w.name;
    }
    auto record = observer_->GetRun(run_);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_EQ(record->gold_served, gold_agents);
    EXPECT_LE(record->gold_served, kMaxGoldUnits);
    last_completed_units_ = completed_units;
    if (!final) return;
    // The end: everyone was refused. Each item with a copy left unlabelled must be one that no worker may take:
    // the worker reached maximum_units_per_worker, or already did the item, or never got past the gold cap.
    std::map<int64_t, int64_t> done_copies;
    for (const AgentRecord& a : *agents_or) {
      if (a.kind == AgentKind::kUnit && a.status == AgentStatus::kCompleted) ++done_copies[a.item_index];
    }
    for (int64_t item = 0; item < kItems; ++item) {
      if (done_copies[item] >= kUnitsPerItem) continue;
      for (const SimWorker& w : workers) {
        const Tally& t = tally[w.name];
        const bool capped_out = t.golds.empty() && record->gold_served == kMaxGoldUnits;
        EXPECT_TRUE(t.units >= kMaxUnitsPerWorker || t.items.count(item) != 0 || capped_out)
            << "item " << item << " has a copy left, yet " << w.name << " (" << t.units
            << " units) was refused";
      }
    }
  }

  // Runs the scenario under `plan`; returns the store calls it made.
  // `before_round`, if set, runs before each round (it may change the database under the dispatcher).
  std::vector<std::string> Scenario(const std::string& name, const FaultPlan& plan, int64_t* errors = nullptr,
                                    const std::function<void(int)>& before_round = {}) {
    Start(name);
    if (::testing::Test::HasFatalFailure()) return {};
    std::vector<SimWorker> workers;
    for (int i = 0; i < kWorkers; ++i) workers.push_back({name + "w" + std::to_string(i), std::nullopt, false});
    Told told;
    faulty_->Arm(plan);
    int r = 0;
    for (; r < kMaxRounds; ++r) {
      const bool all_refused = [&] {
        for (const SimWorker& w : workers) {
          if (w.held || !w.refused) return false;
        }
        return true;
      }();
      if (all_refused) break;
      if (before_round) before_round(r);
      Round(r, workers, told);
      CheckStore(told, workers, name + " after round " + std::to_string(r) +
                                    (faulty_->fired() ? " (faulted " + *faulty_->fired() + ")" : ""));
      if (::testing::Test::HasFailure()) break;
    }
    EXPECT_LT(r, kMaxRounds) << name << ": the workers never finished";
    CheckStore(told, workers, name + " at the end", /*final=*/true);
    if (errors != nullptr) *errors = told.errors;
    std::vector<std::string> calls = faulty_->calls();
    faulty_->Disarm();
    return calls;
  }

  // The steps of the lost-acknowledgement tests (below), on a started scenario.
  void LostAcknowledgements(bool connection_lost) {
    WorkRequest req;
    req.run_id = run_;
    req.worker = *ParseWorkerRef("lostw0");
    auto stored_agents = [&] {
      auto agents = observer_->RunAgents(run_);
      EXPECT_TRUE(agents.ok()) << agents.status().ToString();
      return agents.ok() ? *agents : std::vector<AgentRecord>{};
    };

    // 1. The decision that reserved the onboarding agent committed; its answer was lost.
    faulty_->Arm({.fail_call = 1, .method = "EndDecision", .when = FaultPlan::When::kAfter,
                  .connection_lost = connection_lost});
    auto first = d_->RequestWork(req);
    ASSERT_FALSE(first.ok());
    ASSERT_EQ(faulty_->fired(), "EndDecision");
    ASSERT_EQ(stored_agents().size(), 1u);
    auto again = d_->RequestWork(req);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->outcome, "onboarding");
    EXPECT_EQ(again->agent_id, stored_agents()[0].id) << "a second agent instead of the stored one";
    EXPECT_TRUE(again->reconnected);
    EXPECT_EQ(stored_agents().size(), 1u);

    // 2. The onboarding submission committed (outside any decision or batch); its answer was lost.
    faulty_->Arm({.fail_call = 1, .method = "FinishAgent", .when = FaultPlan::When::kAfter,
                  .connection_lost = connection_lost});
    const json answer = {{"label", "secret-pos"}};
    ASSERT_FALSE(d_->Submit(again->agent_id, again->token, answer).ok());
    ASSERT_EQ(faulty_->fired(), "FinishAgent");
    EXPECT_EQ(stored_agents()[0].status, AgentStatus::kPassed);
    auto resubmit = d_->Submit(again->agent_id, again->token, answer);
    EXPECT_TRUE(resubmit.status().IsConflict()) << resubmit.status().ToString();
    auto next = d_->RequestWork(req);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->outcome, "unit") << "onboarding passed, yet: " << next->outcome << " " << next->reason;
    auto agents = stored_agents();
    ASSERT_EQ(agents.size(), 2u);
    EXPECT_EQ(agents[1].kind, AgentKind::kGold);

    // 3. A batch whose commit was acknowledged lost: the gold's submission is stored, once.
    faulty_->Arm({.fail_call = 1, .method = "EndBatch", .when = FaultPlan::When::kAfter,
                  .connection_lost = connection_lost});
    Status batch = d_->Batch([&] { (void)d_->TrySubmitWithoutBlocking(next->agent_id, next->token, {{"label", "pos"}}); });
    if (batches_) {
      ASSERT_FALSE(batch.ok());
      ASSERT_EQ(faulty_->fired(), "EndBatch");
    }
    EXPECT_EQ(stored_agents()[1].status, AgentStatus::kCompleted);
    EXPECT_TRUE(d_->Submit(next->agent_id, next->token, {{"label", "pos"}}).status().IsConflict());
    auto unit = d_->RequestWork(req);
    ASSERT_TRUE(unit.ok()) << unit.status().ToString();
    EXPECT_EQ(unit->outcome, "unit");
    agents = stored_agents();
    ASSERT_EQ(agents.size(), 3u);
    EXPECT_EQ(agents[2].kind, AgentKind::kUnit) << "the gold counts as done: the next is a real unit";
    auto worker = observer_->GetWorker(req.worker);
    ASSERT_TRUE(worker.ok());
    auto grants = observer_->GrantsForWorker(worker->id);
    ASSERT_TRUE(grants.ok());
    std::map<std::string, int64_t> value;
    for (const Grant& g : *grants) value[g.qualification] = g.value;
    EXPECT_EQ(value["lost-onb"], 1);
    EXPECT_EQ(value["lost-g-correct-golds"], 1) << "the gold is counted once";
  }

  FakeEnv env_;
  TempDir dir_;
  ScratchDatabase database_;  // dropped after every connection below has closed
  std::string uri_;
  std::unique_ptr<Store> observer_;
  FaultyStore* faulty_ = nullptr;
  std::unique_ptr<EngineImpl> engine_;
  std::unique_ptr<RunDispatcher> d_;
  std::string run_, task_;
  int64_t last_completed_units_ = 0;
  std::string padding_;  // added to every answer (a "comment"), to fill pages
  bool batches_ = true;  // the backend implements group commit (a batch rolls back as a whole)
};

TEST_P(DispatcherFaultTest, EveryStoreCallFailingOnceLeavesAnswersHonestAndTheDispatcherWorking) {
  int64_t errors = -1;
  const std::vector<std::string> clean = Scenario("clean", FaultPlan{}, &errors);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(errors, 0);
  const int64_t clean_completed = last_completed_units_;
  ASSERT_EQ(clean_completed, kItems * kUnitsPerItem);
  std::map<std::string, int> methods;
  for (const auto& m : clean) ++methods[m];
  std::string list;
  for (const auto& [m, n] : methods) list += " " + m + "x" + std::to_string(n);
  std::cerr << GetParam() << ": the clean scenario makes " << clean.size() << " store calls:" << list << "\n";

  int64_t fired = 0;
  const char* only = std::getenv("CROWDGATE_FAULT_K");  // replays one scenario (with CROWDGATE_FAULT_TRACE=1)
  for (size_t k = 1; k <= clean.size(); ++k) {
    if (only != nullptr && std::to_string(k) != only) continue;
    if (!Injectable(clean[k - 1])) continue;
    FaultPlan plan;
    plan.fail_call = static_cast<int64_t>(k);
    // CROWDGATE_FAULT_WHEN=after makes each failed call write first (a store breaking its contract): the checks
    // must then fail, which shows they can.
    const char* when = std::getenv("CROWDGATE_FAULT_WHEN");
    if (when != nullptr && std::string(when) == "after") plan.when = FaultPlan::When::kAfter;
    int64_t errs = 0;
    Scenario("k" + std::to_string(k) + "x", plan, &errs);
    fired += faulty_->fired() ? 1 : 0;
    EXPECT_TRUE(faulty_->fired().has_value()) << "call " << k << " was never made";
    EXPECT_GE(errs, 1) << "call " << k << " (" << clean[k - 1] << ") failed and nobody was told";
    // The run is labelled as far as the limits allow (a delayed worker may leave the last copy of an item it
    // already did: the final check says whether a refusal was right).
    EXPECT_GE(last_completed_units_, clean_completed - 1) << "call " << k << " (" << clean[k - 1] << ")";
    if (HasFailure()) {
      ADD_FAILURE() << "first failing scenario: store call " << k << " (" << clean[k - 1] << ") failed";
      break;
    }
  }
  std::cerr << GetParam() << ": " << fired << " scenarios, each with one store call failing"
            << (batches_ ? "" : " (not BeginBatch / EndBatch: this backend does not batch)") << "\n";
}

// The same per method: the n-th call of each method that writes fails (a second, differently placed fault for
// the methods called several times).
TEST_P(DispatcherFaultTest, TheSecondCallOfEachWritingMethodFailing) {
  const std::vector<std::string> clean = Scenario("clean2", FaultPlan{});
  ASSERT_FALSE(HasFailure());
  std::map<std::string, int> methods;
  for (const auto& m : clean) ++methods[m];
  for (const char* m : {"ReserveUnitWithItem", "ReserveUnit", "CreateEvalUnit", "CreateOnboardingAgent",
                        "FinishAgent", "EnsureWorker", "BeginDecision", "EndDecision", "BeginBatch", "EndBatch"}) {
    for (int n : {2, 3}) {
      if (methods[m] < n || !Injectable(m)) continue;
      FaultPlan plan;
      plan.method = m;
      plan.fail_call = n;
      Scenario(std::string("m") + m + std::to_string(n) + "x", plan);
      EXPECT_TRUE(faulty_->fired().has_value()) << m << " #" << n;
      if (HasFailure()) return;
    }
  }
}

// A full disk (SQLite max_page_count) under the dispatcher, for a few rounds of single calls and batches with bulky
// answers: whatever fails, the database shows exactly what the workers were told, and once the disk has room again
// the same dispatcher finishes the run. (The store's own test fills the disk inside one batch of store calls.)
class DispatcherFaultSqliteTest : public DispatcherFaultTest {};  // max_page_count is SQLite's

TEST_P(DispatcherFaultSqliteTest, AFullDiskForAFewRoundsLeavesAnswersHonest) {
  padding_ = std::string(3000, 'x');
  int64_t errors = 0;
  Scenario("disk", FaultPlan{}, &errors, [&](int round) {
    sqlite3* db = static_cast<SqliteStore&>(faulty_->inner()).TEST_db();
    std::string pragma = "PRAGMA max_page_count = 1073741823";
    if (round >= 1 && round <= 4) {  // full from round 1 (after onboarding) to round 4: room for about one answer
      sqlite3_stmt* stmt = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &stmt, nullptr), SQLITE_OK);
      ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
      const int64_t pages = sqlite3_column_int64(stmt, 0);
      sqlite3_finalize(stmt);
      pragma = "PRAGMA max_page_count = " + std::to_string(pages + 1);
    }
    ASSERT_EQ(sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  });
  EXPECT_GT(errors, 0) << "the disk never filled up: make the answers bigger";
  EXPECT_EQ(last_completed_units_, kItems * kUnitsPerItem);
  std::cerr << "full disk: " << errors << " requests or batches failed\n";
}

// A commit whose acknowledgement is lost (PostgreSQL: the connection drops during COMMIT, the store answers
// Unavailable "may or may not have been applied", and reconnects): the worker was told an error, yet the change is
// stored. The next request must see the stored state, not the dispatcher's memory of it: the worker's work request
// gets the agent it already holds (no second one), a second submit of a stored submission is a Conflict (stored
// once), and the passed onboarding counts (the worker goes on to a gold unit, not to onboarding again).
TEST_P(DispatcherFaultTest, LostCommitAcknowledgementsAreSeenOnTheNextRequest) {
  Start("lost");
  ASSERT_FALSE(HasFatalFailure());
  LostAcknowledgements(/*connection_lost=*/true);
}

// The same when the connection survives: a submission stored, then answered with an error (the write committed but
// something after it failed, e.g. reading the change feed back in AfterWrite). The Dispatcher drops its caches after
// such a failure (as after a failed decision or commit), so the worker who passed onboarding is not given onboarding
// again.
TEST_P(DispatcherFaultTest, SubmitStoredButAnsweredWithAnErrorIsSeenOnTheNextRequest) {
  Start("lost");
  ASSERT_FALSE(HasFatalFailure());
  LostAcknowledgements(/*connection_lost=*/false);
}

INSTANTIATE_TEST_SUITE_P(Db, DispatcherFaultSqliteTest, ::testing::Values("SQLite"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Db, DispatcherFaultTest, ::testing::Values("SQLite", "PostgreSQL"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace crowdgate::testing
