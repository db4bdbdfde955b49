// GrantIndex: every worker's grants held in memory, flat and sorted per worker, so a
// worker's eligibility against compiled requirements costs a few binary searches.
//
// Thread-safety: none. The owner (Engine) serialises access. The index is fed from the
// store's change feed (audit log): Apply() takes entries in seq order; replaying an
// entry twice is harmless because each entry carries the resulting value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crowdgate/requirement.hpp"
#include "crowdgate/types.hpp"

namespace crowdgate {

// A requirement with its qualification resolved to an id, ready for the hot path.
struct CompiledRequirement {
  QualId qual_id = 0;
  Comparator comparator = Comparator::kExists;
  int64_t value = 0;
  std::vector<int64_t> values;     // sorted, for In / NotIn
  uint32_t provider_mask = ~0u;    // bit i set = applies to KnownProviders()[i]
  int source_index = 0;            // position in the list it was compiled from
};

// Bit for a provider in CompiledRequirement::provider_mask; 0 for unknown providers.
uint32_t ProviderBit(std::string_view provider);

// Outcome of checking one worker: passed, or the first requirement that failed.
struct EligibilityResult {
  bool passed = true;
  int failed_index = -1;  // CompiledRequirement::source_index of the first failure
};

class GrantIndex {
 public:
  struct Entry {
    QualId qual_id;
    int64_t value;
    int64_t expires_at;  // INT64_MAX = never
    int32_t flags;       // engine-defined tag (e.g. who made the grant); 0 by default
  };

  // Applies one change-feed entry.
  void Apply(const AuditEntry& e, int32_t flags = 0);
  void Load(const Grant& g, int32_t flags = 0);
  void Clear();
  // Gives back the spare capacity of every worker's vector (call after a bulk Load: vectors
  // grown one grant at a time hold up to twice what they need).
  void Compact();
  // Expected number of workers, before a bulk Load.
  void Reserve(size_t workers) { dense_.reserve(workers + 1); }

  // The worker's unexpired value of `qual`, or nullopt.
  std::optional<int64_t> Value(WorkerId worker, QualId qual, int64_t now) const;
  const Entry* Find(WorkerId worker, QualId qual, int64_t now) const;

  // Evaluates requirements in order against the worker's grants; requirements whose
  // provider_mask excludes the worker's provider are skipped.
  EligibilityResult Check(WorkerId worker, uint32_t provider_bit, const std::vector<CompiledRequirement>& reqs,
                          int64_t now) const;

  size_t worker_count() const { return worker_count_; }
  size_t grant_count() const { return grant_count_; }

 private:
  void Set(WorkerId worker, QualId qual, int64_t value, int64_t expires_at, int32_t flags);
  void Remove(WorkerId worker, QualId qual);
  void RemoveQualification(QualId qual);

  // The worker's grants, or nullptr when it has none (read-only).
  const std::vector<Entry>* Grants(WorkerId worker) const {
    if (worker > 0 && static_cast<uint64_t>(worker) < dense_.size()) return &dense_[static_cast<size_t>(worker)];
    auto it = sparse_.find(worker);
    return it == sparse_.end() ? nullptr : &it->second;
  }
  // The worker's vector, created empty when missing.
  std::vector<Entry>& MutableGrants(WorkerId worker);
  void Erased(WorkerId worker);  // bookkeeping after a worker's vector became empty

  // Worker ids are the store's row ids, dense from 1, so most workers live in dense_, indexed by
  // id (one indirection, no hashing); ids far beyond the dense range live in sparse_. Each
  // vector is sorted by qual_id; an empty vector = no grants.
  std::vector<std::vector<Entry>> dense_;
  std::unordered_map<WorkerId, std::vector<Entry>> sparse_;
  size_t worker_count_ = 0;  // workers with at least one grant
  size_t grant_count_ = 0;
};

// Evaluates one compiled requirement against a value (nullopt = no grant).
bool EvaluateCompiled(const CompiledRequirement& req, std::optional<int64_t> granted);

}  // namespace crowdgate
