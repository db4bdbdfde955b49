#include "core/run_config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "crowdgate/types.hpp"

namespace crowdgate {

using nlohmann::json;
namespace fs = std::filesystem;

// ---- the registry ------------------------------------------------------------------

namespace {

// Fluent builder for one registry row.
class Key {
 public:
  Key(std::string key, ConfigType type, std::string description) {
    doc_.key = std::move(key);
    doc_.group = doc_.key.substr(0, doc_.key.find('.'));
    doc_.type = type;
    doc_.description = std::move(description);
  }
  Key& Default(json v) { doc_.default_value = std::move(v); return *this; }
  Key& DefaultText(std::string t) { doc_.default_text = std::move(t); return *this; }
  Key& Min(double v, bool exclusive = false) { doc_.min = v; doc_.min_exclusive = exclusive; return *this; }
  Key& Max(double v) { doc_.max = v; return *this; }
  Key& Enum(std::vector<std::string> allowed) { doc_.allowed = std::move(allowed); return *this; }
  Key& Nullable() { doc_.nullable = true; return *this; }
  Key& Required() { doc_.required = true; return *this; }
  Key& RequiredIf(std::string key, std::optional<json> equals) {
    doc_.required_if.push_back({std::move(key), std::move(equals)});
    return *this;
  }
  operator ConfigKeyDoc() const { return doc_; }  // NOLINT(google-explicit-constructor)

