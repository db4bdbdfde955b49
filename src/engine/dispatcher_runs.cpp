// Launching runs and the requester's views of them: status, export, review, close.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/data_reader.hpp"
#include "core/eval_lookalike.hpp"
#include "engine/dispatcher_impl.hpp"

namespace crowdgate {

using Lock = EngineLock;

namespace {

Result<std::string> ReadWholeFile(const std::string& path, const std::string& key) {
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument(key + ": cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<LaunchResult> DispatcherImpl::Launch(const RunConfig& config,
                                            const std::function<void(size_t done, size_t total)>& progress) {
  // Read everything from disk before touching the database.
  std::string task_html;
  if (config.blueprint.type == BlueprintType::kStaticHtml) {
    CG_ASSIGN_OR_RETURN(task_html, ReadWholeFile(config.blueprint.task_source, "blueprint.task_source"));
  }
  CG_ASSIGN_OR_RETURN(std::string onboarding_html,
                      ReadWholeFile(config.blueprint.onboarding_template, "blueprint.onboarding_template"));
  // Gold and screening items must not be told apart from the units by their fields.
  const BlueprintConfig& bp = config.blueprint;
  std::vector<EvalSetToCheck> eval_sets;
  if (bp.use_golds && !bp.gold_items.empty()) eval_sets.push_back({"blueprint.gold_file", bp.gold_file, bp.gold_items});
  if (!bp.screening_items.empty()) {
    eval_sets.push_back({"blueprint.screening_file", bp.screening_file, bp.screening_items});
  }
  EvalLookalikeCheck lookalike(std::move(eval_sets));
  std::vector<std::string> items;
  Status read = ReadDataFile(config.blueprint.data, [&items, &lookalike](int64_t, nlohmann::json obj) {
    lookalike.AddRealItem(obj);
    items.push_back(obj.dump());
    return Status::Ok();
  });
  if (!read.ok()) return read.WithContext("blueprint.data");
  if (items.empty()) return Status::InvalidArgument("blueprint.data: " + config.blueprint.data + " holds no items");
  LookalikeFindings findings = lookalike.Finish();
  CG_RETURN_IF_ERROR(findings.error);

  Lock l(core_.mu());
  CG_RETURN_IF_ERROR(core_.Refresh());
  // Fail closed: every qualification the user's requirements name must exist.
  for (size_t i = 0; i < config.qualifications.size(); ++i) {
    const std::string& name = config.qualifications[i].qualification_name;
    auto q = core_.Qual(name);
    if (!q.ok() && q.status().IsNotFound()) {
      return Status::InvalidArgument("qualifications[" + std::to_string(i) + "] (" + name + "): qualification \"" +
                                     name + "\" does not exist; create it first with `crowdgate qual create " + name +
                                     "` (crowdgate refuses to launch rather than let everyone in)");
    }
    if (!q.ok()) return q.status();
  }
  for (const auto& name : DerivedQualificationNames(config)) {
    auto q = core_.store().EnsureQualification(name, "derived by crowdgate for task " + config.task.task_name);
    if (!q.ok()) return q.status();
  }

  RunRecord run;
  run.id = "run_" + core_.env().RandomHex128().substr(0, 16);
  run.task_name = config.task.task_name;
  run.config_json = StoredRunJson(config, task_html, onboarding_html).dump();
  run.status = RunStatus::kOpen;
  run.created_at = core_.env().NowMicros();
  run.num_items = static_cast<int64_t>(items.size());
  run.num_units = run.num_items * config.blueprint.units_per_item;
  const size_t total = items.size();
  CG_RETURN_IF_ERROR(core_.store().CreateRun(run, items, static_cast<int>(config.blueprint.units_per_item),
                                             [&](size_t done) {
                                               if (progress) progress(done, total);
                                             }));
  // Build the state now so a broken stored config shows up at launch, not at the first worker.
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> state, RunLocked(run.id));
  return LaunchResult{run.id, run.num_items, run.num_units, std::move(findings.warnings)};
}

Result<std::vector<RunSummary>> DispatcherImpl::ListRuns() {
  std::vector<std::string> ids;
  {
    Lock l(core_.mu());
    CG_ASSIGN_OR_RETURN(std::vector<RunRecord> runs, core_.store().ListRuns());
    for (const auto& r : runs) ids.push_back(r.id);
  }
  std::vector<RunSummary> out;
  for (const auto& id : ids) {
    CG_ASSIGN_OR_RETURN(RunSummary s, Summarize(id));
    out.push_back(std::move(s));
  }
  return out;
}

Result<RunSummary> DispatcherImpl::Summarize(const std::string& run_id) {
  Lock l(core_.mu());
  auto run = core_.store().GetRun(run_id);
  if (!run.ok()) {
    if (run.status().IsNotFound()) return Status::NotFound("run " + run_id + " does not exist");
    return run.status();
  }
  RunSummary s;
  s.run_id = run->id;
  s.task_name = run->task_name;
  s.status = run->status;
  s.created_at = run->created_at;
  s.gold_served = run->gold_served;
  s.screening_served = run->screening_served;
  if (auto t = gold_tally_.find(run_id); t != gold_tally_.end()) {
    s.golds_right_since_start = t->second.first;
    s.golds_wrong_since_start = t->second.second;
  }
  CG_ASSIGN_OR_RETURN(s.units_by_status, core_.store().UnitStatusCounts(run_id));
  return s;
}

ExportRow ToExportRow(const AgentRecord& a) {
  ExportRow r;
  r.run_id = a.run_id;
  r.unit_id = a.unit_id;
  r.item = a.item_index;
  r.worker = a.worker.ToString();
  r.agent_id = a.id;
  r.kind = ShownKind(a);
  r.status = a.status;
  r.submitted_at = a.submitted_at;
  if (a.submitted_at) r.duration_s = static_cast<double>(*a.submitted_at - a.created_at) / kMicrosPerSecond;
  r.data = a.data_json.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(a.data_json, nullptr, false);
  r.check_result = a.check_result;
  return r;
}

Result<std::vector<ExportRow>> DispatcherImpl::Export(const std::string& run_id) {
  Lock l(core_.mu());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(run_id));
  CG_ASSIGN_OR_RETURN(std::vector<AgentRecord> agents, core_.store().RunAgents(run_id));
  std::vector<ExportRow> rows;
  rows.reserve(agents.size());
  for (const auto& a : agents) rows.push_back(ToExportRow(a));
  return rows;
}

namespace {

// The provider-neutral part of a review's checks; each provider adds its own (Provider::CheckReview).
Status CheckReviewBonus(const ReviewRequest& r) {
  if (r.bonus && !(*r.bonus > 0)) return Status::InvalidArgument("review --bonus: expected an amount above 0");
  if (r.bonus && *r.bonus > 1000) {
    return Status::InvalidArgument("review --bonus: more than 1000 per participant; pay such sums by hand");
  }
  return Status::Ok();
}

}  // namespace

Result<ReviewResult> DispatcherImpl::Review(const ReviewRequest& request) {
  UnitStatus status = UnitStatus::kAccepted;
  if (request.action == "approve") {
    status = UnitStatus::kAccepted;
  } else if (request.action == "reject") {
    status = UnitStatus::kRejected;
  } else if (request.action == "soft-reject") {
    status = UnitStatus::kSoftRejected;
  } else {
    return Status::InvalidArgument("review action \"" + request.action + "\": expected approve, reject or soft-reject");
  }
  const int selectors = (request.all ? 1 : 0) + (request.unit_ids.empty() ? 0 : 1) + (request.worker.empty() ? 0 : 1);
  if (selectors != 1) return Status::InvalidArgument("review: give unit ids, --all or --worker W (exactly one)");
  std::optional<WorkerRef> only_worker;
  if (!request.worker.empty()) {
    CG_ASSIGN_OR_RETURN(WorkerRef w, ParseWorkerRef(request.worker));
    only_worker = w;
  }
  Lock l(core_.mu());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(request.run_id));
  const std::string& provider = run->config->provider.type;
  CG_RETURN_IF_ERROR(CheckReviewBonus(request));
  CG_ASSIGN_OR_RETURN(std::vector<AgentRecord> agents, core_.store().RunAgents(request.run_id));
  std::vector<int64_t> ids;
  std::vector<const AgentRecord*> reviewed;  // the submitting agents of the units that will change
  for (const auto& a : agents) {
    if (!a.unit_id || a.status != AgentStatus::kCompleted) continue;
    const bool chosen = request.all || (only_worker && a.worker == *only_worker) ||
                        std::find(request.unit_ids.begin(), request.unit_ids.end(), *a.unit_id) !=
                            request.unit_ids.end();
    if (!chosen) continue;
    ids.push_back(*a.unit_id);
    reviewed.push_back(&a);
  }
  // Units named explicitly but not submitted still go to the store, which counts only real changes.
  for (int64_t id : request.unit_ids) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  // The provider's side: one row per participant session (a Prolific submission may hold
  // several units; it is approved or rejected once, and paid one bonus).
  std::vector<OutboxRow> rows;
  if (ProviderReviews(provider)) {
    std::vector<std::string> sessions;
    for (const AgentRecord* a : reviewed) {
      if (a->session.empty() || std::find(sessions.begin(), sessions.end(), a->session) != sessions.end()) continue;
      sessions.push_back(a->session);
      nlohmann::json base = {{"run_id", request.run_id}, {"worker", a->worker.ToString()}, {"session", a->session}};
      auto row = [&](const std::string& kind, nlohmann::json payload) {
        OutboxRow r;
        r.provider = provider;
        r.kind = kind;
        r.run_id = request.run_id;
        r.order_key = "session:" + a->session;
        r.payload_json = payload.dump();
        rows.push_back(std::move(r));
      };
      // A soft rejection pays the participant (Prolific approves) but keeps the unit out of the results.
      if (request.action == "reject") {
        nlohmann::json p = base;
        p["message"] = request.reason;
        p["rejection_category"] = request.category;
        row("reject", p);
      } else {
        row("approve", base);
      }
      if (request.bonus) {
        nlohmann::json p = base;
        p["amount"] = *request.bonus;
        row("bonus", p);
      }
    }
  }
  ReviewResult result;
  result.provider_rows = static_cast<int64_t>(rows.size());
  CG_ASSIGN_OR_RETURN(result.reviewed, core_.store().ReviewUnits(request.run_id, ids, status, rows));
  return result;
}

