// SqliteStore: runs, units and agents (the task server's side). See sqlite_store.hpp for the contract
// and sqlite_store.cpp for the plumbing.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/record_words.hpp"
#include "store/sqlite/sqlite_internal.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace crowdgate {

using sqlite_internal::kItemBatch;
using sqlite_internal::kProgressEvery;
using sqlite_internal::ReadAgent;

namespace {

// "INSERT INTO items ... VALUES (?1, ?2, ?3), (?1, ?4, ?5), ...": ?1 is the run.
std::string_view ItemBatchSql() {
  static const std::string sql = [] {
    std::string s = "INSERT INTO items (run, item_index, data_json) VALUES ";
    for (int r = 0; r < kItemBatch; ++r) {
      s += (r == 0 ? "(?1, ?" : ", (?1, ?") + std::to_string(2 * r + 2) + ", ?" + std::to_string(2 * r + 3) + ")";
    }
    return s;
  }();
  return sql;
}

Result<RunRecord> ReadRun(const SqliteQuery& q) {
  RunRecord r;
  r.id = q.Text(0);
  r.task_name = q.Text(1);
  r.config_json = q.Text(2);
  CG_ASSIGN_OR_RETURN(r.status, store_words::FromColumn(&ParseRunStatus, "runs.status", q.Text(3)));
  r.created_at = q.Int(4);
  r.num_items = q.Int(5);
  r.num_units = q.Int(6);
  r.gold_served = q.Int(7);
  r.screening_served = q.Int(8);
  r.provider_state_json = q.Text(9);
  return r;
}

}  // namespace

Result<AgentRecord> sqlite_internal::ReadAgent(const SqliteQuery& q) {
  AgentRecord a;
  a.id = q.Text(0);
  a.token_hash = q.Text(1);
  a.run_id = q.Text(2);
  a.unit_id = q.OptInt(3);
  a.worker_id = q.Int(4);
  a.worker = WorkerRef{q.Text(5), q.Text(6)};
  CG_ASSIGN_OR_RETURN(a.kind, store_words::FromColumn(&ParseAgentKind, "agents.kind", q.Text(7)));
  CG_ASSIGN_OR_RETURN(a.status, store_words::FromColumn(&ParseAgentStatus, "agents.status", q.Text(8)));
  a.item_index = q.Int(9);
  a.session = q.Text(10);
  a.eval_set = q.Text(11);
  a.created_at = q.Int(12);
  a.deadline = q.Int(13);
  a.submitted_at = q.OptInt(14);
  a.data_json = q.Text(15);
  a.check_result = q.Text(16);
  return a;
}

