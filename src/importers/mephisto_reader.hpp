// Reads the qualification side of a Mephisto database (its SQLite file): the
// `qualifications`, `granted_qualifications` and `workers` tables, as they are.
//
// Contract:
//  - The file is opened read-only (SQLITE_OPEN_READONLY on a file: URI with mode=ro): nothing
//    is ever written to it, not even a journal, and it may be open in Mephisto at the same
//    time. The three tables are read in one read transaction, so the rows are one
//    consistent snapshot even while Mephisto writes.
//  - A missing file, a file that is not SQLite, or a database without the tables and
//    columns Mephisto has is InvalidArgument, naming what is missing. A database locked for
//    longer than the busy timeout is Unavailable.
//  - Both schema versions are read: before and after Mephisto's 2024 qualification
//    migration (20241002_modify_qualifications, which added qualifications.description).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crowdgate/status.hpp"

namespace crowdgate::importers {

enum class MephistoSchema {
  kBeforeQualificationMigration,  // no qualifications.description
  kAfterQualificationMigration,   // 20241002_modify_qualifications applied
};
// "before_2024_qualification_migration" | "after_2024_qualification_migration"
const char* MephistoSchemaName(MephistoSchema schema);
// A sentence for people: which version was found and how it was recognised.
const char* MephistoSchemaDescription(MephistoSchema schema);

struct MephistoQualification {
  int64_t id = 0;
  std::string name;
  std::string description;  // "" before the migration or when NULL
};

struct MephistoWorker {
  int64_t id = 0;
  std::string name;      // as stored (sandbox and mock names carry Mephisto's "_sandbox" suffix)
  std::string provider;  // provider_type
};

struct MephistoGrant {
  int64_t worker_id = 0;
  int64_t qualification_id = 0;
  std::optional<int64_t> value;  // absent when the stored value is not an integer
  std::string raw_value;         // the stored value as text, for messages
};

struct MephistoDatabase {
  MephistoSchema schema = MephistoSchema::kAfterQualificationMigration;
  std::vector<MephistoQualification> qualifications;  // by id
  std::vector<MephistoWorker> workers;                // by id
  std::vector<MephistoGrant> grants;                  // by worker id, then qualification id
};

// Reads PATH (a plain file path). `busy_timeout_ms` bounds the wait for a writer's lock.
Result<MephistoDatabase> ReadMephistoDatabase(const std::string& path, int busy_timeout_ms = 10000);

}  // namespace crowdgate::importers