Result<int64_t> DispatcherImpl::EndSession(const std::string& run_id, const std::string& session) {
  if (session.empty()) return Status::InvalidArgument("end session: empty session id");
  Lock l(core_.mu());
  CG_ASSIGN_OR_RETURN(std::vector<AgentRecord> open, core_.store().OpenAgentsOfSession(run_id, session));
  int64_t ended = 0;
  for (const AgentRecord& a : open) {
    auto entries = FinishEndedLocked(a, AgentStatus::kReturned);
    if (entries.ok()) {
      ++ended;
    } else if (!entries.status().IsConflict()) {  // Conflict: it submitted or ended meanwhile
      return entries.status();
    }
  }
  return ended;
}

Result<int64_t> DispatcherImpl::SessionSubmissions(const std::string& run_id, const WorkerRef& worker,
                                                   const std::string& session) {
  Lock l(core_.mu());
  auto w = core_.store().GetWorker(worker);
  if (!w.ok()) return w.status().IsNotFound() ? Result<int64_t>(int64_t{0}) : Result<int64_t>(w.status());
  return core_.store().CountSessionSubmissions(run_id, w->id, session);
}

Status DispatcherImpl::CloseRun(const std::string& run_id) {
  Lock l(core_.mu());
  CG_RETURN_IF_ERROR(core_.store().SetRunStatus(run_id, RunStatus::kClosed));
  auto it = runs_.find(run_id);
  if (it != runs_.end()) it->second->record.status = RunStatus::kClosed;
  return Status::Ok();
}

Result<std::shared_ptr<const RunView>> DispatcherImpl::RunViewOf(const std::string& run_id) {
  Lock l(core_.mu());
  CG_ASSIGN_OR_RETURN(std::shared_ptr<RunState> run, RunLocked(run_id));
  return run->view;
}

}  // namespace crowdgate
