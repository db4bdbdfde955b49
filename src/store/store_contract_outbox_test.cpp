// The Store contract suite: the provider outbox, secrets, provider state and sessions (see
// store_contract_test.cpp).
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {
namespace {

// ---- provider outbox, secrets, provider state, sessions ------------------------------------------

GrantOp ProlificOp(GrantOp::Kind kind, const std::string& pid, QualId qual, int64_t value = 1,
                   std::optional<int64_t> expires = std::nullopt) {
  return OpFor(kind, WorkerRef{"prolific", pid}, qual, value, expires);
}

OutboxRow NewRow(const std::string& key, const std::string& kind = "approve", const std::string& run_id = "run_a") {
  OutboxRow r;
  r.provider = "prolific";
  r.kind = kind;
  r.run_id = run_id;
  r.order_key = key;
  r.payload_json = R"({"key":")" + key + R"("})";
  return r;
}

std::vector<int64_t> Ids(const std::vector<OutboxRow>& rows) {
  std::vector<int64_t> out;
  for (const OutboxRow& r : rows) out.push_back(r.id);
  return out;
}

// Every outbox row, oldest first.
#define CG_ALL_OUTBOX() (store_->ListOutbox({}, 0, 100000).value())

TEST_P(StoreContractTest, GrantSyncRowsAreWrittenExactlyForProviderVisibleChanges) {
  QualId allow = Qual("allow");
  const int64_t t0 = env_.NowMicros();
  const int64_t expiry = t0 + 3600 * kSec;
  // A first grant to a Prolific participant: one row, with the documented payload.
  ASSERT_EQ(store_->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1, expiry)})->size(), 1u);
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].provider, "prolific");
  EXPECT_EQ(rows[0].kind, "grant_sync");
  EXPECT_EQ(rows[0].run_id, "");
  EXPECT_EQ(rows[0].order_key, "grant:prolific:P1|allow");
  EXPECT_EQ(nlohmann::json::parse(rows[0].payload_json),
            (nlohmann::json{{"worker", "prolific:P1"}, {"qualification", "allow"}, {"value", 1},
                            {"expires_at", expiry}}));
  EXPECT_EQ(rows[0].state, "pending");
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_LE(rows[0].next_attempt_at, t0);  // due at once
  EXPECT_EQ(rows[0].created_at, t0);
  EXPECT_EQ(rows[0].claimed_by, "");
  EXPECT_EQ(rows[0].last_error, "");

  // No row: a local worker, an MTurk worker, --no-sync, a counter, a revoke of nothing.
  GrantOp no_sync = ProlificOp(GrantOp::Kind::kSet, "P2", allow, 1);
  no_sync.provider_sync = false;
  GrantOp mturk = ProlificOp(GrantOp::Kind::kSet, "A1B2", allow, 1);
  mturk.worker.provider = "mturk";
  ASSERT_TRUE(store_
                  ->ApplyGrantOps({Op(GrantOp::Kind::kSet, "alice", allow, 1), mturk, no_sync,
                                   ProlificOp(GrantOp::Kind::kAdd, "P3", allow, 1),
                                   ProlificOp(GrantOp::Kind::kRevoke, "P4", allow)})
                  .ok());
  EXPECT_EQ(CG_ALL_OUTBOX().size(), 1u);
  EXPECT_TRUE(GrantOf(WorkerNamed("P2", "prolific"), allow).has_value());  // the grant itself happened
  EXPECT_TRUE(GrantOf(WorkerNamed("P3", "prolific"), allow).has_value());

  // A changed value, a repeated one (a kChange audit entry, so a row too) and a revoke, in op order.
  ASSERT_EQ(store_
                ->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P1", allow, 2),
                                 ProlificOp(GrantOp::Kind::kSet, "P1", allow, 2),
                                 ProlificOp(GrantOp::Kind::kRevoke, "P1", allow),
                                 ProlificOp(GrantOp::Kind::kRevoke, "P1", allow)})  // nothing left: no row
                ->size(),
            3u);
  rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 4u);
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_GT(rows[i].id, rows[i - 1].id);
    EXPECT_EQ(rows[i].order_key, "grant:prolific:P1|allow");
  }
  EXPECT_EQ(nlohmann::json::parse(rows[1].payload_json)["value"], 2);
  EXPECT_TRUE(nlohmann::json::parse(rows[1].payload_json)["expires_at"].is_null());
  EXPECT_EQ(nlohmann::json::parse(rows[3].payload_json),
            (nlohmann::json{{"worker", "prolific:P1"}, {"qualification", "allow"}, {"value", nullptr},
                            {"expires_at", nullptr}}));
}

