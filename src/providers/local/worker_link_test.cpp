#include "providers/local/worker_link.hpp"

#include <gtest/gtest.h>

namespace crowdgate {
namespace {

const WorkerRef kAlice{"local", "alice"};

TEST(WorkerLinkTest, SignsAndVerifies) {
  const std::string sig = SignWorkerLink("secret-1", "run_1", kAlice, 2000);
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", kAlice, sig, 1999).ok());
  EXPECT_EQ(WorkerLinkPath("run_1", kAlice, sig), "/runs/run_1?worker=alice&sig=" + sig);
}

TEST(WorkerLinkTest, RefusesEveryWrongPart) {
  const std::string sig = SignWorkerLink("secret-1", "run_1", kAlice, 2000);
  EXPECT_TRUE(VerifyWorkerLink("secret-2", "run_1", kAlice, sig, 0).IsUnauthenticated());  // other database
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_2", kAlice, sig, 0).IsUnauthenticated());  // other run
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", WorkerRef{"local", "bob"}, sig, 0).IsUnauthenticated());
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", WorkerRef{"mturk", "alice"}, sig, 0).IsUnauthenticated());
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", kAlice, "", 0).IsUnauthenticated());
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", kAlice, "nodot", 0).IsUnauthenticated());
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", kAlice, ".abc", 0).IsUnauthenticated());
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", kAlice, "-5." + sig.substr(5), 0).IsUnauthenticated());
  // A later expiry with the old MAC: the expiry is signed too.
  EXPECT_TRUE(VerifyWorkerLink("secret-1", "run_1", kAlice, "9999" + sig.substr(4), 0).IsUnauthenticated());
}

TEST(WorkerLinkTest, ExpiresAtItsTime) {
  const std::string sig = SignWorkerLink("s", "run_1", kAlice, 2000);
  Status expired = VerifyWorkerLink("s", "run_1", kAlice, sig, 2000);
  EXPECT_TRUE(expired.IsUnauthenticated());
  EXPECT_NE(expired.message().find("expired"), std::string::npos);
  const std::string forever = SignWorkerLink("s", "run_1", kAlice, 0);
  EXPECT_TRUE(VerifyWorkerLink("s", "run_1", kAlice, forever, int64_t{1} << 40).ok());
}

}  // namespace
}  // namespace crowdgate
