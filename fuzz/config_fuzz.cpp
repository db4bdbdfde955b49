// Fuzzes the run-config loader: YamlToJson, then RunConfigFromTree (base dir =
// examples/sentiment, so relative paths in a seed resolve to real files; the loader only
// reads files, never writes). Input: YAML text, optionally followed by a NUL byte and
// override lines ("key=value", "~key", ...), one per line.
// Invariant: an accepted config round-trips through RunConfigToJson / RunConfigFromJson.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/run_config.hpp"
#include "fuzz_util.hpp"

using crowdgate::RunConfigFromJson;
using crowdgate::RunConfigFromTree;
using crowdgate::RunConfigToJson;
using crowdgate::YamlToJson;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view yaml = input;
  std::vector<std::string> overrides;
  if (size_t nul = input.find('\0'); nul != std::string_view::npos) {
    yaml = input.substr(0, nul);
    std::string_view rest = input.substr(nul + 1);
    while (!rest.empty() && overrides.size() < 16) {
      size_t nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  auto tree = YamlToJson(yaml, "fuzz.yaml");
  if (!tree.ok()) return 0;
  auto config = RunConfigFromTree(*tree, CROWDGATE_FUZZ_EXAMPLE_DIR, overrides);
  if (!config.ok()) {
    FUZZ_CHECK(!config.status().message().empty(), "an error without a message");
    return 0;
  }
  // The server stores RunConfigToJson and reloads it with RunConfigFromJson: an accepted
  // config must survive that exactly.
  nlohmann::json stored = RunConfigToJson(*config);
  std::string dumped = stored.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto reloaded = RunConfigFromJson(stored);
  if (!reloaded.ok()) std::fprintf(stderr, "reload error: %s\n", reloaded.status().message().c_str());
  FUZZ_CHECK(reloaded.ok(), "RunConfigFromJson refused what RunConfigToJson produced");
  FUZZ_CHECK(RunConfigToJson(*reloaded) == stored, "RunConfigToJson/FromJson do not round-trip");
  (void)dumped;
  return 0;
}
