#include "cli/simulate.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/data_reader.hpp"
#include "server/http_client.hpp"

namespace crowdgate::cli {

Result<std::vector<SimProfile>> ParseProfiles(const std::string& text) {
  std::vector<SimProfile> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string entry = text.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t colon = entry.find(':');
    if (entry.empty() || colon == std::string::npos || colon == 0) {
      return Status::InvalidArgument("--profile entry \"" + entry + "\": expected NAME:ACCURACY, e.g. good:0.9");
    }
    SimProfile p;
    p.name = entry.substr(0, colon);
    try {
      size_t used = 0;
      p.accuracy = std::stod(entry.substr(colon + 1), &used);
      if (used != entry.size() - colon - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return Status::InvalidArgument("--profile entry \"" + entry + "\": accuracy must be a number in [0, 1]");
    }
    if (p.accuracy < 0 || p.accuracy > 1) {
      return Status::InvalidArgument("--profile entry \"" + entry + "\": accuracy must be in [0, 1]");
    }
    out.push_back(p);
    if (comma == text.size()) break;
  }
  return out;
}

double SimReport::Percentile(double p) const {
  if (latencies_ms.empty()) return 0;
  std::vector<double> v = latencies_ms;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

namespace {

// Known answers by canonical inputs, and the values seen per answer field.
struct Truth {
  std::map<std::string, nlohmann::json> answers;
  std::map<std::string, std::vector<nlohmann::json>> labels;
  std::vector<nlohmann::json> all_labels;  // every answer value seen, for fields with few of their own
};

Result<Truth> LoadTruth(const std::vector<std::string>& files) {
  Truth t;
  for (const auto& f : files) {
    CG_ASSIGN_OR_RETURN(std::vector<EvalItem> items, ReadEvalFile(f));
    for (const auto& item : items) {
      t.answers[item.inputs.dump()] = item.answer;
      for (const auto& [k, v] : item.answer.items()) {
        auto& vals = t.labels[k];
        if (std::find(vals.begin(), vals.end(), v) == vals.end()) vals.push_back(v);
        if (std::find(t.all_labels.begin(), t.all_labels.end(), v) == t.all_labels.end()) t.all_labels.push_back(v);
      }
    }
  }
  return t;
}

struct Shared {
  const Truth* truth;
  std::string run_path;  // /runs/RUN_ID -> RUN_ID
  std::string run_id;
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int64_t> active{0};
  std::mutex mu;
  std::vector<double> latencies;
  std::vector<std::string> error_samples;
};

// accuracy < 0: never the true label (contrarian).
nlohmann::json Answer(const Truth& truth, const nlohmann::json& inputs, double accuracy, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> coin(0, 1);
  auto it = truth.answers.find(inputs.dump());
  nlohmann::json out = nlohmann::json::object();
  if (it == truth.answers.end()) {
    // No truth known: a random label per known field.
    for (const auto& [k, vals] : truth.labels) out[k] = vals[rng() % vals.size()];
    if (out.empty()) out["answer"] = "unknown";
    return out;
  }
  for (const auto& [k, correct] : it->second.items()) {
    if (accuracy >= 0 && coin(rng) < accuracy) {
      out[k] = correct;
      continue;
    }
    // A wrong answer: another value seen for this field (or for any field, when this
    // field has only ever had one value, as in a quiz).
    const auto& own = truth.labels.at(k);
    const auto& vals = own.size() > 1 ? own : truth.all_labels;
    std::vector<nlohmann::json> wrong;
    for (const auto& v : vals) {
      if (v != correct) wrong.push_back(v);
    }
    out[k] = wrong.empty() ? correct : wrong[rng() % wrong.size()];
  }
  return out;
}

class SimulatedWorker {
 public:
  SimulatedWorker(SimWorker* w, const SimProfile& profile, int think_ms, uint64_t seed)
      : w_(w), profile_(profile), think_ms_(profile.instant() ? 0 : think_ms), rng_(seed) {}
  bool done() const { return done_; }

  // One step: ask for work and, if given some, submit it.
  void Step(HttpClient& client, Shared& shared, int64_t max_units) {
    auto timed = [&](std::string_view method, const std::string& target, const std::string& body,
                     const std::vector<std::pair<std::string, std::string>>& headers) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = client.Request(method, target, body, headers);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      shared.requests++;
      {
        std::lock_guard<std::mutex> l(shared.mu);
        shared.latencies.push_back(ms);
      }
      return r;
    };
    auto fail = [&](const std::string& what) {
      shared.errors++;
      w_->errors++;
      std::lock_guard<std::mutex> l(shared.mu);
      if (shared.error_samples.size() < 10) shared.error_samples.push_back(w_->worker + ": " + what);
      if (w_->errors >= 3) done_ = true;
    };
    const nlohmann::json ask = {{"provider", "local"}, {"worker", w_->worker.substr(6)}};
    auto r = timed("POST", "/api/v1/runs/" + shared.run_id + "/work", ask.dump(), {{"Content-Type", "application/json"}});
    if (!r.ok() || r->status != 200) {
      fail(r.ok() ? "work: HTTP " + std::to_string(r->status) + " " + r->body : r.status().ToString());
      return;
    }
    auto work = nlohmann::json::parse(r->body, nullptr, false);
    const std::string outcome = work.value("outcome", "");
    if (outcome != "unit" && outcome != "onboarding") {
      w_->last_outcome = outcome;
      w_->last_reason = work["reason"].is_string() ? work["reason"].get<std::string>() : "";
      done_ = true;
      return;
    }
    const std::string agent = work["agent_id"].get<std::string>();
    const std::string bearer = "Bearer " + work["token"].get<std::string>();
    if (outcome == "unit" && profile_.returner() && std::uniform_real_distribution<double>(0, 1)(rng_) < 0.8) {
      auto ret = timed("POST", "/api/v1/agents/" + agent + "/return", "{}",
                       {{"Content-Type", "application/json"}, {"Authorization", bearer}});
      if (!ret.ok() || ret->status != 200) {
        fail(ret.ok() ? "return: HTTP " + std::to_string(ret->status) + " " + ret->body : ret.status().ToString());
        return;
      }
      w_->returns++;
      return;
    }
    const double accuracy = profile_.contrarian() && outcome == "unit" ? -1 : w_->accuracy;
    const nlohmann::json answer = Answer(*shared.truth, work["data"], accuracy, rng_);
    if (think_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(think_ms_));
    auto s = timed("POST", "/api/v1/agents/" + agent + "/submit", nlohmann::json{{"data", answer}}.dump(),
                   {{"Content-Type", "application/json"}, {"Authorization", bearer}});
    if (!s.ok() || s->status != 200) {
      fail(s.ok() ? "submit: HTTP " + std::to_string(s->status) + " " + s->body : s.status().ToString());
      return;
    }
    if (outcome == "onboarding") {
      w_->onboardings++;
      w_->onboarding_result = nlohmann::json::parse(s->body, nullptr, false).value("outcome", "");
    } else {
      w_->units++;
      if (w_->units >= max_units) {
        w_->last_outcome = "stopped";
        w_->last_reason = "max_units_per_worker of the simulation";
        done_ = true;
      }
    }
  }

 private:
  SimWorker* w_;
  SimProfile profile_;
  int think_ms_;
  std::mt19937_64 rng_;
  bool done_ = false;
};

}  // namespace

Result<SimReport> RunSimulation(const SimOptions& options,
                                const std::function<void(int64_t requests, int64_t active_workers)>& progress) {
  if (options.workers <= 0) return Status::InvalidArgument("--workers must be at least 1");
  if (options.profiles.empty()) return Status::InvalidArgument("--profile: give at least one NAME:ACCURACY");
  CG_ASSIGN_OR_RETURN(ParsedUrl url, ParseHttpUrl(options.run_url));
  const std::string prefix = "/runs/";
  if (url.path.rfind(prefix, 0) != 0 || url.path.size() <= prefix.size()) {
    return Status::InvalidArgument("RUN_URL " + options.run_url + ": expected http://HOST:PORT/runs/RUN_ID");
  }
  CG_ASSIGN_OR_RETURN(Truth truth, LoadTruth(options.answer_files));
  Shared shared;
  shared.truth = &truth;
  shared.run_id = url.path.substr(prefix.size());
  shared.run_id = shared.run_id.substr(0, shared.run_id.find_first_of("?/"));

  SimReport report;
  report.workers.resize(static_cast<size_t>(options.workers));
  std::vector<SimulatedWorker> sims;
  sims.reserve(report.workers.size());
  for (int i = 0; i < options.workers; ++i) {
    const SimProfile& p = options.profiles[static_cast<size_t>(i) % options.profiles.size()];
    SimWorker& w = report.workers[static_cast<size_t>(i)];
    char index[16];
    std::snprintf(index, sizeof(index), "%03d", i + 1);
    w.worker = "local:" + options.name_prefix + p.name + "-" + index;
    w.profile = p.name;
    w.accuracy = p.accuracy;
    sims.emplace_back(&w, p, options.think_ms, options.seed * 1000003 + static_cast<uint64_t>(i));
  }
  shared.active = options.workers;
  const int threads = std::max(1, std::min(options.threads, options.workers));
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      HttpClient client(url.host, url.port);
      // Interleave this thread's workers so they compete for units and caps.
      std::vector<SimulatedWorker*> mine;
      for (size_t i = static_cast<size_t>(t); i < sims.size(); i += static_cast<size_t>(threads)) mine.push_back(&sims[i]);
      while (!mine.empty()) {
        for (auto* s : mine) s->Step(client, shared, options.max_units_per_worker);
        const auto before = mine.size();
        mine.erase(std::remove_if(mine.begin(), mine.end(), [](auto* s) { return s->done(); }), mine.end());
        shared.active -= static_cast<int64_t>(before - mine.size());
      }
    });
  }
  std::atomic<bool> finished{false};
  std::thread reporter([&] {
    while (!finished) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (progress) progress(shared.requests.load(), shared.active.load());
    }
  });
  for (auto& th : pool) th.join();
  finished = true;
  reporter.join();
  if (progress) progress(shared.requests.load(), 0);
  report.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report.requests = shared.requests.load();
  report.errors = shared.errors.load();
  report.latencies_ms = std::move(shared.latencies);
  report.error_samples = std::move(shared.error_samples);
  return report;
}

}  // namespace crowdgate::cli
