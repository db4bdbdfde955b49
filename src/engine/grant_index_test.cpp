#include "engine/grant_index.hpp"

#include <climits>

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

}  // namespace
}  // namespace crowdgate
