#include "core/run_config.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/config_dir_fixture.hpp"

namespace crowdgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;
namespace fs = std::filesystem;

// A config directory with every file a full config can name.
class RunConfigTest : public ConfigDirTest {
 protected:
  void SetUp() override {
    ConfigDirTest::SetUp();
    fs::create_directories(dir_ + "/data");
    Write("task.html", "<p>${text}</p>");
    Write("data/units.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
    Write("golds.jsonl", "{\"inputs\": {\"text\": \"good\"}, \"answer\": {\"label\": \"pos\"}}\n"
                         "{\"inputs\": {\"text\": \"bad\"}, \"answer\": {\"label\": \"neg\"}}\n");
    Write("screening.jsonl", "{\"inputs\": {\"text\": \"s\"}, \"answer\": {\"label\": \"pos\"}}\n");
    Write("onboarding.json", "{\"text\": \"try me\"}");
  }

  static constexpr const char* kMinimal =
      "task:\n"
      "  task_name: sentiment\n"
      "blueprint:\n"
      "  type: static_html\n"
      "  task_source: task.html\n"
      "  data: data/units.jsonl\n";

  Result<RunConfig> Load(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    return LoadRunConfig(Write("config.yaml", yaml), overrides);
  }
  // Loads and returns the error message ("" when the load succeeded).
  std::string LoadError(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    Result<RunConfig> r = Load(yaml, overrides);
    if (r.ok()) return "";
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    return r.status().message();
  }
};

// ---- basics and defaults ------------------------------------------------------------------

TEST_F(RunConfigTest, MinimalConfigGetsDefaults) {
  auto r = Load(kMinimal);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const RunConfig& c = *r;
  EXPECT_EQ(c.task.task_name, "sentiment");
  EXPECT_EQ(c.task.task_title, "sentiment");  // defaults to task_name
  EXPECT_EQ(c.task.task_description, "");
  EXPECT_EQ(c.task.task_reward, 0);
  EXPECT_EQ(c.task.allowed_concurrent, 1);
  EXPECT_EQ(c.task.maximum_units_per_worker, 0);
  EXPECT_EQ(c.task.assignment_duration_in_seconds, 1800);
  EXPECT_EQ(c.blueprint.type, BlueprintType::kStaticHtml);
  EXPECT_EQ(c.blueprint.units_per_item, 1);
  EXPECT_FALSE(c.blueprint.block_qualification);
  EXPECT_FALSE(c.blueprint.onboarding_qualification);
  EXPECT_FALSE(c.blueprint.use_golds);
  EXPECT_FALSE(c.blueprint.use_screening_task);
  EXPECT_EQ(c.blueprint.min_golds, 1);
  EXPECT_EQ(c.blueprint.max_incorrect_golds, 0);
  EXPECT_EQ(c.blueprint.gold_schedule, GoldScheduleKind::kMephisto);
  EXPECT_DOUBLE_EQ(c.blueprint.gold_rate, 0.05);
  EXPECT_EQ(c.blueprint.gold_placement, GoldPlacement::kRandom);
  EXPECT_EQ(c.blueprint.gold_policy, GoldPolicyKind::kStrikes);
  EXPECT_DOUBLE_EQ(c.blueprint.min_gold_accuracy, 0.8);
  EXPECT_EQ(c.blueprint.gold_window, 10);
  EXPECT_EQ(c.blueprint.screening_source, ScreeningSource::kFile);
  EXPECT_TRUE(c.qualifications.empty());
  EXPECT_EQ(c.provider.type, "local");
  EXPECT_EQ(c.source_path, dir_ + "/config.yaml");
}

TEST_F(RunConfigTest, RelativePathsResolveAgainstConfigDirectory) {
  std::string yaml = std::string(kMinimal) + "  onboarding_template: ./data/../task.html\n";
  fs::create_directories(dir_ + "/elsewhere");
  auto r = LoadRunConfig(Write("config.yaml", yaml), {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blueprint.task_source, dir_ + "/task.html");
  EXPECT_EQ(r->blueprint.data, dir_ + "/data/units.jsonl");
  EXPECT_EQ(r->blueprint.onboarding_template, dir_ + "/task.html");  // normalised
  // The working directory does not matter.
  fs::path old = fs::current_path();
  fs::current_path(dir_ + "/elsewhere");
  auto again = LoadRunConfig("../config.yaml", {});
  fs::current_path(old);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->blueprint.data, dir_ + "/data/units.jsonl");
  EXPECT_EQ(again->source_path, dir_ + "/config.yaml");
}

TEST_F(RunConfigTest, AbsolutePathsAreKept) {
  std::string yaml = "task: {task_name: t}\nblueprint: {type: json, data: " + dir_ + "/data/units.jsonl}\n";
  auto r = Load(yaml);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blueprint.data, dir_ + "/data/units.jsonl");
  EXPECT_EQ(r->blueprint.task_source, "");  // not required for type json
}

TEST_F(RunConfigTest, MissingFileNamesKeyAndPath) {
  std::string err = LoadError(
      "task: {task_name: t}\nblueprint: {type: static_html, task_source: nope.html, data: data/units.jsonl}\n");
  EXPECT_EQ(err, "blueprint.task_source: file not found: " + dir_ + "/nope.html");
  err = LoadError("task: {task_name: t}\nblueprint: {type: json, data: data}\n");
  EXPECT_EQ(err, "blueprint.data: is a directory, not a file: " + dir_ + "/data");
}

