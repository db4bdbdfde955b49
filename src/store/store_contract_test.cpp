// The Store contract suite: every test in StoreContractTest runs against every registered backend
// (SQLite in memory and SQLite on a temp file here). A backend defined elsewhere, e.g.
// postgres/store_contract_pgtest.cpp linked into a test binary with these files, adds itself
// without touching the test bodies:
//
//   namespace crowdgate::store_test {
//   int RegisterStoreBackend(std::string name, std::function<std::string()> fresh_uri, bool shared,
//                            std::function<void(const std::string&)> drop);
//   }
//   static const int kPg = crowdgate::store_test::RegisterStoreBackend("Postgres", ...);
//
// (the instantiation reads the registry lazily, at InitGoogleTest, after static initialisers ran).
// The tests are in store_contract_{grants,runs,outbox}_test.cpp, their fixture in
// store_contract_fixture.hpp. Backend-specific behaviour (URI parsing, pragmas, migrations) is tested
// in SqliteStoreTest (sqlite_store_test.cpp).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/store_contract_fixture.hpp"

namespace crowdgate::store_test {

void PrintTo(const StoreBackend& b, std::ostream* os) { *os << b.name; }

std::vector<StoreBackend>& ExtraBackends() {
  static std::vector<StoreBackend> backends;
  return backends;
}

int RegisterStoreBackend(std::string name, std::function<std::string()> fresh_uri, bool shared,
                         std::function<void(const std::string&)> drop) {
  ExtraBackends().push_back(StoreBackend{std::move(name), std::move(fresh_uri), shared, std::move(drop)});
  return static_cast<int>(ExtraBackends().size());
}

namespace {

std::vector<StoreBackend> AllBackends() {
  std::vector<StoreBackend> out = {
      {"SqliteMemory", [] { return std::string("sqlite::memory:"); }, false, {}},
      {"SqliteFile", [] { return "sqlite:" + FreshTempPath(); },
       true, [](const std::string& uri) { RemoveSqliteFiles(uri.substr(std::string("sqlite:").size())); }},
  };
  for (const StoreBackend& b : ExtraBackends()) out.push_back(b);
  return out;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest, ::testing::ValuesIn(AllBackends()),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) { return info.param.name; });

}  // namespace crowdgate::store_test
