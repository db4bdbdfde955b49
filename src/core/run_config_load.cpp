// Loading a run config: overrides, validation against the table, defaults, files, and
// binding of the valid tree into a RunConfig through each row's binding.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "core/run_config.hpp"
#include "core/run_config_internal.hpp"

namespace crowdgate {

using nlohmann::json;
namespace fs = std::filesystem;

namespace run_config_internal {

namespace {

using T = ConfigType;

// Keys Mephisto users write that crowdgate spells differently.
const std::map<std::string, std::string>& MephistoHints() {
  static const auto* hints = new std::map<std::string, std::string>{
      {"blueprint.data_csv", "blueprint.data"},
      {"blueprint.data_json", "blueprint.data"},
      {"blueprint.data_jsonl", "blueprint.data"},
      {"blueprint.onboarding_source", "blueprint.onboarding_template"},
  };
  return *hints;
}

// The groups (and top-level keys) of the table, in its order.
const std::vector<std::string>& Groups() {
  static const auto* groups = [] {
    auto* g = new std::vector<std::string>();
    for (const ConfigKey& row : ConfigKeys()) {
      if (std::find(g->begin(), g->end(), row.doc.group) == g->end()) g->push_back(row.doc.group);
    }
    return g;
  }();
  return *groups;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string LastSegment(std::string_view key) {
  size_t dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

// "did you mean X?" candidate for an unknown key: a Mephisto spelling, a close spelling
// (edit distance <= 2, or <= 3 for long keys), or the same name in another group.
std::optional<std::string> Suggest(const std::string& key) {
  auto hint = MephistoHints().find(key);
  if (hint != MephistoHints().end()) return hint->second;
  std::vector<std::string> candidates = Groups();
  for (const ConfigKeyDoc& doc : ConfigReference()) candidates.push_back(doc.key);
  std::optional<std::string> best;
  size_t best_distance = key.size() >= 16 ? 3 : 2;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(key, c);
    if (d <= best_distance && (!best || d < best_distance)) {
      best = c;
      best_distance = d;
    }
  }
  if (best) return best;
  std::string name = LastSegment(key);
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    if (LastSegment(doc.key) == name) return doc.key;
  }
  return std::nullopt;
}

std::string UnknownKeyMessage(const std::string& key) {
  std::string msg = key + ": unknown key";
  if (key == "mephisto") {
    return msg + "; crowdgate's groups are top-level: write task:, blueprint:, provider: without the mephisto: wrapper";
  }
  if (std::optional<std::string> s = Suggest(key)) msg += "; did you mean " + *s + "?";
  return msg;
}

bool InRange(const ConfigKeyDoc& doc, double v) {
  if (doc.min && (doc.min_exclusive ? v <= *doc.min : v < *doc.min)) return false;
  if (doc.max && v > *doc.max) return false;
  return true;
}

// Checks the JSON type (and range/enum) of one value; "" = fine.
std::string TypeError(const ConfigKeyDoc& doc, const json& v) {
  std::string expected = "expected " + doc.TypeText() + ", got " + DescribeValue(v);
  if (v.is_null()) return doc.nullable ? "" : expected;
  bool ok = true;
  switch (doc.type) {
    case T::kString: ok = v.is_string(); break;
    case T::kInt: ok = v.is_number_integer() && InRange(doc, v.get<double>()); break;
    case T::kNumber: ok = v.is_number() && std::isfinite(v.get<double>()) && InRange(doc, v.get<double>()); break;
    case T::kBool: ok = v.is_boolean(); break;
    case T::kPath: ok = v.is_string() && !v.get<std::string>().empty(); break;
    case T::kObject:
    case T::kCheck: ok = v.is_object(); break;
    case T::kObjectOrPath: ok = v.is_object() || (v.is_string() && !v.get<std::string>().empty()); break;
    case T::kList: ok = v.is_array(); break;
    case T::kEnum:
      ok = v.is_string() &&
           std::find(doc.allowed.begin(), doc.allowed.end(), v.get<std::string>()) != doc.allowed.end();
      break;
  }
  if (ok) return "";
  if (doc.type == T::kString && (v.is_number() || v.is_boolean())) expected += " (quote it to make it a string)";
  return expected;
}

// Checks that every key of the tree is known and well typed; keys with a wrong type are
// removed (so later rules do not trip on them) and recorded in `bad`.
void CheckKeys(json& tree, ErrorList& errors, std::set<std::string>& bad) {
  if (tree.is_null()) tree = json::object();
  if (!tree.is_object()) {
    errors.Add("config: expected a mapping with the groups task, blueprint, qualifications, provider; got " +
               DescribeValue(tree));
    tree = json::object();
    return;
  }
  for (auto group_it = tree.begin(); group_it != tree.end();) {
    const std::string group = group_it.key();
    if (const ConfigKeyDoc* top = FindConfigKey(group)) {  // a top-level key (qualifications, ...)
      if (top->type == T::kList && group_it->is_null()) *group_it = json::array();
      std::string err = TypeError(*top, *group_it);
      if (!err.empty()) {
        errors.Add(group + ": " + err);
        bad.insert(group);
        group_it = tree.erase(group_it);
        continue;
      }
    } else if (std::find(Groups().begin(), Groups().end(), group) == Groups().end()) {
      errors.Add(UnknownKeyMessage(group));
    } else if (group_it->is_null()) {
      *group_it = json::object();
    } else if (!group_it->is_object()) {
      errors.Add(group + ": expected a mapping of " + group + " keys, got " + DescribeValue(*group_it));
      *group_it = json::object();
    } else {
      json& members = *group_it;
      for (auto it = members.begin(); it != members.end();) {
        const std::string key = group + "." + it.key();
        const ConfigKeyDoc* doc = FindConfigKey(key);
        if (doc && doc->type == T::kList && it->is_null()) *it = json::array();  // "key:" with nothing = []
        std::string err = doc ? TypeError(*doc, *it) : "";
        if (!doc) errors.Add(UnknownKeyMessage(key));
        if (!err.empty()) errors.Add(key + ": " + err);
        if (doc && err.empty()) {
          ++it;
        } else {
          bad.insert(key);
          it = members.erase(it);
        }
      }
    }
    ++group_it;
  }
}

// Adds defaults for every key not given.
void FillDefaults(json& tree) {
  for (const ConfigKey& row : ConfigKeys()) {
    const ConfigKeyDoc& doc = row.doc;
    const json* from = row.default_from.empty() ? nullptr : Lookup(tree, row.default_from);
    const json& value = from ? *from : doc.default_value;
    if (value.is_null()) continue;
    json& group = doc.key == doc.group ? tree : tree[doc.group];
    std::string name = MemberName(doc);
    if (!group.contains(name)) group[name] = value;
  }
}

bool ConditionHolds(const json& tree, const ConfigCondition& c) {
  const json* v = Lookup(tree, c.key);
  if (!c.equals) return v != nullptr && !v->is_null();
  return v != nullptr && *v == *c.equals;
}

void CheckRequired(const json& tree, const std::set<std::string>& bad, ErrorList& errors) {
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    if (IsSet(tree, doc.key) || bad.count(doc.key)) continue;
    bool needed = doc.required;
    if (!needed && !doc.required_if.empty()) {
      needed = std::all_of(doc.required_if.begin(), doc.required_if.end(),
                           [&](const ConfigCondition& c) { return ConditionHolds(tree, c); });
    }
    if (needed) {
      errors.Add(doc.key + ": missing (required" + (doc.required ? "" : " " + doc.RequiredText()) + "; " +
                 doc.description + ")");
    }
  }
}

// Rules that involve several keys (Mephisto's assert_mixin_args, made into messages).
void CheckCrossRules(const json& tree, ErrorList& errors) {
  const json& bp = tree.at("blueprint");
  // FillDefaults gave every key with a default its value.
  bool screening = bp.at("use_screening_task").get<bool>();
  bool golds = bp.at("use_golds").get<bool>();
  const json& source = bp.at("screening_source");
  if (screening && golds) {
    errors.Add("blueprint.use_screening_task and blueprint.use_golds: cannot both be true (Mephisto forbids "
               "screening and gold units in the same run; use onboarding with golds, or screening alone)");
  }
  const json* concurrent = Lookup(tree, "task.allowed_concurrent");
  if ((screening || golds) && concurrent && concurrent->is_number_integer() && concurrent->get<int64_t>() != 1) {
    errors.Add("task.allowed_concurrent: must be 1 when " +
               std::string(screening ? "blueprint.use_screening_task" : "blueprint.use_golds") + " is true (got " +
               concurrent->dump() + "): a worker's next unit depends on the evaluation of the previous one");
  }
  const json* max_screening = Lookup(tree, "blueprint.max_screening_units");
  if (screening && source == "file" && max_screening &&
      max_screening->is_number_integer() && max_screening->get<int64_t>() < 1) {
    errors.Add("blueprint.max_screening_units: must be at least 1 with screening_source file (0 would leave every "
               "new worker without work)");
  }
  // A real unit has no expected answer, so only an external program can judge it.
  const json* screening_check = Lookup(tree, "blueprint.screening_check");
  if (screening && source == "real" &&
      !(screening_check && screening_check->is_object() && screening_check->contains("command"))) {
    errors.Add("blueprint.screening_check: screening_source real needs a `command` check (a real unit has no "
               "expected answer to compare with)");
  }
}

// The rows' own checks of set values, in table order.
void CheckRows(const json& tree, ErrorList& errors) {
  for (const ConfigKey& row : ConfigKeys()) {
    if (!row.check) continue;
    if (const json* v = Lookup(tree, row.doc.key); v != nullptr && !v->is_null()) row.check(row.doc.key, *v, errors);
  }
}

// ---- files ----

std::string ReadableFileError(const fs::path& p) {
  std::error_code ec;
  fs::file_status st = fs::status(p, ec);
  if (ec || !fs::exists(st)) return "file not found: " + p.string();
  if (fs::is_directory(st)) return "is a directory, not a file: " + p.string();
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) return "cannot read " + p.string() + ": " + std::strerror(errno);
  std::fclose(f);
  return "";
}

// Resolves a path value against base_dir and checks it; "" and an error on failure.
std::string ResolvePath(const std::string& key, const std::string& value, const LoadOptions& opts,
                        ErrorList& errors) {
  fs::path p(value);
  if (!opts.read_files) {
    if (!p.is_absolute()) errors.Add(key + ": expected an absolute path in a stored config, got " + value);
    return p.lexically_normal().string();
  }
  if (p.is_relative()) p = fs::path(opts.base_dir) / p;
  p = p.lexically_normal();
  std::string err = ReadableFileError(p);
  if (!err.empty()) {
    errors.Add(key + ": " + err);
    return "";
  }
  return p.string();
}

Result<json> ReadJsonObjectFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    json v = json::parse(buf.str());
    if (!v.is_object()) return Status::InvalidArgument(path + ": expected a JSON object, got " + DescribeValue(v));
    return v;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(path + ": invalid JSON: " + e.what());
  }
}

