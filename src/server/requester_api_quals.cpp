// Qualifications: list, create, holders, grant / revoke (reason, expiry), CSV import, history.
#include <sstream>

#include "server/requester_api.hpp"

namespace crowdgate {

using namespace requester;

namespace {

// "worker[,value]" per line; a first line "worker[,value]" is a header; blank lines are skipped.
Result<std::vector<ImportRow>> ParseImportCsv(const std::string& csv, int64_t default_value) {
  std::vector<ImportRow> rows;
  std::istringstream in(csv);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const size_t comma = line.find(',');
    std::string worker = line.substr(0, comma);
    std::string value = comma == std::string::npos ? "" : line.substr(comma + 1);
    if (n == 1 && worker == "worker") continue;
    ImportRow r;
    r.worker = worker;
    r.line = n;
    r.value = default_value;
    if (!value.empty()) {
      try {
        size_t used = 0;
        r.value = std::stoll(value, &used);
        if (used != value.size()) throw std::invalid_argument(value);
      } catch (const std::exception&) {
        return Status::InvalidArgument("csv line " + std::to_string(n) + ": value \"" + value +
                                       "\" is not an integer");
      }
    }
    rows.push_back(std::move(r));
  }
  if (rows.empty()) return Status::InvalidArgument("csv: no rows (expected worker[,value] per line)");
  return rows;
}

}  // namespace

