#include "core/quality_rules.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

namespace crowdgate {

using nlohmann::json;

std::string_view QualityRuleKindName(QualityRuleKind k) {
  switch (k) {
    case QualityRuleKind::kFastSubmissions: return "fast_submissions";
    case QualityRuleKind::kMajorityAgreement: return "majority_agreement";
    case QualityRuleKind::kReturnedUnits: return "returned_units";
  }
  return "fast_submissions";
}

std::string_view QualityActionKindName(QualityActionKind k) {
  switch (k) {
    case QualityActionKind::kBlock: return "block";
    case QualityActionKind::kDisqualify: return "disqualify";
    case QualityActionKind::kRejectUnits: return "reject_units";
  }
  return "block";
}

namespace {

struct Unit {
  char suffix;
  int64_t seconds;
};
constexpr Unit kUnits[] = {{'w', 7 * 86400}, {'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

std::string Describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// A number with one decimal at most: 3 -> "3", 2.5 -> "2.5".
std::string Short(double v) {
  char buf[32];
  if (std::floor(v) == v) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

std::string Fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

class RuleReader {
 public:
  RuleReader(const json& obj, std::string where, std::vector<std::string>* errors)
      : obj_(obj), where_(std::move(where)), errors_(errors) {}

  void Error(const std::string& key, const std::string& msg) {
    errors_->push_back(where_ + (key.empty() ? "" : "." + key) + ": " + msg);
  }
  bool Has(const char* key) { return obj_.contains(key) && !obj_.at(key).is_null(); }

  int64_t Int(const char* key, int64_t min, std::optional<int64_t> dflt) {
    seen_.insert(key);
    if (!Has(key)) {
      if (!dflt) Error(key, "missing (required for rule " + rule_ + ")");
      return dflt.value_or(min);
    }
    const json& v = obj_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < min) {
      Error(key, "expected int >= " + std::to_string(min) + ", got " + Describe(v));
      return min;
    }
    return v.get<int64_t>();
  }

  // A number in (lo, hi] (hi: no upper bound when nullopt).
  double Number(const char* key, double lo, std::optional<double> hi) {
    seen_.insert(key);
    if (!Has(key)) {
      Error(key, "missing (required for rule " + rule_ + ")");
      return hi.value_or(1);
    }
    const json& v = obj_.at(key);
    const bool ok = v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > lo &&
                    (!hi || v.get<double>() <= *hi);
    if (!ok) {
      Error(key, "expected number " + (hi ? "in (" + Short(lo) + ", " + Short(*hi) + "]" : "> " + Short(lo)) +
                     ", got " + Describe(v));
      return hi.value_or(1);
    }
    return v.get<double>();
  }

  void Action(QualityRule* rule) {
    seen_.insert("action");
    if (!Has("action")) {
      Error("action", "missing (one of {block: DURATION}, disqualify, reject_units)");
      return;
    }
    const json& v = obj_.at("action");
    if (v.is_string() && v.get<std::string>() == "disqualify") {
      rule->action = QualityActionKind::kDisqualify;
    } else if (v.is_string() && v.get<std::string>() == "reject_units") {
      rule->action = QualityActionKind::kRejectUnits;
    } else if (v.is_string() && v.get<std::string>() == "block") {
      Error("action", "block needs a duration: {block: 1d}");
    } else if (v.is_object() && v.size() == 1 && v.contains("block")) {
      const json& d = v.at("block");
      Result<int64_t> seconds =
          d.is_string() ? ParseDuration(d.get<std::string>())
                        : Result<int64_t>(Status::InvalidArgument("expected a duration like 12h or 1d, got " +
                                                                  Describe(d)));
      if (!seconds.ok()) {
        Error("action.block", seconds.status().message());
      } else {
        rule->action = QualityActionKind::kBlock;
        rule->block_seconds = *seconds;
      }
    } else {
      Error("action", "expected one of {block: DURATION}, disqualify, reject_units; got " + Describe(v));
    }
  }

  void UnknownKeys() {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (seen_.count(it.key()) == 0) {
        std::string known;
        for (const std::string& k : seen_) known += (known.empty() ? "" : ", ") + k;
        Error(it.key(), "unknown key for rule " + rule_ + " (known: " + known + ")");
      }
    }
  }

  std::string rule_;
  std::set<std::string> seen_{"rule"};

 private:
  const json& obj_;
  std::string where_;
  std::vector<std::string>* errors_;
};

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  const std::string bad = "expected a duration like 90s, 30m, 12h, 1d or 2w, got \"" + std::string(text) + "\"";
  if (text.size() < 2) return Status::InvalidArgument(bad);
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, n);
  if (ec != std::errc() || end != text.data() + text.size() - 1 || n <= 0) return Status::InvalidArgument(bad);
  for (const Unit& u : kUnits) {
    if (u.suffix == text.back()) {
      if (n > INT64_MAX / u.seconds / 1000000) return Status::InvalidArgument(bad + " (too long)");
      return n * u.seconds;
    }
  }
  return Status::InvalidArgument(bad);
}

std::string FormatDuration(int64_t seconds) {
  for (const Unit& u : kUnits) {
    if (seconds % u.seconds == 0) return std::to_string(seconds / u.seconds) + u.suffix;
  }
  return std::to_string(seconds) + "s";
}

Result<std::vector<QualityRule>> ParseQualityRules(const json& list, const std::string& where) {
  if (list.is_null()) return std::vector<QualityRule>{};
  if (!list.is_array()) return Status::InvalidArgument(where + ": expected a list of rules, got " + Describe(list));
  std::vector<std::string> errors;
  std::vector<QualityRule> rules;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& obj = list[i];
    if (!obj.is_object()) {
      errors.push_back(at + ": expected a mapping {rule: ..., ...}, got " + Describe(obj));
      continue;
    }
    RuleReader r(obj, at, &errors);
    QualityRule rule;
    const json kind = obj.value("rule", json());
    const std::string name = kind.is_string() ? kind.get<std::string>() : "";
    r.rule_ = name;
    if (name == "fast_submissions") {
      rule.kind = QualityRuleKind::kFastSubmissions;
      rule.min_seconds = r.Number("min_seconds", 0, std::nullopt);
      rule.count = r.Int("count", 1, std::nullopt);
      rule.window = r.Int("window", 1, std::nullopt);
    } else if (name == "majority_agreement") {
      rule.kind = QualityRuleKind::kMajorityAgreement;
      rule.min_agreement = r.Number("min_agreement", 0, 1.0);
      rule.window = r.Int("window", 1, std::nullopt);
      rule.min_overlap = r.Int("min_overlap", 1, rule.window);
    } else if (name == "returned_units") {
      rule.kind = QualityRuleKind::kReturnedUnits;
      rule.count = r.Int("count", 1, std::nullopt);
      rule.window = r.Int("window", 1, std::nullopt);
    } else {
      r.Error("rule", std::string(kind.is_null() ? "missing" : "expected") +
                          " one of fast_submissions, majority_agreement, returned_units" +
                          (kind.is_null() ? "" : ", got " + Describe(kind)));
      continue;
    }
    r.Action(&rule);
    r.UnknownKeys();
    if (rule.kind != QualityRuleKind::kMajorityAgreement && rule.count > rule.window) {
      r.Error("count", "must be at most window (" + std::to_string(rule.window) + "), got " +
                           std::to_string(rule.count));
    }
    if (rule.kind == QualityRuleKind::kMajorityAgreement && rule.min_overlap > rule.window) {
      r.Error("min_overlap", "must be at most window (" + std::to_string(rule.window) + "), got " +
                                 std::to_string(rule.min_overlap));
    }
    if (rule.kind == QualityRuleKind::kReturnedUnits && rule.action == QualityActionKind::kRejectUnits) {
      r.Error("action", "reject_units needs submitted units to reject; returned_units can only block or disqualify");
    }
    rules.push_back(rule);
  }
  if (!errors.empty()) {
    std::string msg;
    for (size_t i = 0; i < errors.size(); ++i) msg += (i ? "\n" : "") + errors[i];
    return Status::InvalidArgument(msg);
  }
  return rules;
}

