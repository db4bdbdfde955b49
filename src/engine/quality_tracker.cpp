#include "engine/quality_tracker.hpp"

#include <algorithm>
#include <numeric>

#include <nlohmann/json.hpp>

namespace crowdgate {

QualityTracker::QualityTracker(std::vector<QualityRule> rules) : rules_(std::move(rules)) {
  track_labels_ = std::any_of(rules_.begin(), rules_.end(),
                              [](const QualityRule& r) { return r.kind == QualityRuleKind::kMajorityAgreement; });
}

std::string QualityTracker::LabelOf(const std::string& data_json) {
  // ordered_json keeps the fields in the order the worker's page sent them.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(data_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.empty()) return "";
  const auto& v = j.begin().value();
  return v.is_string() ? v.get<std::string>() : v.dump();
}

const WorkerQualityWindows& QualityTracker::WindowsOf(WorkerId worker) const {
  static const WorkerQualityWindows kEmpty;
  auto it = windows_.find(worker);
  return it == windows_.end() ? kEmpty : it->second;
}

QualityTracker::Pending QualityTracker::DecideSubmit(const AgentRecord& agent, int64_t submitted_at,
                                                     const std::string& data_json) const {
  Pending p;
  p.worker = agent.worker_id;
  p.windows = WindowsOf(agent.worker_id);
  p.unit_id = agent.unit_id.value_or(0);
  p.item_index = agent.item_index;
  std::optional<double> agreement;
  if (track_labels_) {
    p.label = LabelOf(data_json);
    auto it = labels_.find(agent.item_index);
    if (it != labels_.end()) {
      int64_t others = 0, same = 0;
      for (const Label& l : it->second) {
        if (l.worker == agent.worker_id) continue;
        ++others;
        same += l.label == p.label ? 1 : 0;
      }
      if (others > 0) agreement = static_cast<double>(same) / static_cast<double>(others);
    }
  }
  const double seconds = static_cast<double>(submitted_at - agent.created_at) / 1e6;
  p.firings = p.windows.OnSubmit(rules_, *p.unit_id, seconds, agreement);
  return p;
}

QualityTracker::Pending QualityTracker::DecideReturn(const AgentRecord& agent) const {
  Pending p;
  p.worker = agent.worker_id;
  p.windows = WindowsOf(agent.worker_id);
  p.firings = p.windows.OnReturn(rules_);
  return p;
}

void QualityTracker::Commit(Pending p) {
  if (track_labels_ && p.unit_id) {
    labels_[p.item_index].push_back({p.worker, *p.unit_id, std::move(p.label)});
    unit_items_[*p.unit_id] = p.item_index;
  }
  if (track_labels_) {
    for (const QualityFiring& f : p.firings) {
      if (rules_[f.rule_index].action != QualityActionKind::kRejectUnits) continue;
      for (int64_t unit : f.unit_ids) {
        auto it = unit_items_.find(unit);
        if (it == unit_items_.end()) continue;
        auto& item = labels_[it->second];
        item.erase(std::remove_if(item.begin(), item.end(), [unit](const Label& l) { return l.unit_id == unit; }),
                   item.end());
        unit_items_.erase(it);
      }
    }
  }
  windows_[p.worker] = std::move(p.windows);
}

void QualityTracker::Rebuild(const std::vector<AgentRecord>& agents) {
  windows_.clear();
  labels_.clear();
  unit_items_.clear();
  struct Event {
    int64_t at;
    size_t index;
    bool submit;
  };
  std::vector<Event> events;
  for (size_t i = 0; i < agents.size(); ++i) {
    const AgentRecord& a = agents[i];
    if (a.kind != AgentKind::kUnit || !a.unit_id) continue;
    if (a.submitted_at && !a.data_json.empty()) {
      events.push_back({*a.submitted_at, i, true});
    } else if (a.status == AgentStatus::kReturned) {
      events.push_back({a.created_at, i, false});
    } else if (a.status == AgentStatus::kTimeout) {
      events.push_back({a.deadline, i, false});
    }
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& x, const Event& y) { return x.at < y.at; });
  for (const Event& e : events) {
    const AgentRecord& a = agents[e.index];
    Commit(e.submit ? DecideSubmit(a, *a.submitted_at, a.data_json) : DecideReturn(a));
  }
}

}  // namespace crowdgate
