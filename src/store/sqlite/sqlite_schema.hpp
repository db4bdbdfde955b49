// The SQLite backend's schema: the migrations SqliteStore::Migrate applies, in order (included by
// sqlite_store.cpp only).
#pragma once

namespace crowdgate::sqlite_schema {

// ---- schema ------------------------------------------------------------------------------------
// Runs are referenced by an integer key (runs.rid) rather than their 20-character public id, which
// keeps the units/items/agents rows and their indexes small for runs of a million units.
//
// Indexes, and the queries they serve:
//  grants_by_qual            GrantsForQualification, CountGrants (covering: qual_id, expires_at, pk)
//  audit_by_worker           History with a worker filter. (History by qualification alone scans the
//                            log: it is a rare admin query, and one index less makes bulk grants faster.)
//  units_by_run_status       ReserveUnit (run, 'launched', 'unit', lowest id), UnitStatusCounts
//  units_by_worker           CountWorkerUnitsForTask (partial: only units someone holds)
//  agents_by_run_worker      ReserveUnit's "never held this item" NOT EXISTS probe, OpenAgents, RunAgents
//  agents_open_by_deadline   OverdueAgents (partial: open agents only)
//  agents_scored_gold        RecentGoldResults (partial: scored gold agents only)
inline constexpr const char* kMigration1 = R"sql(
CREATE TABLE workers (
  id         INTEGER PRIMARY KEY,
  provider   TEXT NOT NULL,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (provider, name)
);
-- AUTOINCREMENT: a deleted qualification's id is never reused, so a cache or a compiled
-- requirement holding the old id can never silently match a new qualification.
CREATE TABLE qualifications (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE TABLE grants (
  worker_id  INTEGER NOT NULL REFERENCES workers (id),
  qual_id    INTEGER NOT NULL REFERENCES qualifications (id),
  value      INTEGER NOT NULL,
  granted_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER,
  actor      TEXT NOT NULL,
  PRIMARY KEY (worker_id, qual_id)
) WITHOUT ROWID;
CREATE INDEX grants_by_qual ON grants (qual_id, expires_at);
-- The audit log keeps ids and the qualification's name without foreign keys: history outlives
-- deleted qualifications. worker_id is NULL for qualification_deleted.
CREATE TABLE audit (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  at             INTEGER NOT NULL,
  kind           TEXT NOT NULL CHECK (kind IN ('grant', 'change', 'revoke', 'qualification_deleted')),
  worker_id      INTEGER,
  qual_id        INTEGER NOT NULL,
  qualification  TEXT NOT NULL,
  old_value      INTEGER,
  new_value      INTEGER,
  new_expires_at INTEGER,
  actor          TEXT NOT NULL,
  reason         TEXT NOT NULL
);
CREATE INDEX audit_by_worker ON audit (worker_id, seq);
CREATE TABLE runs (
  rid              INTEGER PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  task_name        TEXT NOT NULL,
  config_json      TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  created_at       INTEGER NOT NULL,
  num_items        INTEGER NOT NULL,
  num_units        INTEGER NOT NULL,
  gold_served      INTEGER NOT NULL DEFAULT 0 CHECK (gold_served >= 0),
  screening_served INTEGER NOT NULL DEFAULT 0 CHECK (screening_served >= 0)
);
CREATE INDEX runs_by_task ON runs (task_name);
CREATE TABLE items (
  run        INTEGER NOT NULL REFERENCES runs (rid),
  item_index INTEGER NOT NULL,
  data_json  TEXT NOT NULL,
  PRIMARY KEY (run, item_index)
);
CREATE TABLE units (
  id         INTEGER PRIMARY KEY,
  run        INTEGER NOT NULL REFERENCES runs (rid),
  kind       TEXT NOT NULL CHECK (kind IN ('unit', 'gold', 'screening')),
  item_index INTEGER NOT NULL,
  copy_index INTEGER NOT NULL,
  status     TEXT NOT NULL,
  worker_id  INTEGER REFERENCES workers (id),
  agent_id   TEXT
);
CREATE INDEX units_by_run_status ON units (run, status, kind, id);
CREATE INDEX units_by_worker ON units (worker_id, run) WHERE worker_id IS NOT NULL;
CREATE TABLE agents (
  id           TEXT NOT NULL UNIQUE,
  token_hash   TEXT NOT NULL,
  run          INTEGER NOT NULL REFERENCES runs (rid),
  unit_id      INTEGER REFERENCES units (id),
  worker_id    INTEGER NOT NULL REFERENCES workers (id),
  kind         TEXT NOT NULL CHECK (kind IN ('unit', 'gold', 'screening', 'onboarding')),
  status       TEXT NOT NULL,
  item_index   INTEGER NOT NULL,
  session      TEXT NOT NULL,
  eval_set     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  deadline     INTEGER NOT NULL,
  submitted_at INTEGER,
  data_json    TEXT NOT NULL,
  check_result TEXT NOT NULL
);
CREATE INDEX agents_by_run_worker ON agents (run, worker_id, kind, item_index);
CREATE INDEX agents_open_by_deadline ON agents (deadline) WHERE status IN ('in_task', 'onboarding');
CREATE INDEX agents_scored_gold ON agents (worker_id, eval_set)
  WHERE kind = 'gold' AND check_result IN ('pass', 'fail');
CREATE TABLE golds_seen (
  worker_id  INTEGER NOT NULL REFERENCES workers (id),
  gold_set   TEXT NOT NULL,
  item_index INTEGER NOT NULL,
  PRIMARY KEY (worker_id, gold_set, item_index)
) WITHOUT ROWID;
)sql";

// Migration 2: OpenAgents, asked on every work request, walked every agent the worker
// ever had in the run (agents_by_run_worker), so a worker's requests slowed as their history grew.
inline constexpr const char* kMigration2 = R"sql(
CREATE INDEX agents_open_by_run_worker ON agents (run, worker_id) WHERE status IN ('in_task', 'onboarding');
)sql";

