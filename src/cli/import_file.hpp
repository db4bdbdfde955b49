// Reading `qual import` files: CSV rows `worker[,value]`, an optional header row
// (`worker,value`), blank lines ignored. Worker names cannot contain commas or quotes,
// so a row is at most two plain fields; surrounding quotes and spaces are stripped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "crowdgate/engine.hpp"

namespace crowdgate::cli {

// Errors name the file and line ("list.csv:7: value \"x\" is not an integer").
Result<std::vector<ImportRow>> ParseImportText(std::string_view text, const std::string& file_name,
                                               int64_t default_value);
Result<std::vector<ImportRow>> ReadImportFile(const std::string& path, int64_t default_value);

}  // namespace crowdgate::cli
