// PgStore: runs, units and agents (the task server's side). See pg_store.hpp for the contract and
// pg_store.cpp for the plumbing and the schema.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "store/outbox_rows.hpp"
#include "store/record_words.hpp"
#include "store/postgres/pg_internal.hpp"
#include "store/postgres/pg_store.hpp"

namespace crowdgate {

using pg_internal::Args;
using pg_internal::Int;
using pg_internal::kProgressEvery;
using pg_internal::OptInt;
using pg_internal::PgArray;
using pg_internal::Sql;
using pg_internal::Text;
using pg_internal::Tx;

namespace {

// Items per INSERT in CreateRun, and a bound on the bytes of one array parameter.
constexpr size_t kItemChunk = 5000;
constexpr size_t kItemChunkBytes = 16 << 20;

#define CG_PG_RUN_SELECT                                                                       \
  "SELECT id, task_name, config_json, status, created_at, num_items, num_units, gold_served, " \
  "screening_served, provider_state FROM runs "
#define CG_PG_AGENT_SELECT                                                                                      \
  "SELECT a.id, a.token_hash, r.id, a.unit_id, a.worker_id, w.provider, w.name, a.kind, a.status, "            \
  "a.item_index, a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result " \
  "FROM agents a JOIN runs r ON r.rid = a.run JOIN workers w ON w.id = a.worker_id "
#define CG_PG_AGENT_COLUMNS                                                                                  \
  "id, token_hash, run, unit_id, worker_id, kind, status, item_index, session, eval_set, created_at, deadline, " \
  "submitted_at, data_json, check_result"

constexpr Sql kRunRid{"cg_run_rid", "SELECT rid FROM runs WHERE id = $1"};
constexpr Sql kWorkerCheck{"cg_worker_check", "SELECT provider, name FROM workers WHERE id = $1"};
// ReserveUnit serialises on the worker's row: one worker asking two processes at once must not
// get two copies of one item (each would see no agent of the other yet).
constexpr Sql kWorkerLock{"cg_worker_lock", "SELECT provider, name FROM workers WHERE id = $1 FOR NO KEY UPDATE"};
constexpr Sql kRunInsert{"cg_run_insert",
                         "INSERT INTO runs (id, task_name, config_json, status, created_at, num_items, num_units, "
                         "gold_served, screening_served, provider_state) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                         "ON CONFLICT (id) DO NOTHING RETURNING rid"};
constexpr Sql kItemsInsert{"cg_items_insert",
                           "INSERT INTO items (run, item_index, data_json) "
                           "SELECT $1::bigint, $2::bigint + t.ord - 1, t.data_json "
                           "FROM unnest($3::text[]) WITH ORDINALITY AS t (data_json, ord)"};
// Item-major, as SQLite: (item 0, copy 0), (item 0, copy 1), ... get increasing ids.
constexpr Sql kUnitsInsert{"cg_units_insert",
                           "INSERT INTO units (run, kind, item_index, copy_index, status) "
                           "SELECT $1::bigint, 'unit', i, c, 'launched' "
                           "FROM generate_series(0::bigint, $2::bigint - 1) AS i, "
                           "generate_series(0::bigint, $3::bigint - 1) AS c ORDER BY i, c"};
constexpr Sql kRunGet{"cg_run_get", CG_PG_RUN_SELECT "WHERE id = $1"};
constexpr Sql kRunList{"cg_run_list", CG_PG_RUN_SELECT "ORDER BY created_at, rid"};
constexpr Sql kRunSetStatus{"cg_run_set_status", "UPDATE runs SET status = $2 WHERE rid = $1"};
constexpr Sql kRunSetProviderState{"cg_run_set_provider_state", "UPDATE runs SET provider_state = $2 WHERE rid = $1"};
constexpr Sql kItemGet{"cg_item_get", "SELECT data_json FROM items WHERE run = $1 AND item_index = $2"};
constexpr Sql kAgentInsert{"cg_agent_insert",
                           "INSERT INTO agents (" CG_PG_AGENT_COLUMNS ") "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"};
// Picks the oldest launched unit whose item this worker never held in this run, skipping units
// another transaction is reserving right now, assigns it and inserts the agent: one statement.
// "ORDER BY u.id + 0": only units_to_serve gives that order, so no plan walks units_pkey past the
// units already taken (see migration 4).
constexpr Sql kReserveUnit{
    "cg_reserve_unit",
    "WITH pick AS (SELECT u.id, u.item_index FROM units u "
    "WHERE u.run = $1::bigint AND u.status = 'launched' AND u.kind = 'unit' AND NOT EXISTS ("
    "SELECT 1 FROM agents a WHERE a.run = $1::bigint AND a.worker_id = $2::bigint AND a.kind = 'unit' "
    "AND a.item_index = u.item_index) ORDER BY u.id + 0 LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED), "
    "upd AS (UPDATE units u SET status = 'assigned', worker_id = $2::bigint, agent_id = $3::text FROM pick "
    "WHERE u.id = pick.id RETURNING u.id, u.item_index), "
    "ins AS (INSERT INTO agents (" CG_PG_AGENT_COLUMNS ") "
    "SELECT $3::text, $4::text, $1::bigint, upd.id, $2::bigint, 'unit', $5::text, upd.item_index, $6::text, "
    "$7::text, $8::bigint, $9::bigint, $10::bigint, $11::text, $12::text FROM upd RETURNING unit_id, item_index) "
    // The unit's item comes back with it: no second round trip for the work response.
    "SELECT ins.unit_id, ins.item_index, i.data_json FROM ins "
    "JOIN items i ON i.run = $1::bigint AND i.item_index = ins.item_index"};
// The caps: a conditional counter update, so concurrent servers can never overrun them.
constexpr Sql kCountGold{"cg_count_gold",
                         "UPDATE runs SET gold_served = gold_served + 1 WHERE rid = $1 AND gold_served < $2 "
                         "RETURNING gold_served"};
constexpr Sql kCountScreening{"cg_count_screening",
                              "UPDATE runs SET screening_served = screening_served + 1 "
                              "WHERE rid = $1 AND screening_served < $2 RETURNING screening_served"};
constexpr Sql kEvalUnitInsert{
    "cg_eval_unit_insert",
    "WITH u AS (INSERT INTO units (run, kind, item_index, copy_index, status, worker_id, agent_id) "
    "VALUES ($1::bigint, $2::text, $3::bigint, 0, 'assigned', $4::bigint, $5::text) RETURNING id) "
    "INSERT INTO agents (" CG_PG_AGENT_COLUMNS ") "
    "SELECT $5::text, $6::text, $1::bigint, u.id, $4::bigint, $2::text, $7::text, $3::bigint, $8::text, $9::text, "
    "$10::bigint, $11::bigint, $12::bigint, $13::text, $14::text FROM u RETURNING unit_id"};
constexpr Sql kGoldSeenInsert{"cg_gold_seen_insert",
                              "INSERT INTO golds_seen (worker_id, gold_set, item_index) VALUES ($1, $2, $3) "
                              "ON CONFLICT DO NOTHING"};
constexpr Sql kAgentGet{"cg_agent_get", CG_PG_AGENT_SELECT "WHERE a.id = $1"};
constexpr Sql kOpenAgents{"cg_open_agents", CG_PG_AGENT_SELECT
                          "WHERE a.run = $1 AND a.worker_id = $2 AND a.status IN ('in_task', 'onboarding') "
                          "ORDER BY a.seq"};
constexpr Sql kOpenAgentsOfSession{"cg_open_agents_of_session", CG_PG_AGENT_SELECT
                                   "WHERE a.run = $1 AND a.status IN ('in_task', 'onboarding') AND a.session = $2 "
                                   "ORDER BY a.seq"};
constexpr Sql kCountSessionSubmissions{"cg_count_session_submissions",
                                       "SELECT COUNT(*) FROM agents WHERE run = $1 AND worker_id = $2 AND "
                                       "kind IN ('unit', 'gold', 'screening') AND session = $3 AND "
                                       "submitted_at IS NOT NULL"};
constexpr Sql kOverdueAgents{"cg_overdue_agents", CG_PG_AGENT_SELECT
                             "WHERE a.status IN ('in_task', 'onboarding') AND a.deadline <= $1 "
                             "ORDER BY a.deadline, a.seq"};
// The check-and-set that makes a double submit (or a submit racing a timeout, in another process)
// impossible: a concurrent finisher waits for our row lock, then finds the status changed.
// The unit's new status ($7, when not NULL) is set in the same statement: one round trip per submit.
constexpr Sql kFinishAgent{"cg_finish_agent",
                           "WITH a AS (UPDATE agents SET status = $2, data_json = COALESCE($3, data_json), "
                           "submitted_at = COALESCE($4, submitted_at), check_result = $5 "
                           "WHERE id = $1 AND status = $6 RETURNING run, unit_id), "
                           "u AS (UPDATE units SET status = $7::text FROM a WHERE $7::text IS NOT NULL AND "
                           "units.id = a.unit_id) "
                           "SELECT run, unit_id FROM a"};
// A quality rule's reject_units: the unit (still completed) and its agent become rejected, and a
// new launched copy of the item goes back into the pool.
constexpr Sql kRejectForRelabel{
    "cg_reject_for_relabel",
    "WITH upd AS (UPDATE units SET status = 'rejected' WHERE id = $1 AND run = $2 AND kind = 'unit' AND "
    "status = 'completed' RETURNING agent_id, item_index), "
    "ag AS (UPDATE agents SET status = 'rejected' WHERE id IN (SELECT agent_id FROM upd) AND status = 'completed'), "
    "ins AS (INSERT INTO units (run, kind, item_index, copy_index, status) "
    "SELECT $2, 'unit', upd.item_index, (SELECT COALESCE(MAX(u.copy_index), -1) + 1 FROM units u "
    "WHERE u.run = $2 AND u.kind = 'unit' AND u.item_index = upd.item_index), 'launched' FROM upd RETURNING id) "
    "UPDATE runs SET num_units = num_units + (SELECT COUNT(*) FROM ins) WHERE rid = $2"};
constexpr Sql kAgentStatus{"cg_agent_status", "SELECT status FROM agents WHERE id = $1"};
constexpr Sql kReleaseUnit{"cg_release_unit",
                           "UPDATE units SET status = 'launched', worker_id = NULL, agent_id = NULL "
                           "WHERE id = $1 AND agent_id = $2"};
constexpr Sql kRefundSlots{"cg_refund_slots",
                           "UPDATE runs SET gold_served = GREATEST(gold_served - $2, 0), "
                           "screening_served = GREATEST(screening_served - $3, 0) WHERE rid = $1"};
constexpr Sql kGoldsSeen{"cg_golds_seen",
                         "SELECT item_index FROM golds_seen WHERE worker_id = $1 AND gold_set = $2 "
                         "ORDER BY item_index"};
constexpr Sql kForgetGoldsSeen{"cg_forget_golds_seen", "DELETE FROM golds_seen WHERE worker_id = $1 AND gold_set = $2"};
constexpr Sql kRecentGoldResults{"cg_recent_gold_results",
                                 "SELECT check_result FROM agents WHERE worker_id = $1 AND eval_set = $2 AND "
                                 "kind = 'gold' AND check_result IN ('pass', 'fail') ORDER BY seq DESC LIMIT $3"};
constexpr Sql kCountWorkerUnits{"cg_count_worker_units",
                                "SELECT COUNT(*) FROM units u JOIN runs r ON r.rid = u.run "
                                "WHERE u.worker_id = $2 AND r.task_name = $1 AND u.kind = 'unit' AND "
                                "u.status IN ('assigned', 'completed', 'accepted', 'rejected', 'soft_rejected')"};
constexpr Sql kRunAgents{"cg_run_agents", CG_PG_AGENT_SELECT "WHERE a.run = $1 ORDER BY a.seq"};
constexpr Sql kUnitStatusCounts{"cg_unit_status_counts",
                                "SELECT status, COUNT(*) FROM units WHERE run = $1 AND kind = 'unit' "
                                "GROUP BY status ORDER BY status COLLATE \"C\""};
// Units change only from a submitted (or reviewed) status to another one; the agent that submitted
// each changed unit follows (accepted -> approved).
constexpr Sql kReviewUnits{
    "cg_review_units",
    "WITH upd AS (UPDATE units SET status = $3 WHERE id = ANY($1::bigint[]) AND run = $2 AND "
    "status IN ('completed', 'accepted', 'rejected', 'soft_rejected') AND status <> $3 RETURNING agent_id), "
    "ag AS (UPDATE agents SET status = $4 WHERE id IN (SELECT agent_id FROM upd) AND "
    "status IN ('completed', 'approved', 'rejected', 'soft_rejected')) "
    "SELECT COUNT(*) FROM upd"};

RunRecord ReadRun(const pqxx::row& r) {
  RunRecord run;
  run.id = Text(r[0]);
  run.task_name = Text(r[1]);
  run.config_json = Text(r[2]);
  run.status = store_words::FromColumnOrThrow(&ParseRunStatus, "runs.status", Text(r[3]));
  run.created_at = Int(r[4]);
  run.num_items = Int(r[5]);
  run.num_units = Int(r[6]);
  run.gold_served = Int(r[7]);
  run.screening_served = Int(r[8]);
  run.provider_state_json = Text(r[9]);
  return run;
}

AgentRecord ReadAgent(const pqxx::row& r) {
  AgentRecord a;
  a.id = Text(r[0]);
  a.token_hash = Text(r[1]);
  a.run_id = Text(r[2]);
  a.unit_id = OptInt(r[3]);
  a.worker_id = Int(r[4]);
  a.worker = WorkerRef{Text(r[5]), Text(r[6])};
  a.kind = store_words::FromColumnOrThrow(&ParseAgentKind, "agents.kind", Text(r[7]));
  a.status = store_words::FromColumnOrThrow(&ParseAgentStatus, "agents.status", Text(r[8]));
  a.item_index = Int(r[9]);
  a.session = Text(r[10]);
  a.eval_set = Text(r[11]);
  a.created_at = Int(r[12]);
  a.deadline = Int(r[13]);
  a.submitted_at = OptInt(r[14]);
  a.data_json = Text(r[15]);
  a.check_result = Text(r[16]);
  return a;
}

std::vector<AgentRecord> ReadAgents(const pqxx::result& r) {
  std::vector<AgentRecord> out;
  out.reserve(r.size());
  for (const pqxx::row& row : r) out.push_back(ReadAgent(row));
  return out;
}

Status AgentExists(const std::string& id) { return Status::Conflict("agent '" + id + "' already exists"); }

}  // namespace

const char* pg_internal::ReserveUnitSqlText() { return kReserveUnit.text; }

// The columns of CG_PG_AGENT_SELECT, from the worker's row outwards: a worker without open agents
// still gives one row (its agent columns NULL), so one statement says who they are and what they hold.
const Sql pg_internal::kDecisionOpenAgents{
    "cg_decision_open_agents",
    "SELECT a.id, a.token_hash, r.id, a.unit_id, w.id, w.provider, w.name, a.kind, a.status, a.item_index, "
    "a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result "
    "FROM workers w LEFT JOIN agents a ON a.worker_id = w.id AND a.run = $1 AND "
    "a.status IN ('in_task', 'onboarding') LEFT JOIN runs r ON r.rid = a.run WHERE w.id = $2 ORDER BY a.seq"};

std::optional<pg_internal::DecisionOpenAgents> pg_internal::ReadDecisionOpenAgents(const pqxx::result& r) {
  if (r.empty()) return std::nullopt;
  DecisionOpenAgents out;
  out.worker = WorkerRef{Text(r[0][5]), Text(r[0][6])};
  for (const pqxx::row& row : r) {
    if (!row[0].is_null()) out.agents.push_back(ReadAgent(row));
  }
  return out;
}

// ---- helpers -------------------------------------------------------------------------------------
Result<int64_t> PgStore::RunRowId(Tx& tx, const std::string& run_id) {
  auto it = run_rids_.find(run_id);
  if (it != run_rids_.end()) return it->second;
  pqxx::result r = tx.Run(kRunRid, Args(run_id));
  if (r.empty()) return Status::NotFound("run '" + run_id + "' does not exist");
  const int64_t rid = Int(r[0][0]);
  run_rids_.emplace(run_id, rid);
  return rid;
}

Status PgStore::CheckWorkerExists(Tx& tx, WorkerId worker, WorkerRef* ref) {
  if (const WorkerRef* locked = LockedWorker(worker)) {  // the open decision read it: no round trip
    if (ref != nullptr) *ref = *locked;
    return Status::Ok();
  }
  pqxx::result r = tx.Run(kWorkerCheck, Args(worker));
  if (r.empty()) return Status::NotFound("worker id " + std::to_string(worker) + " does not exist");
  if (ref != nullptr) *ref = WorkerRef{Text(r[0][0]), Text(r[0][1])};
  return Status::Ok();
}

Status PgStore::InsertAgent(Tx& tx, const AgentRecord& a, int64_t run_rowid) {
  try {
    tx.Run(kAgentInsert, Args(a.id, a.token_hash, run_rowid, a.unit_id, a.worker_id, ToString(a.kind), ToString(a.status), a.item_index,
                              a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json,
                              a.check_result));
  } catch (const pqxx::unique_violation&) {
    return AgentExists(a.id);
  }
  return Status::Ok();
}

// ---- runs --------------------------------------------------------------------------------------
Status PgStore::CreateRun(const RunRecord& run, const std::vector<std::string>& items_json, int units_per_item,
                          const std::function<void(size_t)>& progress) {
  if (run.id.empty()) return Status::InvalidArgument("run id is empty");
  if (units_per_item < 1) {
    return Status::InvalidArgument("units_per_item must be at least 1, got " + std::to_string(units_per_item));
  }
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    const int64_t num_items = static_cast<int64_t>(items_json.size());
    pqxx::result r = tx.Run(kRunInsert, Args(run.id, run.task_name, run.config_json, ToString(run.status),
                                             run.created_at != 0 ? run.created_at : env_->NowMicros(), num_items,
                                             num_items * units_per_item, run.gold_served, run.screening_served,
                                             run.provider_state_json.empty() ? std::string("{}")
                                                                             : run.provider_state_json));
    if (r.empty()) return Status::Conflict("run '" + run.id + "' already exists");
    const int64_t rid = Int(r[0][0]);
    size_t next_progress = kProgressEvery;
    for (size_t begin = 0; begin < items_json.size();) {
      PgArray items;
      size_t end = begin;
      while (end < items_json.size() && items.size() < kItemChunk &&
             (items.size() == 0 || items.bytes() + items_json[end].size() < kItemChunkBytes)) {
        items.Add(items_json[end]);
        ++end;
      }
      tx.Run(kItemsInsert, Args(rid, static_cast<int64_t>(begin), items));
      begin = end;
      if (progress && end >= next_progress) {
        progress(end);
        while (next_progress <= end) next_progress += kProgressEvery;
      }
    }
    tx.Run(kUnitsInsert, Args(rid, num_items, static_cast<int64_t>(units_per_item)));
    Notify(tx);  // other processes serve every open run
    if (progress) progress(items_json.size());
    return Status::Ok();
  });
}

Result<RunRecord> PgStore::GetRun(const std::string& run_id) {
  RunRecord out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    pqxx::result r = tx.Run(kRunGet, Args(run_id));
    if (r.empty()) return Status::NotFound("run '" + run_id + "' does not exist");
    out = ReadRun(r[0]);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<RunRecord>> PgStore::ListRuns() {
  std::vector<RunRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    for (const pqxx::row& row : tx.Run(kRunList)) out.push_back(ReadRun(row));
    return Status::Ok();
  }));
  return out;
}

