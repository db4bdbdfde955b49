// Launch checks that gold and screening items cannot be told from the real units by their
// fields: a worker who can spot a gold answers it carefully and the rest carelessly.
//
// Contract:
//  - The real items are given one by one (AddRealItem, cheap and O(fields) per item, so a
//    launch of a million units streams through it); Finish() compares them with each eval set
//    (a gold or screening file's items' `inputs`).
//  - Error (InvalidArgument, one line per problem, naming the config key, the file and the
//    field): an eval item has a field no real item has, or lacks a field every real item has.
//    A field only some units have may be present or absent in eval items.
//  - Warnings (the launch still succeeds), per field present on both sides:
//      prefix: the set has >= 2 items, every value of the field is a string, they share a
//              common prefix of >= 2 characters, and at most 5% of the units' values start
//              with it (and few enough that the eval values' agreement is not chance:
//              share^(n-1) < 1%), e.g. golds g001, g002 vs units s001, s002.
//      type:   every unit value has one JSON type (string, number, bool, ...) and an eval
//              value has another, or the unit values are all numeric-looking strings and an
//              eval value is not (or the other way round).
//      length: every eval string value is shorter than the shortest or longer than the
//              longest unit value of that field.
//  - Pure: no I/O; nothing throws.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/data_reader.hpp"
#include "crowdgate/status.hpp"

namespace crowdgate {

struct EvalSetToCheck {
  std::string key;   // "blueprint.gold_file"
  std::string path;  // the file, for messages
  std::vector<EvalItem> items;
};

struct LookalikeFindings {
  Status error;                       // Ok, or InvalidArgument naming key, file and field
  std::vector<std::string> warnings;  // one sentence each, naming key, file and field
};

class EvalLookalikeCheck {
 public:
  explicit EvalLookalikeCheck(std::vector<EvalSetToCheck> sets);

  void AddRealItem(const nlohmann::json& item);
  LookalikeFindings Finish() const;

 private:
  // What the units hold in one field.
  struct FieldStats {
    int64_t present = 0;
    std::map<std::string, int64_t> types;  // JSON type name -> count
    int64_t strings = 0;
    int64_t numeric_strings = 0;
    size_t min_len = SIZE_MAX;
    size_t max_len = 0;
    std::vector<int64_t> prefix_hits;  // per entry of prefixes_[field]
  };

  std::vector<EvalSetToCheck> sets_;
  // field -> prefixes the eval sets share in it (set index, prefix).
  std::map<std::string, std::vector<std::pair<size_t, std::string>>> prefixes_;
  std::map<std::string, FieldStats> fields_;
  int64_t real_items_ = 0;
};

// The same check over items in memory.
LookalikeFindings CheckEvalLookalike(const std::vector<nlohmann::json>& real_items, std::vector<EvalSetToCheck> sets);

}  // namespace crowdgate