TEST_F(RunConfigTest, MissingConfigFileAndBadYaml) {
  auto r = LoadRunConfig(dir_ + "/absent.yaml", {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(dir_ + "/absent.yaml"));
  std::string err = LoadError("task: {task_name: t\nblueprint: [\n");
  EXPECT_THAT(err, HasSubstr("config.yaml: invalid YAML"));
  EXPECT_THAT(err, HasSubstr("line "));
  err = LoadError("task:\n  task_name: a\n  task_name: b\n");
  EXPECT_THAT(err, HasSubstr("duplicate key \"task_name\" (line 3"));
  EXPECT_THAT(LoadError("- 1\n- 2\n"), HasSubstr("config: expected a mapping with the groups"));
}

// ---- YAML typing ------------------------------------------------------------------------------

TEST_F(RunConfigTest, YamlTypesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto j = YamlToJson("a: 1\nb: -2.5\nc: true\nd: ~\ne:\nf: '7'\ng: \"true\"\nh: plain text\ni: 1e3\nj: null\n"
                      "k: !!str 12\nl: |\n  block\nm: [1, '2', x]\nn: +3\no: 0.5.1\n",
                      "t");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["a"], 1);
  EXPECT_TRUE((*j)["a"].is_number_integer());
  EXPECT_EQ((*j)["b"], -2.5);
  EXPECT_EQ((*j)["c"], true);
  EXPECT_TRUE((*j)["d"].is_null());
  EXPECT_TRUE((*j)["e"].is_null());
  EXPECT_EQ((*j)["f"], "7");
  EXPECT_EQ((*j)["g"], "true");
  EXPECT_EQ((*j)["h"], "plain text");
  EXPECT_EQ((*j)["i"], 1000.0);
  EXPECT_TRUE((*j)["j"].is_null());
  EXPECT_EQ((*j)["k"], "12");
  EXPECT_EQ((*j)["l"], "block\n");
  EXPECT_EQ((*j)["m"], json::parse(R"([1, "2", "x"])"));
  EXPECT_EQ((*j)["n"], 3);
  EXPECT_EQ((*j)["o"], "0.5.1");
}

TEST_F(RunConfigTest, QuotedNumberIsAStringAndPlainNumberIsNot) {
  auto r = Load("task: {task_name: '123'}\nblueprint: {type: json, data: data/units.jsonl}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->task.task_name, "123");
  EXPECT_EQ(LoadError("task: {task_name: 123}\nblueprint: {type: json, data: data/units.jsonl}\n"),
            "task.task_name: expected string, got integer 123 (quote it to make it a string)");
}

// ---- unknown keys -------------------------------------------------------------------------

TEST_F(RunConfigTest, UnknownKeyIsNamedWithSuggestion) {
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  gold_fle: golds.jsonl\n"),
            "blueprint.gold_fle: unknown key; did you mean blueprint.gold_file?");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  units_per_itme: 2\n"),
            "blueprint.units_per_itme: unknown key; did you mean blueprint.units_per_item?");
  // The right name in the wrong group.
  EXPECT_EQ(LoadError(std::string(kMinimal) + "task2: 1\n"), "task2: unknown key; did you mean task?");
  EXPECT_THAT(LoadError("task: {task_name: t, units_per_item: 2}\nblueprint: {type: json, data: data/units.jsonl}\n"),
              HasSubstr("task.units_per_item: unknown key; did you mean blueprint.units_per_item?"));
  // Nothing close: no suggestion.
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  zzzzzzzz: 1\n"), "blueprint.zzzzzzzz: unknown key");
}

TEST_F(RunConfigTest, MephistoSpellingsGetHints) {
  EXPECT_EQ(LoadError("task: {task_name: t}\nblueprint: {type: json, data_csv: data/units.csv}\n"),
            "blueprint.data_csv: unknown key; did you mean blueprint.data?\n"
            "blueprint.data: missing (required; Units data: JSONL (one object a line) or CSV with a header row.)");
  EXPECT_THAT(LoadError("mephisto:\n  task: {task_name: t}\n"),
              HasSubstr("mephisto: unknown key; crowdgate's groups are top-level"));
}

TEST_F(RunConfigTest, UnknownProviderKeyIsRefused) {
  EXPECT_THAT(LoadError(std::string(kMinimal) + "provider: {type: mturk, requester_name: me}\n"),
              HasSubstr("provider.requester_name: unknown key"));
}

// ---- types and ranges -------------------------------------------------------------------------

