// The run-config table: every key once, with its doc (type, default, range, when it is
// required, description) and the RunConfig member it binds to. Validation, defaults,
// binding, the stored JSON and `crowdgate config-reference` all read these rows.
#include <map>
#include <utility>

#include "core/run_config.hpp"
#include "core/run_config_internal.hpp"

namespace crowdgate {

using nlohmann::json;
using run_config_internal::ConfigBinding;
using run_config_internal::ConfigKey;
using run_config_internal::CheckMturkQualifications;
using run_config_internal::CheckNotBlank;
using run_config_internal::CheckProlificQualifications;
using run_config_internal::CheckPublicUrl;
using run_config_internal::CheckQualificationName;
using run_config_internal::ErrorList;
using run_config_internal::IsSet;
using run_config_internal::Where;

namespace {

// The RunConfig member holding a group's struct.
template <typename G>
constexpr G RunConfig::*kGroupOf = nullptr;
template <>
constexpr TaskConfig RunConfig::*kGroupOf<TaskConfig> = &RunConfig::task;
template <>
constexpr BlueprintConfig RunConfig::*kGroupOf<BlueprintConfig> = &RunConfig::blueprint;
template <>
constexpr ProviderConfig RunConfig::*kGroupOf<ProviderConfig> = &RunConfig::provider;

template <typename G, typename M>
M& MemberOf(RunConfig& c, M G::*member) {
  return c.*kGroupOf<G>.*member;
}
template <typename G, typename M>
const M& MemberOf(const RunConfig& c, M G::*member) {
  return c.*kGroupOf<G>.*member;
}

// A plain value (string, int, number, bool, object, list), always stored. With
// `omit_unset`, a value-initialised member ("" or 0: the key is not set) is left out.
template <typename G, typename M>
ConfigBinding FieldBinding(M G::*member, bool omit_unset) {
  return {[member, omit_unset](const RunConfig& c) -> std::optional<json> {
            const M& v = MemberOf(c, member);
            if (omit_unset && v == M{}) return std::nullopt;
            return json(v);
          },
          [member](const json* v, const json&, RunConfig& c, ErrorList&) {
            if (v) MemberOf(c, member) = v->get<M>();
          }};
}

// Moves a parsed value into `out`, or reports the parse error.
template <typename V>
void SetOrReport(Result<V> parsed, V& out, ErrorList& errors) {
  if (parsed.ok()) {
    out = std::move(parsed).value();
  } else {
    errors.Add(parsed.status());
  }
}

// Fluent builder for one row.
class Key {
 public:
  Key(std::string key, ConfigType type, std::string description) {
    row_.doc.key = std::move(key);
    row_.doc.group = row_.doc.key.substr(0, row_.doc.key.find('.'));
    row_.doc.type = type;
    row_.doc.description = std::move(description);
  }
  Key& Default(json v) { row_.doc.default_value = std::move(v); return *this; }
  // The default is the value of another key ("= task.task_name" in the docs).
  Key& DefaultFrom(std::string key) {
    row_.doc.default_text = "= " + key;
    row_.default_from = std::move(key);
    return *this;
  }
  Key& Min(double v, bool exclusive = false) { row_.doc.min = v; row_.doc.min_exclusive = exclusive; return *this; }
  Key& Max(double v) { row_.doc.max = v; return *this; }
  Key& Enum(std::vector<std::string> allowed) { row_.doc.allowed = std::move(allowed); return *this; }
  Key& Nullable() { row_.doc.nullable = true; return *this; }
  Key& Required() { row_.doc.required = true; return *this; }
  Key& RequiredIf(std::string key, std::optional<json> equals) {
    row_.doc.required_if.push_back({std::move(key), std::move(equals)});
    return *this;
  }
  Key& Check(std::function<void(const std::string&, const json&, ErrorList&)> check) {
    row_.check = std::move(check);
    return *this;
  }

  // ---- bindings ----