TEST_P(StoreContractTest, GrantSyncRowsCommitAndRollBackWithTheirGrants) {
  QualId allow = Qual("allow");
  // A failing batch writes neither grants nor rows.
  EXPECT_TRUE(store_
                  ->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1),
                                   ProlificOp(GrantOp::Kind::kSet, "P1", 424242, 1)})
                  .status()
                  .IsNotFound());
  EXPECT_TRUE(CG_ALL_OUTBOX().empty());

  // FinishAgent's grant ops write rows in its transaction, and none when it fails.
  MakeRun("run_a", "task", 3);
  WorkerId p1 = WorkerNamed("P1", "prolific");
  AgentRecord a = Reserve("run_a", p1);
  AgentFinish bad = Submit(a);
  bad.grant_ops = {ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1), ProlificOp(GrantOp::Kind::kAdd, "P1", 424242)};
  EXPECT_TRUE(store_->FinishAgent(bad).status().IsNotFound());
  EXPECT_TRUE(CG_ALL_OUTBOX().empty());
  AgentFinish good = Submit(a);
  good.grant_ops = {ProlificOp(GrantOp::Kind::kSet, "P1", allow, 1), ProlificOp(GrantOp::Kind::kAdd, "P1", allow)};
  ASSERT_TRUE(store_->FinishAgent(good).ok());
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 1u);  // the kSet; the counter is not synced
  EXPECT_EQ(rows[0].order_key, "grant:prolific:P1|allow");

  // In a batch, a failed step takes its rows with it; the other steps keep theirs.
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P2", allow, 1)}).ok());
  EXPECT_TRUE(store_
                  ->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P3", allow, 1),
                                   ProlificOp(GrantOp::Kind::kSet, "P3", 424242, 1)})
                  .status()
                  .IsNotFound());
  AgentRecord b = Reserve("run_a", WorkerNamed("P4", "prolific"));
  AgentFinish failing = Submit(b);
  failing.grant_ops = {ProlificOp(GrantOp::Kind::kSet, "P4", allow, 1), ProlificOp(GrantOp::Kind::kAdd, "P4", 424242)};
  EXPECT_TRUE(store_->FinishAgent(failing).status().IsNotFound());
  ASSERT_TRUE(store_->EndBatch(/*commit=*/true).ok());
  rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].order_key, "grant:prolific:P2|allow");

  // A batch rolled back as a whole takes its rows with it (where the backend batches at all).
  ASSERT_TRUE(store_->BeginBatch().ok());
  ASSERT_TRUE(store_->ApplyGrantOps({ProlificOp(GrantOp::Kind::kSet, "P5", allow, 1)}).ok());
  (void)store_->EndBatch(/*commit=*/false);
  const bool kept = GrantOf(WorkerNamed("P5", "prolific"), allow).has_value();
  EXPECT_EQ(CG_ALL_OUTBOX().size(), kept ? 3u : 2u);
}

TEST_P(StoreContractTest, GrantSyncRowsForABulkImport) {
  // More rows than any backend writes per statement, interleaved with rows that need none.
  QualId allow = Qual("allow");
  std::vector<GrantOp> ops;
  for (int i = 0; i < 150; ++i) {
    ops.push_back(ProlificOp(GrantOp::Kind::kSet, "P" + std::to_string(i), allow, i));
    if (i % 3 == 0) ops.push_back(Op(GrantOp::Kind::kSet, "w" + std::to_string(i), allow, i));
  }
  ASSERT_TRUE(store_->ApplyGrantOps(ops).ok());
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 150u);
  for (int i = 0; i < 150; ++i) {
    const OutboxRow& r = rows[static_cast<size_t>(i)];
    EXPECT_EQ(r.order_key, "grant:prolific:P" + std::to_string(i) + "|allow");
    EXPECT_EQ(nlohmann::json::parse(r.payload_json)["value"], i);
    if (i > 0) {
      EXPECT_GT(r.id, rows[static_cast<size_t>(i) - 1].id);
    }
  }
}