void AddRequesterQualificationRoutes(Router& router, const RequesterContext& ctx) {
  Engine* engine = ctx.engine;

  router.Add("GET", "/api/v1/requester/qualifications",
             Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               const std::string cursor = QueryParam(req, "cursor");
               CG_ASSIGN_OR_RETURN(std::vector<QualificationSummary> quals, engine->ListQualifications());
               std::sort(quals.begin(), quals.end(), [](const auto& a, const auto& b) {
                 return a.qualification.name < b.qualification.name;
               });
               nlohmann::json items = nlohmann::json::array();
               std::string next;
               for (const QualificationSummary& q : quals) {
                 if (!cursor.empty() && q.qualification.name <= cursor) continue;
                 if (static_cast<int64_t>(items.size()) == limit) {
                   next = items.back()["name"].get<std::string>();
                   break;
                 }
                 items.push_back({{"name", q.qualification.name},
                                  {"description", q.qualification.description},
                                  {"created_at", FormatTimestamp(q.qualification.created_at)},
                                  {"live_grants", q.live_grants}});
               }
               return Page(std::move(items), next);
             }));

  router.Add("POST", "/api/v1/requester/qualifications",
             Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"name", "description"}));
               CG_ASSIGN_OR_RETURN(std::string name, StringField(body, "name", true));
               CG_ASSIGN_OR_RETURN(std::string description, StringField(body, "description", false));
               CG_ASSIGN_OR_RETURN(Qualification q, engine->CreateQualification(name, description));
               return JsonResponse(201, {{"name", q.name}, {"description", q.description},
                                         {"created_at", FormatTimestamp(q.created_at)}});
             }));

  // Live holders by worker name (?limit=&cursor= the last worker of the page before).
  router.Add("GET", "/api/v1/requester/qualifications/{name}/holders",
             Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               const std::string cursor = QueryParam(req, "cursor");
               CG_ASSIGN_OR_RETURN(std::vector<Grant> grants, engine->ListGrants(req.path_params.at("name")));
               nlohmann::json items = nlohmann::json::array();
               std::string next;
               for (const Grant& g : grants) {
                 const std::string w = g.worker.ToString();
                 if (!cursor.empty() && w <= cursor) continue;
                 if (static_cast<int64_t>(items.size()) == limit) {
                   next = items.back()["worker"].get<std::string>();
                   break;
                 }
                 items.push_back(GrantJson(g));
               }
               return Page(std::move(items), next);
             }));

  // {"worker", "value"?, "reason"?, "expires"? ("30d", "12h", ...)}
  router.Add("POST", "/api/v1/requester/qualifications/{name}/grant",
             Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"worker", "value", "reason", "expires"}));
               GrantRequest g;
               g.qualification = req.path_params.at("name");
               CG_ASSIGN_OR_RETURN(g.worker, StringField(body, "worker", true));
               CG_ASSIGN_OR_RETURN(g.reason, StringField(body, "reason", false));
               CG_ASSIGN_OR_RETURN(std::string expires, StringField(body, "expires", false));
               CG_ASSIGN_OR_RETURN(g.expires_at, ParseExpiry(expires, Env::Default()->NowMicros()));
               if (body.contains("value")) {
                 if (!body["value"].is_number_integer()) return Status::InvalidArgument("field \"value\": expected an integer");
                 g.value = body["value"].get<int64_t>();
               }
               CG_ASSIGN_OR_RETURN(AuditEntry e, engine->Grant(g));
               return JsonResponse(200, {{"worker", e.worker.ToString()},
                                         {"qualification", g.qualification},
                                         {"value", g.value},
                                         {"expires_at", Timestamp(g.expires_at)}});
             }));

  router.Add("POST", "/api/v1/requester/qualifications/{name}/revoke",
             Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"worker", "value", "reason"}));
               CG_ASSIGN_OR_RETURN(std::string worker, StringField(body, "worker", true));
               CG_ASSIGN_OR_RETURN(std::string reason, StringField(body, "reason", false));
               CG_ASSIGN_OR_RETURN(bool revoked, engine->Revoke(req.path_params.at("name"), worker, reason));
               return JsonResponse(200, {{"revoked", revoked}});
             }));

  // {"csv": "worker[,value]\n...", "value"?: default value, "reason"?}: all rows or none.
  router.Add("POST", "/api/v1/requester/qualifications/{name}/import",
             Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
               CG_RETURN_IF_ERROR(OnlyKeys(body, {"csv", "value", "reason"}));
               CG_ASSIGN_OR_RETURN(std::string csv, StringField(body, "csv", true));
               CG_ASSIGN_OR_RETURN(std::string reason, StringField(body, "reason", false));
               int64_t value = 1;
               if (body.contains("value")) {
                 if (!body["value"].is_number_integer()) return Status::InvalidArgument("field \"value\": expected an integer");
                 value = body["value"].get<int64_t>();
               }
               CG_ASSIGN_OR_RETURN(std::vector<ImportRow> rows, ParseImportCsv(csv, value));
               CG_ASSIGN_OR_RETURN(ImportSummary s, engine->Import(req.path_params.at("name"), rows, reason, {}));
               return JsonResponse(200, {{"rows", s.rows}, {"granted", s.granted}, {"changed", s.changed}});
             }));

  // ?qualification=&worker=&limit=&cursor= (audit seq); newest first.
  router.Add("GET", "/api/v1/requester/history", Route(ctx, [engine](const HttpRequest& req) -> Result<HttpResponse> {
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               CG_ASSIGN_OR_RETURN(int64_t before, QueryInt(req, "cursor", 0, 0, INT64_MAX));
               const std::string q = QueryParam(req, "qualification");
               const std::string w = QueryParam(req, "worker");
               CG_ASSIGN_OR_RETURN(std::vector<AuditEntry> h,
                                   engine->History(q.empty() ? std::nullopt : std::optional<std::string>(q),
                                                   w.empty() ? std::nullopt : std::optional<std::string>(w)));
               nlohmann::json items = nlohmann::json::array();
               std::string next;
               for (auto it = h.rbegin(); it != h.rend(); ++it) {
                 if (before != 0 && it->seq >= before) continue;
                 if (static_cast<int64_t>(items.size()) == limit) {
                   next = std::to_string(items.back()["seq"].get<int64_t>());
                   break;
                 }
                 items.push_back(AuditJson(*it));
               }
               return Page(std::move(items), next);
             }));
}

}  // namespace crowdgate
