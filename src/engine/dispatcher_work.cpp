// The work-request path: who gets what (requirements, onboarding, screening, golds, limits).
#include <algorithm>

#include "core/agent_id.hpp"
#include "core/gold_schedule.hpp"
#include "engine/dispatcher_impl.hpp"

namespace crowdgate {

using Lock = EngineLock;

namespace {

WorkResponse Refusal(const std::string& outcome, const std::string& reason) {
  WorkResponse r;
  r.outcome = outcome;
  r.reason = reason;
  r.data = nullptr;
  return r;
}

}  // namespace

nlohmann::json WorkResponse::ToJson() const {
  auto opt = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  return {{"outcome", outcome}, {"reason", opt(reason)}, {"agent_id", opt(agent_id)}, {"token", opt(token)},
          {"data", data}};
}

Result<std::unique_ptr<Dispatcher>> Dispatcher::Create(Engine* engine) {
  if (engine == nullptr) return Status::InvalidArgument("Dispatcher::Create needs an engine");
  return engine->NewDispatcher();
}

Result<std::unique_ptr<Dispatcher>> EngineImpl::NewDispatcher() {
  CG_ASSIGN_OR_RETURN(std::unique_ptr<RunDispatcher> d, NewRunDispatcher());
  return std::unique_ptr<Dispatcher>(std::move(d));
}

Result<std::unique_ptr<RunDispatcher>> EngineImpl::NewRunDispatcher() {
  return std::unique_ptr<RunDispatcher>(new DispatcherImpl(this));
}

Result<std::shared_ptr<RunState>> DispatcherImpl::RunLocked(const std::string& run_id) {
  auto it = runs_.find(run_id);
  if (it != runs_.end()) return it->second;
  auto record = core_.store().GetRun(run_id);
  if (!record.ok()) {
    if (record.status().IsNotFound()) return Status::NotFound("run " + run_id + " does not exist");
    return record.status();
  }
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> state, BuildRunState(*engine_, *record));
  runs_.emplace(run_id, state);
  return state;
}

Result<WorkerId> DispatcherImpl::WorkerIdLocked(const WorkerRef& ref) {
  const std::string key = ref.ToString();
  auto it = worker_ids_.find(key);
  if (it != worker_ids_.end()) return it->second;
  CG_ASSIGN_OR_RETURN(Worker w, core_.store().EnsureWorker(ref));
  // A cache of the workers seen lately, not of everyone ever seen: bounded, so a server that
  // meets millions of workers does not keep a name for each. Ids never change, so dropping it
  // all now and then costs one store lookup per worker afterwards.
  constexpr size_t kMaxCachedWorkers = 1 << 16;
  if (worker_ids_.size() >= kMaxCachedWorkers) worker_ids_.clear();
  worker_ids_.emplace(key, w.id);
  return w.id;
}

AgentRecord DispatcherImpl::NewAgent(const RunState& run, const WorkerRef& ref, WorkerId worker,
                                     AgentKind kind, const std::string& session) {
  Env& env = core_.env();
  AgentRecord a;
  a.created_at = env.NowMicros();
  a.id = NewAgentId(a.created_at, env.RandomHex128());
  a.token_hash = env.RandomHex128();
  a.run_id = run.record.id;
  a.worker_id = worker;
  a.worker = ref;
  a.kind = kind;
  a.status = kind == AgentKind::kOnboarding ? AgentStatus::kOnboarding : AgentStatus::kInTask;
  a.session = session;
  a.deadline = a.created_at + run.config->task.assignment_duration_in_seconds * kMicrosPerSecond;
  return a;
}

