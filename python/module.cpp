// The Python module `crowdgate`: crowdgate's engine for notebooks and scripts, with the
// names Mephisto users know (find_or_create_qualification, grant_qualification,
// make_qualification_dict, worker_is_qualified). Built with pybind11 over the public C++
// API (include/crowdgate/), except `aggregate`, which needs the run's config and so the
// engine's own RunDispatcher (engine/run_dispatcher.hpp).
//
// Every call that touches the database releases the GIL. A Database is safe to use while
// `crowdgate serve` runs on the same database: the engine re-reads what other processes
// committed before it answers, and the server sees this process's grants at its next request.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <memory>
#include <mutex>

#include "convert.hpp"
#include "crowdgate/engine.hpp"
#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"
#include "core/run_config.hpp"
#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "engine/run_judgments.hpp"

namespace crowdgate::python {
namespace {

using Json = nlohmann::json;

Json Time(int64_t micros) { return FormatTimestamp(micros); }
Json OptionalTime(const std::optional<int64_t>& t) { return t ? Time(*t) : Json(nullptr); }
Json OptionalInt(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); }

// The same keys as the command line's --json output.
Json QualificationJson(const Qualification& q, std::optional<int64_t> grants) {
  Json j = {{"name", q.name}, {"description", q.description}, {"created_at", Time(q.created_at)}};
  if (grants) j["grants"] = *grants;
  return j;
}

Json GrantJson(const Grant& g) {
  return {{"worker", g.worker.ToString()},   {"value", g.value},
          {"granted_at", Time(g.granted_at)}, {"updated_at", Time(g.updated_at)},
          {"expires_at", OptionalTime(g.expires_at)}};
}

Json AuditJson(const AuditEntry& e) {
  return {{"seq", e.seq},
          {"at", Time(e.at)},
          {"kind", std::string(AuditKindName(e.kind))},
          {"worker", e.worker_id == 0 ? Json(nullptr) : Json(e.worker.ToString())},
          {"qualification", e.qualification},
          {"old_value", OptionalInt(e.old_value)},
          {"new_value", OptionalInt(e.new_value)},
          {"expires_at", OptionalTime(e.new_expires_at)},
          {"actor", e.actor},
          {"reason", e.reason}};
}

Json RunJson(const RunSummary& s) {
  Json units = Json::object();
  for (const auto& [status, n] : s.units_by_status) units[status] = n;
  return {{"run_id", s.run_id}, {"task_name", s.task_name},     {"status", s.status},
          {"created_at", Time(s.created_at)}, {"units", units}, {"gold_served", s.gold_served},
          {"screening_served", s.screening_served}};
}

Json ExportJson(const ExportRow& r) {
  return {{"run_id", r.run_id},
          {"unit_id", OptionalInt(r.unit_id)},
          {"item", r.item < 0 ? Json(nullptr) : Json(r.item)},
          {"worker", r.worker},
          {"agent_id", r.agent_id},
          {"kind", r.kind},
          {"status", r.status},
          {"submitted_at", OptionalTime(r.submitted_at)},
          {"duration_s", r.duration_s ? Json(*r.duration_s) : Json(nullptr)},
          {"data", r.data}};
}

py::list ToList(const std::vector<Json>& rows) {
  py::list out;
  for (const auto& r : rows) out.append(FromJson(r));
  return out;
}

std::vector<Requirement> ToRequirements(py::handle requirements) {
  if (py::isinstance<py::dict>(requirements) || py::isinstance<py::str>(requirements) ||
      !py::hasattr(requirements, "__iter__")) {
    throw StatusError(Status::InvalidArgument("requirements: expected a list of dicts from make_qualification_dict"));
  }
  std::vector<Requirement> out;
  size_t i = 0;
  for (py::handle r : requirements) out.push_back(ToRequirement(r, "requirements[" + std::to_string(i++) + "]"));
  return out;
}

py::dict MakeQualificationDict(const std::string& name, const std::string& comparator, py::object value,
                               py::object applicable_providers) {
  py::dict d;
  d["qualification_name"] = name;
  d["comparator"] = comparator;
  d["value"] = value;
  d["applicable_providers"] = applicable_providers;
  (void)ToRequirement(d, "qualification dict");  // refuses what crowdgate would refuse at launch
  return d;
}

// One open crowdgate database.
class Database {
 public:
  explicit Database(const std::string& uri) : uri_(uri) {
    py::gil_scoped_release release;
    auto store = Check(Store::Open(uri, Env::Default()));
    EngineOptions options;
    const char* user = std::getenv("USER");
    options.actor = std::string("python:") + (user != nullptr && *user != '\0' ? user : "unknown");
    engine_ = Check(OpenEngineImpl(std::move(store), options));
  }

