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

bool GrantIndex::LiveIn(const Segment& s, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    if (s.entries[i].expires_at != kDead) return true;
  }
  return false;
}

void GrantIndex::OverflowChanged(WorkerId worker, int64_t delta) {
  size_t& count = InBase(worker) ? SegmentOf(worker).overflow : far_grants_;
  count = static_cast<size_t>(static_cast<int64_t>(count) + delta);
}

void GrantIndex::ExtendBase(size_t workers) {
  const size_t old = base_workers_;
  while (base_workers_ < workers) {
    if (segments_.empty() || segments_.back().offsets.size() - 1 == kSegmentWorkers) {
      Segment next;
      next.offsets.Reserve(kSegmentWorkers + 1);
      next.offsets.PushBack(0);
      if (!segments_.empty()) {
        // A bulk load fills segments one after the other: size the next one like the last,
        // and give the finished one its spare capacity back (only the last one is appended to).
        Segment& full = segments_.back();
        full.entries.ShrinkToFit();
        next.entries.Reserve(full.entries.size() + full.entries.size() / 8);
      }
      segments_.push_back(std::move(next));
    }
    Segment& last = segments_.back();
    const size_t add = std::min(workers - base_workers_, kSegmentWorkers - (last.offsets.size() - 1));
    last.offsets.Resize(last.offsets.size() + add, last.offsets.back());
    base_workers_ += add;
  }
  moved_.resize((base_workers_ + 63) / 64, 0);
  if (!overflow_.empty()) {
    for (size_t w = old; w < base_workers_; ++w) {
      auto it = overflow_.find(static_cast<WorkerId>(w));
      if (it == overflow_.end()) continue;
      SetMoved(static_cast<WorkerId>(w), true);
      far_grants_ -= it->second.size();
      SegmentOf(static_cast<WorkerId>(w)).overflow += it->second.size();
    }
  }
}

void GrantIndex::MoveToOverflow(WorkerId worker, std::vector<Entry>* out) {
  Segment& s = SegmentOf(worker);
  const size_t i = LocalOf(worker);
  for (uint32_t k = s.offsets[i]; k < s.offsets[i + 1]; ++k) {
    Entry& e = s.entries[k];
    if (e.expires_at == kDead) continue;
    out->push_back(e);
    e.expires_at = kDead;
    ++s.dead;
    ++s.overflow;
  }
  SetMoved(worker, true);
}

