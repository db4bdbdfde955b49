#include "core/aggregation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace crowdgate {

namespace {

// Dawid-Skene keeps a K x K matrix per worker; refuse inputs whose matrices alone would take
// more than 1 GiB rather than fail on allocation.
constexpr int64_t kMaxConfusionCells = int64_t{1} << 27;

// The judgments regrouped by item (a stable counting sort: within an item, input order is kept).
struct ByItem {
  std::vector<int64_t> offsets;  // num_items + 1
  std::vector<int32_t> worker;
  std::vector<int32_t> label;
};

Status Validate(const Judgments& j, const std::vector<int32_t>& known) {
  if (j.num_items < 0 || j.num_workers < 0 || j.num_labels < 0) {
    return Status::InvalidArgument("aggregation: negative number of items, workers or labels");
  }
  if (j.worker.size() != j.item.size() || j.label.size() != j.item.size()) {
    return Status::InvalidArgument("aggregation: item, worker and label arrays differ in length");
  }
  for (size_t k = 0; k < j.item.size(); ++k) {
    if (j.item[k] < 0 || j.item[k] >= j.num_items || j.worker[k] < 0 || j.worker[k] >= j.num_workers ||
        j.label[k] < 0 || j.label[k] >= j.num_labels) {
      return Status::InvalidArgument("aggregation: judgment " + std::to_string(k) + " has an id out of range");
    }
  }
  if (!known.empty()) {
    if (known.size() != static_cast<size_t>(j.num_items)) {
      return Status::InvalidArgument("aggregation: known labels must have one entry per item");
    }
    for (int32_t l : known) {
      if (l < -1 || l >= j.num_labels) return Status::InvalidArgument("aggregation: known label out of range");
    }
  }
  return Status::Ok();
}

ByItem GroupByItem(const Judgments& j) {
  ByItem g;
  g.offsets.assign(static_cast<size_t>(j.num_items) + 1, 0);
  for (int32_t i : j.item) ++g.offsets[static_cast<size_t>(i) + 1];
  for (size_t i = 1; i < g.offsets.size(); ++i) g.offsets[i] += g.offsets[i - 1];
  std::vector<int64_t> next(g.offsets.begin(), g.offsets.end() - 1);
  g.worker.resize(j.size());
  g.label.resize(j.size());
  for (size_t k = 0; k < j.size(); ++k) {
    const int64_t at = next[static_cast<size_t>(j.item[k])]++;
    g.worker[static_cast<size_t>(at)] = j.worker[k];
    g.label[static_cast<size_t>(at)] = j.label[k];
  }
  return g;
}

int32_t KnownOf(const std::vector<int32_t>& known, size_t i) { return known.empty() ? -1 : known[i]; }

// The label with the highest score; among (near-)equal scores the one seen first among the
// item's judgments [begin, end), else the lowest id. `score` has num_labels entries.
int32_t PickLabel(const double* score, int32_t num_labels, const int32_t* labels, int64_t begin, int64_t end) {
  double best = -std::numeric_limits<double>::infinity();
  int32_t best_id = -1;
  for (int32_t l = 0; l < num_labels; ++l) {
    if (score[l] > best) {
      best = score[l];
      best_id = l;
    }
  }
  // Scores are sums of doubles: equal in exact arithmetic may differ in the last bits.
  const double slack = std::abs(best) * 1e-12;
  for (int64_t k = begin; k < end; ++k) {
    if (score[labels[k]] >= best - slack) return labels[k];
  }
  return best_id;
}

AggregateResult EmptyResult(const Judgments& j) {
  AggregateResult r;
  r.items.assign(static_cast<size_t>(j.num_items), ItemLabel{});
  r.worker_accuracy.assign(static_cast<size_t>(j.num_workers), std::numeric_limits<double>::quiet_NaN());
  r.worker_labels.assign(static_cast<size_t>(j.num_workers), 0);
  for (int32_t w : j.worker) ++r.worker_labels[static_cast<size_t>(w)];
  return r;
}

// worker_accuracy[w] = sum over w's judgments of credit(item, label) / w's judgments.
template <typename Credit>
void FillWorkerAccuracy(const ByItem& g, AggregateResult& r, Credit credit) {
  std::vector<double> sum(r.worker_accuracy.size(), 0.0);
  for (size_t i = 0; i + 1 < g.offsets.size(); ++i) {
    for (int64_t k = g.offsets[i]; k < g.offsets[i + 1]; ++k) sum[static_cast<size_t>(g.worker[k])] += credit(i, g.label[k]);
  }
  for (size_t w = 0; w < sum.size(); ++w) {
    if (r.worker_labels[w] > 0) r.worker_accuracy[w] = sum[w] / r.worker_labels[w];
  }
}

// Weighted vote over g; weight(w) per worker. An item whose weights sum to 0 falls back to
// plain counting. Fills r.items.
template <typename Weight>
void WeightedVote(const Judgments& j, const ByItem& g, const std::vector<int32_t>& known, Weight weight,
                  AggregateResult& r) {
  std::vector<double> score(static_cast<size_t>(j.num_labels), 0.0);
  for (size_t i = 0; i < r.items.size(); ++i) {
    const int64_t begin = g.offsets[i];
    const int64_t end = g.offsets[i + 1];
    ItemLabel& out = r.items[i];
    out.labels = static_cast<int32_t>(end - begin);
    if (const int32_t k = KnownOf(known, i); k >= 0) {
      out.label = k;
      out.confidence = 1.0;
      continue;
    }
    if (begin == end) continue;
    double total = 0.0;
    for (int64_t k = begin; k < end; ++k) {
      const double w = weight(g.worker[k]);
      score[static_cast<size_t>(g.label[k])] += w;
      total += w;
    }
    if (total <= 0.0) {
      for (int64_t k = begin; k < end; ++k) score[static_cast<size_t>(g.label[k])] = 0.0;
      for (int64_t k = begin; k < end; ++k) score[static_cast<size_t>(g.label[k])] += 1.0;
      total = static_cast<double>(end - begin);
    }
    out.label = PickLabel(score.data(), j.num_labels, g.label.data(), begin, end);
    out.confidence = score[static_cast<size_t>(out.label)] / total;
    for (int64_t k = begin; k < end; ++k) score[static_cast<size_t>(g.label[k])] = 0.0;
  }
}

AggregateResult MajorityFromGroups(const Judgments& j, const ByItem& g, const std::vector<int32_t>& known) {
  AggregateResult r = EmptyResult(j);
  WeightedVote(j, g, known, [](int32_t) { return 1.0; }, r);
  FillWorkerAccuracy(g, r, [&r](size_t i, int32_t l) { return r.items[i].label == l ? 1.0 : 0.0; });
  return r;
}

}  // namespace