TEST_P(StoreContractTest, ReviewUnitsWritesItsOutboxRowsInTheSameTransaction) {
  MakeRun("run_a", "task", 2);
  WorkerId p1 = WorkerNamed("P1", "prolific");
  AgentRecord a = Reserve("run_a", p1);
  ASSERT_TRUE(store_->FinishAgent(Submit(a)).ok());
  OutboxRow approve = NewRow("submission:S1", "approve");
  OutboxRow bonus = NewRow("submission:S1", "bonus");
  bonus.progress_json = R"({"step":"none"})";

  // Failures write nothing: an unknown run, a bad status, a bad row.
  EXPECT_TRUE(store_->ReviewUnits("run_nope", {*a.unit_id}, UnitStatus::kAccepted, {approve}).status().IsNotFound());
  EXPECT_TRUE(store_->ReviewUnits("run_a", {*a.unit_id}, UnitStatus::kLaunched, {approve}).status().IsInvalidArgument());
  OutboxRow keyless = approve;
  keyless.order_key = "";
  EXPECT_TRUE(store_->ReviewUnits("run_a", {*a.unit_id}, UnitStatus::kAccepted, {approve, keyless}).status().IsInvalidArgument());
  EXPECT_TRUE(CG_ALL_OUTBOX().empty());
  EXPECT_EQ(store_->GetAgent(a.id)->status, AgentStatus::kCompleted);

  Result<int64_t> n = store_->ReviewUnits("run_a", {*a.unit_id}, UnitStatus::kAccepted, {approve, bonus});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store_->GetAgent(a.id)->status, AgentStatus::kApproved);
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].kind, "approve");
  EXPECT_EQ(rows[1].kind, "bonus");
  EXPECT_LT(rows[0].id, rows[1].id);
  EXPECT_EQ(rows[1].run_id, "run_a");
  EXPECT_EQ(rows[1].payload_json, bonus.payload_json);
  EXPECT_EQ(rows[1].progress_json, R"({"step":"none"})");
  EXPECT_EQ(rows[1].state, "pending");
  EXPECT_EQ(rows[1].created_at, env_.NowMicros());

  // Inside a batch a review is a step like any other: a failing one leaves no rows behind.
  ASSERT_TRUE(store_->BeginBatch().ok());
  EXPECT_TRUE(store_->ReviewUnits("run_nope", {*a.unit_id}, UnitStatus::kRejected, {NewRow("submission:S1", "reject")})
                  .status()
                  .IsNotFound());
  ASSERT_TRUE(store_->EndBatch(true).ok());
  EXPECT_EQ(CG_ALL_OUTBOX().size(), 2u);
}

TEST_P(StoreContractTest, EnqueueOutboxStoresFreshPendingRows) {
  OutboxRow r = NewRow("k1");
  r.state = "done";  // ignored: rows start pending, unattempted and unclaimed
  r.attempts = 7;
  r.claimed_by = "someone";
  r.claimed_until = env_.NowMicros() + 3600 * kSec;
  r.last_error = "old";
  r.next_attempt_at = env_.NowMicros() + 5 * kSec;
  r.created_at = 12345;
  ASSERT_TRUE(store_->EnqueueOutbox({r}).ok());
  std::vector<OutboxRow> rows = CG_ALL_OUTBOX();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_GT(rows[0].id, 0);
  EXPECT_EQ(rows[0].state, "pending");
  EXPECT_EQ(rows[0].attempts, 0);
  EXPECT_EQ(rows[0].claimed_by, "");
  EXPECT_EQ(rows[0].claimed_until, 0);
  EXPECT_EQ(rows[0].last_error, "");
  EXPECT_EQ(rows[0].next_attempt_at, r.next_attempt_at);
  EXPECT_EQ(rows[0].created_at, 12345);
  EXPECT_EQ(rows[0].progress_json, "{}");
  // Not due yet.
  EXPECT_TRUE(store_->ClaimOutbox("a", env_.NowMicros(), 10 * kSec, 10)->empty());
  EXPECT_EQ(store_->ClaimOutbox("a", r.next_attempt_at, 10 * kSec, 10)->size(), 1u);

  // All or nothing: one bad row refuses the lot.
  OutboxRow bad = NewRow("k2");
  bad.provider = "";
  EXPECT_TRUE(store_->EnqueueOutbox({NewRow("k2"), bad}).IsInvalidArgument());
  EXPECT_EQ(CG_ALL_OUTBOX().size(), 1u);
  EXPECT_TRUE(store_->EnqueueOutbox({}).ok());
}

