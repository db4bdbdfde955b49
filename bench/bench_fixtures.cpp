// Fixtures of the in-process workloads: run configs and a database of workers with grants.
#include "bench_fixtures.hpp"

#include <sqlite3.h>

#include <fstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "crowdgate/env.hpp"
#include "crowdgate/store.hpp"

namespace crowdgate::bench {

// Writes a run config (static_html, 1 unit per item, label answers) with `items` items into dir.
// With golds, every gold's answer is {"label": "x"}, which is what every simulated worker answers.
std::string WriteRunConfig(const std::string& dir, int64_t items, bool golds, int requirements) {
  WriteFile(dir + "/task.html", "<p>${text}</p>");
  {
    std::ofstream out(dir + "/units.jsonl", std::ios::binary);
    std::string line;
    for (int64_t i = 0; i < items; ++i) {
      line = "{\"id\": \"s" + std::to_string(i) + "\", \"text\": \"sentence number " + std::to_string(i) + "\"}\n";
      out << line;
    }
  }
  std::string yaml =
      "task:\n  task_name: bench\n  task_title: bench\n  task_reward: 0.01\n  allowed_concurrent: 1\n"
      "  assignment_duration_in_seconds: 3600\n"
      "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n  units_per_item: 1\n";
  if (golds) {
    std::ofstream out(dir + "/golds.jsonl", std::ios::binary);
    for (int g = 0; g < 50; ++g) {
      const int64_t n = items + g;  // golds look like the units, as launch wants them to
      out << "{\"inputs\": {\"id\": \"s" << n << "\", \"text\": \"sentence number " << n
          << "\"}, \"answer\": {\"label\": \"x\"}}\n";
    }
    yaml +=
        "  use_golds: true\n  gold_qualification_base: bench-gold\n  gold_file: golds.jsonl\n"
        "  gold_check: {fields: [label], match: exact}\n  min_golds: 2\n  max_incorrect_golds: 1\n"
        "  max_gold_units: 100000000\n";
  }
  yaml += "qualifications:";
  if (requirements == 0) yaml += " []";
  yaml += "\n";
  for (int q = 1; q <= requirements; ++q) {
    yaml += "  - {qualification_name: q" + std::to_string(q) + ", comparator: GreaterThanOrEqualTo, value: 0}\n";
  }
  yaml += "provider:\n  type: local\n  trust_worker_param: true  # simulated workers, no signed links\n";
  WriteFile(dir + "/config.yaml", yaml);
  return dir + "/config.yaml";
}

// Creates qualifications q1..q`quals` and `workers` workers w1..wN holding `per_worker` of them
// (values 0..99), written straight into SQLite in one transaction (the audit log is not needed
// to load an engine; this is setup, not a measured figure).
void PopulateWorkers(const std::string& db, int64_t workers, int quals, int per_worker) {
  {
    auto store = Must(Store::Open(db, Env::Default()), "open " + db);
    for (int q = 1; q <= quals; ++q) Must(store->EnsureQualification("q" + std::to_string(q), "bench"), "qual");
  }
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) Die(Status::Internal(sqlite3_errmsg(h)), "sqlite open");
  auto exec = [&](const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(h, sql, nullptr, nullptr, &err) != SQLITE_OK) Die(Status::Internal(err), sql);
  };
  exec("PRAGMA journal_mode = WAL");
  exec("PRAGMA synchronous = OFF");
  exec("BEGIN");
  sqlite3_stmt* w = nullptr;
  sqlite3_stmt* g = nullptr;
  sqlite3_prepare_v2(h, "INSERT INTO workers (id, provider, name, created_at) VALUES (?1, 'local', ?2, 1)", -1, &w,
                     nullptr);
  sqlite3_prepare_v2(h,
                     "INSERT INTO grants (worker_id, qual_id, value, granted_at, updated_at, expires_at, actor) "
                     "SELECT ?1, id, ?3, 1, 1, NULL, 'bench' FROM qualifications WHERE name = ?2",
                     -1, &g, nullptr);
  std::vector<std::string> qual_names;
  for (int q = 1; q <= quals; ++q) qual_names.push_back("q" + std::to_string(q));
  for (int64_t i = 1; i <= workers; ++i) {
    const std::string name = "w" + std::to_string(i);
    sqlite3_bind_int64(w, 1, i);
    sqlite3_bind_text(w, 2, name.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(w) != SQLITE_DONE) Die(Status::Internal(sqlite3_errmsg(h)), "insert worker");
    sqlite3_reset(w);
    for (int k = 0; k < per_worker; ++k) {
      const std::string& qn = qual_names[static_cast<size_t>((i + k) % quals)];
      sqlite3_bind_int64(g, 1, i);
      sqlite3_bind_text(g, 2, qn.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_int64(g, 3, (i * 7 + k) % 100);
      if (sqlite3_step(g) != SQLITE_DONE) Die(Status::Internal(sqlite3_errmsg(h)), "insert grant");
      sqlite3_reset(g);
    }
  }
  sqlite3_finalize(w);
  sqlite3_finalize(g);
  exec("COMMIT");
  sqlite3_close(h);
}

}  // namespace crowdgate::bench
