// Workload `eligibility`: one worker checked against 5 compiled requirements, in process,
// with 100,000 workers x 20 qualifications at ~30% density held in the GrantIndex.
// PRODUCT.md §7 target: >= 5 million checks/s on one core.
#include <benchmark/benchmark.h>

#include <random>

#include "engine/grant_index.hpp"

namespace crowdgate {
namespace {

constexpr int kQualifications = 20;
constexpr double kDensity = 0.3;

GrantIndex BuildIndex(int64_t workers) {
  GrantIndex index;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> coin(0, 1);
  std::uniform_int_distribution<int64_t> value(0, 100);
  for (WorkerId w = 1; w <= workers; ++w) {
    for (QualId q = 1; q <= kQualifications; ++q) {
      if (coin(rng) < kDensity) {
        Grant g;
        g.worker_id = w;
        g.qual_id = q;
        g.value = value(rng);
        index.Load(g);
      }
    }
  }
  return index;
}

std::vector<CompiledRequirement> FiveRequirements() {
  // A realistic mix: a block list, an onboarding-failed guard, a score threshold, an
  // allow-list tier and a value set; none short-circuits for most workers.
  std::vector<CompiledRequirement> reqs(5);
  reqs[0] = {1, Comparator::kDoesNotExist, 0, {}, ~0u, 0};
  reqs[1] = {2, Comparator::kDoesNotExist, 0, {}, ~0u, 1};
  reqs[2] = {3, Comparator::kLessThanOrEqualTo, 100, {}, ~0u, 2};
  reqs[3] = {4, Comparator::kNotEqualTo, 1000, {}, ~0u, 3};
  reqs[4] = {5, Comparator::kNotIn, 0, {101, 102, 103}, ~0u, 4};
  return reqs;
}

void BM_Eligibility(benchmark::State& state) {
  const int64_t workers = state.range(0);
  static std::map<int64_t, GrantIndex>* indexes = new std::map<int64_t, GrantIndex>();
  if (indexes->find(workers) == indexes->end()) indexes->emplace(workers, BuildIndex(workers));
  const GrantIndex& index = indexes->at(workers);
  const auto reqs = FiveRequirements();
  const uint32_t local = ProviderBit("local");
  std::mt19937_64 rng(11);
  // Random workers over the whole population, so the index does not sit in the cache.
  constexpr size_t kOrder = 1 << 20;
  std::vector<WorkerId> order(kOrder);
  for (auto& w : order) w = static_cast<WorkerId>(rng() % workers) + 1;
  size_t i = 0;
  int64_t passed = 0;
  for (auto _ : state) {
    passed += index.Check(order[i++ & (kOrder - 1)], local, reqs, /*now=*/1).passed;
  }
  benchmark::DoNotOptimize(passed);
  state.SetItemsProcessed(state.iterations());
  state.counters["checks_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["grants"] = static_cast<double>(index.grant_count());
}
BENCHMARK(BM_Eligibility)->Arg(100'000)->Iterations(20'000'000)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace crowdgate

BENCHMARK_MAIN();
