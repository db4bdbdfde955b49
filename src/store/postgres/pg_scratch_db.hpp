// Scratch PostgreSQL databases for tests and benchmarks (not used by the server): naming a
// database inside a server URI, and running CREATE / DROP DATABASE, which cannot run inside a
// transaction. Include it only where libpqxx is linked.
#pragma once

#include <exception>
#include <string>

#include <pqxx/pqxx>

namespace crowdgate::pg_scratch {

// `uri` with its database (the path) replaced by `db`:
// postgresql://u@h:p/postgres?x=y -> postgresql://u@h:p/db?x=y (a URI without a path gains one).
inline std::string WithDatabase(const std::string& uri, const std::string& db) {
  const size_t scheme = uri.find("://");
  const size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t query = uri.find('?', host);
  const size_t slash = uri.find('/', host);
  const size_t path_end = query == std::string::npos ? uri.size() : query;
  if (slash == std::string::npos || slash > path_end) return uri.substr(0, path_end) + "/" + db + uri.substr(path_end);
  return uri.substr(0, slash) + "/" + db + uri.substr(path_end);
}

// Runs one statement outside a transaction on its own connection; "" on success, else the error.
inline std::string Exec(const std::string& uri, const std::string& sql) {
  try {
    pqxx::connection c(uri);
    pqxx::nontransaction tx(c);
    tx.exec(sql);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace crowdgate::pg_scratch
