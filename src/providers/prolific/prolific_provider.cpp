#include "providers/prolific/prolific_provider.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace crowdgate {

using nlohmann::json;
using prolific::CallOutcome;
using prolific::CallResult;

namespace {

constexpr int64_t kActiveSessionFresh = 60 * kMicrosPerSecond;  // an ACTIVE answer is believed this long
// How long a bonus whose pay call is in doubt is looked for on the submission before the row is
// marked failed for a human to check. It is never paid again automatically.
constexpr int64_t kPayConfirmWindow = 10 * 60 * kMicrosPerSecond;

Delivery Done(int64_t calls) { return {Delivery::Outcome::kDone, "", std::nullopt, calls, false}; }
Delivery Retry(std::string why, int64_t calls, std::optional<int> after = std::nullopt) {
  return {Delivery::Outcome::kRetry, std::move(why), after, calls, false};
}
// A step that failed before reaching a decision (reading the submission first): try the row later.
Delivery RetryAfter(const Status& s, int64_t calls) { return Retry(s.message(), calls); }
Delivery Failed(std::string why, int64_t calls) {
  return {Delivery::Outcome::kFailed, std::move(why), std::nullopt, calls, false};
}

// A call that did not succeed, as a delivery: throttling, 5xx and doubt wait; a refusal fails.
Delivery FromCall(const CallResult& r, const std::string& what, int64_t calls) {
  switch (r.outcome) {
    case CallOutcome::kOk:
      return Done(calls);
    case CallOutcome::kRetry:
    case CallOutcome::kUnknown: {
      // No answer at all (refused, timed out): the provider is away, so the drainer rests. A 429 or
      // a 5xx delays only this row (and those queued behind it for the same worker).
      Delivery d = Retry(what + ": " + r.message, calls, r.retry_after_s);
      d.provider_unavailable = r.http_status == 0;
      return d;
    }
    case CallOutcome::kPermanent:
      break;
  }
  return Failed(what + ": Prolific refused: " + r.message, calls);
}

Status StatusOf(const CallResult& r, const std::string& what) {
  if (r.ok()) return Status::Ok();
  if (r.outcome == CallOutcome::kPermanent) return Status::InvalidArgument(what + ": Prolific refused: " + r.message);
  return Status::Unavailable(what + ": " + r.message);
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string NewCode(Env* env) {
  std::string hex = env->RandomHex128().substr(0, 12);
  std::transform(hex.begin(), hex.end(), hex.begin(), [](char c) { return static_cast<char>(std::toupper(c)); });
  return "CG" + hex;
}

std::string Money(double amount) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", amount);
  return buf;
}

int UnitsPerSession(const RunConfig& c) { return static_cast<int>(std::max<int64_t>(c.provider.units_per_session, 1)); }

bool HeldLive(const std::vector<Grant>& grants, const std::string& qualification, int64_t now) {
  for (const Grant& g : grants) {
    if (g.qualification == qualification && !g.ExpiredAt(now)) return true;
  }
  return false;
}

}  // namespace

ProlificLists ListsOf(const RunConfig& config) {
  ProlificLists lists;
  auto add = [](std::vector<std::string>& v, const std::string& q) {
    if (std::find(v.begin(), v.end(), q) == v.end()) v.push_back(q);
  };
  for (const Requirement& r : config.qualifications) {
    if (!r.AppliesTo("prolific")) continue;
    if (r.comparator == Comparator::kExists) add(lists.allow, r.qualification_name);
    if (r.comparator == Comparator::kDoesNotExist) add(lists.block, r.qualification_name);
  }
  const BlueprintConfig& b = config.blueprint;
  if (b.block_qualification) add(lists.block, *b.block_qualification);
  if (b.onboarding_qualification) add(lists.block, *b.onboarding_qualification + "-failed");
  if (b.use_golds) add(lists.block, b.gold_qualification_base + "-disqualified");
  return lists;
}

ProlificProvider::ProlificProvider(ProviderContext ctx, std::unique_ptr<prolific::Client> client)
    : ctx_(std::move(ctx)), client_(std::move(client)) {}

Result<prolific::Client*> ProlificProvider::ClientOrError() {
  std::lock_guard<std::mutex> l(client_mu_);
  if (!client_) {
    CG_ASSIGN_OR_RETURN(prolific::ClientOptions options, prolific::ClientOptionsFromEnv());
    client_ = std::make_unique<prolific::Client>(std::move(options));
  }
  return client_.get();
}