nlohmann::json DispatcherImpl::InputsOf(const RunState& run, const AgentRecord& agent) {
  const auto& b = run.config->blueprint;
  const auto idx = static_cast<size_t>(std::max<int64_t>(agent.item_index, 0));
  if (agent.kind == AgentKind::kOnboarding) return b.onboarding_data;
  if (agent.kind == AgentKind::kGold) return idx < b.gold_items.size() ? b.gold_items[idx].inputs : nlohmann::json::object();
  if (agent.kind == AgentKind::kScreening) {
    return idx < b.screening_items.size() ? b.screening_items[idx].inputs : nlohmann::json::object();
  }
  auto item = core_.store().GetItem(agent.run_id, agent.item_index);
  if (!item.ok()) return nlohmann::json::object();
  return nlohmann::json::parse(*item, nullptr, /*allow_exceptions=*/false);
}

WorkResponse DispatcherImpl::Respond(const RunState& run, const AgentRecord& agent, bool reconnected,
                                     const std::string* item_json) {
  WorkResponse r;
  r.outcome = agent.kind == AgentKind::kOnboarding ? "onboarding" : "unit";  // golds and screening look like units
  r.agent_id = agent.id;
  r.token = agent.token_hash;
  r.data = item_json != nullptr ? nlohmann::json::parse(*item_json, nullptr, /*allow_exceptions=*/false)
                                : InputsOf(run, agent);
  r.reconnected = reconnected;
  return r;
}

Result<WorkResponse> DispatcherImpl::RequestWork(const WorkRequest& request) {
  CG_ASSIGN_OR_RETURN(std::optional<WorkResponse> decided, RequestWorkImpl(request));
  if (!decided) {  // only inside a batch
    return Status::Unavailable("another server is deciding about this worker right now; try again");
  }
  return std::move(*decided);
}

Result<std::optional<WorkResponse>> DispatcherImpl::TryRequestWorkWithoutBlocking(const WorkRequest& request) {
  return RequestWorkImpl(request);
}

Result<std::optional<WorkResponse>> DispatcherImpl::RequestWorkImpl(const WorkRequest& request) {
  Lock l(core_.mu());
  // When a batch shuts out every other writer (SQLite), one look at the change feed per batch
  // is enough; otherwise look on every request (on PostgreSQL that costs no round trip inside a
  // batch: the store reads the token when the batch begins).
  if (!in_batch_ || !batch_refreshed_) {
    CG_RETURN_IF_ERROR(core_.Refresh());
    batch_refreshed_ = in_batch_ && core_.store().BatchExcludesOtherWriters();
  }
  CG_RETURN_IF_ERROR(MaybeExpireLocked());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(request.run_id));
  if (run->status_epoch != core_.external_epoch()) {  // another process may have closed it
    CG_ASSIGN_OR_RETURN(RunRecord record, core_.store().GetRun(request.run_id));
    run->record.status = record.status;
    run->status_epoch = core_.external_epoch();
  }
  if (run->record.status != RunStatus::kOpen) return std::optional<WorkResponse>(Refusal("no_work", "run_closed"));
  CG_ASSIGN_OR_RETURN(WorkerId worker, WorkerIdLocked(request.worker));
  // One decision: the limits read below still hold when its reservation commits (another server
  // deciding about this worker waits), and a decision that fails half-way leaves nothing behind.
  Status begun = core_.store().BeginRunDecision(worker, run->record.id);
  if (begun.IsBusy() && in_batch_) return std::optional<WorkResponse>();  // decided elsewhere now: decide it alone
  CG_RETURN_IF_ERROR(begun);
  undo_decision_ = false;
  Result<WorkResponse> decided = Status::Internal("the decision did not finish");
  try {
    decided = DecideLocked(*run, request, worker);
  } catch (...) {
    (void)core_.store().EndDecision(/*commit=*/false);
    DropCachesLocked();
    throw;
  }
  Status ended = core_.store().EndDecision(/*commit=*/decided.ok() && !undo_decision_);
  if (!decided.ok() || !ended.ok()) {
    DropCachesLocked();  // they may hold grants or ids the store has just rolled back
    if (decided.ok()) return ended;
  }
  if (!decided.ok()) {
    // A lock another server's batch holds was not waited for: nothing of the decision is stored.
    if (decided.status().IsBusy() && in_batch_) return std::optional<WorkResponse>();
    return decided.status();
  }
  return std::optional<WorkResponse>(std::move(*decided));
}