 private:
  ConfigKeyDoc doc_;
};

using T = ConfigType;

std::vector<ConfigKeyDoc> BuildRegistry() {
  const std::string screening = "blueprint.use_screening_task";
  const std::string golds = "blueprint.use_golds";
  const std::string onboarding = "blueprint.onboarding_qualification";
  const json kTrue = true;
  return {
      // task
      Key("task.task_name", T::kString, "Name of the task; runs with the same name share worker history.").Required(),
      Key("task.task_title", T::kString, "Title shown to workers.").DefaultText("= task.task_name"),
      Key("task.task_description", T::kString, "Description shown to workers.").Default(""),
      Key("task.task_reward", T::kNumber, "Payment per unit, in the provider's currency.").Default(0).Min(0),
      Key("task.allowed_concurrent", T::kInt, "Units a worker may hold at once (0 = unlimited).").Default(1).Min(0),
      Key("task.maximum_units_per_worker", T::kInt,
          "Units one worker may do across all runs of the task (0 = unlimited).").Default(0).Min(0),
      Key("task.assignment_duration_in_seconds", T::kInt,
          "Time a worker has to submit a unit before it goes back to the pool.").Default(1800).Min(1),
      // blueprint
      Key("blueprint.type", T::kEnum, "static_html fills an HTML template; json serves only the JSON API.")
          .Enum({"static_html", "json"}).Required(),
      Key("blueprint.task_source", T::kPath, "HTML template with ${field} placeholders.")
          .RequiredIf("blueprint.type", json("static_html")),
      Key("blueprint.data", T::kPath, "Units data: JSONL (one object a line) or CSV with a header row.").Required(),
      Key("blueprint.units_per_item", T::kInt, "Copies of each item, never two to the same worker.").Default(1).Min(1),
      Key("blueprint.block_qualification", T::kString,
          "Workers holding this qualification are refused (screening failures get it).").Nullable()
          .RequiredIf(screening, kTrue),
      Key("blueprint.onboarding_qualification", T::kString,
          "Workers without it get the onboarding task first; pass grants it.").Nullable(),
      Key("blueprint.onboarding_data", T::kObjectOrPath, "Data of the onboarding task (object, or a .json file).")
          .RequiredIf(onboarding, std::nullopt),
      Key("blueprint.onboarding_answer", T::kObjectOrPath, "Expected onboarding answer (object, or a .json file).")
          .RequiredIf(onboarding, std::nullopt),
      Key("blueprint.onboarding_template", T::kPath, "HTML template of the onboarding task (static_html)."),
      Key("blueprint.onboarding_check", T::kCheck, "How the onboarding submission is checked.").Default(json::object()),
      Key("blueprint.use_screening_task", T::kBool, "Screen new workers before they get real units.").Default(false),
      Key("blueprint.passed_qualification_name", T::kString, "Granted (=1) to workers who pass screening.")
          .RequiredIf(screening, kTrue),
      Key("blueprint.max_screening_units", T::kInt, "Screening units the run may serve.").Min(0)
          .RequiredIf(screening, kTrue),
      Key("blueprint.screening_source", T::kEnum, "file: screening items from screening_file; real: first real unit.")
          .Enum({"file", "real"}).Default("file"),
      Key("blueprint.screening_file", T::kPath, "JSONL of {\"inputs\": {...}, \"answer\": {...}} screening items.")
          .RequiredIf(screening, kTrue).RequiredIf("blueprint.screening_source", json("file")),
      Key("blueprint.screening_check", T::kCheck, "How a screening submission is checked.").Default(json::object()),
      Key("blueprint.use_golds", T::kBool, "Mix gold units (known answers) into each worker's stream.").Default(false),
      Key("blueprint.gold_qualification_base", T::kString,
          "Base name of the gold counters (B-correct-golds, B-wrong-golds, ...).").RequiredIf(golds, kTrue),
      Key("blueprint.gold_file", T::kPath, "JSONL of {\"inputs\": {...}, \"answer\": {...}} gold items.")
          .RequiredIf(golds, kTrue),
      Key("blueprint.gold_check", T::kCheck, "How a gold submission is checked.").Default(json::object()),
      Key("blueprint.min_golds", T::kInt, "Correct golds a worker needs before real units.").Default(1).Min(0),
      Key("blueprint.max_incorrect_golds", T::kInt, "Wrong golds allowed before disqualification (strikes).")
          .Default(0).Min(0),
      Key("blueprint.max_gold_units", T::kInt, "Gold units the run may serve.").Min(0).RequiredIf(golds, kTrue),
      Key("blueprint.gold_schedule", T::kEnum, "When golds are served: Mephisto's log schedule or a fixed rate.")
          .Enum({"mephisto", "fixed_rate"}).Default("mephisto"),
      Key("blueprint.gold_rate", T::kNumber, "Share of golds with gold_schedule fixed_rate.")
          .Default(0.05).Min(0, true).Max(1),
      Key("blueprint.gold_placement", T::kEnum,
          "random: each due gold at a random point of its schedule window; exact: Mephisto's positions.")
          .Enum({"random", "exact"}).Default("random"),
      Key("blueprint.gold_policy", T::kEnum, "strikes: max_incorrect_golds; min_accuracy: accuracy over a window.")
          .Enum({"strikes", "min_accuracy"}).Default("strikes"),
      Key("blueprint.min_gold_accuracy", T::kNumber, "Accuracy needed over gold_window with min_accuracy.")
          .Default(0.8).Min(0).Max(1),
      Key("blueprint.gold_window", T::kInt, "Recent golds the min_accuracy policy looks at.").Default(10).Min(1),
      // qualifications
      Key("qualifications", T::kList,
          "Requirements {qualification_name, comparator, value, applicable_providers}, all must hold.")
          .Default(json::array()),
      // quality_rules
      Key("quality_rules", T::kList,
          "Rules applied as submissions arrive: {rule: fast_submissions | majority_agreement | returned_units, ..., "
          "action: {block: DURATION} | disqualify | reject_units} (see Quality rules).")
          .Default(json::array()),
      // provider
      Key("provider.type", T::kEnum, "Where workers come from.")
          .Enum({"local", "prolific", "mturk", "mturk_sandbox"}).Default("local"),
      Key("provider.mturk_specific_qualifications", T::kList,
          "MTurk QualificationRequirement objects passed to MTurk as given.").Default(json::array()),
      Key("provider.prolific_specific_qualifications", T::kList,
          "Prolific filters {filter_id, selected_values|selected_range} passed as given, or Mephisto's "
          "{name: ...Requirement, ...} objects.").Default(json::array()),
      Key("provider.trust_worker_param", T::kBool,
          "Local workers: accept an unsigned ?worker=NAME (simulations, demos, tests only).").Default(false),
      Key("provider.public_url", T::kString,
          "Address providers send workers to (https://host[:port]); `--public-url` overrides it.").Nullable(),
      Key("provider.publish", T::kBool, "Prolific: publish the study at launch (else `provider publish RUN`).")
          .Default(false),
      Key("provider.prolific_places", T::kInt, "Prolific: participants the study takes (total_available_places).")
          .Min(1).RequiredIf("provider.type", json("prolific")),
      Key("provider.units_per_session", T::kInt,
          "Units a participant does before being sent back with the completion code (0 = until no work is left).")
          .Default(0).Min(0),
      Key("provider.prolific_workspace", T::kString, "Prolific: workspace id of the study (default: your first).")
          .Nullable(),
      Key("provider.estimated_completion_time", T::kInt, "Prolific: minutes a session is expected to take.")
          .Default(10).Min(1),
  };
}

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

const std::vector<std::string>& Groups() {
  static const auto* groups =
      new std::vector<std::string>{"task", "blueprint", "qualifications", "quality_rules", "provider"};
  return *groups;
}

std::string FormatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::string ConfigKeyDoc::TypeText() const {
  std::string base;
  switch (type) {
    case T::kString: base = "string"; break;
    case T::kInt: base = "int"; break;
    case T::kNumber: base = "number"; break;
    case T::kBool: base = "bool"; break;
    case T::kPath: base = "path"; break;
    case T::kObject: base = "object"; break;
    case T::kObjectOrPath: base = "object or path to a .json file"; break;
    case T::kList: base = "list"; break;
    case T::kCheck: base = "check spec"; break;
    case T::kEnum: {
      base = "one of: ";
      for (size_t i = 0; i < allowed.size(); ++i) base += (i ? ", " : "") + allowed[i];
      break;
    }
  }
  if (min && max) {
    base += std::string(" in ") + (min_exclusive ? "(" : "[") + FormatNumber(*min) + ", " + FormatNumber(*max) + "]";
  } else if (min) {
    base += (min_exclusive ? " > " : " >= ") + FormatNumber(*min);
  } else if (max) {
    base += " <= " + FormatNumber(*max);
  }
  if (nullable) base += " or null";
  return base;
}

std::string ConfigKeyDoc::DefaultText() const {
  if (!default_text.empty()) return default_text;
  if (default_value.is_null()) return "";
  return default_value.dump();
}

std::string ConfigKeyDoc::RequiredText() const {
  if (required) return "yes";
  if (required_if.empty()) return "";
  std::string text = "when ";
  for (size_t i = 0; i < required_if.size(); ++i) {
    const ConfigCondition& c = required_if[i];
    if (i) text += " and ";
    text += c.key + (c.equals ? " = " + (c.equals->is_string() ? c.equals->get<std::string>() : c.equals->dump())
                              : std::string(" is set"));
  }
  return text;
}

const std::vector<ConfigKeyDoc>& ConfigReference() {
  static const auto* registry = new std::vector<ConfigKeyDoc>(BuildRegistry());
  return *registry;
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

std::string ConfigReferenceMarkdown() {
  std::string md = "| key | type | default | required | description |\n| --- | --- | --- | --- | --- |\n";
  auto cell = [&md](std::string_view text, bool code) {
    md += ' ';
    if (code && !text.empty()) md += '`';
    for (char c : text) {
      if (c == '|') md += '\\';
      md += c;
    }
    if (code && !text.empty()) md += '`';
    md += " |";
  };
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    md += '|';
    cell(doc.key, true);
    cell(doc.TypeText(), false);
    cell(doc.DefaultText(), true);
    cell(doc.RequiredText(), false);
    cell(doc.description, false);
    md += '\n';
  }
  return md;
}

// ---- enum names ----------------------------------------------------------------------

std::string_view BlueprintTypeName(BlueprintType t) { return t == BlueprintType::kJson ? "json" : "static_html"; }
std::string_view ScreeningSourceName(ScreeningSource s) { return s == ScreeningSource::kReal ? "real" : "file"; }

// ---- YAML -> JSON --------------------------------------------------------------------

namespace {

bool IsNullScalar(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// Types a plain scalar as YAML 1.2's core schema does (decimal ints, floats, booleans,
// null); anything else is a string.
json TypePlainScalar(const std::string& s) {
  if (IsNullScalar(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view v = s;
  if (!v.empty() && v.front() == '+') v.remove_prefix(1);
  if (v.empty() || v.find_first_not_of("0123456789-.eE+") != std::string_view::npos ||
      v.find_first_of("0123456789") == std::string_view::npos) {
    return s;
  }
  const char* end = v.data() + v.size();
  if (v.find_first_of(".eE") == std::string_view::npos) {
    int64_t i = 0;
    auto [ptr, ec] = std::from_chars(v.data(), end, i);
    if (ec == std::errc() && ptr == end) return i;
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(v.data(), end, d);
  if (ec == std::errc() && ptr == end) return d;
  return s;
}

std::string MarkText(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return " (line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) + ")";
}

Status NodeToJson(const YAML::Node& node, std::string_view where, json* out) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      *out = nullptr;
      return Status::Ok();
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") {
        *out = node.Scalar();
      } else {
        *out = TypePlainScalar(node.Scalar());
      }
      return Status::Ok();
    }
    case YAML::NodeType::Sequence: {
      *out = json::array();
      for (const YAML::Node& child : node) {
        json v;
        CG_RETURN_IF_ERROR(NodeToJson(child, where, &v));
        out->push_back(std::move(v));
      }
      return Status::Ok();
    }
    case YAML::NodeType::Map: {
      *out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Status::InvalidArgument(std::string(where) + ": mapping keys must be plain strings" +
                                         MarkText(kv.first.Mark()));
        }
        const std::string& key = kv.first.Scalar();
        if (out->contains(key)) {
          return Status::InvalidArgument(std::string(where) + ": duplicate key \"" + key + "\"" +
                                         MarkText(kv.first.Mark()));
        }
        CG_RETURN_IF_ERROR(NodeToJson(kv.second, where, &(*out)[key]));
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<json> YamlToJson(std::string_view yaml_text, std::string_view where) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    json out;
    CG_RETURN_IF_ERROR(NodeToJson(root, where, &out));
    return out;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string(where) + ": invalid YAML: " + e.msg + MarkText(e.mark));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string(where) + ": invalid YAML: " + e.what());
  }
}

