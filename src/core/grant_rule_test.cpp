#include "core/grant_rule.hpp"

#include <gtest/gtest.h>
#include <rapidcheck.h>

namespace crowdgate {
namespace {

constexpr int64_t kNow = 1'000'000;
constexpr int64_t kEarlier = 400;

using Write = GrantStep::Write;
using Kind = AuditEntry::Kind;

GrantOp Op(GrantOp::Kind kind, int64_t value = 1, std::optional<int64_t> expires = std::nullopt) {
  GrantOp op;
  op.kind = kind;
  op.worker = WorkerRef{"local", "alice"};
  op.qual_id = 7;
  op.value = value;
  op.expires_at = expires;
  return op;
}

// A grant that is current at kNow, expiring later.
StoredGrant Current(int64_t value = 5, std::optional<int64_t> expires = kNow + 100) {
  return StoredGrant{value, kEarlier, expires};
}
// A grant whose expiry has passed by kNow.
StoredGrant Expired(int64_t value = 5) { return StoredGrant{value, kEarlier, kNow - 1}; }

void ExpectFresh(const GrantStep& s, Write write, int64_t value, std::optional<int64_t> expires) {
  EXPECT_EQ(s.write, write);
  EXPECT_EQ(s.row, (StoredGrant{value, kNow, expires}));
  EXPECT_EQ(s.audit_kind, Kind::kGrant);
  EXPECT_FALSE(s.old_value.has_value());
  EXPECT_EQ(s.new_value, value);
  EXPECT_EQ(s.new_expires_at, expires);
}

TEST(GrantRuleTest, SetOnNothingInsertsAFreshGrant) {
  ExpectFresh(DecideGrantStep(Op(GrantOp::Kind::kSet, 3, kNow + 50), std::nullopt, kNow), Write::kInsert, 3,
              kNow + 50);
}

TEST(GrantRuleTest, SetOnACurrentGrantReplacesValueAndExpiryAndKeepsGrantedAt) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kSet, 3), Current(5), kNow);
  EXPECT_EQ(s.write, Write::kUpdate);
  EXPECT_EQ(s.row, (StoredGrant{3, kEarlier, std::nullopt}));
  EXPECT_EQ(s.audit_kind, Kind::kChange);
  EXPECT_EQ(s.old_value, 5);
  EXPECT_EQ(s.new_value, 3);
  EXPECT_FALSE(s.new_expires_at.has_value());
}

TEST(GrantRuleTest, SetRepeatingTheSameGrantIsStillAChange) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kSet, 5, kNow + 100), Current(5, kNow + 100), kNow);
  EXPECT_EQ(s.write, Write::kUpdate);
  EXPECT_EQ(s.audit_kind, Kind::kChange);
  EXPECT_EQ(s.old_value, 5);
  EXPECT_EQ(s.new_value, 5);
}

TEST(GrantRuleTest, SetOnAnExpiredGrantOverwritesItAsAFreshGrant) {
  ExpectFresh(DecideGrantStep(Op(GrantOp::Kind::kSet, 3), Expired(5), kNow), Write::kUpdate, 3, std::nullopt);
}

TEST(GrantRuleTest, AddOnNothingStartsFromZeroWithTheOpsExpiry) {
  ExpectFresh(DecideGrantStep(Op(GrantOp::Kind::kAdd, 2, kNow + 9), std::nullopt, kNow), Write::kInsert, 2, kNow + 9);
}

TEST(GrantRuleTest, AddOnACurrentGrantAddsAndKeepsItsExpiry) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kAdd, 2, kNow + 999), Current(5, kNow + 100), kNow);
  EXPECT_EQ(s.write, Write::kUpdate);
  EXPECT_EQ(s.row, (StoredGrant{7, kEarlier, kNow + 100}));
  EXPECT_EQ(s.audit_kind, Kind::kChange);
  EXPECT_EQ(s.old_value, 5);
  EXPECT_EQ(s.new_value, 7);
  EXPECT_EQ(s.new_expires_at, kNow + 100);
}

TEST(GrantRuleTest, AddKeepsANeverExpiringCounterNeverExpiring) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kAdd, -1, kNow + 10), Current(5, std::nullopt), kNow);
  EXPECT_EQ(s.row, (StoredGrant{4, kEarlier, std::nullopt}));
  EXPECT_FALSE(s.new_expires_at.has_value());
}

TEST(GrantRuleTest, AddOnAnExpiredGrantStartsFromZero) {
  ExpectFresh(DecideGrantStep(Op(GrantOp::Kind::kAdd, 2, kNow + 9), Expired(5), kNow), Write::kUpdate, 2, kNow + 9);
}

TEST(GrantRuleTest, RevokeOfNothingChangesNothing) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kRevoke), std::nullopt, kNow);
  EXPECT_EQ(s.write, Write::kNone);
}

TEST(GrantRuleTest, RevokeDeletesACurrentGrant) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kRevoke), Current(5), kNow);
  EXPECT_EQ(s.write, Write::kDelete);
  EXPECT_EQ(s.audit_kind, Kind::kRevoke);
  EXPECT_EQ(s.old_value, 5);
  EXPECT_FALSE(s.new_value.has_value());
  EXPECT_FALSE(s.new_expires_at.has_value());
}