Result<WorkResponse> DispatcherImpl::DecideLocked(const RunState& run, const WorkRequest& request, WorkerId worker) {
  const int64_t now = core_.env().NowMicros();
  const GrantIndex& index = core_.index();
  const auto& task = run.config->task;
  const auto& b = run.config->blueprint;
  const WorkerRef& ref = request.worker;

  // 1. Requirements, on every request (a grant or revoke applies at once).
  EligibilityResult elig = index.Check(worker, ProviderBit(ref.provider), run.requirements->reqs, now);
  if (!elig.passed) {
    std::string reason = run.reasons[static_cast<size_t>(elig.failed_index)];
    if (reason == "blocked" && run.block != 0 && b.use_screening_task) {
      const GrantIndex::Entry* e = index.Find(worker, run.block, now);
      if (e != nullptr && (e->flags & kFlagByScreening) != 0) reason = "screening_failed";
    }
    return Refusal("not_qualified", reason);
  }

  // 2. Gold standing may have changed under a different policy: disqualify now if so.
  GoldCounts counts;
  if (b.use_golds) {
    counts.completed = index.Value(worker, run.gold_completed, now).value_or(0);
    counts.correct = index.Value(worker, run.gold_correct, now).value_or(0);
    counts.wrong = index.Value(worker, run.gold_wrong, now).value_or(0);
    std::vector<bool> recent;
    if (run.policy.kind == GoldPolicyKind::kMinAccuracy) {
      CG_ASSIGN_OR_RETURN(recent, core_.store().RecentGoldResults(worker, b.gold_qualification_base,
                                                                   run.policy.gold_window));
    }
    if (!WorkerQualifies(run.policy, counts, recent)) {
      GrantOp op{GrantOp::Kind::kSet, ref, run.gold_disqualified, 1, std::nullopt, kGoldActor,
                 "gold standing below the run's policy"};
      CG_ASSIGN_OR_RETURN(auto entries, core_.store().ApplyGrantOps({op}));
      CG_RETURN_IF_ERROR(core_.AfterWrite());
      return Refusal("not_qualified", "gold_disqualified");
    }
  }

  // 3. Held agents: reconnect, or refuse a second session beyond allowed_concurrent.
  CG_ASSIGN_OR_RETURN(std::vector<AgentRecord> open, core_.store().OpenAgents(run.record.id, worker));
  for (const auto& a : open) {
    if (a.kind == AgentKind::kOnboarding) return Respond(run, a, /*reconnected=*/true);
  }
  if (task.allowed_concurrent > 0 && static_cast<int64_t>(open.size()) >= task.allowed_concurrent) {
    if (!request.session.empty()) {
      auto same = std::find_if(open.begin(), open.end(), [&](const auto& a) { return a.session == request.session; });
      if (same == open.end()) return Refusal("no_work", "too_many_concurrent");
      return Respond(run, *same, /*reconnected=*/true);
    }
    return Respond(run, open.front(), /*reconnected=*/true);
  }

  // 4. maximum_units_per_worker, counted over every run of the task name.
  if (task.maximum_units_per_worker > 0) {
    CG_ASSIGN_OR_RETURN(int64_t done, core_.store().CountWorkerUnitsForTask(task.task_name, worker));
    if (done >= task.maximum_units_per_worker) return Refusal("no_work", "max_units_reached");
  }

  // 5. Onboarding: no grant of Q yet -> the onboarding task; Q = 0 means failed.
  if (run.onboarding != 0) {
    auto q = index.Value(worker, run.onboarding, now);
    if (!q.has_value()) {
      AgentRecord a = NewAgent(run, ref, worker, AgentKind::kOnboarding, request.session);
      CG_RETURN_IF_ERROR(core_.store().CreateOnboardingAgent(a));
      return Respond(run, a, false);
    }
    if (*q == 0) return Refusal("not_qualified", "onboarding_failed");
  }

  // 6. Screening: no grant of P yet -> a screening unit (or their first real unit).
  if (b.use_screening_task && !index.Value(worker, run.screening_passed, now).has_value()) {
    if (b.screening_source == ScreeningSource::kFile) return ServeEvalUnit(run, ref, worker, request.session, false);
    AgentRecord a = NewAgent(run, ref, worker, AgentKind::kUnit, request.session);
    a.eval_set = kScreeningEvalSet;  // a real unit whose submission decides the screening
    std::string item;
    CG_ASSIGN_OR_RETURN(std::optional<AgentRecord> got, core_.store().ReserveUnitWithItem(run.record.id, a, &item));
    if (!got) return Refusal("no_work", "no_units_left");
    return Respond(run, *got, false, &item);
  }

  // 7. Gold on the configured schedule.
  if (b.use_golds && WorkerNeedsGold(run.schedule, counts, run.GoldSeed(ref))) {
    return ServeEvalUnit(run, ref, worker, request.session, true);
  }

  // 8. A real unit.
  AgentRecord a = NewAgent(run, ref, worker, AgentKind::kUnit, request.session);
  std::string item;
  CG_ASSIGN_OR_RETURN(std::optional<AgentRecord> got, core_.store().ReserveUnitWithItem(run.record.id, a, &item));
  if (!got) return Refusal("no_work", "no_units_left");
  return Respond(run, *got, false, &item);
}