TEST_F(RunConfigTest, WrongTypesNameKeyExpectedAndGiven) {
  auto err = [&](const std::string& line) { return LoadError(std::string(kMinimal) + line); };
  EXPECT_EQ(err("  min_golds: two\n"), "blueprint.min_golds: expected int >= 0, got string \"two\"");
  EXPECT_EQ(err("  min_golds: 1.5\n"), "blueprint.min_golds: expected int >= 0, got number 1.5");
  EXPECT_EQ(err("  min_golds: -1\n"), "blueprint.min_golds: expected int >= 0, got integer -1");
  EXPECT_EQ(err("  min_golds:\n"), "blueprint.min_golds: expected int >= 0, got null");
  EXPECT_EQ(err("  use_golds: yes\n"), "blueprint.use_golds: expected bool, got string \"yes\"");
  EXPECT_EQ(err("  gold_rate: 0\n"), "blueprint.gold_rate: expected number in (0, 1], got integer 0");
  EXPECT_EQ(err("  min_gold_accuracy: 1.5\n"),
            "blueprint.min_gold_accuracy: expected number in [0, 1], got number 1.5");
  EXPECT_EQ(err("  gold_schedule: weekly\n"),
            "blueprint.gold_schedule: expected one of: mephisto, fixed_rate, got string \"weekly\"");
  EXPECT_EQ(err("  gold_placement: middle\n"),
            "blueprint.gold_placement: expected one of: random, exact, got string \"middle\"");
  EXPECT_EQ(err("  onboarding_check: exact\n"),
            "blueprint.onboarding_check: expected check spec, got string \"exact\"");
  EXPECT_EQ(err("  units_per_item: 0\n"), "blueprint.units_per_item: expected int >= 1, got integer 0");
  EXPECT_EQ(err("  block_qualification: [a]\n"), "blueprint.block_qualification: expected string or null, got a list");
  EXPECT_EQ(LoadError("task: {task_name: t, assignment_duration_in_seconds: 0}\n"
                      "blueprint: {type: json, data: data/units.jsonl}\n"),
            "task.assignment_duration_in_seconds: expected int >= 1, got integer 0");
  EXPECT_EQ(LoadError("task: {task_name: t, task_reward: -0.5}\nblueprint: {type: json, data: data/units.jsonl}\n"),
            "task.task_reward: expected number >= 0, got number -0.5");
  EXPECT_EQ(LoadError("task: [1]\nblueprint: {type: json, data: data/units.jsonl}\n"),
            "task: expected a mapping of task keys, got a list\n"
            "task.task_name: missing (required; Name of the task; runs with the same name share worker history.)");
}