// ---- validation ----------------------------------------------------------------------

namespace {

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

std::string DescribeValue(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return std::string("boolean ") + (v.get<bool>() ? "true" : "false");
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer " + v.dump();
    case json::value_t::number_float: return "number " + v.dump();
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      return "string " + json(s).dump();
    }
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "an unsupported value";
  }
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

// The tree being loaded: {group: {name: value}, "qualifications": [...]}.
struct LoadOptions {
  std::string base_dir;     // relative paths are resolved against it
  bool read_files = true;   // false: RunConfigFromJson (paths must be absolute; nothing read)
};

// The value at a dotted key path, or nullptr.
template <typename J>
J* LookupIn(J& tree, const std::string& key) {
  J* node = &tree;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

const json* Lookup(const json& tree, const std::string& key) { return LookupIn(tree, key); }

bool IsSet(const json& tree, const std::string& key) {
  const json* v = Lookup(tree, key);
  return v != nullptr && !v->is_null();
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
    if (group == "qualifications" || group == "quality_rules") {
      if (group_it->is_null()) *group_it = json::array();
      std::string err = TypeError(*FindConfigKey(group), *group_it);
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
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    if (doc.default_value.is_null()) continue;
    if (doc.key == doc.group) {
      if (!tree.contains(doc.key)) tree[doc.key] = doc.default_value;
      continue;
    }
    json& group = tree[doc.group];
    std::string name = doc.key.substr(doc.group.size() + 1);
    if (!group.contains(name)) group[name] = doc.default_value;
  }
  json& task = tree["task"];
  if (!task.contains("task_title") && task.contains("task_name")) task["task_title"] = task["task_name"];
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
  bool screening = bp.value("use_screening_task", false);
  bool golds = bp.value("use_golds", false);
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
  if (screening && bp.value("screening_source", "file") == "file" && max_screening &&
      max_screening->is_number_integer() && max_screening->get<int64_t>() < 1) {
    errors.Add("blueprint.max_screening_units: must be at least 1 with screening_source file (0 would leave every "
               "new worker without work)");
  }
  // A real unit has no expected answer, so only an external program can judge it.
  const json* screening_check = Lookup(tree, "blueprint.screening_check");
  if (screening && bp.value("screening_source", "file") == "real" &&
      !(screening_check && screening_check->is_object() && screening_check->contains("command"))) {
    errors.Add("blueprint.screening_check: screening_source real needs a `command` check (a real unit has no "
               "expected answer to compare with)");
  }
  for (const char* key : {"task.task_name"}) {
    const json* v = Lookup(tree, key);
    if (v && v->is_string() && v->get<std::string>().find_first_not_of(" \t") == std::string::npos) {
      errors.Add(std::string(key) + ": must not be empty");
    }
  }
  for (const char* key : {"blueprint.block_qualification", "blueprint.onboarding_qualification",
                          "blueprint.passed_qualification_name", "blueprint.gold_qualification_base"}) {
    const json* v = Lookup(tree, key);
    if (v && v->is_string()) errors.Add(ValidateQualificationName(v->get<std::string>()).WithContext(key));
  }
}

// ---- provider-specific qualifications ----

std::string Where(const std::string& list, size_t i) { return list + "[" + std::to_string(i) + "]"; }

bool IsIntList(const json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number_integer(); });
}