Status PgStore::SetRunStatus(const std::string& run_id, RunStatus status) {
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    tx.Run(kRunSetStatus, Args(rid, ToString(status)));
    Notify(tx);  // another process may be serving the run
    return Status::Ok();
  });
}

Result<std::string> PgStore::GetItem(const std::string& run_id, int64_t item_index) {
  std::string out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    pqxx::result r = tx.Run(kItemGet, Args(rid, item_index));
    if (r.empty()) return Status::NotFound("run '" + run_id + "' has no item " + std::to_string(item_index));
    out = Text(r[0][0]);
    return Status::Ok();
  }));
  return out;
}

// ---- units and agents --------------------------------------------------------------------------
Result<std::optional<AgentRecord>> PgStore::ReserveUnit(const std::string& run_id, AgentRecord agent) {
  return Reserve(run_id, std::move(agent), nullptr);
}

Result<std::optional<AgentRecord>> PgStore::ReserveUnitWithItem(const std::string& run_id, AgentRecord agent,
                                                                std::string* item_json) {
  return Reserve(run_id, std::move(agent), item_json);
}

Result<std::optional<AgentRecord>> PgStore::Reserve(const std::string& run_id, AgentRecord agent,
                                                    std::string* item_json) {
  if (agent.kind != AgentKind::kUnit) return Status::InvalidArgument("ReserveUnit needs an agent of kind unit");
  std::optional<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    out.reset();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    if (const WorkerRef* locked = LockedWorker(agent.worker_id)) {  // the decision holds the row lock
      agent.worker = *locked;
    } else {
      pqxx::result w = tx.Run(kWorkerLock, Args(agent.worker_id));
      if (w.empty()) return Status::NotFound("worker id " + std::to_string(agent.worker_id) + " does not exist");
      agent.worker = WorkerRef{Text(w[0][0]), Text(w[0][1])};
    }
    pqxx::result r;
    try {
      r = tx.Run(kReserveUnit, Args(rid, agent.worker_id, agent.id, agent.token_hash, ToString(agent.status), agent.session,
                                    agent.eval_set, agent.created_at, agent.deadline, agent.submitted_at,
                                    agent.data_json, agent.check_result));
    } catch (const pqxx::unique_violation&) {
      return AgentExists(agent.id);
    }
    if (r.empty()) return Status::Ok();  // no unit left for this worker
    agent.unit_id = Int(r[0][0]);
    agent.item_index = Int(r[0][1]);
    agent.run_id = run_id;
    if (item_json != nullptr) *item_json = Text(r[0][2]);
    out = agent;
    return Status::Ok();
  }));
  return out;
}

