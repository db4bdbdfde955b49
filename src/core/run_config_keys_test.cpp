// The table of run-config keys is the only place a key is described: these tests fail when
// a member, a stored key or a reference line exists without its row, or a row's value does
// not survive load -> RunConfigToJson -> RunConfigFromJson.
#include <algorithm>
#include <cstddef>
#include <map>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config_dir_fixture.hpp"
#include "core/run_config.hpp"
#include "core/run_config_internal.hpp"

namespace crowdgate {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
using run_config_internal::ConfigKey;
using run_config_internal::ConfigKeys;
using run_config_internal::MemberName;

// Converts to any member type: counts the members of an aggregate (how many initialisers
// it accepts).
struct AnyMember {
  template <typename M>
  operator M() const;  // NOLINT(google-explicit-constructor): declared only, used unevaluated
};

template <typename A, typename... Fields>
constexpr size_t CountMembers() {
  if constexpr (requires { A{Fields{}..., AnyMember{}}; }) {
    return CountMembers<A, Fields..., AnyMember>();
  } else {
    return sizeof...(Fields);
  }
}

size_t RowsOfGroup(const std::string& group) {
  size_t n = 0;
  for (const ConfigKey& row : ConfigKeys()) n += row.doc.group == group ? 1 : 0;
  return n;
}

json* StoredAt(json& stored, const ConfigKeyDoc& doc) {
  json& group = doc.key == doc.group ? stored : stored[doc.group];
  auto it = group.find(MemberName(doc));
  return it == group.end() ? nullptr : &*it;
}

TEST(RunConfigKeysTest, EveryStructMemberIsARow) {
  // A member added to a group's struct without a row here fails this; the two blueprint
  // members that are not keys are the items loaded from gold_file and screening_file.
  EXPECT_EQ(CountMembers<TaskConfig>(), RowsOfGroup("task"));
  EXPECT_EQ(CountMembers<BlueprintConfig>(), RowsOfGroup("blueprint") + 2);
  EXPECT_EQ(CountMembers<ProviderConfig>(), RowsOfGroup("provider"));
  EXPECT_EQ(RowsOfGroup("qualifications"), 1u);
  EXPECT_EQ(RowsOfGroup("quality_rules"), 1u);
}

TEST(RunConfigKeysTest, EveryRowIsInTheReferenceInTableOrder) {
  const std::vector<ConfigKeyDoc>& reference = ConfigReference();
  ASSERT_EQ(reference.size(), ConfigKeys().size());
  const std::string md = ConfigReferenceMarkdown();
  for (size_t i = 0; i < reference.size(); ++i) {
    const ConfigKey& row = ConfigKeys()[i];
    EXPECT_EQ(reference[i].key, row.doc.key);
    EXPECT_EQ(FindConfigKey(row.doc.key), &reference[i]);
    EXPECT_THAT(md, HasSubstr("| `" + row.doc.key + "` | " + row.doc.TypeText() + " |"));
    EXPECT_TRUE(row.binding.get && row.binding.set) << row.doc.key << " has no binding";
  }
}

TEST(RunConfigKeysTest, DefaultsAreValidAndRunConfigStartsWithThem) {
  json stored = RunConfigToJson(RunConfig());
  for (const ConfigKey& row : ConfigKeys()) {
    if (!row.doc.default_value.is_null()) {
      run_config_internal::ErrorList errors;
      RunConfig c;
      row.binding.set(&row.doc.default_value, json::object(), c, errors);
      EXPECT_TRUE(errors.empty()) << row.doc.key << ": " << errors.ToStatus().message();
      const json* at = StoredAt(stored, row.doc);
      ASSERT_NE(at, nullptr) << row.doc.key;
      EXPECT_EQ(*at, row.doc.default_value) << row.doc.key;
    }
  }
}

// Runs stored in a database before the table drove RunConfigToJson (written by the code
// that spelled every key out) reload, and are written back byte for byte.
TEST(RunConfigKeysTest, StoredConfigsOfThePreviousCodeReloadUnchanged) {
  const json golds_mturk = json::parse(R"({
    "blueprint": {"block_qualification": "sentiment-blocked", "data": "/srv/sentiment/units.jsonl",
      "gold_check": {"fields": ["label"], "match": "case_insensitive"}, "gold_file": "/srv/sentiment/golds.jsonl",
      "gold_items": [{"answer": {"label": "neutral"}, "inputs": {"id": "s015", "text": "The tour was updated."}}],
      "gold_placement": "exact", "gold_policy": "min_accuracy", "gold_qualification_base": "sentiment-gold",
      "gold_rate": 0.25, "gold_schedule": "fixed_rate", "gold_window": 4, "max_gold_units": 400,
      "max_incorrect_golds": 1, "max_screening_units": 0, "min_gold_accuracy": 0.5, "min_golds": 2,
      "onboarding_answer": {"q1": "positive"}, "onboarding_check": {"match": "case_insensitive", "pass_fraction": 0.66},
      "onboarding_data": {"q1": "The staff were kind."}, "onboarding_qualification": "sentiment-onboarded",
      "onboarding_template": "/srv/sentiment/onboarding.html", "screening_check": {}, "screening_items": [],
      "screening_source": "file", "type": "json", "units_per_item": 3, "use_golds": true, "use_screening_task": false},
    "provider": {"estimated_completion_time": 10,
      "mturk_specific_qualifications": [{"Comparator": "Exists", "QualificationTypeId": "abc"}],
      "prolific_specific_qualifications": [], "publish": false, "trust_worker_param": true, "type": "mturk",
      "units_per_session": 0},
    "qualifications": [{"applicable_providers": null, "comparator": "GreaterThanOrEqualTo", "qualification_name": "q",
      "value": 2}],
    "quality_rules": [{"action": {"block": "1d"}, "count": 3, "min_seconds": 3.0, "rule": "fast_submissions",
      "window": 10}],
    "source_path": "/srv/sentiment/config.yaml",
    "task": {"allowed_concurrent": 1, "assignment_duration_in_seconds": 600, "maximum_units_per_worker": 9,
      "task_description": "hello", "task_name": "sentiment-demo", "task_reward": 0.05, "task_title": "sentiment-demo"}
  })");
  auto reloaded = RunConfigFromJson(golds_mturk);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ(RunConfigToJson(*reloaded).dump(), golds_mturk.dump());

