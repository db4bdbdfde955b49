// Crash safety (answered = stored, even under kill -9): a simulated crowd drives `crowdgate serve` (a child process) over
// HTTP while the test kill -9s the server at random (seeded) moments, restarting it on the same database each time.
// Afterwards the database itself is read and must show that: every submission answered 200 is stored exactly once
// with its data unchanged; no unit was ever held by two live agents (each lease ended, by timeout at its deadline or
// by a return, before the next agent of the unit was created); gold counters equal the scored gold submissions and
// G-completed-count the submitted real units; onboarding grants match the onboarding results; the gold cap holds and
// gold_served equals the gold units not expired; and the leases of the killed servers expired, their units back in
// the pool (no agent left open, no unit left assigned).
//
// Parameterized over the database (as multi_server_test is):
//   SQLite      a file: always runs (ctest entry crash_safety_test, label e2e).
//   PostgreSQL  a fresh database on the server named by $CROWDGATE_TEST_PG (scripts/with_pg.sh sets it), dropped
//               afterwards; skipped with a message when it is unset (ctest entry crash_safety_pg_test, labels
//               e2e;postgres).
#include <atomic>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"
#include "tests/support/scratch_database.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

constexpr int kItems = 500;
constexpr int kUnitsPerItem = 2;
constexpr int kGolds = 10;
constexpr int kMaxGoldUnits = 40;
constexpr int kLeaseSeconds = 2;
constexpr int kThreads = 6;
constexpr int kWorkersPerThread = 3;
constexpr int kKills = 5;
// The kill moments and the crowd's choices; CROWDGATE_CRASH_SEED=N explores other schedules.
uint32_t Seed() {
  const char* s = std::getenv("CROWDGATE_CRASH_SEED");
  return s != nullptr ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 20240605u;
}

const char* const kLabels[] = {"positive", "negative", "neutral"};

// One submission the server answered 200.
struct Accepted {
  std::string agent_id;
  std::string worker;
  json data;
};

// What the crowd saw, shared by the client threads.
struct Ledger {
  std::mutex mu;
  std::vector<Accepted> accepted;
  std::vector<std::string> unexpected;  // responses that are neither expected outcomes nor connection failures
  std::atomic<int64_t> connection_failures{0};
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> conflicts{0};  // 409 on a resubmit after a crash: committed, answer lost
  std::atomic<int64_t> gone{0};       // 410: lease expired (e.g. while the server was down)

  void Accept(Accepted a) {
    std::lock_guard<std::mutex> l(mu);
    accepted.push_back(std::move(a));
  }
  void Unexpected(std::string what) {
    std::lock_guard<std::mutex> l(mu);
    if (unexpected.size() < 20) unexpected.push_back(std::move(what));
  }
};

struct Pending {
  std::string agent_id;
  std::string token;
  json data;  // what we will submit (fixed once chosen, so a resubmit sends the same data)
  int attempts = 0;
};

struct SimWorker {
  std::string name;
  double accuracy = 0.9;
  bool quit = false;  // walked away holding a lease
  std::optional<Pending> pending;
  int64_t seq = 0;
};

class CrashSafetyTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string why = database_.Create(GetParam(), dir_.File("crowdgate.db"), "crowdgate_cs");
    if (database_.no_server()) GTEST_SKIP() << why;
    ASSERT_EQ(why, "");
    db_ = database_.uri();
    std::string units;
    for (int i = 0; i < kItems; ++i) {
      units += json{{"id", "s" + std::to_string(i)}, {"text", "sentence number " + std::to_string(i)}}.dump() + "\n";
    }
    std::string golds;
    for (int i = 0; i < kGolds; ++i) {
      const std::string label = kLabels[i % 3];
      // Golds look like the units (same id scheme and text), as launch wants them to.
      const std::string n = std::to_string(kItems + i);
      gold_answers_["s" + n] = label;
      golds += json{{"inputs", {{"id", "s" + n}, {"text", "sentence number " + n}}},
                    {"answer", {{"label", label}}}}
                   .dump() +
               "\n";
    }
    Write("units.jsonl", units);
    Write("golds.jsonl", golds);
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    Write("onboarding.html", "<p>${q1}</p><p>${q2}</p><p>${q3}</p>");
    Write("onboarding_data.json", R"({"q1": "Kind staff.", "q2": "Crushed parcel.", "q3": "Second floor."})");
    Write("onboarding_answer.json", R"({"q1": "positive", "q2": "negative", "q3": "neutral"})");
    const std::string config = Write(
        "config.yaml",
        "task:\n  task_name: crash-safety\n  task_title: Crash safety\n  task_reward: 0.05\n"
        "  allowed_concurrent: 1\n  assignment_duration_in_seconds: " +
            std::to_string(kLeaseSeconds) +
            "\n"
            "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n  units_per_item: " +
            std::to_string(kUnitsPerItem) +
            "\n  block_qualification: cs-blocked\n  onboarding_qualification: cs-onboarded\n"
            "  onboarding_data: onboarding_data.json\n  onboarding_answer: onboarding_answer.json\n"
            "  onboarding_template: onboarding.html\n"
            "  onboarding_check: {match: case_insensitive, pass_fraction: 0.66}\n"
            "  use_golds: true\n  gold_qualification_base: cs-gold\n  gold_file: golds.jsonl\n"
            "  gold_check: {fields: [label], match: case_insensitive}\n  min_golds: 1\n  max_incorrect_golds: 1\n"
            "  max_gold_units: " +
            std::to_string(kMaxGoldUnits) + "\nqualifications: []\nprovider:\n  type: local\n  trust_worker_param: true\n");
    CommandResult r = RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " --json launch " + ShellQuote(config));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    run_ = json::parse(r.out)["run_id"];
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

  // The answer a worker of this accuracy gives for `inputs` (golds by id; units: anything).
  json Answer(const json& inputs, bool onboarding, double accuracy, std::mt19937& rng, const std::string& nonce) {
    std::uniform_real_distribution<double> coin(0, 1);
    std::uniform_int_distribution<int> any(0, 2);
    json data;
    if (onboarding) {
      data = {{"q1", "positive"}, {"q2", "negative"}, {"q3", "neutral"}};
      if (coin(rng) > accuracy) data = {{"q1", "neutral"}, {"q2", "neutral"}, {"q3", "positive"}};
    } else {
      const std::string id = inputs.is_object() ? inputs.value("id", "") : "";
      auto gold = gold_answers_.find(id);
      std::string label = kLabels[any(rng)];
      if (gold != gold_answers_.end() && coin(rng) <= accuracy) label = gold->second;
      data = {{"label", label}};
    }
    data["nonce"] = nonce;  // makes every submission distinguishable in the database
    return data;
  }

  // One client thread: a few workers taking turns; reconnects to whatever port the server has now.
  void Drive(int thread_index, std::atomic<int>& port, std::atomic<bool>& stop, Ledger& ledger) {
    std::mt19937 rng(Seed() + static_cast<uint32_t>(thread_index));
    std::uniform_real_distribution<double> coin(0, 1);
    std::vector<SimWorker> workers;
    for (int w = 0; w < kWorkersPerThread; ++w) {
      SimWorker sw;
      sw.name = "t" + std::to_string(thread_index) + "w" + std::to_string(w);
      sw.accuracy = (thread_index + w) % 4 == 0 ? 0.3 : 0.95;  // some spammers, disqualified by golds
      workers.push_back(sw);
    }
    std::unique_ptr<HttpClient> client;
    int client_port = 0;
    size_t turn = 0;
    while (!stop) {
      const int p = port.load();
      if (p == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      if (p != client_port) {
        client = std::make_unique<HttpClient>("127.0.0.1", p, std::chrono::milliseconds(3000));
        client_port = p;
      }
      SimWorker& w = workers[turn++ % workers.size()];
      if (w.quit) continue;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + static_cast<int>(coin(rng) * 25)));
      ++ledger.requests;
      if (w.pending) {
        Pending& pend = *w.pending;
        auto r = client->Post("/api/v1/agents/" + pend.agent_id + "/submit", json{{"data", pend.data}}.dump(),
                              {{"Authorization", "Bearer " + pend.token}});
        if (!r.ok()) {
          ++ledger.connection_failures;
          if (++pend.attempts > 5) w.pending.reset();
          client_port = 0;  // reconnect (possibly to a new server)
          continue;
        }
        if (r->status == 200) {
          ledger.Accept({pend.agent_id, w.name, pend.data});
        } else if (r->status == 409 && pend.attempts > 0) {
          ++ledger.conflicts;
        } else if (r->status == 410) {
          ++ledger.gone;
        } else {
          ledger.Unexpected("submit " + std::to_string(r->status) + " " + r->body);
        }
        w.pending.reset();
        continue;
      }
      auto r = client->Post("/api/v1/runs/" + run_ + "/work", json{{"provider", "local"}, {"worker", w.name}}.dump());
      if (!r.ok()) {
        ++ledger.connection_failures;
        client_port = 0;
        continue;
      }
      if (r->status != 200) {
        ledger.Unexpected("work " + std::to_string(r->status) + " " + r->body);
        continue;
      }
      json work = json::parse(r->body, nullptr, false);
      const std::string outcome = work.is_object() ? work.value("outcome", "") : "";
      if (outcome != "unit" && outcome != "onboarding") continue;  // no_work / not_qualified: ask again later
      if (coin(rng) < 0.03) {  // walks away holding the lease: it must time out and its unit come back
        w.quit = true;
        continue;
      }
      const std::string nonce = w.name + "-" + std::to_string(w.seq++);
      w.pending = Pending{work["agent_id"], work["token"],
                          Answer(work["data"], outcome == "onboarding", w.accuracy, rng, nonce), 0};
    }
  }

  TempDir dir_;
  ScratchDatabase database_;
  std::string db_;  // a SQLite file or a PostgreSQL URI
  std::string run_;
  std::map<std::string, std::string> gold_answers_;
};

