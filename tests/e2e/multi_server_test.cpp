// Scale-out (README "PostgreSQL" and "Scale-out on PostgreSQL"): THREE `crowdgate serve` processes share one database while a
// simulated crowd of 1,000 distinct workers, spread across the three servers (a worker hops between servers from one
// request to the next: it may get its unit from one server and submit it to another), labels a run with golds and a
// gold cap. Mid-run the test grants the run's block_qualification to some active workers through ONE server's
// requester API, and a few workers walk away holding a unit or a gold; once their leases have ended (every server's
// expiry timer races to time them out), a late crowd of 100 more workers takes what came back. Afterwards the
// database itself is read through crowdgate's Store API and must show that:
//   - no unit was held by two agents at once (a unit's next agent was created only after the previous one was
//     returned, or timed out at its deadline), no unit was completed by two agents, no worker did two copies of an
//     item, nothing is left open or assigned;
//   - the gold cap held under contention (gold_served == max_gold_units == the gold agents not timed out: each
//     expired gold gave back exactly one slot, which the late crowd used);
//   - the gold counters equal the scored gold submissions and G-completed-count the completed real units;
//   - every submission answered 200 is stored exactly once, by the right worker, with its data unchanged;
//   - the block was honoured by ALL THREE servers within one request: right after the grant call returned, the
//     blocked worker's next work request on each server answered not_qualified / blocked, and no agent was created
//     for a blocked worker after that moment.
//
// Parameterized over the database:
//   SQLite      one file shared by the three processes (WAL supports several processes): always runs.
//   PostgreSQL  a fresh database on the server named by $CROWDGATE_TEST_PG (scripts/with_pg.sh sets it); skipped
//               with a message when it is unset.
// ctest runs the two as separate entries: multi_server_sqlite_test (label e2e) and multi_server_test (labels e2e,
// postgres) so `ctest -L postgres` under scripts/with_pg.sh covers PostgreSQL and every other ctest run covers SQLite.
// CROWDGATE_MULTI_SERVER_SEED=N changes the crowd's random choices (which server, which label).
#include <unistd.h>

#include <algorithm>
#include <atomic>
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

#ifdef CROWDGATE_TEST_HAVE_PQXX
#include "store/postgres/pg_scratch_db.hpp"
#endif

#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "server/http_client.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr int kServers = 3;
constexpr int kWorkers = 1000;
constexpr int kThreads = 50;  // each drives kWorkers / kThreads workers, one keep-alive client per server
constexpr int kItems = 600;
constexpr int kUnitsPerItem = 3;
constexpr int kGolds = 50;
constexpr int kMaxGoldUnits = 600;  // fewer than the workers who need a first gold: the cap is reached under load
constexpr int kMaxTasks = 5;        // submissions per worker: its first gold, then up to 4 real units
constexpr int kBlockHolding = 15;   // workers blocked while holding a real unit
constexpr int kBlockIdle = 15;      // workers blocked between two tasks
constexpr int kLeaseSeconds = 8;    // assignment_duration_in_seconds: walked-away leases expire mid-test
constexpr int kLateWorkers = 100;   // the late crowd, after the walked-away leases expired
constexpr int kLateThreads = 10;
constexpr auto kCrowdDeadline = std::chrono::seconds(50);
const char* const kBlockQual = "ms-blocked";
const char* const kRequesterToken = "ms-requester-token-0123456789abcdef";
const char* const kLabels[] = {"positive", "negative", "neutral"};

uint32_t Seed() {
  const char* s = std::getenv("CROWDGATE_MULTI_SERVER_SEED");
  return s != nullptr ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 20240606u;
}

// ---- what the crowd saw ----------------------------------------------------------------------------------------

struct Accepted {
  std::string agent_id;
  std::string worker;
  json data;
};

struct BlockEvent {
  std::string worker;
  int64_t granted_at = 0;  // NowMicros() right after the grant call returned
  bool holding = false;
};

// A worker who walked away holding an agent: its lease must expire (some server's expiry) and its unit, or for a
// gold its cap slot, come back exactly once.
struct Walked {
  std::string agent_id;
  std::string worker;
  bool gold = false;
  std::chrono::steady_clock::time_point at;
};

