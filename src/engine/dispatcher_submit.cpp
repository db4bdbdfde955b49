// Submissions, returns, lease expiry and agent reads.
#include <algorithm>
#include <climits>

#include "core/gold_schedule.hpp"
#include "engine/command_check.hpp"
#include "engine/dispatcher_impl.hpp"
#include "core/secure_compare.hpp"

namespace crowdgate {

using Lock = EngineLock;
using UniqueLock = std::unique_lock<std::recursive_mutex>;

namespace {

// What to check a submission against, copied out so the check can run unlocked.
struct PendingCheck {
  bool needed = false;
  CheckSpec spec;
  nlohmann::json inputs;
  nlohmann::json answer;
};

CheckResult RunCheck(const PendingCheck& c, const nlohmann::json& submission) {
  if (c.spec.IsCommand()) return RunCommandCheck(c.spec, c.inputs, c.answer, submission);
  return EvaluateCheck(c.spec, c.answer, submission);
}

GrantOp Op(GrantOp::Kind kind, const WorkerRef& w, QualId q, int64_t value, const char* actor, std::string reason) {
  GrantOp op;
  op.kind = kind;
  op.worker = w;
  op.qual_id = q;
  op.value = value;
  op.actor = actor;
  op.reason = std::move(reason);
  return op;
}

}  // namespace

AgentFinish DispatcherImpl::EndAgent(const AgentRecord& agent, AgentStatus new_status) {
  AgentFinish f;
  f.agent_id = agent.id;
  f.expect_status = agent.status;
  f.new_status = new_status;
  if (agent.kind == AgentKind::kUnit) {
    f.release_unit = true;  // back to the pool for someone else
  } else if (agent.kind == AgentKind::kGold || agent.kind == AgentKind::kScreening) {
    f.unit_status = UnitStatus::kExpired;  // evaluation units are made per worker; the cap slot comes back
    f.refund_gold_slot = agent.kind == AgentKind::kGold;
    f.refund_screening_slot = agent.kind == AgentKind::kScreening;
  }
  return f;
}

Result<std::vector<AuditEntry>> DispatcherImpl::FinishEndedLocked(const AgentRecord& agent,
                                                                  AgentStatus new_status) {
  AgentFinish f = EndAgent(agent, new_status);
  std::shared_ptr<RunState> run;
  std::optional<QualityTracker::Pending> quality;
  if (agent.kind == AgentKind::kUnit) {
    CG_ASSIGN_OR_RETURN(run, RunLocked(agent.run_id));
    if (run->quality) {
      quality = run->quality->DecideReturn(agent);
      AddQualityActions(*run, agent, quality->firings, &f);
    }
  }
  auto entries = core_.store().FinishAgent(f);
  if (!entries.ok()) return entries;
  if (quality) run->quality->Commit(std::move(*quality));
  if (!entries->empty()) CG_RETURN_IF_ERROR(core_.AfterWrite(*entries));
  return entries;
}

void DispatcherImpl::AddQualityActions(const RunState& run, const AgentRecord& agent,
                                       const std::vector<QualityFiring>& firings, AgentFinish* f) {
  const int64_t now = core_.env().NowMicros();
  for (const QualityFiring& firing : firings) {
    const QualityRule& rule = run.quality->rules()[firing.rule_index];
    const std::string where = "; run " + agent.run_id + ", agent " + agent.id;
    if (rule.action == QualityActionKind::kRejectUnits) {
      std::string units;
      for (int64_t id : firing.unit_ids) {
        units += (units.empty() ? "" : ", ") + std::to_string(id);
        if (std::find(f->reject_unit_ids.begin(), f->reject_unit_ids.end(), id) == f->reject_unit_ids.end()) {
          f->reject_unit_ids.push_back(id);
        }
      }
      // The audit entry of the rejection: a count of the worker's rejected units, per task.
      f->grant_ops.push_back(Op(GrantOp::Kind::kAdd, agent.worker, run.rejected_units,
                                static_cast<int64_t>(firing.unit_ids.size()), kQualityActor,
                                firing.reason + "; rejected units " + units + " for relabelling" + where));
      continue;
    }
    std::optional<int64_t> until;
    if (rule.action == QualityActionKind::kBlock) until = now + rule.block_seconds * kMicrosPerSecond;
    // Never shorten a ban: a worker blocked for longer (or for good) keeps that block.
    const GrantIndex::Entry* held = core_.index().Find(agent.worker_id, run.block, now);
    if (held != nullptr && (held->expires_at == INT64_MAX || (until && held->expires_at >= *until))) continue;
    bool merged = false;
    for (GrantOp& op : f->grant_ops) {  // two rules firing at once: one grant, the longer ban
      if (op.qual_id != run.block || op.kind != GrantOp::Kind::kSet) continue;
      if (op.expires_at && (!until || *until > *op.expires_at)) op.expires_at = until;
      op.reason += " | " + firing.reason;
      merged = true;
    }
    if (merged) continue;
    GrantOp op = Op(GrantOp::Kind::kSet, agent.worker, run.block, 1, kQualityActor,
                    firing.reason + (until ? "; blocked for " + FormatDuration(rule.block_seconds) : "; disqualified") +
                        where);
    op.expires_at = until;
    f->grant_ops.push_back(std::move(op));
  }
}

Result<AgentRecord> DispatcherImpl::AuthorizedAgentLocked(const std::string& agent_id, const std::string& token) {
  auto agent = core_.store().GetAgent(agent_id);
  if (!agent.ok()) {
    if (agent.status().IsNotFound()) return Status::NotFound("agent " + agent_id + " does not exist");
    return agent.status();
  }
  if (token.empty() || !ConstantTimeEqual(token, agent->token_hash)) {
    return Status::Unauthenticated("missing or wrong token for agent " + agent_id);
  }
  return agent;
}

Result<SubmitResponse> DispatcherImpl::Submit(const std::string& agent_id, const std::string& token,
                                              const nlohmann::json& body_data) {
  CG_ASSIGN_OR_RETURN(std::optional<SubmitResponse> r, SubmitImpl(agent_id, token, body_data, /*may_block=*/true));
  if (!r) return Status::Internal("submission of agent " + agent_id + " was not decided");
  return *r;
}

Result<std::optional<SubmitResponse>> DispatcherImpl::TrySubmitWithoutBlocking(const std::string& agent_id,
                                                                               const std::string& token,
                                                                               const nlohmann::json& body_data) {
  return SubmitImpl(agent_id, token, body_data, /*may_block=*/false);
}

Result<std::optional<SubmitResponse>> DispatcherImpl::SubmitImpl(const std::string& agent_id,
                                                                 const std::string& token,
                                                                 const nlohmann::json& body_data, bool may_block) {
  if (!body_data.is_object()) return Status::InvalidArgument("data: expected a JSON object with the worker's answers");
  UniqueLock l(core_.mu());
  CG_ASSIGN_OR_RETURN(AgentRecord agent, AuthorizedAgentLocked(agent_id, token));
  if (IsSubmitted(agent.status)) return Status::Conflict("agent " + agent_id + " has already submitted");
  if (!IsOpen(agent.status)) return Status::Gone("agent " + agent_id + " is " + ToString(agent.status) + "; ask for new work");
  if (agent.deadline <= core_.env().NowMicros()) {
    auto expired = FinishEndedLocked(agent, AgentStatus::kTimeout);
    if (!expired.ok() && !expired.status().IsConflict()) return expired.status();
    return Status::Gone("agent " + agent_id + " timed out; its unit went back to the pool");
  }
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(agent.run_id));
  const auto& b = run->config->blueprint;
  const auto idx = static_cast<size_t>(std::max<int64_t>(agent.item_index, 0));
  PendingCheck check;
  if (agent.kind == AgentKind::kOnboarding) {
    check = {true, b.onboarding_check.spec, b.onboarding_data, b.onboarding_answer};
  } else if (agent.kind == AgentKind::kGold && idx < b.gold_items.size()) {
    check = {true, b.gold_check.spec, b.gold_items[idx].inputs, b.gold_items[idx].answer};
  } else if (agent.kind == AgentKind::kScreening && idx < b.screening_items.size()) {
    check = {true, b.screening_check.spec, b.screening_items[idx].inputs, b.screening_items[idx].answer};
  } else if (agent.kind == AgentKind::kUnit && agent.eval_set == kScreeningEvalSet) {
    check = {true, b.screening_check.spec, InputsOf(*run, agent), nullptr};
  }

