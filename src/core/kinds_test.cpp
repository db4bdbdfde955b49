#include "crowdgate/kinds.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace crowdgate {
namespace {

// The words are a contract (store columns, JSON, HTTP, CLI): listed literally, in enum order.
template <typename E>
void ExpectWords(const std::vector<std::string>& words, std::optional<E> (*parse)(std::string_view)) {
  for (size_t i = 0; i < words.size(); ++i) {
    const E value = static_cast<E>(i);
    EXPECT_EQ(ToString(value), words[i]);
    ASSERT_TRUE(parse(words[i]).has_value()) << words[i];
    EXPECT_EQ(*parse(words[i]), value) << words[i];
    EXPECT_EQ(nlohmann::json(value), nlohmann::json(words[i]));  // JSON outputs print the word too
    std::ostringstream os;
    os << value;
    EXPECT_EQ(os.str(), words[i]);
  }
  // One value past the last has no word: the list above covers every value.
  EXPECT_EQ(ToString(static_cast<E>(words.size())), "?");
  for (const char* bad : {"", "Open", "UNIT", " unit", "in-task", "soft-rejected", "accept", "nope"}) {
    EXPECT_FALSE(parse(bad).has_value()) << bad;
  }
}

TEST(KindsTest, RunStatusWords) { ExpectWords<RunStatus>({"open", "closed"}, &ParseRunStatus); }

TEST(KindsTest, AgentKindWords) {
  ExpectWords<AgentKind>({"unit", "gold", "screening", "onboarding"}, &ParseAgentKind);
}

TEST(KindsTest, UnitStatusWords) {
  ExpectWords<UnitStatus>({"launched", "assigned", "completed", "accepted", "rejected", "soft_rejected", "expired"},
                          &ParseUnitStatus);
}

TEST(KindsTest, AgentStatusWords) {
  ExpectWords<AgentStatus>({"in_task", "onboarding", "completed", "passed", "failed", "returned", "timeout",
                            "approved", "rejected", "soft_rejected"},
                           &ParseAgentStatus);
}

TEST(KindsTest, OpenAndSubmittedAgents) {
  EXPECT_TRUE(IsOpen(AgentStatus::kInTask));
  EXPECT_TRUE(IsOpen(AgentStatus::kOnboarding));
  EXPECT_FALSE(IsOpen(AgentStatus::kCompleted));
  EXPECT_FALSE(IsOpen(AgentStatus::kTimeout));
  for (AgentStatus s : {AgentStatus::kCompleted, AgentStatus::kPassed, AgentStatus::kFailed, AgentStatus::kApproved,
                        AgentStatus::kRejected, AgentStatus::kSoftRejected}) {
    EXPECT_TRUE(IsSubmitted(s)) << ToString(s);
  }
  for (AgentStatus s : {AgentStatus::kInTask, AgentStatus::kOnboarding, AgentStatus::kReturned, AgentStatus::kTimeout}) {
    EXPECT_FALSE(IsSubmitted(s)) << ToString(s);
  }
}

TEST(KindsTest, ReviewMovesTheAgentWithItsUnit) {
  EXPECT_EQ(AgentStatusAfterReview(UnitStatus::kAccepted), AgentStatus::kApproved);
  EXPECT_EQ(AgentStatusAfterReview(UnitStatus::kRejected), AgentStatus::kRejected);
  EXPECT_EQ(AgentStatusAfterReview(UnitStatus::kSoftRejected), AgentStatus::kSoftRejected);
  EXPECT_FALSE(AgentStatusAfterReview(UnitStatus::kLaunched).has_value());
  EXPECT_FALSE(AgentStatusAfterReview(UnitStatus::kCompleted).has_value());
}

}  // namespace
}  // namespace crowdgate