Status ProlificProvider::CheckLaunch(const RunConfig& config, const std::string& public_url) {
  if (public_url.empty()) {
    return Status::InvalidArgument("a Prolific run needs the public address participants are sent to: "
                                   "--public-url https://HOST or provider.public_url");
  }
  Result<int64_t> reward = prolific::RewardCents(config.task.task_reward, UnitsPerSession(config));
  if (!reward.ok()) return reward.status().WithContext("task.task_reward");
  const auto& specific = config.provider.prolific_specific_qualifications;
  for (size_t i = 0; i < specific.size(); ++i) {
    if (!specific[i].contains("filter_id")) {
      return Status::InvalidArgument(
          "provider.prolific_specific_qualifications[" + std::to_string(i) +
          "]: Prolific replaced eligibility requirements (Mephisto's {name: ...Requirement}) with filters; write "
          "{filter_id: ..., selected_values: [...]} (see GET /api/v1/filters/), and express allow and block lists "
          "as qualifications with Exists / DoesNotExist: crowdgate turns them into participant groups");
    }
  }
  CG_ASSIGN_OR_RETURN(prolific::ClientOptions options, prolific::ClientOptionsFromEnv());
  (void)options;
  return Status::Ok();
}

Status ProlificProvider::Launch(const ProviderRun& run, const std::string& public_url) {
  CG_ASSIGN_OR_RETURN(prolific::Client * client, ClientOrError());
  const RunConfig& c = *run.config;
  json state = {{"study_id", nullptr}, {"published", false}};
  // The workspace holds the study's participant groups.
  std::string workspace = c.provider.prolific_workspace;
  if (workspace.empty()) {
    CallResult ws = client->ListWorkspaces();
    CG_RETURN_IF_ERROR(StatusOf(ws, "list workspaces"));
    const json& results = ws.body.is_object() && ws.body.contains("results") ? ws.body["results"] : json::array();
    if (!results.is_array() || results.empty() || Str(results[0], "id").empty()) {
      return Status::InvalidArgument("your Prolific account has no workspace: create one, or set "
                                        "provider.prolific_workspace");
    }
    workspace = Str(results[0], "id");
  }
  state["workspace_id"] = workspace;
  // The study goes into the workspace's first project (Prolific files studies under projects).
  CallResult projects = client->Request("GET", "/api/v1/workspaces/" + prolific::PercentEncode(workspace) + "/projects/");
  CG_RETURN_IF_ERROR(StatusOf(projects, "list the projects of workspace " + workspace));
  std::string project;
  if (projects.body.is_object() && projects.body["results"].is_array() && !projects.body["results"].empty()) {
    project = Str(projects.body["results"][0], "id");
  }
  state["project_id"] = project;
  // Allow and block lists as participant groups, filled from current grants.
  const ProlificLists lists = ListsOf(c);
  const int64_t now = ctx_.env->NowMicros();
  auto prolific_holders = [&](const std::string& q) -> Result<std::set<std::string>> {
    std::set<std::string> ids;
    auto grants = ctx_.engine->ListGrants(q);
    if (!grants.ok()) {
      if (grants.status().IsNotFound()) return ids;  // derived qualifications may not exist yet
      return grants.status();
    }
    for (const Grant& g : *grants) {
      if (g.worker.provider == "prolific" && !g.ExpiredAt(now)) ids.insert(g.worker.name);
    }
    return ids;
  };
  auto make_group = [&](const std::string& kind, const std::set<std::string>& members) -> Result<std::string> {
    CallResult g = client->CreateParticipantGroup("crowdgate " + run.run_id + " " + kind, workspace,
                                                  std::vector<std::string>(members.begin(), members.end()));
    CG_RETURN_IF_ERROR(StatusOf(g, "create the " + kind + " participant group"));
    const std::string id = Str(g.body, "id");
    if (id.empty()) return Status::Unavailable("create participant group: Prolific's answer has no id");
    return id;
  };
  if (!lists.allow.empty()) {
    std::set<std::string> members;
    for (size_t i = 0; i < lists.allow.size(); ++i) {
      CG_ASSIGN_OR_RETURN(std::set<std::string> holders, prolific_holders(lists.allow[i]));
      if (i == 0) {
        members = std::move(holders);
      } else {
        std::set<std::string> both;
        std::set_intersection(members.begin(), members.end(), holders.begin(), holders.end(),
                              std::inserter(both, both.end()));
        members = std::move(both);
      }
    }
    CG_ASSIGN_OR_RETURN(std::string id, make_group("allow list", members));
    state["allow_group"] = id;
  }
  if (!lists.block.empty()) {
    std::set<std::string> members;
    for (const std::string& q : lists.block) {
      CG_ASSIGN_OR_RETURN(std::set<std::string> holders, prolific_holders(q));
      members.insert(holders.begin(), holders.end());
    }
    CG_ASSIGN_OR_RETURN(std::string id, make_group("block list", members));
    state["block_group"] = id;
  }
  state["allow"] = lists.allow;
  state["block"] = lists.block;
  // Unguessable codes: the normal one, and the one a refused participant gets.
  const std::string completed = NewCode(ctx_.env);
  const std::string screened_out = NewCode(ctx_.env);
  state["completion_code"] = completed;
  state["screened_out_code"] = screened_out;
  prolific::StudyParams params;
  params.name = c.task.task_title;
  params.description = c.task.task_description.empty() ? c.task.task_title : c.task.task_description;
  params.internal_name = "crowdgate " + run.run_id;
  params.public_url = public_url;
  params.run_id = run.run_id;
  params.completed_code = completed;
  params.screened_out_code = screened_out;
  params.total_available_places = static_cast<int>(c.provider.prolific_places);
  params.estimated_completion_minutes = static_cast<int>(c.provider.estimated_completion_time);
  params.task_reward = c.task.task_reward;
  params.units_per_session = UnitsPerSession(c);
  params.prolific_specific_qualifications = c.provider.prolific_specific_qualifications;
  params.project = project;
  if (state.contains("allow_group")) params.allowlist_group_ids.push_back(state["allow_group"]);
  if (state.contains("block_group")) params.blocklist_group_ids.push_back(state["block_group"]);
  CG_ASSIGN_OR_RETURN(json study, prolific::BuildStudyBody(params));
  CallResult created = client->CreateStudy(study);
  CG_RETURN_IF_ERROR(StatusOf(created, "create the study"));
  const std::string study_id = Str(created.body, "id");
  if (study_id.empty()) return Status::Unavailable("create study: Prolific's answer has no id");
  state["study_id"] = study_id;
  CG_RETURN_IF_ERROR(ctx_.save_state(run.run_id, state));
  if (c.provider.publish) {
    ProviderRun saved = run;
    saved.state = state;
    CG_RETURN_IF_ERROR(Publish(saved));
  }
  return Status::Ok();
}