Result<bool> PgStore::CreateEvalUnit(const std::string& run_id, AgentRecord agent, int64_t cap,
                                     const std::string& gold_set) {
  const bool gold = agent.kind == AgentKind::kGold;
  if (!gold && agent.kind != AgentKind::kScreening) {
    return Status::InvalidArgument("CreateEvalUnit needs an agent of kind gold or screening, got '" +
                                   ToString(agent.kind) + "'");
  }
  bool created = false;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    created = false;
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, agent.worker_id, &agent.worker));
    // Counting first locks the run's row until commit: a concurrent CreateEvalUnit waits, then
    // re-checks the cap against our count.
    if (tx.Run(gold ? kCountGold : kCountScreening, Args(rid, cap)).empty()) return Status::Ok();  // cap reached
    pqxx::result r;
    try {
      r = tx.Run(kEvalUnitInsert, Args(rid, ToString(agent.kind), agent.item_index, agent.worker_id, agent.id,
                                       agent.token_hash, ToString(agent.status), agent.session, agent.eval_set,
                                       agent.created_at, agent.deadline, agent.submitted_at, agent.data_json,
                                       agent.check_result));
    } catch (const pqxx::unique_violation&) {
      return AgentExists(agent.id);
    }
    agent.unit_id = Int(r[0][0]);
    agent.run_id = run_id;
    if (gold) tx.Run(kGoldSeenInsert, Args(agent.worker_id, gold_set, agent.item_index));
    created = true;
    return Status::Ok();
  }));
  return created;
}