TEST_F(RunConfigTest, NullableKeysAcceptNull) {
  auto r = Load(std::string(kMinimal) + "  block_qualification: ~\n  onboarding_qualification: null\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->blueprint.block_qualification);
  EXPECT_FALSE(r->blueprint.onboarding_qualification);
}

TEST_F(RunConfigTest, EmptyListKeysMeanEmptyLists) {
  auto r = Load(std::string(kMinimal) + "qualifications:\nprovider:\n  mturk_specific_qualifications:\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->qualifications.empty());
  EXPECT_TRUE(r->provider.mturk_specific_qualifications.empty());
}

TEST_F(RunConfigTest, QualificationNamesAreValidated) {
  EXPECT_THAT(LoadError(std::string(kMinimal) + "  block_qualification: ''\n"),
              HasSubstr("blueprint.block_qualification: "));
  EXPECT_EQ(LoadError("task: {task_name: ' '}\nblueprint: {type: json, data: data/units.jsonl}\n"),
            "task.task_name: must not be empty");
}

// ---- required keys ---------------------------------------------------------------------------

TEST_F(RunConfigTest, AlwaysRequiredKeys) {
  std::string err = LoadError("blueprint: {task_source: task.html}\n");
  EXPECT_THAT(err, HasSubstr("task.task_name: missing (required;"));
  EXPECT_THAT(err, HasSubstr("blueprint.type: missing (required;"));
  EXPECT_THAT(err, HasSubstr("blueprint.data: missing (required;"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 2);  // all three reported together
  EXPECT_THAT(LoadError(""), HasSubstr("task.task_name: missing"));
}

TEST_F(RunConfigTest, TaskSourceRequiredOnlyForStaticHtml) {
  EXPECT_THAT(LoadError("task: {task_name: t}\nblueprint: {type: static_html, data: data/units.jsonl}\n"),
              HasSubstr("blueprint.task_source: missing (required when blueprint.type = static_html;"));
  EXPECT_EQ(LoadError("task: {task_name: t}\nblueprint: {type: json, data: data/units.jsonl}\n"), "");
}

TEST_F(RunConfigTest, OnboardingNeedsDataAndAnswer) {
  std::string err = LoadError(std::string(kMinimal) + "  onboarding_qualification: onboarded\n");
  EXPECT_THAT(err, HasSubstr("blueprint.onboarding_data: missing (required when "
                             "blueprint.onboarding_qualification is set;"));
  EXPECT_THAT(err, HasSubstr("blueprint.onboarding_answer: missing"));
}

TEST_F(RunConfigTest, OnboardingDataInlineOrFromFile) {
  auto r = Load(std::string(kMinimal) +
                "  onboarding_qualification: onboarded\n"
                "  onboarding_data: onboarding.json\n"
                "  onboarding_answer: {label: pos}\n"
                "  onboarding_check: {match: case_insensitive}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blueprint.onboarding_qualification, "onboarded");
  EXPECT_EQ(r->blueprint.onboarding_data, json({{"text", "try me"}}));
  EXPECT_EQ(r->blueprint.onboarding_answer, json({{"label", "pos"}}));
  EXPECT_EQ(r->blueprint.onboarding_check.spec.match, CheckSpec::Match::kCaseInsensitive);
  Write("list.json", "[1, 2]");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  onboarding_data: list.json\n"),
            "blueprint.onboarding_data: " + dir_ + "/list.json: expected a JSON object, got a list");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  onboarding_answer: nope.json\n"),
            "blueprint.onboarding_answer: file not found: " + dir_ + "/nope.json");
}

TEST_F(RunConfigTest, BadCheckSpecIsReported) {
  EXPECT_THAT(LoadError(std::string(kMinimal) + "  gold_check: {match: fuzzy}\n"),
              HasSubstr("blueprint.gold_check"));
}

constexpr const char* kScreening =
    "  use_screening_task: true\n"
    "  passed_qualification_name: screened\n"
    "  block_qualification: blocked\n"
    "  max_screening_units: 5\n"
    "  screening_file: screening.jsonl\n";

TEST_F(RunConfigTest, ScreeningLoadsItems) {
  auto r = Load(std::string(kMinimal) + kScreening);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->blueprint.use_screening_task);
  EXPECT_EQ(r->blueprint.passed_qualification_name, "screened");
  EXPECT_EQ(r->blueprint.block_qualification, "blocked");
  EXPECT_EQ(r->blueprint.max_screening_units, 5);
  ASSERT_EQ(r->blueprint.screening_items.size(), 1u);
  EXPECT_EQ(r->blueprint.screening_items[0].answer["label"], "pos");
}

TEST_F(RunConfigTest, ScreeningRequirements) {
  std::string err = LoadError(std::string(kMinimal) + "  use_screening_task: true\n");
  EXPECT_THAT(err, HasSubstr("blueprint.passed_qualification_name: missing (required when "
                             "blueprint.use_screening_task = true;"));
  EXPECT_THAT(err, HasSubstr("blueprint.max_screening_units: missing"));
  EXPECT_THAT(err, HasSubstr("blueprint.block_qualification: missing"));
  EXPECT_THAT(err, HasSubstr("blueprint.screening_file: missing (required when blueprint.use_screening_task = true "
                             "and blueprint.screening_source = file;"));
  // With real units as the screening, no file is needed.
  std::string real = LoadError(std::string(kMinimal) + "  use_screening_task: true\n  screening_source: real\n");
  EXPECT_THAT(real, Not(HasSubstr("screening_file")));
  // ... but a real unit has no expected answer: only a command check can judge it.
  EXPECT_THAT(real, HasSubstr("blueprint.screening_check: screening_source real needs a `command` check"));
  std::string real_cmd = LoadError(std::string(kMinimal) +
                                   "  use_screening_task: true\n  screening_source: real\n"
                                   "  screening_check: {command: [/bin/true]}\n");
  EXPECT_THAT(real_cmd, Not(HasSubstr("screening_check")));
  EXPECT_EQ(LoadError(std::string(kMinimal) + kScreening, {"blueprint.max_screening_units=0"}),
            "blueprint.max_screening_units: must be at least 1 with screening_source file (0 would leave every new "
            "worker without work)");
}

constexpr const char* kGolds =
    "  use_golds: true\n"
    "  gold_qualification_base: sent\n"
    "  gold_file: golds.jsonl\n"
    "  max_gold_units: 100\n";

TEST_F(RunConfigTest, GoldsLoadItems) {
  auto r = Load(std::string(kMinimal) + kGolds + "  gold_check: {fields: [label]}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->blueprint.use_golds);
  EXPECT_EQ(r->blueprint.gold_qualification_base, "sent");
  EXPECT_EQ(r->blueprint.gold_file, dir_ + "/golds.jsonl");
  EXPECT_EQ(r->blueprint.max_gold_units, 100);
  ASSERT_EQ(r->blueprint.gold_items.size(), 2u);
  EXPECT_EQ(r->blueprint.gold_items[1].inputs["text"], "bad");
  EXPECT_EQ(r->blueprint.gold_check.spec.fields, std::vector<std::string>{"label"});
}

TEST_F(RunConfigTest, GoldRequirements) {
  std::string err = LoadError(std::string(kMinimal) + "  use_golds: true\n");
  EXPECT_THAT(err, HasSubstr("blueprint.gold_qualification_base: missing (required when blueprint.use_golds = true;"));
  EXPECT_THAT(err, HasSubstr("blueprint.gold_file: missing (required when blueprint.use_golds = true;"));
  EXPECT_THAT(err, HasSubstr("blueprint.max_gold_units: missing (required when blueprint.use_golds = true;"));
  // Gold keys without use_golds are not required and files are not read.
  Write("broken.jsonl", "not json\n");
  EXPECT_EQ(LoadError(std::string(kMinimal) + "  gold_file: broken.jsonl\n"), "");
}

TEST_F(RunConfigTest, GoldFileErrorsNameKeyAndLine) {
  Write("bad.jsonl", "{\"inputs\": {}, \"answer\": {}}\n{\"inputs\": {}}\n");
  EXPECT_EQ(LoadError(std::string(kMinimal) + kGolds, {"blueprint.gold_file=bad.jsonl"}),
            "blueprint.gold_file: " + dir_ + "/bad.jsonl:2: missing \"answer\" (an object)");
  Write("empty.jsonl", "");
  EXPECT_EQ(LoadError(std::string(kMinimal) + kGolds, {"blueprint.gold_file=empty.jsonl"}),
            "blueprint.gold_file: " + dir_ + "/empty.jsonl holds no items");
}

TEST_F(RunConfigTest, ScreeningAndGoldsTogetherAreRefused) {
  EXPECT_THAT(LoadError(std::string(kMinimal) + kScreening + kGolds),
              HasSubstr("blueprint.use_screening_task and blueprint.use_golds: cannot both be true (Mephisto forbids"));
}

TEST_F(RunConfigTest, EvaluationNeedsAllowedConcurrentOne) {
  EXPECT_THAT(LoadError(std::string(kMinimal) + kGolds, {"task.allowed_concurrent=2"}),
              HasSubstr("task.allowed_concurrent: must be 1 when blueprint.use_golds is true (got 2)"));
  EXPECT_THAT(LoadError(std::string(kMinimal) + kScreening, {"task.allowed_concurrent=0"}),
              HasSubstr("task.allowed_concurrent: must be 1 when blueprint.use_screening_task is true (got 0)"));
  EXPECT_EQ(LoadError(std::string(kMinimal), {"task.allowed_concurrent=0"}), "");
}

// ---- overrides ---------------------------------------------------------------------------------

TEST_F(RunConfigTest, OverridesOfEachType) {
  auto r = Load(std::string(kMinimal) + "qualifications: [{qualification_name: english, comparator: Exists}]\n",
                {"blueprint.units_per_item=3", "task.task_reward=0.25", "task.task_title=\"a b\"",
                 "task.task_description=plain words", "qualifications=[]", "blueprint.gold_policy=min_accuracy",
                 "blueprint.block_qualification=blocked"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blueprint.units_per_item, 3);
  EXPECT_DOUBLE_EQ(r->task.task_reward, 0.25);
  EXPECT_EQ(r->task.task_title, "a b");
  EXPECT_EQ(r->task.task_description, "plain words");
  EXPECT_TRUE(r->qualifications.empty());
  EXPECT_EQ(r->blueprint.gold_policy, GoldPolicyKind::kMinAccuracy);
  EXPECT_EQ(r->blueprint.block_qualification, "blocked");
}

TEST_F(RunConfigTest, OverrideBoolEnablesFeature) {
  std::vector<std::string> o = {"blueprint.use_golds=true", "blueprint.gold_qualification_base=g",
                                "blueprint.gold_file=golds.jsonl", "blueprint.max_gold_units=10",
                                "blueprint.gold_check.match=case_insensitive", "++blueprint.min_golds=2"};
  auto r = Load(kMinimal, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->blueprint.use_golds);
  EXPECT_EQ(r->blueprint.gold_file, dir_ + "/golds.jsonl");  // relative to the config file
  EXPECT_EQ(r->blueprint.min_golds, 2);
  EXPECT_EQ(r->blueprint.gold_check.spec.match, CheckSpec::Match::kCaseInsensitive);
  EXPECT_EQ(r->blueprint.gold_check.raw, json({{"match", "case_insensitive"}}));
}

TEST_F(RunConfigTest, OverrideListOfRequirementsAndAddKey) {
  auto r = Load(kMinimal, {"+qualifications=[{qualification_name: english, comparator: GreaterThanOrEqualTo, "
                           "value: 80}]"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->qualifications.size(), 1u);
  EXPECT_EQ(r->qualifications[0].qualification_name, "english");
  EXPECT_EQ(r->qualifications[0].comparator, Comparator::kGreaterThanOrEqualTo);
  EXPECT_EQ(r->qualifications[0].value, 80);
}

TEST_F(RunConfigTest, OverrideRemovesKey) {
  auto r = Load(std::string(kMinimal) + "  units_per_item: 4\n", {"~blueprint.units_per_item"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blueprint.units_per_item, 1);
}

TEST_F(RunConfigTest, BadOverridesAreNamed) {
  EXPECT_EQ(LoadError(kMinimal, {"blueprint.min_golds"}),
            "override \"blueprint.min_golds\": expected key.path=value (e.g. blueprint.min_golds=2)");
  EXPECT_EQ(LoadError(kMinimal, {"blueprint.min_gold=2"}),
            "override \"blueprint.min_gold=2\": blueprint.min_gold: unknown key; did you mean blueprint.min_golds?");
  EXPECT_EQ(LoadError(kMinimal, {"+blueprint.extra=2"}),
            "override \"+blueprint.extra=2\": blueprint.extra: unknown key");
  EXPECT_EQ(LoadError(kMinimal, {"=2"}), "override \"=2\": missing the key before '='");
  EXPECT_EQ(LoadError(kMinimal, {"blueprint.min_golds=two"}),
            "blueprint.min_golds: expected int >= 0, got string \"two\"");
  EXPECT_THAT(LoadError(kMinimal, {"blueprint.min_golds=[1"}),
              HasSubstr("override \"blueprint.min_golds=[1\": invalid YAML"));
  EXPECT_THAT(LoadError(kMinimal, {"blueprint.task_source=nope.html"}),
              HasSubstr("blueprint.task_source: file not found: " + dir_ + "/nope.html"));
}

TEST_F(RunConfigTest, OverrideEmptyValueIsNull) {
  auto r = Load(std::string(kMinimal) + "  block_qualification: b\n", {"blueprint.block_qualification="});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->blueprint.block_qualification);
}

// ---- requirements and provider ------------------------------------------------------------------

TEST_F(RunConfigTest, RequirementErrorsComeFromParseRequirements) {
  EXPECT_THAT(LoadError(std::string(kMinimal) + "qualifications: [{qualification_name: q, comparator: Bigger}]\n"),
              HasSubstr("qualifications[0]"));
  EXPECT_THAT(LoadError(std::string(kMinimal) + "qualifications: {a: 1}\n"),
              HasSubstr("qualifications: expected list, got an object"));
}

TEST_F(RunConfigTest, MturkSpecificQualifications) {
  std::string ok = std::string(kMinimal) +
                   "provider:\n"
                   "  type: mturk\n"
                   "  mturk_specific_qualifications:\n"
                   "    - {QualificationTypeId: '000000000000000000L0', Comparator: GreaterThanOrEqualTo,\n"
                   "       IntegerValues: [95], ActionsGuarded: Accept}\n"
                   "    - {QualificationTypeId: '00000000000000000071', Comparator: In,\n"
                   "       LocaleValues: [{Country: US}, {Country: US, Subdivision: CA}]}\n"
                   "    - {QualificationTypeId: ABC, Comparator: Exists}\n";
  auto r = Load(ok);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->provider.type, "mturk");
  ASSERT_EQ(r->provider.mturk_specific_qualifications.size(), 3u);
  EXPECT_EQ(r->provider.mturk_specific_qualifications[0]["IntegerValues"], json::array({95}));

  auto err = [&](const std::string& item) {
    return LoadError(std::string(kMinimal) + "provider:\n  mturk_specific_qualifications: [" + item + "]\n");
  };
  EXPECT_EQ(err("{Comparator: Exists}"),
            "provider.mturk_specific_qualifications[0].QualificationTypeId: missing or not a non-empty string");
  EXPECT_THAT(err("{QualificationTypeId: A, Comparator: Bigger}"),
              HasSubstr("provider.mturk_specific_qualifications[0].Comparator: expected one of GreaterThan"));
  EXPECT_THAT(err("{QualificationTypeId: A, Comparator: Exists, Foo: 1}"),
              HasSubstr("provider.mturk_specific_qualifications[0]: unknown key \"Foo\""));
  EXPECT_EQ(err("{QualificationTypeId: A, Comparator: EqualTo, IntegerValues: ['1']}"),
            "provider.mturk_specific_qualifications[0].IntegerValues: expected a list of integers");
  EXPECT_EQ(err("{QualificationTypeId: A, Comparator: GreaterThan, IntegerValues: [1, 2]}"),
            "provider.mturk_specific_qualifications[0]: GreaterThan needs exactly one value in IntegerValues or "
            "LocaleValues");
  EXPECT_EQ(err("{QualificationTypeId: A, Comparator: Exists, IntegerValues: [1]}"),
            "provider.mturk_specific_qualifications[0]: Exists takes no IntegerValues or LocaleValues");
  EXPECT_EQ(err("{QualificationTypeId: A, Comparator: In, LocaleValues: [{Country: usa}]}"),
            "provider.mturk_specific_qualifications[0].LocaleValues[0].Country: expected a two-letter ISO 3166 "
            "code such as \"US\"");
  EXPECT_EQ(err("{QualificationTypeId: A, Comparator: Exists, ActionsGuarded: Look}"),
            "provider.mturk_specific_qualifications[0].ActionsGuarded: expected Accept, PreviewAndAccept or "
            "DiscoverPreviewAndAccept");
  EXPECT_EQ(err("7"), "provider.mturk_specific_qualifications[0]: expected an object, got integer 7");
}

TEST_F(RunConfigTest, ProlificSpecificQualifications) {
  auto r = Load(std::string(kMinimal) +
                "provider:\n  type: prolific\n  prolific_places: 10\n  prolific_specific_qualifications:\n"
                "    - {name: CustomWhitelistEligibilityRequirement, white_list: [a, b]}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->provider.prolific_specific_qualifications[0]["white_list"], json::array({"a", "b"}));
  EXPECT_THAT(LoadError(std::string(kMinimal) + "provider:\n  prolific_specific_qualifications: [{white_list: []}]\n"),
              HasSubstr("provider.prolific_specific_qualifications[0].name: missing"));
  EXPECT_EQ(LoadError(std::string(kMinimal) + "provider: {type: upwork}\n"),
            "provider.type: expected one of: local, prolific, mturk, mturk_sandbox, got string \"upwork\"");
}

TEST_F(RunConfigTest, ProlificFiltersAndProviderKeys) {
  auto r = Load(std::string(kMinimal) +
                "provider:\n  type: prolific\n  prolific_places: 25\n  units_per_session: 4\n"
                "  public_url: https://tasks.example.org/\n  publish: true\n  estimated_completion_time: 7\n"
                "  prolific_workspace: ws1\n  prolific_specific_qualifications:\n"
                "    - {filter_id: fluent-languages, selected_values: [\"19\"]}\n"
                "    - {filter_id: age, selected_range: {lower: 18, upper: 40}}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->provider.prolific_places, 25);
  EXPECT_EQ(r->provider.units_per_session, 4);
  EXPECT_EQ(r->provider.public_url, "https://tasks.example.org");  // no trailing slash
  EXPECT_TRUE(r->provider.publish);
  EXPECT_FALSE(r->provider.trust_worker_param);
  EXPECT_EQ(r->provider.estimated_completion_time, 7);
  EXPECT_EQ(r->provider.prolific_workspace, "ws1");
  EXPECT_EQ(r->provider.prolific_specific_qualifications[1]["selected_range"]["upper"], 40);
  // Round trip through the stored form.
  auto back = RunConfigFromJson(RunConfigToJson(*r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->provider.prolific_places, 25);
  EXPECT_EQ(back->provider.public_url, "https://tasks.example.org");
  EXPECT_EQ(back->provider.prolific_workspace, "ws1");

  EXPECT_THAT(LoadError(std::string(kMinimal) + "provider: {type: prolific}\n"),
              HasSubstr("provider.prolific_places: missing"));
  EXPECT_THAT(LoadError(std::string(kMinimal) + "provider: {public_url: ftp://x}\n"),
              HasSubstr("provider.public_url: expected an http:// or https:// address"));
  auto filter_error = [&](const std::string& item) {
    return LoadError(std::string(kMinimal) + "provider:\n  prolific_specific_qualifications: [" + item + "]\n");
  };
  EXPECT_THAT(filter_error("{filter_id: age}"), HasSubstr("exactly one of selected_values"));
  EXPECT_THAT(filter_error("{filter_id: age, selected_values: [1]}"), HasSubstr("selected_values: expected"));
  EXPECT_THAT(filter_error("{filter_id: age, selected_range: {low: 1}}"), HasSubstr("unknown key \"low\""));
  EXPECT_THAT(filter_error("{filter_id: \"\", selected_values: [\"1\"]}"), HasSubstr("filter_id: expected"));
  EXPECT_THAT(filter_error("{filter_id: a, selected_values: [\"1\"], colour: red}"), HasSubstr("unknown key"));
  EXPECT_THAT(LoadError(std::string(kMinimal) + "provider: {units_per_session: -1}\n"),
              HasSubstr("provider.units_per_session"));
}

// ---- round trip -----------------------------------------------------------------------------------

TEST_F(RunConfigTest, ToJsonFromJsonRoundTripsWithoutReadingFiles) {
  std::string yaml = std::string("task: {task_name: sentiment, task_reward: 0.05, maximum_units_per_worker: 7}\n") +
                     "blueprint:\n"
                     "  type: static_html\n"
                     "  task_source: task.html\n"
                     "  data: data/units.jsonl\n" +
                     kGolds +
                     "  onboarding_qualification: onboarded\n"
                     "  onboarding_data: onboarding.json\n"
                     "  onboarding_answer: {label: pos}\n"
                     "  onboarding_template: task.html\n"
                     "  block_qualification: blocked\n"
                     "  gold_check: {match: numeric, tolerance: 0.5}\n"
                     "  gold_schedule: fixed_rate\n"
                     "  gold_rate: 0.1\n"
                     "  gold_placement: exact\n"
                     "qualifications:\n"
                     "  - {qualification_name: english, comparator: In, value: [3, 1], applicable_providers: [mturk]}\n"
                     "  - {qualification_name: banned, comparator: DoesNotExist}\n"
                     "provider:\n"
                     "  type: mturk\n"
                     "  mturk_specific_qualifications: [{QualificationTypeId: X, Comparator: Exists}]\n";
  auto r = Load(yaml);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json stored = RunConfigToJson(*r);
  // The stored form is self-contained: delete every file it was made from.
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  auto back = RunConfigFromJson(json::parse(stored.dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RunConfigToJson(*back), stored);
  const RunConfig& c = *back;
  EXPECT_EQ(c.task.task_name, "sentiment");
  EXPECT_DOUBLE_EQ(c.task.task_reward, 0.05);
  EXPECT_EQ(c.task.maximum_units_per_worker, 7);
  EXPECT_EQ(c.blueprint.gold_items, r->blueprint.gold_items);
  EXPECT_EQ(c.blueprint.onboarding_data, json({{"text", "try me"}}));
  EXPECT_EQ(c.blueprint.onboarding_template, dir_ + "/task.html");
  EXPECT_EQ(c.blueprint.gold_check.spec.match, CheckSpec::Match::kNumeric);
  EXPECT_DOUBLE_EQ(c.blueprint.gold_check.spec.tolerance, 0.5);
  EXPECT_EQ(c.blueprint.gold_schedule, GoldScheduleKind::kFixedRate);
  EXPECT_DOUBLE_EQ(c.blueprint.gold_rate, 0.1);
  EXPECT_EQ(c.blueprint.gold_placement, GoldPlacement::kExact);
  ASSERT_EQ(c.qualifications.size(), 2u);
  EXPECT_EQ(c.qualifications[0].values, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(c.qualifications[0].applicable_providers, std::vector<std::string>{"mturk"});
  EXPECT_EQ(c.qualifications[1].comparator, Comparator::kDoesNotExist);
  EXPECT_EQ(c.provider.mturk_specific_qualifications.size(), 1u);
  EXPECT_EQ(c.source_path, r->source_path);
}

TEST_F(RunConfigTest, GoldPlacementOverrideAndStoredRunsFromBeforeItKeepExact) {
  auto r = Load(std::string(kMinimal) + kGolds, {"blueprint.gold_placement=exact"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->blueprint.gold_placement, GoldPlacement::kExact);
  r = Load(std::string(kMinimal) + kGolds);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json stored = RunConfigToJson(*r);
  EXPECT_EQ(stored["blueprint"]["gold_placement"], "random");
  EXPECT_EQ(RunConfigFromJson(stored)->blueprint.gold_placement, GoldPlacement::kRandom);
  // A run stored by a version without the key was served with Mephisto's positions.
  stored["blueprint"].erase("gold_placement");
  EXPECT_EQ(RunConfigFromJson(stored)->blueprint.gold_placement, GoldPlacement::kExact);
}

TEST_F(RunConfigTest, QualityRulesLoadAndRoundTrip) {
  auto r = Load(std::string(kMinimal) +
                "  block_qualification: blocked\n"
                "quality_rules:\n"
                "  - {rule: fast_submissions, min_seconds: 3, count: 3, window: 10, action: {block: 1d}}\n"
                "  - {rule: majority_agreement, min_agreement: 0.6, window: 20, min_overlap: 5, action: reject_units}\n"
                "  - {rule: returned_units, count: 4, window: 10, action: disqualify}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->quality_rules.size(), 3u);
  EXPECT_EQ(r->quality_rules[0].block_seconds, 86400);
  EXPECT_EQ(r->quality_rules[1].action, QualityActionKind::kRejectUnits);
  auto back = RunConfigFromJson(json::parse(RunConfigToJson(*r).dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RunConfigToJson(*back), RunConfigToJson(*r));
  EXPECT_EQ(back->quality_rules.size(), 3u);
  // Absent = no rules.
  auto none = Load(kMinimal);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->quality_rules.empty());
  EXPECT_EQ(RunConfigToJson(*none)["quality_rules"], json::array());
}

TEST_F(RunConfigTest, QualityRuleErrorsNameTheKey) {
  const std::string rules =
      "quality_rules:\n"
      "  - {rule: returned_units, count: 2, window: 5, action: {block: 12h}}\n"
      "  - {rule: fast_submissions, min_seconds: 2, count: 1, window: 0, action: reject_units}\n";
  std::string err = LoadError(std::string(kMinimal) + rules);
  EXPECT_THAT(err, HasSubstr("quality_rules[1].window: expected int >= 1, got 0"));
  // A ban is a grant of the block qualification: refused without one, naming the key.
  EXPECT_THAT(err, HasSubstr("quality_rules[0].action: block grants the run's block qualification, but "
                             "blueprint.block_qualification is not set"));
  EXPECT_THAT(LoadError(std::string(kMinimal) + "quality_rules: {rule: x}\n"),
              HasSubstr("quality_rules: expected list, got an object"));
  // Overrides reach the list too.
  auto r = Load(std::string(kMinimal) + "  block_qualification: blocked\n",
                {"quality_rules=[{rule: returned_units, count: 2, window: 5, action: disqualify}]"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->quality_rules.size(), 1u);
}

TEST_F(RunConfigTest, RoundTripOfScreeningConfig) {
  auto r = Load(std::string(kMinimal) + kScreening);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  json stored = RunConfigToJson(*r);
  auto back = RunConfigFromJson(stored);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(RunConfigToJson(*back), stored);
  EXPECT_EQ(back->blueprint.screening_items, r->blueprint.screening_items);
}

TEST_F(RunConfigTest, FromJsonValidatesLikeLoad) {
  auto r = Load(std::string(kMinimal) + kGolds);
  ASSERT_TRUE(r.ok());
  json stored = RunConfigToJson(*r);
  json bad = stored;
  bad["blueprint"]["gold_fle"] = "x";
  EXPECT_THAT(RunConfigFromJson(bad).status().message(),
              HasSubstr("stored run config: blueprint.gold_fle: unknown key; did you mean blueprint.gold_file?"));
  bad = stored;
  bad["blueprint"]["gold_items"] = json::array();
  EXPECT_EQ(RunConfigFromJson(bad).status().message(), "stored run config: blueprint.gold_items: no items");
  bad = stored;
  bad["blueprint"]["data"] = "relative.jsonl";
  EXPECT_THAT(RunConfigFromJson(bad).status().message(),
              HasSubstr("blueprint.data: expected an absolute path in a stored config"));
  EXPECT_FALSE(RunConfigFromJson(json::array()).ok());
}

// ---- the registry ----------------------------------------------------------------------------------

TEST_F(RunConfigTest, ReferenceDescribesEveryKey) {
  std::set<std::string> keys;
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    EXPECT_FALSE(doc.description.empty()) << doc.key;
    EXPECT_EQ(doc.description.find('\n'), std::string::npos) << doc.key;
    EXPECT_FALSE(doc.TypeText().empty()) << doc.key;
    EXPECT_TRUE(keys.insert(doc.key).second) << "duplicate " << doc.key;
    EXPECT_TRUE(doc.group == "task" || doc.group == "blueprint" || doc.group == "qualifications" ||
                doc.group == "quality_rules" || doc.group == "provider")
        << doc.key;
    EXPECT_EQ(FindConfigKey(doc.key), &doc);
    if (doc.type == ConfigType::kEnum) {
      EXPECT_FALSE(doc.allowed.empty()) << doc.key;
    }
    for (const ConfigCondition& c : doc.required_if) EXPECT_NE(FindConfigKey(c.key), nullptr) << doc.key;
  }
  for (const char* key : {"task.task_name", "task.assignment_duration_in_seconds", "blueprint.gold_window",
                          "blueprint.onboarding_check", "blueprint.gold_placement", "qualifications", "quality_rules",
                          "provider.mturk_specific_qualifications"}) {
    EXPECT_TRUE(keys.count(key)) << key;
  }
  EXPECT_EQ(keys.size(), 48u);
  EXPECT_EQ(FindConfigKey("blueprint.nope"), nullptr);
  std::string md = ConfigReferenceMarkdown();
  for (const std::string& key : keys) EXPECT_THAT(md, HasSubstr("`" + key + "`"));
  EXPECT_THAT(md, HasSubstr("| `blueprint.gold_file` | path |  | when blueprint.use_golds = true |"));
  EXPECT_THAT(md, HasSubstr("| `task.task_title` | string | `= task.task_name` |"));
  EXPECT_THAT(md, HasSubstr("| `blueprint.gold_rate` | number in (0, 1] | `0.05` |"));
}

}  // namespace
}  // namespace crowdgate
