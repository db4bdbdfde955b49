#include "aggregate_workload.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>

#include <nlohmann/json.hpp>

#include "core/aggregation.hpp"

namespace crowdgate::bench {

namespace {

struct Crowd {
  Judgments judgments;
  std::vector<int32_t> truth;
};

// Worker w is right with probability from 0.5 (the worst) to 0.9 (the best); their errors
// favour one wrong class over the others (a skewed confusion matrix, not uniform noise).
// The true classes are unbalanced (50 / 30 / 20 % for three classes).
Crowd Simulate(int64_t items, int workers, int classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> class_weight(static_cast<size_t>(classes));
  for (int k = 0; k < classes; ++k) class_weight[k] = classes == 3 ? (k == 0 ? 0.5 : k == 1 ? 0.3 : 0.2) : 1.0;
  std::discrete_distribution<int32_t> pick_truth(class_weight.begin(), class_weight.end());
  // confusion[w][t] as a distribution over given labels.
  std::vector<std::vector<std::discrete_distribution<int32_t>>> confusion(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    const double accuracy = workers == 1 ? 0.9 : 0.5 + 0.4 * w / (workers - 1);
    for (int t = 0; t < classes; ++t) {
      std::vector<double> row(static_cast<size_t>(classes), 0.0);
      const int favourite = (t + 1 + w) % classes == t ? (t + 1) % classes : (t + 1 + w) % classes;
      for (int l = 0; l < classes; ++l) {
        if (l == t) continue;
        row[l] = (1 - accuracy) * (l == favourite ? 0.7 : 0.3 / std::max(1, classes - 2));
      }
      if (classes == 2) row[favourite] = 1 - accuracy;
      row[t] = accuracy;
      confusion[w].emplace_back(row.begin(), row.end());
    }
  }
  Crowd c;
  c.judgments.num_items = static_cast<int32_t>(items);
  c.judgments.num_workers = workers;
  c.judgments.num_labels = classes;
  for (int64_t i = 0; i < items; ++i) {
    const int32_t t = pick_truth(rng);
    c.truth.push_back(t);
    for (int w = 0; w < workers; ++w) c.judgments.Add(static_cast<int32_t>(i), w, confusion[w][t](rng));
  }
  return c;
}

double Accuracy(const AggregateResult& r, const std::vector<int32_t>& truth) {
  int64_t right = 0;
  for (size_t i = 0; i < truth.size(); ++i) right += r.items[i].label == truth[i];
  return truth.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(truth.size());
}

Stats Time(int runs, const std::function<void()>& f) {
  std::vector<double> secs;
  for (int r = 0; r < runs; ++r) {
    const double start = NowSeconds();
    f();
    secs.push_back(NowSeconds() - start);
  }
  return Summarize(secs);
}

// The CSV a data team would export: one row per judgment, in shuffled order (as a time-ordered
// export interleaves items), plus the truth as a --gold file.
void WriteCsv(const Crowd& c, const std::string& path, const std::string& gold_path) {
  std::vector<uint32_t> order(c.judgments.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<uint32_t>(k);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
  std::string text = "item,worker,label\n";
  text.reserve(order.size() * 28);
  for (const uint32_t k : order) {
    text += "item";
    text += std::to_string(c.judgments.item[k]);
    text += ",worker";
    text += std::to_string(c.judgments.worker[k]);
    text += ",class";
    text += std::to_string(c.judgments.label[k]);
    text += '\n';
  }
  std::ofstream(path, std::ios::binary) << text;
  std::string gold = "item,label\n";
  for (size_t i = 0; i < c.truth.size(); ++i) gold += "item" + std::to_string(i) + ",class" + std::to_string(c.truth[i]) + "\n";
  std::ofstream(gold_path, std::ios::binary) << gold;
}

}  // namespace

AggregateFigures RunAggregateWorkload(int64_t items, int workers, int classes, int runs,
                                      const std::string& crowdgate_bin) {
  AggregateFigures f;
  const Crowd crowd = Simulate(items, workers, classes, 42);
  const Judgments& j = crowd.judgments;
  f.judgments = static_cast<int64_t>(j.size());
  int64_t right = 0;
  for (size_t k = 0; k < j.size(); ++k) right += j.label[k] == crowd.truth[static_cast<size_t>(j.item[k])];
  f.raw_accuracy = static_cast<double>(right) / static_cast<double>(std::max<size_t>(j.size(), 1));

  AggregateResult mv, ds, wawa;
  f.majority_s = Time(runs, [&] { mv = MajorityVote(j).value(); });
  AggregateOptions options;
  f.dawid_skene_s = Time(runs, [&] { ds = DawidSkene(j, options).value(); });
  f.wawa_s = Time(runs, [&] { wawa = Wawa(j).value(); });
  f.iterations = ds.iterations;
  f.converged = ds.converged;
  f.majority_accuracy = Accuracy(mv, crowd.truth);
  f.dawid_skene_accuracy = Accuracy(ds, crowd.truth);
  f.wawa_accuracy = Accuracy(wawa, crowd.truth);
  if (!ds.converged) f.errors.push_back("dawid-skene did not converge");
  if (f.dawid_skene_accuracy + 0.005 < f.majority_accuracy) f.errors.push_back("dawid-skene less accurate than majority");

  ScratchDir dir("aggregate");
  const std::string csv = dir.File("judgments.csv");
  const std::string gold = dir.File("truth.csv");
  WriteCsv(crowd, csv, gold);
  const std::string command = "'" + crowdgate_bin + "' --json aggregate --input '" + csv + "' --gold '" + gold +
                              "' --out '" + dir.File("labels.jsonl") + "'";
  nlohmann::json summary;
  f.command_s = Time(runs, [&] {
    FILE* p = ::popen(command.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n = 0;
    while (p != nullptr && (n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    const int rc = p != nullptr ? ::pclose(p) : -1;
    if (rc != 0) f.errors.push_back("crowdgate aggregate exited with " + std::to_string(rc));
    summary = nlohmann::json::parse(out, nullptr, false);
  });
  if (summary.is_object() && summary.contains("gold") && summary["gold"]["accuracy"].is_number()) {
    f.command_accuracy = summary["gold"]["accuracy"];
    if (summary["judgments"] != f.judgments || summary["items"] != items) {
      f.errors.push_back("crowdgate aggregate read " + summary.dump());
    }
  } else {
    f.errors.push_back("crowdgate aggregate printed no summary with a gold accuracy: " + summary.dump());
  }
  return f;
}

}  // namespace crowdgate::bench
