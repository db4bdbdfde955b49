#include "cli/demo_report.hpp"

#include <algorithm>
#include <cstdio>

#include "cli/cli_context.hpp"
#include "core/aggregation.hpp"
#include "core/data_reader.hpp"

namespace crowdgate::cli {

namespace {

struct WorkerLine {
  std::string profile = "-";
  std::string onboarding = "-";
  int64_t gold_right = 0;
  int64_t gold_wrong = 0;
  int64_t units = 0;
  int64_t correct_labels = 0;
  std::optional<int64_t> disqualified_at;
  int64_t units_before_dq = 0;
  std::string ended = "-";
  std::string rule = "-";  // the quality rule that banned the worker
};

std::string Pct(int64_t num, int64_t den) {
  if (den == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * static_cast<double>(num) / static_cast<double>(den));
  return buf;
}

}  // namespace

Status PrintQualityReport(Engine& engine, Dispatcher& dispatcher, const QualityReportInput& in, std::ostream& out) {
  CG_ASSIGN_OR_RETURN(std::vector<EvalItem> truth_items, ReadEvalFile(in.truth_file));
  CG_ASSIGN_OR_RETURN(std::vector<ExportRow> rows, dispatcher.Export(in.run_id));

  std::map<std::string, WorkerLine> lines;
  if (in.simulation != nullptr) {
    for (const auto& w : in.simulation->workers) {
      lines[w.worker].profile = w.profile;
      lines[w.worker].ended = w.last_reason.empty() ? w.last_outcome : w.last_outcome + ": " + w.last_reason;
    }
  }
  // Disqualification times from the audit log.
  if (!in.gold_base.empty()) {
    auto dq = engine.History(in.gold_base + "-disqualified", std::nullopt);
    if (dq.ok()) {
      for (const auto& e : *dq) {
        if (e.kind == AuditEntry::Kind::kGrant && !lines[e.worker.ToString()].disqualified_at) {
          lines[e.worker.ToString()].disqualified_at = e.at;
        }
      }
    }
  }
  // Bans by quality rules: grants of the block qualification by the engine's quality actor.
  if (!in.block.empty()) {
    auto bans = engine.History(in.block, std::nullopt);
    if (bans.ok()) {
      for (const auto& e : *bans) {
        if (e.actor != "crowdgate:quality" || !e.new_value) continue;
        const std::string rule = e.reason.substr(0, e.reason.find(':'));
        const size_t for_at = e.reason.find("blocked for ");
        lines[e.worker.ToString()].rule =
            rule + (for_at == std::string::npos ? ", disqualified"
                                                : ", " + e.reason.substr(for_at, e.reason.find(';', for_at) - for_at));
      }
    }
  }
  struct Vote {
    std::string worker;
    std::string label;
    bool from_disqualified;
  };
  std::map<int64_t, std::vector<Vote>> votes;
  std::map<int64_t, std::string> item_truth;
  int64_t all_n = 0, all_ok = 0, kept_n = 0, kept_ok = 0;
  for (const auto& r : rows) {
    WorkerLine& line = lines[r.worker];
    if (r.status != AgentStatus::kCompleted && r.status != AgentStatus::kPassed && r.status != AgentStatus::kFailed) {
      continue;
    }
    if (r.kind == AgentKind::kOnboarding) {
      line.onboarding = ToString(r.status);
    } else if (r.kind == AgentKind::kGold) {
      (r.check_result == "pass" ? line.gold_right : line.gold_wrong)++;
    } else if (r.kind == AgentKind::kUnit) {
      line.units++;
      if (line.disqualified_at && r.submitted_at && *r.submitted_at <= *line.disqualified_at) line.units_before_dq++;
      if (!line.disqualified_at) line.units_before_dq++;
    }
  }
  // Label accuracy: item index i is line i of the data file, which the truth file mirrors.
  for (const auto& r : rows) {
    if (r.kind != AgentKind::kUnit || r.status != AgentStatus::kCompleted || r.item < 0) continue;
    if (static_cast<size_t>(r.item) >= truth_items.size()) continue;
    const std::string expected = truth_items[static_cast<size_t>(r.item)].answer.value(in.label_field, "");
    const std::string given = r.data.is_object() ? r.data.value(in.label_field, "") : "";
    WorkerLine& line = lines[r.worker];
    const bool dq = line.disqualified_at.has_value() || line.rule != "-";
    const bool ok = given == expected;
    line.correct_labels += ok;
    all_n++;
    all_ok += ok;
    if (!dq) {
      kept_n++;
      kept_ok += ok;
    }
    votes[r.item].push_back({r.worker, given, dq});
    item_truth[r.item] = expected;
  }

  out << "\nWhat quality control did, per worker:\n";
  Table t({"WORKER", "PROFILE", "ONBOARDING", "GOLDS RIGHT/WRONG", "DISQUALIFIED", "RULE", "UNITS", "LABEL ACC",
           "ENDED"});
  for (const auto& [worker, l] : lines) {
    t.Add({worker, l.profile, l.onboarding, std::to_string(l.gold_right) + "/" + std::to_string(l.gold_wrong),
           l.disqualified_at ? "after " + std::to_string(l.units_before_dq) + " units" : "-", l.rule,
           std::to_string(l.units), Pct(l.correct_labels, l.units), l.ended});
  }
  t.Print(out);

  // One label per item by Dawid-Skene, with and without disqualified workers' labels.
  auto aggregated = [&](bool include_dq) -> Result<std::pair<int64_t, int64_t>> {
    Judgments j;
    std::map<std::string, int32_t> workers, labels;
    std::vector<int64_t> items;  // dense item -> item index
    auto id = [](std::map<std::string, int32_t>& m, const std::string& s) {
      return m.emplace(s, static_cast<int32_t>(m.size())).first->second;
    };
    for (const auto& [item, vs] : votes) {
      bool any = false;
      for (const auto& v : vs) {
        if (!include_dq && v.from_disqualified) continue;
        if (!any) items.push_back(item);
        any = true;
        j.Add(static_cast<int32_t>(items.size() - 1), id(workers, v.worker), id(labels, v.label));
      }
    }
    j.num_items = static_cast<int32_t>(items.size());
    j.num_workers = static_cast<int32_t>(workers.size());
    j.num_labels = static_cast<int32_t>(labels.size());
    std::vector<std::string> names(labels.size());
    for (const auto& [name, l] : labels) names[static_cast<size_t>(l)] = name;
    CG_ASSIGN_OR_RETURN(AggregateResult r, DawidSkene(j, AggregateOptions{}));
    int64_t ok = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      const int32_t l = r.items[i].label;
      ok += l >= 0 && names[static_cast<size_t>(l)] == item_truth[items[i]];
    }
    return std::make_pair(ok, static_cast<int64_t>(items.size()));
  };
  CG_ASSIGN_OR_RETURN(auto agg_all, aggregated(true));
  CG_ASSIGN_OR_RETURN(auto agg_kept, aggregated(false));
  out << "\nLabel accuracy against the hidden truth (raw: each label; aggregated: one label per item, "
         "Dawid-Skene):\n";
  Table acc({"LABELS", "COUNT", "RAW ACCURACY", "ITEMS", "AGGREGATED ACCURACY"});
  acc.Add({"all collected", std::to_string(all_n), Pct(all_ok, all_n), std::to_string(agg_all.second),
           Pct(agg_all.first, agg_all.second)});
  acc.Add({"without disqualified workers (golds or rules)", std::to_string(kept_n), Pct(kept_ok, kept_n),
           std::to_string(agg_kept.second), Pct(agg_kept.first, agg_kept.second)});
  acc.Print(out);
  return Status::Ok();
}

}  // namespace crowdgate::cli