struct Ledger {
  std::mutex mu;
  std::vector<Accepted> accepted;
  std::vector<BlockEvent> blocks;
  std::vector<Walked> walked;
  std::atomic<int64_t> expired_while_working{0};  // 410 on a submit sent after the lease ended (slow machine)
  std::vector<std::string> failures;  // anything that breaks the scenario's expectations, as it happened
  std::map<std::string, int64_t> outcomes;  // "work unit", "work no_work/gold_cap_reached", "submit 200", ...
  std::atomic<int64_t> requests_per_server[kServers] = {};
  std::atomic<int> blocks_holding{0};
  std::atomic<int> blocks_idle{0};
  std::set<std::string> workers_seen;

  void Fail(std::string what) {
    std::lock_guard<std::mutex> l(mu);
    if (failures.size() < 30) failures.push_back(std::move(what));
  }
  void Count(const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    ++outcomes[what];
  }
};

struct Pending {
  std::string agent_id;
  std::string token;
  json data;
  bool gold = false;
  std::chrono::steady_clock::time_point got_at;
};

struct SimWorker {
  int index = 0;
  std::string name;
  bool spammer = false;  // answers golds wrong: disqualified by its first gold (max_incorrect_golds 0)
  bool done = false;
  int tasks = 0;
  std::optional<Pending> pending;
};

class MultiServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "PostgreSQL") {
      const char* pg = std::getenv("CROWDGATE_TEST_PG");
      if (pg == nullptr || *pg == '\0') {
        GTEST_SKIP() << "CROWDGATE_TEST_PG is not set: the PostgreSQL instance needs a server; run it through "
                        "scripts/with_pg.sh (e.g. `scripts/with_pg.sh build/ms/tests/multi_server_test`)";
      }
#ifdef CROWDGATE_TEST_HAVE_PQXX
      pg_admin_ = pg;
      pg_db_ = "crowdgate_ms_" + std::to_string(::getpid()) + "_" + Env::Default()->RandomHex128().substr(0, 8);
      const std::string err = pg_scratch::Exec(pg_admin_, "CREATE DATABASE " + pg_db_);
      ASSERT_EQ(err, "") << "CREATE DATABASE " << pg_db_ << " on " << pg_admin_;
      db_ = pg_scratch::WithDatabase(pg_admin_, pg_db_);
#else
      FAIL() << "CROWDGATE_TEST_PG is set but this test was built without libpqxx (pkg-config libpqxx), so it "
                "cannot create a fresh database";
#endif
    } else {
      db_ = dir_.File("crowdgate.db");
    }
    WriteFixtures();
  }

  void TearDown() override {
#ifdef CROWDGATE_TEST_HAVE_PQXX
    if (!pg_db_.empty() && std::getenv("CROWDGATE_KEEP_TEST_DB") == nullptr) {
      const std::string err = pg_scratch::Exec(pg_admin_, "DROP DATABASE IF EXISTS " + pg_db_ + " WITH (FORCE)");
      EXPECT_EQ(err, "") << "DROP DATABASE " << pg_db_;
    }
#endif
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }

  void WriteFixtures() {
    // Strings are appended, not built with "literal" + std::string (g++ 12 warns about that: -Wrestrict).
    const auto numbered = [](std::string prefix, int i) { return prefix.append(std::to_string(i)); };
    std::string units;
    for (int i = 0; i < kItems; ++i) {
      units += json{{"id", numbered("s", i)}, {"text", numbered("sentence number ", i)}}.dump();
      units += "\n";
    }
    std::string golds;
    for (int i = 0; i < kGolds; ++i) {
      const std::string label = kLabels[i % 3];
      // Golds look like the units (same id scheme and text), as launch wants them to.
      gold_answers_[numbered("s", kItems + i)] = label;
      golds += json{{"inputs", {{"id", numbered("s", kItems + i)}, {"text", numbered("sentence number ", kItems + i)}}},
                    {"answer", {{"label", label}}}}
                   .dump();
      golds += "\n";
    }
    Write("units.jsonl", units);
    Write("golds.jsonl", golds);
    Write("task.html", "<p>${text}</p><input name=\"label\">");
    std::string yaml =
        "task:\n  task_name: multi-server\n  task_title: Multi server\n  task_reward: 0.05\n"
        "  allowed_concurrent: 1\n";
    yaml += "  assignment_duration_in_seconds: " + std::to_string(kLeaseSeconds) + "\n";
    yaml += "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n";
    yaml += "  units_per_item: " + std::to_string(kUnitsPerItem) + "\n";
    yaml += std::string("  block_qualification: ") + kBlockQual + "\n";
    yaml +=
        "  use_golds: true\n  gold_qualification_base: ms-gold\n  gold_file: golds.jsonl\n"
        "  gold_check: {fields: [label], match: exact}\n  min_golds: 1\n  max_incorrect_golds: 0\n";
    yaml += "  max_gold_units: " + std::to_string(kMaxGoldUnits) + "\n";
    yaml += "qualifications: []\nprovider:\n  type: local\n  trust_worker_param: true\n";
    config_ = Write("config.yaml", yaml);
  }

  // Workers index first, first + stride, ... below `end`, named PREFIX + index.
  static std::vector<SimWorker> Crowd(const std::string& prefix, int first, int end, int stride) {
    std::vector<SimWorker> workers;
    for (int i = first; i < end; i += stride) {
      SimWorker w;
      w.index = i;
      w.name = prefix + std::to_string(i);
      w.spammer = i % 25 == 11;
      workers.push_back(w);
    }
    return workers;
  }

  // One client thread: its workers take turns; every request goes to a server picked at random. In the main phase
  // some workers are blocked and some walk away holding an agent; the late phase only works.
  void Drive(int thread_index, std::vector<SimWorker> workers, bool main_phase, const std::vector<int>& ports,
             Ledger& ledger, std::chrono::steady_clock::time_point deadline) {
    std::mt19937 rng(Seed() * 31u + static_cast<uint32_t>(thread_index) + (main_phase ? 0u : 7919u));
    std::uniform_int_distribution<int> pick_server(0, kServers - 1);
    std::uniform_int_distribution<int> any_label(0, 2);
    std::vector<HttpClient> clients;
    for (int p : ports) clients.emplace_back("127.0.0.1", p, std::chrono::milliseconds(30000));

    auto post = [&](int server, const std::string& target, const json& body,
                    const Headers& headers) -> std::optional<HttpClientResponse> {
      ++ledger.requests_per_server[server];
      auto r = clients[static_cast<size_t>(server)].Post(target, body.dump(), headers);
      if (!r.ok()) {
        ledger.Fail("server " + std::to_string(server) + " " + target + ": " + r.status().ToString());
        return std::nullopt;
      }
      return *r;
    };
    auto work = [&](int server, const SimWorker& w) -> json {
      auto r = post(server, "/api/v1/runs/" + run_ + "/work", json{{"provider", "local"}, {"worker", w.name}}, {});
      if (!r) return json::object();
      if (r->status != 200) {
        ledger.Fail("work of " + w.name + " on server " + std::to_string(server) + ": HTTP " +
                    std::to_string(r->status) + " " + r->body);
        return json::object();
      }
      json j = json::parse(r->body, nullptr, false);
      if (!j.is_object()) ledger.Fail("work of " + w.name + ": not JSON: " + r->body);
      return j.is_object() ? j : json::object();
    };

    // Grants the block through server 0's requester API, then asks for work on every server at once.
    auto block = [&](SimWorker& w, bool holding) {
      auto g = post(0, std::string("/api/v1/requester/qualifications/") + kBlockQual + "/grant",
                    json{{"worker", w.name}, {"reason", "multi-server test"}},
                    {{"Authorization", std::string("Bearer ") + kRequesterToken}});
      const int64_t granted_at = Env::Default()->NowMicros();
      if (!g || g->status != 200) {
        ledger.Fail("block grant of " + w.name + ": " + (g ? std::to_string(g->status) + " " + g->body : "no answer"));
        w.done = true;
        return;
      }
      {
        std::lock_guard<std::mutex> l(ledger.mu);
        ledger.blocks.push_back({w.name, granted_at, holding});
      }
      for (int s = 0; s < kServers; ++s) {
        json j = work(s, w);
        if (j.value("outcome", "") != "not_qualified" || j.value("reason", json()) != "blocked") {
          ledger.Fail("server " + std::to_string(s) + " did not honour the block of " + w.name + " (granted via " +
                      "server 0, holding=" + std::to_string(holding) + ") at the next request: " + j.dump());
        }
      }
      if (holding && w.pending) {  // gives the unit back (the token still works for a return)
        auto r = post(pick_server(rng), "/api/v1/agents/" + w.pending->agent_id + "/return", json::object(),
                      {{"Authorization", "Bearer " + w.pending->token}});
        if (r && r->status != 200) ledger.Fail("return by blocked " + w.name + ": " + std::to_string(r->status));
        w.pending.reset();
      }
      w.done = true;
    };

    size_t live = workers.size();
    while (live > 0 && std::chrono::steady_clock::now() < deadline) {
      live = 0;
      for (SimWorker& w : workers) {
        if (w.done) continue;
        ++live;
        {
          std::lock_guard<std::mutex> l(ledger.mu);
          ledger.workers_seen.insert(w.name);
        }
        const int server = pick_server(rng);
        if (w.pending) {
          if (main_phase && !w.pending->gold && w.index % 8 == 3 &&
              ledger.blocks_holding.fetch_add(1) < kBlockHolding) {
            block(w, /*holding=*/true);
            continue;
          }
          Pending p = *w.pending;
          auto r = post(server, "/api/v1/agents/" + p.agent_id + "/submit", json{{"data", p.data}},
                        {{"Authorization", "Bearer " + p.token}});
          w.pending.reset();
          if (!r) {
            w.done = true;
            continue;
          }
          ledger.Count("submit " + std::to_string(r->status));
          if (r->status == 410 && std::chrono::steady_clock::now() - p.got_at >= std::chrono::seconds(kLeaseSeconds)) {
            ++ledger.expired_while_working;  // the lease really ended first: asking again is the right move
            continue;
          }
          if (r->status != 200 || json::parse(r->body, nullptr, false).value("outcome", "") != "accepted") {
            ledger.Fail("submit of " + p.agent_id + " by " + w.name + " on server " + std::to_string(server) +
                        ": HTTP " + std::to_string(r->status) + " " + r->body);
            w.done = true;
            continue;
          }
          {
            std::lock_guard<std::mutex> l(ledger.mu);
            ledger.accepted.push_back({p.agent_id, w.name, p.data});
          }
          ++w.tasks;
          if (w.tasks >= kMaxTasks) w.done = true;
          if (main_phase && !w.done && !p.gold && w.index % 8 == 5 &&
              ledger.blocks_idle.fetch_add(1) < kBlockIdle) {
            block(w, /*holding=*/false);
          }
          continue;
        }
        json j = work(server, w);
        const std::string outcome = j.value("outcome", "");
        const std::string reason = j.value("reason", json()).is_string() ? j["reason"].get<std::string>() : "";
        ledger.Count("work " + outcome + (reason.empty() ? "" : "/" + reason));
        if (outcome == "unit") {
          const json& inputs = j["data"];
          const std::string id = inputs.is_object() ? inputs.value("id", "") : "";
          auto gold = gold_answers_.find(id);
          Pending p{j["agent_id"], j["token"], json::object(), gold != gold_answers_.end(),
                    std::chrono::steady_clock::now()};
          if (main_phase && ((p.gold && w.index % 50 == 29) || (!p.gold && w.tasks >= 1 && w.index % 50 == 17))) {
            std::lock_guard<std::mutex> l(ledger.mu);  // walks away holding it: no submit, no return
            ledger.walked.push_back({p.agent_id, w.name, p.gold, p.got_at});
            w.done = true;
            continue;
          }
          std::string label = kLabels[any_label(rng)];
          if (p.gold) label = w.spammer ? (gold->second == kLabels[0] ? kLabels[1] : kLabels[0]) : gold->second;
          p.data = {{"label", label}, {"nonce", w.name + "-" + std::to_string(w.tasks)}};
          w.pending = p;
          continue;
        }
        w.done = true;  // every refusal in this scenario is final for the worker
        const bool expected = (outcome == "no_work" && (reason == "no_units_left" || reason == "gold_cap_reached")) ||
                              (outcome == "not_qualified" && reason == "gold_disqualified" && w.spammer);
        if (!expected && !j.empty()) {  // empty: the failure is recorded already
          ledger.Fail("work of " + w.name + " on server " + std::to_string(server) + ": unexpected " + j.dump());
        }
      }
    }
    live = static_cast<size_t>(std::count_if(workers.begin(), workers.end(), [](const auto& w) { return !w.done; }));
    if (live > 0) {
      ledger.Fail("thread " + std::to_string(thread_index) + " stopped at the deadline, " + std::to_string(live) +
                  " workers still going");
    }
  }

  TempDir dir_;
  std::string db_;
  std::string config_;
  std::string run_;
  std::string pg_admin_;
  std::string pg_db_;
  std::map<std::string, std::string> gold_answers_;
};

