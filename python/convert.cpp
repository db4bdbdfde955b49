#include "convert.hpp"

#include <cmath>
#include <regex>

#include "crowdgate/env.hpp"

namespace crowdgate::python {

void Check(const Status& status) {
  if (!status.ok()) throw StatusError(status);
}

void RegisterExceptionTranslator() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.status().code()) {
        case Status::Code::kInvalidArgument:
        case Status::Code::kConflict:
        case Status::Code::kTooLarge:
          type = PyExc_ValueError;
          break;
        case Status::Code::kNotFound:
          type = PyExc_LookupError;
          break;
        default:
          break;
      }
      PyErr_SetString(type, e.what());
    }
  });
}

nlohmann::json ToJson(py::handle obj, const std::string& where) {
  if (obj.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(obj)) return obj.cast<bool>();  // before int: bool is an int in Python
  if (py::isinstance<py::int_>(obj)) {
    try {
      return obj.cast<int64_t>();
    } catch (const py::cast_error&) {
      throw StatusError(Status::InvalidArgument(where + ": integer out of range"));
    }
  }
  if (py::isinstance<py::float_>(obj)) return obj.cast<double>();
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    nlohmann::json out = nlohmann::json::array();
    size_t i = 0;
    for (py::handle item : obj) out.push_back(ToJson(item, where + "[" + std::to_string(i++) + "]"));
    return out;
  }
  if (py::isinstance<py::dict>(obj)) {
    nlohmann::json out = nlohmann::json::object();
    for (auto [k, v] : obj.cast<py::dict>()) {
      if (!py::isinstance<py::str>(k)) throw StatusError(Status::InvalidArgument(where + ": keys must be strings"));
      const std::string key = k.cast<std::string>();
      out[key] = ToJson(v, where + "." + key);
    }
    return out;
  }
  throw StatusError(Status::InvalidArgument(where + ": cannot use a value of type " +
                                            std::string(py::str(obj.get_type().attr("__name__")))));
}

py::object FromJson(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return py::none();
    case nlohmann::json::value_t::boolean:
      return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return py::float_(j.get<double>());
    case nlohmann::json::value_t::string:
      return py::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list out;
      for (const auto& v : j) out.append(FromJson(v));
      return out;
    }
    case nlohmann::json::value_t::object: {
      py::dict out;
      for (const auto& [k, v] : j.items()) out[py::str(k)] = FromJson(v);
      return out;
    }
    default:
      return py::none();
  }
}

Requirement ToRequirement(py::handle dict, const std::string& where) {
  if (!py::isinstance<py::dict>(dict)) {
    throw StatusError(Status::InvalidArgument(
        where + ": expected a dict like make_qualification_dict() returns, got " +
        std::string(py::str(dict.get_type().attr("__name__")))));
  }
  nlohmann::json j = ToJson(dict, where);
  // Mephisto's dicts always carry all four keys (its make_qualification_dict checks so).
  for (const char* key : {"qualification_name", "comparator", "value", "applicable_providers"}) {
    if (!j.contains(key)) {
      throw StatusError(Status::InvalidArgument(where + ": missing key \"" + key +
                                                "\" (build requirements with make_qualification_dict)"));
    }
  }
  auto& providers = j["applicable_providers"];
  if (providers.is_array()) {
    for (auto& p : providers) {
      if (p == "mock" || p == "inhouse") p = "local";  // Mephisto's local providers
    }
  }
  return Check(ParseRequirement(j, where));
}

std::optional<int64_t> ToExpiry(py::handle expires, int64_t now_micros) {
  if (expires.is_none()) return std::nullopt;
  auto datetime = py::module_::import("datetime");
  double seconds = 0;  // since the epoch
  if (py::isinstance(expires, datetime.attr("datetime"))) {
    py::object dt = py::reinterpret_borrow<py::object>(expires);
    if (dt.attr("tzinfo").is_none()) {
      dt = dt.attr("replace")(py::arg("tzinfo") = datetime.attr("timezone").attr("utc"));
    }
    seconds = dt.attr("timestamp")().cast<double>();
  } else if (py::isinstance(expires, datetime.attr("timedelta"))) {
    seconds = static_cast<double>(now_micros) / kMicrosPerSecond + expires.attr("total_seconds")().cast<double>();
  } else if (py::isinstance<py::bool_>(expires)) {
    throw StatusError(Status::InvalidArgument("expires: expected a datetime, timedelta, seconds or a string"));
  } else if (py::isinstance<py::int_>(expires) || py::isinstance<py::float_>(expires)) {
    seconds = expires.cast<double>();
  } else if (py::isinstance<py::str>(expires)) {
    const std::string text = expires.cast<std::string>();
    static const std::regex kRelative(R"(^(\d{1,6})([smhdw])$)");
    std::smatch m;
    if (std::regex_match(text, m, kRelative)) {
      int64_t unit = 1;
      switch (m[2].str()[0]) {
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: break;
      }
      seconds = static_cast<double>(now_micros) / kMicrosPerSecond + static_cast<double>(std::stoll(m[1]) * unit);
    } else {
      py::object dt;
      try {
        dt = datetime.attr("datetime").attr("fromisoformat")(text);
      } catch (const py::error_already_set&) {
        throw StatusError(Status::InvalidArgument(
            "expires: '" + text + "' is neither a duration like 30d, 12h, 90m, 45s, 2w nor an ISO date like 2027-01-31"));
      }
      return ToExpiry(dt, now_micros);
    }
  } else {
    throw StatusError(Status::InvalidArgument("expires: expected a datetime, timedelta, seconds or a string, got " +
                                              std::string(py::str(expires.get_type().attr("__name__")))));
  }
  if (!std::isfinite(seconds)) throw StatusError(Status::InvalidArgument("expires: not a finite time"));
  const auto micros = static_cast<int64_t>(seconds * kMicrosPerSecond);
  if (micros <= now_micros) throw StatusError(Status::InvalidArgument("expires: must be in the future"));
  return micros;
}

std::string OptionalText(py::handle obj, const char* name) {
  if (obj.is_none()) return "";
  if (!py::isinstance<py::str>(obj)) {
    throw StatusError(Status::InvalidArgument(std::string(name) + ": expected a string or None"));
  }
  return obj.cast<std::string>();
}

}  // namespace crowdgate::python