  CheckResult result{CheckOutcome::kPass, ""};
  if (check.needed && check.spec.IsCommand()) {
    if (!may_block) return std::optional<SubmitResponse>();
    if (in_batch_) return Status::Internal("Submit with an external check inside Batch (use TrySubmitWithoutBlocking)");
  }
  if (check.needed) {
    l.unlock();  // external commands can take seconds
    result = RunCheck(check, body_data);
    l.lock();
    CG_RETURN_IF_ERROR(core_.Refresh());
  }
  if (result.outcome == CheckOutcome::kError) {
    std::fprintf(stderr, "crowdgate: check for agent %s (%s) failed to run: %s\n", agent_id.c_str(),
                 ToString(agent.kind).c_str(), result.detail.c_str());
    if (agent.kind == AgentKind::kOnboarding) {
      return Status::Unavailable("the onboarding check could not run; please submit again");
    }
  }
  const bool pass = result.outcome == CheckOutcome::kPass;
  const bool scored = result.outcome != CheckOutcome::kError;
  int gold_result = 0;  // a scored gold: 1 right, -1 wrong (for the run's tally once stored)
  const std::string why = "run " + agent.run_id + ", agent " + agent.id;

  AgentFinish f;
  f.agent_id = agent.id;
  f.expect_status = agent.status;
  f.data_json = body_data.dump();
  f.submitted_at = core_.env().NowMicros();
  f.check_result = check.needed ? std::string(CheckOutcomeName(result.outcome)) : "";
  SubmitResponse response{"accepted"};
  if (agent.kind == AgentKind::kOnboarding) {
    f.new_status = pass ? AgentStatus::kPassed : AgentStatus::kFailed;
    response.outcome = ToString(f.new_status);
    f.grant_ops.push_back(Op(GrantOp::Kind::kSet, agent.worker, run->onboarding, pass ? 1 : 0, kOnboardingActor,
                             pass ? "passed onboarding, " + why : "failed onboarding, " + why));
    if (!pass) {
      f.grant_ops.push_back(
          Op(GrantOp::Kind::kSet, agent.worker, run->onboarding_failed, 1, kOnboardingActor, "failed onboarding, " + why));
    }
  } else {
    f.new_status = AgentStatus::kCompleted;
    f.unit_status = UnitStatus::kCompleted;
    const bool screening = ShownKind(agent) == AgentKind::kScreening;
    if (screening && scored) {
      if (pass) {
        f.grant_ops.push_back(Op(GrantOp::Kind::kSet, agent.worker, run->screening_passed, 1, kScreeningActor,
                                 "passed screening, " + why));
      } else {
        f.grant_ops.push_back(
            Op(GrantOp::Kind::kSet, agent.worker, run->block, 1, kScreeningActor, "failed screening, " + why));
      }
    }
    if (agent.kind == AgentKind::kUnit && b.use_golds) {
      f.grant_ops.push_back(Op(GrantOp::Kind::kAdd, agent.worker, run->gold_completed, 1, kGoldActor, why));
    }
    if (agent.kind == AgentKind::kGold && scored) {
      gold_result = pass ? 1 : -1;
      const int64_t now = core_.env().NowMicros();
      GoldCounts counts;
      counts.completed = core_.index().Value(agent.worker_id, run->gold_completed, now).value_or(0);
      counts.correct = core_.index().Value(agent.worker_id, run->gold_correct, now).value_or(0) + (pass ? 1 : 0);
      counts.wrong = core_.index().Value(agent.worker_id, run->gold_wrong, now).value_or(0) + (pass ? 0 : 1);
      f.grant_ops.push_back(Op(GrantOp::Kind::kAdd, agent.worker, pass ? run->gold_correct : run->gold_wrong, 1,
                               kGoldActor, why));
      std::vector<bool> recent;
      if (run->policy.kind == GoldPolicyKind::kMinAccuracy) {
        CG_ASSIGN_OR_RETURN(recent, core_.store().RecentGoldResults(agent.worker_id, b.gold_qualification_base,
                                                                     run->policy.gold_window));
        recent.push_back(pass);
      }
      if (!WorkerQualifies(run->policy, counts, recent)) {
        f.grant_ops.push_back(Op(GrantOp::Kind::kSet, agent.worker, run->gold_disqualified, 1, kGoldActor,
                                 "gold standing below the run's policy, " + why));
      }
    }
  }
  std::optional<QualityTracker::Pending> quality;
  if (agent.kind == AgentKind::kUnit && run->quality) {
    quality = run->quality->DecideSubmit(agent, *f.submitted_at, *f.data_json);
    AddQualityActions(*run, agent, quality->firings, &f);
  }
  auto entries = core_.store().FinishAgent(f);
  if (!entries.ok()) {
    // Another server's batch holds the agent's row: nothing was written; submit it outside the batch.
    if (entries.status().IsBusy() && !may_block) return std::optional<SubmitResponse>();
    if (!entries.status().IsConflict()) {
      // The write may have happened with its answer lost (a dropped connection): what the caches
      // hold (the grant index, counters) may now be behind the store.
      DropCachesLocked();
      return entries.status();
    }
    // The agent changed while the check ran unlocked: submitted by a racing request, or
    // timed out / returned meanwhile.
    auto now_agent = core_.store().GetAgent(agent_id);
    if (now_agent.ok() && !IsSubmitted(now_agent->status)) {
      return Status::Gone("agent " + agent_id + " is " + ToString(now_agent->status) + "; ask for new work");
    }
    return Status::Conflict("agent " + agent_id + " has already submitted");
  }
  if (quality) run->quality->Commit(std::move(*quality));
  if (gold_result != 0) {
    auto& tally = gold_tally_[agent.run_id];
    ++(gold_result > 0 ? tally.first : tally.second);
  }
  if (!entries->empty()) {  // no grant changed: nothing to learn
    if (Status learned = core_.AfterWrite(*entries); !learned.ok()) {
      DropCachesLocked();  // stored, but the index did not learn it: reload from the store
      return learned;
    }
  }
  return std::optional<SubmitResponse>(response);
}