Result<WorkResponse> DispatcherImpl::ServeEvalUnit(const RunState& run, const WorkerRef& ref, WorkerId worker,
                                                   const std::string& session, bool gold) {
  const auto& b = run.config->blueprint;
  const size_t pool = gold ? b.gold_items.size() : b.screening_items.size();
  if (pool == 0) return Status::Internal("run " + run.record.id + " has no gold/screening items");
  int64_t pick = 0;
  if (gold) {
    // Golds the worker has not seen yet (in any run sharing the base); all seen -> start over.
    CG_ASSIGN_OR_RETURN(std::vector<int64_t> seen, core_.store().GoldsSeen(worker, b.gold_qualification_base));
    std::vector<bool> used(pool, false);
    for (int64_t s : seen) {
      if (s >= 0 && static_cast<size_t>(s) < pool) used[static_cast<size_t>(s)] = true;
    }
    std::vector<int64_t> fresh;
    for (size_t i = 0; i < pool; ++i) {
      if (!used[i]) fresh.push_back(static_cast<int64_t>(i));
    }
    if (fresh.empty()) {
      CG_RETURN_IF_ERROR(core_.store().ForgetGoldsSeen(worker, b.gold_qualification_base));
      for (size_t i = 0; i < pool; ++i) fresh.push_back(static_cast<int64_t>(i));
    }
    pick = fresh[core_.env().Uniform(fresh.size())];
  } else {
    pick = static_cast<int64_t>(core_.env().Uniform(pool));
  }
  AgentRecord a = NewAgent(run, ref, worker, gold ? AgentKind::kGold : AgentKind::kScreening, session);
  a.item_index = pick;
  a.eval_set = gold ? b.gold_qualification_base : b.passed_qualification_name;
  const int64_t cap = gold ? b.max_gold_units : b.max_screening_units;
  CG_ASSIGN_OR_RETURN(bool created, core_.store().CreateEvalUnit(run.record.id, a, cap, a.eval_set));
  if (!created) {
    undo_decision_ = true;  // a refusal changes nothing: not even the golds seen forgotten above
    return Refusal("no_work", gold ? "gold_cap_reached" : "screening_cap_reached");
  }
  return Respond(run, a, false);
}

}  // namespace crowdgate