  json prolific = golds_mturk;
  prolific["provider"] = json::parse(R"({"estimated_completion_time": 7, "mturk_specific_qualifications": [],
    "prolific_places": 5, "prolific_specific_qualifications": [{"filter_id": "age", "selected_range": {"lower": 18}}],
    "prolific_workspace": "ws1", "public_url": "https://x.org", "publish": true, "trust_worker_param": true,
    "type": "prolific", "units_per_session": 3})");
  reloaded = RunConfigFromJson(prolific);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ(RunConfigToJson(*reloaded).dump(), prolific.dump());
}

class RunConfigRowTest : public ConfigDirTest {
 protected:
  void SetUp() override {
    ConfigDirTest::SetUp();
    Write("task.html", "<p>${text}</p>");
    Write("units.jsonl", "{\"text\": \"a\"}\n");
    Write("sample.txt", "x");
    Write("items.jsonl", "{\"inputs\": {\"text\": \"good\"}, \"answer\": {\"label\": \"pos\"}}\n");
  }

  static json Minimal() {
    return {{"task", {{"task_name", "keys"}}},
            {"blueprint", {{"type", "static_html"}, {"task_source", "task.html"}, {"data", "units.jsonl"}}}};
  }

  // A value of the row's type other than its default (and other than what Minimal() sets).
  static json Sample(const ConfigKeyDoc& doc) {
    static const std::map<std::string, json> kSpecial = {
        {"task.task_name", "other-name"},
        {"provider.public_url", "https://sample.example"},
        // Stored as Requirement::ToJson writes it.
        {"qualifications", json::array({{{"qualification_name", "q"},
                                          {"comparator", "Exists"},
                                          {"value", nullptr},
                                          {"applicable_providers", nullptr}}})},
        {"quality_rules",
         json::array({{{"rule", "returned_units"}, {"count", 2}, {"window", 5}, {"action", "disqualify"}}})},
        {"provider.mturk_specific_qualifications",
         json::array({{{"QualificationTypeId", "X"}, {"Comparator", "Exists"}}})},
        {"provider.prolific_specific_qualifications",
         json::array({{{"filter_id", "age"}, {"selected_range", {{"lower", 18}}}}})},
    };
    if (auto it = kSpecial.find(doc.key); it != kSpecial.end()) return it->second;
    const json& d = doc.default_value;
    switch (doc.type) {
      case ConfigType::kString: return "sample-value";
      case ConfigType::kInt: return (d.is_null() ? static_cast<int64_t>(doc.min.value_or(0)) : d.get<int64_t>()) + 2;
      case ConfigType::kNumber: return doc.max ? (doc.min.value_or(0) + *doc.max) / 2 : d.get<double>() + 1.5;
      case ConfigType::kBool: return !d.get<bool>();
      case ConfigType::kPath: return "sample.txt";
      case ConfigType::kObject:
      case ConfigType::kObjectOrPath: return {{"sample", 1}};
      case ConfigType::kCheck: return {{"match", "case_insensitive"}};
      case ConfigType::kList: return json::array();
      case ConfigType::kEnum: return doc.allowed.back() != d ? doc.allowed.back() : doc.allowed.front();
    }
    return nullptr;
  }

