#include "dashboard_workload.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "providers/provider_hub.hpp"
#include "server/http_client.hpp"
#include "server/task_server.hpp"

namespace crowdgate::bench {

namespace {

double NowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Sql(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string e = err ? err : "?";
    sqlite3_free(err);
    return e;
  }
  return "";
}

}  // namespace

DashboardFigures RunDashboardWorkload(int64_t units, int64_t workers, int repeats) {
  namespace fs = std::filesystem;
  DashboardFigures f;
  f.units = units;
  f.workers = workers;
  const fs::path dir = fs::temp_directory_path() / ("cg-dash-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string db = (dir / "bench.db").string();
  {
    std::ofstream(dir / "task.html") << "<p>${text}</p><input name=\"label\">";
    std::ofstream out(dir / "units.jsonl");
    for (int64_t i = 0; i < units; ++i) out << "{\"text\": \"sentence " << i << "\"}\n";
    std::ofstream(dir / "config.yaml")
        << "task: {task_name: dash, task_title: dash, allowed_concurrent: 1, assignment_duration_in_seconds: 3600}\n"
           "blueprint: {type: static_html, task_source: task.html, data: units.jsonl, units_per_item: 1,\n"
           "  block_qualification: dash-blocked}\n"
           "qualifications: []\nprovider: {type: local, trust_worker_param: true}\n";
  }
  std::string run_id;
  const double t0 = NowMs();
  {
    auto store = Store::Open(db, Env::Default());
    if (!store.ok()) return f.errors.push_back(store.status().ToString()), f;
    auto engine = OpenEngineImpl(std::move(store).value(), {});
    if (!engine.ok()) return f.errors.push_back(engine.status().ToString()), f;
    (void)(*engine)->CreateQualification("dash-blocked", "");
    auto d = (*engine)->NewRunDispatcher();
    auto config = LoadRunConfig((dir / "config.yaml").string(), {});
    if (!d.ok() || !config.ok()) return f.errors.push_back("dispatcher or config"), f;
    auto launched = (*d)->Launch(*config, {});
    if (!launched.ok()) return f.errors.push_back(launched.status().ToString()), f;
    run_id = launched->run_id;
  }
  {
    // Every unit submitted by worker (unit % workers), 2 s each; one gold per 50 units, 1 in 5 wrong.
    sqlite3* h = nullptr;
    sqlite3_open(db.c_str(), &h);
    const std::string now = std::to_string(Env::Default()->NowMicros());
    std::string e = Sql(h, "BEGIN");
    if (e.empty()) {
      e = Sql(h, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(workers) +
                     ") INSERT INTO workers (id, provider, name, created_at) SELECT 1000000 + i, 'local', 'w' || i, " +
                     now + " FROM n");
    }
    if (e.empty()) {
      e = Sql(h, "INSERT INTO agents (id, token_hash, run, unit_id, worker_id, kind, status, item_index, session, "
                 "eval_set, created_at, deadline, submitted_at, data_json, check_result) "
                 "SELECT printf('ag_%032x', u.id), 'x', u.run, u.id, 1000001 + (u.id % " + std::to_string(workers) +
                 "), 'unit', 'completed', u.item_index, '', '', " + now + " - 3600000000 + u.id * 1000, " + now +
                 ", " + now + " - 3600000000 + u.id * 1000 + 2000000, '{\"label\":\"pos\"}', '' FROM units u");
    }
    if (e.empty()) {
      e = Sql(h, "UPDATE units SET status = 'completed', worker_id = 1000001 + (id % " + std::to_string(workers) +
                 "), agent_id = printf('ag_%032x', id)");
    }
    if (e.empty()) {
      e = Sql(h, "INSERT INTO agents (id, token_hash, run, unit_id, worker_id, kind, status, item_index, session, "
                 "eval_set, created_at, deadline, submitted_at, data_json, check_result) "
                 "SELECT printf('ag_g%031x', u.id), 'x', u.run, NULL, 1000001 + (u.id % " + std::to_string(workers) +
                 "), 'gold', 'completed', 0, '', 'dash-gold', " + now + ", " + now + ", " + now +
                 ", '{}', CASE WHEN u.id % 250 = 0 THEN 'fail' ELSE 'pass' END FROM units u WHERE u.id % 50 = 0");
    }
    if (e.empty()) e = Sql(h, "COMMIT");
    if (e.empty()) e = Sql(h, "ANALYZE");
    sqlite3_close(h);
    if (!e.empty()) return f.errors.push_back("fill: " + e), f;
  }
  f.fill_s = (NowMs() - t0) / 1000;

  auto store = Store::Open(db, Env::Default());
  auto engine = OpenEngineImpl(std::move(store).value(), {});
  auto d = (*engine)->NewRunDispatcher();
  ProviderHubOptions po;
  po.db_uri = db;
  auto hub = ProviderHub::Open(std::move(po), engine->get(), d->get());
  if (!hub.ok()) return f.errors.push_back(hub.status().ToString()), f;
  TaskServerOptions so;
  so.http.port = 0;
  so.requester_token = "bench-token";
  so.providers = hub->get();
  TaskServer server(engine->get(), d->get(), so);
  if (Status s = server.Start(); !s.ok()) return f.errors.push_back(s.ToString()), f;
  HttpClient c("127.0.0.1", server.port(), std::chrono::seconds(60));
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer bench-token"}};
  const std::string r = "/api/v1/requester/runs/" + run_id;
  const std::string mid_worker = std::to_string(1000000 + workers / 2);
  const std::string deep_unit = std::to_string(units - 200);
  std::vector<std::pair<std::string, std::string>> calls = {
      {"runs list", "/api/v1/requester/runs"},
      {"run detail", r},
      {"throughput (10 s buckets)", r + "/throughput?bucket_s=10"},
      {"workers page (first 200)", r + "/workers?limit=200"},
      {"workers page (middle)", r + "/workers?limit=200&cursor=" + mid_worker},
      {"timeline", r + "/timeline"},
      {"units page (first 50)", r + "/units?limit=50&kind=unit"},
      {"units page (deep cursor)", r + "/units?limit=50&cursor=" + deep_unit},
      {"units of one worker", r + "/units?limit=50&worker=w" + std::to_string(workers / 3)},
      {"units: completed filter", r + "/units?limit=50&status=completed"},
      {"worker detail", "/api/v1/requester/workers/w" + std::to_string(workers / 3)},
      {"qualifications", "/api/v1/requester/qualifications"},
      {"holders", "/api/v1/requester/qualifications/dash-blocked/holders"},
      {"history", "/api/v1/requester/history?limit=100"},
      {"outbox", "/api/v1/requester/outbox"},
      {"metrics", "/metrics"},
  };
  // An agent id for the detail and preview calls, from the first units page.
  if (auto page = c.Get(r + "/units?limit=1", auth); page.ok() && page->status == 200) {
    const auto j = nlohmann::json::parse(page->body);
    const std::string id = j["items"][0]["agent_id"];
    calls.push_back({"agent detail", "/api/v1/requester/agents/" + id});
    calls.push_back({"agent preview", "/api/v1/requester/agents/" + id + "/preview"});
  }
  for (const auto& [name, target] : calls) {
    DashboardCall call;
    call.name = name;
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
      const double s = NowMs();
      auto res = c.Get(target, auth);
      ms.push_back(NowMs() - s);
      if (!res.ok() || res->status != 200) {
        ++call.errors;
        if (call.errors == 1) {
          f.errors.push_back(name + ": " + (res.ok() ? std::to_string(res->status) + " " + res->body.substr(0, 200)
                                                     : res.status().ToString()));
        }
      }
    }
    std::sort(ms.begin(), ms.end());
    call.p50_ms = ms[ms.size() / 2];
    call.p99_ms = ms[std::min(ms.size() - 1, static_cast<size_t>(static_cast<double>(ms.size()) * 0.99))];
    call.max_ms = ms.back();
    f.calls.push_back(call);
  }
  server.Stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return f;
}

}  // namespace crowdgate::bench