  py::dict FindOrCreateQualification(const std::string& name, py::object description) {
    const std::string desc = OptionalText(description, "description");
    Json j;
    {
      py::gil_scoped_release release;
      auto q = E().GetQualification(name);
      if (!q.ok() && q.status().IsNotFound()) {
        q = E().CreateQualification(name, desc);
        if (!q.ok() && q.status().IsConflict()) q = E().GetQualification(name);  // created meanwhile
      }
      j = QualificationJson(Check(std::move(q)), std::nullopt);
    }
    return FromJson(j);
  }

  py::dict GrantQualification(const std::string& worker, const std::string& name, int64_t value, py::object expires,
                              py::object reason) {
    GrantRequest req{name, worker, value, ToExpiry(expires, Env::Default()->NowMicros()),
                     OptionalText(reason, "reason")};
    Json j;
    {
      py::gil_scoped_release release;
      j = AuditJson(Check(E().Grant(req)));
    }
    return FromJson(j);
  }

  bool RevokeQualification(const std::string& worker, const std::string& name, py::object reason) {
    const std::string why = OptionalText(reason, "reason");
    py::gil_scoped_release release;
    return Check(E().Revoke(name, worker, why));
  }

  bool WorkerIsQualified(const std::string& worker, py::handle requirements) {
    std::vector<Requirement> reqs = ToRequirements(requirements);
    py::gil_scoped_release release;
    auto compiled = Check(E().Compile(reqs));
    return Check(E().Check(worker, *compiled)).passed;
  }

  py::list Qualifications() {
    std::vector<Json> rows;
    {
      py::gil_scoped_release release;
      for (const auto& s : Check(E().ListQualifications())) rows.push_back(QualificationJson(s.qualification, s.live_grants));
    }
    return ToList(rows);
  }

  py::list Grants(const std::string& name) {
    std::vector<Json> rows;
    {
      py::gil_scoped_release release;
      for (const auto& g : Check(E().ListGrants(name))) rows.push_back(GrantJson(g));
    }
    return ToList(rows);
  }

  py::list History(py::object worker, py::object name) {
    std::optional<std::string> w, q;
    if (!worker.is_none()) w = OptionalText(worker, "worker");
    if (!name.is_none()) q = OptionalText(name, "name");
    std::vector<Json> rows;
    {
      py::gil_scoped_release release;
      for (const auto& e : Check(E().History(q, w))) rows.push_back(AuditJson(e));
    }
    return ToList(rows);
  }

  py::list Runs() {
    std::vector<Json> rows;
    {
      py::gil_scoped_release release;
      for (const auto& s : Check(D().ListRuns())) rows.push_back(RunJson(s));
    }
    return ToList(rows);
  }

  py::list Export(const std::string& run) {
    std::vector<Json> rows;
    {
      py::gil_scoped_release release;
      for (const auto& r : Check(D().Export(run))) rows.push_back(ExportJson(r));
    }
    return ToList(rows);
  }

  py::list AggregateRun(const std::string& run, const std::string& method, const std::string& field) {
    std::vector<Json> rows;
    {
      py::gil_scoped_release release;
      const AggregationMethod m = Check(ParseAggregationMethod(method));
      const AggregatedRun a = Check(crowdgate::AggregateRun(D(), run, m, field));
      rows.reserve(a.judgments->output_items.size());
      for (const int32_t id : a.judgments->output_items) rows.push_back(ItemLabelJson(*a.judgments, a.result, id));
    }
    return ToList(rows);
  }

  void Close() {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> l(mu_);
    dispatcher_.reset();
    engine_.reset();
  }

  std::string Repr() const { return "<crowdgate.Database " + uri_ + (engine_ ? "" : " (closed)") + ">"; }

 private:
  Engine& E() {
    if (!engine_) throw StatusError(Status::InvalidArgument("the database is closed"));
    return *engine_;
  }
  // The task-server side (runs, export), made on first use.
  RunDispatcher& D() {
    std::lock_guard<std::mutex> l(mu_);
    if (!engine_) throw StatusError(Status::InvalidArgument("the database is closed"));
    if (!dispatcher_) dispatcher_ = Check(engine_->NewRunDispatcher());
    return *dispatcher_;
  }