Status CheckLocale(const json& v, const std::string& where) {
  if (!v.is_object()) return Status::InvalidArgument(where + ": expected an object {Country, Subdivision?}");
  for (const auto& [k, x] : v.items()) {
    if (k != "Country" && k != "Subdivision") {
      return Status::InvalidArgument(where + ": unknown key \"" + k + "\" (a locale has Country and Subdivision)");
    }
  }
  auto it = v.find("Country");
  std::string country = it != v.end() && it->is_string() ? it->get<std::string>() : "";
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (country.size() != 2 || !std::all_of(country.begin(), country.end(), upper)) {
    return Status::InvalidArgument(where + ".Country: expected a two-letter ISO 3166 code such as \"US\"");
  }
  if (v.contains("Subdivision") && !v["Subdivision"].is_string()) {
    return Status::InvalidArgument(where + ".Subdivision: expected a string such as \"CA\"");
  }
  return Status::Ok();
}

Status CheckMturkQualification(const json& q, const std::string& where) {
  static const std::set<std::string> kKeys = {"QualificationTypeId", "Comparator",     "IntegerValues",
                                              "LocaleValues",        "ActionsGuarded", "RequiredToPreview"};
  if (!q.is_object()) return Status::InvalidArgument(where + ": expected an object, got " + DescribeValue(q));
  for (const auto& [k, v] : q.items()) {
    if (!kKeys.count(k)) {
      return Status::InvalidArgument(where + ": unknown key \"" + k + "\" (MTurk keys: QualificationTypeId, "
                                     "Comparator, IntegerValues, LocaleValues, ActionsGuarded, RequiredToPreview)");
    }
  }
  if (!q.contains("QualificationTypeId") || !q["QualificationTypeId"].is_string() ||
      q["QualificationTypeId"].get<std::string>().empty()) {
    return Status::InvalidArgument(where + ".QualificationTypeId: missing or not a non-empty string");
  }
  std::optional<Comparator> cmp;
  if (q.contains("Comparator") && q["Comparator"].is_string()) {
    cmp = ComparatorFromName(q["Comparator"].get<std::string>());
  }
  if (!cmp) {
    return Status::InvalidArgument(where + ".Comparator: expected one of GreaterThan, GreaterThanOrEqualTo, LessThan, "
                                   "LessThanOrEqualTo, EqualTo, NotEqualTo, Exists, DoesNotExist, In, NotIn");
  }
  if (q.contains("IntegerValues") && !IsIntList(q["IntegerValues"])) {
    return Status::InvalidArgument(where + ".IntegerValues: expected a list of integers");
  }
  size_t num_values = q.contains("IntegerValues") ? q["IntegerValues"].size() : 0;
  if (q.contains("LocaleValues")) {
    if (!q["LocaleValues"].is_array()) return Status::InvalidArgument(where + ".LocaleValues: expected a list");
    for (size_t i = 0; i < q["LocaleValues"].size(); ++i) {
      CG_RETURN_IF_ERROR(CheckLocale(q["LocaleValues"][i], Where(where + ".LocaleValues", i)));
    }
    num_values += q["LocaleValues"].size();
  }
  if (q.contains("ActionsGuarded")) {
    const json& a = q["ActionsGuarded"];
    if (!a.is_string() || (a != "Accept" && a != "PreviewAndAccept" && a != "DiscoverPreviewAndAccept")) {
      return Status::InvalidArgument(where + ".ActionsGuarded: expected Accept, PreviewAndAccept or "
                                     "DiscoverPreviewAndAccept");
    }
  }
  if (q.contains("RequiredToPreview") && !q["RequiredToPreview"].is_boolean()) {
    return Status::InvalidArgument(where + ".RequiredToPreview: expected a boolean");
  }
  if (q.contains("IntegerValues") && q.contains("LocaleValues")) {
    return Status::InvalidArgument(where + ": give IntegerValues or LocaleValues, not both");
  }
  std::string name(ComparatorName(*cmp));
  if (*cmp == Comparator::kExists || *cmp == Comparator::kDoesNotExist) {
    if (num_values) return Status::InvalidArgument(where + ": " + name + " takes no IntegerValues or LocaleValues");
  } else if (*cmp == Comparator::kIn || *cmp == Comparator::kNotIn) {
    if (!num_values) return Status::InvalidArgument(where + ": " + name + " needs IntegerValues or LocaleValues");
  } else if (num_values != 1) {
    return Status::InvalidArgument(where + ": " + name + " needs exactly one value in IntegerValues or LocaleValues");
  } else if (*cmp != Comparator::kEqualTo && *cmp != Comparator::kNotEqualTo && q.contains("LocaleValues")) {
    return Status::InvalidArgument(where + ": " + name + " compares integers; use IntegerValues");
  }
  return Status::Ok();
}