Status PgStore::CreateOnboardingAgent(const AgentRecord& agent) {
  if (agent.unit_id) return Status::InvalidArgument("an onboarding agent has no unit");
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, agent.run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, agent.worker_id, nullptr));
    return InsertAgent(tx, agent, rid);
  });
}

Result<AgentRecord> PgStore::GetAgent(const std::string& agent_id) {
  AgentRecord out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    pqxx::result r = tx.Run(kAgentGet, Args(agent_id));
    if (r.empty()) return Status::NotFound("agent '" + agent_id + "' does not exist");
    out = ReadAgent(r[0]);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> PgStore::OpenAgents(const std::string& run_id, WorkerId worker) {
  if (std::optional<std::vector<AgentRecord>> read = TakePrefetchedOpenAgents(run_id, worker)) {
    return std::move(*read);
  }
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    out = ReadAgents(tx.Run(kOpenAgents, Args(rid, worker)));
    // An unknown worker has no agents; only then is it worth asking.
    if (out.empty()) CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> PgStore::OverdueAgents(int64_t now) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out = ReadAgents(tx.Run(kOverdueAgents, Args(now)));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AuditEntry>> PgStore::FinishAgent(const AgentFinish& finish) {
  std::vector<AuditEntry> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    out.clear();
    std::optional<std::string> unit_status;
    if (!finish.release_unit && finish.unit_status) unit_status = std::string(ToString(*finish.unit_status));
    pqxx::result r = tx.Run(kFinishAgent, Args(finish.agent_id, ToString(finish.new_status), finish.data_json,
                                               finish.submitted_at, finish.check_result,
                                               ToString(finish.expect_status), unit_status));
    if (r.empty()) {
      pqxx::result s = tx.Run(kAgentStatus, Args(finish.agent_id));
      if (s.empty()) return Status::NotFound("agent '" + finish.agent_id + "' does not exist");
      return Status::Conflict("agent '" + finish.agent_id + "' is " + Text(s[0][0]) + ", not " +
                              ToString(finish.expect_status));
    }
    const int64_t rid = Int(r[0][0]);
    const std::optional<int64_t> unit_id = OptInt(r[0][1]);
    if (unit_id && finish.release_unit) tx.Run(kReleaseUnit, Args(*unit_id, finish.agent_id));
    if (finish.refund_gold_slot || finish.refund_screening_slot) {
      tx.Run(kRefundSlots, Args(rid, finish.refund_gold_slot ? 1 : 0, finish.refund_screening_slot ? 1 : 0));
    }
    for (int64_t id : finish.reject_unit_ids) tx.Run(kRejectForRelabel, Args(id, rid));
    if (finish.grant_ops.empty()) return Status::Ok();
    LockAuditAndNotify(tx);
    return ApplyGrantOpsInTx(tx, finish.grant_ops, {}, &out);
  }));
  return out;
}