TEST_P(StoreContractTest, ClaimOutboxDeliversEachKeyOneRowAtATimeInOrder) {
  ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k1"), NewRow("k1"), NewRow("k2"), NewRow("k1")}).ok());
  std::vector<OutboxRow> all = CG_ALL_OUTBOX();
  ASSERT_EQ(all.size(), 4u);
  const int64_t k1a = all[0].id, k1b = all[1].id, k2 = all[2].id, k1c = all[3].id;
  const int64_t lease = 60 * kSec;

  Result<std::vector<OutboxRow>> a = store_->ClaimOutbox("A", env_.NowMicros(), lease, 10);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(Ids(*a), (std::vector<int64_t>{k1a, k2}));  // the heads of k1 and k2, oldest first
  EXPECT_EQ((*a)[0].claimed_by, "A");
  EXPECT_EQ((*a)[0].claimed_until, env_.NowMicros() + lease);
  EXPECT_EQ((*a)[0].payload_json, R"({"key":"k1"})");
  // The heads are held; the rest wait behind them.
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros(), lease, 10)->empty());

  // k1's head fails for now: it is released for a retry in 10 s, and k1 still waits behind it.
  OutboxRow head = (*a)[0];
  head.state = "retrying";
  head.attempts = 1;
  head.next_attempt_at = env_.NowMicros() + 10 * kSec;
  head.last_error = "429 Too Many Requests";
  ASSERT_TRUE(store_->UpdateOutboxRow(head, /*release=*/true).ok());
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros(), lease, 10)->empty());
  env_.AdvanceSeconds(10);
  Result<std::vector<OutboxRow>> b = store_->ClaimOutbox("B", env_.NowMicros(), lease, 10);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(Ids(*b), (std::vector<int64_t>{k1a}));  // k2 is still A's
  EXPECT_EQ((*b)[0].state, "retrying");
  EXPECT_EQ((*b)[0].attempts, 1);
  EXPECT_EQ((*b)[0].last_error, "429 Too Many Requests");

  // Done: the next of k1 comes up. Failed (for good) counts as finished too.
  head = (*b)[0];
  head.state = "done";
  ASSERT_TRUE(store_->UpdateOutboxRow(head, true).ok());
  b = store_->ClaimOutbox("B", env_.NowMicros(), lease, 10);
  ASSERT_EQ(Ids(*b), (std::vector<int64_t>{k1b}));
  OutboxRow second = (*b)[0];
  second.state = "failed";
  second.last_error = "400 participant not found";
  ASSERT_TRUE(store_->UpdateOutboxRow(second, true).ok());
  b = store_->ClaimOutbox("B", env_.NowMicros(), lease, 10);
  ASSERT_EQ(Ids(*b), (std::vector<int64_t>{k1c}));

  for (OutboxRow r : {(*a)[1], (*b)[0]}) {
    r.state = "done";
    ASSERT_TRUE(store_->UpdateOutboxRow(r, true).ok());
  }
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros() + 3600 * kSec, lease, 10)->empty());
  // Done and failed rows are never claimed again, lease or not.
  env_.AdvanceSeconds(3600);
  EXPECT_TRUE(store_->ClaimOutbox("C", env_.NowMicros(), lease, 10)->empty());
}

TEST_P(StoreContractTest, ClaimOutboxTakesAtMostLimitOldestFirst) {
  std::vector<OutboxRow> rows;
  for (int i = 0; i < 7; ++i) rows.push_back(NewRow("key" + std::to_string(i)));
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  std::vector<int64_t> ids = Ids(CG_ALL_OUTBOX());
  Result<std::vector<OutboxRow>> first = store_->ClaimOutbox("A", env_.NowMicros(), 60 * kSec, 3);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Ids(*first), (std::vector<int64_t>(ids.begin(), ids.begin() + 3)));
  Result<std::vector<OutboxRow>> rest = store_->ClaimOutbox("B", env_.NowMicros(), 60 * kSec, 100);
  EXPECT_EQ(Ids(*rest), (std::vector<int64_t>(ids.begin() + 3, ids.end())));
  EXPECT_TRUE(store_->ClaimOutbox("A", env_.NowMicros(), 60 * kSec, 0)->empty());
  EXPECT_TRUE(store_->ClaimOutbox("", env_.NowMicros(), 60 * kSec, 1).status().IsInvalidArgument());
}