TEST(GrantRuleTest, RevokeDeletesAnExpiredGrantAndLogsItsValue) {
  GrantStep s = DecideGrantStep(Op(GrantOp::Kind::kRevoke), Expired(5), kNow);
  EXPECT_EQ(s.write, Write::kDelete);
  EXPECT_EQ(s.audit_kind, Kind::kRevoke);
  EXPECT_EQ(s.old_value, 5);
  EXPECT_FALSE(s.new_value.has_value());
}

// The expiry sweep's revoke: only the grant it read, still expired.
TEST(GrantRuleTest, ConditionalRevokeDeletesOnlyTheStillExpiredGrant) {
  GrantOp op = Op(GrantOp::Kind::kRevoke);
  op.revoke_if_expires_at = kNow - 1;
  GrantStep s = DecideGrantStep(op, Expired(5), kNow);  // expires_at kNow - 1: the one read
  EXPECT_EQ(s.write, Write::kDelete);
  EXPECT_EQ(s.audit_kind, Kind::kRevoke);
  EXPECT_EQ(s.old_value, 5);
  const StoredGrant at_now{5, kEarlier, kNow};  // expires at its expiry, not after
  op.revoke_if_expires_at = kNow;
  EXPECT_EQ(DecideGrantStep(op, at_now, kNow).write, Write::kDelete);

  op.revoke_if_expires_at = kNow - 1;
  EXPECT_EQ(DecideGrantStep(op, std::nullopt, kNow).write, Write::kNone);  // revoked already
  EXPECT_EQ(DecideGrantStep(op, Current(5, kNow + 100), kNow).write, Write::kNone);  // renewed with a new expiry
  EXPECT_EQ(DecideGrantStep(op, Current(5, std::nullopt), kNow).write, Write::kNone);  // renewed for good
  EXPECT_EQ(DecideGrantStep(op, StoredGrant{5, kEarlier, kNow - 7}, kNow).write, Write::kNone);  // another expiry
  op.revoke_if_expires_at = kNow + 100;  // asked about a grant that has not expired yet
  EXPECT_EQ(DecideGrantStep(op, Current(5, kNow + 100), kNow).write, Write::kNone);
}

TEST(GrantRuleTest, AGrantExpiresAtItsExpiryNotAfter) {
  const StoredGrant at_now{5, kEarlier, kNow};
  EXPECT_EQ(DecideGrantStep(Op(GrantOp::Kind::kAdd, 1), at_now, kNow).audit_kind, Kind::kGrant);
  const StoredGrant just_after{5, kEarlier, kNow + 1};
  EXPECT_EQ(DecideGrantStep(Op(GrantOp::Kind::kAdd, 1), just_after, kNow).audit_kind, Kind::kChange);
}

TEST(GrantRuleTest, FillAuditCopiesTheEntryFields) {
  AuditEntry e;
  e.actor = "kept";
  DecideGrantStep(Op(GrantOp::Kind::kAdd, 2), Current(5, kNow + 100), kNow).FillAudit(&e);
  EXPECT_EQ(e.kind, Kind::kChange);
  EXPECT_EQ(e.old_value, 5);
  EXPECT_EQ(e.new_value, 7);
  EXPECT_EQ(e.new_expires_at, kNow + 100);
  EXPECT_EQ(e.actor, "kept");
  DecideGrantStep(Op(GrantOp::Kind::kRevoke), Current(5), kNow).FillAudit(&e);
  EXPECT_EQ(e.kind, Kind::kRevoke);
  EXPECT_EQ(e.old_value, 5);
  EXPECT_FALSE(e.new_value.has_value());
  EXPECT_FALSE(e.new_expires_at.has_value());
}

TEST(GrantRuleTest, AnExpiredGrantActsAsNoneExceptThatItsRowIsOverwritten) {
  EXPECT_TRUE(rc::check("set/add over an expired grant == over no grant, but kUpdate", [] {
    std::optional<int64_t> op_expires;
    if (*rc::gen::arbitrary<bool>()) op_expires = *rc::gen::inRange<int64_t>(0, 2 * kNow);
    const GrantOp op = Op(*rc::gen::element(GrantOp::Kind::kSet, GrantOp::Kind::kAdd),
                          *rc::gen::inRange<int64_t>(-1000, 1000), op_expires);
    const StoredGrant expired{*rc::gen::inRange<int64_t>(-1000, 1000), *rc::gen::inRange<int64_t>(0, kNow),
                              *rc::gen::inRange<int64_t>(0, kNow + 1)};
    const GrantStep over_expired = DecideGrantStep(op, expired, kNow);
    const GrantStep over_none = DecideGrantStep(op, std::nullopt, kNow);
    RC_ASSERT(over_expired.write == Write::kUpdate);
    RC_ASSERT(over_none.write == Write::kInsert);
    RC_ASSERT(over_expired.row == over_none.row);
    RC_ASSERT(over_expired.audit_kind == over_none.audit_kind);
    RC_ASSERT(over_expired.old_value == over_none.old_value);
    RC_ASSERT(over_expired.new_value == over_none.new_value);
    RC_ASSERT(over_expired.new_expires_at == over_none.new_expires_at);
  }));
}

}  // namespace
}  // namespace crowdgate