Status DispatcherImpl::Batch(const std::function<void()>& work) {
  Lock l(core_.mu());
  if (in_batch_) return Status::Internal("Dispatcher::Batch does not nest");
  for (int attempt = 1;; ++attempt) {
    // What the batch changes in memory goes with it when it does not commit: the caches are
    // dropped (reloaded from the store) and the gold tally restored.
    const auto tally_before = gold_tally_;
    const auto forget_batch = [&] {
      DropCachesLocked();  // they may hold ids and grants that were rolled back
      gold_tally_ = tally_before;
    };
    CG_RETURN_IF_ERROR(core_.store().BeginBatch());
    // Never wait long inside the batch for another server's locks (see Store::BoundLockWaitsInBatch).
    if (Status bounded = core_.store().BoundLockWaitsInBatch(); !bounded.ok()) {
      (void)core_.store().EndBatch(/*commit=*/false);
      return bounded;
    }
    in_batch_ = true;
    batch_refreshed_ = false;
    try {
      work();
    } catch (...) {
      in_batch_ = false;
      (void)core_.store().EndBatch(/*commit=*/false);
      forget_batch();
      throw;
    }
    in_batch_ = false;
    Status committed = core_.store().EndBatch(/*commit=*/true);
    if (committed.ok()) return committed;
    forget_batch();
    // Lost a conflict with another server (a deadlock): nothing was stored and nobody answered,
    // so the same requests may be decided again from scratch.
    if (!core_.store().LastBatchMayBeRetried() || attempt >= kBatchAttempts) return committed;
    ++batch_retries_;
  }
}

