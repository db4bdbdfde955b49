// Where `crowdgate aggregate --input FILE.csv` gets its judgments: a CSV file of
// item,worker,label rows (a run's come from engine/run_judgments.hpp). A row that cannot be
// read is an InvalidArgument naming the file and line; nothing is dropped silently.
#pragma once

#include <memory>
#include <string>

#include "cli/csv_columns.hpp"
#include "engine/run_judgments.hpp"

namespace crowdgate::cli {

// `--input FILE.csv`: columns item,worker,label.
Result<std::unique_ptr<LoadedJudgments>> LoadCsvJudgments(const std::string& path);

}  // namespace crowdgate::cli
