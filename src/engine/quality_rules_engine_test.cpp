// Quality rules in the live dispatcher, with a fake clock: each rule fires exactly when its
// figures cross the line, the ban is an expiring grant of the block qualification that
// lets the worker back on time, reject_units sends items back to the pool for someone
// else, every firing is an audit entry that names rule and figures, and windows rebuilt
// after a restart neither forget a crossing nor fire one twice.
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "engine/engine_test_util.hpp"
#include "engine/run_dispatcher.hpp"

namespace crowdgate {
namespace {

using nlohmann::json;
using testing::OpenTestDispatcher;
using testing::TempDir;

class QualityRulesTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenAt(":memory:"); }

  void OpenAt(const std::string& uri) { OpenTestDispatcher(&env_, uri, engine_, d_); }

  // A run of `items` items with `units_per_item` copies and the given rules (YAML flow list).
  std::string Launch(const std::string& rules, int items = 20, int units_per_item = 1, int concurrent = 1) {
    std::string data;
    for (int i = 0; i < items; ++i) data += json{{"text", "item " + std::to_string(i)}}.dump() + "\n";
    std::ofstream(dir_.File("units.jsonl")) << data;
    const std::string yaml = "task:\n  task_name: t\n  assignment_duration_in_seconds: 600\n  allowed_concurrent: " +
                             std::to_string(concurrent) +
                             "\nblueprint:\n  type: json\n  data: units.jsonl\n  block_qualification: t-blocked\n"
                             "  units_per_item: " +
                             std::to_string(units_per_item) + "\nquality_rules: " + rules + "\n";
    const std::string path = dir_.File("config.yaml");
    std::ofstream(path) << yaml;
    auto config = LoadRunConfig(path, {});
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    if (!config.ok()) return "";
    auto r = d_->Launch(*config, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->run_id : "";
  }

  WorkResponse Work(const std::string& run, const std::string& worker) {
    WorkRequest req;
    req.run_id = run;
    req.worker = *ParseWorkerRef(worker);
    auto r = d_->RequestWork(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : WorkResponse{};
  }

  // Takes a unit, waits `seconds`, submits `label`.
  void Do(const std::string& run, const std::string& worker, double seconds, const std::string& label = "pos") {
    WorkResponse w = Work(run, worker);
    ASSERT_EQ(w.outcome, "unit") << worker << ": " << w.reason;
    env_.AdvanceSeconds(seconds);
    auto r = d_->Submit(w.agent_id, w.token, json{{"label", label}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  void Return(const std::string& run, const std::string& worker) {
    WorkResponse w = Work(run, worker);
    ASSERT_EQ(w.outcome, "unit") << worker << ": " << w.reason;
    env_.AdvanceSeconds(1);
    ASSERT_TRUE(d_->Return(w.agent_id, w.token).ok());
  }

  bool Blocked(const std::string& run, const std::string& worker) {
    WorkResponse w = Work(run, worker);
    if (w.outcome == "unit") {
      EXPECT_TRUE(d_->Return(w.agent_id, w.token).ok());
    }
    return w.outcome == "not_qualified" && w.reason == "blocked";
  }

  // Audit entries written by the quality rules.
  std::vector<AuditEntry> Firings() {
    auto h = engine_->History(std::nullopt, std::nullopt);
    EXPECT_TRUE(h.ok());
    std::vector<AuditEntry> out;
    for (const auto& e : *h) {
      if (e.actor == "crowdgate:quality") out.push_back(e);
    }
    return out;
  }

  std::vector<ExportRow> Rows(const std::string& run) {
    auto rows = d_->Export(run);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<ExportRow>{};
  }

  FakeEnv env_;
  TempDir dir_;
  std::unique_ptr<EngineImpl> engine_;
  std::unique_ptr<RunDispatcher> d_;
};

const char* kFastBan = "[{rule: fast_submissions, min_seconds: 3, count: 3, window: 10, action: {block: 1d}}]";

TEST_F(QualityRulesTest, FastSubmissionsBanIsTemporaryAndExpiresOnTime) {
  const std::string run = Launch(kFastBan);
  Do(run, "spammer", 1);
  Do(run, "spammer", 3);    // exactly min_seconds: not fast
  Do(run, "spammer", 2.9);  // 2 fast
  EXPECT_TRUE(Firings().empty());
  EXPECT_FALSE(Blocked(run, "spammer"));
  Do(run, "spammer", 0.2);  // 3 fast of the last 4: banned
  const int64_t fired_at = env_.NowMicros();
  auto firings = Firings();
  ASSERT_EQ(firings.size(), 1u);
  EXPECT_EQ(firings[0].qualification, "t-blocked");
  EXPECT_NE(firings[0].reason.find("fast_submissions: 3 of the last 4 units under 3 s; blocked for 1d"),
            std::string::npos)
      << firings[0].reason;
  ASSERT_TRUE(firings[0].new_expires_at.has_value());
  EXPECT_EQ(*firings[0].new_expires_at, fired_at + 86400 * kMicrosPerSecond);
  EXPECT_TRUE(Blocked(run, "spammer"));
  EXPECT_FALSE(Blocked(run, "honest"));
  env_.SetNowMicros(fired_at + 86400 * kMicrosPerSecond - kMicrosPerSecond);
  EXPECT_TRUE(Blocked(run, "spammer"));  // one second before the end
  env_.SetNowMicros(fired_at + 86400 * kMicrosPerSecond);
  EXPECT_FALSE(Blocked(run, "spammer"));  // the ban is over: work again
  // The window started afresh at the firing: two more fast units do not ban again.
  Do(run, "spammer", 1);
  Do(run, "spammer", 1);
  EXPECT_EQ(Firings().size(), 1u);
  Do(run, "spammer", 1);
  EXPECT_EQ(Firings().size(), 2u);
}

TEST_F(QualityRulesTest, ReturnedUnitsCountsReturnsAndTimeouts) {
  const std::string run = Launch("[{rule: returned_units, count: 3, window: 5, action: disqualify}]");
  Return(run, "w");
  Do(run, "w", 10);
  Return(run, "w");
  EXPECT_TRUE(Firings().empty());
  // A lease that runs out counts like a return.
  WorkResponse w = Work(run, "w");
  ASSERT_EQ(w.outcome, "unit");
  env_.AdvanceSeconds(601);
  ASSERT_TRUE(d_->ExpireOverdue().ok());
  auto firings = Firings();
  ASSERT_EQ(firings.size(), 1u);
  EXPECT_NE(firings[0].reason.find("returned_units: 3 of the last 4 units returned or expired; disqualified"),
            std::string::npos)
      << firings[0].reason;
  EXPECT_FALSE(firings[0].new_expires_at.has_value());  // permanent
  env_.AdvanceSeconds(365 * 86400);
  EXPECT_TRUE(Blocked(run, "w"));
}

TEST_F(QualityRulesTest, AnEndedProviderSessionCountsItsOpenUnitsAsReturned) {
  const std::string run =
      Launch("[{rule: returned_units, count: 2, window: 2, action: {block: 1h}}]", /*items=*/20, /*units_per_item=*/1,
             /*concurrent=*/2);
  WorkRequest req;
  req.run_id = run;
  req.worker = *ParseWorkerRef("w");
  req.session = "s1";
  for (int i = 0; i < 2; ++i) ASSERT_EQ(d_->RequestWork(req)->outcome, "unit");
  EXPECT_TRUE(Firings().empty());
  auto ended = d_->EndSession(run, "s1");
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(*ended, 2);
  auto firings = Firings();
  ASSERT_EQ(firings.size(), 1u);
  EXPECT_NE(firings[0].reason.find("returned_units: 2 of the last 2 units returned or expired; blocked for 1h"),
            std::string::npos);
  EXPECT_TRUE(Blocked(run, "w"));
  env_.AdvanceSeconds(3600);
  EXPECT_FALSE(Blocked(run, "w"));
}

TEST_F(QualityRulesTest, MajorityAgreementComparesWithOtherWorkersLabels) {
  const std::string run =
      Launch("[{rule: majority_agreement, min_agreement: 0.5, window: 4, min_overlap: 3, action: {block: 12h}}]",
             /*items=*/6, /*units_per_item=*/3);
  // a and b agree on every item; c disagrees with both on the first three.
  for (int i = 0; i < 3; ++i) {
    Do(run, "a", 10, "pos");
    Do(run, "b", 10, "pos");
  }
  Do(run, "c", 10, "neg");
  Do(run, "c", 10, "neg");
  EXPECT_TRUE(Firings().empty());  // 2 overlapping units < min_overlap
  Do(run, "c", 10, "neg");
  auto firings = Firings();
  ASSERT_EQ(firings.size(), 1u);
  EXPECT_NE(firings[0].reason.find("majority_agreement: agreement 0.00 over the last 3 overlapping units, below 0.5"),
            std::string::npos)
      << firings[0].reason;
  EXPECT_TRUE(Blocked(run, "c"));
  EXPECT_FALSE(Blocked(run, "b"));  // b agreed with a every time
}

TEST_F(QualityRulesTest, RejectUnitsPutsItemsBackForSomeoneElse) {
  const std::string run =
      Launch("[{rule: fast_submissions, min_seconds: 2, count: 2, window: 3, action: reject_units}]", /*items=*/3);
  Do(run, "spammer", 0.5);
  Do(run, "spammer", 0.5);  // fires: both units rejected, their items back in the pool
  auto firings = Firings();
  ASSERT_EQ(firings.size(), 1u);
  EXPECT_EQ(firings[0].qualification, "t-rejected-units");
  EXPECT_EQ(firings[0].new_value, 2);
  EXPECT_NE(firings[0].reason.find("fast_submissions: 2 of the last 2 units under 2 s; rejected units"),
            std::string::npos)
      << firings[0].reason;
  std::map<int64_t, AgentStatus> spammer_items;
  for (const ExportRow& r : Rows(run)) {
    if (r.kind == AgentKind::kUnit && r.worker == "local:spammer") spammer_items[r.item] = r.status;
  }
  ASSERT_EQ(spammer_items.size(), 2u);
  for (const auto& [item, status] : spammer_items) EXPECT_EQ(status, AgentStatus::kRejected) << item;
  // The spammer is not banned, but gets only the item it never held; an honest worker then
  // relabels the two rejected items as well.
  Do(run, "spammer", 10);
  EXPECT_EQ(Work(run, "spammer").outcome, "no_work");
  std::set<int64_t> relabelled;
  for (int i = 0; i < 2; ++i) {
    WorkResponse w = Work(run, "honest");
    ASSERT_EQ(w.outcome, "unit");
    env_.AdvanceSeconds(10);
    ASSERT_TRUE(d_->Submit(w.agent_id, w.token, json{{"label", "pos"}}).ok());
  }
  for (const ExportRow& r : Rows(run)) {
    if (r.kind == AgentKind::kUnit && r.worker == "local:honest") relabelled.insert(r.item);
  }
  for (const auto& [item, status] : spammer_items) EXPECT_EQ(relabelled.count(item), 1u) << item;
  EXPECT_EQ(Work(run, "honest").outcome, "no_work");
}

TEST_F(QualityRulesTest, WindowsSurviveARestartWithoutFiringTwice) {
  TempDir db;
  const std::string uri = db.File("db.sqlite");
  OpenAt(uri);
  const std::string run = Launch(kFastBan);
  Do(run, "w", 1);
  Do(run, "w", 1);
  OpenAt(uri);  // a new process: windows are rebuilt from the store
  Do(run, "w", 1);  // the third fast unit still crosses the line
  ASSERT_EQ(Firings().size(), 1u);
  OpenAt(uri);
  env_.AdvanceSeconds(2 * 86400);
  Do(run, "w", 1);  // the replayed crossing does not fire again; a fresh window has 1 fast unit
  Do(run, "w", 1);
  EXPECT_EQ(Firings().size(), 1u);
  Do(run, "w", 1);
  EXPECT_EQ(Firings().size(), 2u);
}

TEST_F(QualityRulesTest, AnExistingPermanentBlockIsNotShortened) {
  const std::string run = Launch(kFastBan, /*items=*/20, /*units_per_item=*/1, /*concurrent=*/3);
  std::vector<WorkResponse> held;
  for (int i = 0; i < 3; ++i) held.push_back(Work(run, "w"));
  // The requester blocks the worker for good while they hold three units.
  ASSERT_TRUE(engine_->Grant({"t-blocked", "w", 1, std::nullopt, "test"}).ok());
  env_.AdvanceSeconds(1);
  for (const WorkResponse& w : held) ASSERT_TRUE(d_->Submit(w.agent_id, w.token, json{{"label", "x"}}).ok());
  EXPECT_TRUE(Firings().empty());  // the rule crossed the line, but a day's ban would shorten the block
  env_.AdvanceSeconds(2 * 86400);
  EXPECT_TRUE(Blocked(run, "w"));
}

}  // namespace
}  // namespace crowdgate
