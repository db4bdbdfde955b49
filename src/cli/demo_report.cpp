#include "cli/demo_report.hpp"

#include <algorithm>
#include <cstdio>

#include "cli/cli_context.hpp"
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
  struct Vote {
    std::string label;
    bool from_disqualified;
  };
  std::map<int64_t, std::vector<Vote>> votes;
  std::map<int64_t, std::string> item_truth;
  int64_t all_n = 0, all_ok = 0, kept_n = 0, kept_ok = 0;
  for (const auto& r : rows) {
    WorkerLine& line = lines[r.worker];
    if (r.status != "completed" && r.status != "passed" && r.status != "failed") continue;
    if (r.kind == "onboarding") {
      line.onboarding = r.status;
    } else if (r.kind == "gold") {
      (r.check_result == "pass" ? line.gold_right : line.gold_wrong)++;
    } else if (r.kind == "unit") {
      line.units++;
      if (line.disqualified_at && r.submitted_at && *r.submitted_at <= *line.disqualified_at) line.units_before_dq++;
      if (!line.disqualified_at) line.units_before_dq++;
    }
  }
  // Label accuracy: item index i is line i of the data file, which the truth file mirrors.
  for (const auto& r : rows) {
    if (r.kind != "unit" || r.status != "completed" || r.item < 0) continue;
    if (static_cast<size_t>(r.item) >= truth_items.size()) continue;
    const std::string expected = truth_items[static_cast<size_t>(r.item)].answer.value(in.label_field, "");
    const std::string given = r.data.is_object() ? r.data.value(in.label_field, "") : "";
    WorkerLine& line = lines[r.worker];
    const bool dq = line.disqualified_at.has_value();
    const bool ok = given == expected;
    line.correct_labels += ok;
    all_n++;
    all_ok += ok;
    if (!dq) {
      kept_n++;
      kept_ok += ok;
    }
    votes[r.item].push_back({given, dq});
    item_truth[r.item] = expected;
  }

  out << "\nWhat quality control did, per worker:\n";
  Table t({"WORKER", "PROFILE", "ONBOARDING", "GOLDS RIGHT/WRONG", "DISQUALIFIED", "UNITS", "LABEL ACC", "ENDED"});
  for (const auto& [worker, l] : lines) {
    t.Add({worker, l.profile, l.onboarding, std::to_string(l.gold_right) + "/" + std::to_string(l.gold_wrong),
           l.disqualified_at ? "after " + std::to_string(l.units_before_dq) + " units" : "-", std::to_string(l.units),
           Pct(l.correct_labels, l.units), l.ended});
  }
  t.Print(out);

  // Majority vote per item, with and without disqualified workers' labels.
  auto majority = [&](bool include_dq) {
    int64_t n = 0, ok = 0;
    for (const auto& [item, vs] : votes) {
      std::map<std::string, int> count;
      for (const auto& v : vs) {
        if (include_dq || !v.from_disqualified) count[v.label]++;
      }
      if (count.empty()) continue;
      auto best = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; });
      n++;
      ok += best->first == item_truth[item];
    }
    return std::make_pair(ok, n);
  };
  const auto [maj_all_ok, maj_all_n] = majority(true);
  const auto [maj_kept_ok, maj_kept_n] = majority(false);
  out << "\nLabel accuracy against the hidden truth:\n";
  Table acc({"LABELS", "COUNT", "ACCURACY", "MAJORITY-VOTE ITEMS", "MAJORITY ACCURACY"});
  acc.Add({"all collected", std::to_string(all_n), Pct(all_ok, all_n), std::to_string(maj_all_n),
           Pct(maj_all_ok, maj_all_n)});
  acc.Add({"without disqualified workers", std::to_string(kept_n), Pct(kept_ok, kept_n), std::to_string(maj_kept_n),
           Pct(maj_kept_ok, maj_kept_n)});
  acc.Print(out);
  return Status::Ok();
}

}  // namespace crowdgate::cli
