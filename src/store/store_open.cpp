// Store::Open: picks the backend from the URI's scheme.
//
//   sqlite:PATH, sqlite::memory:, a bare PATH, :memory:  -> SQLite
//   sqlite:///relative/path, sqlite:////absolute/path    -> SQLite (SQLAlchemy spelling, as Mephisto users write it)
//   postgresql://..., postgres://...                     -> PostgreSQL (the whole URI goes to libpq unchanged;
//                                                          the database must exist, crowdgate creates its tables)
//   anything else that starts with a scheme ("x:")       -> InvalidArgument naming the scheme
#include <cctype>
#include <string_view>

#include "crowdgate/store.hpp"
#include "store/postgres/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace crowdgate {

namespace {

// The scheme of `uri` as RFC 3986 spells it (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"), or
// empty when `uri` does not start with one (a bare path such as "data/crowdgate.db" or "/tmp/x").
std::string_view SchemeOf(std::string_view uri) {
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  if (!std::isalpha(static_cast<unsigned char>(uri[0]))) return {};
  for (size_t i = 1; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(uri[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return {};
  }
  return uri.substr(0, colon);
}

Result<std::unique_ptr<Store>> OpenSqlite(const std::string& path, Env* env) {
  Result<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path, env);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store).value());
}

Result<std::unique_ptr<Store>> OpenPostgres(const std::string& uri, Env* env) {
  Result<std::unique_ptr<PgStore>> store = PgStore::Open(uri, env);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store).value());
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& uri, Env* env) {
  if (uri.empty()) return Status::InvalidArgument("empty database URI (expected sqlite:PATH, a path or :memory:)");
  if (uri == ":memory:") return OpenSqlite(uri, env);
  std::string_view scheme = SchemeOf(uri);
  if (scheme.empty()) return OpenSqlite(uri, env);
  if (scheme == "sqlite") {
    std::string path = uri.substr(scheme.size() + 1);
    if (path.rfind("//", 0) == 0) {
      // sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db; a host part is meaningless here.
      if (path.size() < 3 || path[2] != '/') {
        return Status::InvalidArgument("database URI '" + uri + "' names a host; use sqlite:PATH or sqlite:///PATH");
      }
      path = path.substr(3);
    }
    if (path.empty()) return Status::InvalidArgument("database URI '" + uri + "' has no path");
    return OpenSqlite(path, env);
  }
  if (scheme == "postgresql" || scheme == "postgres") return OpenPostgres(uri, env);
  return Status::InvalidArgument("unknown database scheme '" + std::string(scheme) + "' in '" + uri +
                                 "' (expected sqlite:PATH, a path, :memory: or postgresql://...; write ./" + uri +
                                 " for a file whose name contains ':')");
}

}  // namespace crowdgate