Status ProlificProvider::Publish(const ProviderRun& run) {
  const std::string study = Str(run.state, "study_id");
  if (study.empty()) return Status::InvalidArgument("run " + run.run_id + " has no Prolific study (launch failed?)");
  CG_ASSIGN_OR_RETURN(prolific::Client * client, ClientOrError());
  CG_RETURN_IF_ERROR(StatusOf(client->TransitionStudy(study, "PUBLISH"), "publish study " + study));
  json state = run.state;
  state["published"] = true;
  return ctx_.save_state(run.run_id, state);
}

Status ProlificProvider::Close(const ProviderRun& run) {
  const std::string study = Str(run.state, "study_id");
  if (study.empty()) return Status::Ok();
  CG_ASSIGN_OR_RETURN(prolific::Client * client, ClientOrError());
  if (run.state.value("published", false)) {
    CG_RETURN_IF_ERROR(StatusOf(client->TransitionStudy(study, "STOP"), "stop study " + study));
  }
  json state = run.state;
  state["stopped"] = true;
  return ctx_.save_state(run.run_id, state);
}

Result<ProlificProvider::SessionInfo> ProlificProvider::Session(const std::string& session_id, bool force_read) {
  const int64_t now = ctx_.env->NowMicros();
  {
    std::lock_guard<std::mutex> l(sessions_mu_);
    auto it = sessions_.find(session_id);
    if (!force_read && it != sessions_.end() && it->second.status == "ACTIVE" &&
        now - it->second.read_at < kActiveSessionFresh) {
      return it->second;
    }
  }
  CG_ASSIGN_OR_RETURN(prolific::Client * client, ClientOrError());
  CallResult r = client->GetSubmission(session_id);
  if (!r.ok()) {
    if (r.http_status == 404) return Status::NotFound("no Prolific submission " + session_id);
    std::lock_guard<std::mutex> l(sessions_mu_);
    auto it = sessions_.find(session_id);
    if (it != sessions_.end() && r.outcome != CallOutcome::kPermanent) return it->second;  // Prolific is away
    return StatusOf(r, "read submission " + session_id);
  }
  SessionInfo info;
  info.participant = Str(r.body, "participant");
  if (info.participant.empty()) info.participant = Str(r.body, "participant_id");
  info.study = Str(r.body, "study_id");
  if (info.study.empty()) info.study = Str(r.body, "study");
  info.status = Str(r.body, "status");
  info.read_at = now;
  std::lock_guard<std::mutex> l(sessions_mu_);
  sessions_[session_id] = info;
  return info;
}

