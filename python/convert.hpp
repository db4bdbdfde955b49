// Conversions between Python objects and crowdgate values for the module: JSON-like
// Python values, requirement dicts in Mephisto's shape, expiry arguments, and
// crowdgate Status errors as Python exceptions.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crowdgate/requirement.hpp"
#include "crowdgate/status.hpp"
#include "crowdgate/types.hpp"

namespace crowdgate::python {

namespace py = pybind11;

// A crowdgate error on its way to Python: ValueError for bad input (InvalidArgument,
// Conflict, TooLarge), LookupError for unknown names (NotFound), RuntimeError otherwise.
// Thrown without the GIL; the translator registered by the module raises it.
class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)) {}
  const char* what() const noexcept override { return status_.message().c_str(); }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// Throws StatusError unless ok.
void Check(const Status& status);
template <typename T>
T Check(Result<T> result) {
  if (!result.ok()) throw StatusError(result.status());
  return std::move(result).value();
}

void RegisterExceptionTranslator();

// Python values (None, bool, int, float, str, list/tuple, dict with str keys) <-> JSON.
nlohmann::json ToJson(py::handle obj, const std::string& where);
py::object FromJson(const nlohmann::json& j);

// A requirement dict exactly as Mephisto's make_qualification_dict builds it
// ({"qualification_name", "comparator", "value", "applicable_providers"}), checked with
// crowdgate's rules. Mephisto's provider names mock and inhouse mean local.
Requirement ToRequirement(py::handle dict, const std::string& where);

// expires=: None, a datetime (naive = UTC), a timedelta from now, seconds since the epoch,
// or a string ("30d", "12h", "90m", "45s", "2w", or an ISO date / date-time, UTC if naive).
// Returns microseconds since the epoch; must be in the future.
std::optional<int64_t> ToExpiry(py::handle expires, int64_t now_micros);

// Optional string arguments: None -> "".
std::string OptionalText(py::handle obj, const char* name);

}  // namespace crowdgate::python