// Resolves every path key (absolute, normalised, checked) and replaces object-or-path
// values by the object read from the file.
void ResolveFiles(json& tree, const LoadOptions& opts, ErrorList& errors) {
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    if (doc.type != T::kPath && doc.type != T::kObjectOrPath) continue;
    json& group = tree[doc.group];
    std::string name = doc.key.substr(doc.group.size() + 1);
    if (!group.contains(name) || !group[name].is_string()) continue;
    if (doc.type == T::kObjectOrPath && !opts.read_files) {
      errors.Add(doc.key + ": expected the object inline in a stored config");
      continue;
    }
    std::string path = ResolvePath(doc.key, group[name].get<std::string>(), opts, errors);
    if (path.empty()) {
      group.erase(name);
      continue;
    }
    if (doc.type == T::kPath) {
      group[name] = path;
      continue;
    }
    Result<json> obj = ReadJsonObjectFile(path);
    if (!obj.ok()) {
      errors.Add(obj.status().WithContext(doc.key));
      group.erase(name);
    } else {
      group[name] = std::move(obj).value();
    }
  }
}

// ---- overrides ----

// Sets `value` at the dotted `key` path, creating mappings on the way.
Status SetPath(json& tree, const std::string& key, json value) {
  json* node = &tree;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (node->is_null()) *node = json::object();
    if (!node->is_object()) {
      return Status::InvalidArgument(key.substr(0, start - 1) + " is not a mapping, cannot set " + key);
    }
    if (dot == std::string::npos) {
      (*node)[part] = std::move(value);
      return Status::Ok();
    }
    node = &(*node)[part];
    start = dot + 1;
  }
}