std::string_view AggregationMethodName(AggregationMethod method) {
  switch (method) {
    case AggregationMethod::kMajority:
      return "majority";
    case AggregationMethod::kDawidSkene:
      return "dawid-skene";
    case AggregationMethod::kWawa:
      return "wawa";
  }
  return "?";
}

Result<AggregationMethod> ParseAggregationMethod(std::string_view name) {
  for (AggregationMethod m : {AggregationMethod::kMajority, AggregationMethod::kDawidSkene, AggregationMethod::kWawa}) {
    if (AggregationMethodName(m) == name) return m;
  }
  return Status::InvalidArgument("aggregation method \"" + std::string(name) +
                                 "\": expected majority, dawid-skene or wawa");
}

Result<AggregateResult> MajorityVote(const Judgments& judgments, const std::vector<int32_t>& known) {
  CG_RETURN_IF_ERROR(Validate(judgments, known));
  return MajorityFromGroups(judgments, GroupByItem(judgments), known);
}

Result<AggregateResult> Wawa(const Judgments& judgments, const std::vector<int32_t>& known) {
  CG_RETURN_IF_ERROR(Validate(judgments, known));
  const ByItem g = GroupByItem(judgments);
  // Each worker's weight is their agreement with majority vote (known labels where given).
  const AggregateResult mv = MajorityFromGroups(judgments, g, known);
  AggregateResult r = EmptyResult(judgments);
  r.worker_accuracy = mv.worker_accuracy;
  WeightedVote(judgments, g, known, [&mv](int32_t w) { return mv.worker_accuracy[static_cast<size_t>(w)]; }, r);
  return r;
}

