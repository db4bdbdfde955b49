// The provider outbox (counts and rows) and signed worker links.
#include "providers/outbox_json.hpp"
#include "server/requester_api.hpp"

namespace crowdgate {

using namespace requester;

namespace {
constexpr int64_t kDefaultLinkLifetimeSeconds = 7 * 24 * 3600;
}  // namespace

void AddRequesterOutboxRoutes(Router& router, const RequesterContext& ctx) {
  ProviderHub* hub = ctx.hub;

  // A signed link for a local worker: {"worker": "alice", "expires_in_s": 604800} (default 7 days; 0 = never).
  router.Add("POST", "/api/v1/requester/runs/{run_id}/links", Route(ctx, [hub](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"worker", "expires_in_s"}));
               CG_ASSIGN_OR_RETURN(std::string worker, StringField(body, "worker", true));
               int64_t expires_in = kDefaultLinkLifetimeSeconds;
               if (body.contains("expires_in_s")) {
                 if (!body["expires_in_s"].is_number_integer() || body["expires_in_s"].get<int64_t>() < 0) {
                   return Status::InvalidArgument("field \"expires_in_s\": expected an integer >= 0 (0 = never)");
                 }
                 expires_in = body["expires_in_s"].get<int64_t>();
               }
               const int64_t expires_at =
                   expires_in == 0 ? 0 : Env::Default()->NowMicros() / kMicrosPerSecond + expires_in;
               CG_ASSIGN_OR_RETURN(std::string link, hub->WorkerLink(req.path_params.at("run_id"), worker, expires_at));
               return JsonResponse(200, {{"link", link},
                                         {"worker", worker},
                                         {"expires_at", expires_at == 0 ? nlohmann::json(nullptr)
                                                                        : nlohmann::json(FormatTimestamp(
                                                                              expires_at * kMicrosPerSecond))}});
             }));

  // Counts by state and the rows, oldest first (?state=failed&limit=&cursor=).
  router.Add("GET", "/api/v1/requester/outbox", Route(ctx, [hub](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               CG_ASSIGN_OR_RETURN(int64_t cursor, QueryInt(req, "cursor", 0, 0, INT64_MAX));
               std::vector<std::string> states;
               const std::string state = QueryParam(req, "state");
               if (!state.empty()) {
                 if (state != "pending" && state != "retrying" && state != "done" && state != "failed") {
                   return Status::InvalidArgument("state: expected pending, retrying, done or failed");
                 }
                 states.push_back(state);
               }
               CG_ASSIGN_OR_RETURN(OutboxCounts counts, hub->CountOutbox());
               CG_ASSIGN_OR_RETURN(std::vector<OutboxRow> rows, hub->ListOutbox(states, cursor, limit));
               nlohmann::json list = nlohmann::json::array();
               for (const OutboxRow& r : rows) list.push_back(OutboxRowJson(r));
               const ProviderHub::DrainReport totals = hub->totals();
               nlohmann::json out = {{"counts", OutboxCountsJson(counts)},
                                     {"rows", list},
                                     {"delivered_since_start", totals.delivered},
                                     {"failed_since_start", totals.failed}};
               out["next_cursor"] = static_cast<int64_t>(rows.size()) == limit ? nlohmann::json(std::to_string(rows.back().id))
                                                                               : nlohmann::json(nullptr);
               return JsonResponse(200, out);
             }));
}

}  // namespace crowdgate
