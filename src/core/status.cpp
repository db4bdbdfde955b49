#include "crowdgate/status.hpp"

namespace crowdgate {

namespace {
struct CodeInfo {
  Status::Code code;
  std::string_view name;
  int http;
  int exit_code;
};
// The one table mapping codes to the outside world. Adding a code to Status::Code
// means adding a row here; the static_assert below counts the rows.
constexpr CodeInfo kCodeTable[] = {
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
    {Status::Code::kBusy, "unavailable", 503, 1},  // the caller's business; outside, transient like it
    {Status::Code::kInternal, "internal", 500, 1},
};
static_assert(sizeof(kCodeTable) / sizeof(kCodeTable[0]) == static_cast<int>(Status::Code::kInternal) + 1,
              "every Status::Code needs a row in kCodeTable");

const CodeInfo& Info(Status::Code code) {
  for (const auto& row : kCodeTable) {
    if (row.code == code) return row;
  }
  return kCodeTable[static_cast<int>(Status::Code::kInternal)];
}
}  // namespace

std::string_view CodeName(Status::Code code) { return Info(code).name; }
int HttpStatusFor(Status::Code code) { return Info(code).http; }
int ExitCodeFor(Status::Code code) { return Info(code).exit_code; }

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code())) + ": " + message();
}

}  // namespace crowdgate