TEST_P(StoreContractTest, ALapsedClaimCanBeTakenOverAndTheOldClaimerLosesTheRow) {
  ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k1")}).ok());
  Result<std::vector<OutboxRow>> a = store_->ClaimOutbox("A", env_.NowMicros(), 5 * kSec, 10);
  ASSERT_EQ(a->size(), 1u);
  OutboxRow mine = (*a)[0];
  // Still A's while the lease runs, even for A itself.
  env_.AdvanceSeconds(4);
  EXPECT_TRUE(store_->ClaimOutbox("B", env_.NowMicros(), 5 * kSec, 10)->empty());
  EXPECT_TRUE(store_->ClaimOutbox("A", env_.NowMicros(), 5 * kSec, 10)->empty());
  // A records progress without letting go.
  mine.progress_json = R"({"bonus_id":"b1"})";
  mine.attempts = 1;
  ASSERT_TRUE(store_->UpdateOutboxRow(mine, /*release=*/false).ok());
  OutboxRow listed = CG_ALL_OUTBOX()[0];
  EXPECT_EQ(listed.claimed_by, "A");
  EXPECT_EQ(listed.progress_json, R"({"bonus_id":"b1"})");
  EXPECT_EQ(listed.attempts, 1);
  EXPECT_EQ(listed.updated_at, env_.NowMicros());

  // The lease lapses: B takes the row over, with A's progress.
  env_.AdvanceSeconds(1);
  Result<std::vector<OutboxRow>> b = store_->ClaimOutbox("B", env_.NowMicros(), 5 * kSec, 10);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].claimed_by, "B");
  EXPECT_EQ((*b)[0].progress_json, R"({"bonus_id":"b1"})");
  // A's late report is refused and changes nothing.
  mine.state = "done";
  Status late = store_->UpdateOutboxRow(mine, true);
  EXPECT_TRUE(late.IsConflict()) << late.ToString();
  EXPECT_EQ(CG_ALL_OUTBOX()[0].state, "pending");
  EXPECT_EQ(CG_ALL_OUTBOX()[0].claimed_by, "B");

  OutboxRow theirs = (*b)[0];
  theirs.state = "failed";
  theirs.last_error = "refused";
  ASSERT_TRUE(store_->UpdateOutboxRow(theirs, true).ok());
  listed = CG_ALL_OUTBOX()[0];
  EXPECT_EQ(listed.state, "failed");
  EXPECT_EQ(listed.claimed_by, "");
  EXPECT_EQ(listed.claimed_until, 0);
  // Once released, B cannot write it either; an operator (no claimer) can, e.g. to retry it.
  EXPECT_TRUE(store_->UpdateOutboxRow(theirs, true).IsConflict());
  OutboxRow retry = listed;
  retry.state = "pending";
  retry.last_error = "";
  ASSERT_TRUE(store_->UpdateOutboxRow(retry, true).ok());
  EXPECT_EQ(store_->ClaimOutbox("C", env_.NowMicros(), 5 * kSec, 10)->size(), 1u);

  OutboxRow missing = theirs;
  missing.id = 987654;
  EXPECT_TRUE(store_->UpdateOutboxRow(missing, true).IsNotFound());
  OutboxRow bad_state = theirs;
  bad_state.state = "sent";
  EXPECT_TRUE(store_->UpdateOutboxRow(bad_state, true).IsInvalidArgument());
}

TEST_P(StoreContractTest, UpdateOutboxRowsJudgesEachRowAndWritesTheHeldOnesInOneCall) {
  ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k1"), NewRow("k2"), NewRow("k3")}).ok());
  std::vector<OutboxRow> a = store_->ClaimOutbox("A", env_.NowMicros(), 5 * kSec, 2).value();
  ASSERT_EQ(a.size(), 2u);
  env_.AdvanceSeconds(5);
  std::vector<OutboxRow> b = store_->ClaimOutbox("B", env_.NowMicros(), 5 * kSec, 1).value();
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(b[0].id, a[0].id);  // B took A's first row over; A's second is lapsed but still A's

  OutboxRow lost = a[0], kept = a[1], missing = a[1];
  lost.state = kept.state = missing.state = "done";
  kept.attempts = 1;
  kept.progress_json = R"({"sent":true})";
  missing.id = 987654;
  Result<std::vector<Status>> r = store_->UpdateOutboxRows({kept, lost, missing}, /*release=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[0].ok()) << (*r)[0].ToString();
  EXPECT_TRUE((*r)[1].IsConflict()) << (*r)[1].ToString();
  EXPECT_TRUE((*r)[2].IsNotFound()) << (*r)[2].ToString();
  std::vector<OutboxRow> all = CG_ALL_OUTBOX();
  EXPECT_EQ(all[0].state, "pending");  // B's
  EXPECT_EQ(all[0].claimed_by, "B");
  EXPECT_EQ(all[1].state, "done");
  EXPECT_EQ(all[1].attempts, 1);
  EXPECT_EQ(all[1].progress_json, R"({"sent":true})");
  EXPECT_EQ(all[1].claimed_by, "");
  EXPECT_EQ(all[1].updated_at, env_.NowMicros());
  EXPECT_EQ(all[2].state, "pending");

  // Without release the claim stays; a bad state or a row given twice refuses the whole call.
  OutboxRow progress = b[0];
  progress.progress_json = R"({"step":1})";
  r = store_->UpdateOutboxRows({progress}, /*release=*/false);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].ok());
  EXPECT_EQ(CG_ALL_OUTBOX()[0].claimed_by, "B");
  EXPECT_EQ(CG_ALL_OUTBOX()[0].progress_json, R"({"step":1})");
  OutboxRow bad = b[0];
  bad.state = "sent";
  OutboxRow done = b[0];
  done.state = "done";
  EXPECT_TRUE(store_->UpdateOutboxRows({done, bad}, true).status().IsInvalidArgument());
  EXPECT_TRUE(store_->UpdateOutboxRows({done, done}, true).status().IsInvalidArgument());
  EXPECT_EQ(CG_ALL_OUTBOX()[0].state, "pending");
  EXPECT_TRUE(store_->UpdateOutboxRows({}, true)->empty());
}

