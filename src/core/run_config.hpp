// The run config: a YAML file with Mephisto's groups (task, blueprint, qualifications,
// provider) plus Hydra-style `key.path=value` overrides, validated against one registry
// of keys and turned into a typed RunConfig.
//
// Contract:
//  - Every key the loader accepts is one row of one table (run_config_keys.cpp): name,
//    type, default, allowed values/range, when it is required, one-line description, and
//    the RunConfig member it binds to. Validation, defaults, binding, RunConfigToJson /
//    RunConfigFromJson and ConfigReference() (from which the docs are generated) are all
//    driven by that table; the structs below carry no defaults of their own.
//  - Unknown keys, wrong types, values out of range and missing required values are
//    InvalidArgument errors that name the full key ("blueprint.gold_file: ..."), and an
//    unknown key close to a known one gets "did you mean ...?". All such errors of one
//    load are reported together, one per line.
//  - YAML typing: plain scalars are typed (int, float, true/false, null/~/empty); quoted
//    and block scalars stay strings, so `task_name: "123"` is a string.
//  - Overrides: `key=value`, `+key=value`, `++key=value` set a key the registry knows
//    (value parsed as a YAML scalar or flow value; an empty value is null); a key inside
//    an object- or check-typed key may be set too (`blueprint.gold_check.match=regex`).
//    `~key` removes a key (back to its default). Anything else is an error naming it.
//  - Relative paths (in the file or in overrides) are resolved against the directory of
//    the config file; stored paths are absolute and normalised. At load time every path
//    must name a readable regular file.
//  - LoadRunConfig reads the gold and screening files (when enabled) and the onboarding
//    data/answer, so a RunConfig holds everything a run needs except the units data file
//    (blueprint.data), which the launcher streams with ReadDataFile.
//  - RunConfigToJson / RunConfigFromJson round-trip exactly and FromJson touches no file:
//    the server stores the resolved config in its database and reloads it from there.
//  - Nothing here throws; yaml-cpp and nlohmann exceptions are caught at this boundary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/check_spec.hpp"
#include "core/data_reader.hpp"
#include "core/gold_schedule.hpp"
#include "core/quality_rules.hpp"  // GoldScheduleKind, GoldPolicyKind and their names
#include "crowdgate/requirement.hpp"
#include "crowdgate/status.hpp"

namespace crowdgate {

// ---- the registry ------------------------------------------------------------------

enum class ConfigType {
  kString,
  kInt,
  kNumber,
  kBool,
  kPath,          // a file; relative to the config file's directory
  kObject,        // a JSON/YAML mapping
  kObjectOrPath,  // a mapping inline, or a path to a .json file holding one
  kList,
  kCheck,         // a check spec (see core/check_spec.hpp)
  kEnum,          // a string among `allowed`
};

// "key = value" condition for a conditionally required key; no `equals` = "is set
// (not null)".
struct ConfigCondition {
  std::string key;
  std::optional<nlohmann::json> equals;
};

struct ConfigKeyDoc {
  std::string key;    // full dotted name: "blueprint.gold_file", "qualifications"
  std::string group;  // "task", "blueprint", "qualifications", "provider"
  ConfigType type = ConfigType::kString;
  std::vector<std::string> allowed;  // kEnum values
  bool nullable = false;             // null is accepted (means "not set")
  std::optional<double> min;         // kInt / kNumber bounds
  std::optional<double> max;
  bool min_exclusive = false;
  nlohmann::json default_value;      // null = no default (unset)
  std::string default_text;          // for docs when the default is not a plain value
  bool required = false;             // always required
  std::vector<ConfigCondition> required_if;  // required when ALL hold
  std::string description;           // one line