Result<std::vector<int64_t>> PgStore::GoldsSeen(WorkerId worker, const std::string& gold_set) {
  std::vector<int64_t> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    for (const pqxx::row& row : tx.Run(kGoldsSeen, Args(worker, gold_set))) out.push_back(Int(row[0]));
    return Status::Ok();
  }));
  return out;
}

Status PgStore::ForgetGoldsSeen(WorkerId worker, const std::string& gold_set) {
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    tx.Run(kForgetGoldsSeen, Args(worker, gold_set));
    return Status::Ok();
  });
}

Result<std::vector<bool>> PgStore::RecentGoldResults(WorkerId worker, const std::string& gold_set, int64_t n) {
  std::vector<bool> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    if (n <= 0) return Status::Ok();
    for (const pqxx::row& row : tx.Run(kRecentGoldResults, Args(worker, gold_set, n))) {
      out.push_back(Text(row[0]) == "pass");
    }
    std::reverse(out.begin(), out.end());
    return Status::Ok();
  }));
  return out;
}

Result<int64_t> PgStore::CountWorkerUnitsForTask(const std::string& task_name, WorkerId worker) {
  int64_t out = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    out = Int(tx.Run(kCountWorkerUnits, Args(task_name, worker))[0][0]);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> PgStore::RunAgents(const std::string& run_id) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    out = ReadAgents(tx.Run(kRunAgents, Args(rid)));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> PgStore::UnitStatusCounts(const std::string& run_id) {
  std::vector<std::pair<std::string, int64_t>> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    for (const pqxx::row& row : tx.Run(kUnitStatusCounts, Args(rid))) out.emplace_back(Text(row[0]), Int(row[1]));
    return Status::Ok();
  }));
  return out;
}

