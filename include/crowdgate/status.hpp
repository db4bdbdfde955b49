// crowdgate::Status and crowdgate::Result<T>: how errors cross layers.
//
// Contract: an OK Status costs one null pointer. Errors carry a Code and a message
// written for the person who caused them (it names the key, line or field at fault).
// Expected business outcomes ("not qualified", "no work", a failed check) are NOT
// errors: they are values of their own types. Codes map to HTTP statuses and CLI exit
// codes in exactly one place (the table in src/core/status.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace crowdgate {

class Status {
 public:
  // When a code is added, update status_mapping.cpp (HTTP status, exit code, wire name).
  enum class Code : int {
    kOk = 0,
    kInvalidArgument,   // bad input from the user: exit 2 / HTTP 400
    kNotFound,          // named thing does not exist: exit 2 / HTTP 404
    kConflict,          // already exists / already done: exit 2 / HTTP 409
    kUnauthenticated,   // missing or wrong token: HTTP 401
    kPermissionDenied,  // token valid but not for this: HTTP 403
    kGone,              // existed, no longer usable (expired agent): HTTP 410
    kTooLarge,          // body or file over a limit: HTTP 413
    kRateLimited,       // too many requests: HTTP 429
    kUnavailable,       // transient: database busy, provider down: exit 1 / HTTP 503
    kBusy,              // a lock another connection holds was not waited for (inside a batch); nothing
                        // changed: run the call again outside the batch. Outside: as kUnavailable
    kInternal,          // our bug or an unexpected library failure: exit 1 / HTTP 500
  };

  Status() noexcept = default;
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }
  static Status Unauthenticated(std::string msg) { return Status(Code::kUnauthenticated, std::move(msg)); }
  static Status PermissionDenied(std::string msg) { return Status(Code::kPermissionDenied, std::move(msg)); }
  static Status Gone(std::string msg) { return Status(Code::kGone, std::move(msg)); }
  static Status TooLarge(std::string msg) { return Status(Code::kTooLarge, std::move(msg)); }
  static Status RateLimited(std::string msg) { return Status(Code::kRateLimited, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const {
    static const std::string kEmpty;
    return rep_ ? rep_->message : kEmpty;
  }
  bool IsInvalidArgument() const { return code() == Code::kInvalidArgument; }
  bool IsNotFound() const { return code() == Code::kNotFound; }
  bool IsConflict() const { return code() == Code::kConflict; }
  bool IsGone() const { return code() == Code::kGone; }
  bool IsUnavailable() const { return code() == Code::kUnavailable; }
  bool IsBusy() const { return code() == Code::kBusy; }
  bool IsUnauthenticated() const { return code() == Code::kUnauthenticated; }

  // Prefixes the message with context ("line 12: ..."), keeping the code.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(code(), std::string(context) + ": " + message());
  }

  // "InvalidArgument: <message>" or "OK".
  std::string ToString() const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code code, std::string msg) : rep_(std::make_unique<Rep>(Rep{code, std::move(msg)})) {}
  std::unique_ptr<Rep> rep_;
};

// Stable lower_snake name of a code, used on the wire ({"error": {"code": ...}}).
std::string_view CodeName(Status::Code code);
// The one mapping table from codes to HTTP statuses and CLI exit codes.
int HttpStatusFor(Status::Code code);
int ExitCodeFor(Status::Code code);

// A value of T or an error Status. Never holds an OK status without a value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result constructed from an OK status without a value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace crowdgate

// Early-return helpers, in the style of absl's RETURN_IF_ERROR / ASSIGN_OR_RETURN.
#define CG_CONCAT_INNER(a, b) a##b
#define CG_CONCAT(a, b) CG_CONCAT_INNER(a, b)
#define CG_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::crowdgate::Status cg_status_ = (expr);  \
    if (!cg_status_.ok()) return cg_status_;  \
  } while (0)
#define CG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
#define CG_ASSIGN_OR_RETURN(lhs, expr) CG_ASSIGN_OR_RETURN_IMPL(CG_CONCAT(cg_result_, __LINE__), lhs, expr)