Result<WorkRequest> ProlificProvider::Recognize(const ProviderRun& run, const Landing& landing) {
  if (run.config->provider.trust_worker_param) return TrustedLanding(run.run_id, landing);
  if (landing.worker.provider != "prolific") {
    return Status::Unauthenticated("run " + run.run_id + " takes Prolific participants: open it from Prolific");
  }
  if (landing.session.empty()) {
    return Status::Unauthenticated("missing SESSION_ID: open this study from Prolific");
  }
  const std::string study = Str(run.state, "study_id");
  if (study.empty()) return Status::Unavailable("run " + run.run_id + " has no Prolific study yet");
  if (!landing.study.empty() && landing.study != study) {
    return Status::Unauthenticated("STUDY_ID " + landing.study + " is not this run's study");
  }
  auto info = Session(landing.session, false);
  if (!info.ok()) {
    if (info.status().IsNotFound()) {
      return Status::Unauthenticated("PROLIFIC_PID " + landing.worker.name + " has no active submission " +
                                     landing.session + " in this study");
    }
    return info.status();
  }
  if (info->participant != landing.worker.name || info->study != study) {
    return Status::Unauthenticated("PROLIFIC_PID " + landing.worker.name + " has no active submission " +
                                   landing.session + " in this study");
  }
  if (info->status != "ACTIVE" && info->status != "RESERVED") {
    return Status::Unauthenticated("your Prolific submission " + landing.session + " is " + info->status +
                                   ", not active: there is no more work in it");
  }
  return TrustedLanding(run.run_id, landing);
}

std::optional<std::string> ProlificProvider::SessionEndUrl(const ProviderRun& run, bool refused) {
  const std::string code = Str(run.state, refused ? "screened_out_code" : "completion_code");
  if (code.empty()) return std::nullopt;
  return prolific::CompletionRedirectUrl(code);
}

Status ProlificProvider::CheckReview(const ProviderRun& run, const ReviewRequest& review) {
  if (review.action != "reject") return Status::Ok();
  if (review.reason.size() < prolific::kMinRejectionMessage) {
    return Status::InvalidArgument("review reject on Prolific: --reason must be at least 100 characters (Prolific "
                                   "sends it to the participant), got " + std::to_string(review.reason.size()));
  }
  if (!prolific::IsRejectionCategory(review.category)) {
    std::string all;
    for (const std::string& c : prolific::RejectionCategories()) all += (all.empty() ? "" : ", ") + c;
    return Status::InvalidArgument("review reject on Prolific: --category must be one of " + all);
  }
  return Status::Ok();
}

Delivery ProlificProvider::Deliver(const OutboxRow& row,
                                   const std::function<Status(const nlohmann::json&)>& save_progress) {
  json payload = json::parse(row.payload_json, nullptr, false);
  if (!payload.is_object()) return Failed("outbox row " + std::to_string(row.id) + ": payload is not JSON", 0);
  if (row.kind == "grant_sync") return DeliverGrantSync(row, payload);
  if (row.kind == "approve" || row.kind == "reject") return DeliverReview(row, payload);
  if (row.kind == "bonus") return DeliverBonus(row, payload, save_progress);
  return Failed("unknown outbox row kind \"" + row.kind + "\"", 0);
}