Result<int64_t> PgStore::ReviewUnits(const std::string& run_id, const std::vector<int64_t>& unit_ids,
                                     UnitStatus new_status, const std::vector<OutboxRow>& outbox) {
  const std::optional<AgentStatus> agent_status = AgentStatusAfterReview(new_status);
  if (!agent_status) {
    return Status::InvalidArgument("review status must be accepted, rejected or soft_rejected, got '" +
                                   ToString(new_status) + "'");
  }
  for (const OutboxRow& row : outbox) CG_RETURN_IF_ERROR(store_outbox::CheckNewOutboxRow(row));
  int64_t changed = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    PgArray ids;
    for (int64_t id : unit_ids) ids.Add(id);
    changed = Int(tx.Run(kReviewUnits, Args(ids, rid, ToString(new_status), ToString(*agent_status)))[0][0]);
    InsertOutbox(tx, outbox);
    return Status::Ok();
  }));
  return changed;
}

Status PgStore::SetRunProviderState(const std::string& run_id, const std::string& state_json) {
  if (!nlohmann::json::accept(state_json) || !nlohmann::json::parse(state_json).is_object()) {
    return Status::InvalidArgument("a run's provider state must be a JSON object");
  }
  return Transact(TxKind::kWrite, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    tx.Run(kRunSetProviderState, Args(rid, state_json));
    return Status::Ok();
  });
}

