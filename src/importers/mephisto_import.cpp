#include "importers/mephisto_import.hpp"

#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace crowdgate::importers {

namespace {

constexpr std::string_view kSandboxSuffix = "_sandbox";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

Result<WorkerRef> MapMephistoWorker(const MephistoWorker& worker) {
  std::string provider;
  std::string name = worker.name;
  if (worker.provider == "mturk" || worker.provider == "prolific") {
    provider = worker.provider;
  } else if (worker.provider == "mturk_sandbox" || worker.provider == "mock" || worker.provider == "inhouse") {
    provider = worker.provider == "mturk_sandbox" ? "mturk_sandbox" : "local";
    // Mephisto keeps sandbox (and mock) workers as "<provider id>_sandbox".
    if (worker.provider != "inhouse" && EndsWith(name, kSandboxSuffix)) {
      name.resize(name.size() - kSandboxSuffix.size());
    }
  } else {
    return Status::InvalidArgument("provider '" + worker.provider +
                                   "' has no crowdgate equivalent (known: mturk, mturk_sandbox, prolific, mock, "
                                   "inhouse)");
  }
  auto ref = ParseWorkerRef(provider + ":" + name);
  if (!ref.ok()) return Status::InvalidArgument(ref.status().message());
  return ref;
}

Result<MephistoImportReport> ImportMephisto(Engine& engine, MephistoDatabase db, const MephistoImportOptions& options) {
  MephistoImportReport report;
  report.schema = db.schema;
  BulkChange change;
  change.reason = kImportReason;  // every grant's audit reason

  // Qualifications: id -> name, for those crowdgate accepts.
  std::unordered_map<int64_t, std::string> qual_names;
  std::unordered_set<int64_t> refused_quals;
  for (const auto& q : db.qualifications) {
    Status valid = ValidateQualificationName(q.name);
    if (!valid.ok()) {
      refused_quals.insert(q.id);
      ++report.qualifications_refused;
      report.refusals.push_back({"qualification", q.name, valid.message()});
      continue;
    }
    qual_names.emplace(q.id, q.name);
    change.qualifications.push_back({q.name, q.description});
  }

  // Workers: id -> crowdgate PROVIDER:NAME, for those crowdgate accepts.
  std::unordered_map<int64_t, std::string> worker_refs;
  std::unordered_map<int64_t, size_t> refusal_of_worker;  // worker id -> index in refusals
  std::unordered_map<std::string, const MephistoWorker*> seen;  // crowdgate ref -> Mephisto row
  for (const auto& w : db.workers) {
    auto ref = MapMephistoWorker(w);
    std::string reason;
    if (!ref.ok()) {
      reason = ref.status().message();
    } else {
      std::string text = ref->ToString();
      auto [it, fresh] = seen.emplace(text, &w);
      if (fresh) {
        worker_refs.emplace(w.id, text);
        change.workers.push_back(std::move(text));
        continue;
      }
      reason = "would be crowdgate worker " + text + ", which Mephisto worker '" + it->second->name + "' (" +
               it->second->provider + ") already is";
    }
    ++report.workers_refused;
    refusal_of_worker.emplace(w.id, report.refusals.size());
    report.refusals.push_back({"worker", w.name, "(" + w.provider + ") " + reason});
  }

  // Grants. Those of a refused worker or qualification are counted with it, not listed one by one.
  std::unordered_map<int64_t, int64_t> dropped_of_worker, dropped_of_qual;
  // For --mirror: the (qualification, worker) pairs Mephisto has, as Mephisto ids in one integer.
  struct PairHash {
    size_t operator()(const std::pair<int64_t, int64_t>& p) const {
      return std::hash<int64_t>()(p.first) * 0x9E3779B97F4A7C15ull ^ std::hash<int64_t>()(p.second);
    }
  };
  std::unordered_set<std::pair<int64_t, int64_t>, PairHash> kept;
  auto pair_key = [](int64_t qual, int64_t worker) { return std::make_pair(qual, worker); };
  change.grants.reserve(db.grants.size());
  for (const auto& g : db.grants) {
    auto q = qual_names.find(g.qualification_id);
    auto w = worker_refs.find(g.worker_id);
    std::string problem;
    if (q == qual_names.end() && refused_quals.count(g.qualification_id) != 0) {
      ++dropped_of_qual[g.qualification_id];
    } else if (w == worker_refs.end() && refusal_of_worker.count(g.worker_id) != 0) {
      ++dropped_of_worker[g.worker_id];
    } else if (q == qual_names.end()) {
      problem = "its qualification_id " + std::to_string(g.qualification_id) + " is not in `qualifications`";
    } else if (w == worker_refs.end()) {
      problem = "its worker_id " + std::to_string(g.worker_id) + " is not in `workers`";
    } else if (!g.value) {
      problem = "its value '" + g.raw_value + "' is not an integer";
    } else {
      GrantRequest r;
      r.qualification = q->second;
      r.worker = w->second;
      r.value = *g.value;
      if (options.mirror) kept.insert(pair_key(g.qualification_id, g.worker_id));
      change.grants.push_back(std::move(r));
      continue;
    }
    ++report.grants_refused;
    if (!problem.empty()) {
      const std::string qn = q != qual_names.end() ? q->second : "qualification_id " + std::to_string(g.qualification_id);
      const std::string wn = w != worker_refs.end() ? w->second : "worker_id " + std::to_string(g.worker_id);
      report.refusals.push_back({"grant", qn + "/" + wn, problem});
    }
  }
  std::vector<MephistoGrant>().swap(db.grants);
  for (const auto& [wid, n] : dropped_of_worker) {
    report.refusals[refusal_of_worker[wid]].reason += "; its " + std::to_string(n) + " grant(s) not imported";
  }
  for (const auto& q : db.qualifications) {
    auto it = dropped_of_qual.find(q.id);
    if (it == dropped_of_qual.end()) continue;
    for (auto& r : report.refusals) {
      if (r.kind == "qualification" && r.name == q.name) {
        r.reason += "; its " + std::to_string(it->second) + " grant(s) not imported";
      }
    }
  }

  if (options.mirror) {
    // Grants of the imported qualifications that Mephisto no longer has.
    std::unordered_map<std::string, int64_t> mephisto_worker;  // crowdgate PROVIDER:NAME -> Mephisto worker id
    mephisto_worker.reserve(worker_refs.size());
    for (const auto& [id, ref] : worker_refs) mephisto_worker.emplace(ref, id);
    for (const auto& q : db.qualifications) {
      if (qual_names.count(q.id) == 0) continue;  // refused
      auto grants = engine.ListGrants(q.name);
      if (!grants.ok()) {
        if (grants.status().IsNotFound()) continue;  // new to crowdgate: nothing to revoke
        return grants.status();
      }
      for (const auto& g : *grants) {
        std::string worker = g.worker.ToString();
        auto w = mephisto_worker.find(worker);
        if (w == mephisto_worker.end() || kept.count(pair_key(q.id, w->second)) == 0) {
          change.revokes.push_back({q.name, std::move(worker), kMirrorRevokeReason});
        }
      }
    }
    kept.clear();
  }

  CG_ASSIGN_OR_RETURN(report.applied, engine.ApplyBulk(change, options.dry_run, options.progress));
  return report;
}

}  // namespace crowdgate::importers