// ---- runs --------------------------------------------------------------------------------------
Status SqliteStore::CreateRun(const RunRecord& run, const std::vector<std::string>& items_json, int units_per_item,
                              const std::function<void(size_t)>& progress) {
  if (run.id.empty()) return Status::InvalidArgument("run id is empty");
  if (units_per_item < 1) {
    return Status::InvalidArgument("units_per_item must be at least 1, got " + std::to_string(units_per_item));
  }
  return Transact(TxKind::kWrite, [&]() -> Status {
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT 1 FROM runs WHERE id = ?1"));
      q.Bind(1, run.id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (row) return Status::Conflict("run '" + run.id + "' already exists");
    }
    const int64_t num_items = static_cast<int64_t>(items_json.size());
    int64_t rid = 0;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO runs (id, task_name, config_json, status, created_at, "
                                               "num_items, num_units, gold_served, screening_served, provider_state) "
                                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
      q.Bind(1, run.id).Bind(2, run.task_name).Bind(3, run.config_json).Bind(4, ToString(run.status));
      q.Bind(5, run.created_at != 0 ? run.created_at : env_->NowMicros()).Bind(6, num_items);
      q.Bind(7, num_items * units_per_item).Bind(8, run.gold_served).Bind(9, run.screening_served);
      q.Bind(10, run.provider_state_json.empty() ? std::string_view("{}") : std::string_view(run.provider_state_json));
      CG_RETURN_IF_ERROR(q.Run());
      rid = sqlite3_last_insert_rowid(db_);
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery batch_q, Query(ItemBatchSql()));
      CG_ASSIGN_OR_RETURN(SqliteQuery item_q,
                          Query("INSERT INTO items (run, item_index, data_json) VALUES (?1, ?2, ?3)"));
      batch_q.Bind(1, rid);
      item_q.Bind(1, rid);
      int64_t i = 0;
      int64_t next_progress = static_cast<int64_t>(kProgressEvery);
      for (; num_items - i >= kItemBatch; i += kItemBatch) {
        for (int r = 0; r < kItemBatch; ++r) {
          batch_q.Bind(2 * r + 2, i + r).Bind(2 * r + 3, items_json[static_cast<size_t>(i + r)]);
        }
        CG_RETURN_IF_ERROR(batch_q.Run());
        batch_q.ResetKeepBindings();
        if (progress && i + kItemBatch >= next_progress) {
          progress(static_cast<size_t>(i + kItemBatch));
          next_progress += static_cast<int64_t>(kProgressEvery);
        }
      }
      for (; i < num_items; ++i) {
        CG_RETURN_IF_ERROR(item_q.Bind(2, i).Bind(3, items_json[static_cast<size_t>(i)]).Run());
        item_q.ResetKeepBindings();
      }
    }
    // Units are made from the items in one statement, item-major: (item 0, copy 0), (item 0, copy 1), ...
    CG_ASSIGN_OR_RETURN(SqliteQuery unit_q,
                        Query("WITH RECURSIVE copies (c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM copies WHERE "
                              "c + 1 < ?2) INSERT INTO units (run, kind, item_index, copy_index, status) "
                              "SELECT ?1, 'unit', i.item_index, copies.c, 'launched' FROM items i, copies "
                              "WHERE i.run = ?1 ORDER BY i.item_index, copies.c"));
    CG_RETURN_IF_ERROR(unit_q.Bind(1, rid).Bind(2, units_per_item).Run());
    if (progress) progress(items_json.size());
    return Status::Ok();
  });
}

Result<RunRecord> SqliteStore::GetRun(const std::string& run_id) {
  RunRecord out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_RUN_SELECT "WHERE id = ?1"));
    q.Bind(1, run_id);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("run '" + run_id + "' does not exist");
    CG_ASSIGN_OR_RETURN(out, ReadRun(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<RunRecord>> SqliteStore::ListRuns() {
  std::vector<RunRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_RUN_SELECT "ORDER BY created_at, rid"));
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      CG_ASSIGN_OR_RETURN(RunRecord r, ReadRun(q));
      out.push_back(std::move(r));
    }
  }));
  return out;
}

Status SqliteStore::SetRunStatus(const std::string& run_id, RunStatus status) {
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE runs SET status = ?2 WHERE rid = ?1"));
    return q.Bind(1, rid).Bind(2, ToString(status)).Run();
  });
}

Result<std::string> SqliteStore::GetItem(const std::string& run_id, int64_t item_index) {
  std::string out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT data_json FROM items WHERE run = ?1 AND item_index = ?2"));
    q.Bind(1, rid).Bind(2, item_index);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("run '" + run_id + "' has no item " + std::to_string(item_index));
    out = q.Text(0);
    return Status::Ok();
  }));
  return out;
}

// ---- units and agents --------------------------------------------------------------------------
Status SqliteStore::InsertAgent(const AgentRecord& a, int64_t run_rowid) {
  CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO agents (id, token_hash, run, unit_id, worker_id, kind, "
                                           "status, item_index, session, eval_set, created_at, deadline, "
                                           "submitted_at, data_json, check_result) "
                                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                                           "?15)"));
  q.Bind(1, a.id).Bind(2, a.token_hash).Bind(3, run_rowid).Bind(4, a.unit_id).Bind(5, a.worker_id);
  q.Bind(6, ToString(a.kind)).Bind(7, ToString(a.status)).Bind(8, a.item_index).Bind(9, a.session).Bind(10, a.eval_set);
  q.Bind(11, a.created_at).Bind(12, a.deadline).Bind(13, a.submitted_at).Bind(14, a.data_json);
  q.Bind(15, a.check_result);
  Status s = q.Run();
  if (s.IsConflict()) return Status::Conflict("agent '" + a.id + "' already exists");
  return s;
}

Result<std::vector<AgentRecord>> SqliteStore::ReadAgents(SqliteQuery& q) {
  std::vector<AgentRecord> out;
  while (true) {
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return out;
    CG_ASSIGN_OR_RETURN(AgentRecord a, ReadAgent(q));
    out.push_back(std::move(a));
  }
}

