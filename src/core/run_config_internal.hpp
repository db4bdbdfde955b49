// Internals of the run-config loader shared by its files (not a public API):
//  - run_config_keys.cpp       the table: one row per key (doc + binding + hooks)
//  - run_config_reference.cpp  the row's doc texts and the Markdown reference
//  - run_config_yaml.cpp       YAML -> JSON
//  - run_config_checks.cpp     per-value checks the rows reference (provider lists, names)
//  - run_config_load.cpp       validation, defaults, files, overrides, binding, loading
//  - run_config_json.cpp       RunConfigToJson / RunConfigFromJson
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/run_config.hpp"
#include "crowdgate/status.hpp"

namespace crowdgate::run_config_internal {

using nlohmann::json;

// Collects every error of one load; reported together, one per line.
class ErrorList {
 public:
  void Add(std::string msg) { errors_.push_back(std::move(msg)); }
  void Add(const Status& s) {
    if (!s.ok()) errors_.push_back(s.message());
  }
  bool empty() const { return errors_.empty(); }
  Status ToStatus() const {
    if (errors_.empty()) return Status::Ok();
    std::string msg;
    for (size_t i = 0; i < errors_.size(); ++i) msg += (i ? "\n" : "") + errors_[i];
    return Status::InvalidArgument(msg);
  }

 private:
  std::vector<std::string> errors_;
};

// "integer 3", "string \"x\"", "a list", ... for error messages.
std::string DescribeValue(const json& v);
// "list[i]".
std::string Where(const std::string& list, size_t i);
// The value at a dotted key path ("blueprint.gold_file"), or nullptr.
const json* Lookup(const json& tree, const std::string& key);
json* Lookup(json& tree, const std::string& key);
bool IsSet(const json& tree, const std::string& key);

// How a row's key maps to its RunConfig member.
struct ConfigBinding {
  // The member's stored form (RunConfigToJson); nullopt = left out of the stored config.
  std::function<std::optional<json>(const RunConfig&)> get;
  // Sets the member from the key's validated value in `tree` (paths resolved, defaults
  // filled); `value` is nullptr when the key is not set (absent or null), which leaves the
  // member as RunConfig() made it. Errors name the full key.
  std::function<void(const json* value, const json& tree, RunConfig&, ErrorList&)> set;
};

// One row of the table.
struct ConfigKey {
  ConfigKeyDoc doc;
  ConfigBinding binding;
  std::string default_from;  // key whose value is the default when not given ("" = none)
  // Extra check of a set, well-typed value (after the cross-key rules); adds errors that
  // name the key. Empty = none.
  std::function<void(const std::string& key, const json& value, ErrorList&)> check;
};

// Every row, in documentation order; ConfigReference() lists their docs in the same order.
const std::vector<ConfigKey>& ConfigKeys();

// "gold_file" of "blueprint.gold_file"; "qualifications" of the top-level list.
std::string MemberName(const ConfigKeyDoc& doc);

// ---- checks the rows reference (run_config_checks.cpp) ----

void CheckNotBlank(const std::string& key, const json& value, ErrorList& errors);
void CheckQualificationName(const std::string& key, const json& value, ErrorList& errors);
void CheckMturkQualifications(const std::string& key, const json& list, ErrorList& errors);
void CheckProlificQualifications(const std::string& key, const json& list, ErrorList& errors);
void CheckPublicUrl(const std::string& key, const json& value, ErrorList& errors);

// ---- loading (run_config_load.cpp) ----

struct LoadOptions {
  std::string base_dir;    // relative paths are resolved against it
  bool read_files = true;  // false: RunConfigFromJson (paths must be absolute; nothing read)
};

// Overrides, validation, defaults, files and binding of a parsed tree.
Result<RunConfig> BuildRunConfig(json tree, const std::vector<std::string>& overrides, const LoadOptions& opts);
// Screening items are needed when screening is on with screening_source file.
bool ScreeningItemsNeeded(const BlueprintConfig& bp);

}  // namespace crowdgate::run_config_internal
