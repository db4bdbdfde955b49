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
bool EntryLess(const GrantIndex::Entry& e, QualId q) { return e.qual_id < q; }
}  // namespace

std::vector<GrantIndex::Entry>& GrantIndex::MutableGrants(WorkerId worker) {
  if (worker > 0 && static_cast<uint64_t>(worker) >= dense_.size()) {
    // Grow the dense range when the id is near it (ids are handed out in order); move the
    // sparse workers it now covers so every worker lives in exactly one place.
    const uint64_t limit = 2 * static_cast<uint64_t>(dense_.size()) + 4096;
    if (static_cast<uint64_t>(worker) < limit) {
      dense_.resize(std::max<size_t>(static_cast<size_t>(worker) + 1, dense_.size() + dense_.size() / 2));
      for (auto it = sparse_.begin(); it != sparse_.end();) {
        if (it->first > 0 && static_cast<uint64_t>(it->first) < dense_.size()) {
          dense_[static_cast<size_t>(it->first)] = std::move(it->second);
          it = sparse_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  if (worker > 0 && static_cast<uint64_t>(worker) < dense_.size()) return dense_[static_cast<size_t>(worker)];
  return sparse_[worker];
}

void GrantIndex::Erased(WorkerId worker) {
  --worker_count_;
  if (worker > 0 && static_cast<uint64_t>(worker) < dense_.size()) {
    std::vector<Entry>().swap(dense_[static_cast<size_t>(worker)]);
  } else {
    sparse_.erase(worker);
  }
}

void GrantIndex::Set(WorkerId worker, QualId qual, int64_t value, int64_t expires_at, int32_t flags) {
  auto& v = MutableGrants(worker);
  auto it = std::lower_bound(v.begin(), v.end(), qual, EntryLess);
  if (it != v.end() && it->qual_id == qual) {
    it->value = value;
    it->expires_at = expires_at;
    it->flags = flags;
    return;
  }
  if (v.empty()) ++worker_count_;
  v.insert(it, Entry{qual, value, expires_at, flags});
  ++grant_count_;
}

void GrantIndex::Remove(WorkerId worker, QualId qual) {
  const std::vector<Entry>* found = Grants(worker);
  if (found == nullptr || found->empty()) return;
  auto& v = const_cast<std::vector<Entry>&>(*found);
  auto it = std::lower_bound(v.begin(), v.end(), qual, EntryLess);
  if (it != v.end() && it->qual_id == qual) {
    v.erase(it);
    --grant_count_;
    if (v.empty()) Erased(worker);
  }
}

void GrantIndex::RemoveQualification(QualId qual) {
  auto drop = [&](std::vector<Entry>& v) {
    auto e = std::lower_bound(v.begin(), v.end(), qual, EntryLess);
    if (e == v.end() || e->qual_id != qual) return false;
    v.erase(e);
    --grant_count_;
    return v.empty();
  };
  for (auto& v : dense_) {
    if (!v.empty() && drop(v)) {
      --worker_count_;
      std::vector<Entry>().swap(v);
    }
  }
  for (auto it = sparse_.begin(); it != sparse_.end();) {
    if (drop(it->second)) {
      --worker_count_;
      it = sparse_.erase(it);
    } else {
      ++it;
    }
  }
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

void GrantIndex::Compact() {
  for (auto& v : dense_) {
    if (v.capacity() > v.size()) v.shrink_to_fit();
  }
  for (auto& [worker, v] : sparse_) {
    if (v.capacity() > v.size()) v.shrink_to_fit();
  }
}

void GrantIndex::Clear() {
  dense_.clear();
  dense_.shrink_to_fit();
  sparse_.clear();
  worker_count_ = 0;
  grant_count_ = 0;
}

const GrantIndex::Entry* GrantIndex::Find(WorkerId worker, QualId qual, int64_t now) const {
  const std::vector<Entry>* found = Grants(worker);
  if (found == nullptr) return nullptr;
  const auto& v = *found;
  auto it = std::lower_bound(v.begin(), v.end(), qual, EntryLess);
  if (it == v.end() || it->qual_id != qual || it->expires_at <= now) return nullptr;
  return &*it;
}

std::optional<int64_t> GrantIndex::Value(WorkerId worker, QualId qual, int64_t now) const {
  const Entry* e = Find(worker, qual, now);
  if (e == nullptr) return std::nullopt;
  return e->value;
}

EligibilityResult GrantIndex::Check(WorkerId worker, uint32_t provider_bit,
                                    const std::vector<CompiledRequirement>& reqs, int64_t now) const {
  static const std::vector<Entry> kNone;
  const std::vector<Entry>* found = Grants(worker);
  const std::vector<Entry>& grants = found == nullptr ? kNone : *found;
  for (const auto& req : reqs) {
    if ((req.provider_mask & provider_bit) == 0) continue;
    std::optional<int64_t> granted;
    auto it = std::lower_bound(grants.begin(), grants.end(), req.qual_id, EntryLess);
    if (it != grants.end() && it->qual_id == req.qual_id && it->expires_at > now) granted = it->value;
    if (!EvaluateCompiled(req, granted)) return EligibilityResult{false, req.source_index};
  }
  return EligibilityResult{};
}

}  // namespace crowdgate