// A Prolific filter: {filter_id, selected_values: [strings]} (select) or {filter_id,
// selected_range: {lower?, upper?}} (range), optionally with weightings.
Status CheckProlificFilter(const json& q, const std::string& where) {
  if (!q["filter_id"].is_string() || q["filter_id"].get<std::string>().empty()) {
    return Status::InvalidArgument(where + ".filter_id: expected a non-empty string such as \"age\"");
  }
  for (const auto& [k, v] : q.items()) {
    if (k != "filter_id" && k != "selected_values" && k != "selected_range" && k != "weightings") {
      return Status::InvalidArgument(where + ": unknown key \"" + k +
                                     "\" (a Prolific filter has filter_id, selected_values or selected_range, "
                                     "weightings)");
    }
  }
  const bool values = q.contains("selected_values");
  const bool range = q.contains("selected_range");
  if (values == range) {
    return Status::InvalidArgument(where + ": give exactly one of selected_values (a select filter) or "
                                   "selected_range (a range filter)");
  }
  if (values) {
    const json& v = q["selected_values"];
    if (!v.is_array() || v.empty() ||
        !std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_string(); })) {
      return Status::InvalidArgument(where + ".selected_values: expected a non-empty list of choice ids (strings)");
    }
  } else {
    const json& r = q["selected_range"];
    if (!r.is_object() || r.empty()) {
      return Status::InvalidArgument(where + ".selected_range: expected an object {lower, upper}");
    }
    for (const auto& [k, v] : r.items()) {
      if (k != "lower" && k != "upper") {
        return Status::InvalidArgument(where + ".selected_range: unknown key \"" + k + "\" (lower, upper)");
      }
      if (!v.is_number() && !v.is_string() && !v.is_null()) {
        return Status::InvalidArgument(where + ".selected_range." + k + ": expected a number or an ISO date");
      }
    }
  }
  return Status::Ok();
}