json QualityRulesToJson(const std::vector<QualityRule>& rules) {
  json out = json::array();
  for (const QualityRule& r : rules) {
    json j = {{"rule", QualityRuleKindName(r.kind)}, {"window", r.window}};
    switch (r.kind) {
      case QualityRuleKind::kFastSubmissions:
        j["min_seconds"] = r.min_seconds;
        j["count"] = r.count;
        break;
      case QualityRuleKind::kMajorityAgreement:
        j["min_agreement"] = r.min_agreement;
        j["min_overlap"] = r.min_overlap;
        break;
      case QualityRuleKind::kReturnedUnits: j["count"] = r.count; break;
    }
    if (r.action == QualityActionKind::kBlock) {
      j["action"] = {{"block", FormatDuration(r.block_seconds)}};
    } else {
      j["action"] = QualityActionKindName(r.action);
    }
    out.push_back(std::move(j));
  }
  return out;
}

// ---- windows ---------------------------------------------------------------------------

void WorkerQualityWindows::Fit(const std::vector<QualityRule>& rules) {
  if (windows_.size() != rules.size()) windows_.resize(rules.size());
}

std::vector<QualityFiring> WorkerQualityWindows::OnSubmit(const std::vector<QualityRule>& rules, int64_t unit_id,
                                                          double seconds, std::optional<double> agreement) {
  Fit(rules);
  std::vector<QualityFiring> out;
  for (size_t i = 0; i < rules.size(); ++i) {
    const QualityRule& rule = rules[i];
    std::deque<Entry>& w = windows_[i];
    if (rule.kind == QualityRuleKind::kFastSubmissions) {
      w.push_back({unit_id, seconds < rule.min_seconds ? 1.0 : 0.0});
    } else if (rule.kind == QualityRuleKind::kReturnedUnits) {
      w.push_back({unit_id, 0.0});
    } else if (agreement) {
      w.push_back({unit_id, *agreement});
    } else {
      continue;  // no overlap: nothing to judge
    }
    while (static_cast<int64_t>(w.size()) > rule.window) w.pop_front();
    QualityFiring f;
    f.rule_index = i;
    if (rule.kind == QualityRuleKind::kFastSubmissions) {
      int64_t fast = 0;
      for (const Entry& e : w) {
        if (e.value > 0) {
          ++fast;
          f.unit_ids.push_back(e.unit_id);
        }
      }
      if (fast < rule.count) continue;
      f.reason = "fast_submissions: " + std::to_string(fast) + " of the last " + std::to_string(w.size()) +
                 " units under " + Short(rule.min_seconds) + " s";
    } else if (rule.kind == QualityRuleKind::kMajorityAgreement) {
      if (static_cast<int64_t>(w.size()) < rule.min_overlap) continue;
      double sum = 0;
      for (const Entry& e : w) {
        sum += e.value;
        if (e.value < rule.min_agreement) f.unit_ids.push_back(e.unit_id);
      }
      const double mean = sum / static_cast<double>(w.size());
      if (mean >= rule.min_agreement) continue;
      f.reason = "majority_agreement: agreement " + Fixed2(mean) + " over the last " + std::to_string(w.size()) +
                 " overlapping units, below " + Short(rule.min_agreement);
    } else {
      continue;  // a submission never makes returned_units cross the line
    }
    w.clear();
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<QualityFiring> WorkerQualityWindows::OnReturn(const std::vector<QualityRule>& rules) {
  Fit(rules);
  std::vector<QualityFiring> out;
  for (size_t i = 0; i < rules.size(); ++i) {
    const QualityRule& rule = rules[i];
    if (rule.kind != QualityRuleKind::kReturnedUnits) continue;
    std::deque<Entry>& w = windows_[i];
    w.push_back({0, 1.0});
    while (static_cast<int64_t>(w.size()) > rule.window) w.pop_front();
    int64_t returned = 0;
    for (const Entry& e : w) returned += e.value > 0 ? 1 : 0;
    if (returned < rule.count) continue;
    QualityFiring f;
    f.rule_index = i;
    f.reason = "returned_units: " + std::to_string(returned) + " of the last " + std::to_string(w.size()) +
               " units returned or expired";
    w.clear();
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace crowdgate