Result<std::optional<AgentRecord>> SqliteStore::ReserveUnit(const std::string& run_id, AgentRecord agent) {
  return Reserve(run_id, std::move(agent), nullptr);
}

Result<std::optional<AgentRecord>> SqliteStore::ReserveUnitWithItem(const std::string& run_id, AgentRecord agent,
                                                                    std::string* item_json) {
  return Reserve(run_id, std::move(agent), item_json);
}

Result<std::optional<AgentRecord>> SqliteStore::Reserve(const std::string& run_id, AgentRecord agent,
                                                        std::string* item_json) {
  if (agent.kind != AgentKind::kUnit) return Status::InvalidArgument("ReserveUnit needs an agent of kind unit");
  std::optional<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(agent.worker_id, &agent.worker));
    {
      // Walks units_by_run_status in id order; each candidate costs one probe of
      // agents_by_run_worker, so the scan only skips units whose items this worker already held.
      CG_ASSIGN_OR_RETURN(SqliteQuery q,
                          Query("SELECT u.id, u.item_index FROM units u "
                                "WHERE u.run = ?1 AND u.status = 'launched' AND u.kind = 'unit' AND NOT EXISTS ("
                                "SELECT 1 FROM agents a WHERE a.run = ?1 AND a.worker_id = ?2 AND a.kind = 'unit' "
                                "AND a.item_index = u.item_index) ORDER BY u.id LIMIT 1"));
      q.Bind(1, rid).Bind(2, agent.worker_id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      agent.unit_id = q.Int(0);
      agent.item_index = q.Int(1);
    }
    agent.run_id = run_id;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = 'assigned', worker_id = ?2, agent_id = ?3 "
                                               "WHERE id = ?1 AND status = 'launched'"));
      CG_RETURN_IF_ERROR(q.Bind(1, *agent.unit_id).Bind(2, agent.worker_id).Bind(3, agent.id).Run());
      if (q.Changes() != 1) return Status::Internal("unit vanished during ReserveUnit");
    }
    CG_RETURN_IF_ERROR(InsertAgent(agent, rid));
    if (item_json != nullptr) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT data_json FROM items WHERE run = ?1 AND item_index = ?2"));
      q.Bind(1, rid).Bind(2, agent.item_index);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Internal("run '" + run_id + "' has no item " + std::to_string(agent.item_index));
      *item_json = q.Text(0);
    }
    out = agent;
    return Status::Ok();
  }));
  return out;
}

Result<bool> SqliteStore::CreateEvalUnit(const std::string& run_id, AgentRecord agent, int64_t cap,
                                         const std::string& gold_set) {
  const bool gold = agent.kind == AgentKind::kGold;
  if (!gold && agent.kind != AgentKind::kScreening) {
    return Status::InvalidArgument("CreateEvalUnit needs an agent of kind gold or screening, got '" +
                                   ToString(agent.kind) + "'");
  }
  bool created = false;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(agent.worker_id, &agent.worker));
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT gold_served, screening_served FROM runs WHERE rid = ?1"));
      q.Bind(1, rid);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("run '" + run_id + "' does not exist");
      if ((gold ? q.Int(0) : q.Int(1)) >= cap) return Status::Ok();  // cap reached: change nothing
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(gold ? "UPDATE runs SET gold_served = gold_served + 1 WHERE rid = ?1"
                                                    : "UPDATE runs SET screening_served = screening_served + 1 "
                                                      "WHERE rid = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, rid).Run());
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT INTO units (run, kind, item_index, copy_index, status, "
                                               "worker_id, agent_id) VALUES (?1, ?2, ?3, 0, 'assigned', ?4, ?5)"));
      q.Bind(1, rid).Bind(2, ToString(agent.kind)).Bind(3, agent.item_index).Bind(4, agent.worker_id).Bind(5, agent.id);
      CG_RETURN_IF_ERROR(q.Run());
      agent.unit_id = sqlite3_last_insert_rowid(db_);
    }
    agent.run_id = run_id;
    CG_RETURN_IF_ERROR(InsertAgent(agent, rid));
    if (gold) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("INSERT OR IGNORE INTO golds_seen (worker_id, gold_set, item_index) "
                                               "VALUES (?1, ?2, ?3)"));
      CG_RETURN_IF_ERROR(q.Bind(1, agent.worker_id).Bind(2, gold_set).Bind(3, agent.item_index).Run());
    }
    created = true;
    return Status::Ok();
  }));
  return created;
}

