// YAML -> JSON with the loader's typing rules: plain scalars are typed as YAML 1.2's core
// schema does, quoted and block scalars stay strings.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "core/run_config.hpp"

namespace crowdgate {

using nlohmann::json;

namespace {

bool IsNullScalar(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// Types a plain scalar as YAML 1.2's core schema does (decimal ints, floats, booleans,
// null); anything else is a string.
json TypePlainScalar(const std::string& s) {
  if (IsNullScalar(s)) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  std::string_view v = s;
  if (!v.empty() && v.front() == '+') v.remove_prefix(1);
  if (v.empty() || v.find_first_not_of("0123456789-.eE+") != std::string_view::npos ||
      v.find_first_of("0123456789") == std::string_view::npos) {
    return s;
  }
  const char* end = v.data() + v.size();
  if (v.find_first_of(".eE") == std::string_view::npos) {
    int64_t i = 0;
    auto [ptr, ec] = std::from_chars(v.data(), end, i);
    if (ec == std::errc() && ptr == end) return i;
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(v.data(), end, d);
  if (ec == std::errc() && ptr == end) return d;
  return s;
}

std::string MarkText(const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  return " (line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) + ")";
}

Status NodeToJson(const YAML::Node& node, std::string_view where, json* out) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      *out = nullptr;
      return Status::Ok();
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") {
        *out = node.Scalar();
      } else {
        *out = TypePlainScalar(node.Scalar());
      }
      return Status::Ok();
    }
    case YAML::NodeType::Sequence: {
      *out = json::array();
      for (const YAML::Node& child : node) {
        json v;
        CG_RETURN_IF_ERROR(NodeToJson(child, where, &v));
        out->push_back(std::move(v));
      }
      return Status::Ok();
    }
    case YAML::NodeType::Map: {
      *out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return Status::InvalidArgument(std::string(where) + ": mapping keys must be plain strings" +
                                         MarkText(kv.first.Mark()));
        }
        const std::string& key = kv.first.Scalar();
        if (out->contains(key)) {
          return Status::InvalidArgument(std::string(where) + ": duplicate key \"" + key + "\"" +
                                         MarkText(kv.first.Mark()));
        }
        CG_RETURN_IF_ERROR(NodeToJson(kv.second, where, &(*out)[key]));
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Result<json> YamlToJson(std::string_view yaml_text, std::string_view where) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    json out;
    CG_RETURN_IF_ERROR(NodeToJson(root, where, &out));
    return out;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string(where) + ": invalid YAML: " + e.msg + MarkText(e.mark));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string(where) + ": invalid YAML: " + e.what());
  }
}

}  // namespace crowdgate
