// SqliteStore: a run seen from its requester and its provider: reviewing units, the provider's state
// and sessions, and the requester pages. See sqlite_store.hpp for the contract and sqlite_store.cpp
// for the plumbing.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/outbox_rows.hpp"
#include "store/sqlite/sqlite_internal.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace crowdgate {

using sqlite_internal::ReadAgent;

// ---- reviews, provider state and sessions ---------------------------------------------------------
Result<int64_t> SqliteStore::ReviewUnits(const std::string& run_id, const std::vector<int64_t>& unit_ids,
                                         UnitStatus new_status, const std::vector<OutboxRow>& outbox) {
  const std::optional<AgentStatus> agent_status = AgentStatusAfterReview(new_status);
  if (!agent_status) {
    return Status::InvalidArgument("review status must be accepted, rejected or soft_rejected, got '" +
                                   ToString(new_status) + "'");
  }
  const std::string unit_word = ToString(new_status);
  const std::string agent_word = ToString(*agent_status);
  for (const OutboxRow& row : outbox) CG_RETURN_IF_ERROR(store_outbox::CheckNewOutboxRow(row));
  int64_t changed = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE units SET status = ?3 WHERE id = ?1 AND run = ?2 AND "
                                             "status IN ('completed', 'accepted', 'rejected', 'soft_rejected') "
                                             "AND status <> ?3"));
    // The agent that submitted the unit follows: accepted -> approved, rejected, soft_rejected.
    CG_ASSIGN_OR_RETURN(SqliteQuery a, Query("UPDATE agents SET status = ?2 WHERE id = (SELECT agent_id FROM units "
                                             "WHERE id = ?1) AND status IN ('completed', 'approved', 'rejected', "
                                             "'soft_rejected')"));
    for (int64_t id : unit_ids) {
      CG_RETURN_IF_ERROR(q.Bind(1, id).Bind(2, rid).Bind(3, unit_word).Run());
      const int64_t n = q.Changes();
      changed += n;
      q.ResetKeepBindings();
      if (n > 0) {
        CG_RETURN_IF_ERROR(a.Bind(1, id).Bind(2, agent_word).Run());
        a.ResetKeepBindings();
      }
    }
    return InsertOutbox(outbox, 0);
  }));
  return changed;
}

Status SqliteStore::SetRunProviderState(const std::string& run_id, const std::string& state_json) {
  if (!nlohmann::json::accept(state_json) || !nlohmann::json::parse(state_json).is_object()) {
    return Status::InvalidArgument("a run's provider state must be a JSON object");
  }
  return Transact(TxKind::kWrite, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("UPDATE runs SET provider_state = ?2 WHERE rid = ?1"));
    return q.Bind(1, rid).Bind(2, state_json).Run();
  });
}

Result<int64_t> SqliteStore::CountSessionSubmissions(const std::string& run_id, WorkerId worker,
                                                     const std::string& session) {
  int64_t out = 0;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_RETURN_IF_ERROR(CheckWorkerExists(worker, nullptr));
    // agents_by_run_worker narrows to the worker's agents in the run: a handful.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT COUNT(*) FROM agents WHERE run = ?1 AND worker_id = ?2 AND "
                                             "kind IN ('unit', 'gold', 'screening') AND session = ?3 AND "
                                             "submitted_at IS NOT NULL"));
    q.Bind(1, rid).Bind(2, worker).Bind(3, session);
    CG_ASSIGN_OR_RETURN(bool row, q.Next());
    out = row ? q.Int(0) : 0;
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<AgentRecord>> SqliteStore::OpenAgentsOfSession(const std::string& run_id,
                                                                  const std::string& session) {
  std::vector<AgentRecord> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    // The run's open agents (a partial index: only open ones), filtered by session.
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query(CG_AGENT_SELECT_INDEXED("agents_open_by_run_worker")
                                             "WHERE a.run = ?1 AND a.status IN ('in_task', 'onboarding') AND "
                                             "a.session = ?2 ORDER BY a.rowid"));
    q.Bind(1, rid).Bind(2, session);
    CG_ASSIGN_OR_RETURN(out, ReadAgents(q));
    return Status::Ok();
  }));
  return out;
}

// ---- requester pages: one page at a time ---------------------------------------------------------
// The agent columns of CG_AGENT_SELECT plus the rowid (the page cursor) as column 17. The kind test
// counts a unit that decides a screening as "screening", as export does.
#define CG_AGENT_PAGE_SELECT                                                                                    \
  "SELECT a.id, a.token_hash, r.id, a.unit_id, a.worker_id, w.provider, w.name, a.kind, a.status, "            \
  "a.item_index, a.session, a.eval_set, a.created_at, a.deadline, a.submitted_at, a.data_json, a.check_result, " \
  "a.rowid FROM agents a JOIN runs r ON r.rid = a.run JOIN workers w ON w.id = a.worker_id "
#define CG_AGENT_PAGE_FILTER                                                                        \
  "AND (?3 = '' OR a.status = ?3) AND (?4 = '' OR (CASE WHEN a.kind = 'unit' AND a.eval_set = "    \
  "'screening' THEN 'screening' ELSE a.kind END) = ?4) ORDER BY a.rowid LIMIT ?5"