TEST_P(MultiServerTest, ThreeServersOneDatabaseKeepEveryInvariant) {
  const auto t0 = std::chrono::steady_clock::now();
  CommandResult launched = RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " --json launch " + ShellQuote(config_));
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  run_ = json::parse(launched.out)["run_id"];

  std::vector<std::unique_ptr<ServerProcess>> servers;
  std::vector<int> ports;
  for (int s = 0; s < kServers; ++s) {
    servers.push_back(std::make_unique<ServerProcess>(
        dir_, db_, std::vector<std::string>{std::string("CROWDGATE_REQUESTER_TOKEN=") + kRequesterToken},
        "server-" + std::to_string(s) + ".txt", std::vector<std::string>{"--max-connections-per-ip", "1000"}));
    ASSERT_NE(servers.back()->port(), 0) << "server " << s << " did not start";
    ports.push_back(servers.back()->port());
  }

  Ledger ledger;
  const auto crowd_start = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Drive(t, Crowd("ms", t, kWorkers, kThreads), true, ports, ledger, crowd_start + kCrowdDeadline);
      });
    }
    for (auto& t : threads) t.join();
  }
  const double crowd_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - crowd_start).count();

  // The walked-away leases end kLeaseSeconds after they were handed out; every server's expiry timer (each
  // second) races to time them out. Then a late crowd must get their units and, for golds, their cap slots.
  auto expired_by = std::chrono::steady_clock::now();
  for (const auto& w : ledger.walked) {
    expired_by = std::max(expired_by, w.at + std::chrono::seconds(kLeaseSeconds) + std::chrono::milliseconds(2500));
  }
  std::this_thread::sleep_until(expired_by);
  {
    const auto late_start = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < kLateThreads; ++t) {
      threads.emplace_back([&, t] {
        Drive(kThreads + t, Crowd("late", kWorkers + t, kWorkers + kLateWorkers, kLateThreads), false, ports, ledger,
              late_start + kCrowdDeadline);
      });
    }
    for (auto& t : threads) t.join();
  }
  for (int s = 0; s < kServers; ++s) {
    EXPECT_TRUE(servers[static_cast<size_t>(s)]->Alive()) << "server " << s << " died:\n"
                                                          << servers[static_cast<size_t>(s)]->StderrText();
  }
  for (auto& s : servers) s->Stop();

  {
    std::lock_guard<std::mutex> l(ledger.mu);
    for (const auto& f : ledger.failures) ADD_FAILURE() << f;
  }
  EXPECT_EQ(ledger.workers_seen.size(), static_cast<size_t>(kWorkers + kLateWorkers));
  EXPECT_GT(ledger.walked.size(), 10u);
  for (int s = 0; s < kServers; ++s) EXPECT_GT(ledger.requests_per_server[s].load(), 1000) << "server " << s;
  EXPECT_EQ(ledger.blocks.size(), static_cast<size_t>(kBlockHolding + kBlockIdle)) << "not every planned block ran";

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

  // 1. Every submission answered 200 is stored exactly once, by its worker, unchanged; nothing else was stored.
  for (const auto& acc : ledger.accepted) {
    auto it = by_id.find(acc.agent_id);
    if (it == by_id.end()) {
      ADD_FAILURE() << "accepted submission of " << acc.agent_id << " is not in the database";
      continue;
    }
    const AgentRecord& a = *it->second;
    EXPECT_EQ(a.status, AgentStatus::kCompleted) << a.id;
    EXPECT_EQ(json::parse(a.data_json, nullptr, false), acc.data) << a.id;
    EXPECT_EQ(a.worker.ToString(), "local:" + acc.worker) << a.id;
    EXPECT_EQ(nonce_count[acc.data["nonce"].get<std::string>()], 1) << "stored more than once: " << acc.data;
  }
  EXPECT_EQ(nonce_count.size(), ledger.accepted.size()) << "submissions stored that were never answered 200";

  // 2. No unit held twice at once, none completed twice; no worker did two copies of one item.
  std::map<int64_t, std::vector<const AgentRecord*>> by_unit;
  for (const auto& a : agents) {
    if (a.unit_id) by_unit[*a.unit_id].push_back(&a);
  }
  for (auto& [unit, list] : by_unit) {
    std::sort(list.begin(), list.end(), [](const auto* x, const auto* y) { return x->created_at < y->created_at; });
    int completed = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      completed += list[i]->status == AgentStatus::kCompleted ? 1 : 0;
      if (i + 1 == list.size()) break;
      const AgentRecord& prev = *list[i];
      const AgentRecord& next = *list[i + 1];
      EXPECT_TRUE(prev.status == AgentStatus::kReturned || prev.status == AgentStatus::kTimeout)
          << "unit " << unit << " given to " << next.id << " (" << next.worker.ToString() << ") while " << prev.id
          << " (" << prev.worker.ToString() << ") is " << prev.status;
      if (prev.status == AgentStatus::kTimeout) {
        EXPECT_GE(next.created_at, prev.deadline) << "unit " << unit;
      }
    }
    EXPECT_LE(completed, 1) << "unit " << unit << " completed by " << completed << " agents";
  }
  std::set<std::pair<int64_t, int64_t>> worker_items;
  std::set<std::pair<int64_t, int64_t>> worker_golds;
  for (const auto& a : agents) {
    if (a.kind == AgentKind::kUnit && a.status != AgentStatus::kReturned && a.status != AgentStatus::kTimeout) {
      EXPECT_TRUE(worker_items.emplace(a.worker_id, a.item_index).second)
          << a.worker.ToString() << " got item " << a.item_index << " twice";
    }
    if (a.kind == AgentKind::kGold) {
      EXPECT_TRUE(worker_golds.emplace(a.worker_id, a.item_index).second)
          << a.worker.ToString() << " was served gold " << a.item_index << " twice";
    }
  }
  int64_t open_units = 0, completed_units = 0;
  for (const auto& a : agents) {
    if (a.kind != AgentKind::kUnit) continue;
    if (a.status == AgentStatus::kInTask) ++open_units;
    if (a.status == AgentStatus::kCompleted) ++completed_units;
  }
  auto counts = store.UnitStatusCounts(run_);
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  std::map<std::string, int64_t> unit_counts;
  int64_t total_units = 0;
  for (const auto& [status, n] : *counts) {
    unit_counts[status] = n;
    total_units += n;
  }
  EXPECT_EQ(total_units, kItems * kUnitsPerItem) << "units lost or invented";
  EXPECT_EQ(unit_counts["completed"], completed_units) << "completed units vs completed agents";
  EXPECT_EQ(unit_counts["assigned"], open_units) << "assigned units vs open agents";
  EXPECT_EQ(open_units, 0) << "every crowd finished: no agent may still be open";

  // The walked-away leases were timed out (once, by whichever server got there first) and their units reused.
  int64_t walked_golds = 0, walked_units_reused = 0;
  for (const auto& w : ledger.walked) {
    auto it = by_id.find(w.agent_id);
    if (it == by_id.end()) {
      ADD_FAILURE() << "walked-away agent " << w.agent_id << " is not in the database";
      continue;
    }
    EXPECT_EQ(it->second->status, AgentStatus::kTimeout) << w.agent_id << " of " << w.worker;
    walked_golds += w.gold ? 1 : 0;
    if (!w.gold && it->second->unit_id && by_unit[*it->second->unit_id].size() > 1) ++walked_units_reused;
  }

  // 3. The gold cap held, under contention from three servers; counters equal the scored submissions.
  auto record = store.GetRun(run_);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  int64_t live_golds = 0;
  for (const auto& a : agents) {
    if (a.kind == AgentKind::kGold && a.status != AgentStatus::kTimeout && a.status != AgentStatus::kReturned) ++live_golds;
  }
  EXPECT_LE(record->gold_served, kMaxGoldUnits);
  EXPECT_EQ(record->gold_served, live_golds);
  EXPECT_EQ(record->gold_served, kMaxGoldUnits) << "1,000 workers each needed a gold: the cap should be used up";
  int64_t gold_agents = 0, gold_timeouts = 0;
  for (const auto& a : agents) {
    gold_agents += a.kind == AgentKind::kGold ? 1 : 0;
    gold_timeouts += a.kind == AgentKind::kGold && a.status == AgentStatus::kTimeout ? 1 : 0;
  }
  EXPECT_GE(gold_timeouts, walked_golds);
  EXPECT_EQ(gold_agents, kMaxGoldUnits + gold_timeouts) << "each expired gold gave back exactly one slot";
  EXPECT_GT(ledger.outcomes["work no_work/gold_cap_reached"], 0);

  struct Tally {
    WorkerRef ref;
    int64_t gold_pass = 0, gold_fail = 0, units_done = 0;
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
  }
  for (const auto& [worker, t] : tally) {
    auto grants = store.GrantsForWorker(worker);
    ASSERT_TRUE(grants.ok()) << grants.status().ToString();
    std::map<std::string, int64_t> value;
    for (const auto& g : *grants) value[g.qualification] = g.value;
    const std::string who = t.ref.ToString();
    EXPECT_EQ(value["ms-gold-correct-golds"], t.gold_pass) << who;
    EXPECT_EQ(value["ms-gold-wrong-golds"], t.gold_fail) << who;
    EXPECT_EQ(value["ms-gold-completed-count"], t.units_done) << who;
    EXPECT_EQ(value.count("ms-gold-disqualified") != 0, t.gold_fail > 0) << who;
  }

  // 4. The block: nothing was handed to a blocked worker after the grant returned, and the grants are stored.
  std::map<std::string, int64_t> blocked_at;
  for (const auto& b : ledger.blocks) blocked_at["local:" + b.worker] = b.granted_at;
  for (const auto& a : agents) {
    auto it = blocked_at.find(a.worker.ToString());
    if (it == blocked_at.end()) continue;
    EXPECT_LT(a.created_at, it->second) << a.worker.ToString() << " got agent " << a.id << " "
                                        << (a.created_at - it->second) / 1000 << " ms after the block was granted";
    if (a.kind == AgentKind::kUnit) {
      EXPECT_NE(a.status, AgentStatus::kInTask) << a.id << " of a blocked worker is still open";
    }
  }
  auto block_qual = store.GetQualification(kBlockQual);
  ASSERT_TRUE(block_qual.ok()) << block_qual.status().ToString();
  auto block_grants = store.GrantsForQualification(block_qual->id);
  ASSERT_TRUE(block_grants.ok()) << block_grants.status().ToString();
  EXPECT_EQ(block_grants->size(), ledger.blocks.size());

  std::string outcomes;
  for (const auto& [k, n] : ledger.outcomes) outcomes += "  " + k + ": " + std::to_string(n) + "\n";
  std::cerr << "multi-server (" << GetParam() << ", seed " << Seed() << "): " << kWorkers << " workers on "
            << kServers << " servers, crowd " << crowd_s << " s, total "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s; requests per server "
            << ledger.requests_per_server[0] << " / " << ledger.requests_per_server[1] << " / "
            << ledger.requests_per_server[2] << "; " << ledger.accepted.size() << " submissions answered 200, "
            << agents.size() << " agents, gold_served " << record->gold_served << ", completed units "
            << completed_units << ", blocks " << ledger.blocks.size() << ", walked away " << ledger.walked.size() << " ("
            << walked_golds << " golds; " << walked_units_reused << " units reused), " << ledger.expired_while_working
            << " leases ended while working\n"
            << outcomes;
}