  std::string uri_;
  std::mutex mu_;
  std::unique_ptr<EngineImpl> engine_;
  std::unique_ptr<RunDispatcher> dispatcher_;
};

}  // namespace
}  // namespace crowdgate::python

namespace py = pybind11;
using crowdgate::python::Database;

PYBIND11_MODULE(crowdgate, m) {
  crowdgate::python::RegisterExceptionTranslator();
  m.doc() = R"(crowdgate: worker qualifications and crowdsourcing runs, from Python.

The same engine as the `crowdgate` command and server, for notebooks and scripts, with
the names Mephisto users know. Start with open():

    import crowdgate
    db = crowdgate.open("crowdgate.db")            # or "sqlite:PATH", "postgresql://..."
    db.find_or_create_qualification("english", "English level, 0-100")
    db.find_or_create_qualification("sentiment-block")
    db.grant_qualification("prolific:5f3a9c0e1d2b4a6f7e8d9c0b", "english", value=85)
    db.grant_qualification("alice", "sentiment-block", expires="30d", reason="spam")
    reqs = [crowdgate.make_qualification_dict("english", "GreaterThanOrEqualTo", 80),
            crowdgate.make_qualification_dict("sentiment-block", "DoesNotExist", None)]
    db.worker_is_qualified("prolific:5f3a9c0e1d2b4a6f7e8d9c0b", reqs)   # True
    db.grants("english")      # [{'worker': 'prolific:5f3a...', 'value': 85, ...}]
    db.history(worker="alice")
    for row in db.export(db.runs()[0]["run_id"]): ...

Workers are written PROVIDER:NAME (local, prolific, mturk, mturk_sandbox); a bare NAME is
local:NAME. Lists come back as lists of dicts with the keys of `crowdgate --json`; times
are UTC strings like "2026-11-25T21:13:12Z".

Errors raise ValueError (bad input), LookupError (an unknown qualification, run or worker)
or RuntimeError (anything else), with crowdgate's message.

Where crowdgate differs from Mephisto's worker_is_qualified, on purpose:
  - a requirement naming a qualification that does not exist raises LookupError (Mephisto
    skips it and lets the worker in);
  - applicable_providers is honoured: a requirement applies only to workers of the listed
    providers (Mephisto checks every requirement locally);
  - values are checked when the dict is made: EqualTo / NotEqualTo take an integer and
    In / NotIn a non-empty list of integers (Mephisto accepts anything there).
Mephisto's provider names mock and inhouse mean local. Bring a Mephisto database over with
`crowdgate import-mephisto PATH/database.db`.

A Database may be used from several threads, and while `crowdgate serve` runs on the
same database: a grant made here takes effect at the server's next request for work.
aggregate() is not in this module yet.)";

  py::class_<Database>(m, "Database", R"(An open crowdgate database. Make one with crowdgate.open(db_uri).

Usable as a context manager: `with crowdgate.open(path) as db: ...` closes it at the end.)")
      .def("find_or_create_qualification", &Database::FindOrCreateQualification, py::arg("name"),
           py::arg("description") = py::none(),
           R"(Returns the qualification `name`, creating it (with `description`) if it does not exist.

Returns a dict {"name", "description", "created_at"}. A name must be 1-128 characters with
no control characters and no leading or trailing space (ValueError otherwise).)")
      .def("grant_qualification", &Database::GrantQualification, py::arg("worker"), py::arg("name"),
           py::arg("value") = 1, py::arg("expires") = py::none(), py::arg("reason") = py::none(),
           R"(Grants qualification `name` to `worker` with an integer `value` (replacing any value held).

worker: "PROVIDER:NAME" or a bare local NAME; a worker never seen before is created.
expires: None (never), a datetime (naive = UTC), a timedelta from now, seconds since the
epoch, or a string like "30d", "12h", "2w" or "2027-01-31". An expired grant counts as absent.
reason: kept in the audit log (see history()).
Returns the audit entry as a dict (old_value is None for a new grant).
Raises LookupError if the qualification does not exist (see find_or_create_qualification).)")
      .def("revoke_qualification", &Database::RevokeQualification, py::arg("worker"), py::arg("name"),
           py::arg("reason") = py::none(),
           R"(Revokes `worker`'s grant of qualification `name`.

Returns True if a grant was removed, False if the worker held none (nothing is logged then).
Raises LookupError if the qualification does not exist.)")
      .def("worker_is_qualified", &Database::WorkerIsQualified, py::arg("worker"), py::arg("requirements"),
           R"(True if `worker` meets every requirement (a list of make_qualification_dict() dicts).

The rules are Mephisto's: a worker without a grant fails every comparator except
DoesNotExist (so NotEqualTo and NotIn need a grant too); an empty list passes. Unlike
Mephisto, a requirement naming a qualification that does not exist raises LookupError
(fail closed), and applicable_providers limits a requirement to workers of those providers.
Reads the grants as of now, including those another process (a running server) just made.)")
      .def("qualifications", &Database::Qualifications,
           R"(Every qualification: a list of dicts {"name", "description", "created_at", "grants"}
(grants = number of live, unexpired grants).)")
      .def("grants", &Database::Grants, py::arg("name"),
           R"(The live grants of qualification `name`, sorted by worker: a list of dicts
{"worker", "value", "granted_at", "updated_at", "expires_at"}. LookupError if it does not exist.)")
      .def("history", &Database::History, py::arg("worker") = py::none(), py::arg("name") = py::none(),
           R"(The audit log, oldest first, optionally only for `worker` and/or qualification `name`.

Each entry is a dict {"seq", "at", "kind" (grant | change | revoke | qualification_deleted),
"worker", "qualification", "old_value", "new_value", "expires_at", "actor", "reason"}.)")
      .def("runs", &Database::Runs,
           R"(Every run: a list of dicts {"run_id", "task_name", "status", "created_at",
"units" (a dict of unit counts by status), "gold_served", "screening_served"}.)")
      .def("export", &Database::Export, py::arg("run"),
           R"(The rows of `crowdgate export RUN`: a list of dicts {"run_id", "unit_id", "item", "worker",
"agent_id", "kind" (unit | gold | screening | onboarding), "status", "submitted_at",
"duration_s", "data"}, where data is the worker's submission, unchanged.
LookupError if the run does not exist.)")
      .def("aggregate", &Database::AggregateRun, py::arg("run"), py::arg("method") = "dawid-skene",
           py::arg("field") = "",
           R"(One label per item of the run, as `crowdgate aggregate RUN`: a list of dicts {"item", "label",
"confidence", "labels"} in item order. method: "dawid-skene" (default), "majority" or "wawa".
field: the answer field holding the label (default: the only field of the answers). Golds the
workers answered count as known truths. ValueError for a bad method or field, LookupError if the
run does not exist.)")
      .def("close", &Database::Close, "Closes the database; later calls raise ValueError.")
      .def("__enter__", [](Database& d) -> Database& { return d; }, py::return_value_policy::reference)
      .def("__exit__", [](Database& d, py::args) { d.Close(); })
      .def("__repr__", &Database::Repr);

  m.def(
      "open", [](const std::string& db_uri) { return std::make_unique<Database>(db_uri); }, py::arg("db_uri"),
      R"(Opens (creating if needed) the crowdgate database `db_uri` and returns a Database.

db_uri: a path or "sqlite:PATH" (the embedded default, e.g. "crowdgate.db"), ":memory:",
or "postgresql://...". The same database the `crowdgate --db` command and server use.)");
  m.def("make_qualification_dict", &crowdgate::python::MakeQualificationDict, py::arg("name"), py::arg("comparator"),
        py::arg("value"), py::arg("applicable_providers") = py::none(),
        R"(Builds a requirement dict in Mephisto's shape:
{"qualification_name", "comparator", "value", "applicable_providers"}.

comparator: GreaterThan, GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo, EqualTo,
NotEqualTo (an integer value), Exists, DoesNotExist (value None), In, NotIn (a non-empty
list of integers); the QUAL_* constants hold these names.
applicable_providers: None (all) or a list of providers (local, prolific, mturk,
mturk_sandbox; Mephisto's mock and inhouse mean local).
Raises ValueError naming the field when the dict would be refused by a run.)");
  m.attr("QUAL_GREATER") = "GreaterThan";
  m.attr("QUAL_GREATER_EQUAL") = "GreaterThanOrEqualTo";
  m.attr("QUAL_LESS") = "LessThan";
  m.attr("QUAL_LESS_EQUAL") = "LessThanOrEqualTo";
  m.attr("QUAL_EQUAL") = "EqualTo";
  m.attr("QUAL_NOT_EQUAL") = "NotEqualTo";
  m.attr("QUAL_EXISTS") = "Exists";
  m.attr("QUAL_NOT_EXIST") = "DoesNotExist";
  m.attr("QUAL_IN_LIST") = "In";
  m.attr("QUAL_NOT_IN_LIST") = "NotIn";
}
