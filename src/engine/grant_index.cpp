#include "engine/grant_index.hpp"

#include <algorithm>
#include <climits>

namespace crowdgate {

uint32_t ProviderBit(std::string_view provider) {
  const auto& known = KnownProviders();
  for (size_t i = 0; i < known.size(); ++i) {
    if (known[i] == provider) return 1u << i;
  }
  return 0;
}

bool EvaluateCompiled(const CompiledRequirement& req, std::optional<int64_t> granted) {
  if (!granted.has_value()) return req.comparator == Comparator::kDoesNotExist;
  const int64_t v = *granted;
  switch (req.comparator) {
    case Comparator::kGreaterThan: return v > req.value;
    case Comparator::kGreaterThanOrEqualTo: return v >= req.value;
    case Comparator::kLessThan: return v < req.value;
    case Comparator::kLessThanOrEqualTo: return v <= req.value;
    case Comparator::kEqualTo: return v == req.value;
    case Comparator::kNotEqualTo: return v != req.value;
    case Comparator::kExists: return true;
    case Comparator::kDoesNotExist: return false;
    case Comparator::kIn: return std::binary_search(req.values.begin(), req.values.end(), v);
    case Comparator::kNotIn: return !std::binary_search(req.values.begin(), req.values.end(), v);
  }
  return false;
}

namespace {

bool EntryLess(const GrantIndex::Entry& e, uint32_t key) { return e.qual_id < key; }

// How far past the base a new worker id may be and still extend it (ids are the store's row ids,
// dense from 1); ids beyond stay in the overflow map.
uint64_t DenseLimit(size_t base_workers) { return 2 * static_cast<uint64_t>(base_workers) + 4096; }

}  // namespace

// ---- keys -------------------------------------------------------------------------------

bool GrantIndex::BigKeyOf(QualId qual, uint32_t* key) const {
  for (size_t i = 0; i < big_quals_.size(); ++i) {
    if (big_quals_[i] == qual) {
      *key = kBigQual + static_cast<uint32_t>(i);
      return true;
    }
  }
  return false;
}

uint32_t GrantIndex::KeyOrAdd(QualId qual) {
  uint32_t key = 0;
  if (KeyOf(qual, &key)) return key;
  // Qualification ids are row ids, far below 2^31; this list stays empty in practice. (If it
  // ever filled up, the last key would be shared; 2^31 distinct huge ids cannot occur.)
  if (big_quals_.size() < kBigQual - 1) big_quals_.push_back(qual);
  return kBigQual + static_cast<uint32_t>(big_quals_.size() - 1);
}

// ---- lookups ----------------------------------------------------------------------------

const GrantIndex::Entry* GrantIndex::Lookup(Span grants, uint32_t key) {
  // Most workers hold a handful of grants: a forward scan that stops at the first key not
  // below `key` beats a binary search there (no unpredictable branches; one cache line or two).
  if (grants.size() <= 8) {
    for (const Entry& e : grants) {
      if (e.qual_id >= key) return e.qual_id == key ? &e : nullptr;
    }
    return nullptr;
  }
  auto it = std::lower_bound(grants.begin(), grants.end(), key, EntryLess);
  if (it == grants.end() || it->qual_id != key) return nullptr;
  return &*it;
}

const GrantIndex::Entry* GrantIndex::Find(WorkerId worker, QualId qual, int64_t now) const {
  uint32_t key = 0;
  if (!KeyOf(qual, &key)) return nullptr;
  const Entry* e = Lookup(Grants(worker), key);
  if (e == nullptr || e->expires_at <= now) return nullptr;  // a dead slot reads as expired
  return e;
}

std::optional<int64_t> GrantIndex::Value(WorkerId worker, QualId qual, int64_t now) const {
  const Entry* e = Find(worker, qual, now);
  if (e == nullptr) return std::nullopt;
  return e->value;
}

EligibilityResult GrantIndex::Check(WorkerId worker, uint32_t provider_bit,
                                    const std::vector<CompiledRequirement>& reqs, int64_t now) const {
  const Span grants = Grants(worker);
  for (const auto& req : reqs) {
    if ((req.provider_mask & provider_bit) == 0) continue;
    std::optional<int64_t> granted;
    uint32_t key = 0;
    if (KeyOf(req.qual_id, &key)) {
      const Entry* e = Lookup(grants, key);
      if (e != nullptr && e->expires_at > now) granted = e->value;
    }
    if (!EvaluateCompiled(req, granted)) return EligibilityResult{false, req.source_index};
  }
  return EligibilityResult{};
}

// ---- changes ----------------------------------------------------------------------------

bool GrantIndex::LiveIn(size_t begin, size_t end) const {
  for (size_t i = begin; i < end; ++i) {
    if (entries_[i].expires_at != kDead) return true;
  }
  return false;
}

void GrantIndex::ExtendBase(size_t workers) {
  const size_t old = base_workers();
  if (workers <= old) return;
  const uint32_t end = offsets_.empty() ? 0 : offsets_.back();
  offsets_.Resize(workers + 1, end);
  moved_.resize((workers + 63) / 64, 0);
  if (!overflow_.empty()) {
    for (size_t w = old; w < workers; ++w) {
      if (overflow_.count(static_cast<WorkerId>(w)) != 0) SetMoved(static_cast<WorkerId>(w));
    }
  }
}

void GrantIndex::MoveToOverflow(WorkerId worker, std::vector<Entry>* out) {
  const auto w = static_cast<size_t>(worker);
  for (uint32_t i = offsets_[w]; i < offsets_[w + 1]; ++i) {
    Entry& e = entries_[i];
    if (e.expires_at == kDead) continue;
    out->push_back(e);
    e.expires_at = kDead;
    ++dead_slots_;
    ++overflow_grants_;
  }
  SetMoved(worker);
}

void GrantIndex::Set(WorkerId worker, QualId qual, int64_t value, int64_t expires_at, int32_t flags) {
  const uint32_t key = KeyOrAdd(qual);
  if (expires_at == kDead) ++expires_at;  // kDead marks revoked slots; one microsecond later reads the same
  const Entry entry{value, expires_at, key, flags};

  if (!InBase(worker) && worker >= 0 && static_cast<uint64_t>(worker) < DenseLimit(base_workers()) &&
      entries_.size() < UINT32_MAX) {
    ExtendBase(static_cast<size_t>(worker) + 1);  // a new worker id just past the base
  }
  if (InBase(worker) && !Moved(worker)) {
    const auto w = static_cast<size_t>(worker);
    const uint32_t begin = offsets_[w];
    const uint32_t end = offsets_[w + 1];
    Entry* first = entries_.data() + begin;
    Entry* last = entries_.data() + end;
    Entry* it = std::lower_bound(first, last, key, EntryLess);
    if (it != last && it->qual_id == key) {  // in place: a new value, or a revoked slot reused
      if (it->expires_at == kDead) {
        if (!LiveIn(begin, end)) ++worker_count_;
        --dead_slots_;
        ++grant_count_;
      }
      *it = entry;
      return;
    }
    if (it == last && w + 1 == offsets_.size() - 1 && entries_.size() < UINT32_MAX) {
      // The last worker of the base (the bulk-load case): append.
      if (!LiveIn(begin, end)) ++worker_count_;
      entries_.PushBack(entry);
      ++offsets_[w + 1];
      ++grant_count_;
      return;
    }
    // A new qualification in the middle of the base: the worker's run moves to the overflow.
    std::vector<Entry>& moved = overflow_[worker];
    moved.reserve(static_cast<size_t>(end - begin) + 1);
    MoveToOverflow(worker, &moved);
    if (moved.empty()) ++worker_count_;
    moved.insert(std::lower_bound(moved.begin(), moved.end(), key, EntryLess), entry);
    ++overflow_grants_;
    ++grant_count_;
    MaybeCompact();
    return;
  }
  std::vector<Entry>& v = overflow_[worker];
  auto it = std::lower_bound(v.begin(), v.end(), key, EntryLess);
  if (it != v.end() && it->qual_id == key) {
    *it = entry;
    return;
  }
  if (v.empty()) ++worker_count_;
  v.insert(it, entry);
  ++overflow_grants_;
  ++grant_count_;
  MaybeCompact();
}

void GrantIndex::Remove(WorkerId worker, QualId qual) {
  uint32_t key = 0;
  if (!KeyOf(qual, &key)) return;
  if (InBase(worker) && !Moved(worker)) {
    const auto w = static_cast<size_t>(worker);
    const uint32_t begin = offsets_[w];
    const uint32_t end = offsets_[w + 1];
    Entry* first = entries_.data() + begin;
    Entry* last = entries_.data() + end;
    Entry* it = std::lower_bound(first, last, key, EntryLess);
    if (it == last || it->qual_id != key || it->expires_at == kDead) return;
    it->expires_at = kDead;
    ++dead_slots_;
    --grant_count_;
    if (!LiveIn(begin, end)) --worker_count_;
    MaybeCompact();
    return;
  }
  auto found = overflow_.find(worker);
  if (found == overflow_.end()) return;
  auto& v = found->second;
  auto it = std::lower_bound(v.begin(), v.end(), key, EntryLess);
  if (it == v.end() || it->qual_id != key) return;
  v.erase(it);
  --overflow_grants_;
  --grant_count_;
  if (v.empty()) {
    --worker_count_;
    overflow_.erase(found);
  }
}

void GrantIndex::RemoveQualification(QualId qual) {
  uint32_t key = 0;
  if (!KeyOf(qual, &key)) return;
  const size_t workers = base_workers();
  for (size_t w = 0; w < workers; ++w) {
    const uint32_t begin = offsets_[w];
    const uint32_t end = offsets_[w + 1];
    if (begin == end) continue;
    Entry* first = entries_.data() + begin;
    Entry* last = entries_.data() + end;
    Entry* it = std::lower_bound(first, last, key, EntryLess);
    if (it == last || it->qual_id != key || it->expires_at == kDead) continue;  // moved runs are all dead
    it->expires_at = kDead;
    ++dead_slots_;
    --grant_count_;
    if (!LiveIn(begin, end)) --worker_count_;
  }
  for (auto it = overflow_.begin(); it != overflow_.end();) {
    auto& v = it->second;
    auto e = std::lower_bound(v.begin(), v.end(), key, EntryLess);
    if (e != v.end() && e->qual_id == key) {
      v.erase(e);
      --overflow_grants_;
      --grant_count_;
    }
    if (v.empty()) {
      --worker_count_;
      it = overflow_.erase(it);
    } else {
      ++it;
    }
  }
  MaybeCompact();
}

void GrantIndex::Apply(const AuditEntry& e, int32_t flags) {
  switch (e.kind) {
    case AuditEntry::Kind::kQualificationDeleted:
      RemoveQualification(e.qual_id);
      return;
    case AuditEntry::Kind::kRevoke:
      Remove(e.worker_id, e.qual_id);
      return;
    case AuditEntry::Kind::kGrant:
    case AuditEntry::Kind::kChange:
      if (e.new_value.has_value()) {
        Set(e.worker_id, e.qual_id, *e.new_value, e.new_expires_at.value_or(INT64_MAX), flags);
      } else {
        Remove(e.worker_id, e.qual_id);
      }
      return;
  }
}

void GrantIndex::Load(const Grant& g, int32_t flags) {
  Set(g.worker_id, g.qual_id, g.value, g.expires_at.value_or(INT64_MAX), flags);
}

// ---- compaction -------------------------------------------------------------------------

void GrantIndex::MaybeCompact() {
  // Geometric: the waste must reach a quarter of the live base, and twice what the last
  // compaction could not absorb (overflow workers with far-off ids), so compactions stay rare.
  const size_t waste = dead_slots_ + overflow_grants_;
  if (waste >= compaction_floor_ && waste >= (entries_.size() - dead_slots_) / 4 && waste >= 2 * waste_after_compact_) {
    Compact();
  }
}

void GrantIndex::Compact() {
  // The base grows to cover the overflow workers past it whose ids are dense enough: worth it
  // while the offsets (4 bytes per id) cost less than ~32 bytes per grant covered.
  std::vector<std::pair<WorkerId, size_t>> beyond;
  for (const auto& [worker, v] : overflow_) {
    if (worker >= 0 && !InBase(worker)) beyond.emplace_back(worker, v.size());
  }
  std::sort(beyond.begin(), beyond.end());
  size_t workers = base_workers();
  {
    uint64_t grants = entries_.size() - dead_slots_;
    for (size_t i = 0; i < beyond.size(); ++i) {
      grants += beyond[i].second;
      const auto id = static_cast<uint64_t>(beyond[i].first);
      if (id < DenseLimit(workers) || id < 8 * grants + 4096) workers = static_cast<size_t>(id) + 1;
    }
  }
  size_t absorbed = 0;  // overflow grants that move into the base
  for (const auto& [worker, v] : overflow_) {
    if (worker >= 0 && static_cast<uint64_t>(worker) < workers) absorbed += v.size();
  }
  const size_t total = entries_.size() - dead_slots_ + absorbed;
  if (total >= UINT32_MAX) return;  // offsets are 32-bit; stay as is (4 billion grants)

  if (dead_slots_ > 0 || absorbed > 0) {
    // 1. Forward: squeeze out dead slots (moved runs are all dead). Every run only moves down.
    const size_t old_workers = base_workers();
    size_t out = 0;
    uint32_t old_begin = old_workers > 0 ? offsets_[0] : 0;
    for (size_t w = 0; w < old_workers; ++w) {
      const uint32_t old_end = offsets_[w + 1];
      offsets_[w] = static_cast<uint32_t>(out);
      for (uint32_t i = old_begin; i < old_end; ++i) {
        if (entries_[i].expires_at != kDead) entries_[out++] = entries_[i];
      }
      old_begin = old_end;
    }
    if (old_workers > 0) offsets_[old_workers] = static_cast<uint32_t>(out);
    dead_slots_ = 0;

    // 2. Backward: spread the runs to their final places, filling in the overflow runs. A run's
    // final start is at or past its squeezed start, and everything past it is already final.
    ExtendBase(workers);  // new ids: empty squeezed runs; overflow workers among them: moved
    entries_.Resize(std::max(total, out));
    size_t end = total;
    uint32_t squeezed_end = offsets_[workers];
    for (size_t w = workers; w-- > 0;) {
      const uint32_t squeezed_begin = offsets_[w];
      offsets_[w + 1] = static_cast<uint32_t>(end);
      if (Moved(static_cast<WorkerId>(w))) {
        auto it = overflow_.find(static_cast<WorkerId>(w));
        if (it != overflow_.end()) {
          end -= it->second.size();
          std::copy(it->second.begin(), it->second.end(), entries_.data() + end);
          overflow_grants_ -= it->second.size();
          overflow_.erase(it);
        }
      } else {
        const size_t n = squeezed_end - squeezed_begin;
        end -= n;
        if (end != squeezed_begin && n > 0) {
          std::memmove(entries_.data() + end, entries_.data() + squeezed_begin, n * sizeof(Entry));
        }
      }
      squeezed_end = squeezed_begin;
    }
    if (workers > 0) offsets_[0] = static_cast<uint32_t>(end);  // 0
    entries_.Resize(total);
    std::fill(moved_.begin(), moved_.end(), 0);
    // Negative and far-off ids stay in the overflow map; none of them is in the base range.
  }
  waste_after_compact_ = overflow_grants_;
  entries_.ShrinkToFit();
  offsets_.ShrinkToFit();
  moved_.shrink_to_fit();
  if (overflow_.empty()) std::unordered_map<WorkerId, std::vector<Entry>>().swap(overflow_);
}

void GrantIndex::Clear() {
  offsets_.Release();
  entries_.Release();
  std::vector<uint64_t>().swap(moved_);
  std::unordered_map<WorkerId, std::vector<Entry>>().swap(overflow_);
  big_quals_.clear();
  dead_slots_ = 0;
  overflow_grants_ = 0;
  waste_after_compact_ = 0;
  worker_count_ = 0;
  grant_count_ = 0;
}

GrantIndex::Stats GrantIndex::stats() const {
  Stats s;
  s.base_workers = base_workers();
  s.base_slots = entries_.size();
  s.dead_slots = dead_slots_;
  s.overflow_workers = overflow_.size();
  s.overflow_grants = overflow_grants_;
  s.bytes = offsets_.bytes() + entries_.bytes() + moved_.capacity() * sizeof(uint64_t) +
            overflow_.bucket_count() * sizeof(void*) + big_quals_.capacity() * sizeof(QualId);
  for (const auto& [worker, v] : overflow_) {
    // A node: next pointer, key, vector header; plus the vector's block.
    s.bytes += sizeof(void*) + sizeof(WorkerId) + sizeof(std::vector<Entry>) + v.capacity() * sizeof(Entry);
  }
  return s;
}

}  // namespace crowdgate
