#include "core/eval_lookalike.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>
#include <utility>

namespace crowdgate {

using nlohmann::json;

namespace {

constexpr size_t kMinPrefix = 2;
constexpr double kMaxPrefixShare = 0.05;
constexpr double kChance = 0.01;

// "12", "-3.5", "1e3" (what a CSV or a form field holding a number looks like).
bool LooksNumeric(std::string_view s) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  bool digits = false, dot = false, exp = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && !dot && !exp) {
      dot = true;
    } else if ((c == 'e' || c == 'E') && digits && !exp && i + 1 < s.size()) {
      exp = true;
      if (s[i + 1] == '-' || s[i + 1] == '+') ++i;
    } else {
      return false;
    }
  }
  return digits;
}

std::string CommonPrefix(const std::vector<std::string>& values) {
  if (values.empty()) return "";
  std::string prefix = values[0];
  for (const std::string& v : values) {
    size_t n = 0;
    while (n < prefix.size() && n < v.size() && prefix[n] == v[n]) ++n;
    prefix.resize(n);
  }
  // Do not cut a UTF-8 sequence in half.
  while (!prefix.empty() && (static_cast<unsigned char>(prefix.back()) & 0xC0) == 0x80) prefix.pop_back();
  if (!prefix.empty() && (static_cast<unsigned char>(prefix.back()) & 0x80) != 0) prefix.pop_back();
  return prefix;
}

std::string Percent(double share) {
  const double p = std::round(share * 1000.0) / 10.0;
  std::string s = std::to_string(p);
  s.erase(s.find('.') + 2);
  if (s.size() > 2 && s.substr(s.size() - 2) == ".0") s.resize(s.size() - 2);
  return s + "%";
}

std::string Where(const EvalSetToCheck& set) { return set.key + " (" + set.path + ")"; }

std::string Noun(const EvalSetToCheck& set) {
  return set.key.find("gold") != std::string::npos ? "gold" : "screening";
}

}  // namespace

EvalLookalikeCheck::EvalLookalikeCheck(std::vector<EvalSetToCheck> sets) : sets_(std::move(sets)) {
  for (size_t s = 0; s < sets_.size(); ++s) {
    const auto& items = sets_[s].items;
    if (items.size() < 2) continue;
    std::map<std::string, std::vector<std::string>> values;  // field -> string values
    std::set<std::string> not_all_strings;
    for (const EvalItem& item : items) {
      if (!item.inputs.is_object()) continue;
      for (const auto& [field, v] : item.inputs.items()) {
        if (v.is_string()) {
          values[field].push_back(v.get<std::string>());
        } else {
          not_all_strings.insert(field);
        }
      }
    }
    for (const auto& [field, vs] : values) {
      if (not_all_strings.count(field) != 0 || vs.size() != items.size()) continue;
      std::string prefix = CommonPrefix(vs);
      if (prefix.size() >= kMinPrefix) prefixes_[field].emplace_back(s, std::move(prefix));
    }
  }
}

void EvalLookalikeCheck::AddRealItem(const json& item) {
  if (sets_.empty() || !item.is_object()) return;  // nothing to compare: launches without golds pay nothing
  ++real_items_;
  for (const auto& [field, v] : item.items()) {
    FieldStats& st = fields_[field];
    auto pre = prefixes_.find(field);
    if (st.present == 0 && pre != prefixes_.end()) st.prefix_hits.assign(pre->second.size(), 0);
    ++st.present;
    ++st.types[v.type_name()];
    if (!v.is_string()) continue;
    const std::string& s = v.get_ref<const std::string&>();
    ++st.strings;
    if (LooksNumeric(s)) ++st.numeric_strings;
    st.min_len = std::min(st.min_len, s.size());
    st.max_len = std::max(st.max_len, s.size());
    if (pre != prefixes_.end()) {
      for (size_t i = 0; i < pre->second.size(); ++i) {
        if (s.compare(0, pre->second[i].second.size(), pre->second[i].second) == 0) ++st.prefix_hits[i];
      }
    }
  }
}