Result<int64_t> PgStore::CountSessionSubmissions(const std::string& run_id, WorkerId worker,
                                                 const std::string& session) {
  int64_t out = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(tx, worker, nullptr));
    out = Int(tx.Run(kCountSessionSubmissions, Args(rid, worker, session))[0][0]);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> PgStore::OpenAgentsOfSession(const std::string& run_id, const std::string& session) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    out = ReadAgents(tx.Run(kOpenAgentsOfSession, Args(rid, session)));
    return Status::Ok();
  }));
  return out;
}

}  // namespace crowdgate

// ---- requester pages: one page at a time ---------------------------------------------------------
namespace crowdgate {
namespace {

#define CG_PG_AGENT_PAGE_SELECT                                                                                 \
  "SELECT a.id, a.token_hash, r.id, a.unit_id, a.worker_id, w.provider, w.name, a.kind, a.status, "            \
  "a.item_index, a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result, " \
  "a.seq FROM agents a JOIN runs r ON r.rid = a.run JOIN workers w ON w.id = a.worker_id "
// A unit that decides a screening counts as kind "screening", as export does.
#define CG_PG_AGENT_PAGE_FILTER                                                                       \
  "AND ($3 = '' OR a.status = $3) AND ($4 = '' OR (CASE WHEN a.kind = 'unit' AND a.eval_set = "      \
  "'screening' THEN 'screening' ELSE a.kind END) = $4) ORDER BY a.seq LIMIT $5"

// agents_by_run (run, seq) walks the page from the cursor; with a worker, agents_by_run_worker.
constexpr Sql kRunAgentPage{"cg_run_agent_page",
                            CG_PG_AGENT_PAGE_SELECT "WHERE a.run = $1 AND a.seq > $2 " CG_PG_AGENT_PAGE_FILTER};
constexpr Sql kRunAgentPageOfWorker{"cg_run_agent_page_of_worker",
                                    CG_PG_AGENT_PAGE_SELECT "WHERE a.run = $1 AND a.worker_id = $6 AND a.seq > $2 "
                                                            CG_PG_AGENT_PAGE_FILTER};
constexpr Sql kRunWorkerStats{
    "cg_run_worker_stats",
    "SELECT a.worker_id, w.provider, w.name, "
    "COUNT(*) FILTER (WHERE a.kind = 'unit' AND a.eval_set <> 'screening' AND a.submitted_at IS NOT NULL), "
    "COUNT(*) FILTER (WHERE a.status IN ('in_task', 'onboarding')), "
    "COUNT(*) FILTER (WHERE a.kind = 'gold' AND a.check_result = 'pass'), "
    "COUNT(*) FILTER (WHERE a.kind = 'gold' AND a.check_result = 'fail'), "
    "COUNT(*) FILTER (WHERE (a.kind = 'screening' OR a.eval_set = 'screening') AND a.check_result = 'pass'), "
    "COUNT(*) FILTER (WHERE (a.kind = 'screening' OR a.eval_set = 'screening') AND a.check_result = 'fail'), "
    "(SELECT o.status FROM agents o WHERE o.run = $1 AND o.worker_id = a.worker_id AND o.kind = 'onboarding' "
    "ORDER BY o.seq DESC LIMIT 1), "
    "COALESCE(SUM(a.submitted_at - a.created_at) FILTER (WHERE a.kind = 'unit' AND a.eval_set <> 'screening' AND "
    "a.submitted_at IS NOT NULL), 0)::BIGINT, "
    "MIN(a.created_at), GREATEST(MAX(a.created_at), COALESCE(MAX(a.submitted_at), 0)) "
    "FROM agents a JOIN workers w ON w.id = a.worker_id WHERE a.run = $1 AND a.worker_id > $2 "
    "GROUP BY a.worker_id, w.provider, w.name ORDER BY a.worker_id LIMIT $3"};
constexpr Sql kRunThroughput{"cg_run_throughput",
                             "SELECT (a.submitted_at / $2) * $2 AS b, COUNT(*) FROM agents a "
                             "WHERE a.run = $1 AND a.submitted_at IS NOT NULL AND a.submitted_at >= $3 "
                             "GROUP BY b ORDER BY b"};

}  // namespace

Result<AgentPage> PgStore::ListRunAgents(const std::string& run_id, const AgentFilter& filter, int64_t cursor,
                                         int64_t limit) {
  AgentPage page;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    page = AgentPage{};
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    Args args(rid, cursor, filter.status, filter.kind, limit);
    if (filter.worker) args.Add(*filter.worker);
    const pqxx::result rows = tx.Run(filter.worker ? kRunAgentPageOfWorker : kRunAgentPage, args);
    int64_t last = 0;
    for (const pqxx::row& row : rows) {
      page.agents.push_back(ReadAgent(row));
      last = Int(row[17]);
    }
    if (static_cast<int64_t>(page.agents.size()) == limit) page.next_cursor = last;
    return Status::Ok();
  }));
  return page;
}

