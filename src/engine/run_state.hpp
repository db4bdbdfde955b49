// RunState: what the dispatcher keeps in memory for one run — its resolved config, the
// compiled requirements with the refusal reason of each, the ids of the derived
// qualifications, and the HTML templates. Built once per run (runs are immutable
// except for their open/closed status).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/gold_schedule.hpp"
#include "core/run_config.hpp"
#include "engine/engine_impl.hpp"
#include "engine/run_dispatcher.hpp"
#include "engine/quality_tracker.hpp"

namespace crowdgate {

// Names of the qualifications the engine derives from a run config.
struct DerivedNames {
  static std::string OnboardingFailed(const std::string& q) { return q + "-failed"; }
  static std::string GoldCorrect(const std::string& g) { return g + "-correct-golds"; }
  static std::string GoldWrong(const std::string& g) { return g + "-wrong-golds"; }
  static std::string GoldCompleted(const std::string& g) { return g + "-completed-count"; }
  static std::string GoldDisqualified(const std::string& g) { return g + "-disqualified"; }
  // Counter of a worker's units that quality rules rejected, per task.
  static std::string RejectedUnits(const std::string& task) { return task + "-rejected-units"; }
};

// Every qualification the run derives, in creation order (for Launch).
std::vector<std::string> DerivedQualificationNames(const RunConfig& config);

struct RunState {
  RunRecord record;
  int64_t status_epoch = -1;  // EngineCore::external_epoch() when record.status was last read
  std::shared_ptr<const RunConfig> config;
  std::shared_ptr<const CompiledRequirements> requirements;  // derived ones first
  std::vector<std::string> reasons;  // refusal reason per requirement source index
  std::shared_ptr<const RunView> view;  // config + templates, for pages

  // Derived qualification ids (0 = not used by this run).
  QualId block = 0;
  QualId onboarding = 0;
  QualId onboarding_failed = 0;
  QualId screening_passed = 0;
  QualId gold_correct = 0;
  QualId gold_wrong = 0;
  QualId gold_completed = 0;
  QualId gold_disqualified = 0;
  QualId rejected_units = 0;

  // The run's quality rules and their windows (null when the run has none). Mutable state:
  // used under the core lock only.
  std::shared_ptr<QualityTracker> quality;

  GoldSchedule schedule;
  GoldPolicy policy;
  std::string gold_placement_secret;  // keys gold positions (schedule.placement kRandom)

  // The worker's seed for WorkerNeedsGold (0 with exact placement).
  uint64_t GoldSeed(const WorkerRef& worker) const {
    if (schedule.placement != GoldPlacement::kRandom) return 0;
    return GoldPlacementSeed(gold_placement_secret, config->blueprint.gold_qualification_base, worker.ToString());
  }
};

// Builds the state from a stored run (config_json = {"config", "task_html",
// "onboarding_html"}). Needs the core lock held. A run with quality rules replays its agents
// to rebuild the rules' windows.
Result<std::shared_ptr<RunState>> BuildRunState(EngineImpl& engine, const RunRecord& record);

// The JSON stored as RunRecord::config_json.
nlohmann::json StoredRunJson(const RunConfig& config, const std::string& task_html, const std::string& onboarding_html);

}  // namespace crowdgate
