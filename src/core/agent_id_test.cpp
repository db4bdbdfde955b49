#include "core/agent_id.hpp"

#include <regex>

#include <gtest/gtest.h>

namespace crowdgate {
namespace {

TEST(AgentIdTest, KeepsTheWireFormat) {
  const std::string id = NewAgentId(1'764'400'000'000'000, "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(std::regex_match(id, std::regex("ag_[0-9a-f]{32}"))) << id;
  EXPECT_EQ(id.substr(3, 13), "644b6633de000");
  EXPECT_EQ(id.substr(16), "def0123456789abcdef");
}

TEST(AgentIdTest, LaterAgentsSortLater) {
  // Sorted by creation time whatever the random part: the unique index grows at its end.
  const std::string a = NewAgentId(1'000'000, "ffffffffffffffffffffffffffffffff");
  const std::string b = NewAgentId(1'000'001, "00000000000000000000000000000000");
  EXPECT_LT(a, b);
}

TEST(AgentIdTest, TwoAgentsInOneMicrosecondDifferByTheRandomPart) {
  EXPECT_NE(NewAgentId(5, "00000000000000000000000000000001"), NewAgentId(5, "00000000000000000000000000000002"));
}

TEST(AgentIdTest, ClocksBeforeTheEpochAndShortRandomnessStillGiveTheFormat) {
  EXPECT_TRUE(std::regex_match(NewAgentId(-1, "abc"), std::regex("ag_[0-9a-f]{32}")));
}

}  // namespace
}  // namespace crowdgate
