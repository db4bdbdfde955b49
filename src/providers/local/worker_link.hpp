// Signed worker links for local workers: /runs/RUN?worker=NAME&sig=SIG, where SIG carries the
// link's expiry and an HMAC-SHA256 of (run, worker, expiry) under a per-database secret. A local
// worker cannot become another one by editing the name in the URL: the signature stops matching.
//
// SIG is "EXPIRY.MAC": EXPIRY is the link's end in Unix seconds (0 = never), MAC the 64 hex digits
// of HMAC-SHA256(secret, "crowdgate-link\nRUN\nPROVIDER:NAME\nEXPIRY"). Verification recomputes
// the MAC and compares in constant time.
#pragma once

#include <cstdint>
#include <string>

#include "crowdgate/status.hpp"
#include "crowdgate/types.hpp"

namespace crowdgate {

// The `sig` value of a link for `worker` on `run_id`; expires_at_s = 0 for a link that never expires.
std::string SignWorkerLink(const std::string& secret, const std::string& run_id, const WorkerRef& worker,
                           int64_t expires_at_s);

// OK when `sig` is a valid signature of (run_id, worker) that has not expired at now_s;
// Unauthenticated otherwise, with a message that says what is wrong (missing, malformed, expired,
// not valid for this worker and run) without revealing anything about the secret.
Status VerifyWorkerLink(const std::string& secret, const std::string& run_id, const WorkerRef& worker,
                        const std::string& sig, int64_t now_s);

// The path of a signed link: "/runs/RUN?worker=NAME&sig=SIG" (NAME and SIG URL-safe as they are).
std::string WorkerLinkPath(const std::string& run_id, const WorkerRef& worker, const std::string& sig);

}  // namespace crowdgate