  // Always stored.
  template <typename G, typename M>
  Key& Field(M G::*member) { return Bind(FieldBinding(member, false)); }
  // Stored only when set ("" / 0 = not set).
  template <typename G, typename M>
  Key& FieldOrUnset(M G::*member) { return Bind(FieldBinding(member, true)); }
  // A nullable string kept as std::optional: stored as null when not set.
  template <typename G>
  Key& Optional(std::optional<std::string> G::*member) {
    return Bind({[member](const RunConfig& c) -> std::optional<json> {
                   const auto& v = MemberOf(c, member);
                   return v ? json(*v) : json(nullptr);
                 },
                 [member](const json* v, const json&, RunConfig& c, ErrorList&) {
                   if (v) MemberOf(c, member) = v->get<std::string>();
                 }});
  }
  // A C++ enum; the allowed names are `name` of each of `values`, in this order.
  template <typename G, typename E>
  Key& Enum(E G::*member, std::vector<E> values, std::string_view (*name)(E)) {
    row_.doc.allowed.clear();
    for (E e : values) row_.doc.allowed.emplace_back(name(e));
    return Bind({[member, name](const RunConfig& c) -> std::optional<json> { return json(name(MemberOf(c, member))); },
                 [member, values, name](const json* v, const json&, RunConfig& c, ErrorList&) {
                   if (!v) return;
                   for (E e : values) {
                     if (name(e) == v->get<std::string>()) MemberOf(c, member) = e;
                   }
                 }});
  }
  // A check spec: stored as configured, parsed into ConfiguredCheck::spec.
  Key& CheckSpec(ConfiguredCheck BlueprintConfig::*member) {
    std::string key = row_.doc.key;
    return Bind({[member](const RunConfig& c) -> std::optional<json> { return MemberOf(c, member).raw; },
                 [member, key](const json* v, const json&, RunConfig& c, ErrorList& errors) {
                   ConfiguredCheck& check = MemberOf(c, member);
                   check.raw = v ? *v : json::object();
                   SetOrReport(ParseCheckSpec(check.raw, key), check.spec, errors);
                 }});
  }
  Key& Bind(ConfigBinding binding) {
    row_.binding = std::move(binding);
    return *this;
  }

  operator ConfigKey() const { return row_; }  // NOLINT(google-explicit-constructor)