Result<AgentPage> SqliteStore::ListRunAgents(const std::string& run_id, const AgentFilter& filter, int64_t cursor,
                                             int64_t limit) {
  AgentPage page;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    page = AgentPage{};
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    // With a worker: agents_by_run_worker narrows to their agents; without: the rowid walk from the
    // cursor stops after `limit` matches.
    CG_ASSIGN_OR_RETURN(SqliteQuery q,
                        filter.worker ? Query(CG_AGENT_PAGE_SELECT "WHERE a.run = ?1 AND a.worker_id = ?6 AND "
                                                                   "a.rowid > ?2 " CG_AGENT_PAGE_FILTER)
                                      : Query(CG_AGENT_PAGE_SELECT "WHERE a.run = ?1 AND a.rowid > ?2 " CG_AGENT_PAGE_FILTER));
    q.Bind(1, rid).Bind(2, cursor).Bind(3, std::string_view(filter.status)).Bind(4, std::string_view(filter.kind));
    q.Bind(5, limit);
    if (filter.worker) q.Bind(6, *filter.worker);
    int64_t last = 0;
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) break;
      CG_ASSIGN_OR_RETURN(AgentRecord a, ReadAgent(q));
      page.agents.push_back(std::move(a));
      last = q.Int(17);
    }
    if (static_cast<int64_t>(page.agents.size()) == limit) page.next_cursor = last;
    return Status::Ok();
  }));
  return page;
}

Result<std::vector<WorkerRunStats>> SqliteStore::ListRunWorkerStats(const std::string& run_id, WorkerId after_worker,
                                                                    int64_t limit) {
  std::vector<WorkerRunStats> out;
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    // agents_by_run_worker walks the run's workers in id order; the LIMIT stops after one page.
    CG_ASSIGN_OR_RETURN(
        SqliteQuery q,
        Query("SELECT a.worker_id, w.provider, w.name, "
              "SUM(a.kind = 'unit' AND a.eval_set <> 'screening' AND a.submitted_at IS NOT NULL), "
              "SUM(a.status IN ('in_task', 'onboarding')), "
              "SUM(a.kind = 'gold' AND a.check_result = 'pass'), SUM(a.kind = 'gold' AND a.check_result = 'fail'), "
              "SUM((a.kind = 'screening' OR a.eval_set = 'screening') AND a.check_result = 'pass'), "
              "SUM((a.kind = 'screening' OR a.eval_set = 'screening') AND a.check_result = 'fail'), "
              "(SELECT o.status FROM agents o WHERE o.run = ?1 AND o.worker_id = a.worker_id AND "
              "o.kind = 'onboarding' ORDER BY o.rowid DESC LIMIT 1), "
              "COALESCE(SUM(CASE WHEN a.kind = 'unit' AND a.eval_set <> 'screening' AND a.submitted_at IS NOT NULL "
              "THEN a.submitted_at - a.created_at END), 0), "
              "MIN(a.created_at), MAX(MAX(a.created_at), COALESCE(MAX(a.submitted_at), 0)) "
              "FROM agents a JOIN workers w ON w.id = a.worker_id WHERE a.run = ?1 AND a.worker_id > ?2 "
              "GROUP BY a.worker_id ORDER BY a.worker_id LIMIT ?3"));
    q.Bind(1, rid).Bind(2, after_worker).Bind(3, limit);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      WorkerRunStats s;
      s.worker_id = q.Int(0);
      s.worker = WorkerRef{q.Text(1), q.Text(2)};
      s.units_submitted = q.Int(3);
      s.units_open = q.Int(4);
      s.golds_right = q.Int(5);
      s.golds_wrong = q.Int(6);
      s.screening_passed = q.Int(7);
      s.screening_failed = q.Int(8);
      s.onboarding = q.Text(9);
      s.unit_seconds_total_micros = q.Int(10);
      s.first_seen = q.Int(11);
      s.last_seen = q.Int(12);
      out.push_back(std::move(s));
    }
  }));
  return out;
}

Result<std::vector<std::pair<int64_t, int64_t>>> SqliteStore::RunThroughput(const std::string& run_id,
                                                                            int64_t bucket_micros, int64_t since) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (bucket_micros <= 0) return Status::InvalidArgument("throughput bucket must be above 0");
  CG_RETURN_IF_ERROR(Transact(TxKind::kRead, [&]() -> Status {
    out.clear();
    CG_ASSIGN_OR_RETURN(int64_t rid, RunRowId(run_id));
    CG_ASSIGN_OR_RETURN(SqliteQuery q, Query("SELECT (a.submitted_at / ?2) * ?2, COUNT(*) FROM agents a "
                                             "WHERE a.run = ?1 AND a.submitted_at IS NOT NULL AND a.submitted_at >= ?3 "
                                             "GROUP BY 1 ORDER BY 1"));
    q.Bind(1, rid).Bind(2, bucket_micros).Bind(3, since);
    while (true) {
      CG_ASSIGN_OR_RETURN(bool row, q.Next());
      if (!row) return Status::Ok();
      out.emplace_back(q.Int(0), q.Int(1));
    }
  }));
  return out;
}

}  // namespace crowdgate