TEST_P(CrashSafetyTest, KillNineAtRandomMomentsLosesNothingAndBreaksNoInvariant) {
  ASSERT_FALSE(run_.empty());
  Ledger ledger;
  std::atomic<int> port{0};
  std::atomic<bool> stop{false};
  auto server = std::make_unique<ServerProcess>(dir_, db_, std::vector<std::string>{}, "server-0.txt");
  ASSERT_NE(server->port(), 0);
  port = server->port();

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { Drive(t, port, stop, ledger); });
  }
  std::mt19937 rng(Seed());
  std::uniform_int_distribution<int> pause_ms(300, 1500);
  int kills = 0;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    ASSERT_TRUE(server->Alive()) << "server died on its own:\n" << server->StderrText();
    server->Kill();
    port = 0;
    ++kills;
    server = std::make_unique<ServerProcess>(dir_, db_, std::vector<std::string>{},
                                             "server-" + std::to_string(k + 1) + ".txt");
    ASSERT_NE(server->port(), 0) << "restart " << k + 1 << " failed";
    port = server->port();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  stop = true;
  for (auto& t : threads) t.join();
  const int64_t stopped_at = Env::Default()->NowMicros();

  // Let every lease (of the killed servers and of the walked-away workers) pass its deadline, then make the
  // live server notice: its expiry thread runs every second, and a work request expires overdue agents too.
  std::this_thread::sleep_for(std::chrono::milliseconds(kLeaseSeconds * 1000 + 1500));
  {
    HttpClient c("127.0.0.1", server->port());
    auto late = c.Post("/api/v1/runs/" + run_ + "/work", R"({"worker": "latecomer"})");
    ASSERT_TRUE(late.ok()) << late.status().ToString();
    ASSERT_EQ(late->status, 200) << late->body;
    json j = json::parse(late->body);
    if (j["agent_id"].is_string()) {  // give it straight back so nothing stays open
      auto ret = c.Post("/api/v1/agents/" + j["agent_id"].get<std::string>() + "/return", "",
                        {{"Authorization", "Bearer " + j["token"].get<std::string>()}});
      ASSERT_TRUE(ret.ok());
      ASSERT_EQ(ret->status, 200) << ret->body;
    }
  }
  ASSERT_TRUE(server->Alive()) << server->StderrText();
  server->Stop();

  {
    std::lock_guard<std::mutex> l(ledger.mu);
    for (const auto& u : ledger.unexpected) ADD_FAILURE() << "unexpected response: " << u;
  }

  auto store_or = Store::Open(db_, Env::Default());
  ASSERT_TRUE(store_or.ok()) << store_or.status().ToString();
  Store& store = **store_or;
  auto agents_or = store.RunAgents(run_);
  ASSERT_TRUE(agents_or.ok()) << agents_or.status().ToString();
  const std::vector<AgentRecord>& agents = *agents_or;
  std::map<std::string, const AgentRecord*> by_id;
  std::map<std::string, int> nonce_count;
  for (const auto& a : agents) {
    EXPECT_TRUE(by_id.emplace(a.id, &a).second) << "agent " << a.id << " stored twice";
    if (a.data_json.empty()) continue;
    json d = json::parse(a.data_json, nullptr, false);
    if (d.is_object() && d.contains("nonce")) ++nonce_count[d["nonce"].get<std::string>()];
  }

  // 1. Every submission answered 200 is stored exactly once, unchanged.
  size_t checked = 0;
  for (const auto& acc : ledger.accepted) {
    auto it = by_id.find(acc.agent_id);
    if (it == by_id.end()) {
      ADD_FAILURE() << "accepted submission of " << acc.agent_id << " is not in the database";
      continue;
    }
    const AgentRecord& a = *it->second;
    EXPECT_TRUE(a.status == AgentStatus::kCompleted || a.status == AgentStatus::kPassed || a.status == AgentStatus::kFailed) << a.id << " " << a.status;
    EXPECT_EQ(json::parse(a.data_json, nullptr, false), acc.data) << a.id;
    EXPECT_EQ(a.worker.ToString(), "local:" + acc.worker) << a.id;
    EXPECT_EQ(nonce_count[acc.data["nonce"].get<std::string>()], 1) << "submission stored more than once: " << acc.data;
    ++checked;
  }
  for (const auto& [nonce, n] : nonce_count) EXPECT_EQ(n, 1) << nonce;

  // 2. No unit was ever held by two live agents: per unit, each agent's lease ended before the next one began,
  //    and only the last one may be completed.
  std::map<int64_t, std::vector<const AgentRecord*>> by_unit;
  for (const auto& a : agents) {
    if (a.unit_id) by_unit[*a.unit_id].push_back(&a);
  }
  for (auto& [unit, list] : by_unit) {
    std::sort(list.begin(), list.end(), [](const auto* x, const auto* y) { return x->created_at < y->created_at; });
    for (size_t i = 0; i + 1 < list.size(); ++i) {
      const AgentRecord& prev = *list[i];
      const AgentRecord& next = *list[i + 1];
      EXPECT_TRUE(prev.status == AgentStatus::kTimeout || prev.status == AgentStatus::kReturned)
          << "unit " << unit << " given to " << next.id << " while " << prev.id << " is " << prev.status;
      if (prev.status == AgentStatus::kTimeout) {
        EXPECT_GE(next.created_at, prev.deadline) << "unit " << unit << " re-leased before " << prev.id << " expired";
      }
    }
  }
  // A worker never does two copies of one item.
  std::set<std::pair<int64_t, int64_t>> worker_items;
  for (const auto& a : agents) {
    if (a.kind == AgentKind::kUnit && a.status == AgentStatus::kCompleted) {
      EXPECT_TRUE(worker_items.emplace(a.worker_id, a.item_index).second)
          << a.worker.ToString() << " did item " << a.item_index << " twice";
    }
  }

  // 3. Counters equal the validated submissions; onboarding grants match the results.
  struct Tally {
    WorkerRef ref;
    int64_t gold_pass = 0, gold_fail = 0, units_done = 0, onboarding_passed = 0, onboarding_failed = 0;
  };
  std::map<WorkerId, Tally> tally;
  for (const auto& a : agents) {
    Tally& t = tally[a.worker_id];
    t.ref = a.worker;
    if (a.kind == AgentKind::kGold && a.status == AgentStatus::kCompleted) {
      if (a.check_result == "pass") ++t.gold_pass;
      if (a.check_result == "fail") ++t.gold_fail;
    }
    if (a.kind == AgentKind::kUnit && a.status == AgentStatus::kCompleted) ++t.units_done;
    if (a.kind == AgentKind::kOnboarding && a.status == AgentStatus::kPassed) ++t.onboarding_passed;
    if (a.kind == AgentKind::kOnboarding && a.status == AgentStatus::kFailed) ++t.onboarding_failed;
  }
  int64_t scored_golds = 0;
  for (const auto& [worker, t] : tally) {
    auto grants = store.GrantsForWorker(worker);
    ASSERT_TRUE(grants.ok()) << grants.status().ToString();
    std::map<std::string, int64_t> value;
    for (const auto& g : *grants) value[g.qualification] = g.value;
    const std::string who = t.ref.ToString();
    EXPECT_EQ(value["cs-gold-correct-golds"], t.gold_pass) << who;
    EXPECT_EQ(value["cs-gold-wrong-golds"], t.gold_fail) << who;
    EXPECT_EQ(value["cs-gold-completed-count"], t.units_done) << who;
    EXPECT_LE(t.onboarding_passed + t.onboarding_failed, 1) << who << " onboarded twice";
    const int64_t onboarded = value.count("cs-onboarded") != 0 ? value["cs-onboarded"] : -1;  // -1: no grant
    const int64_t expect_onboarded = t.onboarding_passed == 1 ? 1 : t.onboarding_failed == 1 ? 0 : -1;
    EXPECT_EQ(onboarded, expect_onboarded) << who;
    EXPECT_EQ(value.count("cs-onboarded-failed") != 0, t.onboarding_failed == 1) << who;
    scored_golds += t.gold_pass + t.gold_fail;
  }

  // 4. The gold cap holds, and gold_served counts exactly the gold units not expired.
  auto record = store.GetRun(run_);
  ASSERT_TRUE(record.ok());
  int64_t live_golds = 0;
  for (const auto& a : agents) {
    if (a.kind == AgentKind::kGold && a.status != AgentStatus::kTimeout && a.status != AgentStatus::kReturned) ++live_golds;
  }
  EXPECT_LE(record->gold_served, kMaxGoldUnits);
  EXPECT_EQ(record->gold_served, live_golds);

  // 5. The leases of the killed servers expired: nothing open, nothing assigned, every unit launched or done.
  int64_t open = 0;
  for (const auto& a : agents) {
    if (a.status == AgentStatus::kInTask || a.status == AgentStatus::kOnboarding) {
      ++open;
      ADD_FAILURE() << "agent " << a.id << " still " << a.status << ", deadline "
                    << (a.deadline - stopped_at) / 1000 << " ms after the crowd stopped";
    }
  }
  auto counts = store.UnitStatusCounts(run_);
  ASSERT_TRUE(counts.ok());
  int64_t real_units = 0, launched = 0;
  for (const auto& [status, n] : *counts) {  // real units only (kind unit)
    EXPECT_TRUE(status == "launched" || status == "completed") << status << "=" << n;
    real_units += n;
    if (status == ToString(UnitStatus::kLaunched)) launched = n;
  }
  EXPECT_EQ(real_units, kItems * kUnitsPerItem) << "units lost or invented";
  int64_t timeouts = 0;
  for (const auto& a : agents) timeouts += a.status == AgentStatus::kTimeout ? 1 : 0;

  std::cerr << "crash safety (" << GetParam() << ", seed " << Seed() << "): " << kills << " kills survived, " << ledger.requests
            << " requests, " << ledger.accepted.size() << " submissions answered 200 (" << checked << " checked), "
            << agents.size() << " agents, " << timeouts << " leases timed out, " << scored_golds
            << " golds scored, gold_served " << record->gold_served << ", " << launched << " units still launched, "
            << ledger.connection_failures << " connection failures, " << ledger.conflicts << " 409 on resubmit, "
            << ledger.gone << " 410\n";
  EXPECT_EQ(kills, kKills);
  EXPECT_GT(checked, 50u);
  EXPECT_GT(timeouts, 0);
  EXPECT_EQ(open, 0);
}

INSTANTIATE_TEST_SUITE_P(Db, CrashSafetyTest, ::testing::Values("SQLite", "PostgreSQL"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace crowdgate::testing