// One worker sends concurrent work requests to two, then three servers at once. A worker's limits are checked
// and taken in one decision that no other server can interleave with: with allowed_concurrent 1 they hold one
// agent, with maximum_units_per_worker 3 they get three units, however the requests race.
TEST_P(MultiServerTest, OneWorkerHammeringEveryServerStaysWithinItsLimits) {
  constexpr int kRequestsPerServer = 4;
  constexpr int kRounds = 12;  // one fresh worker per round
  Write("limit-units.jsonl", [] {
    std::string units;
    for (int i = 0; i < 200; ++i) units += json{{"text", "item " + std::to_string(i)}}.dump() + "\n";
    return units;
  }());
  const auto launch = [&](const std::string& name, const std::string& task_lines) {
    const std::string config = Write(name + ".yaml", "task:\n  task_name: " + name + "\n  task_title: Limits\n" +
                                                         task_lines +
                                                         "blueprint:\n  type: static_html\n  task_source: task.html\n"
                                                         "  data: limit-units.jsonl\n  units_per_item: 3\n"
                                                         "provider:\n  type: local\n  trust_worker_param: true\n");
    CommandResult launched = RunCrowdgate(dir_, "--db " + ShellQuote(db_) + " --json launch " + ShellQuote(config));
    EXPECT_EQ(launched.exit_code, 0) << launched.err;
    return launched.exit_code == 0 ? json::parse(launched.out)["run_id"].get<std::string>() : std::string();
  };
  const std::string concurrent_run = launch("limit-concurrent", "  allowed_concurrent: 1\n");
  const std::string max_units_run = launch("limit-max-units", "  allowed_concurrent: 0\n  maximum_units_per_worker: 3\n");
  ASSERT_FALSE(concurrent_run.empty());
  ASSERT_FALSE(max_units_run.empty());

  std::vector<std::unique_ptr<ServerProcess>> servers;
  std::vector<int> ports;
  for (int s = 0; s < 3; ++s) {
    servers.push_back(std::make_unique<ServerProcess>(dir_, db_, std::vector<std::string>{},
                                                      "limit-server-" + std::to_string(s) + ".txt"));
    ASSERT_NE(servers.back()->port(), 0) << "server " << s << " did not start";
    ports.push_back(servers.back()->port());
  }

  // Every request of one worker at once (released together), to the first `n_servers` servers; the agent ids of
  // the units handed out, and any answer that is neither a unit nor the expected refusal.
  const auto hammer = [&](const std::string& run, const std::string& worker, int n_servers,
                          std::vector<std::string>* unexpected) {
    std::mutex mu;
    std::set<std::string> agents;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int s = 0; s < n_servers; ++s) {
      for (int k = 0; k < kRequestsPerServer; ++k) {
        threads.emplace_back([&, s] {
          HttpClient c("127.0.0.1", ports[static_cast<size_t>(s)], std::chrono::milliseconds(30000));
          ++ready;
          while (!go) std::this_thread::yield();
          auto r = c.Post("/api/v1/runs/" + run + "/work", json{{"provider", "local"}, {"worker", worker}}.dump(), {});
          std::lock_guard<std::mutex> l(mu);
          json j = r.ok() ? json::parse(r->body, nullptr, false) : json();
          if (!r.ok() || r->status != 200 || !j.is_object()) {
            unexpected->push_back(worker + ": " + (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString()));
          } else if (j["outcome"] == "unit") {
            agents.insert(j["agent_id"].get<std::string>());
          } else if (!(j["outcome"] == "no_work" &&
                       (j["reason"] == "max_units_reached" || j["reason"] == "too_many_concurrent"))) {
            unexpected->push_back(worker + ": " + j.dump());
          }
        });
      }
    }
    while (ready < n_servers * kRequestsPerServer) std::this_thread::yield();
    go = true;
    for (auto& t : threads) t.join();
    return agents;
  };

  std::vector<std::string> unexpected;
  for (int round = 0; round < kRounds; ++round) {
    const int n_servers = round % 2 == 0 ? 2 : 3;
    const std::string worker = "hammer-" + std::to_string(round);
    const auto held = hammer(concurrent_run, worker, n_servers, &unexpected);
    EXPECT_EQ(held.size(), 1u) << worker << " holds " << held.size() << " agents with allowed_concurrent 1 ("
                               << n_servers << " servers)";
    const auto units = hammer(max_units_run, worker, n_servers, &unexpected);
    EXPECT_EQ(units.size(), 3u) << worker << " got " << units.size() << " units with maximum_units_per_worker 3 ("
                                << n_servers << " servers)";
  }
  EXPECT_TRUE(unexpected.empty()) << unexpected.size() << " unexpected answers, first: " << unexpected.front();

  // What the store holds agrees with what the workers were told.
  auto store = Store::Open(db_, Env::Default());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  for (int round = 0; round < kRounds; ++round) {
    auto w = (*store)->GetWorker(WorkerRef{"local", "hammer-" + std::to_string(round)});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto open = (*store)->OpenAgents(concurrent_run, w->id);
    ASSERT_TRUE(open.ok());
    EXPECT_EQ(open->size(), 1u) << "hammer-" << round;
    auto done = (*store)->CountWorkerUnitsForTask("limit-max-units", w->id);
    ASSERT_TRUE(done.ok());
    EXPECT_EQ(*done, 3) << "hammer-" << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Db, MultiServerTest, ::testing::Values("SQLite", "PostgreSQL"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace crowdgate::testing