 private:
  ConfigKey row_;
};

using T = ConfigType;

// provider.public_url: stored only when set; trailing slashes dropped.
ConfigBinding PublicUrlBinding() {
  ConfigBinding b = FieldBinding(&ProviderConfig::public_url, true);
  b.set = [](const json* v, const json&, RunConfig& c, ErrorList&) {
    if (!v) return;
    std::string url = v->get<std::string>();
    while (!url.empty() && url.back() == '/') url.pop_back();
    c.provider.public_url = std::move(url);
  };
  return b;
}

ConfigBinding QualificationsBinding() {
  return {[](const RunConfig& c) -> std::optional<json> {
            json quals = json::array();
            for (const Requirement& r : c.qualifications) quals.push_back(r.ToJson());
            return quals;
          },
          [](const json* v, const json&, RunConfig& c, ErrorList& errors) {
            if (v) SetOrReport(ParseRequirements(*v, "qualifications"), c.qualifications, errors);
          }};
}

ConfigBinding QualityRulesBinding() {
  return {[](const RunConfig& c) -> std::optional<json> { return QualityRulesToJson(c.quality_rules); },
          [](const json* v, const json& tree, RunConfig& c, ErrorList& errors) {
            if (!v) return;
            SetOrReport(ParseQualityRules(*v, "quality_rules"), c.quality_rules, errors);
            // A ban or a disqualification is a grant of the run's block qualification (checked
            // on the raw list, so it is reported along with the rules' other errors).
            for (size_t i = 0; v->is_array() && i < v->size(); ++i) {
              const json& rule = (*v)[i];
              const json action = rule.is_object() ? rule.value("action", json()) : json();
              const char* what = action == json("disqualify")                      ? "disqualify"
                                 : action.is_object() && action.contains("block") ? "block"
                                                                                   : nullptr;
              if (what != nullptr && !IsSet(tree, "blueprint.block_qualification")) {
                errors.Add(Where("quality_rules", i) + ".action: " + what +
                           " grants the run's block qualification, but blueprint.block_qualification is not set");
              }
            }
          }};
}

std::vector<ConfigKey> BuildTable() {
  using B = BlueprintConfig;
  using P = ProviderConfig;
  const std::string screening = "blueprint.use_screening_task";
  const std::string golds = "blueprint.use_golds";
  const std::string onboarding = "blueprint.onboarding_qualification";
  const json kTrue = true;
  return {
      // task
      Key("task.task_name", T::kString, "Name of the task; runs with the same name share worker history.").Required()
          .Field(&TaskConfig::task_name).Check(CheckNotBlank),
      Key("task.task_title", T::kString, "Title shown to workers.").DefaultFrom("task.task_name")
          .Field(&TaskConfig::task_title),
      Key("task.task_description", T::kString, "Description shown to workers.").Default("")
          .Field(&TaskConfig::task_description),
      Key("task.task_reward", T::kNumber, "Payment per unit, in the provider's currency.").Default(0).Min(0)
          .Field(&TaskConfig::task_reward),
      Key("task.allowed_concurrent", T::kInt, "Units a worker may hold at once (0 = unlimited).").Default(1).Min(0)
          .Field(&TaskConfig::allowed_concurrent),
      Key("task.maximum_units_per_worker", T::kInt,
          "Units one worker may do across all runs of the task (0 = unlimited).").Default(0).Min(0)
          .Field(&TaskConfig::maximum_units_per_worker),
      Key("task.assignment_duration_in_seconds", T::kInt,
          "Time a worker has to submit a unit before it goes back to the pool.").Default(1800).Min(1)
          .Field(&TaskConfig::assignment_duration_in_seconds),
      // blueprint
      Key("blueprint.type", T::kEnum, "static_html fills an HTML template; json serves only the JSON API.")
          .Enum(&B::type, {BlueprintType::kStaticHtml, BlueprintType::kJson}, BlueprintTypeName).Required(),
      Key("blueprint.task_source", T::kPath, "HTML template with ${field} placeholders.")
          .RequiredIf("blueprint.type", json("static_html")).FieldOrUnset(&B::task_source),
      Key("blueprint.data", T::kPath, "Units data: JSONL (one object a line) or CSV with a header row.").Required()
          .FieldOrUnset(&B::data),
      Key("blueprint.units_per_item", T::kInt, "Copies of each item, never two to the same worker.").Default(1).Min(1)
          .Field(&B::units_per_item),
      Key("blueprint.block_qualification", T::kString,
          "Workers holding this qualification are refused (screening failures get it).").Nullable()
          .RequiredIf(screening, kTrue).Optional(&B::block_qualification).Check(CheckQualificationName),
      Key("blueprint.onboarding_qualification", T::kString,
          "Workers without it get the onboarding task first; pass grants it.").Nullable()
          .Optional(&B::onboarding_qualification).Check(CheckQualificationName),
      Key("blueprint.onboarding_data", T::kObjectOrPath, "Data of the onboarding task (object, or a .json file).")
          .RequiredIf(onboarding, std::nullopt).Field(&B::onboarding_data),
      Key("blueprint.onboarding_answer", T::kObjectOrPath, "Expected onboarding answer (object, or a .json file).")
          .RequiredIf(onboarding, std::nullopt).Field(&B::onboarding_answer),
      Key("blueprint.onboarding_template", T::kPath, "HTML template of the onboarding task (static_html).")
          .FieldOrUnset(&B::onboarding_template),
      Key("blueprint.onboarding_check", T::kCheck, "How the onboarding submission is checked.").Default(json::object())
          .CheckSpec(&B::onboarding_check),
      Key("blueprint.use_screening_task", T::kBool, "Screen new workers before they get real units.").Default(false)
          .Field(&B::use_screening_task),
      Key("blueprint.passed_qualification_name", T::kString, "Granted (=1) to workers who pass screening.")
          .RequiredIf(screening, kTrue).FieldOrUnset(&B::passed_qualification_name).Check(CheckQualificationName),
      Key("blueprint.max_screening_units", T::kInt, "Screening units the run may serve.").Min(0)
          .RequiredIf(screening, kTrue).Field(&B::max_screening_units),
      Key("blueprint.screening_source", T::kEnum, "file: screening items from screening_file; real: first real unit.")
          .Enum(&B::screening_source, {ScreeningSource::kFile, ScreeningSource::kReal}, ScreeningSourceName)
          .Default("file"),
      Key("blueprint.screening_file", T::kPath, "JSONL of {\"inputs\": {...}, \"answer\": {...}} screening items.")
          .RequiredIf(screening, kTrue).RequiredIf("blueprint.screening_source", json("file"))
          .FieldOrUnset(&B::screening_file),
      Key("blueprint.screening_check", T::kCheck, "How a screening submission is checked.").Default(json::object())
          .CheckSpec(&B::screening_check),
      Key("blueprint.use_golds", T::kBool, "Mix gold units (known answers) into each worker's stream.").Default(false)
          .Field(&B::use_golds),
      Key("blueprint.gold_qualification_base", T::kString,
          "Base name of the gold counters (B-correct-golds, B-wrong-golds, ...).").RequiredIf(golds, kTrue)
          .FieldOrUnset(&B::gold_qualification_base).Check(CheckQualificationName),
      Key("blueprint.gold_file", T::kPath, "JSONL of {\"inputs\": {...}, \"answer\": {...}} gold items.")
          .RequiredIf(golds, kTrue).FieldOrUnset(&B::gold_file),
      Key("blueprint.gold_check", T::kCheck, "How a gold submission is checked.").Default(json::object())
          .CheckSpec(&B::gold_check),
      Key("blueprint.min_golds", T::kInt, "Correct golds a worker needs before real units.").Default(1).Min(0)
          .Field(&B::min_golds),
      Key("blueprint.max_incorrect_golds", T::kInt, "Wrong golds allowed before disqualification (strikes).")
          .Default(0).Min(0).Field(&B::max_incorrect_golds),
      Key("blueprint.max_gold_units", T::kInt, "Gold units the run may serve.").Min(0).RequiredIf(golds, kTrue)
          .Field(&B::max_gold_units),
      Key("blueprint.gold_schedule", T::kEnum, "When golds are served: Mephisto's log schedule or a fixed rate.")
          .Enum(&B::gold_schedule, {GoldScheduleKind::kMephisto, GoldScheduleKind::kFixedRate}, GoldScheduleKindName)
          .Default("mephisto"),
      Key("blueprint.gold_rate", T::kNumber, "Share of golds with gold_schedule fixed_rate.")
          .Default(0.05).Min(0, true).Max(1).Field(&B::gold_rate),
      Key("blueprint.gold_placement", T::kEnum,
          "random: each due gold at a random point of its schedule window; exact: Mephisto's positions.")
          .Enum(&B::gold_placement, {GoldPlacement::kRandom, GoldPlacement::kExact}, GoldPlacementName)
          .Default("random"),
      Key("blueprint.gold_policy", T::kEnum, "strikes: max_incorrect_golds; min_accuracy: accuracy over a window.")
          .Enum(&B::gold_policy, {GoldPolicyKind::kStrikes, GoldPolicyKind::kMinAccuracy}, GoldPolicyKindName)
          .Default("strikes"),
      Key("blueprint.min_gold_accuracy", T::kNumber, "Accuracy needed over gold_window with min_accuracy.")
          .Default(0.8).Min(0).Max(1).Field(&B::min_gold_accuracy),
      Key("blueprint.gold_window", T::kInt, "Recent golds the min_accuracy policy looks at.").Default(10).Min(1)
          .Field(&B::gold_window),
      // qualifications
      Key("qualifications", T::kList,
          "Requirements {qualification_name, comparator, value, applicable_providers}, all must hold.")
          .Default(json::array()).Bind(QualificationsBinding()),
      // quality_rules
      Key("quality_rules", T::kList,
          "Rules applied as submissions arrive: {rule: fast_submissions | majority_agreement | returned_units, ..., "
          "action: {block: DURATION} | disqualify | reject_units} (see Quality rules).")
          .Default(json::array()).Bind(QualityRulesBinding()),
      // provider
      Key("provider.type", T::kEnum, "Where workers come from.")
          .Enum({"local", "prolific", "mturk", "mturk_sandbox"}).Default("local").Field(&P::type),
      Key("provider.mturk_specific_qualifications", T::kList,
          "MTurk QualificationRequirement objects passed to MTurk as given.").Default(json::array())
          .Field(&P::mturk_specific_qualifications).Check(CheckMturkQualifications),
      Key("provider.prolific_specific_qualifications", T::kList,
          "Prolific filters {filter_id, selected_values|selected_range} passed as given, or Mephisto's "
          "{name: ...Requirement, ...} objects.").Default(json::array())
          .Field(&P::prolific_specific_qualifications).Check(CheckProlificQualifications),
      Key("provider.trust_worker_param", T::kBool,
          "Local workers: accept an unsigned ?worker=NAME (simulations, demos, tests only).").Default(false)
          .Field(&P::trust_worker_param),
      Key("provider.public_url", T::kString,
          "Address providers send workers to (https://host[:port]); `--public-url` overrides it.").Nullable()
          .Bind(PublicUrlBinding()).Check(CheckPublicUrl),
      Key("provider.publish", T::kBool, "Prolific: publish the study at launch (else `provider publish RUN`).")
          .Default(false).Field(&P::publish),
      Key("provider.prolific_places", T::kInt, "Prolific: participants the study takes (total_available_places).")
          .Min(1).RequiredIf("provider.type", json("prolific")).FieldOrUnset(&P::prolific_places),
      Key("provider.units_per_session", T::kInt,
          "Units a participant does before being sent back with the completion code (0 = until no work is left).")
          .Default(0).Min(0).Field(&P::units_per_session),
      Key("provider.prolific_workspace", T::kString, "Prolific: workspace id of the study (default: your first).")
          .Nullable().FieldOrUnset(&P::prolific_workspace),
      Key("provider.estimated_completion_time", T::kInt, "Prolific: minutes a session is expected to take.")
          .Default(10).Min(1).Field(&P::estimated_completion_time),
  };
}

}  // namespace

namespace run_config_internal {

const std::vector<ConfigKey>& ConfigKeys() {
  static const auto* table = new std::vector<ConfigKey>(BuildTable());
  return *table;
}

std::string MemberName(const ConfigKeyDoc& doc) {
  return doc.key == doc.group ? doc.key : doc.key.substr(doc.group.size() + 1);
}

}  // namespace run_config_internal

const std::vector<ConfigKeyDoc>& ConfigReference() {
  static const auto* docs = [] {
    auto* v = new std::vector<ConfigKeyDoc>();
    for (const ConfigKey& row : run_config_internal::ConfigKeys()) v->push_back(row.doc);
    return v;
  }();
  return *docs;
}

const ConfigKeyDoc* FindConfigKey(std::string_view key) {
  static const auto* index = [] {
    auto* m = new std::map<std::string, const ConfigKeyDoc*, std::less<>>();
    for (const ConfigKeyDoc& doc : ConfigReference()) (*m)[doc.key] = &doc;
    return m;
  }();
  auto it = index->find(key);
  return it == index->end() ? nullptr : it->second;
}

RunConfig::RunConfig() {
  ErrorList ignored;  // the defaults are valid (run_config_keys_test checks it)
  const json no_tree = json::object();
  for (const ConfigKey& row : run_config_internal::ConfigKeys()) {
    if (!row.doc.default_value.is_null()) row.binding.set(&row.doc.default_value, no_tree, *this, ignored);
  }
}

std::string_view BlueprintTypeName(BlueprintType t) { return t == BlueprintType::kJson ? "json" : "static_html"; }
std::string_view ScreeningSourceName(ScreeningSource s) { return s == ScreeningSource::kReal ? "real" : "file"; }

}  // namespace crowdgate