Delivery ProlificProvider::DeliverGrantSync(const OutboxRow& row, const json& payload) {
  Result<WorkerRef> worker = ParseWorkerRef(Str(payload, "worker"));
  if (!worker.ok() || worker->provider != "prolific") return Failed("grant_sync: not a Prolific worker", 0);
  const std::string qualification = Str(payload, "qualification");
  const int64_t now = ctx_.env->NowMicros();
  bool held = !payload["value"].is_null();
  if (held && payload["expires_at"].is_number_integer() && payload["expires_at"].get<int64_t>() <= now) held = false;
  std::optional<std::vector<Grant>> current;  // the worker's other grants, read once if needed
  auto holds = [&](const std::string& q) -> Result<bool> {
    if (q == qualification) return held;
    if (!current) {
      auto info = ctx_.engine->ShowWorker(worker->ToString());
      if (!info.ok()) return info.status();
      current = info->grants;
    }
    return HeldLive(*current, q, now);
  };
  Result<prolific::Client*> client = ClientOrError();
  if (!client.ok()) return Failed(client.status().message(), 0);
  int64_t calls = 0;
  for (const auto& run : ctx_.runs()) {
    if (run->status != RunStatus::kOpen || Str(run->state, "study_id").empty() || run->state.value("stopped", false)) continue;
    const json allow = run->state.value("allow", json::array());
    const json block = run->state.value("block", json::array());
    auto uses = [&](const json& list) { return std::find(list.begin(), list.end(), qualification) != list.end(); };
    std::vector<std::pair<std::string, bool>> changes;  // group id, member?
    if (uses(allow) && !Str(run->state, "allow_group").empty()) {
      bool all = true;
      for (const json& q : allow) {
        Result<bool> h = holds(q.get<std::string>());
        if (!h.ok()) return RetryAfter(h.status(), calls);
        all = all && *h;
      }
      changes.emplace_back(Str(run->state, "allow_group"), all);
    }
    if (uses(block) && !Str(run->state, "block_group").empty()) {
      bool any = false;
      for (const json& q : block) {
        Result<bool> h = holds(q.get<std::string>());
        if (!h.ok()) return RetryAfter(h.status(), calls);
        any = any || *h;
      }
      changes.emplace_back(Str(run->state, "block_group"), any);
    }
    for (const auto& [group, member] : changes) {
      CallResult r = member ? (*client)->AddToGroup(group, {worker->name}) : (*client)->RemoveFromGroup(group, {worker->name});
      ++calls;
      if (!r.ok()) return FromCall(r, std::string(member ? "add to" : "remove from") + " group " + group, calls);
    }
  }
  return Done(calls);
}

Delivery ProlificProvider::DeliverReview(const OutboxRow& row, const json& payload) {
  const std::string session = Str(payload, "session");
  auto info = Session(session, true);
  if (!info.ok()) {
    if (info.status().IsNotFound()) return Failed("no Prolific submission " + session, 1);
    return RetryAfter(info.status(), 1);
  }
  const std::string want = row.kind == "approve" ? "APPROVED" : "REJECTED";
  if (info->status == want) return Done(1);  // done before (a repeat after a crash or a timeout)
  if (info->status == "ACTIVE" || info->status == "RESERVED" || info->status == "PROCESSING") {
    return Retry("submission " + session + " is " + info->status + ": waiting for the participant to finish", 1);
  }
  if (info->status != "AWAITING REVIEW") {
    return Failed("submission " + session + " is " + info->status + " on Prolific; cannot " + row.kind + " it", 1);
  }
  Result<prolific::Client*> client = ClientOrError();
  if (!client.ok()) return Failed(client.status().message(), 1);
  json body = prolific::ApproveBody();
  if (row.kind == "reject") {
    Result<json> reject = prolific::BuildRejectBody(Str(payload, "message"), Str(payload, "rejection_category"));
    if (!reject.ok()) return Failed(reject.status().message(), 1);
    body = std::move(reject).value();
  }
  CallResult r = (*client)->TransitionSubmission(session, body);
  return FromCall(r, row.kind + " submission " + session, 2);
}

