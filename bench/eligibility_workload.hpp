// The `eligibility` workload's data, shared by crowdgate_bench and the Google Benchmark
// (crowdgate_gbench): workers x 20 qualifications at ~30% density with values 0-100, and
// five requirements of which none short-circuits for most workers.
#pragma once

#include <random>
#include <vector>

#include "engine/grant_index.hpp"

namespace crowdgate::bench {

constexpr int kEligibilityQuals = 20;

inline GrantIndex BuildEligibilityIndex(int64_t workers) {
  GrantIndex index;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> coin(0, 1);
  std::uniform_int_distribution<int64_t> value(0, 100);
  for (WorkerId w = 1; w <= workers; ++w) {
    for (QualId q = 1; q <= kEligibilityQuals; ++q) {
      if (coin(rng) < 0.3) {
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

// A block list, an onboarding-failed guard, a score threshold, a tier and a value set.
inline std::vector<CompiledRequirement> FiveRequirements() {
  std::vector<CompiledRequirement> reqs(5);
  reqs[0] = {1, Comparator::kDoesNotExist, 0, {}, ~0u, 0};
  reqs[1] = {2, Comparator::kDoesNotExist, 0, {}, ~0u, 1};
  reqs[2] = {3, Comparator::kLessThanOrEqualTo, 100, {}, ~0u, 2};
  reqs[3] = {4, Comparator::kNotEqualTo, 1000, {}, ~0u, 3};
  reqs[4] = {5, Comparator::kNotIn, 0, {101, 102, 103}, ~0u, 4};
  return reqs;
}

}  // namespace crowdgate::bench