Status SqliteStore::CreateOnboardingAgent(const AgentRecord& agent) {
  if (agent.unit_id) return Status::InvalidArgument("an onboarding agent has no unit");
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(agent.run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(agent.worker_id, nullptr));
    return InsertAgent(agent, rid);
  });
}

Result<AgentRecord> SqliteStore::GetAgent(const std::string& agent_id) {
  AgentRecord out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT "WHERE a.id = ?1"));
    q.Bind(1, agent_id);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    if (!row) return Status::NotFound("agent '" + agent_id + "' does not exist");
    CG_ASSIGN_OR_RETURN(out, ReadAgent(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::OpenAgents(const std::string& run_id, WorkerId worker) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    // INDEXED BY: without statistics the planner may take agents_by_run_worker, every agent ever.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT_INDEXED("agents_open_by_run_worker")
                                             "WHERE a.run = ?1 AND a.worker_id = ?2 AND "
                                             "a.status IN ('in_task', 'onboarding') ORDER BY a.rowid"));
    q.Bind(1, rid).Bind(2, worker);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::OverdueAgents(int64_t now) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    // The status test is spelled exactly as agents_open_by_deadline's WHERE so the planner uses it.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT "WHERE a.status IN ('in_task', 'onboarding') AND "
                                                             "a.deadline <= ?1 ORDER BY a.deadline, a.rowid"));
    q.Bind(1, now);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AuditEntry>> SqliteStore::FinishAgent(const AgentFinish& finish) {
  std::vector<AuditEntry> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    int64_t rid = 0;
    std::optional<int64_t> unit_id;
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT status, run, unit_id FROM agents WHERE id = ?1"));
      q.Bind(1, finish.agent_id);
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::NotFound("agent '" + finish.agent_id + "' does not exist");
      std::string status = q.Text(0);
      // The check-and-set that makes a double submit (or a submit racing a timeout) impossible.
      if (status != ToString(finish.expect_status)) {
        return Status::Conflict("agent '" + finish.agent_id + "' is " + status + ", not " +
                                ToString(finish.expect_status));
      }
      rid = q.Int(1);
      unit_id = q.OptInt(2);
    }
    {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE agents SET status = ?2, data_json = COALESCE(?3, data_json), "
                                               "submitted_at = COALESCE(?4, submitted_at), check_result = ?5 "
                                               "WHERE id = ?1"));
      q.Bind(1, finish.agent_id).Bind(2, ToString(finish.new_status));
      if (finish.data_json) {
        q.Bind(3, *finish.data_json);
      } else {
        q.BindNull(3);
      }
      CG_RETURN_IF_ERROR(q.Bind(4, finish.submitted_at).Bind(5, finish.check_result).Run());
    }
    if (unit_id && finish.release_unit) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = 'launched', worker_id = NULL, "
                                               "agent_id = NULL WHERE id = ?1 AND agent_id = ?2"));
      CG_RETURN_IF_ERROR(q.Bind(1, *unit_id).Bind(2, finish.agent_id).Run());
    } else if (unit_id && finish.unit_status) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = ?2 WHERE id = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, *unit_id).Bind(2, ToString(*finish.unit_status)).Run());
    }
    if (finish.refund_gold_slot) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE runs SET gold_served = MAX(gold_served - 1, 0) WHERE rid = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, rid).Run());
    }
    if (finish.refund_screening_slot) {
      CG_ASSIGN_OR_RETURN(SqliteQuery q,
                          Query("UPDATE runs SET screening_served = MAX(screening_served - 1, 0) WHERE rid = ?1"));
      CG_RETURN_IF_ERROR(q.Bind(1, rid).Run());
    }
    if (!finish.reject_unit_ids.empty()) CG_RETURN_IF_ERROR(RejectForRelabelInTx(rid, finish.reject_unit_ids));
    return ApplyGrantOpsInTx(finish.grant_ops, {}, &out);
  }));
  return out;
}

