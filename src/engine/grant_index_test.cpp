#include "engine/grant_index.hpp"

#include <climits>
#include <map>
#include <tuple>

#include <rapidcheck.h>

#include <gtest/gtest.h>

namespace crowdgate {
namespace {

AuditEntry SetEntry(WorkerId w, QualId q, int64_t v, std::optional<int64_t> expires = std::nullopt) {
  AuditEntry e;
  e.kind = AuditEntry::Kind::kGrant;
  e.worker_id = w;
  e.qual_id = q;
  e.new_value = v;
  e.new_expires_at = expires;
  return e;
}

CompiledRequirement Req(QualId q, Comparator c, int64_t v = 0, std::vector<int64_t> values = {}) {
  CompiledRequirement r;
  r.qual_id = q;
  r.comparator = c;
  r.value = v;
  r.values = std::move(values);
  return r;
}

TEST(GrantIndexTest, WorkerWithoutGrantPassesOnlyDoesNotExist) {
  GrantIndex index;
  for (Comparator c : AllComparators()) {
    EXPECT_EQ(EvaluateCompiled(Req(1, c, 0, {0}), std::nullopt), c == Comparator::kDoesNotExist)
        << ComparatorName(c);
  }
  EXPECT_FALSE(index.Check(7, ProviderBit("local"), {Req(1, Comparator::kNotEqualTo, 5)}, 0).passed);
  EXPECT_TRUE(index.Check(7, ProviderBit("local"), {Req(1, Comparator::kDoesNotExist)}, 0).passed);
}

TEST(GrantIndexTest, ApplySetChangeRevokeAndDelete) {
  GrantIndex index;
  index.Apply(SetEntry(1, 10, 5));
  index.Apply(SetEntry(1, 11, 6));
  index.Apply(SetEntry(2, 10, 7));
  EXPECT_EQ(index.Value(1, 10, 0), 5);
  EXPECT_EQ(index.grant_count(), 3u);
  AuditEntry change = SetEntry(1, 10, 9);
  change.kind = AuditEntry::Kind::kChange;
  index.Apply(change);
  EXPECT_EQ(index.Value(1, 10, 0), 9);
  EXPECT_EQ(index.grant_count(), 3u);
  AuditEntry revoke;
  revoke.kind = AuditEntry::Kind::kRevoke;
  revoke.worker_id = 1;
  revoke.qual_id = 11;
  index.Apply(revoke);
  EXPECT_EQ(index.Value(1, 11, 0), std::nullopt);
  AuditEntry del;
  del.kind = AuditEntry::Kind::kQualificationDeleted;
  del.qual_id = 10;
  index.Apply(del);
  EXPECT_EQ(index.Value(1, 10, 0), std::nullopt);
  EXPECT_EQ(index.Value(2, 10, 0), std::nullopt);
  EXPECT_EQ(index.grant_count(), 0u);
  EXPECT_EQ(index.worker_count(), 0u);
}

TEST(GrantIndexTest, ExpiredGrantCountsAsAbsent) {
  GrantIndex index;
  index.Apply(SetEntry(1, 10, 5, /*expires=*/1000));
  EXPECT_EQ(index.Value(1, 10, 999), 5);
  EXPECT_EQ(index.Value(1, 10, 1000), std::nullopt);
  EXPECT_TRUE(index.Check(1, ProviderBit("local"), {Req(10, Comparator::kDoesNotExist)}, 1000).passed);
  EXPECT_FALSE(index.Check(1, ProviderBit("local"), {Req(10, Comparator::kExists)}, 1000).passed);
}

TEST(GrantIndexTest, CheckReportsFirstFailingRequirementAndRespectsProviders) {
  GrantIndex index;
  index.Apply(SetEntry(1, 10, 85));
  std::vector<CompiledRequirement> reqs = {Req(10, Comparator::kGreaterThanOrEqualTo, 80),
                                           Req(11, Comparator::kExists)};
  reqs[1].source_index = 1;
  auto r = index.Check(1, ProviderBit("local"), reqs, 0);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.failed_index, 1);
  reqs[1].provider_mask = ProviderBit("mturk");  // applies to MTurk workers only
  EXPECT_TRUE(index.Check(1, ProviderBit("local"), reqs, 0).passed);
  EXPECT_FALSE(index.Check(1, ProviderBit("mturk"), reqs, 0).passed);
}

TEST(GrantIndexTest, InAndNotInUseTheList) {
  GrantIndex index;
  index.Apply(SetEntry(1, 10, 3));
  EXPECT_TRUE(index.Check(1, ProviderBit("local"), {Req(10, Comparator::kIn, 0, {1, 3, 5})}, 0).passed);
  EXPECT_FALSE(index.Check(1, ProviderBit("local"), {Req(10, Comparator::kNotIn, 0, {1, 3, 5})}, 0).passed);
  EXPECT_TRUE(index.Check(1, ProviderBit("local"), {Req(10, Comparator::kNotIn, 0, {2, 4})}, 0).passed);
}

// ---- the flat base, the overflow and compaction ---------------------------------

Grant LoadGrant(WorkerId w, QualId q, int64_t v, std::optional<int64_t> expires = std::nullopt) {
  Grant g;
  g.worker_id = w;
  g.qual_id = q;
  g.value = v;
  g.expires_at = expires;
  return g;
}

AuditEntry RevokeEntry(WorkerId w, QualId q) {
  AuditEntry e;
  e.kind = AuditEntry::Kind::kRevoke;
  e.worker_id = w;
  e.qual_id = q;
  return e;
}

AuditEntry DeleteEntry(QualId q) {
  AuditEntry e;
  e.kind = AuditEntry::Kind::kQualificationDeleted;
  e.qual_id = q;
  return e;
}

TEST(GrantIndexTest, EntryIsPacked) { EXPECT_EQ(sizeof(GrantIndex::Entry), 24u); }

TEST(GrantIndexTest, OrderedBulkLoadIsFlat) {
  GrantIndex index;
  for (WorkerId w = 1; w <= 1000; ++w) {
    for (QualId q = 1; q <= 5; ++q) index.Load(LoadGrant(w, q, w * 10 + q));
  }
  index.Compact();
  const auto s = index.stats();
  EXPECT_EQ(s.base_workers, 1001u);
  EXPECT_EQ(s.base_slots, 5000u);
  EXPECT_EQ(s.dead_slots, 0u);
  EXPECT_EQ(s.overflow_workers, 0u);
  // 24 bytes a grant, 4 a worker id, a bit per worker id; no per-worker allocation.
  EXPECT_LE(s.bytes, 5000u * 24 + 1002u * 4 + 1024);
  EXPECT_EQ(index.grant_count(), 5000u);
  EXPECT_EQ(index.worker_count(), 1000u);
  EXPECT_EQ(index.Value(1, 1, 0), 11);
  EXPECT_EQ(index.Value(1000, 5, 0), 10005);
  EXPECT_EQ(index.Value(1000, 6, 0), std::nullopt);
  EXPECT_EQ(index.Value(1001, 1, 0), std::nullopt);
  EXPECT_EQ(index.Value(0, 1, 0), std::nullopt);
  EXPECT_EQ(index.Value(-1, 1, 0), std::nullopt);
}

TEST(GrantIndexTest, ChangesInPlaceRevokesLeaveTombstonesNewGrantsOverflowAndCompactionMergesBack) {
  GrantIndex index;
  for (WorkerId w = 1; w <= 10; ++w) {
    for (QualId q : {2, 4, 6}) index.Load(LoadGrant(w, q, q));
  }
  // A changed value stays in place.
  index.Apply(SetEntry(3, 4, 40, /*expires=*/500));
  EXPECT_EQ(index.Value(3, 4, 0), 40);
  EXPECT_EQ(index.Value(3, 4, 500), std::nullopt);
  EXPECT_EQ(index.stats().overflow_workers, 0u);
  // A revoke leaves a dead slot, which a later grant of the same qualification reuses.
  index.Apply(RevokeEntry(5, 2));
  EXPECT_EQ(index.Value(5, 2, 0), std::nullopt);
  EXPECT_EQ(index.stats().dead_slots, 1u);
  EXPECT_EQ(index.grant_count(), 29u);
  index.Apply(SetEntry(5, 2, 22));
  EXPECT_EQ(index.Value(5, 2, 0), 22);
  EXPECT_EQ(index.stats().dead_slots, 0u);
  EXPECT_EQ(index.grant_count(), 30u);
  // A new qualification for a worker in the middle moves its run to the overflow.
  index.Apply(SetEntry(4, 3, 33));
  auto s = index.stats();
  EXPECT_EQ(s.overflow_workers, 1u);
  EXPECT_EQ(s.overflow_grants, 4u);
  EXPECT_EQ(s.dead_slots, 3u);
  for (QualId q : {2, 3, 4, 6}) EXPECT_TRUE(index.Value(4, q, 0).has_value()) << q;
  // ... the last worker of the base and new workers just past it are appended.
  index.Apply(SetEntry(10, 7, 77));
  index.Apply(SetEntry(12, 1, 121));
  s = index.stats();
  EXPECT_EQ(s.overflow_workers, 1u);
  EXPECT_EQ(s.base_workers, 13u);
  EXPECT_EQ(index.Value(10, 7, 0), 77);
  EXPECT_EQ(index.Value(12, 1, 0), 121);
  EXPECT_EQ(index.Value(11, 1, 0), std::nullopt);
  // Workers far off stay in the overflow, whatever the compaction.
  index.Apply(SetEntry(1'000'000'000'000, 1, 5));
  index.Apply(SetEntry(-4, 1, 6));
  EXPECT_EQ(index.worker_count(), 13u);
  EXPECT_EQ(index.grant_count(), 35u);

  index.Compact();
  s = index.stats();
  EXPECT_EQ(s.dead_slots, 0u);
  EXPECT_EQ(s.overflow_workers, 2u);
  EXPECT_EQ(s.overflow_grants, 2u);
  EXPECT_EQ(s.base_slots, 33u);
  EXPECT_EQ(index.worker_count(), 13u);
  EXPECT_EQ(index.grant_count(), 35u);
  EXPECT_EQ(index.Value(3, 4, 0), 40);
  EXPECT_EQ(index.Value(3, 4, 500), std::nullopt);
  EXPECT_EQ(index.Value(4, 3, 0), 33);
  EXPECT_EQ(index.Value(5, 2, 0), 22);
  EXPECT_EQ(index.Value(10, 7, 0), 77);
  EXPECT_EQ(index.Value(12, 1, 0), 121);
  EXPECT_EQ(index.Value(1'000'000'000'000, 1, 0), 5);
  EXPECT_EQ(index.Value(-4, 1, 0), 6);
  // After compaction the worker is back in the base: a new grant for it overflows again.
  index.Apply(SetEntry(4, 5, 55));
  EXPECT_EQ(index.stats().overflow_workers, 3u);
  EXPECT_EQ(index.Value(4, 5, 0), 55);
}

TEST(GrantIndexTest, FlagsAndLargeOrNegativeQualificationIds) {
  GrantIndex index;
  const QualId big = QualId{1} << 40;
  index.Load(LoadGrant(1, 1, 1), /*flags=*/1);
  index.Load(LoadGrant(1, big, 2), /*flags=*/0);
  index.Apply(SetEntry(1, -7, 3), /*flags=*/1);
  index.Apply(SetEntry(2, big + 1, 4));
  ASSERT_NE(index.Find(1, 1, 0), nullptr);
  EXPECT_EQ(index.Find(1, 1, 0)->flags, 1);
  EXPECT_EQ(index.Find(1, big, 0)->flags, 0);
  EXPECT_EQ(index.Value(1, big, 0), 2);
  EXPECT_EQ(index.Value(1, -7, 0), 3);
  EXPECT_EQ(index.Value(1, big + 1, 0), std::nullopt);
  EXPECT_EQ(index.Value(2, big + 1, 0), 4);
  EXPECT_EQ(index.Value(2, big + 2, 0), std::nullopt);  // an id never seen
  EXPECT_TRUE(index.Check(1, ProviderBit("local"), {Req(big, Comparator::kEqualTo, 2)}, 0).passed);
  EXPECT_TRUE(index.Check(1, ProviderBit("local"), {Req(big + 2, Comparator::kDoesNotExist)}, 0).passed);
  index.Apply(DeleteEntry(big));
  EXPECT_EQ(index.Value(1, big, 0), std::nullopt);
  EXPECT_EQ(index.grant_count(), 3u);
}

TEST(GrantIndexTest, FirstWorkerIdFarFromZeroEndsUpInTheBase) {
  // Worker ids need not start at 1 (workers without grants are not loaded).
  // The first ones land in the overflow; once they are dense enough a compaction takes them
  // into the base, and the rest is appended.
  GrantIndex index;
  index.set_compaction_floor(64);
  for (WorkerId w = 5000; w < 25'000; ++w) {
    for (QualId q = 1; q <= 3; ++q) index.Load(LoadGrant(w, q, q));
  }
  index.Compact();
  const auto s = index.stats();
  EXPECT_EQ(s.overflow_workers, 0u);
  EXPECT_EQ(s.base_slots, 60'000u);
  EXPECT_EQ(index.Value(5000, 1, 0), 1);
  EXPECT_EQ(index.Value(15'000, 2, 0), 2);
  EXPECT_EQ(index.worker_count(), 20'000u);
}

TEST(GrantIndexTest, CopiesAndMovesAreIndependent) {
  GrantIndex a;
  for (WorkerId w = 1; w <= 50; ++w) a.Load(LoadGrant(w, 1, w));
  a.Apply(SetEntry(7, 2, 70));
  GrantIndex b = a;
  b.Apply(SetEntry(7, 2, 71));
  b.Apply(RevokeEntry(8, 1));
  EXPECT_EQ(a.Value(7, 2, 0), 70);
  EXPECT_EQ(a.Value(8, 1, 0), 8);
  EXPECT_EQ(b.Value(7, 2, 0), 71);
  EXPECT_EQ(b.Value(8, 1, 0), std::nullopt);
  GrantIndex c = std::move(b);
  EXPECT_EQ(c.Value(7, 2, 0), 71);
  EXPECT_EQ(c.grant_count(), 50u);
  a = c;
  EXPECT_EQ(a.Value(8, 1, 0), std::nullopt);
  a.Clear();
  EXPECT_EQ(a.grant_count(), 0u);
  EXPECT_EQ(a.Value(7, 2, 0), std::nullopt);
  EXPECT_EQ(c.Value(7, 2, 0), 71);
}

TEST(GrantIndexTest, SegmentsCompactOneAtATime) {
  // 3 segments of 8192 worker ids; churn in the middle one is merged back there alone.
  GrantIndex index;
  for (WorkerId w = 1; w <= 20'000; ++w) {
    for (QualId q : {2, 4}) index.Load(LoadGrant(w, q, w + q));
  }
  index.Compact();
  EXPECT_EQ(index.stats().segments, 3u);
  for (WorkerId w = 8192; w < 8192 + 2000; ++w) index.Apply(SetEntry(w, 3, -w));  // each moves a worker
  auto s = index.stats();
  EXPECT_LT(s.overflow_workers, 2000u);   // compactions happened on the way...
  EXPECT_LT(s.dead_slots, 2048u + 16);    // ...none waiting more than an eighth of the segment
  EXPECT_EQ(index.grant_count(), 42'000u);
  for (WorkerId w : {WorkerId{1}, WorkerId{8191}, WorkerId{8192}, WorkerId{10'191}, WorkerId{10'192}, WorkerId{16'383},
                     WorkerId{16'384}, WorkerId{20'000}}) {
    EXPECT_EQ(index.Value(w, 2, 0), w + 2) << w;
    EXPECT_EQ(index.Value(w, 4, 0), w + 4) << w;
    EXPECT_EQ(index.Value(w, 3, 0), w >= 8192 && w < 10'192 ? std::optional<int64_t>(-w) : std::nullopt) << w;
  }
  // New workers past the end keep being appended to the last segment, then to new ones.
  for (WorkerId w = 20'001; w <= 30'000; ++w) index.Apply(SetEntry(w, 1, w));
  s = index.stats();
  EXPECT_EQ(s.segments, 4u);
  EXPECT_EQ(s.base_workers, 30'001u);
  EXPECT_EQ(index.Value(30'000, 1, 0), 30'000);
  index.Compact();
  s = index.stats();
  EXPECT_EQ(s.overflow_workers, 0u);
  EXPECT_EQ(s.dead_slots, 0u);
  EXPECT_EQ(s.base_slots, 52'000u);
  EXPECT_EQ(index.worker_count(), 30'000u);
}

// Property: whatever the sequence of loads, grants, changes, revokes, qualification deletes and
// compactions (automatic ones included, with a tiny floor), the index answers exactly as a plain
// map of worker -> qualification -> grant does.
struct ModelGrant {
  int64_t value;
  int64_t expires_at;
  int32_t flags;
};

struct Model {
  std::map<WorkerId, std::map<QualId, ModelGrant>> grants;  // no empty inner maps
  size_t count = 0;

  void Set(WorkerId w, QualId q, ModelGrant g) {
    auto& m = grants[w];
    count += m.count(q) == 0 ? 1 : 0;
    m[q] = g;
  }
  void Erase(WorkerId w, QualId q) {
    auto it = grants.find(w);
    if (it == grants.end() || it->second.erase(q) == 0) return;
    --count;
    if (it->second.empty()) grants.erase(it);
  }
  const ModelGrant* Find(WorkerId w, QualId q) const {
    auto it = grants.find(w);
    if (it == grants.end()) return nullptr;
    auto g = it->second.find(q);
    return g == it->second.end() ? nullptr : &g->second;
  }
};

TEST(GrantIndexTest, AgreesWithAMapModel) {
  const bool ok = rc::check("GrantIndex agrees with a map", [] {
    // Ids at the ends of segments (8192 ids each), far past a small base until one in between
    // (3000, 7000) brings them within reach, far past any base, zero and negative.
    const std::vector<WorkerId> workers = {0,  1,  2,    3,    4,    5,    6,    7,      8,      9,      10,
                                           11, 40, 3000, 5000, 7000, 8191, 8192, 8193,   16'383, 16'384, 19'999,
                                           -3, 1'000'000'000'000};
    const std::vector<QualId> quals = {1, 2, 3, 4, 5, QualId{1} << 33, -2};
    GrantIndex index;
    index.set_compaction_floor(*rc::gen::inRange<size_t>(1, 12));
    Model model;

    // A bulk load in store order (sorted): a few workers with random grants, or 20,000 workers
    // (three segments) with one grant each.
    const bool wide = *rc::gen::inRange(0, 4) == 0;
    const int load_workers = wide ? 20'000 : *rc::gen::inRange(0, 12);
    for (WorkerId w = 1; w <= load_workers; ++w) {
      for (QualId q = 1; q <= 5; ++q) {
        if (wide ? q != 1 + w % 5 : *rc::gen::inRange(0, 3) == 0) continue;
        const int64_t v = wide ? w % 7 : *rc::gen::inRange<int64_t>(-5, 6);
        index.Load(LoadGrant(w, q, v));
        model.Set(w, q, ModelGrant{v, INT64_MAX, 0});
      }
    }
    if (*rc::gen::arbitrary<bool>()) index.Compact();

    const int steps = *rc::gen::inRange(1, 80);
    for (int i = 0; i < steps; ++i) {
      const int kind = *rc::gen::inRange(0, 10);
      const WorkerId w = *rc::gen::elementOf(workers);
      const QualId q = *rc::gen::elementOf(quals);
      if (kind <= 4) {  // grant or change, sometimes expiring, sometimes tagged
        const int64_t v = *rc::gen::inRange<int64_t>(-5, 6);
        const int32_t flags = *rc::gen::inRange(0, 2);
        std::optional<int64_t> expires;
        if (*rc::gen::inRange(0, 3) == 0) expires = *rc::gen::inRange<int64_t>(0, 20);
        AuditEntry e = SetEntry(w, q, v, expires);
        if (model.Find(w, q) != nullptr) e.kind = AuditEntry::Kind::kChange;
        index.Apply(e, flags);
        model.Set(w, q, ModelGrant{v, expires.value_or(INT64_MAX), flags});
      } else if (kind == 5) {  // an unordered Load (a replay)
        const int64_t v = *rc::gen::inRange<int64_t>(-5, 6);
        index.Load(LoadGrant(w, q, v));
        model.Set(w, q, ModelGrant{v, INT64_MAX, 0});
      } else if (kind <= 7) {
        index.Apply(RevokeEntry(w, q));
        model.Erase(w, q);
      } else if (kind == 8) {
        if (*rc::gen::inRange(0, 4) == 0) {
          index.Apply(DeleteEntry(q));
          std::vector<WorkerId> holders;
          for (const auto& [mw, m] : model.grants) {
            if (m.count(q) != 0) holders.push_back(mw);
          }
          for (WorkerId mw : holders) model.Erase(mw, q);
        } else {  // a change entry without a value removes too
          AuditEntry e = SetEntry(w, q, 0);
          e.kind = AuditEntry::Kind::kChange;
          e.new_value.reset();
          index.Apply(e);
          model.Erase(w, q);
        }
      } else {
        index.Compact();
      }

      RC_ASSERT(index.grant_count() == model.count);
      RC_ASSERT(index.worker_count() == model.grants.size());
      for (const int64_t now : {int64_t{0}, int64_t{10}, int64_t{25}}) {
        for (WorkerId cw : workers) {
          std::vector<CompiledRequirement> reqs;
          for (QualId cq : quals) {
            const ModelGrant* g = model.Find(cw, cq);
            const bool live = g != nullptr && g->expires_at > now;
            const GrantIndex::Entry* e = index.Find(cw, cq, now);
            RC_ASSERT((e != nullptr) == live);
            if (live) {
              RC_ASSERT(e->value == g->value);
              RC_ASSERT(e->expires_at == g->expires_at);
              RC_ASSERT(e->flags == g->flags);
            }
            RC_ASSERT(index.Value(cw, cq, now) == (live ? std::optional<int64_t>(g->value) : std::nullopt));
            CompiledRequirement r =
                Req(cq, live ? Comparator::kEqualTo : Comparator::kDoesNotExist, live ? g->value : 0);
            r.source_index = static_cast<int>(reqs.size());
            reqs.push_back(r);
          }
          RC_ASSERT(index.Check(cw, ProviderBit("local"), reqs, now).passed);
          // The same requirements negated fail at the first one.
          for (auto& r : reqs) {
            r.comparator = r.comparator == Comparator::kEqualTo ? Comparator::kNotEqualTo : Comparator::kExists;
          }
          const EligibilityResult fail = index.Check(cw, ProviderBit("local"), reqs, now);
          RC_ASSERT(!fail.passed);
          RC_ASSERT(fail.failed_index == 0);
        }
      }
      // A sample of the bulk-loaded workers too.
      if (wide) {
        for (WorkerId cw = 1; cw <= 20'000; cw += 997) {
          for (QualId cq = 1; cq <= 5; ++cq) {
            const ModelGrant* g = model.Find(cw, cq);
            RC_ASSERT(index.Value(cw, cq, 0) == (g != nullptr && g->expires_at > 0 ? std::optional<int64_t>(g->value)
                                                                                  : std::nullopt));
          }
        }
      }
    }
  });
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace crowdgate
