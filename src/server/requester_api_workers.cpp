// One worker: grants, history, the runs they worked in with their figures, and blocking them.
#include "core/run_config.hpp"
#include "server/requester_api.hpp"

namespace crowdgate {

using namespace requester;

void AddRequesterWorkerRoutes(Router& router, const RequesterContext& ctx) {
  Engine* engine = ctx.engine;
  RunDispatcher* d = ctx.dispatcher;

  router.Add("GET", "/api/v1/requester/workers/{worker}",
             Route(ctx, [engine, d](const HttpRequest& req) -> Result<HttpResponse> {
               const std::string name = req.path_params.at("worker");
               CG_ASSIGN_OR_RETURN(WorkerInfo info, engine->ShowWorker(name));
               nlohmann::json grants = nlohmann::json::array();
               for (const Grant& g : info.grants) grants.push_back(GrantJson(g));
               CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> h, engine->History(std::nullopt, name));
               nlohmann::json history = nlohmann::json::array();
               // The latest 100 changes; the history endpoint pages through the rest.
               for (auto it = h.rbegin(); it != h.rend() && history.size() < 100; ++it) history.push_back(AuditJson(*it));
               // Their figures in each run: one keyset probe per run (worker ids start at 1).
               CG_ASSIGN_OR_RETURN(std::vector<RunSummary> runs, d->ListRuns());
               nlohmann::json in_runs = nlohmann::json::array();
               for (const RunSummary& r : runs) {
                 CG_ASSIGN_OR_RETURN(std::vector<WorkerRunStats> s, d->WorkerStats(r.run_id, info.worker.id - 1, 1));
                 if (s.empty() || s[0].worker_id != info.worker.id) continue;
                 in_runs.push_back({{"run_id", r.run_id},
                                    {"task_name", r.task_name},
                                    {"units", s[0].units_submitted},
                                    {"open", s[0].units_open},
                                    {"golds_right", s[0].golds_right},
                                    {"golds_wrong", s[0].golds_wrong},
                                    {"onboarding", s[0].onboarding}});
               }
               return JsonResponse(200, {{"worker", info.worker.ref.ToString()},
                                         {"grants", grants},
                                         {"history", history},
                                         {"runs", in_runs}});
             }));

  // {"run_id", "reason"?, "expires"?}: grants the run's blueprint.block_qualification, so the worker's
  // next work request in any run using it is refused with "blocked".
  router.Add("POST", "/api/v1/requester/workers/{worker}/block",
             Route(ctx, [engine, d](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"run_id", "reason", "expires"}));
               CG_ASSIGN_OR_RETURN(std::string run_id, StringField(body, "run_id", true));
               CG_ASSIGN_OR_RETURN(std::shared_ptr<const RunView> view, d->RunViewOf(run_id));
               const auto& block = view->config->blueprint.block_qualification;
               if (!block) {
                 return Status::InvalidArgument("run " + run_id + " has no blueprint.block_qualification to block with");
               }
               GrantRequest g;
               g.qualification = *block;
               g.worker = req.path_params.at("worker");
               CG_ASSIGN_OR_RETURN(g.reason, StringField(body, "reason", false));
               CG_ASSIGN_OR_RETURN(std::string expires, StringField(body, "expires", false));
               CG_ASSIGN_OR_RETURN(g.expires_at, ParseExpiry(expires, Env::Default()->NowMicros()));
               CG_ASSIGN_OR_RETURN(AuditEntry e, engine->Grant(g));
               return JsonResponse(200, {{"worker", e.worker.ToString()},
                                         {"qualification", *block},
                                         {"expires_at", Timestamp(g.expires_at)}});
             }));
}

}  // namespace crowdgate