Status SqliteStore::RejectForRelabelInTx(int64_t rid, const std::vector<int64_t>& unit_ids) {
  CG_ASSIGN_OR_RETURN(SqliteQuery unit, Query("UPDATE units SET status = 'rejected' WHERE id = ?1 AND run = ?2 AND "
                                              "kind = 'unit' AND status = 'completed'"));
  CG_ASSIGN_OR_RETURN(SqliteQuery agent, Query("UPDATE agents SET status = 'rejected' WHERE id = (SELECT agent_id "
                                               "FROM units WHERE id = ?1) AND status = 'completed'"));
  CG_ASSIGN_OR_RETURN(SqliteQuery copy,
                      Query("INSERT INTO units (run, kind, item_index, copy_index, status) SELECT ?2, 'unit', "
                            "u.item_index, (SELECT MAX(c.copy_index) + 1 FROM units c WHERE c.run = ?2 AND "
                            "c.kind = 'unit' AND c.item_index = u.item_index), 'launched' FROM units u WHERE u.id = ?1"));
  CG_ASSIGN_OR_RETURN(SqliteQuery count, Query("UPDATE runs SET num_units = num_units + 1 WHERE rid = ?1"));
  for (int64_t id : unit_ids) {
    CG_RETURN_IF_ERROR(unit.Bind(1, id).Bind(2, rid).Run());
    const bool changed = unit.Changes() > 0;
    unit.ResetKeepBindings();
    if (!changed) continue;
    CG_RETURN_IF_ERROR(agent.Bind(1, id).Run());
    agent.ResetKeepBindings();
    CG_RETURN_IF_ERROR(copy.Bind(1, id).Bind(2, rid).Run());
    copy.ResetKeepBindings();
    CG_RETURN_IF_ERROR(count.Bind(1, rid).Run());
    count.ResetKeepBindings();
  }
  return Status::Ok();
}

Result<std::vector<int64_t>> SqliteStore::GoldsSeen(WorkerId worker, const std::string& gold_set) {
  std::vector<int64_t> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT item_index FROM golds_seen WHERE worker_id = ?1 AND "
                                             "gold_set = ?2 ORDER BY item_index"));
    q.Bind(1, worker).Bind(2, gold_set);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.push_back(q.Int(0));
    }
  }));
  return out;
}

Status SqliteStore::ForgetGoldsSeen(WorkerId worker, const std::string& gold_set) {
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("DELETE FROM golds_seen WHERE worker_id = ?1 AND gold_set = ?2"));
    return q.Bind(1, worker).Bind(2, gold_set).Run();
  });
}

Result<std::vector<bool>> SqliteStore::RecentGoldResults(WorkerId worker, const std::string& gold_set, int64_t n) {
  std::vector<bool> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    if (n <= 0) return Status::Ok();
    // Spelled as agents_scored_gold's WHERE; rowid order is creation order.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT check_result FROM agents WHERE worker_id = ?1 AND "
                                             "eval_set = ?2 AND kind = 'gold' AND check_result IN ('pass', 'fail') "
                                             "ORDER BY rowid DESC LIMIT ?3"));
    q.Bind(1, worker).Bind(2, gold_set).Bind(3, n);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) break;
      out.push_back(q.Text(0) == "pass");
    }
    std::reverse(out.begin(), out.end());
    return Status::Ok();
  }));
  return out;
}

Result<int64_t> SqliteStore::CountWorkerUnitsForTask(const std::string& task_name, WorkerId worker) {
  int64_t out = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        Query("SELECT COUNT(*) FROM units u JOIN runs r ON r.rid = u.run "
                              "WHERE u.worker_id = ?2 AND r.task_name = ?1 AND u.kind = 'unit' AND "
                              "u.status IN ('assigned', 'completed', 'accepted', 'rejected', 'soft_rejected')"));
    q.Bind(1, task_name).Bind(2, worker);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    out = row ? q.Int(0) : 0;
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::RunAgents(const std::string& run_id) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT "WHERE a.run = ?1 ORDER BY a.rowid"));
    q.Bind(1, rid);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> SqliteStore::UnitStatusCounts(const std::string& run_id) {
  std::vector<std::pair<std::string, int64_t>> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT status, COUNT(*) FROM units WHERE run = ?1 AND kind = 'unit' "
                                             "GROUP BY status ORDER BY status"));
    q.Bind(1, rid);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.emplace_back(q.Text(0), q.Int(1));
    }
  }));
  return out;
}

}  // namespace crowdgate
