#include "quality_workload.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <queue>
#include <random>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/aggregation.hpp"
#include "core/run_config.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/env.hpp"
#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "engine/run_judgments.hpp"

namespace crowdgate::bench {

namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kClasses = 3;
const char* const kLabels[kClasses] = {"positive", "negative", "neutral"};
constexpr int kGolds = 300;

enum class Profile { kGood, kCareless, kSpammer };

struct SimWorker {
  std::string name;
  Profile profile = Profile::kGood;
  double accuracy = 0.95;
  double think_s = 10;
};

// One step of the simulation: at `at` (micros), `worker` asks for work, or submits what it holds.
struct Event {
  int64_t at = 0;
  int worker = 0;
  bool submit = false;
  std::string agent_id;
  std::string token;
  std::string id;  // the "id" input of the unit held
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : worker > o.worker; }
};

// A request for work by `worker` at `at`.
Event AskAt(int64_t at, int worker) {
  Event e;
  e.at = at;
  e.worker = worker;
  return e;
}

std::string Id(int64_t n) { return "s" + std::to_string(n); }

}  // namespace

QualityFigures RunQualityWorkload(int64_t items, int workers, bool rules, uint64_t seed) {
  QualityFigures f;
  f.rules = rules;
  const auto start = std::chrono::steady_clock::now();
  std::mt19937_64 rng(seed);
  const fs::path dir = fs::temp_directory_path() / ("crowdgate_bench_quality_" + std::to_string(::getpid()) +
                                                    (rules ? "_on" : "_off"));
  fs::remove_all(dir);
  fs::create_directories(dir);

  // Items and golds share one id scheme and one shape: nobody can tell them apart.
  std::unordered_map<std::string, int> truth;
  {
    std::ofstream units(dir / "units.jsonl");
    std::ofstream golds(dir / "golds.jsonl");
    for (int64_t i = 0; i < items + kGolds; ++i) {
      const int label = static_cast<int>(rng() % kClasses);
      truth[Id(i)] = label;
      const Json inputs = {{"id", Id(i)}, {"text", "sentence number " + std::to_string(i)}};
      if (i < items) {
        units << inputs.dump() << "\n";
      } else {
        golds << Json{{"inputs", inputs}, {"answer", {{"label", kLabels[label]}}}}.dump() << "\n";
      }
    }
    std::ofstream(dir / "task.html") << "<p>${text}</p><input name=\"label\">";
    std::string yaml =
        "task:\n  task_name: quality\n  task_title: Quality\n  allowed_concurrent: 1\n"
        "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n  units_per_item: 3\n"
        "  block_qualification: quality-blocked\n"
        "  use_golds: true\n  gold_qualification_base: quality-gold\n  gold_file: golds.jsonl\n"
        "  gold_check: {fields: [label], match: exact}\n  min_golds: 1\n  max_incorrect_golds: 2\n"
        "  max_gold_units: 1000000\n";
    if (rules) {
      yaml +=
          "quality_rules:\n"
          "  - {rule: fast_submissions, min_seconds: 3, count: 3, window: 10, action: {block: 1d}}\n"
          "  - {rule: majority_agreement, min_agreement: 0.45, window: 20, min_overlap: 10, action: {block: 1d}}\n";
    }
    std::ofstream(dir / "config.yaml") << yaml;
  }

  FakeEnv env(1'700'000'000'000'000, seed);
  auto store = Store::Open((dir / "quality.db").string(), &env);
  if (!store.ok()) {
    f.errors.push_back(store.status().ToString());
    return f;
  }
  EngineOptions eo;
  eo.env = &env;
  eo.actor = "bench";
  auto engine = OpenEngineImpl(std::move(store).value(), eo);
  auto dispatcher =
      engine.ok() ? (*engine)->NewRunDispatcher() : Result<std::unique_ptr<RunDispatcher>>(engine.status());
  auto config = LoadRunConfig((dir / "config.yaml").string(), {});
  if (!dispatcher.ok() || !config.ok()) {
    f.errors.push_back((dispatcher.ok() ? config.status() : dispatcher.status()).ToString());
    return f;
  }
  RunDispatcher& d = **dispatcher;
  auto launched = d.Launch(*config, {});
  if (!launched.ok()) {
    f.errors.push_back(launched.status().ToString());
    return f;
  }
  const std::string run = launched->run_id;

  std::vector<SimWorker> crowd(static_cast<size_t>(workers));
  std::vector<bool> stopped(crowd.size(), false);
  for (int w = 0; w < workers; ++w) {
    SimWorker& s = crowd[static_cast<size_t>(w)];
    s.name = "q" + std::to_string(w);
    const int kind = w % 10;  // 3 in 10 spammers, 2 in 10 careless, the rest good
    if (kind < 3) {
      s = {s.name, Profile::kSpammer, 1.0 / kClasses, 1};
    } else if (kind < 5) {
      s = {s.name, Profile::kCareless, 0.6, 8};
    } else {
      s = {s.name, Profile::kGood, 0.95, 10};
    }
  }
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  for (int w = 0; w < workers; ++w) events.push(AskAt(env.NowMicros() + static_cast<int64_t>(rng() % 60'000'000), w));
  std::uniform_real_distribution<double> coin(0, 1);
  int64_t right = 0, real = 0;
  while (!events.empty()) {
    Event e = events.top();
    events.pop();
    env.SetNowMicros(e.at);
    const SimWorker& w = crowd[static_cast<size_t>(e.worker)];
    if (!e.submit) {
      WorkRequest req;
      req.run_id = run;
      req.worker = WorkerRef{"local", w.name};
      auto got = d.RequestWork(req);
      if (!got.ok()) {
        f.errors.push_back("work: " + got.status().ToString());
        break;
      }
      if (got->outcome != "unit") {
        // Refused: a spammer refused while work remains was stopped by quality control.
        if (w.profile == Profile::kSpammer && got->reason != "no_units_left") stopped[static_cast<size_t>(e.worker)] = true;
        continue;
      }
      const double jitter = 0.5 + coin(rng);
      events.push({e.at + static_cast<int64_t>(w.think_s * jitter * 1e6), e.worker, true, got->agent_id, got->token,
                   got->data.value("id", "")});
      continue;
    }
    const int correct = truth.at(e.id);
    const int label = coin(rng) < w.accuracy ? correct : static_cast<int>((correct + 1 + rng() % (kClasses - 1)) % kClasses);
    auto sub = d.Submit(e.agent_id, e.token, Json{{"label", kLabels[label]}});
    if (!sub.ok()) {
      f.errors.push_back("submit: " + sub.status().ToString());
      break;
    }
    const bool gold = std::stoll(e.id.substr(1)) >= items;
    ++f.paid_units;
    if (gold) {
      ++f.gold_units;
    } else {
      ++real;
      right += label == correct ? 1 : 0;
      if (w.profile == Profile::kSpammer) ++f.spammer_units;
    }
    events.push(AskAt(e.at + 500'000, e.worker));  // half a second later, the next request
  }
  f.raw_accuracy = real > 0 ? static_cast<double>(right) / real : 0;
  for (bool s : stopped) f.spammers_stopped += s ? 1 : 0;

  // Aggregate what was collected, each method, against the truth.
  auto rows = d.Export(run);
  auto view = d.RunViewOf(run);
  if (!rows.ok() || !view.ok()) {
    f.errors.push_back("export: " + (rows.ok() ? view.status() : rows.status()).ToString());
    return f;
  }
  // Rejected units (reject_units) do not count: LoadRunJudgments leaves them out, as the command does.
  auto loaded = LoadRunJudgments(*rows, *(*view)->config, "label");
  if (!loaded.ok()) {
    f.errors.push_back("judgments: " + loaded.status().ToString());
    return f;
  }
  const LoadedJudgments& l = **loaded;
  for (AggregationMethod m : {AggregationMethod::kMajority, AggregationMethod::kDawidSkene, AggregationMethod::kWawa}) {
    AggregateOptions options;
    options.method = m;
    options.known = l.known;
    auto result = Aggregate(l.judgments, options);
    if (!result.ok()) {
      f.errors.push_back("aggregate: " + result.status().ToString());
      continue;
    }
    int64_t ok = 0;
    for (const int32_t id : l.output_items) {
      const int32_t label = result->items[static_cast<size_t>(id)].label;
      const int64_t item = std::stoll(std::string(l.items.name(id)));  // the item's line in units.jsonl
      if (label >= 0 && l.label_text[static_cast<size_t>(label)] == kLabels[truth.at(Id(item))]) ++ok;
    }
    // Accuracy over every item of the run: an item nobody labelled counts as wrong.
    const double acc = static_cast<double>(ok) / static_cast<double>(items);
    if (m == AggregationMethod::kMajority) f.majority_accuracy = acc;
    if (m == AggregationMethod::kDawidSkene) f.dawid_skene_accuracy = acc;
    if (m == AggregationMethod::kWawa) f.wawa_accuracy = acc;
  }
  f.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fs::remove_all(dir);
  return f;
}

}  // namespace crowdgate::bench
