// GrantIndex: every worker's grants held in memory, flat and sorted per worker, so a
// worker's eligibility against compiled requirements costs a few short scans or binary searches.
//
// Thread-safety: none. The owner (Engine) serialises access. The index is fed from the
// store's change feed (audit log): Apply() takes entries in seq order; replaying an
// entry twice is harmless because each entry carries the resulting value.
//
// Layout (sized for 1M+ workers): the bulk of the grants sit in a CSR
// ("compressed sparse row") base cut into segments of 8192 worker ids: in a segment,
// offsets[i] .. offsets[i + 1] is the run of its i-th worker in entries, sorted by
// qualification: 4 bytes of offset per worker id plus 24 bytes per grant, and no per-worker
// allocation. Changes after the bulk load go where they are cheapest:
//  - a new value / expiry / flags of an existing grant is written in place;
//  - a revoke leaves a tombstone in place (it reads as expired at every `now`);
//  - a grant for the last worker id of the base, or for a new id just past it, is appended;
//  - any other new grant moves the worker's whole run to the overflow map (a per-worker
//    sorted vector) and marks it "moved" in a bitmap, so each worker is in exactly one place.
// Once a segment's overflow grants plus dead slots reach an eighth of its live grants (and a
// floor), that segment alone is rebuilt in place with its overflow merged back: amortised O(1)
// per change, and a pause bounded by one segment (~1 MB at 5 grants a worker), never the
// whole index. Workers whose ids are far past the base stay in the overflow until they are
// dense enough to be worth covering.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
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