int64_t DispatcherImpl::BatchesRetried() const { return batch_retries_.load(); }

size_t DispatcherImpl::PreferredBatchLimit() const { return core_.store().PreferredBatchLimit(); }

void DispatcherImpl::DropCachesLocked() {
  core_.Invalidate();
  runs_.clear();
  worker_ids_.clear();
}

Status DispatcherImpl::Return(const std::string& agent_id, const std::string& token) {
  Lock l(core_.mu());
  CG_ASSIGN_OR_RETURN(AgentRecord agent, AuthorizedAgentLocked(agent_id, token));
  if (IsSubmitted(agent.status)) return Status::Conflict("agent " + agent_id + " has already submitted");
  if (!IsOpen(agent.status)) return Status::Gone("agent " + agent_id + " is " + ToString(agent.status));
  auto entries = FinishEndedLocked(agent, AgentStatus::kReturned);
  if (!entries.ok()) return entries.status();
  return Status::Ok();
}

Result<AgentView> DispatcherImpl::GetAgent(const std::string& agent_id, const std::string& token) {
  Lock l(core_.mu());
  CG_RETURN_IF_ERROR(MaybeExpireLocked());
  CG_ASSIGN_OR_RETURN(AgentRecord agent, AuthorizedAgentLocked(agent_id, token));
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(agent.run_id));
  AgentView v;
  v.agent_id = agent.id;
  v.run_id = agent.run_id;
  v.status = agent.status;
  v.onboarding = agent.kind == AgentKind::kOnboarding;
  v.data = InputsOf(*run, agent);
  v.submission = agent.data_json.empty() ? nlohmann::json(nullptr)
                                         : nlohmann::json::parse(agent.data_json, nullptr, false);
  v.deadline = agent.deadline;
  return v;
}

Status DispatcherImpl::MaybeExpireLocked() {
  const int64_t now = core_.env().NowMicros();
  if (now - last_expiry_us_ < kMicrosPerSecond) return Status::Ok();
  auto n = ExpireOverdueLocked();
  return n.status();
}

Result<int64_t> DispatcherImpl::ExpireOverdueLocked() {
  const int64_t now = core_.env().NowMicros();
  last_expiry_us_ = now;
  CG_ASSIGN_OR_RETURN(std::vector<AgentRecord> overdue, core_.store().OverdueAgents(now));
  int64_t n = 0;
  for (const auto& a : overdue) {
    auto r = FinishEndedLocked(a, AgentStatus::kTimeout);
    if (r.ok()) {
      ++n;
    } else if (!r.status().IsConflict() && !r.status().IsBusy()) {  // busy: another server ends it, or we do later
      return r.status();
    }
  }
  return n;
}

Result<int64_t> DispatcherImpl::ExpireOverdue() {
  Lock l(core_.mu());
  return ExpireOverdueLocked();
}

}  // namespace crowdgate
