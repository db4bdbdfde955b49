// The fixture of the dispatcher tests (dispatcher_test.cpp, dispatcher_batch_test.cpp): an engine
// and a dispatcher over an in-memory SQLite store on a FakeEnv, run configs from YAML fragments.
#pragma once

#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "engine/engine_test_util.hpp"
#include "engine/run_dispatcher.hpp"

namespace crowdgate::dispatcher_test {

using nlohmann::json;
using testing::OpenTestDispatcher;
using testing::TempDir;

// A run config assembled from YAML fragments; blueprint.type json so no template is needed.
struct Cfg {
  std::string task_name = "t";
  int lease_s = 600;           // task.assignment_duration_in_seconds
  std::string task = "";       // extra lines under task:, each indented by two spaces
  std::string blueprint = "";  // extra lines under blueprint:
  std::string qualifications = "[]";
  std::string data = "units.jsonl";
};

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenAt(":memory:"); }

  void OpenAt(const std::string& uri) { OpenTestDispatcher(&env_, uri, engine_, d_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

  // Items {"text": "item i"}.
  void WriteUnits(int n, const std::string& name = "units.jsonl") {
    std::string text;
    for (int i = 0; i < n; ++i) text += json{{"text", "item " + std::to_string(i)}}.dump() + "\n";
    Write(name, text);
  }

  // Golds {"inputs": {"text": "gold i"}, "answer": {"label": "pos"}}.
  void WriteEval(const std::string& name, int n, const std::string& prefix) {
    std::string text;
    for (int i = 0; i < n; ++i) {
      text += json{{"inputs", {{"text", prefix + " " + std::to_string(i)}}}, {"answer", {{"label", "pos"}}}}.dump() +
              "\n";
    }
    Write(name, text);
  }

  Result<LaunchResult> TryLaunch(const Cfg& c) {
    const std::string yaml = "task:\n  task_name: " + c.task_name + "\n  assignment_duration_in_seconds: " +
                             std::to_string(c.lease_s) + "\n" +
                             c.task + "blueprint:\n  type: json\n  data: " + c.data + "\n" + c.blueprint +
                             "qualifications: " + c.qualifications + "\nprovider:\n  type: local\n";
    const std::string path = Write("config-" + std::to_string(++configs_) + ".yaml", yaml);
    auto config = LoadRunConfig(path, {});
    if (!config.ok()) return config.status();
    return d_->Launch(*config, {});
  }

  std::string Launch(const Cfg& c) {
    auto r = TryLaunch(c);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->run_id : "";
  }

  WorkResponse Work(const std::string& run, const std::string& worker, const std::string& session = "") {
    WorkRequest req;
    auto ref = ParseWorkerRef(worker);
    EXPECT_TRUE(ref.ok()) << worker;
    req.run_id = run;
    req.worker = *ref;
    req.session = session;
    auto r = d_->RequestWork(req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : WorkResponse{};
  }

  Result<SubmitResponse> Submit(const WorkResponse& w, const json& data) {
    return d_->Submit(w.agent_id, w.token, data);
  }

  std::string SubmitOk(const WorkResponse& w, const json& data) {
    auto r = Submit(w, data);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->outcome : "";
  }

  // The worker's live value of a qualification, or nullopt.
  std::optional<int64_t> Grant(const std::string& worker, const std::string& qual) {
    auto info = engine_->ShowWorker(worker);
    if (!info.ok()) return std::nullopt;
    for (const auto& g : info->grants) {
      if (g.qualification == qual && !g.ExpiredAt(env_.NowMicros())) return g.value;
    }
    return std::nullopt;
  }

  void GrantQ(const std::string& qual, const std::string& worker, int64_t value = 1) {
    auto r = engine_->Grant({qual, worker, value, std::nullopt, "test"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  void CreateQ(const std::string& name) { ASSERT_TRUE(engine_->CreateQualification(name, "").ok()); }

  std::vector<ExportRow> Rows(const std::string& run) {
    auto rows = d_->Export(run);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<ExportRow>{};
  }

  static void ExpectRefused(const WorkResponse& w, const std::string& outcome, const std::string& reason) {
    EXPECT_EQ(w.outcome, outcome);
    EXPECT_EQ(w.reason, reason);
    EXPECT_TRUE(w.agent_id.empty());
    EXPECT_TRUE(w.token.empty());
  }

  static std::string Text(const WorkResponse& w) { return w.data.value("text", ""); }

  FakeEnv env_;
  TempDir dir_;
  std::unique_ptr<EngineImpl> engine_;
  std::unique_ptr<RunDispatcher> d_;
  int configs_ = 0;
};

// Gold units from golds.jsonl counted under `base`.
inline std::string Golds(const std::string& base = "g") {
  return "  use_golds: true\n  gold_qualification_base: " + base + "\n  gold_file: golds.jsonl\n";
}

}  // namespace crowdgate::dispatcher_test
