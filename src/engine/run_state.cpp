#include "engine/run_state.hpp"

#include <algorithm>

namespace crowdgate {

namespace {

bool UsesRejectUnits(const RunConfig& config) {
  return std::any_of(config.quality_rules.begin(), config.quality_rules.end(),
                     [](const QualityRule& r) { return r.action == QualityActionKind::kRejectUnits; });
}

}  // namespace

std::vector<std::string> DerivedQualificationNames(const RunConfig& config) {
  const auto& b = config.blueprint;
  std::vector<std::string> names;
  if (b.block_qualification) names.push_back(*b.block_qualification);
  if (b.onboarding_qualification) {
    names.push_back(*b.onboarding_qualification);
    names.push_back(DerivedNames::OnboardingFailed(*b.onboarding_qualification));
  }
  if (b.use_screening_task) names.push_back(b.passed_qualification_name);
  if (b.use_golds) {
    const std::string& g = b.gold_qualification_base;
    names.push_back(DerivedNames::GoldCorrect(g));
    names.push_back(DerivedNames::GoldWrong(g));
    names.push_back(DerivedNames::GoldCompleted(g));
    names.push_back(DerivedNames::GoldDisqualified(g));
  }
  if (UsesRejectUnits(config)) names.push_back(DerivedNames::RejectedUnits(config.task.task_name));
  return names;
}

nlohmann::json StoredRunJson(const RunConfig& config, const std::string& task_html,
                             const std::string& onboarding_html) {
  return {{"config", RunConfigToJson(config)}, {"task_html", task_html}, {"onboarding_html", onboarding_html}};
}

namespace {

Result<QualId> IdOf(EngineCore& core, const std::string& name) {
  CG_ASSIGN_OR_RETURN(Qualification q, core.Qual(name));
  return q.id;
}

Requirement DoesNotExist(const std::string& name) {
  Requirement r;
  r.qualification_name = name;
  r.comparator = Comparator::kDoesNotExist;
  return r;
}

}  // namespace

Result<std::shared_ptr<RunState>> BuildRunState(EngineImpl& engine, const RunRecord& record) {
  EngineCore& core = engine.core();
  nlohmann::json stored = nlohmann::json::parse(record.config_json, nullptr, /*allow_exceptions=*/false);
  if (stored.is_discarded() || !stored.is_object() || !stored.contains("config")) {
    return Status::Internal("run " + record.id + ": stored config is unreadable");
  }
  CG_ASSIGN_OR_RETURN(RunConfig config, RunConfigFromJson(stored["config"]));
  auto state = std::make_shared<RunState>();
  state->record = record;
  const auto& b = config.blueprint;

  // Derived requirements first, so a refusal names the most specific reason.
  std::vector<Requirement> reqs;
  if (b.block_qualification) {
    CG_ASSIGN_OR_RETURN(state->block, IdOf(core, *b.block_qualification));
    reqs.push_back(DoesNotExist(*b.block_qualification));
    state->reasons.push_back("blocked");
  }
  if (b.onboarding_qualification) {
    CG_ASSIGN_OR_RETURN(state->onboarding, IdOf(core, *b.onboarding_qualification));
    const std::string failed = DerivedNames::OnboardingFailed(*b.onboarding_qualification);
    CG_ASSIGN_OR_RETURN(state->onboarding_failed, IdOf(core, failed));
    reqs.push_back(DoesNotExist(failed));
    state->reasons.push_back("onboarding_failed");
  }
  if (b.use_screening_task) {
    CG_ASSIGN_OR_RETURN(state->screening_passed, IdOf(core, b.passed_qualification_name));
  }
  if (b.use_golds) {
    const std::string& g = b.gold_qualification_base;
    CG_ASSIGN_OR_RETURN(state->gold_correct, IdOf(core, DerivedNames::GoldCorrect(g)));
    CG_ASSIGN_OR_RETURN(state->gold_wrong, IdOf(core, DerivedNames::GoldWrong(g)));
    CG_ASSIGN_OR_RETURN(state->gold_completed, IdOf(core, DerivedNames::GoldCompleted(g)));
    CG_ASSIGN_OR_RETURN(state->gold_disqualified, IdOf(core, DerivedNames::GoldDisqualified(g)));
    reqs.push_back(DoesNotExist(DerivedNames::GoldDisqualified(g)));
    state->reasons.push_back("gold_disqualified");
    state->schedule.kind = b.gold_schedule;
    state->schedule.min_golds = b.min_golds;
    state->schedule.gold_rate = b.gold_rate;
    state->schedule.placement = b.gold_placement;
    if (b.gold_placement == GoldPlacement::kRandom) {
      // The database's secret keys the positions: the same on every server, unknown to workers.
      CG_ASSIGN_OR_RETURN(state->gold_placement_secret, core.store().DatabaseSecret("gold_placement"));
    }
    state->policy.kind = b.gold_policy;
    state->policy.max_incorrect_golds = b.max_incorrect_golds;
    state->policy.min_gold_accuracy = b.min_gold_accuracy;
    state->policy.gold_window = b.gold_window;
  }
  if (UsesRejectUnits(config)) {
    CG_ASSIGN_OR_RETURN(state->rejected_units, IdOf(core, DerivedNames::RejectedUnits(config.task.task_name)));
  }
  if (!config.quality_rules.empty()) {
    state->quality = std::make_shared<QualityTracker>(config.quality_rules);
    CG_ASSIGN_OR_RETURN(std::vector<AgentRecord> agents, core.store().RunAgents(record.id));
    state->quality->Rebuild(agents);
  }
  for (const auto& r : config.qualifications) {
    reqs.push_back(r);
    // A user requirement with DoesNotExist is a block list; anything else is an allow
    // list or a value requirement.
    state->reasons.push_back(r.comparator == Comparator::kDoesNotExist ? "blocked" : "requirement_not_met");
  }
  CG_ASSIGN_OR_RETURN(state->requirements, engine.CompileLocked(reqs));
  state->config = std::make_shared<const RunConfig>(std::move(config));
  auto view = std::make_shared<RunView>();
  view->config = state->config;
  view->task_html = stored.value("task_html", "");
  view->onboarding_html = stored.value("onboarding_html", "");
  state->view = std::move(view);
  return state;
}

}  // namespace crowdgate
