// The docs of a table row (type, default, when required) and the Markdown reference that
// `crowdgate config-reference` prints and the README holds.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "core/run_config.hpp"

namespace crowdgate {

namespace {

using T = ConfigType;

std::string FormatNumber(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::string ConfigKeyDoc::TypeText() const {
  std::string base;
  switch (type) {
    case T::kString: base = "string"; break;
    case T::kInt: base = "int"; break;
    case T::kNumber: base = "number"; break;
    case T::kBool: base = "bool"; break;
    case T::kPath: base = "path"; break;
    case T::kObject: base = "object"; break;
    case T::kObjectOrPath: base = "object or path to a .json file"; break;
    case T::kList: base = "list"; break;
    case T::kCheck: base = "check spec"; break;
    case T::kEnum: {
      base = "one of: ";
      for (size_t i = 0; i < allowed.size(); ++i) base += (i ? ", " : "") + allowed[i];
      break;
    }
  }
  if (min && max) {
    base += std::string(" in ") + (min_exclusive ? "(" : "[") + FormatNumber(*min) + ", " + FormatNumber(*max) + "]";
  } else if (min) {
    base += (min_exclusive ? " > " : " >= ") + FormatNumber(*min);
  } else if (max) {
    base += " <= " + FormatNumber(*max);
  }
  if (nullable) base += " or null";
  return base;
}

std::string ConfigKeyDoc::DefaultText() const {
  if (!default_text.empty()) return default_text;
  if (default_value.is_null()) return "";
  return default_value.dump();
}

std::string ConfigKeyDoc::RequiredText() const {
  if (required) return "yes";
  if (required_if.empty()) return "";
  std::string text = "when ";
  for (size_t i = 0; i < required_if.size(); ++i) {
    const ConfigCondition& c = required_if[i];
    if (i) text += " and ";
    text += c.key + (c.equals ? " = " + (c.equals->is_string() ? c.equals->get<std::string>() : c.equals->dump())
                              : std::string(" is set"));
  }
  return text;
}

std::string ConfigReferenceMarkdown() {
  std::string md = "| key | type | default | required | description |\n| --- | --- | --- | --- | --- |\n";
  auto cell = [&md](std::string_view text, bool code) {
    md += ' ';
    if (code && !text.empty()) md += '`';
    for (char c : text) {
      if (c == '|') md += '\\';
      md += c;
    }
    if (code && !text.empty()) md += '`';
    md += " |";
  };
  for (const ConfigKeyDoc& doc : ConfigReference()) {
    md += '|';
    cell(doc.key, true);
    cell(doc.TypeText(), false);
    cell(doc.DefaultText(), true);
    cell(doc.RequiredText(), false);
    cell(doc.description, false);
    md += '\n';
  }
  return md;
}

}  // namespace crowdgate
