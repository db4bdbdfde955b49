// Aggregated labels of a run: GET /api/v1/requester/runs/{run_id}/aggregate — one label per item
// (?view=items, the default) or, per worker, the estimated accuracy, the agreement with the
// aggregated labels and the median seconds per unit (?view=workers), a page at a time.
//
// Aggregating reads every submission of the run, so the result is kept per (run, method, field)
// and computed again only when the run's unit counts have moved since: paging through a large
// result, or polling a finished run, costs one summary read per call.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/run_config.hpp"
#include "engine/run_judgments.hpp"
#include "server/requester_api.hpp"

namespace crowdgate {

using namespace requester;

namespace {

struct Aggregated {
  std::string version;  // the run's unit counts when it was computed
  AggregatedRun run;
  std::vector<double> agreement;
  std::vector<int32_t> compared;
  std::vector<double> median_seconds;  // per worker id: median seconds per submitted real unit (NaN: none)
};

// Per worker of `l`: the median of their submitted real units' durations.
std::vector<double> MedianSecondsPerUnit(const std::vector<ExportRow>& rows, const LoadedJudgments& l) {
  std::vector<std::vector<double>> seconds(l.workers.size());
  for (const ExportRow& r : rows) {
    if (r.kind != AgentKind::kUnit || !r.submitted_at || !r.duration_s) continue;
    const int32_t w = l.workers.Find(r.worker);
    if (w >= 0) seconds[static_cast<size_t>(w)].push_back(*r.duration_s);
  }
  std::vector<double> out(seconds.size(), NAN);
  for (size_t w = 0; w < seconds.size(); ++w) {
    std::vector<double>& v = seconds[w];
    if (v.empty()) continue;
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = (m + *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid))) / 2;
    out[w] = m;
  }
  return out;
}

class AggregateCache {
 public:
  // The run's aggregate, computed now when there is none for this version.
  Result<std::shared_ptr<const Aggregated>> Get(RunDispatcher* d, const std::string& run_id, AggregationMethod method,
                                                const std::string& field) {
    CG_ASSIGN_OR_RETURN(RunSummary summary, d->Summarize(run_id));
    std::string version;
    for (const auto& [status, n] : summary.units_by_status) version += status + "=" + std::to_string(n) + ";";
    version += "gold=" + std::to_string(summary.gold_served);
    const auto key = std::make_tuple(run_id, static_cast<int>(method), field);
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = entries_.find(key);
      if (it != entries_.end() && it->second->version == version) return it->second;
    }
    auto fresh = std::make_shared<Aggregated>();
    fresh->version = version;
    CG_ASSIGN_OR_RETURN(fresh->run, AggregateRun(*d, run_id, method, field));
    const LoadedJudgments& judgments = *fresh->run.judgments;
    AgreementWithAggregate(judgments, fresh->run.result.items, &fresh->agreement, &fresh->compared);
    fresh->median_seconds = MedianSecondsPerUnit(fresh->run.rows, judgments);
    fresh->run.rows = {};  // kept only while computing: the pages need the judgments, not the export
    std::lock_guard<std::mutex> l(mu_);
    // A handful of (run, method, field) results at most: drop them all rather than track age.
    if (entries_.size() >= 16) entries_.clear();
    entries_[key] = fresh;
    return std::shared_ptr<const Aggregated>(fresh);
  }

 private:
  std::mutex mu_;
  std::map<std::tuple<std::string, int, std::string>, std::shared_ptr<const Aggregated>> entries_;
};

nlohmann::json NumberOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json Summary(const Aggregated& a, AggregationMethod method) {
  const LoadedJudgments& l = *a.run.judgments;
  return {{"method", std::string(AggregationMethodName(method))},
          {"field", l.field},
          {"items_total", l.output_items.size()},
          {"judgments", l.judgments.size()},
          {"workers_total", l.workers.size()},
          {"golds_used", l.golds_used},
          {"iterations", a.run.result.iterations},
          {"converged", a.run.result.converged}};
}

}  // namespace

void AddRequesterAggregateRoutes(Router& router, const RequesterContext& ctx) {
  auto cache = std::make_shared<AggregateCache>();
  // ?method=majority|dawid-skene|wawa (default dawid-skene) &field= &view=items|workers &limit= &cursor=
  router.Add("GET", "/api/v1/requester/runs/{run_id}/aggregate",
             Route(ctx, [d = ctx.dispatcher, cache](const HttpRequest& req) -> Result<HttpResponse> {
               const std::string method_name = QueryParam(req, "method");
               CG_ASSIGN_OR_RETURN(AggregationMethod method,
                                   ParseAggregationMethod(method_name.empty() ? "dawid-skene" : method_name));
               std::string view = QueryParam(req, "view");
               if (view.empty()) view = "items";
               if (view != "items" && view != "workers") {
                 return Status::InvalidArgument("view must be items or workers, not \"" + view + "\"");
               }
               CG_ASSIGN_OR_RETURN(int64_t limit, PageLimit(req));
               CG_ASSIGN_OR_RETURN(int64_t offset, QueryInt(req, "cursor", 0, 0, INT64_MAX));
               CG_ASSIGN_OR_RETURN(std::shared_ptr<const Aggregated> a,
                                   cache->Get(d, req.path_params.at("run_id"), method, QueryParam(req, "field")));
               const LoadedJudgments& l = *a->run.judgments;
               const AggregateResult& result = a->run.result;
               nlohmann::json items = nlohmann::json::array();
               const size_t total = view == "items" ? l.output_items.size() : l.workers.size();
               size_t k = static_cast<size_t>(std::min<int64_t>(offset, static_cast<int64_t>(total)));
               for (; k < total && static_cast<int64_t>(items.size()) < limit; ++k) {
                 if (view == "items") {
                   items.push_back(ItemLabelJson(l, result, l.output_items[k]));
                 } else {
                   const auto w = static_cast<int32_t>(k);
                   items.push_back({{"worker", std::string(l.workers.name(w))},
                                    {"accuracy", NumberOrNull(result.worker_accuracy[k])},
                                    {"agreement", NumberOrNull(a->agreement[k])},
                                    {"median_seconds_per_unit", NumberOrNull(a->median_seconds[k])},
                                    {"labels", result.worker_labels[k]}});
                 }
               }
               nlohmann::json out = Summary(*a, method);
               out["view"] = view;
               out["items"] = std::move(items);
               out["next_cursor"] = k < total ? nlohmann::json(std::to_string(k)) : nlohmann::json(nullptr);
               return JsonResponse(200, out);
             }));
}

}  // namespace crowdgate