LookalikeFindings EvalLookalikeCheck::Finish() const {
  LookalikeFindings out;
  if (real_items_ == 0) return out;
  std::vector<std::string> errors;
  for (size_t s = 0; s < sets_.size(); ++s) {
    const EvalSetToCheck& set = sets_[s];
    const std::string noun = Noun(set);
    // Field sets: report each field once, with the first item (1-based line) that shows it.
    std::set<std::string> reported;
    for (size_t i = 0; i < set.items.size(); ++i) {
      const json& inputs = set.items[i].inputs;
      if (!inputs.is_object()) continue;
      const std::string item = "item " + std::to_string(i + 1);
      for (const auto& [field, v] : inputs.items()) {
        if (fields_.count(field) == 0 && reported.insert(field).second) {
          errors.push_back(Where(set) + ": field \"" + field + "\": " + item + "'s inputs have it but no unit of " +
                           "blueprint.data does, so workers could tell " + noun +
                           " units apart; give them the units' fields");
        }
      }
      for (const auto& [field, st] : fields_) {
        if (st.present == real_items_ && !inputs.contains(field) && reported.insert(field).second) {
          errors.push_back(Where(set) + ": field \"" + field + "\": every unit of blueprint.data has it but " + item +
                           "'s inputs do not, so workers could tell " + noun +
                           " units apart; give them the units' fields");
        }
      }
    }
    // Values of each field present on both sides.
    std::map<std::string, std::vector<const json*>> values;
    for (const EvalItem& item : set.items) {
      if (!item.inputs.is_object()) continue;
      for (const auto& [field, v] : item.inputs.items()) values[field].push_back(&v);
    }
    for (const auto& [field, vs] : values) {
      auto it = fields_.find(field);
      if (it == fields_.end()) continue;
      const FieldStats& st = it->second;
      const std::string head = Where(set) + ": field \"" + field + "\": ";
      // Types.
      if (st.types.size() == 1) {
        const std::string& unit_type = st.types.begin()->first;
        for (const json* v : vs) {
          if (unit_type != v->type_name()) {
            out.warnings.push_back(head + "the units hold " + unit_type + " values, a " + noun + " item holds a " +
                                   v->type_name() + " (" + v->dump() + ")");
            break;
          }
        }
      }
      std::vector<std::string> strings;
      for (const json* v : vs) {
        if (v->is_string()) strings.push_back(v->get<std::string>());
      }
      if (st.strings > 0 && st.strings == st.present && !strings.empty()) {
        const bool units_numeric = st.numeric_strings == st.strings;
        const bool units_text = st.numeric_strings == 0;
        for (const std::string& v : strings) {
          if ((units_numeric && !LooksNumeric(v)) || (units_text && LooksNumeric(v))) {
            out.warnings.push_back(head + "the units' values are all " +
                                   (units_numeric ? "numbers" : "text, never a number") + ", a " + noun +
                                   " value is \"" + v + "\"");
            break;
          }
        }
        // Lengths.
        const bool all_shorter = std::all_of(strings.begin(), strings.end(),
                                             [&](const std::string& v) { return v.size() < st.min_len; });
        const bool all_longer = std::all_of(strings.begin(), strings.end(),
                                            [&](const std::string& v) { return v.size() > st.max_len; });
        if (all_shorter || all_longer) {
          out.warnings.push_back(head + "every " + noun + " value is " + (all_shorter ? "shorter" : "longer") +
                                 " than any unit's (units: " + std::to_string(st.min_len) + ".." +
                                 std::to_string(st.max_len) + " characters)");
        }
      }
      // Prefixes.
      auto pre = prefixes_.find(field);
      if (pre == prefixes_.end() || st.prefix_hits.empty()) continue;
      for (size_t i = 0; i < pre->second.size(); ++i) {
        if (pre->second[i].first != s) continue;
        const std::string& prefix = pre->second[i].second;
        const double share = static_cast<double>(st.prefix_hits[i]) / static_cast<double>(st.present);
        const double chance = std::pow(share, static_cast<double>(set.items.size() - 1));
        if (share <= kMaxPrefixShare && chance < kChance) {
          out.warnings.push_back(head + "every " + noun + " value starts with \"" + prefix + "\" but only " +
                                 Percent(share) + " of the units' values do, so workers could tell " + noun +
                                 " units apart; number them like the units");
        }
      }
    }
  }
  if (!errors.empty()) {
    std::string msg;
    for (const std::string& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    out.error = Status::InvalidArgument(msg);
  }
  return out;
}

LookalikeFindings CheckEvalLookalike(const std::vector<json>& real_items, std::vector<EvalSetToCheck> sets) {
  EvalLookalikeCheck check(std::move(sets));
  for (const json& item : real_items) check.AddRealItem(item);
  return check.Finish();
}

}  // namespace crowdgate
