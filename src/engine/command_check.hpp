// Runs a `command:` check (README "Quality control, as crowdgate does it"): an external program that judges one
// submission.
//
// Contract:
//  - spec.command is argv (argv[0] is looked up in PATH). The program gets
//    {"inputs": ..., "answer": ..., "submission": ...} as one JSON document on stdin, then EOF.
//    Its stdout is discarded; up to 4 KiB of its stderr is quoted in the detail.
//  - Exit 0 = kPass, exit 1 = kFail. Any other exit status, death by a signal, failure to
//    start, or running longer than spec.timeout_s = kError with a detail saying which.
//  - The program runs in its own process group; when it exits or times out the whole group
//    is killed with SIGKILL and reaped, so background children cannot outlive the check.
//  - Blocks the calling thread for at most about timeout_s. Thread-safe: no global state,
//    every descriptor is close-on-exec, SIGPIPE is blocked around writes and never delivered
//    to the process.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/check_spec.hpp"

namespace crowdgate {

CheckResult RunCommandCheck(const CheckSpec& spec, const nlohmann::json& inputs, const nlohmann::json& answer,
                            const nlohmann::json& submission);

}  // namespace crowdgate
