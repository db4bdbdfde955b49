// Label aggregation: many workers' labels per item -> one label per item, with a
// confidence, and an estimate of each worker's accuracy.
//
// Contract:
//  - Input is flat arrays of judgments: judgment j says worker[j] gave label[j] to item[j].
//    Items, workers and labels are dense integers [0, num_items) etc. (callers intern their
//    strings in order of first appearance). Out-of-range ids are InvalidArgument.
//  - Deterministic: the same input gives the same output, bit for bit.
//  - Ties (equal votes, equal weights, equal posteriors) go to the label seen first among the
//    item's judgments, in input order.
//  - An item with no judgments gets label -1, confidence 0, labels 0 -- unless it is known.
//  - known[i] >= 0 marks item i as having a known true label (a gold): every method outputs
//    that label with confidence 1, and Dawid-Skene and Wawa use it as the truth when they
//    estimate workers. known may be empty (no golds) or have num_items entries.
//  - Each judgment counts, duplicates included.
//  - Pure: no I/O, no threads, no global state.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate {

struct Judgments {
  int32_t num_items = 0;
  int32_t num_workers = 0;
  int32_t num_labels = 0;
  std::vector<int32_t> item;
  std::vector<int32_t> worker;
  std::vector<int32_t> label;

  size_t size() const { return item.size(); }
  void Add(int32_t i, int32_t w, int32_t l) {
    item.push_back(i);
    worker.push_back(w);
    label.push_back(l);
  }
};

enum class AggregationMethod { kMajority, kDawidSkene, kWawa };

std::string_view AggregationMethodName(AggregationMethod method);  // majority | dawid-skene | wawa
Result<AggregationMethod> ParseAggregationMethod(std::string_view name);

struct AggregateOptions {
  AggregationMethod method = AggregationMethod::kDawidSkene;
  // Known true label per item (-1 = unknown); empty = no golds.
  std::vector<int32_t> known;
  // Dawid-Skene: EM stops when one iteration changes the log-likelihood of the judgments by
  // at most `tolerance` per judgment, or after `max_iterations`.
  double tolerance = 1e-6;
  int max_iterations = 100;
  // Dawid-Skene: pseudo-count added to every cell of every worker's confusion matrix and to
  // every class of the prior (a symmetric Dirichlet prior), so that no probability is 0.
  double smoothing = 0.01;
  // Dawid-Skene: extra pseudo-count on the diagonal of every confusion matrix (a prior belief
  // that workers do better than chance). Without it, a worker seen on few items drifts towards
  // an uninformative matrix (the likelihood is flat there); with thousands of judgments per
  // worker it moves the estimates by about diagonal_prior / judgments.
  double diagonal_prior = 1.0;
  // Dawid-Skene: pseudo-count per class in the class prior (Laplace). Keeps a class that few
  // items have from collapsing to probability 0 on small inputs.
  double class_prior_smoothing = 1.0;
};

struct ItemLabel {
  int32_t label = -1;       // -1: no judgments and not known
  double confidence = 0.0;  // posterior probability (DS) / vote share (MV) / weighted share (Wawa) of `label`
  int32_t labels = 0;       // number of judgments of the item
};

struct AggregateResult {
  std::vector<ItemLabel> items;  // num_items entries
  // Per worker: expected share of the worker's labels that are correct -- under the
  // posteriors (DS), or agreement with the chosen labels (MV), or with majority vote (Wawa,
  // its weight). NaN for a worker with no judgments.
  std::vector<double> worker_accuracy;
  std::vector<int32_t> worker_labels;  // judgments per worker
  // Dawid-Skene only: confusion[(w * K + true) * K + given] = P(worker w gives `given` | truth
  // `true`), and the class prior.
  std::vector<double> confusion;
  std::vector<double> class_prior;
  int iterations = 0;     // EM iterations run (DS); 0 for the others
  bool converged = true;  // DS: false if max_iterations stopped it
};

// Runs options.method.
Result<AggregateResult> Aggregate(const Judgments& judgments, const AggregateOptions& options);

Result<AggregateResult> MajorityVote(const Judgments& judgments, const std::vector<int32_t>& known = {});
Result<AggregateResult> DawidSkene(const Judgments& judgments, const AggregateOptions& options);
Result<AggregateResult> Wawa(const Judgments& judgments, const std::vector<int32_t>& known = {});

}  // namespace crowdgate