void GrantIndex::Set(WorkerId worker, QualId qual, int64_t value, int64_t expires_at, int32_t flags) {
  const uint32_t key = KeyOrAdd(qual);
  if (expires_at == kDead) ++expires_at;  // kDead marks revoked slots; one microsecond later reads the same
  const Entry entry{value, expires_at, key, flags};

  if (!InBase(worker) && worker >= 0 && static_cast<uint64_t>(worker) < DenseLimit(base_workers_)) {
    ExtendBase(static_cast<size_t>(worker) + 1);  // a new worker id just past the base
  }
  if (InBase(worker) && !Moved(worker)) {
    const size_t segment = static_cast<size_t>(worker) >> kSegmentBits;
    Segment& s = segments_[segment];
    const size_t i = LocalOf(worker);
    const uint32_t begin = s.offsets[i];
    const uint32_t end = s.offsets[i + 1];
    Entry* first = s.entries.data() + begin;
    Entry* last = s.entries.data() + end;
    Entry* it = std::lower_bound(first, last, key, EntryLess);
    if (it != last && it->qual_id == key) {  // in place: a new value, or a revoked slot reused
      if (it->expires_at == kDead) {
        if (!LiveIn(s, begin, end)) ++worker_count_;
        --s.dead;
        ++grant_count_;
      }
      *it = entry;
      return;
    }
    if (it == last && static_cast<size_t>(worker) + 1 == base_workers_ && s.entries.size() < UINT32_MAX) {
      // The last worker of the base (the bulk-load case): append.
      if (!LiveIn(s, begin, end)) ++worker_count_;
      s.entries.PushBack(entry);
      ++s.offsets[i + 1];
      ++grant_count_;
      return;
    }
    // A new qualification in the middle of the base: the worker's run moves to the overflow.
    std::vector<Entry>& moved = overflow_[worker];
    moved.reserve(static_cast<size_t>(end - begin) + 1);
    MoveToOverflow(worker, &moved);
    if (moved.empty()) ++worker_count_;
    moved.insert(std::lower_bound(moved.begin(), moved.end(), key, EntryLess), entry);
    ++s.overflow;
    ++grant_count_;
    MaybeCompactSegment(segment);
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
  ++grant_count_;
  OverflowChanged(worker, 1);
  if (InBase(worker)) {
    MaybeCompactSegment(static_cast<size_t>(worker) >> kSegmentBits);
  } else {
    MaybeAbsorbFar();
  }
}

void GrantIndex::Remove(WorkerId worker, QualId qual) {
  uint32_t key = 0;
  if (!KeyOf(qual, &key)) return;
  if (InBase(worker) && !Moved(worker)) {
    const size_t segment = static_cast<size_t>(worker) >> kSegmentBits;
    Segment& s = segments_[segment];
    const size_t i = LocalOf(worker);
    const uint32_t begin = s.offsets[i];
    const uint32_t end = s.offsets[i + 1];
    Entry* first = s.entries.data() + begin;
    Entry* last = s.entries.data() + end;
    Entry* it = std::lower_bound(first, last, key, EntryLess);
    if (it == last || it->qual_id != key || it->expires_at == kDead) return;
    it->expires_at = kDead;
    ++s.dead;
    --grant_count_;
    if (!LiveIn(s, begin, end)) --worker_count_;
    MaybeCompactSegment(segment);
    return;
  }
  auto found = overflow_.find(worker);
  if (found == overflow_.end()) return;
  auto& v = found->second;
  auto it = std::lower_bound(v.begin(), v.end(), key, EntryLess);
  if (it == v.end() || it->qual_id != key) return;
  v.erase(it);
  OverflowChanged(worker, -1);
  --grant_count_;
  if (v.empty()) {
    --worker_count_;
    overflow_.erase(found);
  }
}

void GrantIndex::RemoveQualification(QualId qual) {
  uint32_t key = 0;
  if (!KeyOf(qual, &key)) return;
  for (Segment& s : segments_) {
    const size_t workers = s.offsets.size() - 1;
    for (size_t i = 0; i < workers; ++i) {
      const uint32_t begin = s.offsets[i];
      const uint32_t end = s.offsets[i + 1];
      if (begin == end) continue;
      Entry* first = s.entries.data() + begin;
      Entry* last = s.entries.data() + end;
      Entry* it = std::lower_bound(first, last, key, EntryLess);
      if (it == last || it->qual_id != key || it->expires_at == kDead) continue;  // moved runs are all dead
      it->expires_at = kDead;
      ++s.dead;
      --grant_count_;
      if (!LiveIn(s, begin, end)) --worker_count_;
    }
  }
  for (auto it = overflow_.begin(); it != overflow_.end();) {
    auto& v = it->second;
    auto e = std::lower_bound(v.begin(), v.end(), key, EntryLess);
    if (e != v.end() && e->qual_id == key) {
      v.erase(e);
      OverflowChanged(it->first, -1);
      --grant_count_;
    }
    if (v.empty()) {
      --worker_count_;
      it = overflow_.erase(it);
    } else {
      ++it;
    }
  }
  for (size_t i = 0; i < segments_.size(); ++i) MaybeCompactSegment(i);
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

void GrantIndex::MaybeCompactSegment(size_t segment) {
  // Geometric: the waste must reach an eighth of the segment's live grants, so the copying is
  // amortised O(1) per change, and one segment is all a change ever waits for.
  const Segment& s = segments_[segment];
  const size_t waste = s.dead + s.overflow;
  if (waste >= compaction_floor_ && waste >= (s.entries.size() - s.dead) / 8) CompactSegment(segment);
}

void GrantIndex::CompactSegment(size_t segment) {
  Segment& s = segments_[segment];
  if (s.dead == 0 && s.overflow == 0) return;
  const size_t total = s.entries.size() - s.dead + s.overflow;
  if (total >= UINT32_MAX) return;  // offsets are 32-bit (4 billion grants in 8192 workers)
  const size_t workers = s.offsets.size() - 1;
  const WorkerId first_worker = static_cast<WorkerId>(segment << kSegmentBits);

  // 1. Forward: squeeze out dead slots (moved runs are all dead). Every run only moves down.
  size_t out = 0;
  uint32_t old_begin = s.offsets[0];
  for (size_t i = 0; i < workers; ++i) {
    const uint32_t old_end = s.offsets[i + 1];
    s.offsets[i] = static_cast<uint32_t>(out);
    for (uint32_t k = old_begin; k < old_end; ++k) {
      if (s.entries[k].expires_at != kDead) s.entries[out++] = s.entries[k];
    }
    old_begin = old_end;
  }
  s.offsets[workers] = static_cast<uint32_t>(out);

  // 2. Backward: spread the runs to their final places, filling in the moved workers' runs from
  // the overflow. A run's final start is at or past its squeezed start, and everything past it
  // is already final.
  s.entries.Resize(std::max(total, out));
  size_t end = total;
  uint32_t squeezed_end = s.offsets[workers];
  for (size_t i = workers; i-- > 0;) {
    const uint32_t squeezed_begin = s.offsets[i];
    s.offsets[i + 1] = static_cast<uint32_t>(end);
    const WorkerId worker = first_worker + static_cast<WorkerId>(i);
    if (Moved(worker)) {
      auto it = overflow_.find(worker);
      if (it != overflow_.end()) {
        end -= it->second.size();
        std::copy(it->second.begin(), it->second.end(), s.entries.data() + end);
        overflow_.erase(it);
      }
      SetMoved(worker, false);
    } else {
      const size_t n = squeezed_end - squeezed_begin;
      end -= n;
      if (end != squeezed_begin && n > 0) {
        std::memmove(s.entries.data() + end, s.entries.data() + squeezed_begin, n * sizeof(Entry));
      }
    }
    squeezed_end = squeezed_begin;
  }
  s.offsets[0] = static_cast<uint32_t>(end);  // 0
  s.entries.Resize(total);
  s.dead = 0;
  s.overflow = 0;
  if (segment + 1 < segments_.size()) s.entries.ShrinkToFit();  // the last one is appended to
}

void GrantIndex::MaybeAbsorbFar() {
  if (far_grants_ >= compaction_floor_ && far_grants_ >= 2 * far_after_absorb_) AbsorbFar();
}

void GrantIndex::AbsorbFar() {
  // The base grows to cover the overflow workers past it whose ids are dense enough: worth it
  // while the offsets (4 bytes per id) cost less than ~32 bytes per grant covered.
  std::vector<std::pair<WorkerId, size_t>> beyond;
  for (const auto& [worker, v] : overflow_) {
    if (worker >= 0 && !InBase(worker)) beyond.emplace_back(worker, v.size());
  }
  std::sort(beyond.begin(), beyond.end());
  size_t workers = base_workers_;
  uint64_t grants = grant_count_ - far_grants_;
  for (const auto& [id, n] : beyond) {
    grants += n;
    const auto w = static_cast<uint64_t>(id);
    if (w < DenseLimit(workers) || w < 8 * grants + 4096) workers = static_cast<size_t>(w) + 1;
  }
  const size_t old_segments = segments_.size();
  ExtendBase(workers);  // the covered overflow workers become moved workers of their segments
  const size_t first = old_segments > 0 ? old_segments - 1 : 0;
  for (size_t i = first; i < segments_.size(); ++i) CompactSegment(i);
  far_after_absorb_ = far_grants_;
}

void GrantIndex::Compact() {
  AbsorbFar();
  for (size_t i = 0; i < segments_.size(); ++i) CompactSegment(i);
  for (Segment& s : segments_) {
    s.entries.ShrinkToFit();
    s.offsets.ShrinkToFit();
  }
  segments_.shrink_to_fit();
  moved_.shrink_to_fit();
  if (overflow_.empty()) std::unordered_map<WorkerId, std::vector<Entry>>().swap(overflow_);
}

void GrantIndex::Clear() {
  std::vector<Segment>().swap(segments_);
  base_workers_ = 0;
  std::vector<uint64_t>().swap(moved_);
  std::unordered_map<WorkerId, std::vector<Entry>>().swap(overflow_);
  big_quals_.clear();
  far_grants_ = 0;
  far_after_absorb_ = 0;
  worker_count_ = 0;
  grant_count_ = 0;
}

GrantIndex::Stats GrantIndex::stats() const {
  Stats s;
  s.base_workers = base_workers_;
  s.segments = segments_.size();
  s.overflow_workers = overflow_.size();
  s.overflow_grants = far_grants_;
  s.bytes = segments_.capacity() * sizeof(Segment) + moved_.capacity() * sizeof(uint64_t) +
            overflow_.bucket_count() * sizeof(void*) + big_quals_.capacity() * sizeof(QualId);
  for (const Segment& seg : segments_) {
    s.base_slots += seg.entries.size();
    s.dead_slots += seg.dead;
    s.overflow_grants += seg.overflow;
    s.bytes += seg.offsets.bytes() + seg.entries.bytes();
  }
  for (const auto& [worker, v] : overflow_) {
    // A node: next pointer, key, vector header; plus the vector's block.
    s.bytes += sizeof(void*) + sizeof(WorkerId) + sizeof(std::vector<Entry>) + v.capacity() * sizeof(Entry);
  }
  return s;
}

}  // namespace crowdgate