  // Other keys a sample needs to load (a feature's required keys).
  static json Companions(const std::string& key) {
    if (key == "blueprint.use_golds") {
      return {{"gold_qualification_base", "g"}, {"gold_file", "items.jsonl"}, {"max_gold_units", 3}};
    }
    if (key == "blueprint.use_screening_task") {
      return {{"passed_qualification_name", "p"}, {"block_qualification", "b"}, {"max_screening_units", 1},
              {"screening_file", "items.jsonl"}};
    }
    if (key == "quality_rules") return {{"block_qualification", "b"}};
    if (key == "blueprint.onboarding_qualification") {
      return {{"onboarding_data", json::object()}, {"onboarding_answer", json::object()}};
    }
    return json::object();
  }

};

TEST_F(RunConfigRowTest, EveryRowSurvivesLoadStoreAndReload) {
  auto base = RunConfigFromTree(Minimal(), dir_, {});
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  json base_stored = RunConfigToJson(*base);
  for (const ConfigKey& row : ConfigKeys()) {
    const ConfigKeyDoc& doc = row.doc;
    SCOPED_TRACE(doc.key);
    json tree = Minimal();
    tree["blueprint"].update(Companions(doc.key));
    json sample = Sample(doc);
    (doc.key == doc.group ? tree : tree[doc.group])[MemberName(doc)] = sample;
    auto loaded = RunConfigFromTree(tree, dir_, {});
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    json stored = RunConfigToJson(*loaded);
    const json* at = StoredAt(stored, doc);
    ASSERT_NE(at, nullptr) << "not stored";
    const json expected = doc.type == ConfigType::kPath ? json(dir_ + "/" + sample.get<std::string>()) : sample;
    EXPECT_EQ(*at, expected);
    const json* before = StoredAt(base_stored, doc);
    EXPECT_TRUE(before == nullptr || *before != *at) << "the sample is the default";
    // Only this row's member changed (two rows bound to one member would change both).
    std::set<std::string> may_change = {doc.key, "blueprint.gold_items", "blueprint.screening_items"};
    const json companions = Companions(doc.key);
    for (const auto& [name, value] : companions.items()) may_change.insert("blueprint." + name);
    for (const ConfigKey& other : ConfigKeys()) {
      if (other.default_from == doc.key) may_change.insert(other.doc.key);
    }
    json diff = json::diff(base_stored, stored);
    for (const json& op : diff) {
      // "/blueprint/gold_items/0" -> "blueprint.gold_items"; "/qualifications/0" -> "qualifications".
      std::string path = op["path"].get<std::string>().substr(1);
      std::string top = path.substr(0, path.find('/'));
      path = FindConfigKey(top) ? top : path.substr(0, path.find('/', top.size() + 1));
      std::replace(path.begin(), path.end(), '/', '.');
      EXPECT_TRUE(may_change.count(path)) << path << " changed too";
    }
    // The stored form reloads to the same member value.
    auto reloaded = RunConfigFromJson(json::parse(stored.dump()));
    ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
    EXPECT_EQ(row.binding.get(*reloaded), row.binding.get(*loaded));
    EXPECT_EQ(RunConfigToJson(*reloaded), stored);
  }
}

TEST_F(RunConfigRowTest, EveryStoredKeyIsARow) {
  // Everything the stored config holds comes from a row, except the loaded items and the
  // source path.
  std::set<std::string> rows;
  for (const ConfigKey& row : ConfigKeys()) rows.insert(row.doc.key);
  json tree = Minimal();
  tree["blueprint"].update(Companions("blueprint.use_golds"));
  tree["blueprint"]["use_golds"] = true;
  auto loaded = RunConfigFromTree(tree, dir_, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  RunConfig config = *loaded;
  config.source_path = dir_ + "/config.yaml";
  json stored = RunConfigToJson(config);
  const std::set<std::string> extras = {"blueprint.gold_items", "blueprint.screening_items", "source_path"};
  for (const auto& [group, members] : stored.items()) {
    if (!members.is_object()) {
      EXPECT_TRUE(rows.count(group) || extras.count(group)) << group;
      continue;
    }
    for (const auto& [name, value] : members.items()) {
      const std::string key = group + "." + name;
      EXPECT_TRUE(rows.count(key) || extras.count(key)) << key << " is stored but has no row";
    }
  }
}

}  // namespace
}  // namespace crowdgate
