// A database for one test, on either backend (tests parameterized over "SQLite" and "PostgreSQL"):
//   SQLite      a file at the path given.
//   PostgreSQL  a fresh database on the server named by $CROWDGATE_TEST_PG (scripts/with_pg.sh sets it), created
//               by CREATE DATABASE and dropped at destruction (kept when CROWDGATE_KEEP_TEST_DB is set). Without
//               the variable there is no database and the test should skip; it needs libpqxx in the test
//               (CROWDGATE_TEST_HAVE_PQXX, see tests/CMakeLists.txt).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>

#ifdef CROWDGATE_TEST_HAVE_PQXX
#include "store/postgres/pg_scratch_db.hpp"
#endif

#include "crowdgate/env.hpp"

namespace crowdgate::testing {

class ScratchDatabase {
 public:
  ScratchDatabase() = default;
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  ~ScratchDatabase() {
#ifdef CROWDGATE_TEST_HAVE_PQXX
    if (!pg_db_.empty() && std::getenv("CROWDGATE_KEEP_TEST_DB") == nullptr) {
      (void)pg_scratch::Exec(pg_admin_, "DROP DATABASE IF EXISTS " + pg_db_ + " WITH (FORCE)");
    }
#endif
  }

  // Makes the database of `backend`; "" on success (uri() names it), else why not. `prefix` starts the name of a
  // PostgreSQL database (lower case letters and _).
  std::string Create(const std::string& backend, const std::string& sqlite_path, const std::string& prefix) {
    if (backend == "SQLite") {
      uri_ = sqlite_path;
      return "";
    }
    const char* pg = std::getenv("CROWDGATE_TEST_PG");
    if (pg == nullptr || *pg == '\0') {
      no_server_ = true;
      return "CROWDGATE_TEST_PG is not set: the PostgreSQL instance needs a server; run the test through "
             "scripts/with_pg.sh";
    }
#ifdef CROWDGATE_TEST_HAVE_PQXX
    pg_admin_ = pg;
    const std::string name = prefix + "_" + std::to_string(::getpid()) + "_" + Env::Default()->RandomHex128().substr(0, 8);
    const std::string err = pg_scratch::Exec(pg_admin_, "CREATE DATABASE " + name);
    if (!err.empty()) return "CREATE DATABASE " + name + " on " + pg_admin_ + ": " + err;
    pg_db_ = name;
    uri_ = pg_scratch::WithDatabase(pg_admin_, pg_db_);
    return "";
#else
    (void)prefix;
    return "CROWDGATE_TEST_PG is set but this test was built without libpqxx (pkg-config libpqxx), so it cannot "
           "create a fresh database";
#endif
  }

  const std::string& uri() const { return uri_; }
  // Create() failed only because no PostgreSQL server was named: skip, do not fail.
  bool no_server() const { return no_server_; }

 private:
  std::string uri_;
  std::string pg_admin_;
  std::string pg_db_;
  bool no_server_ = false;
};

}  // namespace crowdgate::testing