Delivery ProlificProvider::DeliverBonus(const OutboxRow& row, const json& payload,
                                        const std::function<Status(const nlohmann::json&)>& save_progress) {
  const std::string session = Str(payload, "session");
  Result<WorkerRef> worker = ParseWorkerRef(Str(payload, "worker"));
  if (!worker.ok()) return Failed("bonus: bad worker in the row", 0);
  const double amount = payload.value("amount", 0.0);
  std::string study;
  for (const auto& run : ctx_.runs()) {
    if (run->run_id == Str(payload, "run_id")) study = Str(run->state, "study_id");
  }
  if (study.empty()) return Failed("bonus: run " + Str(payload, "run_id") + " has no Prolific study", 0);
  Result<prolific::Client*> client = ClientOrError();
  if (!client.ok()) return Failed(client.status().message(), 0);
  json progress = json::parse(row.progress_json, nullptr, false);
  if (!progress.is_object()) progress = json::object();
  int64_t calls = 0;
  auto payments_now = [&]() -> Result<int64_t> {
    ++calls;
    CallResult r = (*client)->GetSubmission(session);
    if (!r.ok()) return StatusOf(r, "read submission " + session);
    const json& p = r.body.contains("bonus_payments") ? r.body["bonus_payments"] : json::array();
    return p.is_array() ? static_cast<int64_t>(p.size()) : int64_t{0};
  };
  const int64_t now = ctx_.env->NowMicros();
  if (progress.contains("pay_sent_at")) {
    // The pay call may have gone through: look, never pay again.
    Result<int64_t> count = payments_now();
    if (!count.ok()) return RetryAfter(count.status(), calls);
    if (*count > progress.value("payments_before", int64_t{0})) return Done(calls);
    if (now - progress["pay_sent_at"].get<int64_t>() < kPayConfirmWindow) {
      return Retry("bonus pay call in doubt: waiting for the payment to show on submission " + session, calls);
    }
    return Failed("bonus of " + Money(amount) + " for " + worker->name + " (submission " + session +
                      "): the pay call was sent but no payment shows on Prolific; check the study's bonus "
                      "payments and pay by hand if it is missing (crowdgate never pays twice)",
                  calls);
  }
  if (!progress.contains("setup_id")) {
    Result<int64_t> before = payments_now();
    if (!before.ok()) return RetryAfter(before.status(), calls);
    ++calls;
    Result<int64_t> cents = prolific::AmountToCents(amount);
    if (!cents.ok()) return Failed("bonus: " + cents.status().message(), calls);
    Result<std::string> csv = prolific::BuildBonusCsv({{worker->name, *cents}});
    if (!csv.ok()) return Failed("bonus: " + csv.status().message(), calls);
    CallResult setup = (*client)->SetUpBonus(study, *csv);
    if (!setup.ok()) return FromCall(setup, "set up bonus", calls);
    const std::string id = Str(setup.body, "id");
    if (id.empty()) return Retry("set up bonus: Prolific's answer has no id", calls);
    progress["setup_id"] = id;
    progress["payments_before"] = *before;
    Status saved = save_progress(progress);
    if (!saved.ok()) return Retry("could not record the bonus set-up: " + saved.message(), calls);
  }
  // Record the attempt before the call: after a crash or a timeout the row is reconciled above.
  progress["pay_sent_at"] = now;
  Status saved = save_progress(progress);
  if (!saved.ok()) return Retry("could not record the pay attempt: " + saved.message(), calls);
  ++calls;
  CallResult paid = (*client)->PayBonus(progress["setup_id"].get<std::string>());
  if (paid.ok()) return Done(calls);
  if (paid.http_status == 429 || paid.outcome == CallOutcome::kPermanent) {
    // Throttled or refused: Prolific did not pay, so the attempt mark comes off.
    progress.erase("pay_sent_at");
    Status cleared = save_progress(progress);
    if (!cleared.ok()) return Retry("could not clear the pay attempt: " + cleared.message(), calls);
    return FromCall(paid, "pay bonus", calls);
  }
  return Retry("pay bonus: " + paid.message + " (in doubt: will check the submission, not pay again)", calls);
}

Status ProlificProvider::Poll(
    const std::function<Status(const std::string& run_id, const std::string& session)>& end_session) {
  Result<prolific::Client*> client = ClientOrError();
  if (!client.ok()) return client.status();
  const int64_t now = ctx_.env->NowMicros();
  for (const auto& run : ctx_.runs()) {
    const std::string study = Str(run->state, "study_id");
    if (run->status != RunStatus::kOpen || study.empty() || !run->state.value("published", false)) continue;
    constexpr int kPageSize = 200;
    for (int page = 1;; ++page) {
      CallResult r = (*client)->ListSubmissions(study, page, kPageSize);
      CG_RETURN_IF_ERROR(StatusOf(r, "list submissions of study " + study));
      const json& results = r.body.is_object() && r.body.contains("results") ? r.body["results"] : json::array();
      if (!results.is_array()) break;
      for (const json& s : results) {
        SessionInfo info;
        info.participant = Str(s, "participant_id");
        if (info.participant.empty()) info.participant = Str(s, "participant");
        info.study = study;
        info.status = Str(s, "status");
        info.read_at = now;
        const std::string id = Str(s, "id");
        {
          std::lock_guard<std::mutex> l(sessions_mu_);
          sessions_[id] = info;
        }
        if (info.status == "RETURNED" || info.status == "TIMED-OUT") {
          CG_RETURN_IF_ERROR(end_session(run->run_id, id));
        }
      }
      if (static_cast<int>(results.size()) < kPageSize) break;
    }
  }
  return Status::Ok();
}

}  // namespace crowdgate