Status CheckProlificQualification(const json& q, const std::string& where) {
  if (!q.is_object()) return Status::InvalidArgument(where + ": expected an object, got " + DescribeValue(q));
  if (q.contains("filter_id")) return CheckProlificFilter(q, where);
  if (!q.contains("name") || !q["name"].is_string() || q["name"].get<std::string>().empty()) {
    return Status::InvalidArgument(where + ".name: missing or not a non-empty string (a Prolific filter needs "
                                   "filter_id; Mephisto's form needs the requirement type, e.g. "
                                   "\"CustomWhitelistEligibilityRequirement\")");
  }
  return Status::Ok();
}

void CheckProvider(const json& tree, ErrorList& errors) {
  const std::string mturk = "provider.mturk_specific_qualifications";
  const std::string prolific = "provider.prolific_specific_qualifications";
  if (const json* list = Lookup(tree, mturk); list && list->is_array()) {
    for (size_t i = 0; i < list->size(); ++i) errors.Add(CheckMturkQualification((*list)[i], Where(mturk, i)));
  }
  if (const json* list = Lookup(tree, prolific); list && list->is_array()) {
    for (size_t i = 0; i < list->size(); ++i) errors.Add(CheckProlificQualification((*list)[i], Where(prolific, i)));
  }
  if (const json* url = Lookup(tree, "provider.public_url"); url && url->is_string()) {
    const std::string u = url->get<std::string>();
    if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
      errors.Add("provider.public_url: expected an http:// or https:// address, got \"" + u + "\"");
    }
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
  json* parent = LookupIn(tree, key.substr(0, dot));
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

// ---- typed build ----

template <typename E>
E EnumFrom(const json& v, std::initializer_list<std::pair<std::string_view, E>> table) {
  std::string s = v.get<std::string>();
  for (const auto& [name, e] : table) {
    if (name == s) return e;
  }
  return table.begin()->second;  // unreachable: the registry checked the value
}

std::string StrOr(const json& group, const char* name) {
  auto it = group.find(name);
  return it == group.end() || !it->is_string() ? "" : it->get<std::string>();
}

std::optional<std::string> OptStr(const json& group, const char* name) {
  auto it = group.find(name);
  if (it == group.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

void ParseCheck(const json& bp, const char* name, ConfiguredCheck* out, ErrorList& errors) {
  out->raw = bp.value(name, json::object());
  Result<CheckSpec> spec = ParseCheckSpec(out->raw, std::string("blueprint.") + name);
  if (spec.ok()) {
    out->spec = std::move(spec).value();
  } else {
    errors.Add(spec.status());
  }
}

TaskConfig BuildTask(const json& t) {
  TaskConfig task;
  task.task_name = StrOr(t, "task_name");
  task.task_title = StrOr(t, "task_title");
  task.task_description = StrOr(t, "task_description");
  task.task_reward = t.value("task_reward", 0.0);
  task.allowed_concurrent = t.value("allowed_concurrent", int64_t{1});
  task.maximum_units_per_worker = t.value("maximum_units_per_worker", int64_t{0});
  task.assignment_duration_in_seconds = t.value("assignment_duration_in_seconds", int64_t{1800});
  return task;
}

BlueprintConfig BuildBlueprint(const json& b, ErrorList& errors) {
  BlueprintConfig bp;
  bp.type = EnumFrom<BlueprintType>(b.at("type"), {{"static_html", BlueprintType::kStaticHtml},
                                                {"json", BlueprintType::kJson}});
  bp.task_source = StrOr(b, "task_source");
  bp.data = StrOr(b, "data");
  bp.units_per_item = b.value("units_per_item", int64_t{1});
  bp.block_qualification = OptStr(b, "block_qualification");
  bp.onboarding_qualification = OptStr(b, "onboarding_qualification");
  bp.onboarding_data = b.value("onboarding_data", json::object());
  bp.onboarding_answer = b.value("onboarding_answer", json::object());
  bp.onboarding_template = StrOr(b, "onboarding_template");
  ParseCheck(b, "onboarding_check", &bp.onboarding_check, errors);
  bp.use_screening_task = b.value("use_screening_task", false);
  bp.passed_qualification_name = StrOr(b, "passed_qualification_name");
  bp.max_screening_units = b.value("max_screening_units", int64_t{0});
  bp.screening_source = EnumFrom<ScreeningSource>(b.at("screening_source"), {{"file", ScreeningSource::kFile},
                                                                         {"real", ScreeningSource::kReal}});
  bp.screening_file = StrOr(b, "screening_file");
  ParseCheck(b, "screening_check", &bp.screening_check, errors);
  bp.use_golds = b.value("use_golds", false);
  bp.gold_qualification_base = StrOr(b, "gold_qualification_base");
  bp.gold_file = StrOr(b, "gold_file");
  ParseCheck(b, "gold_check", &bp.gold_check, errors);
  bp.min_golds = b.value("min_golds", int64_t{1});
  bp.max_incorrect_golds = b.value("max_incorrect_golds", int64_t{0});
  bp.max_gold_units = b.value("max_gold_units", int64_t{0});
  bp.gold_schedule = EnumFrom<GoldScheduleKind>(b.at("gold_schedule"), {{"mephisto", GoldScheduleKind::kMephisto},
                                                                     {"fixed_rate", GoldScheduleKind::kFixedRate}});
  bp.gold_rate = b.value("gold_rate", 0.05);
  bp.gold_placement = EnumFrom<GoldPlacement>(b.at("gold_placement"), {{"random", GoldPlacement::kRandom},
                                                                     {"exact", GoldPlacement::kExact}});
  bp.gold_policy = EnumFrom<GoldPolicyKind>(b.at("gold_policy"), {{"strikes", GoldPolicyKind::kStrikes},
                                                                   {"min_accuracy", GoldPolicyKind::kMinAccuracy}});
  bp.min_gold_accuracy = b.value("min_gold_accuracy", 0.8);
  bp.gold_window = b.value("gold_window", int64_t{10});
  return bp;
}

ProviderConfig BuildProvider(const json& p) {
  ProviderConfig provider;
  provider.type = p.value("type", "local");
  provider.trust_worker_param = p.value("trust_worker_param", false);
  provider.public_url = StrOr(p, "public_url");
  while (!provider.public_url.empty() && provider.public_url.back() == '/') provider.public_url.pop_back();
  provider.publish = p.value("publish", false);
  provider.prolific_places = p.contains("prolific_places") && p["prolific_places"].is_number_integer()
                                 ? p["prolific_places"].get<int64_t>()
                                 : 0;
  provider.units_per_session = p.value("units_per_session", int64_t{0});
  provider.prolific_workspace = StrOr(p, "prolific_workspace");
  provider.estimated_completion_time = p.value("estimated_completion_time", int64_t{10});
  for (const json& q : p.value("mturk_specific_qualifications", json::array())) {
    provider.mturk_specific_qualifications.push_back(q);
  }
  for (const json& q : p.value("prolific_specific_qualifications", json::array())) {
    provider.prolific_specific_qualifications.push_back(q);
  }
  return provider;
}

bool ScreeningItemsNeeded(const BlueprintConfig& bp) {
  return bp.use_screening_task && bp.screening_source == ScreeningSource::kFile;
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

// The whole pipeline after the tree is parsed.
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
    CheckProvider(tree, errors);
    ResolveFiles(tree, opts, errors);
    RunConfig config;
    if (bad.count("qualifications") == 0) {
      Result<std::vector<Requirement>> reqs = ParseRequirements(tree["qualifications"], "qualifications");
      if (reqs.ok()) {
        config.qualifications = std::move(reqs).value();
      } else {
        errors.Add(reqs.status());
      }
    }
    if (bad.count("quality_rules") == 0) {
      Result<std::vector<QualityRule>> rules = ParseQualityRules(tree["quality_rules"], "quality_rules");
      if (rules.ok()) {
        config.quality_rules = std::move(rules).value();
      } else {
        errors.Add(rules.status());
      }
      // A ban or a disqualification is a grant of the run's block qualification (checked on the
      // raw list, so it is reported along with the rules' other errors).
      const json& list = tree["quality_rules"];
      for (size_t i = 0; list.is_array() && i < list.size(); ++i) {
        const json action = list[i].is_object() ? list[i].value("action", json()) : json();
        const char* what = action == json("disqualify")                        ? "disqualify"
                           : action.is_object() && action.contains("block")   ? "block"
                                                                               : nullptr;
        if (what != nullptr && !IsSet(tree, "blueprint.block_qualification")) {
          errors.Add(Where("quality_rules", i) + ".action: " + what +
                     " grants the run's block qualification, but blueprint.block_qualification is not set");
        }
      }
    }
    if (!errors.empty()) return errors.ToStatus();
    config.task = BuildTask(tree["task"]);
    config.blueprint = BuildBlueprint(tree["blueprint"], errors);
    config.provider = BuildProvider(tree["provider"]);
    if (!errors.empty()) return errors.ToStatus();
    if (opts.read_files) LoadEvalFiles(config.blueprint, errors);
    if (!errors.empty()) return errors.ToStatus();
    return config;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("run config: unexpected error: ") + e.what());
  }
}

Result<std::string> ReadTextFile(const std::string& path) {
  std::string err = ReadableFileError(path);
  if (!err.empty()) return Status::InvalidArgument("config: " + err);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("config: cannot read " + path + ": " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

// ---- public entry points ---------------------------------------------------------------

Result<RunConfig> RunConfigFromTree(json tree, const std::string& base_dir, const std::vector<std::string>& overrides) {
  LoadOptions opts;
  std::error_code ec;
  opts.base_dir = fs::absolute(base_dir.empty() ? fs::path(".") : fs::path(base_dir), ec).lexically_normal().string();
  return BuildRunConfig(std::move(tree), overrides, opts);
}

Result<RunConfig> LoadRunConfig(const std::string& yaml_path, const std::vector<std::string>& overrides) {
  CG_ASSIGN_OR_RETURN(std::string text, ReadTextFile(yaml_path));
  CG_ASSIGN_OR_RETURN(json tree, YamlToJson(text, yaml_path));
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(yaml_path), ec).lexically_normal();
  CG_ASSIGN_OR_RETURN(RunConfig config, RunConfigFromTree(std::move(tree), abs.parent_path().string(), overrides));
  config.source_path = abs.string();
  return config;
}

namespace {

json ItemsToJson(const std::vector<EvalItem>& items) {
  json out = json::array();
  for (const EvalItem& item : items) out.push_back(EvalItemToJson(item));
  return out;
}

void PutIfSet(json& obj, const char* name, const std::string& value) {
  if (!value.empty()) obj[name] = value;
}

}  // namespace

json RunConfigToJson(const RunConfig& c) {
  const TaskConfig& t = c.task;
  const BlueprintConfig& b = c.blueprint;
  json task = {{"task_name", t.task_name},
               {"task_title", t.task_title},
               {"task_description", t.task_description},
               {"task_reward", t.task_reward},
               {"allowed_concurrent", t.allowed_concurrent},
               {"maximum_units_per_worker", t.maximum_units_per_worker},
               {"assignment_duration_in_seconds", t.assignment_duration_in_seconds}};
  json bp = {{"type", BlueprintTypeName(b.type)},
             {"units_per_item", b.units_per_item},
             {"block_qualification", b.block_qualification ? json(*b.block_qualification) : json(nullptr)},
             {"onboarding_qualification", b.onboarding_qualification ? json(*b.onboarding_qualification) : json()},
             {"onboarding_data", b.onboarding_data},
             {"onboarding_answer", b.onboarding_answer},
             {"onboarding_check", b.onboarding_check.raw},
             {"use_screening_task", b.use_screening_task},
             {"max_screening_units", b.max_screening_units},
             {"screening_source", ScreeningSourceName(b.screening_source)},
             {"screening_check", b.screening_check.raw},
             {"screening_items", ItemsToJson(b.screening_items)},
             {"use_golds", b.use_golds},
             {"gold_check", b.gold_check.raw},
             {"gold_items", ItemsToJson(b.gold_items)},
             {"min_golds", b.min_golds},
             {"max_incorrect_golds", b.max_incorrect_golds},
             {"max_gold_units", b.max_gold_units},
             {"gold_schedule", GoldScheduleKindName(b.gold_schedule)},
             {"gold_rate", b.gold_rate},
             {"gold_placement", GoldPlacementName(b.gold_placement)},
             {"gold_policy", GoldPolicyKindName(b.gold_policy)},
             {"min_gold_accuracy", b.min_gold_accuracy},
             {"gold_window", b.gold_window}};
  PutIfSet(bp, "task_source", b.task_source);
  PutIfSet(bp, "data", b.data);
  PutIfSet(bp, "onboarding_template", b.onboarding_template);
  PutIfSet(bp, "passed_qualification_name", b.passed_qualification_name);
  PutIfSet(bp, "screening_file", b.screening_file);
  PutIfSet(bp, "gold_qualification_base", b.gold_qualification_base);
  PutIfSet(bp, "gold_file", b.gold_file);
  json quals = json::array();
  for (const Requirement& r : c.qualifications) quals.push_back(r.ToJson());
  const ProviderConfig& p = c.provider;
  json provider = {{"type", p.type},
                   {"mturk_specific_qualifications", p.mturk_specific_qualifications},
                   {"prolific_specific_qualifications", p.prolific_specific_qualifications},
                   {"trust_worker_param", p.trust_worker_param},
                   {"publish", p.publish},
                   {"units_per_session", p.units_per_session},
                   {"estimated_completion_time", p.estimated_completion_time}};
  PutIfSet(provider, "public_url", p.public_url);
  PutIfSet(provider, "prolific_workspace", p.prolific_workspace);
  if (p.prolific_places > 0) provider["prolific_places"] = p.prolific_places;
  json out = {{"task", task},
              {"blueprint", bp},
              {"qualifications", quals},
              {"quality_rules", QualityRulesToJson(c.quality_rules)},
              {"provider", provider}};
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
