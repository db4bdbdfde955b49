// What quality control did in a run, for people: per worker onboarding, gold record,
// disqualification, quality-rule bans, units done and label accuracy; overall label accuracy
// against the hidden truth with and without disqualified workers, raw and aggregated
// (Dawid-Skene). Used by `crowdgate demo`.
#pragma once

#include <map>
#include <ostream>
#include <string>

#include "cli/simulate.hpp"
#include "crowdgate/dispatcher.hpp"
#include "crowdgate/engine.hpp"

namespace crowdgate::cli {

struct QualityReportInput {
  std::string run_id;
  std::string gold_base;             // gold_qualification_base
  std::string onboarding;            // onboarding_qualification ("" = none)
  std::string block;                 // block_qualification ("" = none): quality-rule bans are its grants
  std::string truth_file;            // {"inputs", "answer"} JSONL of the real units
  std::string label_field = "label";
  const SimReport* simulation = nullptr;  // for profiles and why each worker stopped
};

Status PrintQualityReport(Engine& engine, Dispatcher& dispatcher, const QualityReportInput& in, std::ostream& out);

}  // namespace crowdgate::cli