void ErasePath(json& tree, const std::string& key) {
  size_t dot = key.rfind('.');
  if (dot == std::string::npos) {
    if (tree.is_object()) tree.erase(key);
    return;
  }
  json* parent = Lookup(tree, key.substr(0, dot));
  if (parent && parent->is_object()) parent->erase(key.substr(dot + 1));
}

// A key an override may name: a registry key, or a path inside an object/check key.
bool OverridableKey(const std::string& key) {
  if (FindConfigKey(key)) return true;
  for (size_t dot = key.rfind('.'); dot != std::string::npos && dot > 0; dot = key.rfind('.', dot - 1)) {
    const ConfigKeyDoc* doc = FindConfigKey(key.substr(0, dot));
    if (doc) return doc->type == T::kObject || doc->type == T::kCheck || doc->type == T::kObjectOrPath;
  }
  return false;
}

Status ApplyOverride(json& tree, const std::string& text) {
  std::string quoted = "override \"" + text + "\"";
  if (!text.empty() && text[0] == '~') {
    std::string key = text.substr(1, text.find('=') - 1);  // "~key" or "~key=anything"
    if (!OverridableKey(key)) return Status::InvalidArgument(quoted + ": " + UnknownKeyMessage(key));
    ErasePath(tree, key);
    return Status::Ok();
  }
  size_t eq = text.find('=');
  if (eq == std::string::npos) {
    return Status::InvalidArgument(quoted + ": expected key.path=value (e.g. blueprint.min_golds=2)");
  }
  std::string key = text.substr(0, eq);
  if (key.rfind("++", 0) == 0) {
    key = key.substr(2);
  } else if (key.rfind('+', 0) == 0) {
    key = key.substr(1);
  }
  if (key.empty()) return Status::InvalidArgument(quoted + ": missing the key before '='");
  if (!OverridableKey(key)) return Status::InvalidArgument(quoted + ": " + UnknownKeyMessage(key));
  CG_ASSIGN_OR_RETURN(json value, YamlToJson(text.substr(eq + 1), quoted));
  return SetPath(tree, key, std::move(value)).WithContext(quoted);
}

