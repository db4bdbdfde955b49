// Runs: list, detail (counts, settings), throughput series, per-worker quality, timeline.
#include <algorithm>
#include <map>

#include "core/run_config.hpp"
#include "server/requester_api.hpp"

namespace crowdgate {

using namespace requester;

namespace {

nlohmann::json SummaryJson(const RunSummary& s) {
  nlohmann::json units = nlohmann::json::object();
  int64_t total = 0;
  for (const auto& [k, n] : s.units_by_status) {
    units[k] = n;
    total += n;
  }
  return {{"run_id", s.run_id},         {"task_name", s.task_name},
          {"status", s.status},         {"created_at", FormatTimestamp(s.created_at)},
          {"units", units},             {"units_total", total},
          {"gold_served", s.gold_served}, {"screening_served", s.screening_served}};
}

// What a worker's latest timeline entry says about them: blocked / disqualified / onboarding_failed.
struct WorkerState {
  std::string state = "active";
  std::string reason;
};

std::map<std::string, WorkerState> StatesFromTimeline(const std::vector<AuditEntry>& timeline) {
  std::map<std::string, WorkerState> out;
  for (const AuditEntry& e : timeline) {
    if (e.worker_id == 0) continue;
    WorkerState& w = out[e.worker.ToString()];
    if (!e.new_value || *e.new_value == 0) {
      w = WorkerState{};
      continue;
    }
    const std::string& q = e.qualification;
    w.state = q.ends_with("-disqualified") ? "disqualified" : q.ends_with("-failed") ? "onboarding_failed" : "blocked";
    w.reason = e.reason.empty() ? q : e.reason;
  }
  return out;
}

}  // namespace

void AddRequesterRunRoutes(Router& router, const RequesterContext& ctx) {
  RunDispatcher* d = ctx.dispatcher;

  // ?status=open|closed&limit=&cursor= (cursor: the last run id of the page before).
  router.Add("GET", "/api/v1/requester/runs", Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               const std::string status = QueryParam(req, "status");
               const std::optional<RunStatus> wanted = ParseRunStatus(status);  // an unknown word matches no run
               const std::string cursor = QueryParam(req, "cursor");
               CG_ASSIGN_OR_RETURN(std::vector<RunSummary> runs, d->ListRuns());
               std::sort(runs.begin(), runs.end(),
                         [](const RunSummary& a, const RunSummary& b) { return a.run_id < b.run_id; });
               nlohmann::json items = nlohmann::json::array();
               std::string next;
               for (const RunSummary& s : runs) {
                 if (!cursor.empty() && s.run_id <= cursor) continue;
                 if (!status.empty() && (!wanted || s.status != *wanted)) continue;
                 if (static_cast<int64_t>(items.size()) == limit) {
                   next = items.back()["run_id"].get<std::string>();
                   break;
                 }
                 items.push_back(SummaryJson(s));
               }
               return Page(std::move(items), next);
             }));

  router.Add("GET", "/api/v1/requester/runs/{run_id}", Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               const std::string run_id = req.path_params.at("run_id");
               CG_ASSIGN_OR_RETURN(RunSummary s, d->Summarize(run_id));
               CG_ASSIGN_OR_RETURN(std::shared_ptr<const RunView> view, d->RunViewOf(run_id));
               const RunConfig& c = *view->config;
               nlohmann::json out = SummaryJson(s);
               out["task_title"] = c.task.task_title;
               out["blueprint_type"] = c.blueprint.type == BlueprintType::kJson ? "json" : "static_html";
               out["units_per_item"] = c.blueprint.units_per_item;
               out["onboarding"] = c.blueprint.onboarding_qualification.has_value();
               out["screening"] = c.blueprint.use_screening_task;
               out["golds"] = c.blueprint.use_golds;
               out["max_gold_units"] = c.blueprint.max_gold_units;
               out["max_screening_units"] = c.blueprint.max_screening_units;
               return JsonResponse(200, out);
             }));

  // Submissions per bucket: ?bucket_s=60 (1..86400).
  router.Add("GET", "/api/v1/requester/runs/{run_id}/throughput",
             Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t bucket, QueryInt(req, "bucket_s", 60, 1, 86400));
               CG_ASSIGN_OR_RETURN(auto series, d->Throughput(req.path_params.at("run_id"), bucket * kMicrosPerSecond));
               nlohmann::json points = nlohmann::json::array();
               for (const auto& [at, n] : series) points.push_back({{"t", at / kMicrosPerSecond}, {"submitted", n}});
               return JsonResponse(200, {{"bucket_s", bucket}, {"points", points}});
             }));

  // Per-worker quality, a page of workers in id order (?limit=&cursor=), filterable by ?state=.
  router.Add("GET", "/api/v1/requester/runs/{run_id}/workers",
             Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               const std::string run_id = req.path_params.at("run_id");
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               CG_ASSIGN_OR_RETURN(int64_t after, QueryInt(req, "cursor", 0, 0, INT64_MAX));
               const std::string state_filter = QueryParam(req, "state");
               CG_ASSIGN_OR_RETURN(std::vector<WorkerRunStats> stats, d->WorkerStats(run_id, after, limit));
               CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> timeline, d->Timeline(run_id));
               const std::map<std::string, WorkerState> states = StatesFromTimeline(timeline);
               nlohmann::json items = nlohmann::json::array();
               for (const WorkerRunStats& s : stats) {
                 const std::string name = s.worker.ToString();
                 auto st = states.find(name);
                 const WorkerState state = st == states.end() ? WorkerState{} : st->second;
                 if (!state_filter.empty() && state.state != state_filter) continue;
                 const int64_t golds = s.golds_right + s.golds_wrong;
                 items.push_back(
                     {{"worker", name},
                      {"onboarding", s.onboarding.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.onboarding)},
                      {"units", s.units_submitted},
                      {"open", s.units_open},
                      {"golds_right", s.golds_right},
                      {"golds_wrong", s.golds_wrong},
                      {"gold_accuracy", golds == 0 ? nlohmann::json(nullptr)
                                                   : nlohmann::json(static_cast<double>(s.golds_right) / golds)},
                      {"screening_passed", s.screening_passed},
                      {"screening_failed", s.screening_failed},
                      {"mean_seconds_per_unit",
                       s.units_submitted == 0 ? nlohmann::json(nullptr)
                                              : nlohmann::json(static_cast<double>(s.unit_seconds_total_micros) /
                                                               kMicrosPerSecond / s.units_submitted)},
                      {"first_seen", FormatTimestamp(s.first_seen)},
                      {"last_seen", FormatTimestamp(s.last_seen)},
                      {"state", state.state},
                      {"reason", state.reason}});
               }
               const bool more = static_cast<int64_t>(stats.size()) == limit;
               return Page(std::move(items), more ? std::to_string(stats.back().worker_id) : "");
             }));

  // Disqualifications and blocks of the run, oldest first (?limit=&cursor= by audit seq).
  router.Add("GET", "/api/v1/requester/runs/{run_id}/timeline",
             Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               CG_ASSIGN_OR_RETURN(int64_t after, QueryInt(req, "cursor", 0, 0, INT64_MAX));
               CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> timeline, d->Timeline(req.path_params.at("run_id")));
               nlohmann::json items = nlohmann::json::array();
               std::string next;
               for (const AuditEntry& e : timeline) {
                 if (e.seq <= after) continue;
                 if (static_cast<int64_t>(items.size()) == limit) {
                   next = std::to_string(items.back()["seq"].get<int64_t>());
                   break;
                 }
                 items.push_back(AuditJson(e));
               }
               return Page(std::move(items), next);
             }));

  router.Add("POST", "/api/v1/requester/runs/{run_id}/close",
             Route(ctx, [d, hub = ctx.hub](const HttpRequest& req) -> Result<HttpResponse> {
               const std::string run_id = req.path_params.at("run_id");
               CG_RETURN_IF_ERROR(hub->Close(run_id));
               return JsonResponse(200, {{"run_id", run_id}, {"status", "closed"}});
             }));
  (void)d;
}

}  // namespace crowdgate
