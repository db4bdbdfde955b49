// Workload `eligibility`: one worker checked against 5 compiled requirements, in process,
// with 100,000 workers x 20 qualifications at ~30% density held in the GrantIndex.
// Target: >= 5 million checks/s on one core.
#include <benchmark/benchmark.h>

#include <random>

#include "eligibility_workload.hpp"

namespace crowdgate {
namespace {

using bench::FiveRequirements;

void BM_Eligibility(benchmark::State& state) {
  const int64_t workers = state.range(0);
  static std::map<int64_t, GrantIndex>* indexes = new std::map<int64_t, GrantIndex>();
  if (indexes->find(workers) == indexes->end()) indexes->emplace(workers, bench::BuildEligibilityIndex(workers));
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