// Sets each row's member from the tree. List rows are bound while validating (their
// elements' errors are reported with the other validation errors, skipping lists of the
// wrong type); the other rows once the tree is valid.
void BindRows(const json& tree, bool lists, const std::set<std::string>& bad, RunConfig& config, ErrorList& errors) {
  for (const ConfigKey& row : ConfigKeys()) {
    if ((row.doc.type == T::kList) != lists || bad.count(row.doc.key)) continue;
    const json* v = Lookup(tree, row.doc.key);
    row.binding.set(v != nullptr && !v->is_null() ? v : nullptr, tree, config, errors);
  }
}

// Reads the gold and screening files of an enabled feature; refuses empty ones.
void LoadEvalFiles(BlueprintConfig& bp, ErrorList& errors) {
  auto load = [&](const char* key, const std::string& path, std::vector<EvalItem>* out) {
    Result<std::vector<EvalItem>> items = ReadEvalFile(path);
    if (!items.ok()) {
      errors.Add(items.status().WithContext(key));
    } else if (items->empty()) {
      errors.Add(std::string(key) + ": " + path + " holds no items");
    } else {
      *out = std::move(items).value();
    }
  };
  if (bp.use_golds && !bp.gold_file.empty()) load("blueprint.gold_file", bp.gold_file, &bp.gold_items);
  if (ScreeningItemsNeeded(bp) && !bp.screening_file.empty()) {
    load("blueprint.screening_file", bp.screening_file, &bp.screening_items);
  }
}

}  // namespace

// The YAML file's text; errors as the config's.
static Result<std::string> ReadTextFile(const std::string& path) {
  std::string err = ReadableFileError(path);
  if (!err.empty()) return Status::InvalidArgument("config: " + err);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("config: cannot read " + path + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

bool ScreeningItemsNeeded(const BlueprintConfig& bp) {
  return bp.use_screening_task && bp.screening_source == ScreeningSource::kFile;
}

Result<RunConfig> BuildRunConfig(json tree, const std::vector<std::string>& overrides, const LoadOptions& opts) {
  try {
    if (tree.is_null()) tree = json::object();
    for (const std::string& o : overrides) {
      CG_RETURN_IF_ERROR(ApplyOverride(tree, o));
    }
    ErrorList errors;
    std::set<std::string> bad;
    CheckKeys(tree, errors, bad);
    FillDefaults(tree);
    CheckRequired(tree, bad, errors);
    CheckCrossRules(tree, errors);
    CheckRows(tree, errors);
    ResolveFiles(tree, opts, errors);
    RunConfig config;
    BindRows(tree, /*lists=*/true, bad, config, errors);
    if (!errors.empty()) return errors.ToStatus();
    BindRows(tree, /*lists=*/false, bad, config, errors);
    if (!errors.empty()) return errors.ToStatus();
    if (opts.read_files) LoadEvalFiles(config.blueprint, errors);
    if (!errors.empty()) return errors.ToStatus();
    return config;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("run config: unexpected error: ") + e.what());
  }
}

}  // namespace run_config_internal

// ---- public entry points ---------------------------------------------------------------

Result<RunConfig> RunConfigFromTree(json tree, const std::string& base_dir, const std::vector<std::string>& overrides) {
  run_config_internal::LoadOptions opts;
  std::error_code ec;
  opts.base_dir = fs::absolute(base_dir.empty() ? fs::path(".") : fs::path(base_dir), ec).lexically_normal().string();
  return run_config_internal::BuildRunConfig(std::move(tree), overrides, opts);
}

Result<RunConfig> LoadRunConfig(const std::string& yaml_path, const std::vector<std::string>& overrides) {
  CG_ASSIGN_OR_RETURN(std::string text, run_config_internal::ReadTextFile(yaml_path));
  CG_ASSIGN_OR_RETURN(json tree, YamlToJson(text, yaml_path));
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(yaml_path), ec).lexically_normal();
  CG_ASSIGN_OR_RETURN(RunConfig config, RunConfigFromTree(std::move(tree), abs.parent_path().string(), overrides));
  config.source_path = abs.string();
  return config;
}

}  // namespace crowdgate
