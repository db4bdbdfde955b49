// The stored form of a run config: RunConfigToJson writes every row's member through its
// binding (plus the loaded gold/screening items and the source path); RunConfigFromJson
// validates it like a load without reading any file.
#include <string>
#include <utility>
#include <vector>

#include "core/run_config.hpp"
#include "core/run_config_internal.hpp"

namespace crowdgate {

using nlohmann::json;
using run_config_internal::BuildRunConfig;
using run_config_internal::ConfigKey;
using run_config_internal::ConfigKeys;
using run_config_internal::DescribeValue;
using run_config_internal::ErrorList;
using run_config_internal::LoadOptions;
using run_config_internal::MemberName;
using run_config_internal::ScreeningItemsNeeded;
using run_config_internal::Where;

namespace {

json ItemsToJson(const std::vector<EvalItem>& items) {
  json out = json::array();
  for (const EvalItem& item : items) out.push_back(EvalItemToJson(item));
  return out;
}

// Reads items stored by RunConfigToJson.
void LoadStoredItems(const json& stored, const char* key, bool needed, std::vector<EvalItem>* out,
                     ErrorList& errors) {
  std::string where = std::string("blueprint.") + key;
  if (stored.is_null()) {
    if (needed) errors.Add(where + ": missing from the stored config");
    return;
  }
  if (!stored.is_array()) {
    errors.Add(where + ": expected a list, got " + DescribeValue(stored));
    return;
  }
  for (size_t i = 0; i < stored.size(); ++i) {
    Result<EvalItem> item = EvalItemFromJson(stored[i], Where(where, i));
    if (!item.ok()) {
      errors.Add(item.status());
      return;
    }
    out->push_back(std::move(item).value());
  }
  if (needed && out->empty()) errors.Add(where + ": no items");
}

}  // namespace

json RunConfigToJson(const RunConfig& c) {
  json out = {{"task", json::object()}, {"blueprint", json::object()}, {"provider", json::object()}};
  for (const ConfigKey& row : ConfigKeys()) {
    std::optional<json> value = row.binding.get(c);
    if (!value) continue;
    json& group = row.doc.key == row.doc.group ? out : out[row.doc.group];
    group[MemberName(row.doc)] = std::move(*value);
  }
  out["blueprint"]["screening_items"] = ItemsToJson(c.blueprint.screening_items);
  out["blueprint"]["gold_items"] = ItemsToJson(c.blueprint.gold_items);
  if (!c.source_path.empty()) out["source_path"] = c.source_path;
  return out;
}

Result<RunConfig> RunConfigFromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("stored run config: expected an object, got " + DescribeValue(j));
  json tree = j;
  std::string source_path;
  if (auto it = tree.find("source_path"); it != tree.end()) {
    if (!it->is_string()) return Status::InvalidArgument("stored run config: source_path must be a string");
    source_path = it->get<std::string>();
    tree.erase(it);
  }
  json gold_items, screening_items;
  if (auto bp = tree.find("blueprint"); bp != tree.end() && bp->is_object()) {
    // Runs stored before gold_placement existed were served with Mephisto's positions: keep them.
    if (!bp->contains("gold_placement")) (*bp)["gold_placement"] = "exact";
    if (bp->contains("gold_items")) gold_items = std::move((*bp)["gold_items"]);
    if (bp->contains("screening_items")) screening_items = std::move((*bp)["screening_items"]);
    bp->erase("gold_items");
    bp->erase("screening_items");
  }
  LoadOptions opts;
  opts.read_files = false;
  Result<RunConfig> built = BuildRunConfig(std::move(tree), {}, opts);
  if (!built.ok()) return built.status().WithContext("stored run config");
  RunConfig config = std::move(built).value();
  ErrorList errors;
  BlueprintConfig& bp = config.blueprint;
  LoadStoredItems(gold_items, "gold_items", bp.use_golds, &bp.gold_items, errors);
  LoadStoredItems(screening_items, "screening_items", ScreeningItemsNeeded(bp), &bp.screening_items, errors);
  CG_RETURN_IF_ERROR(errors.ToStatus().WithContext("stored run config"));
  config.source_path = source_path;
  return config;
}

}  // namespace crowdgate
