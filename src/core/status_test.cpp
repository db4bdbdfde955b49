#include "crowdgate/status.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace crowdgate {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ErrorsCarryCodeAndMessage) {
  Status s = Status::NotFound("qualification \"english\" does not exist");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_FALSE(s.IsInvalidArgument());
  EXPECT_EQ(s.message(), "qualification \"english\" does not exist");
  EXPECT_EQ(s.ToString(), "not_found: qualification \"english\" does not exist");
}

TEST(StatusTest, PredicatesMatchFactories) {
  EXPECT_TRUE(Status::InvalidArgument("x").IsInvalidArgument());
  EXPECT_TRUE(Status::Conflict("x").IsConflict());
  EXPECT_TRUE(Status::Gone("x").IsGone());
  EXPECT_TRUE(Status::Unavailable("x").IsUnavailable());
  EXPECT_EQ(Status::Unauthenticated("x").code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(Status::PermissionDenied("x").code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(Status::TooLarge("x").code(), Status::Code::kTooLarge);
  EXPECT_EQ(Status::RateLimited("x").code(), Status::Code::kRateLimited);
  EXPECT_EQ(Status::Internal("x").code(), Status::Code::kInternal);
}

TEST(StatusTest, WithContextPrefixesAndKeepsCode) {
  Status s = Status::InvalidArgument("expected an integer").WithContext("line 12");
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.message(), "line 12: expected an integer");
  EXPECT_TRUE(Status::Ok().WithContext("line 12").ok());
}

TEST(StatusTest, CopiesAreIndependentAndMovesLeaveTargetIntact) {
  Status a = Status::Conflict("already exists");
  Status b = a;
  EXPECT_EQ(b.code(), Status::Code::kConflict);
  EXPECT_EQ(b.message(), "already exists");
  b = Status::Ok();
  EXPECT_TRUE(b.ok());
  EXPECT_EQ(a.message(), "already exists");
  Status c = std::move(a);
  EXPECT_EQ(c.message(), "already exists");
  c = c;  // self-assignment keeps the value
  EXPECT_EQ(c.message(), "already exists");
}

struct MappingRow {
  Status::Code code;
  const char* name;
  int http;
  int exit_code;
};

// Users and scripts depend on these: HTTP statuses in the API, exit codes in the CLI.
TEST(StatusMappingTest, CodesMapToHttpAndExitCodes) {
  const MappingRow rows[] = {
      {Status::Code::kOk, "ok", 200, 0},
      {Status::Code::kInvalidArgument, "invalid_argument", 400, 2},
      {Status::Code::kNotFound, "not_found", 404, 2},
      {Status::Code::kConflict, "conflict", 409, 2},
      {Status::Code::kUnauthenticated, "unauthenticated", 401, 2},
      {Status::Code::kPermissionDenied, "permission_denied", 403, 2},
      {Status::Code::kGone, "gone", 410, 2},
      {Status::Code::kTooLarge, "too_large", 413, 2},
      {Status::Code::kRateLimited, "rate_limited", 429, 1},
      {Status::Code::kUnavailable, "unavailable", 503, 1},
      {Status::Code::kBusy, "unavailable", 503, 1},
      {Status::Code::kInternal, "internal", 500, 1},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(CodeName(row.code), row.name);
    EXPECT_EQ(HttpStatusFor(row.code), row.http);
    EXPECT_EQ(ExitCodeFor(row.code), row.exit_code);
  }
}

TEST(StatusMappingTest, UserErrorsExitTwoOthersExitOne) {
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x").code()), 2);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x").code()), 2);
  EXPECT_EQ(ExitCodeFor(Status::Conflict("x").code()), 2);
  EXPECT_EQ(ExitCodeFor(Status::Unavailable("x").code()), 1);
  EXPECT_EQ(ExitCodeFor(Status::Internal("x").code()), 1);
}

TEST(ResultTest, HoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
  EXPECT_TRUE(r.status().ok());
}

TEST(ResultTest, HoldsError) {
  Result<std::string> r = Status::NotFound("no such run");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_EQ(r.status().message(), "no such run");
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternalError) {
  Result<int> r = Status::Ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInternal);
}

TEST(ResultTest, MoveOnlyValuesCanBeTakenOut) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(ResultTest, ArrowReachesMembers) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CG_ASSIGN_OR_RETURN(int half, Half(x));
  CG_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  CG_RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(MacrosTest, AssignOrReturnPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "3 is odd");
}

TEST(MacrosTest, ReturnIfErrorReturnsError) {
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).message(), "5 is odd");
}

}  // namespace
}  // namespace crowdgate
