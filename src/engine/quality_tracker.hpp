// QualityTracker: the quality rules of one run, evaluated as units end (submitted, returned,
// timed out), with rolling windows per worker kept in memory. Internal to the engine.
//
// Contract:
//  - No store access and no scan of a worker's history per request: each event costs the
//    size of the rules' windows (plus, for majority_agreement, the labels of one item).
//  - Two-phase: Decide* computes the firings on a copy of the worker's windows and returns a
//    Pending change; Commit applies it once the store transaction that carries the actions
//    has committed (a rolled-back or conflicting submission leaves the windows untouched).
//  - Rebuild replays the run's agents (submissions by submitted_at, returns and timeouts
//    at the time they were served or their lease ended) through the same decisions without
//    acting, so after a restart a rule fires exactly where it would have fired had the
//    process kept running, and nothing fires twice for the same submission.
//  - majority_agreement compares a worker's label (the first field of the answers) with the
//    labels other workers submitted earlier on the same item; a label rejected by a rule
//    stops counting.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/quality_rules.hpp"
#include "crowdgate/store.hpp"

namespace crowdgate {

class QualityTracker {
 public:
  explicit QualityTracker(std::vector<QualityRule> rules);

  const std::vector<QualityRule>& rules() const { return rules_; }

  struct Pending {
    WorkerId worker = 0;
    WorkerQualityWindows windows;
    std::optional<int64_t> unit_id;  // submitted unit
    int64_t item_index = -1;
    std::string label;
    std::vector<QualityFiring> firings;
  };

  // A unit agent (kind "unit") submitted `data_json` at `submitted_at` (micros).
  Pending DecideSubmit(const AgentRecord& agent, int64_t submitted_at, const std::string& data_json) const;
  // A unit agent returned or timed out.
  Pending DecideReturn(const AgentRecord& agent) const;
  void Commit(Pending p);

  // Replays every agent of the run (Store::RunAgents order) to rebuild the windows.
  void Rebuild(const std::vector<AgentRecord>& agents);

  // The label a submission gives: the value of its first field, as text ("" when none).
  static std::string LabelOf(const std::string& data_json);

 private:
  struct Label {
    WorkerId worker;
    int64_t unit_id;
    std::string label;
  };
  const WorkerQualityWindows& WindowsOf(WorkerId worker) const;

  std::vector<QualityRule> rules_;
  bool track_labels_ = false;  // some rule is majority_agreement
  std::unordered_map<WorkerId, WorkerQualityWindows> windows_;
  std::unordered_map<int64_t, std::vector<Label>> labels_;  // item -> labels so far
  std::unordered_map<int64_t, int64_t> unit_items_;         // unit -> item, for labels a rule rejects
};

}  // namespace crowdgate
