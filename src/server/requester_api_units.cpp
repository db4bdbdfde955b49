// Units and agents of a run (paginated, filtered), one agent with what the worker saw, its preview
// rendered with the run's template, and review actions.
#include "server/requester_api.hpp"
#include "server/task_server.hpp"

namespace crowdgate {

using namespace requester;

namespace {

// The preview runs nothing and reaches nothing: a CSP sandbox (an opaque origin, no scripts, no
// forms) and no network at all but inline styles and data: images. The dashboard frames it with
// the iframe sandbox attribute too.
constexpr const char* kPreviewCsp =
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'";

}  // namespace

void AddRequesterUnitRoutes(Router& router, const RequesterContext& ctx) {
  RunDispatcher* d = ctx.dispatcher;
  ProviderHub* hub = ctx.hub;

  // ?status=&kind=&worker=&limit=&cursor=
  router.Add("GET", "/api/v1/requester/runs/{run_id}/units", Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               AgentListRequest r;
               r.run_id = req.path_params.at("run_id");
               r.status = QueryParam(req, "status");
               r.kind = QueryParam(req, "kind");
               r.worker = QueryParam(req, "worker");
               if (!r.kind.empty() && !ParseAgentKind(r.kind)) {
                 return Status::InvalidArgument("kind: expected unit, gold, screening or onboarding, got \"" + r.kind +
                                                "\"");
               }
               CG_ASSIGN_OR_RETURN(r.limit, PageLimit(req));
               CG_ASSIGN_OR_RETURN(r.cursor, QueryInt(req, "cursor", 0, 0, INT64_MAX));
               CG_ASSIGN_OR_RETURN(AgentListPage page, d->ListAgents(r));
               nlohmann::json items = nlohmann::json::array();
               for (const ExportRow& row : page.rows) items.push_back(ExportRowJson(row));
               return Page(std::move(items), page.next_cursor == 0 ? "" : std::to_string(page.next_cursor));
             }));

  router.Add("GET", "/api/v1/requester/agents/{agent_id}", Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               nlohmann::json inputs;
               CG_ASSIGN_OR_RETURN(ExportRow row, d->AgentRow(req.path_params.at("agent_id"), &inputs));
               nlohmann::json out = ExportRowJson(row);
               out["inputs"] = inputs;
               out["preview"] = "/api/v1/requester/agents/" + row.agent_id + "/preview";
               return JsonResponse(200, out);
             }));

  // The run's template filled with what the worker saw and what they answered (an answer never
  // replaces an input: the page shows what the worker was really shown).
  router.Add("GET", "/api/v1/requester/agents/{agent_id}/preview",
             Route(ctx, [d](const HttpRequest& req) -> Result<HttpResponse> {
               nlohmann::json inputs;
               CG_ASSIGN_OR_RETURN(ExportRow row, d->AgentRow(req.path_params.at("agent_id"), &inputs));
               CG_ASSIGN_OR_RETURN(std::shared_ptr<const RunView> view, d->RunViewOf(row.run_id));
               nlohmann::json fields = inputs.is_object() ? inputs : nlohmann::json::object();
               if (row.data.is_object()) {
                 for (const auto& [k, v] : row.data.items()) {
                   if (!fields.contains(k)) fields[k] = v;
                 }
               }
               std::string html = view->task_html.empty()
                                      ? "<!doctype html><meta charset=\"utf-8\"><pre>" + HtmlEscape(fields.dump(2)) + "</pre>"
                                      : FillTemplate(view->task_html, fields);
               HttpResponse r;
               r.content_type = "text/html; charset=utf-8";
               r.body = std::move(html);
               r.headers.emplace_back("Content-Security-Policy", kPreviewCsp);
               r.headers.emplace_back("X-Content-Type-Options", "nosniff");
               r.headers.emplace_back("Cache-Control", "no-store");
               return r;
             }));

  // {"action": "approve|reject|soft-reject", "units": [ids] | "worker": W | "all": true, "reason", "category",
  //  "bonus"}. The provider's rules are checked first (Prolific rejections), then the units change.
  router.Add("POST", "/api/v1/requester/runs/{run_id}/review",
             Route(ctx, [d, hub](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"action", "units", "worker", "all", "reason", "category", "bonus"}));
               ReviewRequest r;
               r.run_id = req.path_params.at("run_id");
               CG_ASSIGN_OR_RETURN(r.action, StringField(body, "action", true));
               if (r.action != "approve" && r.action != "reject" && r.action != "soft-reject") {
                 return Status::InvalidArgument("field \"action\": expected approve, reject or soft-reject");
               }
               CG_ASSIGN_OR_RETURN(r.worker, StringField(body, "worker", false));
               CG_ASSIGN_OR_RETURN(r.reason, StringField(body, "reason", false));
               CG_ASSIGN_OR_RETURN(r.category, StringField(body, "category", false));
               if (body.contains("all")) {
                 if (!body["all"].is_boolean()) return Status::InvalidArgument("field \"all\": expected true or false");
                 r.all = body["all"].get<bool>();
               }
               if (body.contains("units")) {
                 if (!body["units"].is_array()) return Status::InvalidArgument("field \"units\": expected a list of unit ids");
                 for (const auto& u : body["units"]) {
                   if (!u.is_number_integer()) return Status::InvalidArgument("field \"units\": expected integer unit ids");
                   r.unit_ids.push_back(u.get<int64_t>());
                 }
               }
               if (body.contains("bonus")) {
                 if (!body["bonus"].is_number()) return Status::InvalidArgument("field \"bonus\": expected an amount");
                 r.bonus = body["bonus"].get<double>();
               }
               const int ways = (r.all ? 1 : 0) + (r.worker.empty() ? 0 : 1) + (r.unit_ids.empty() ? 0 : 1);
               if (ways != 1) {
                 return Status::InvalidArgument("say which units: exactly one of \"units\", \"worker\" or \"all\"");
               }
               CG_RETURN_IF_ERROR(hub->CheckReview(r));
               CG_ASSIGN_OR_RETURN(ReviewResult result, d->Review(r));
               return JsonResponse(200, {{"reviewed", result.reviewed}, {"provider_rows", result.provider_rows}});
             }));
}

}  // namespace crowdgate
