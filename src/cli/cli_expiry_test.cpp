#include <gtest/gtest.h>

#include "cli/cli_context.hpp"

namespace crowdgate::cli {
namespace {

constexpr int64_t kNow = 1'700'000'000LL * kMicrosPerSecond;

TEST(ParseExpiryTest, RelativeDurations) {
  EXPECT_EQ(*ParseExpiry("30d", kNow), kNow + 30LL * 86400 * kMicrosPerSecond);
  EXPECT_EQ(*ParseExpiry("12h", kNow), kNow + 12LL * 3600 * kMicrosPerSecond);
  EXPECT_EQ(*ParseExpiry("90m", kNow), kNow + 90LL * 60 * kMicrosPerSecond);
  EXPECT_EQ(*ParseExpiry("2w", kNow), kNow + 14LL * 86400 * kMicrosPerSecond);
}

TEST(ParseExpiryTest, AbsoluteDates) {
  EXPECT_EQ(*ParseExpiry("2030-01-01", kNow), 1893456000LL * kMicrosPerSecond);
  EXPECT_EQ(*ParseExpiry("2030-01-01T12:00:00Z", kNow), (1893456000LL + 43200) * kMicrosPerSecond);
}

TEST(ParseExpiryTest, RefusesPastAndGarbage) {
  EXPECT_TRUE(ParseExpiry("2001-01-01", kNow).status().IsInvalidArgument());
  EXPECT_TRUE(ParseExpiry("0d", kNow).status().IsInvalidArgument());
  EXPECT_TRUE(ParseExpiry("soon", kNow).status().IsInvalidArgument());
  EXPECT_TRUE(ParseExpiry("2030-13-01", kNow).status().IsInvalidArgument());
}

}  // namespace
}  // namespace crowdgate::cli
