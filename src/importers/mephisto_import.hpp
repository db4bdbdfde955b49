// Brings a Mephisto database's qualifications, grants and workers into crowdgate through
// the Engine's public API (Engine::ApplyBulk), like any other caller.
//
// Mapping:
//  - provider_type mturk, mturk_sandbox, prolific keep their name; mock and inhouse become
//    local. Mephisto stores sandbox and mock worker names with a "_sandbox" suffix; it is
//    removed, so a worker is known by the id the provider gives them.
//  - Every grant keeps its value and gets the audit reason "imported from Mephisto".
//  - What crowdgate cannot hold is refused and reported by name, never dropped silently:
//    a worker name outside [A-Za-z0-9_.@-]{1,128}, an unknown provider, two Mephisto
//    workers that would be one crowdgate worker, a qualification name crowdgate refuses,
//    a grant whose value is not an integer or whose worker or qualification row is missing.
//  - Re-running writes only what changed; with `mirror`, grants of the imported
//    qualifications that Mephisto no longer has are revoked too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "crowdgate/engine.hpp"
#include "importers/mephisto_reader.hpp"

namespace crowdgate::importers {

inline constexpr const char* kImportReason = "imported from Mephisto";
inline constexpr const char* kMirrorRevokeReason = "no longer in Mephisto (import-mephisto --mirror)";

// Maps a Mephisto worker row to crowdgate's PROVIDER:NAME, or an error saying why not.
Result<WorkerRef> MapMephistoWorker(const MephistoWorker& worker);

struct MephistoRefusal {
  std::string kind;  // worker | qualification | grant
  std::string name;  // the Mephisto name (worker, qualification, or "qualification/worker")
  std::string reason;
};

struct MephistoImportReport {
  MephistoSchema schema = MephistoSchema::kAfterQualificationMigration;
  BulkSummary applied;  // what was (or, with dry_run, would be) written
  int64_t qualifications_refused = 0;
  int64_t workers_refused = 0;
  int64_t grants_refused = 0;
  std::vector<MephistoRefusal> refusals;
};

struct MephistoImportOptions {
  bool mirror = false;
  bool dry_run = false;
  std::function<void(size_t done, size_t total)> progress;
};

// Takes the database by value: its grants are let go as soon as they are converted, which
// matters at millions of rows.
Result<MephistoImportReport> ImportMephisto(Engine& engine, MephistoDatabase db, const MephistoImportOptions& options);

}  // namespace crowdgate::importers
