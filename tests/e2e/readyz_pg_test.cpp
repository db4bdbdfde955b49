// GET /readyz on PostgreSQL: `crowdgate serve` on a fresh database answers 200 {"status": "ready"}; once the
// database stops taking connections (ALLOW_CONNECTIONS false, and the server's connection terminated) it answers
// 503 with the error body "unavailable" (and /healthz still 200: the process is alive); when the database takes
// connections again, /readyz is 200 again without a restart. Needs $CROWDGATE_TEST_PG (scripts/with_pg.sh sets
// it: `make test-pg`); skipped without it.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/http_client.hpp"
#include "store/postgres/pg_scratch_db.hpp"
#include "tests/e2e/run_command.hpp"
#include "tests/e2e/server_process.hpp"

namespace crowdgate::testing {
namespace {

using nlohmann::json;

// GET /readyz until it answers `want` (at most ~10 s); returns the last answer.
HttpClientResponse ReadyzUntil(HttpClient& c, int want) {
  HttpClientResponse last;
  for (int i = 0; i < 100; ++i) {
    auto r = c.Get("/readyz");
    if (r.ok()) {
      last = *r;
      if (last.status == want) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

TEST(ReadyzPgTest, ReadyOnlyWhileTheDatabaseAnswers) {
  const char* pg = std::getenv("CROWDGATE_TEST_PG");
  if (pg == nullptr || *pg == '\0') {
    GTEST_SKIP() << "CROWDGATE_TEST_PG is not set: run it through scripts/with_pg.sh (make test-pg)";
  }
  const std::string admin = pg;
  const std::string name = "crowdgate_readyz_" + std::to_string(::getpid());
  pg_scratch::Exec(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  ASSERT_EQ(pg_scratch::Exec(admin, "CREATE DATABASE " + name), "");
  struct Drop {
    std::string admin, name;
    ~Drop() {
      pg_scratch::Exec(admin, "ALTER DATABASE " + name + " ALLOW_CONNECTIONS true");
      pg_scratch::Exec(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    }
  } drop{admin, name};

  TempDir dir;
  ServerProcess server(dir, pg_scratch::WithDatabase(admin, name));
  ASSERT_NE(server.port(), 0);
  HttpClient c("127.0.0.1", server.port());
  HttpClientResponse ready = ReadyzUntil(c, 200);
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(json::parse(ready.body, nullptr, false), (json{{"status", "ready"}}));

  ASSERT_EQ(pg_scratch::Exec(admin, "ALTER DATABASE " + name + " ALLOW_CONNECTIONS false"), "");
  ASSERT_EQ(pg_scratch::Exec(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                                        name + "' AND pid <> pg_backend_pid()"),
            "");
  HttpClientResponse down = ReadyzUntil(c, 503);
  EXPECT_EQ(down.status, 503) << down.body;
  const json body = json::parse(down.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << down.body;
  EXPECT_EQ(body["error"]["code"], "unavailable") << down.body;
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);

  ASSERT_EQ(pg_scratch::Exec(admin, "ALTER DATABASE " + name + " ALLOW_CONNECTIONS true"), "");
  HttpClientResponse back = ReadyzUntil(c, 200);
  EXPECT_EQ(back.status, 200) << back.body;
}

}  // namespace
}  // namespace crowdgate::testing
