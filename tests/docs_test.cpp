// The README is the user's reference: it must list every run-config key the loader
// accepts, every comparator, and every outcome and reason word of the worker API.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/run_config.hpp"
#include "crowdgate/requirement.hpp"

namespace crowdgate {
namespace {

std::string Readme() {
  std::ifstream in("README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DocsTest, ReadmeListsEveryConfigKey) {
  const std::string readme = Readme();
  ASSERT_FALSE(readme.empty()) << "run from the repository root";
  for (const auto& key : ConfigReference()) {
    EXPECT_NE(readme.find("`" + key.key + "`"), std::string::npos) << key.key << " is missing from README.md";
  }
}

TEST(DocsTest, ReadmeConfigTableIsCurrent) {
  EXPECT_NE(Readme().find(ConfigReferenceMarkdown()), std::string::npos)
      << "README.md's config table is stale: paste `crowdgate config-reference` into it";
}

TEST(DocsTest, ReadmeNamesEveryComparatorAndReason) {
  const std::string readme = Readme();
  for (Comparator c : AllComparators()) {
    EXPECT_NE(readme.find("`" + std::string(ComparatorName(c)) + "`"), std::string::npos) << ComparatorName(c);
  }
  for (const char* word : {"blocked", "requirement_not_met", "onboarding_failed", "screening_failed",
                           "gold_disqualified", "too_many_concurrent", "max_units_reached", "no_units_left",
                           "gold_cap_reached", "screening_cap_reached", "run_closed"}) {
    EXPECT_NE(readme.find(word), std::string::npos) << word;
  }
}

}  // namespace
}  // namespace crowdgate