namespace detail {

// A growable array of trivially copyable values on malloc/realloc. Unlike std::vector, growing
// a large block is a realloc, which glibc serves with mremap (no copy, no second block
// resident while it grows), and capacity never written is never resident.
template <typename T>
class PodArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  PodArray() = default;
  ~PodArray() { std::free(data_); }
  PodArray(const PodArray& o) { *this = o; }
  PodArray(PodArray&& o) noexcept { Swap(o); }
  PodArray& operator=(const PodArray& o) {
    if (this != &o) {
      Resize(0);
      Reserve(o.size_);
      if (o.size_ > 0) std::memcpy(data_, o.data_, o.size_ * sizeof(T));
      size_ = o.size_;
    }
    return *this;
  }
  PodArray& operator=(PodArray&& o) noexcept {
    PodArray tmp(std::move(o));
    Swap(tmp);
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T& back() { return data_[size_ - 1]; }
  const T& back() const { return data_[size_ - 1]; }

  void PushBack(const T& v) {
    if (size_ == capacity_) Realloc(capacity_ < 16 ? 16 : capacity_ * 2);
    data_[size_++] = v;
  }
  // New elements (when growing) are copies of `fill` (by value: it may be one of ours).
  void Resize(size_t n, T fill = T{}) {
    if (n > capacity_) Realloc(n > capacity_ * 2 ? n : capacity_ * 2);
    for (size_t i = size_; i < n; ++i) data_[i] = fill;
    size_ = n;
  }
  void Reserve(size_t n) {
    if (n > capacity_) Realloc(n);
  }
  void ShrinkToFit() {
    if (capacity_ > size_) Realloc(size_);
  }
  void Release() {
    std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
  }
  size_t bytes() const { return capacity_ * sizeof(T); }

 private:
  void Swap(PodArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
  }
  void Realloc(size_t cap) {
    if (cap == 0) {
      Release();
      return;
    }
    void* p = std::realloc(data_, cap * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
    capacity_ = cap;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace detail

class GrantIndex {
 public:
  // One grant, 24 bytes.
  struct Entry {
    int64_t value;
    int64_t expires_at;  // INT64_MAX = never
    uint32_t qual_id;    // the qualification id (ids outside [0, 2^31) are held as an internal key)
    int32_t flags;       // engine-defined tag (e.g. who made the grant); 0 by default
  };
  static_assert(sizeof(Entry) == 24, "Entry is packed into 24 bytes");

  // Applies one change-feed entry.
  void Apply(const AuditEntry& e, int32_t flags = 0);
  // Adds or replaces one grant. Grants loaded in (worker_id, qual_id) order - the order of
  // Store::ScanAllGrants - are appended to the base with no per-worker allocation.
  void Load(const Grant& g, int32_t flags = 0);
  void Clear();
  // Merges the overflow into the base, drops revoked slots and gives back spare capacity
  // (call after a bulk Load; also happens by itself, a segment at a time, as changes pile up).
  void Compact();
  // Expected number of workers, before a bulk Load.
  void Reserve(size_t workers) { segments_.reserve(workers / kSegmentWorkers + 1); }

  // The worker's unexpired value of `qual`, or nullopt.
  std::optional<int64_t> Value(WorkerId worker, QualId qual, int64_t now) const;
  // The worker's unexpired grant of `qual`, or nullptr. Valid until the next change to the index.
  const Entry* Find(WorkerId worker, QualId qual, int64_t now) const;

  // Evaluates requirements in order against the worker's grants; requirements whose
  // provider_mask excludes the worker's provider are skipped.
  EligibilityResult Check(WorkerId worker, uint32_t provider_bit, const std::vector<CompiledRequirement>& reqs,
                          int64_t now) const;

  size_t worker_count() const { return worker_count_; }  // workers with at least one grant
  size_t grant_count() const { return grant_count_; }    // grants held (expired ones included)

  // Where the grants and the bytes are (tests, benchmarks, diagnostics).
  struct Stats {
    size_t base_workers = 0;      // worker ids covered by the base
    size_t base_slots = 0;        // base entries in use, live and dead
    size_t dead_slots = 0;        // revoked, or belonging to a worker moved to the overflow
    size_t segments = 0;
    size_t overflow_workers = 0;
    size_t overflow_grants = 0;
    size_t bytes = 0;             // heap bytes of the structure (capacity, not just size)
  };
  Stats stats() const;
  // The smallest amount of overflow + dead slots in a segment (or of overflow grants of workers
  // past the base) that triggers an automatic compaction (tests lower it for small indexes).
  void set_compaction_floor(size_t n) { compaction_floor_ = n; }

 private:
  static constexpr int64_t kDead = INT64_MIN;      // expires_at of a revoked base slot
  static constexpr uint32_t kBigQual = 1u << 31;   // keys >= this stand for ids in big_quals_
  static constexpr int kSegmentBits = 13;
  static constexpr size_t kSegmentWorkers = size_t{1} << kSegmentBits;
  using Span = std::span<const Entry>;

  // Worker ids [i * kSegmentWorkers, i * kSegmentWorkers + offsets.size() - 1) of the base.
  struct Segment {
    detail::PodArray<uint32_t> offsets;  // workers in the segment + 1
    detail::PodArray<Entry> entries;
    size_t dead = 0;      // revoked slots, and slots of workers moved to the overflow
    size_t overflow = 0;  // grants of its moved workers, held in the overflow map
  };

  // The key a qualification id is stored under; false when `qual` has no key (and so no grant).
  bool KeyOf(QualId qual, uint32_t* key) const {
    if (qual >= 0 && qual < static_cast<QualId>(kBigQual)) {
      *key = static_cast<uint32_t>(qual);
      return true;
    }
    return BigKeyOf(qual, key);
  }
  bool BigKeyOf(QualId qual, uint32_t* key) const;
  uint32_t KeyOrAdd(QualId qual);

  bool InBase(WorkerId worker) const { return static_cast<uint64_t>(worker) < base_workers_; }
  Segment& SegmentOf(WorkerId worker) { return segments_[static_cast<size_t>(worker) >> kSegmentBits]; }
  static size_t LocalOf(WorkerId worker) { return static_cast<size_t>(worker) & (kSegmentWorkers - 1); }
  bool Moved(WorkerId worker) const {
    const auto w = static_cast<uint64_t>(worker);
    return (moved_[w >> 6] >> (w & 63)) & 1;
  }
  void SetMoved(WorkerId worker, bool moved) {
    const auto w = static_cast<uint64_t>(worker);
    if (moved) {
      moved_[w >> 6] |= uint64_t{1} << (w & 63);
    } else {
      moved_[w >> 6] &= ~(uint64_t{1} << (w & 63));
    }
  }

  // The worker's grants (sorted by key; base runs may hold dead slots).
  Span Grants(WorkerId worker) const {
    if (InBase(worker) && (overflow_.empty() || !Moved(worker))) {
      const Segment& s = segments_[static_cast<size_t>(worker) >> kSegmentBits];
      const size_t i = LocalOf(worker);
      return Span(s.entries.data() + s.offsets[i], s.offsets[i + 1] - s.offsets[i]);
    }
    if (overflow_.empty()) return Span();
    auto it = overflow_.find(worker);
    return it == overflow_.end() ? Span() : Span(it->second.data(), it->second.size());
  }
  static const Entry* Lookup(Span grants, uint32_t key);

  void Set(WorkerId worker, QualId qual, int64_t value, int64_t expires_at, int32_t flags);
  void Remove(WorkerId worker, QualId qual);
  void RemoveQualification(QualId qual);
  // Covers worker ids up to `workers` - 1 in the base (empty runs); overflow workers it now
  // covers are marked moved.
  void ExtendBase(size_t workers);
  void MoveToOverflow(WorkerId worker, std::vector<Entry>* out);
  // A change to the overflow grants of `worker` (of its segment's count, or of the far count).
  void OverflowChanged(WorkerId worker, int64_t delta);
  static bool LiveIn(const Segment& s, size_t begin, size_t end);
  void MaybeCompactSegment(size_t segment);
  void CompactSegment(size_t segment);
  void MaybeAbsorbFar();
  void AbsorbFar();

  std::vector<Segment> segments_;
  size_t base_workers_ = 0;             // worker ids [0, base_workers_) are in the base
  std::vector<uint64_t> moved_;         // bit per base worker id: its grants are in overflow_
  std::unordered_map<WorkerId, std::vector<Entry>> overflow_;  // sorted by key, no dead slots
  std::vector<QualId> big_quals_;       // key kBigQual + i stands for big_quals_[i]
  size_t far_grants_ = 0;               // overflow grants of workers outside the base
  size_t far_after_absorb_ = 0;         // what the last AbsorbFar() left there
  size_t worker_count_ = 0;
  size_t grant_count_ = 0;
  size_t compaction_floor_ = 64;
};

// Evaluates one compiled requirement against a value (nullopt = no grant).
bool EvaluateCompiled(const CompiledRequirement& req, std::optional<int64_t> granted);

}  // namespace crowdgate