Result<AggregateResult> DawidSkene(const Judgments& judgments, const AggregateOptions& options) {
  const std::vector<int32_t>& known = options.known;
  CG_RETURN_IF_ERROR(Validate(judgments, known));
  if (!(options.smoothing > 0.0) || !(options.diagonal_prior >= 0.0) ||
      !(options.class_prior_smoothing > 0.0) || !(options.tolerance >= 0.0) || options.max_iterations < 1) {
    return Status::InvalidArgument(
        "dawid-skene: smoothing and class_prior_smoothing must be > 0, diagonal_prior and tolerance >= 0, "
        "max_iterations >= 1");
  }
  const int64_t K = judgments.num_labels;
  const int64_t W = judgments.num_workers;
  const size_t N = static_cast<size_t>(judgments.num_items);
  if (W * K * K > kMaxConfusionCells) {
    return Status::InvalidArgument("dawid-skene: " + std::to_string(W) + " workers x " + std::to_string(K) +
                                   " labels squared is too many confusion cells; use majority or wawa");
  }
  const ByItem g = GroupByItem(judgments);
  AggregateResult r = MajorityFromGroups(judgments, g, known);
  if (K == 0) return r;

  // Posterior T[i * K + k] = P(truth of item i is k), initialised with majority-vote shares.
  std::vector<double> T(N * K, 0.0);
  std::vector<uint8_t> fixed(N, 0);  // known, or without judgments: T never changes
  for (size_t i = 0; i < N; ++i) {
    const int64_t begin = g.offsets[i];
    const int64_t end = g.offsets[i + 1];
    if (const int32_t k = KnownOf(known, i); k >= 0) {
      T[i * K + k] = 1.0;
      fixed[i] = 1;
      continue;
    }
    if (begin == end) {
      fixed[i] = 1;
      continue;
    }
    const double share = 1.0 / static_cast<double>(end - begin);
    for (int64_t j = begin; j < end; ++j) T[i * K + g.label[j]] += share;
  }
  // cell[j]: offset of the row (worker, given label) in the per-worker [given][true] tables below.
  std::vector<int32_t> cell(judgments.size());
  for (size_t j = 0; j < cell.size(); ++j) cell[j] = static_cast<int32_t>((g.worker[j] * K + g.label[j]) * K);

  // counts / log_pi are laid out [worker][given][true]: the E-step reads one contiguous row of K.
  std::vector<double> counts(static_cast<size_t>(W * K * K));
  std::vector<double> log_pi(counts.size());
  std::vector<double> denom(static_cast<size_t>(K));
  std::vector<double> log_prior(static_cast<size_t>(K));
  std::vector<double> acc(static_cast<size_t>(K));
  const double alpha = options.smoothing;
  const double gamma = options.class_prior_smoothing;
  const double beta = options.diagonal_prior;

  auto m_step = [&] {
    std::fill(counts.begin(), counts.end(), alpha);
    for (int64_t w = 0; w < W; ++w) {
      for (int64_t k = 0; k < K; ++k) counts[static_cast<size_t>((w * K + k) * K + k)] += beta;
    }
    for (size_t i = 0; i < N; ++i) {
      const double* t = &T[i * K];
      for (int64_t j = g.offsets[i]; j < g.offsets[i + 1]; ++j) {
        double* c = &counts[static_cast<size_t>(cell[j])];
        for (int64_t k = 0; k < K; ++k) c[k] += t[k];
      }
    }
    for (int64_t w = 0; w < W; ++w) {
      std::fill(denom.begin(), denom.end(), 0.0);
      const size_t base = static_cast<size_t>(w * K * K);
      for (int64_t l = 0; l < K; ++l) {
        for (int64_t k = 0; k < K; ++k) denom[k] += counts[base + l * K + k];
      }
      for (int64_t l = 0; l < K; ++l) {
        for (int64_t k = 0; k < K; ++k) log_pi[base + l * K + k] = std::log(counts[base + l * K + k] / denom[k]);
      }
    }
    std::vector<double> prior(static_cast<size_t>(K), gamma);
    double total = gamma * static_cast<double>(K);
    for (size_t i = 0; i < N; ++i) {
      if (g.offsets[i] == g.offsets[i + 1]) continue;  // no evidence about the prior
      for (int64_t k = 0; k < K; ++k) prior[k] += T[i * K + k];
      total += 1.0;
    }
    for (int64_t k = 0; k < K; ++k) log_prior[k] = std::log(prior[k] / total);
  };

  // Updates the posteriors; returns the log-likelihood of the judgments (known items
  // included, at their known label).
  auto e_step = [&] {
    double log_likelihood = 0.0;
    for (size_t i = 0; i < N; ++i) {
      const int64_t begin = g.offsets[i];
      const int64_t end = g.offsets[i + 1];
      if (begin == end) continue;
      if (const int32_t k = KnownOf(known, i); k >= 0) {
        log_likelihood += log_prior[k];
        for (int64_t j = begin; j < end; ++j) log_likelihood += log_pi[static_cast<size_t>(cell[j] + k)];
        continue;
      }
      std::copy(log_prior.begin(), log_prior.end(), acc.begin());
      for (int64_t j = begin; j < end; ++j) {
        const double* lp = &log_pi[static_cast<size_t>(cell[j])];
        for (int64_t k = 0; k < K; ++k) acc[k] += lp[k];
      }
      const double top = *std::max_element(acc.begin(), acc.end());
      double sum = 0.0;
      for (int64_t k = 0; k < K; ++k) sum += (acc[k] = std::exp(acc[k] - top));
      log_likelihood += top + std::log(sum);
      double* t = &T[i * K];
      for (int64_t k = 0; k < K; ++k) t[k] = acc[k] / sum;
    }
    return log_likelihood;
  };

  // EM never lowers the likelihood (up to the smoothing prior); stop when an iteration gains
  // less than `tolerance` per judgment.
  r.converged = false;
  const double per_judgment = 1.0 / static_cast<double>(std::max<size_t>(judgments.size(), 1));
  double previous = -std::numeric_limits<double>::infinity();
  for (r.iterations = 1; r.iterations <= options.max_iterations; ++r.iterations) {
    m_step();
    const double log_likelihood = e_step();
    if (std::abs(log_likelihood - previous) * per_judgment <= options.tolerance) {
      r.converged = true;
      break;
    }
    previous = log_likelihood;
  }
  r.iterations = std::min(r.iterations, options.max_iterations);

  for (size_t i = 0; i < N; ++i) {
    const int64_t begin = g.offsets[i];
    const int64_t end = g.offsets[i + 1];
    ItemLabel& out = r.items[i];
    if (fixed[i]) continue;  // known or without judgments: as majority vote set it
    out.label = PickLabel(&T[i * K], static_cast<int32_t>(K), g.label.data(), begin, end);
    out.confidence = T[i * K + out.label];
  }
  FillWorkerAccuracy(g, r, [&](size_t i, int32_t l) { return T[i * K + l]; });
  r.confusion.resize(counts.size());
  for (int64_t w = 0; w < W; ++w) {
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t l = 0; l < K; ++l) {
        r.confusion[static_cast<size_t>((w * K + k) * K + l)] = std::exp(log_pi[static_cast<size_t>((w * K + l) * K + k)]);
      }
    }
  }
  r.class_prior.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) r.class_prior[k] = std::exp(log_prior[k]);
  return r;
}

Result<AggregateResult> Aggregate(const Judgments& judgments, const AggregateOptions& options) {
  switch (options.method) {
    case AggregationMethod::kMajority:
      return MajorityVote(judgments, options.known);
    case AggregationMethod::kDawidSkene:
      return DawidSkene(judgments, options);
    case AggregationMethod::kWawa:
      return Wawa(judgments, options.known);
  }
  return Status::InvalidArgument("aggregation: unknown method");
}

}  // namespace crowdgate
