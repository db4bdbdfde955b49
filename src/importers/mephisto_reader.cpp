#include "importers/mephisto_reader.hpp"

#include <sqlite3.h>

#include <charconv>
#include <cmath>
#include <memory>
#include <set>

namespace crowdgate::importers {

namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// file: URI of a path, with the characters that mean something in a URI escaped.
std::string ReadOnlyUri(const std::string& path) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
      static const char* kHex = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 15];
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri + "?mode=ro";
}

Status SqliteError(sqlite3* db, int rc, const std::string& path, const std::string& what) {
  const std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
    return Status::Unavailable(path + ": the Mephisto database stayed locked by another process while " + what +
                               " (" + msg + "); try again");
  }
  if ((rc & 0xff) == SQLITE_NOTADB) return Status::InvalidArgument(path + " is not an SQLite database (" + msg + ")");
  if ((rc & 0xff) == SQLITE_CANTOPEN) return Status::InvalidArgument("cannot open " + path + " (" + msg + ")");
  return Status::InvalidArgument(path + ": " + what + ": " + msg);
}

Result<Stmt> Prepare(sqlite3* db, const std::string& sql, const std::string& path) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, path, "reading");
  return Stmt(s);
}

// Column names of a table; empty when the table does not exist.
Result<std::set<std::string>> Columns(sqlite3* db, const std::string& table, const std::string& path) {
  CG_ASSIGN_OR_RETURN(Stmt s, Prepare(db, "SELECT name FROM pragma_table_info(?1)", path));
  sqlite3_bind_text(s.get(), 1, table.c_str(), -1, SQLITE_TRANSIENT);
  std::set<std::string> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out.insert(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
  }
  if (rc != SQLITE_DONE) return SqliteError(db, rc, path, "reading the schema");
  return out;
}

std::string Text(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s, col));
}

// Mephisto's value column has INTEGER affinity: numeric text is stored as an integer, but
// anything else is kept as it was given. Only integers (or integral reals) are values.
void ReadValue(sqlite3_stmt* s, int col, MephistoGrant* g) {
  switch (sqlite3_column_type(s, col)) {
    case SQLITE_INTEGER:
      g->value = sqlite3_column_int64(s, col);
      g->raw_value = std::to_string(*g->value);
      return;
    case SQLITE_FLOAT: {
      const double d = sqlite3_column_double(s, col);
      g->raw_value = Text(s, col);
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) g->value = static_cast<int64_t>(d);
      return;
    }
    case SQLITE_NULL:
      g->raw_value = "NULL";
      return;
    default: {
      g->raw_value = Text(s, col);
      int64_t v = 0;
      const char* b = g->raw_value.data();
      const char* e = b + g->raw_value.size();
      auto [p, ec] = std::from_chars(b, e, v);
      if (ec == std::errc() && p == e && b != e) g->value = v;
      return;
    }
  }
}

}  // namespace

const char* MephistoSchemaName(MephistoSchema schema) {
  return schema == MephistoSchema::kAfterQualificationMigration ? "after_2024_qualification_migration"
                                                                 : "before_2024_qualification_migration";
}

const char* MephistoSchemaDescription(MephistoSchema schema) {
  return schema == MephistoSchema::kAfterQualificationMigration
             ? "after Mephisto's 2024 qualification migration (qualifications.description present)"
             : "before Mephisto's 2024 qualification migration (no qualifications.description)";
}

Result<MephistoDatabase> ReadMephistoDatabase(const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(ReadOnlyUri(path).c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return SqliteError(raw, rc, path, "opening");
  sqlite3_busy_timeout(db.get(), busy_timeout_ms);

  // One read transaction: the three tables are one snapshot even while Mephisto writes.
  rc = sqlite3_exec(db.get(), "BEGIN", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, path, "starting a read");

  // Tables and columns this reader needs; a database without them is not Mephisto's.
  const std::vector<std::pair<std::string, std::vector<std::string>>> kNeeded = {
      {"qualifications", {"qualification_id", "qualification_name"}},
      {"workers", {"worker_id", "worker_name", "provider_type"}},
      {"granted_qualifications", {"worker_id", "qualification_id", "value"}},
  };
  std::set<std::string> qual_columns;
  for (const auto& [table, columns] : kNeeded) {
    CG_ASSIGN_OR_RETURN(std::set<std::string> have, Columns(db.get(), table, path));
    if (have.empty()) {
      return Status::InvalidArgument(path + " is not a Mephisto database: it has no table `" + table + "`");
    }
    for (const auto& c : columns) {
      if (have.count(c) == 0) {
        return Status::InvalidArgument(path + " is not a Mephisto database: table `" + table + "` has no column `" +
                                       c + "`");
      }
    }
    if (table == "qualifications") qual_columns = have;
  }

  MephistoDatabase out;
  const bool has_description = qual_columns.count("description") != 0;
  out.schema = has_description ? MephistoSchema::kAfterQualificationMigration
                               : MephistoSchema::kBeforeQualificationMigration;
  {
    CG_ASSIGN_OR_RETURN(Stmt s, Prepare(db.get(),
                                        std::string("SELECT qualification_id, qualification_name, ") +
                                            (has_description ? "description" : "NULL") +
                                            " FROM qualifications ORDER BY qualification_id",
                                        path));
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      out.qualifications.push_back({sqlite3_column_int64(s.get(), 0), Text(s.get(), 1), Text(s.get(), 2)});
    }
    if (rc != SQLITE_DONE) return SqliteError(db.get(), rc, path, "reading qualifications");
  }
  {
    CG_ASSIGN_OR_RETURN(
        Stmt s, Prepare(db.get(), "SELECT worker_id, worker_name, provider_type FROM workers ORDER BY worker_id", path));
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      out.workers.push_back({sqlite3_column_int64(s.get(), 0), Text(s.get(), 1), Text(s.get(), 2)});
    }
    if (rc != SQLITE_DONE) return SqliteError(db.get(), rc, path, "reading workers");
  }
  {
    CG_ASSIGN_OR_RETURN(Stmt s, Prepare(db.get(),
                                        "SELECT worker_id, qualification_id, value FROM granted_qualifications "
                                        "ORDER BY worker_id, qualification_id",
                                        path));
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      MephistoGrant g;
      g.worker_id = sqlite3_column_int64(s.get(), 0);
      g.qualification_id = sqlite3_column_int64(s.get(), 1);
      ReadValue(s.get(), 2, &g);
      out.grants.push_back(std::move(g));
    }
    if (rc != SQLITE_DONE) return SqliteError(db.get(), rc, path, "reading granted_qualifications");
  }
  (void)sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr);
  return out;
}

}  // namespace crowdgate::importers