TEST_P(StoreContractTest, CountOutboxAndListOutboxFilters) {
  Result<OutboxCounts> empty = store_->CountOutbox();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->pending + empty->retrying + empty->done + empty->failed, 0);
  EXPECT_FALSE(empty->oldest_undelivered_at.has_value());

  // Four rows, one a second, then one in each state.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store_->EnqueueOutbox({NewRow("k" + std::to_string(i))}).ok());
    env_.AdvanceSeconds(1);
  }
  std::vector<OutboxRow> all = CG_ALL_OUTBOX();
  ASSERT_EQ(all.size(), 4u);
  std::vector<OutboxRow> claimed = store_->ClaimOutbox("A", env_.NowMicros(), 60 * kSec, 3).value();
  ASSERT_EQ(claimed.size(), 3u);
  const char* states[] = {"done", "failed", "retrying"};
  for (int i = 0; i < 3; ++i) {
    claimed[static_cast<size_t>(i)].state = states[i];
    ASSERT_TRUE(store_->UpdateOutboxRow(claimed[static_cast<size_t>(i)], true).ok());
  }
  Result<OutboxCounts> c = store_->CountOutbox();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->pending, 1);
  EXPECT_EQ(c->retrying, 1);
  EXPECT_EQ(c->done, 1);
  EXPECT_EQ(c->failed, 1);
  ASSERT_TRUE(c->oldest_undelivered_at.has_value());
  EXPECT_EQ(*c->oldest_undelivered_at, all[2].created_at);  // the retrying row; older ones are finished

  EXPECT_EQ(Ids(*store_->ListOutbox({"failed"}, 0, 10)), (std::vector<int64_t>{all[1].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({"pending", "retrying"}, 0, 10)), (std::vector<int64_t>{all[2].id, all[3].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({"retrying", "pending", "retrying"}, 0, 10)),
            (std::vector<int64_t>{all[2].id, all[3].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({"done", "failed", "retrying", "pending"}, all[0].id, 2)),
            (std::vector<int64_t>{all[1].id, all[2].id}));
  EXPECT_EQ(Ids(*store_->ListOutbox({}, all[1].id, 10)), (std::vector<int64_t>{all[2].id, all[3].id}));
  EXPECT_TRUE(store_->ListOutbox({}, 0, 0)->empty());
  EXPECT_TRUE(store_->ListOutbox({}, all[3].id, 10)->empty());
  EXPECT_TRUE(store_->ListOutbox({"sent"}, 0, 10).status().IsInvalidArgument());
  // The listed row carries every field.
  OutboxRow failed = store_->ListOutbox({"failed"}, 0, 10).value()[0];
  EXPECT_EQ(failed.order_key, "k1");
  EXPECT_EQ(failed.kind, "approve");
  EXPECT_EQ(failed.provider, "prolific");
  EXPECT_EQ(failed.run_id, "run_a");
  EXPECT_EQ(failed.created_at, all[1].created_at);
}

TEST_P(StoreContractTest, DatabaseSecretIsMadeOnceAndSharedByEveryStore) {
  Result<std::string> s = store_->DatabaseSecret("worker_links");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->size(), 64u);
  EXPECT_EQ(s->find_first_not_of("0123456789abcdef"), std::string::npos) << *s;
  EXPECT_EQ(*store_->DatabaseSecret("worker_links"), *s);
  Result<std::string> other = store_->DatabaseSecret("something_else");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *s);
  EXPECT_TRUE(store_->DatabaseSecret("").status().IsInvalidArgument());
  if (!GetParam().shared) return;
  std::unique_ptr<Store> second = OpenAnother();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*second->DatabaseSecret("worker_links"), *s);
  // Made by the second store first: the first one reads it.
  Result<std::string> third = second->DatabaseSecret("third");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*store_->DatabaseSecret("third"), *third);
}

