// The judgments of a run, ready for core/aggregation: the submitted labels of one answer field,
// with items, workers and labels interned to dense ids. Used by `crowdgate aggregate`, the
// requester API and the Python module alike.
//
// Contract:
//  - Items, workers and labels get ids in order of first appearance, so ties ("the label seen
//    first") follow the input order.
//  - Nothing is dropped silently: a submission that cannot be read is an InvalidArgument
//    naming the unit and agent.
//  - Real units only (not gold, screening or onboarding), submitted and not rejected by
//    review. Golds the workers answered become extra items whose true label is the gold's
//    answer for the field; they inform the worker estimates and are not output.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/aggregation.hpp"
#include "engine/interner.hpp"
#include "engine/run_dispatcher.hpp"

namespace crowdgate {

struct LoadedJudgments {
  Judgments judgments;
  std::vector<int32_t> known;  // empty, or one entry per item (-1 = unknown)
  Interner items;
  Interner workers;
  Interner labels;
  // How to write names as JSON: items of a run are numbers, CSV items are strings; a run's
  // labels keep their JSON type (label_json), CSV labels are strings.
  bool items_are_numbers = false;
  std::vector<std::string> label_json;
  std::vector<std::string> label_text;  // as a --gold file would spell it
  // Items to output, in output order (a run's gold items are left out).
  std::vector<int32_t> output_items;
  int64_t golds_used = 0;     // gold judgments counted as known truths
  int64_t golds_skipped = 0;  // gold judgments whose gold has no usable answer for the field
  std::string field;          // the answer field used (runs only)

  // Backing storage of the names: strings made here, and whatever a loader keeps alive (a
  // mapped CSV file) for the views the interners hold.
  std::deque<std::string> strings;
  std::shared_ptr<const void> backing;

  // Finishes the counts of `judgments` once every judgment is added.
  void Finish();
};

// The run's export (Dispatcher::Export) and its config (for the golds' answers). `field` empty =
// the only field of the answers (several is InvalidArgument naming them).
Result<std::unique_ptr<LoadedJudgments>> LoadRunJudgments(const std::vector<ExportRow>& rows, const RunConfig& config,
                                                          const std::string& field);

// A run's export, its judgments of `field` and their aggregate by `method` (golds as known
// truths): what the requester API and the Python module serve.
struct AggregatedRun {
  std::vector<ExportRow> rows;
  std::unique_ptr<LoadedJudgments> judgments;
  AggregateResult result;
};
Result<AggregatedRun> AggregateRun(RunDispatcher& dispatcher, const std::string& run_id, AggregationMethod method,
                                   const std::string& field);

// Output item `id` of `l` as {"item": N, "label": <the label's JSON value or null>, "confidence", "labels"}.
nlohmann::json ItemLabelJson(const LoadedJudgments& l, const AggregateResult& result, int32_t id);

// Per worker (by id): the share of their labels on output items that equal the aggregated label
// (NaN for a worker with none), and how many such labels they gave.
void AgreementWithAggregate(const LoadedJudgments& l, const std::vector<ItemLabel>& items,
                            std::vector<double>* agreement, std::vector<int32_t>* compared);

}  // namespace crowdgate