// Migration 3: the provider outbox, database secrets and what a run's provider created for it.
//  outbox_due                  CountOutbox, ListOutbox by state
//  outbox_undelivered          ClaimOutbox's walk in id order (partial: pending and retrying only,
//                              so delivered rows, however many, cost nothing)
//  outbox_undelivered_by_key   ClaimOutbox's head-of-key test: the first undelivered row of the key
// AUTOINCREMENT: ids only ever grow, so "after id N" (ListOutbox) and delivery order stay meaningful.
inline constexpr const char* kMigration3 = R"sql(
ALTER TABLE runs ADD COLUMN provider_state TEXT NOT NULL DEFAULT '{}';
CREATE TABLE secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  provider        TEXT NOT NULL,
  kind            TEXT NOT NULL,
  run_id          TEXT NOT NULL,
  order_key       TEXT NOT NULL,
  payload_json    TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('pending', 'retrying', 'done', 'failed')),
  attempts        INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT NOT NULL,
  progress_json   TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  claimed_by      TEXT NOT NULL,
  claimed_until   INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, id);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE state IN ('pending', 'retrying');
CREATE INDEX outbox_undelivered_by_key ON outbox (order_key, id) WHERE state IN ('pending', 'retrying');
)sql";

// Migration 4: the dashboard's throughput series reads only the newest submissions of a run
// (RunThroughput with `since`), not every agent of it.
inline constexpr const char* kMigration4 = R"sql(
CREATE INDEX agents_submitted_by_run ON agents (run, submitted_at) WHERE submitted_at IS NOT NULL;
)sql";

// Ordered; entry i upgrades version i to i + 1. Never edit a shipped migration: append one.
inline constexpr const char* kMigrations[] = {kMigration1, kMigration2, kMigration3, kMigration4};

}  // namespace crowdgate::sqlite_schema