TEST_P(StoreContractTest, RunProviderStateRoundTrips) {
  MakeRun("run_a", "task", 1);
  MakeRun("run_b", "task", 1);
  EXPECT_EQ(store_->GetRun("run_a")->provider_state_json, "{}");
  const std::string state = R"({"study_id":"s1","codes":{"done":"C1"}})";
  ASSERT_TRUE(store_->SetRunProviderState("run_a", state).ok());
  EXPECT_EQ(store_->GetRun("run_a")->provider_state_json, state);
  Result<std::vector<RunRecord>> runs = store_->ListRuns();
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].provider_state_json, state);
  EXPECT_EQ((*runs)[1].provider_state_json, "{}");
  EXPECT_TRUE(store_->SetRunProviderState("run_nope", "{}").IsNotFound());
  EXPECT_TRUE(store_->SetRunProviderState("run_a", "[1]").IsInvalidArgument());
  EXPECT_TRUE(store_->SetRunProviderState("run_a", "{nope").IsInvalidArgument());
  EXPECT_EQ(store_->GetRun("run_a")->provider_state_json, state);
  // A run created with a state keeps it.
  RunRecord c;
  c.id = "run_c";
  c.task_name = "task";
  c.config_json = "{}";
  c.provider_state_json = R"({"study_id":"s3"})";
  ASSERT_TRUE(store_->CreateRun(c, {"{}"}, 1).ok());
  EXPECT_EQ(store_->GetRun("run_c")->provider_state_json, R"({"study_id":"s3"})");
}

TEST_P(StoreContractTest, SessionSubmissionsAndOpenAgentsOfSession) {
  MakeRun("run_a", "task", 5);
  MakeRun("run_b", "task", 5);
  WorkerId p1 = WorkerNamed("P1", "prolific");
  WorkerId p2 = WorkerNamed("P2", "prolific");
  auto reserve = [&](const std::string& run, WorkerId w, const std::string& session) {
    AgentRecord a = NewAgent(run, w);
    a.session = session;
    Result<std::optional<AgentRecord>> r = store_->ReserveUnit(run, a);
    EXPECT_TRUE(r.ok() && r->has_value());
    return r.ok() && r->has_value() ? **r : AgentRecord{};
  };
  AgentRecord u1 = reserve("run_a", p1, "S1");
  AgentRecord u2 = reserve("run_a", p1, "S1");
  AgentRecord other_session = reserve("run_a", p1, "S2");
  AgentRecord other_worker = reserve("run_a", p2, "S1");
  AgentRecord other_run = reserve("run_b", p1, "S1");
  AgentRecord gold = NewAgent("run_a", p1, AgentKind::kGold);
  gold.session = "S1";
  ASSERT_TRUE(*store_->CreateEvalUnit("run_a", gold, 10, "golds"));
  AgentRecord onb = NewAgent("run_a", p1, AgentKind::kOnboarding);
  onb.session = "S1";
  ASSERT_TRUE(store_->CreateOnboardingAgent(onb).ok());
  AgentRecord onb_open = NewAgent("run_a", p1, AgentKind::kOnboarding);
  onb_open.session = "S1";
  ASSERT_TRUE(store_->CreateOnboardingAgent(onb_open).ok());

  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S1"), 0);
  for (const AgentRecord& a : {u1, other_session, other_worker, other_run, gold}) {
    ASSERT_TRUE(store_->FinishAgent(Submit(a)).ok());
  }
  AgentFinish passed;
  passed.agent_id = onb.id;
  passed.expect_status = AgentStatus::kOnboarding;
  passed.new_status = AgentStatus::kPassed;
  passed.submitted_at = env_.NowMicros();
  ASSERT_TRUE(store_->FinishAgent(passed).ok());
  // A returned agent was never submitted.
  AgentFinish ret;
  ret.agent_id = u2.id;
  ret.expect_status = AgentStatus::kInTask;
  ret.new_status = AgentStatus::kReturned;
  ret.release_unit = true;
  ASSERT_TRUE(store_->FinishAgent(ret).ok());
  AgentRecord u3 = reserve("run_a", p1, "S1");

  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S1"), 2);  // u1 and the gold; not onboarding
  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S2"), 1);
  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p2, "S1"), 1);
  EXPECT_EQ(*store_->CountSessionSubmissions("run_b", p1, "S1"), 1);
  EXPECT_EQ(*store_->CountSessionSubmissions("run_a", p1, "S9"), 0);
  EXPECT_TRUE(store_->CountSessionSubmissions("run_nope", p1, "S1").status().IsNotFound());
  EXPECT_TRUE(store_->CountSessionSubmissions("run_a", 987654, "S1").status().IsNotFound());

  Result<std::vector<AgentRecord>> open = store_->OpenAgentsOfSession("run_a", "S1");
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].id, onb_open.id);  // oldest first
  EXPECT_EQ((*open)[1].id, u3.id);
  EXPECT_EQ((*open)[1].session, "S1");
  EXPECT_TRUE(store_->OpenAgentsOfSession("run_a", "S2")->empty());
  EXPECT_EQ(store_->OpenAgentsOfSession("run_b", "S1")->size(), 0u);
  EXPECT_TRUE(store_->OpenAgentsOfSession("run_nope", "S1").status().IsNotFound());
}