  // "int >= 0", "number in (0, 1]", "enum: static_html | json", "string or null", ...
  std::string TypeText() const;
  // "1", "\"mephisto\"", "{}", "= task.task_name", "" (none).
  std::string DefaultText() const;
  // "yes", "when blueprint.use_golds = true", "" (optional).
  std::string RequiredText() const;
};

// Every key, in documentation order (task, blueprint, qualifications, provider).
const std::vector<ConfigKeyDoc>& ConfigReference();
// The registry entry of a full key, or nullptr.
const ConfigKeyDoc* FindConfigKey(std::string_view key);
// A Markdown table of ConfigReference() (key | type | default | required | description).
std::string ConfigReferenceMarkdown();

// ---- the typed config ----------------------------------------------------------------

enum class BlueprintType { kStaticHtml, kJson };
enum class ScreeningSource { kFile, kReal };

std::string_view BlueprintTypeName(BlueprintType t);        // "static_html" | "json"
std::string_view ScreeningSourceName(ScreeningSource s);    // "file" | "real"

// The members of TaskConfig, BlueprintConfig and ProviderConfig are the config keys of
// their group (see ConfigReference() for their meaning and defaults; RunConfig's
// constructor applies the defaults). A value-initialised member ("", 0, nullopt) of a key
// without a default means "not set".
struct TaskConfig {
  std::string task_name;
  std::string task_title;
  std::string task_description;
  double task_reward{};
  int64_t allowed_concurrent{};  // 0 = unlimited
  int64_t maximum_units_per_worker{};  // 0 = unlimited
  int64_t assignment_duration_in_seconds{};
};

// A check spec as configured (raw, as stored) and as parsed.
struct ConfiguredCheck {
  nlohmann::json raw = nlohmann::json::object();
  CheckSpec spec;
};

struct BlueprintConfig {
  BlueprintType type{};
  std::string task_source;  // absolute path; "" = not set (blueprint type json)
  std::string data;         // absolute path of the units data file (JSONL or CSV)
  int64_t units_per_item{};
  std::optional<std::string> block_qualification;

  // Onboarding: enabled when onboarding_qualification is set.
  std::optional<std::string> onboarding_qualification;
  nlohmann::json onboarding_data = nlohmann::json::object();    // loaded (inline or from its file); {} = not set
  nlohmann::json onboarding_answer = nlohmann::json::object();  // loaded; {} = not set
  std::string onboarding_template;  // absolute path; "" = not set
  ConfiguredCheck onboarding_check;

  // Screening.
  bool use_screening_task{};
  std::string passed_qualification_name;
  int64_t max_screening_units{};
  ScreeningSource screening_source{};
  std::string screening_file;             // absolute path; "" = not set
  std::vector<EvalItem> screening_items;  // loaded when screening is on with source file
  ConfiguredCheck screening_check;

  // Gold units.
  bool use_golds{};
  std::string gold_qualification_base;
  std::string gold_file;             // absolute path; "" = not set
  std::vector<EvalItem> gold_items;  // loaded when use_golds
  ConfiguredCheck gold_check;
  int64_t min_golds{};
  int64_t max_incorrect_golds{};
  int64_t max_gold_units{};
  GoldScheduleKind gold_schedule{};
  double gold_rate{};
  GoldPlacement gold_placement{};
  GoldPolicyKind gold_policy{};
  double min_gold_accuracy{};
  int64_t gold_window{};
};

struct ProviderConfig {
  std::string type;  // local | prolific | mturk | mturk_sandbox
  // The providers' own requirement objects, validated and kept as given.
  std::vector<nlohmann::json> mturk_specific_qualifications;
  std::vector<nlohmann::json> prolific_specific_qualifications;
  bool trust_worker_param{};  // local: accept an unsigned ?worker= (simulations, demos, tests)
  std::string public_url;            // "" = not set; no trailing slash
  bool publish{};                    // prolific: publish the study at launch
  int64_t prolific_places{};         // prolific: total_available_places (required for prolific)
  int64_t units_per_session{};       // 0 = until no work is left for the participant
  std::string prolific_workspace;    // "" = the account's first workspace
  int64_t estimated_completion_time{};  // minutes
};

struct RunConfig {
  // Every key at its default (keys without one not set).
  RunConfig();

  TaskConfig task;
  BlueprintConfig blueprint;
  std::vector<Requirement> qualifications;
  std::vector<QualityRule> quality_rules;
  ProviderConfig provider;
  std::string source_path;  // absolute path of the YAML file ("" when built otherwise)
};

// ---- loading -------------------------------------------------------------------------

// Reads `yaml_path`, applies `overrides` in order, validates and loads the gold,
// screening and onboarding files. See the contract above.
Result<RunConfig> LoadRunConfig(const std::string& yaml_path, const std::vector<std::string>& overrides);

// The same rules applied to an already-parsed tree (no YAML file); relative paths are
// resolved against `base_dir`. For tests and for configs that arrive over the API.
Result<RunConfig> RunConfigFromTree(nlohmann::json tree, const std::string& base_dir,
                                    const std::vector<std::string>& overrides);

// YAML text -> JSON with the typing rules above (`where` names the source in errors).
Result<nlohmann::json> YamlToJson(std::string_view yaml_text, std::string_view where);

// The resolved config: every key with its effective value, paths absolute, onboarding
// data/answer inline, plus "gold_items" / "screening_items" inside "blueprint".
nlohmann::json RunConfigToJson(const RunConfig& config);
// Inverse of RunConfigToJson; validates like LoadRunConfig but reads no file.
Result<RunConfig> RunConfigFromJson(const nlohmann::json& j);

}  // namespace crowdgate
