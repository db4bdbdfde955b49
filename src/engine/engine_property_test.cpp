// Property: over random sequences of grants, revokes and clock moves made through two
// store connections, the in-memory eligibility of one engine always agrees with a direct
// evaluation of the grants read back from the database.
#include <rapidcheck.h>

#include <gtest/gtest.h>

#include "crowdgate/engine.hpp"
#include "engine/engine_test_util.hpp"

namespace crowdgate {
namespace {

using testing::OpenTestEngine;
using testing::TempDir;

const char* kWorkers[] = {"w0", "w1", "mturk:W2", "prolific:w3"};
const char* kQuals[] = {"q0", "q1", "q2"};

struct Op {
  int kind;  // 0 grant via A, 1 grant via B, 2 revoke via A, 3 revoke via B, 4 advance clock
  int worker;
  int qual;
  int64_t value;
  int expires_in_s;  // 0 = never
};

bool DirectEvaluation(Store& store, const std::string& worker, const Requirement& req, int64_t now) {
  auto ref = ParseWorkerRef(worker);
  std::optional<int64_t> granted;
  auto w = store.GetWorker(*ref);
  if (w.ok()) {
    auto grants = store.GrantsForWorker(w->id);
    for (const auto& g : *grants) {
      if (g.qualification == req.qualification_name && !g.ExpiredAt(now)) granted = g.value;
    }
  }
  return Evaluate(req, granted);
}

TEST(EnginePropertyTest, InMemoryEligibilityAgreesWithTheDatabase) {
  const bool ok = rc::check("eligibility agrees with the database", [] {
    TempDir dir;
    FakeEnv env;
    const std::string db = dir.File("p.db");
    auto a = OpenTestEngine(&env, db, "a");
    auto b = OpenTestEngine(&env, db, "b");
    auto direct = Store::Open(db, &env);
    RC_ASSERT(direct.ok());
    for (const char* q : kQuals) RC_ASSERT(b->CreateQualification(q, "").ok());

    const auto ops = *rc::gen::container<std::vector<Op>>(rc::gen::build<Op>(
        rc::gen::set(&Op::kind, rc::gen::inRange(0, 5)), rc::gen::set(&Op::worker, rc::gen::inRange(0, 4)),
        rc::gen::set(&Op::qual, rc::gen::inRange(0, 3)), rc::gen::set(&Op::value, rc::gen::inRange<int64_t>(-3, 4)),
        rc::gen::set(&Op::expires_in_s, rc::gen::inRange(0, 5))));
    const auto comparator = *rc::gen::elementOf(AllComparators());
    const int64_t threshold = *rc::gen::inRange<int64_t>(-3, 4);

    for (const Op& op : ops) {
      Engine& via = (op.kind % 2 == 0) ? *a : *b;
      if (op.kind <= 1) {
        std::optional<int64_t> expires;
        if (op.expires_in_s > 0) expires = env.NowMicros() + op.expires_in_s * kMicrosPerSecond;
        RC_ASSERT(via.Grant({kQuals[op.qual], kWorkers[op.worker], op.value, expires, ""}).ok());
      } else if (op.kind <= 3) {
        RC_ASSERT(via.Revoke(kQuals[op.qual], kWorkers[op.worker], "").ok());
      } else {
        env.AdvanceSeconds(op.expires_in_s);
      }
      Requirement req;
      req.qualification_name = kQuals[op.qual];
      req.comparator = comparator;
      req.value = threshold;
      req.values = {threshold, threshold + 1};
      auto compiled = a->Compile({req});
      RC_ASSERT(compiled.ok());
      for (const char* w : kWorkers) {
        auto verdict = a->Check(w, **compiled);
        RC_ASSERT(verdict.ok());
        RC_ASSERT(verdict->passed == DirectEvaluation(**direct, w, req, env.NowMicros()));
      }
    }
  });
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace crowdgate
