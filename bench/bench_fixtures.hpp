// Fixtures of the in-process workloads (crowdgate_bench): set-up, not measured.
#pragma once

#include <cstdint>
#include <string>

namespace crowdgate::bench {

// Writes a run config (static_html, 1 unit per item, label answers) with `items` items into dir;
// returns the config's path. With golds, every gold's answer is {"label": "x"}, which is what
// every simulated worker answers. `requirements` qualifications q1..qN >= 0 are required.
std::string WriteRunConfig(const std::string& dir, int64_t items, bool golds, int requirements);

// Creates qualifications q1..q`quals` and `workers` workers w1..wN holding `per_worker` of them
// (values 0..99), written straight into SQLite in one transaction.
void PopulateWorkers(const std::string& db, int64_t workers, int quals, int per_worker);

}  // namespace crowdgate::bench
