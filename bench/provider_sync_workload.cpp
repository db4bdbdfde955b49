#include "provider_sync_workload.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/store.hpp"
#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "providers/prolific/prolific_client.hpp"
#include "providers/provider_hub.hpp"

namespace crowdgate::bench {
namespace {

using Json = nlohmann::json;

// The fake Prolific server as a child process (any non-empty token accepted).
class Fake {
 public:
  Fake(const std::string& source_dir, const std::string& dir) {
    const std::string port_file = dir + "/fake.port";
    const std::string script = source_dir + "/tests/fakes/prolific_fake.py";
    pid_ = fork();
    if (pid_ == 0) {
      execl("/usr/bin/python3", "python3", script.c_str(), "--port", "0", "--port-file", port_file.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 400 && port_ == 0; ++i) {
      std::ifstream in(port_file);
      if (!(in >> port_)) port_ = 0;
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    control_ = std::make_unique<prolific::Client>(prolific::ClientOptions{url(), "control", 60000});
  }
  ~Fake() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return port_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Result<Json> Control(const std::string& method, const std::string& path, const Json& body = nullptr) {
    prolific::CallResult r = control_->Request(method, "/_fake/" + path, body);
    if (!r.ok()) return Status::Internal("fake " + path + ": " + r.message);
    return r.body;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::unique_ptr<prolific::Client> control_;
};

std::string WriteConfig(const std::string& dir) {
  std::ofstream(dir + "/task.html") << "<p>${text}</p>";
  std::ofstream(dir + "/units.jsonl") << "{\"text\": \"a\"}\n";
  const std::string path = dir + "/config.yaml";
  std::ofstream(path) << "task:\n  task_name: sync\n  task_title: Sync\n  task_reward: 0.1\n"
                         "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
                         "  block_qualification: blocked\n"
                         "qualifications: []\n"
                         "provider:\n  type: prolific\n  public_url: https://tasks.example.org\n"
                         "  prolific_places: 10\n  publish: true\n";
  return path;
}

struct OneRun {
  double seconds = 0;
  int64_t calls = 0;
  int64_t throttled = 0;
};

// One run: a fresh database and fake state, the changes queued, then drained and checked.
Result<OneRun> RunOnce(Fake& fake, const std::string& dir, int64_t workers, int changes_per_worker,
                       double throttle_share, std::vector<std::string>* errors) {
  CG_RETURN_IF_ERROR(fake.Control("POST", "reset", Json::object()).status());
  const std::string db = dir + "/sync.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((db + suffix).c_str());
  CG_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, Store::Open(db, Env::Default()));
  EngineOptions eo;
  eo.actor = "bench";
  CG_ASSIGN_OR_RETURN(std::unique_ptr<EngineImpl> engine, OpenEngineImpl(std::move(store), eo));
  CG_ASSIGN_OR_RETURN(std::unique_ptr<RunDispatcher> dispatcher, engine->NewRunDispatcher());
  CG_RETURN_IF_ERROR(engine->CreateQualification("blocked", "provider-sync bench").status());
  CG_ASSIGN_OR_RETURN(RunConfig config, LoadRunConfig(WriteConfig(dir), {}));
  CG_ASSIGN_OR_RETURN(LaunchResult launched, dispatcher->Launch(config, {}));
  ProviderHubOptions po;
  po.db_uri = db;
  po.prolific_client = std::make_unique<prolific::Client>(prolific::ClientOptions{fake.url(), "bench-token", 10000});
  CG_ASSIGN_OR_RETURN(std::unique_ptr<ProviderHub> hub, ProviderHub::Open(std::move(po), engine.get(), dispatcher.get()));
  CG_RETURN_IF_ERROR(hub->Launch(launched.run_id));  // the study, published, with an empty block group

  // Queue: change k of every worker is a grant for even k, a revoke for odd k.
  std::vector<ImportRow> rows;
  for (int64_t w = 0; w < workers; ++w) rows.push_back({"prolific:W" + std::to_string(w), 1, w + 1});
  for (int k = 0; k < changes_per_worker; ++k) {
    if (k % 2 == 0) {
      CG_RETURN_IF_ERROR(engine->Import("blocked", rows, "bench", [](size_t, size_t) {}).status());
    } else {
      for (const ImportRow& r : rows) CG_RETURN_IF_ERROR(engine->Revoke("blocked", r.worker, "bench").status());
    }
  }
  CG_ASSIGN_OR_RETURN(OutboxCounts queued, hub->CountOutbox());
  if (queued.pending != workers * changes_per_worker) {
    errors->push_back("queued " + std::to_string(queued.pending) + " rows, expected " +
                      std::to_string(workers * changes_per_worker));
  }
  CG_ASSIGN_OR_RETURN(Json before, fake.Control("GET", "stats"));
  CG_RETURN_IF_ERROR(fake.Control("POST", "config", {{"throttle_share", throttle_share}, {"seed", 7}}).status());

  // Drain: DrainOnce delivers what is due; throttled rows come due again after their backoff.
  const auto t0 = std::chrono::steady_clock::now();
  while (true) {
    CG_ASSIGN_OR_RETURN(ProviderHub::DrainReport report, hub->DrainOnce());
    CG_ASSIGN_OR_RETURN(OutboxCounts c, hub->CountOutbox());
    if (c.pending + c.retrying == 0) break;
    if (report.delivered + report.retrying == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  OneRun out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CG_RETURN_IF_ERROR(fake.Control("POST", "config", {{"throttle_share", 0.0}}).status());

  // Checks: nothing failed, membership equals the grants, calls per worker in order.
  CG_ASSIGN_OR_RETURN(OutboxCounts done, hub->CountOutbox());
  if (done.failed != 0) errors->push_back(std::to_string(done.failed) + " rows failed");
  CG_ASSIGN_OR_RETURN(Json stats, fake.Control("GET", "stats"));
  out.calls = stats["calls"].get<int64_t>() - before["calls"].get<int64_t>();
  out.throttled = stats["by_outcome"].value("throttled", int64_t{0}) - before["by_outcome"].value("throttled", int64_t{0});
  if (stats["violations"] != 0) errors->push_back(stats["violations"].dump() + " violations on the fake");
  CG_ASSIGN_OR_RETURN(Json state, fake.Control("GET", "state"));
  std::string group;
  for (const auto& [id, study] : state["studies"].items()) {
    for (const auto& f : study["filters"]) {
      if (f["filter_id"] == "participant_group_blocklist") group = f["selected_values"][0];
    }
  }
  std::set<std::string> members;
  for (const auto& m : state["groups"][group]["members"]) members.insert(m.get<std::string>());
  CG_ASSIGN_OR_RETURN(std::vector<Grant> grants, engine->ListGrants("blocked"));
  std::set<std::string> held;
  for (const Grant& g : grants) held.insert(g.worker.name);
  if (members != held) {
    errors->push_back("group has " + std::to_string(members.size()) + " members, " + std::to_string(held.size()) +
                      " workers hold the grant");
  }
  CG_ASSIGN_OR_RETURN(Json calls, fake.Control("GET", "calls?since=" + before["calls"].dump()));
  std::map<std::string, std::string> ops;  // worker -> "+-+-+"
  for (const auto& c : calls["calls"]) {
    if (c["outcome"] != "ok" || c["path"].get<std::string>().find("/participants/") == std::string::npos) continue;
    const char op = c["method"] == "POST" ? '+' : '-';
    for (const auto& id : c["body"]["participant_ids"]) ops[id.get<std::string>()] += op;
  }
  std::string want;
  for (int k = 0; k < changes_per_worker; ++k) want += k % 2 == 0 ? '+' : '-';
  int64_t wrong = 0;
  for (int64_t w = 0; w < workers; ++w) wrong += ops["W" + std::to_string(w)] != want;
  if (wrong) errors->push_back(std::to_string(wrong) + " workers' group calls are not " + want);
  return out;
}

}  // namespace

ProviderSyncFigures RunProviderSyncWorkload(int64_t workers, int changes_per_worker, double throttle_share,
                                            int runs, const std::string& source_dir) {
  ProviderSyncFigures f;
  f.changes = workers * changes_per_worker;
  ScratchDir dir("provider-sync");
  Fake fake(source_dir, dir.path());
  if (!fake.ok()) {
    f.errors.push_back("the fake Prolific server did not start (" + source_dir + "/tests/fakes/prolific_fake.py)");
    return f;
  }
  std::vector<double> changes, calls, seconds;
  for (int r = 0; r < runs; ++r) {
    Result<OneRun> one = RunOnce(fake, dir.path(), workers, changes_per_worker, throttle_share, &f.errors);
    if (!one.ok()) {
      f.errors.push_back(one.status().ToString());
      return f;
    }
    seconds.push_back(one->seconds);
    changes.push_back(static_cast<double>(f.changes) / one->seconds);
    calls.push_back(static_cast<double>(one->calls) / one->seconds);
    f.calls = one->calls;
    f.throttled = one->throttled;
  }
  f.changes_per_s = Summarize(changes);
  f.calls_per_s = Summarize(calls);
  f.seconds = Summarize(seconds);
  return f;
}

}  // namespace crowdgate::bench