// Timing, run by hand: `store_contract_test --gtest_also_run_disabled_tests --gtest_filter='*TimingOutbox*'`.
// 100,000 queued rows (50,000 keys, two rows each) drained the way a drainer does it: claims of 200,
// then one UpdateOutboxRow (done, released) per row; then again with one UpdateOutboxRows per claim.
TEST_P(StoreContractTest, DISABLED_TimingOutboxDrain) {
  constexpr int kRows = 100'000;
  std::vector<OutboxRow> rows;
  rows.reserve(kRows);
  for (int i = 0; i < kRows; ++i) {
    OutboxRow r = NewRow("grant:prolific:P" + std::to_string(i % (kRows / 2)) + "|allow", "grant_sync", "");
    r.payload_json = R"({"worker":"prolific:P1","qualification":"allow","value":1,"expires_at":null})";
    rows.push_back(std::move(r));
  }
  auto seconds_since = [](std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  std::printf("%s: EnqueueOutbox of %d rows: %.2f s\n", GetParam().name.c_str(), kRows, seconds_since(t0));

  t0 = std::chrono::steady_clock::now();
  int64_t delivered = 0;
  int64_t claims = 0;
  double claim_s = 0;
  while (true) {
    auto c0 = std::chrono::steady_clock::now();
    Result<std::vector<OutboxRow>> got = store_->ClaimOutbox("drainer", env_.NowMicros(), 60 * kSec, 200);
    claim_s += seconds_since(c0);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (got->empty()) break;
    ++claims;
    for (OutboxRow& r : *got) {
      r.state = "done";
      r.attempts = 1;
      ASSERT_TRUE(store_->UpdateOutboxRow(r, true).ok());
      ++delivered;
    }
  }
  const double total = seconds_since(t0);
  EXPECT_EQ(delivered, kRows);
  std::printf("%s: drained %lld rows in %lld claims: %.2f s = %.0f rows/s (claims %.2f s, %.2f ms each)\n",
              GetParam().name.c_str(), static_cast<long long>(delivered), static_cast<long long>(claims), total,
              static_cast<double>(delivered) / total, claim_s, claim_s * 1e3 / static_cast<double>(claims));

  // The same drain reporting each claim's rows with one UpdateOutboxRows call.
  ASSERT_TRUE(store_->EnqueueOutbox(rows).ok());
  t0 = std::chrono::steady_clock::now();
  delivered = 0;
  claims = 0;
  while (true) {
    Result<std::vector<OutboxRow>> got = store_->ClaimOutbox("drainer", env_.NowMicros(), 60 * kSec, 200);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (got->empty()) break;
    ++claims;
    for (OutboxRow& r : *got) r.state = "done";
    Result<std::vector<Status>> written = store_->UpdateOutboxRows(*got, true);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    for (const Status& st : *written) ASSERT_TRUE(st.ok()) << st.ToString();
    delivered += static_cast<int64_t>(got->size());
  }
  const double batched = seconds_since(t0);
  EXPECT_EQ(delivered, kRows);
  std::printf("%s: drained %lld rows in %lld claims, one UpdateOutboxRows each: %.2f s = %.0f rows/s\n",
              GetParam().name.c_str(), static_cast<long long>(delivered), static_cast<long long>(claims), batched,
              static_cast<double>(delivered) / batched);

  // A backlog that is not due (the provider is down, every row waits for its retry): what an idle
  // drainer's poll costs.
  std::vector<OutboxRow> later(rows.begin(), rows.begin() + kRows / 2);
  for (OutboxRow& r : later) r.next_attempt_at = env_.NowMicros() + 3600 * kSec;
  ASSERT_TRUE(store_->EnqueueOutbox(later).ok());
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->ClaimOutbox("drainer", env_.NowMicros(), 60 * kSec, 200)->empty());
  std::printf("%s: a claim over %d rows not yet due: %.2f ms\n", GetParam().name.c_str(), kRows / 2,
              seconds_since(t0) * 1e3 / 10);
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(store_->CountOutbox().ok());
  std::printf("%s: CountOutbox over %d rows: %.2f ms\n", GetParam().name.c_str(), kRows * 5 / 2,
              seconds_since(t0) * 1e3);
}

#undef CG_ALL_OUTBOX

}  // namespace
}  // namespace crowdgate::store_test
