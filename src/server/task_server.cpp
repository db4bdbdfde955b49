#include "server/task_server.hpp"

#include <chrono>
#include <iostream>

#include "core/run_config.hpp"
#include "core/secure_compare.hpp"
#include "providers/outbox_json.hpp"
#include "server/dashboard.hpp"
#include "server/requester_api.hpp"
#include "server/worker_pages.hpp"

namespace crowdgate {

std::string FillTemplate(const std::string& html, const nlohmann::json& data) {
  std::string out;
  out.reserve(html.size() + 256);
  size_t pos = 0;
  while (true) {
    const size_t open = html.find("${", pos);
    if (open == std::string::npos) break;
    const size_t close = html.find('}', open + 2);
    if (close == std::string::npos) break;
    out.append(html, pos, open - pos);
    const std::string key = html.substr(open + 2, close - open - 2);
    if (data.is_object() && data.contains(key)) {
      const auto& v = data[key];
      out += HtmlEscape(v.is_string() ? v.get<std::string>() : v.dump());
    }
    pos = close + 1;
  }
  out.append(html, pos, std::string::npos);
  return out;
}

namespace {

HttpResponse Html(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

Result<std::string> StringField(const nlohmann::json& j, const char* key, bool required) {
  if (!j.contains(key)) {
    if (required) return Status::InvalidArgument(std::string("missing field \"") + key + "\"");
    return std::string();
  }
  if (!j[key].is_string()) return Status::InvalidArgument(std::string("field \"") + key + "\": expected a string");
  return j[key].get<std::string>();
}

// Who a page's query says the worker is: local (?worker=NAME&sig=...), MTurk (workerId,
// assignmentId, hitId) or Prolific (PROLIFIC_PID, STUDY_ID, SESSION_ID). The run's provider
// decides whether to believe it (ProviderHub::Recognize).
Result<Landing> PageLanding(const HttpRequest& req) {
  auto q = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  Landing l;
  std::string text;
  if (!q("workerId").empty()) {
    text = "mturk:" + q("workerId");
    l.session = q("assignmentId");
  } else if (!q("PROLIFIC_PID").empty()) {
    text = "prolific:" + q("PROLIFIC_PID");
    l.session = q("SESSION_ID");
    l.study = q("STUDY_ID");
  } else if (!q("worker").empty()) {
    text = q("worker");
    l.sig = q("sig");
  } else {
    return Status::InvalidArgument(
        "say who you are: open your link (?worker=NAME&sig=...), or come from Prolific (PROLIFIC_PID)");
  }
  CG_ASSIGN_OR_RETURN(l.worker, ParseWorkerRef(text));
  return l;
}

// The same from a JSON work request {"provider", "worker", "session", "study", "sig"}.
Result<Landing> BodyLanding(const nlohmann::json& body) {
  CG_RETURN_IF_ERROR(OnlyKeys(body, {"provider", "worker", "session", "study", "sig"}));
  CG_ASSIGN_OR_RETURN(std::string provider, StringField(body, "provider", false));
  CG_ASSIGN_OR_RETURN(std::string worker, StringField(body, "worker", true));
  Landing l;
  CG_ASSIGN_OR_RETURN(l.session, StringField(body, "session", false));
  CG_ASSIGN_OR_RETURN(l.study, StringField(body, "study", false));
  CG_ASSIGN_OR_RETURN(l.sig, StringField(body, "sig", false));
  const bool qualified_name = worker.find(':') != std::string::npos;
  CG_ASSIGN_OR_RETURN(l.worker, ParseWorkerRef(provider.empty() || qualified_name ? worker : provider + ":" + worker));
  if (!provider.empty() && l.worker.provider != provider) {
    return Status::InvalidArgument("worker \"" + worker + "\" does not belong to provider " + provider);
  }
  return l;
}

// An error of the worker page. A link that does not let the worker in (401) gets a page a person can
// read; every other error keeps the API's JSON error body, as before signed links.
HttpResponse PageError(const Status& status, const std::string& title) {
  HttpResponse r = ErrorResponse(status);
  if (status.code() != Status::Code::kUnauthenticated) return r;
  r.content_type = "text/html; charset=utf-8";
  r.body = RenderMessagePage(title, "This link does not let you in: " + status.message() + ".");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

// Where a worker's session goes after this answer, if it is over: the provider's completion URL
// (Prolific), chosen by whether they were refused or ran out of work after working.
std::optional<std::string> SessionEnd(ProviderHub* hub, Dispatcher* d, const WorkRequest& w, const WorkResponse& work) {
  if (work.outcome == "unit" || work.outcome == "onboarding") return std::nullopt;
  if (work.reason == "too_many_concurrent") return std::nullopt;  // they still hold a unit
  bool refused = work.outcome == "not_qualified";
  if (!refused) {
    Result<int64_t> done = w.session.empty() ? Result<int64_t>(int64_t{0}) : d->SessionSubmissions(w.run_id, w.worker, w.session);
    refused = !done.ok() || *done == 0;  // nothing done in the session: screened out, not completed
  }
  return hub->SessionEndUrl(w.run_id, refused);
}

// A work request's decision. Inside a batch it does not wait for another server deciding about
// the same worker: nullopt then means "run this job again outside the batch" (the slow lane).
std::optional<Result<WorkResponse>> DecideWork(Dispatcher* d, const WorkRequest& w, bool in_batch) {
  if (!in_batch) return d->RequestWork(w);
  Result<std::optional<WorkResponse>> r = d->TryRequestWorkWithoutBlocking(w);
  if (!r.ok()) return Result<WorkResponse>(r.status());
  if (!r->has_value()) return std::nullopt;
  return Result<WorkResponse>(std::move(**r));
}

// True when the worker has done provider.units_per_session units in this session.
bool SessionFull(ProviderHub* hub, Dispatcher* d, const WorkRequest& w) {
  if (w.session.empty()) return false;
  const int64_t limit = hub->UnitsPerSession(w.run_id);
  if (limit <= 0) return false;
  Result<int64_t> done = d->SessionSubmissions(w.run_id, w.worker, w.session);
  return done.ok() && *done >= limit;
}

std::string CompletionPage(const std::string& title, const std::string& url, bool refused) {
  const std::string text = refused ? "You cannot continue with this task. Please go back to Prolific:"
                                   : "Thank you, you have finished. Please go back to Prolific to complete your "
                                     "submission:";
  return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + HtmlEscape(title) +
         "</title><meta http-equiv=\"refresh\" content=\"3;url=" + HtmlEscape(url) +
         "\"></head><body>\n<h1>" + HtmlEscape(title) + "</h1>\n<p>" + HtmlEscape(text) + " <a id=\"cg-complete\" href=\"" +
         HtmlEscape(url) + "\">" + HtmlEscape(url) + "</a></p>\n</body></html>\n";
}

std::string RefusalText(const WorkResponse& w) {
  // Gold refusals must not tell the worker that golds exist (or that they failed them): the
  // page stays neutral; the API, the export and the logs keep the exact reason.
  if (w.reason == "gold_disqualified" || w.reason == "gold_cap_reached") {
    return "There is no work for you right now. Please try again later.";
  }
  if (w.outcome == "not_qualified") {
    return "You are not currently qualified to work on this task (" + w.reason + ").";
  }
  return "There is no work for you right now (" + w.reason + "). Please try again later.";
}

template <typename F>
HttpHandler Guarded(F f) {
  return [f](const HttpRequest& req) -> HttpResponse {
    Result<HttpResponse> r = f(req);
    if (!r.ok()) return ErrorResponse(r.status());
    return std::move(r).value();
  };
}

// A route decided on the batch queue: `prepare` runs on the io thread (parse, validate: no
// store access) and returns the job, or an error to answer at once.
template <typename F>
AsyncHttpHandler Batched(BatchQueue* queue, F prepare) {
  return [queue, prepare](const HttpRequest& req, HttpResponder respond) {
    Result<BatchQueue::Job> job = prepare(req);
    if (!job.ok()) return respond(ErrorResponse(job.status()));
    queue->Submit(std::move(job).value(), std::move(respond));
  };
}

}  // namespace

TaskServer::TaskServer(Engine* engine, RunDispatcher* dispatcher, TaskServerOptions options)
    : engine_(engine), dispatcher_(dispatcher), options_(std::move(options)) {}

TaskServer::~TaskServer() { Stop(); }

Router TaskServer::BuildRouter() {
  Router router;
  RunDispatcher* d = dispatcher_;
  BatchQueue* q = queue_.get();
  Engine* engine = engine_;
  ProviderHub* hub = options_.providers;
  const std::string requester_token = options_.requester_token;

  router.Add("GET", "/healthz", [](const HttpRequest&) { return JsonResponse(200, {{"status", "ok"}}); });
  // Readiness for a load balancer: /healthz says the process answers, /readyz that it can also
  // reach its database (one cheap round trip). Any failure is a 503, so the balancer takes this
  // server out of rotation, whatever the store's own error code.
  router.Add("GET", "/readyz", [engine](const HttpRequest&) {
    Status s = engine->CheckStore();
    if (!s.ok()) return ErrorResponse(Status::Unavailable("the database is not reachable: " + s.message()));
    return JsonResponse(200, {{"status", "ready"}});
  });

  ServerMetrics* metrics = metrics_.get();
  router.AddAsync("GET", "/runs/{run_id}", [q, d, hub, metrics](const HttpRequest& req, HttpResponder respond) {
    const std::string run_id = req.path_params.at("run_id");
    Result<Landing> landing = PageLanding(req);
    if (!landing.ok()) return respond(PageError(landing.status(), "crowdgate"));
    // Recognised on the io thread: a Prolific session may need one call to Prolific.
    Result<WorkRequest> who = hub->Recognize(run_id, *landing);
    if (!who.ok()) return respond(PageError(who.status(), "crowdgate"));
    q->Submit(BatchQueue::Job([d, hub, metrics, w = std::move(who).value()](bool in_batch) -> std::optional<HttpResponse> {
                Result<std::shared_ptr<const RunView>> view = d->RunViewOf(w.run_id);
                if (!view.ok()) return PageError(view.status(), "crowdgate");
                const std::string& title = (*view)->config->task.task_title;
                if ((*view)->config->blueprint.type == BlueprintType::kJson) {
                  return PageError(Status::NotFound("run " + w.run_id + " uses blueprint.type json: there is no "
                                                    "page; use POST /api/v1/runs/" + w.run_id + "/work"),
                                   title);
                }
                if (w.session == "ASSIGNMENT_ID_NOT_AVAILABLE") {  // MTurk preview: show, assign nothing
                  return Html(200, RenderMessagePage(title, "Accept the HIT to start working on this task."));
                }
                if (SessionFull(hub, d, w)) {
                  if (auto url = hub->SessionEndUrl(w.run_id, false)) return Html(200, CompletionPage(title, *url, false));
                }
                std::optional<Result<WorkResponse>> decided = DecideWork(d, w, in_batch);
                if (!decided) return std::nullopt;  // another server is deciding about this worker: the slow lane
                Result<WorkResponse>& work = *decided;
                if (!work.ok()) return PageError(work.status(), title);
                metrics->ObserveWork(work->outcome, work->reason);
                if (work->outcome == "unit" || work->outcome == "onboarding") {
                  return Html(200, RenderWorkPage(**view, *work));
                }
                if (auto url = SessionEnd(hub, d, w, *work)) {
                  return Html(200, CompletionPage(title, *url, work->outcome == "not_qualified"));
                }
                return Html(200, RenderMessagePage(title, RefusalText(*work)));
              }),
              std::move(respond));
  });

  router.AddAsync("POST", "/api/v1/runs/{run_id}/work", [q, d, hub, metrics](const HttpRequest& req, HttpResponder respond) {
    Result<nlohmann::json> body = ParseBody(req);
    if (!body.ok()) return respond(ErrorResponse(body.status()));
    Result<Landing> landing = BodyLanding(*body);
    if (!landing.ok()) return respond(ErrorResponse(landing.status()));
    Result<WorkRequest> who = hub->Recognize(req.path_params.at("run_id"), *landing);
    if (!who.ok()) return respond(ErrorResponse(who.status()));
    q->Submit(BatchQueue::Job([d, hub, metrics, w = std::move(who).value()](bool in_batch) -> std::optional<HttpResponse> {
                if (SessionFull(hub, d, w)) {
                  if (auto url = hub->SessionEndUrl(w.run_id, false)) {
                    return JsonResponse(200, {{"outcome", "no_work"}, {"reason", "no_units_left"},
                                              {"completion_url", *url}});
                  }
                }
                std::optional<Result<WorkResponse>> decided = DecideWork(d, w, in_batch);
                if (!decided) return std::nullopt;  // another server is deciding about this worker: the slow lane
                Result<WorkResponse>& work = *decided;
                if (!work.ok()) return ErrorResponse(work.status());
                metrics->ObserveWork(work->outcome, work->reason);
                nlohmann::json out = work->ToJson();
                if (auto url = SessionEnd(hub, d, w, *work)) out["completion_url"] = *url;
                return JsonResponse(200, out);
              }),
              std::move(respond));
  });

  auto token_of = [](const HttpRequest& req) { return BearerToken(req).value_or(""); };

  router.AddAsync("POST", "/api/v1/agents/{agent_id}/submit",
                  Batched(q, [d, token_of](const HttpRequest& req) -> Result<BatchQueue::Job> {
                    const std::string token = token_of(req);
                    if (token.empty()) return Status::Unauthenticated("missing Authorization: Bearer TOKEN");
                    CG_ASSIGN_OR_RETURN(nlohmann::json body, ParseBody(req));
                    CG_RETURN_IF_ERROR(OnlyKeys(body, {"data"}));
                    if (!body.contains("data") || !body["data"].is_object()) {
                      return Status::InvalidArgument("field \"data\": expected a JSON object with the answers");
                    }
                    const std::string agent_id = req.path_params.at("agent_id");
                    return BatchQueue::Job(
                        [d, agent_id, token, data = std::move(body["data"])](bool in_batch) -> std::optional<HttpResponse> {
                          if (!in_batch) {
                            Result<SubmitResponse> direct = d->Submit(agent_id, token, data);
                            if (!direct.ok()) return ErrorResponse(direct.status());
                            return JsonResponse(200, {{"outcome", direct->outcome}});
                          }
                          Result<std::optional<SubmitResponse>> r = d->TrySubmitWithoutBlocking(agent_id, token, data);
                          if (!r.ok()) return ErrorResponse(r.status());
                          if (!r->has_value()) return std::nullopt;  // an external check: the slow lane
                          return JsonResponse(200, {{"outcome", (*r)->outcome}});
                        });
                  }));

  router.AddAsync("POST", "/api/v1/agents/{agent_id}/return",
                  Batched(q, [d, token_of](const HttpRequest& req) -> Result<BatchQueue::Job> {
                    const std::string token = token_of(req);
                    if (token.empty()) return Status::Unauthenticated("missing Authorization: Bearer TOKEN");
                    const std::string agent_id = req.path_params.at("agent_id");
                    return BatchQueue::Job([d, agent_id, token](bool) -> std::optional<HttpResponse> {
                      Status st = d->Return(agent_id, token);
                      if (!st.ok()) return ErrorResponse(st);
                      return JsonResponse(200, {{"outcome", "returned"}});
                    });
                  }));

  router.Add("GET", "/api/v1/agents/{agent_id}", Guarded([d, token_of](const HttpRequest& req) -> Result<HttpResponse> {
               const std::string token = token_of(req);
               if (token.empty()) return Status::Unauthenticated("missing Authorization: Bearer TOKEN");
               CG_ASSIGN_OR_RETURN(AgentView v, d->GetAgent(req.path_params.at("agent_id"), token));
               return JsonResponse(200, {{"agent_id", v.agent_id},
                                         {"run_id", v.run_id},
                                         {"status", v.status},
                                         {"onboarding", v.onboarding},
                                         {"data", v.data},
                                         {"submission", v.submission},
                                         {"deadline", FormatTimestamp(v.deadline)}});
             }));

  // ---- requester API, dashboard and metrics: need the requester token ----
  RequesterContext rctx{engine, d, hub, requester_token, sessions_.get()};
  AddRequesterRoutes(router, rctx);
  AddDashboardRoutes(router, rctx);
  router.Add("GET", "/metrics", [this, rctx, metrics](const HttpRequest& req) -> HttpResponse {
    if (!options_.metrics_public) {
      if (Status st = requester::Authorize(rctx, req); !st.ok()) return ErrorResponse(st);
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics->Render(MetricSamples());
    return r;
  });
  router.Observe([metrics](const std::string& route, int status, double seconds) {
    metrics->ObserveRequest(route, status, seconds);
  });
  return router;
}

std::vector<ServerMetrics::Sample> TaskServer::MetricSamples() const {
  std::vector<ServerMetrics::Sample> out;
  const BatchQueue::Stats b = batch_stats();
  out.push_back({"crowdgate_commit_batches_total", "counter", "Group-commit batches (one store transaction each).", "",
                 static_cast<double>(b.batches)});
  out.push_back({"crowdgate_commit_batch_jobs_total", "counter", "Requests decided in group-commit batches.", "",
                 static_cast<double>(b.jobs)});
  out.push_back({"crowdgate_commit_batch_largest", "gauge", "Largest batch so far.", "",
                 static_cast<double>(b.largest_batch)});
  out.push_back({"crowdgate_commit_batch_seconds_total", "counter", "Time spent deciding and committing batches.",
                 "", b.batch_seconds_total});
  out.push_back({"crowdgate_commit_batch_cpu_seconds_total", "counter",
                 "CPU time the deciding thread spent on batches (the rest of the batch time is waiting for the disk "
                 "or for a core).",
                 "", b.batch_cpu_seconds_total});
  out.push_back({"crowdgate_commit_batches_retried_total", "counter",
                 "Batches decided again after losing a conflict with another server (PostgreSQL deadlock).", "",
                 static_cast<double>(dispatcher_->BatchesRetried())});
  out.push_back({"crowdgate_commit_slow_lane_jobs_total", "counter",
                 "Submissions whose check command ran outside a batch.", "", static_cast<double>(b.slow_lane_jobs)});
  out.push_back({"crowdgate_requests_shed_total", "counter",
                 "Worker requests refused with 503 and Retry-After because the queue was full.", "",
                 static_cast<double>(b.shed)});
  out.push_back({"crowdgate_commit_queue_jobs", "gauge", "Worker requests waiting for a batch or the slow lane.", "",
                 static_cast<double>(b.queued)});
  out.push_back({"crowdgate_grants_expired_total", "counter",
                 "Grants whose expiry passed, revoked by this server's expiry sweep since start.", "",
                 static_cast<double>(grants_expired_.load())});
  if (options_.providers != nullptr) {
    if (Result<OutboxCounts> c = options_.providers->CountOutbox(); c.ok()) {
      const std::pair<const char*, int64_t> states[] = {
          {"pending", c->pending}, {"retrying", c->retrying}, {"done", c->done}, {"failed", c->failed}};
      for (const auto& [state, n] : states) {
        out.push_back({"crowdgate_outbox_rows", "gauge", "Provider outbox rows by state.",
                       std::string("state=\"") + state + "\"", static_cast<double>(n)});
      }
    }
    const ProviderHub::DrainReport t = options_.providers->totals();
    out.push_back({"crowdgate_outbox_delivered_total", "counter", "Outbox rows delivered since start.", "",
                   static_cast<double>(t.delivered)});
    out.push_back({"crowdgate_outbox_failures_total", "counter", "Outbox deliveries refused for good since start.",
                   "", static_cast<double>(t.failed)});
    out.push_back({"crowdgate_outbox_retries_total", "counter", "Outbox deliveries to be tried again, since start.",
                   "", static_cast<double>(t.retrying)});
  }
  if (Result<std::vector<RunSummary>> runs = dispatcher_->ListRuns(); runs.ok()) {
    for (const RunSummary& r : *runs) {
      out.push_back({"crowdgate_golds_served", "gauge", "Gold units served, by run.",
                     "run=\"" + PromLabel(r.run_id) + "\"", static_cast<double>(r.gold_served)});
    }
    for (const RunSummary& r : *runs) {
      out.push_back({"crowdgate_golds_scored_total", "counter", "Gold submissions scored, by run and result, since start.",
                     "run=\"" + PromLabel(r.run_id) + "\",result=\"right\"", static_cast<double>(r.golds_right_since_start)});
      out.push_back({"crowdgate_golds_scored_total", "counter", "Gold submissions scored, by run and result, since start.",
                     "run=\"" + PromLabel(r.run_id) + "\",result=\"wrong\"", static_cast<double>(r.golds_wrong_since_start)});
    }
    for (const RunSummary& r : *runs) {
      out.push_back({"crowdgate_screening_served", "gauge", "Screening units served, by run.",
                     "run=\"" + PromLabel(r.run_id) + "\"", static_cast<double>(r.screening_served)});
    }
  }
  return out;
}

Status TaskServer::Start() {
  if (options_.providers == nullptr) return Status::Internal("TaskServer: options.providers is required");
  if (options_.requester_token.empty()) options_.requester_token = Env::Default()->RandomHex128();
  sessions_ = std::make_unique<DashboardSessions>();
  metrics_ = std::make_unique<ServerMetrics>();
  BatchQueue::Options batching = options_.batching;
  if (const size_t limit = dispatcher_->PreferredBatchLimit(); limit > 0 && limit < batching.max_batch) {
    batching.max_batch = limit;
  }
  queue_ = std::make_unique<BatchQueue>(dispatcher_, batching);
  queue_->Start();
  http_ = std::make_unique<HttpServer>(options_.http, BuildRouter());
  CG_RETURN_IF_ERROR(http_->Start());
  stop_ = false;
  expiry_thread_ = std::thread([this] {
    while (!stop_) {
      for (int waited = 0; waited < options_.expiry_interval_ms && !stop_; waited += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (stop_) break;
      auto n = dispatcher_->ExpireOverdue();
      if (!n.ok()) std::cerr << "crowdgate: lease expiry failed: " << n.status().ToString() << "\n";
    }
  });
  grant_sweep_thread_ = std::thread([this] {
    while (!stop_) {
      SweepExpiredGrants();  // at start, then every interval
      for (int waited = 0; waited < options_.grant_sweep_interval_ms && !stop_; waited += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });
  return Status::Ok();
}

void TaskServer::SweepExpiredGrants() {
  Result<int64_t> n = engine_->RevokeExpiredGrants();
  if (!n.ok()) {
    std::cerr << "crowdgate: grant expiry sweep failed: " << n.status().ToString() << "\n";
    return;
  }
  if (*n == 0) return;
  grants_expired_ += *n;
  std::cerr << "crowdgate: grant expiry sweep revoked " << *n << " expired grant" << (*n == 1 ? "" : "s") << "\n";
}

void TaskServer::Stop() {
  stop_ = true;
  if (expiry_thread_.joinable()) expiry_thread_.join();
  if (grant_sweep_thread_.joinable()) grant_sweep_thread_.join();
  if (http_) http_->Stop();  // in-flight requests are still answered by the queue meanwhile
  if (queue_) queue_->Stop();
}

int TaskServer::port() const { return http_ ? http_->port() : 0; }

}  // namespace crowdgate