Result<std::vector<WorkerRunStats>> PgStore::ListRunWorkerStats(const std::string& run_id, WorkerId after_worker,
                                                                int64_t limit) {
  std::vector<WorkerRunStats> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    for (const pqxx::row& row : tx.Run(kRunWorkerStats, Args(rid, after_worker, limit))) {
      WorkerRunStats s;
      s.worker_id = Int(row[0]);
      s.worker = WorkerRef{Text(row[1]), Text(row[2])};
      s.units_submitted = Int(row[3]);
      s.units_open = Int(row[4]);
      s.golds_right = Int(row[5]);
      s.golds_wrong = Int(row[6]);
      s.screening_passed = Int(row[7]);
      s.screening_failed = Int(row[8]);
      s.onboarding = row[9].is_null() ? std::string() : Text(row[9]);
      s.unit_seconds_total_micros = Int(row[10]);
      s.first_seen = Int(row[11]);
      s.last_seen = Int(row[12]);
      out.push_back(std::move(s));
    }
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<std::pair<int64_t, int64_t>>> PgStore::RunThroughput(const std::string& run_id,
                                                                        int64_t bucket_micros, int64_t since) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (bucket_micros <= 0) return Status::InvalidArgument("throughput bucket must be above 0");
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&](Tx& tx) -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(tx, run_id));
    for (const pqxx::row& row : tx.Run(kRunThroughput, Args(rid, bucket_micros, since))) {
      out.emplace_back(Int(row[0]), Int(row[1]));
    }
    return Status::Ok();
  }));
  return out;
}

}  // namespace crowdgate
