"""The Prolific API proper (/api/v1/...) of the fake Prolific server: the handlers for studies, submissions,
participant groups, bulk bonus payments, the user and workspaces, and the ROUTES table that maps method and path to
them. Each handler runs under the state lock and either returns (status, body) or raises ApiError."""

import itertools
import json
import re

from prolific_fake_rules import (AMOUNT_RE, PATCHABLE_WHEN_PUBLISHED, REJECTION_CATEGORIES, STUDY_ACTIONS,
                                 SUBMISSION_ACTIONS, SUPPORTED_SUBMISSION_ACTIONS, ApiError, check_choice,
                                 check_study_fields, find, int_query, now_iso, refusal, require_object, require_str,
                                 require_str_list, violation)


def study_out(study):
    return dict(study)


def submission_short(sub):
    return {"id": sub["id"], "participant_id": sub["participant_id"], "status": sub["status"],
            "started_at": sub["started_at"], "completed_at": sub["completed_at"], "has_siblings": False,
            "study_code": sub["entered_code"], "return_requested": None}


def submission_full(sub):
    return {"id": sub["id"], "participant": sub["participant_id"], "participant_id": sub["participant_id"],
            "study_id": sub["study_id"], "status": sub["status"], "started_at": sub["started_at"],
            "completed_at": sub["completed_at"], "entered_code": sub["entered_code"],
            "bonus_payments": list(sub["bonus_payments"]), "return_requested": None}


def api_create_study(state, body, _m):
    require_object(body)
    check_study_fields(body, state, creating=True)
    sid = state.new_id("s")
    study = dict(body)
    study.update({"id": sid, "status": "UNPUBLISHED", "date_created": now_iso(), "published_at": None,
                  "places_taken": 0, "number_of_submissions": 0,
                  "project": body.get("project", next(iter(state.projects))),
                  "internal_name": body.get("internal_name", body["name"]),
                  "filters": body.get("filters", [])})
    state.studies[sid] = study
    return 201, study_out(study)


def api_get_study(state, _body, m):
    return 200, study_out(find(state.studies, m["id"], "Study"))


def api_patch_study(state, body, m):
    study = find(state.studies, m["id"], "Study")
    require_object(body)
    if not body:
        raise violation("Empty PATCH body.")
    check_study_fields(body, state, creating=False)
    if study["status"] != "UNPUBLISHED":
        not_allowed = set(body) - PATCHABLE_WHEN_PUBLISHED
        if not_allowed:
            raise violation(f"Once published, only {sorted(PATCHABLE_WHEN_PUBLISHED)} can change; "
                            f"got {sorted(not_allowed)}.")
        if "total_available_places" in body and body["total_available_places"] < study["total_available_places"]:
            raise violation("total_available_places: can only be increased once published.")
    study.update(body)
    if study["status"] == "COMPLETED" and "total_available_places" in body:
        study["status"] = "ACTIVE"
    return 200, study_out(study)


STUDY_TRANSITIONS = {"PUBLISH": ({"UNPUBLISHED"}, "ACTIVE"), "PAUSE": ({"ACTIVE"}, "PAUSED"),
                     "START": ({"PAUSED"}, "ACTIVE"), "STOP": ({"ACTIVE", "PAUSED"}, "COMPLETED"),
                     "SCHEDULE_PUBLISH": ({"UNPUBLISHED"}, "SCHEDULED"),
                     "CANCEL_PUBLISH": ({"SCHEDULED"}, "UNPUBLISHED")}


def api_transition_study(state, body, m):
    study = find(state.studies, m["id"], "Study")
    require_object(body)
    action = check_choice("action", require_str(body, "action"), STUDY_ACTIONS)
    if set(body) - {"action", "publish_at"}:
        raise violation(f"Unknown field(s): {sorted(set(body) - {'action', 'publish_at'})}.")
    if action == "SCHEDULE_PUBLISH" and not isinstance(body.get("publish_at"), str):
        raise violation("publish_at: required (ISO date) for SCHEDULE_PUBLISH.")
    allowed_from, to = STUDY_TRANSITIONS[action]
    if study["status"] not in allowed_from:
        raise refusal(f"Cannot {action} a study in status {study['status']}.")
    study["status"] = to
    if action == "PUBLISH":
        study["published_at"] = now_iso()
    return 200, study_out(study)


def api_list_submissions(state, _body, m):
    find(state.studies, m["id"], "Study")
    page = int_query(m["query"], "page", 1, 1)
    page_size = int_query(m["query"], "page_size", 20, 1)
    subs = [s for s in state.submissions.values() if s["study_id"] == m["id"]]
    subs.sort(key=lambda s: s["id"])
    chunk = subs[(page - 1) * page_size: page * page_size]
    return 200, {"results": [submission_short(s) for s in chunk]}


def api_get_submission(state, _body, m):
    return 200, submission_full(find(state.submissions, m["id"], "Submission"))


def api_transition_submission(state, body, m):
    sub = find(state.submissions, m["id"], "Submission")
    require_object(body)
    action = check_choice("action", require_str(body, "action"), SUBMISSION_ACTIONS)
    extra = set(body) - {"action", "message", "rejection_category", "completion_code", "completion_code_data"}
    if extra:
        raise violation(f"Unknown field(s): {sorted(extra)}.")
    if action == "REJECT":
        msg = body.get("message")
        if not isinstance(msg, str) or len(msg) < 100:
            n = len(msg) if isinstance(msg, str) else 0
            raise violation(f"message: a rejection message of at least 100 characters is required (got {n}).")
        cat = body.get("rejection_category")
        if not isinstance(cat, str):
            raise violation("rejection_category: must be a string (one of Prolific's categories), got "
                            f"{json.dumps(cat)}.")
        check_choice("rejection_category", cat, REJECTION_CATEGORIES)
    elif action == "APPROVE" and ("rejection_category" in body):
        raise violation("rejection_category: only with REJECT.")
    if action not in SUPPORTED_SUBMISSION_ACTIONS:
        raise refusal(f"The fake only implements APPROVE and REJECT, not {action}.")
    if sub["status"] != "AWAITING REVIEW":
        raise refusal(f"Cannot {action} a submission in status {sub['status']}; it must be AWAITING REVIEW.")
    sub["status"] = "APPROVED" if action == "APPROVE" else "REJECTED"
    if action == "REJECT":
        sub["rejection"] = {"message": body["message"], "category": body["rejection_category"]}
    return 200, submission_full(sub)


def group_out(g):
    return {k: v for k, v in g.items() if k != "members"} | {"participant_count": len(g["members"])}


def members_out(g, limit=None):
    """Members in the order they joined. Adding and removing answer with at most the first 100 (Prolific lists
    the whole group; listing 100,000 members on every call would make the fake the bottleneck of a bench)."""
    items = itertools.islice(g["members"].items(), limit)
    return {"results": [{"participant_id": p, "datetime_created": t} for p, t in items]}


def api_create_group(state, body, _m):
    require_object(body)
    name = require_str(body, "name")
    extra = set(body) - {"name", "workspace_id", "organisation_id", "description", "participant_ids"}
    if extra:
        raise violation(f"Unknown field(s): {sorted(extra)}.")
    ws = body.get("workspace_id")
    if ws is None and body.get("organisation_id") is None:
        raise violation("workspace_id: one of workspace_id or organisation_id is required.")
    if ws is not None and ws not in state.workspaces:
        raise violation(f"workspace_id: unknown workspace {ws}.")
    if "description" in body and not isinstance(body["description"], str):
        raise violation("description: must be a string.")
    ids = require_str_list(body, "participant_ids", required=False)
    gid = state.new_id("g")
    t = now_iso()
    g = {"id": gid, "name": name, "project_id": None, "workspace_id": ws,
         "organisation_id": body.get("organisation_id"), "description": body.get("description", ""),
         "is_deleted": False, "feeder_studies": [], "members": {p: t for p in ids}}
    state.groups[gid] = g
    return 201, group_out(g)


def live_group(state, gid):
    g = find(state.groups, gid, "Participant group")
    if g["is_deleted"]:
        raise ApiError(404, "Not found", f"Participant group {gid} was deleted.", "not_found")
    return g


def api_get_group(state, _body, m):
    return 200, group_out(live_group(state, m["id"]))


def api_delete_group(state, _body, m):
    live_group(state, m["id"])["is_deleted"] = True
    return 204, None


def api_group_members(state, _body, m):
    return 200, members_out(live_group(state, m["id"]))


def api_add_members(state, body, m):
    g = live_group(state, m["id"])
    require_object(body)
    ids = require_str_list(body, "participant_ids")
    t = now_iso()
    for p in ids:
        g["members"].setdefault(p, t)  # adding an existing member is ignored
    return 200, members_out(g, 100)


def api_remove_members(state, body, m):
    g = live_group(state, m["id"])
    require_object(body)
    ids = require_str_list(body, "participant_ids")
    for p in ids:
        g["members"].pop(p, None)  # removing a non-member is ignored
    return 200, members_out(g, 100)


def api_setup_bonus(state, body, _m):
    require_object(body)
    study_id = require_str(body, "study_id")
    csv = require_str(body, "csv_bonuses")
    if set(body) - {"study_id", "csv_bonuses"}:
        raise violation(f"Unknown field(s): {sorted(set(body) - {'study_id', 'csv_bonuses'})}.")
    if study_id not in state.studies:
        raise violation(f"study_id: unknown study {study_id}.")
    subs = [s for s in state.submissions.values() if s["study_id"] == study_id]
    by_pid = {s["participant_id"]: s for s in subs}
    by_sid = {s["id"]: s for s in subs}
    lines = csv.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # one trailing newline ends the last line
    if not lines:
        raise violation("csv_bonuses: no bonus lines.")
    entries, bad = [], []
    for n, line in enumerate(lines, 1):
        parts = line.split(",")
        if len(parts) != 2 or not parts[0] or not AMOUNT_RE.match(parts[1]):
            raise violation(f"csv_bonuses line {n}: expected <id>,<decimal amount with at most 2 places>, "
                            f"got {line!r}.")
        cents = round(float(parts[1]) * 100)
        if cents <= 0:
            raise violation(f"csv_bonuses line {n}: the amount must be positive.")
        sub = by_sid.get(parts[0]) or by_pid.get(parts[0])
        if sub is None:
            bad.append(parts[0])
        else:
            entries.append({"submission_id": sub["id"], "participant_id": sub["participant_id"],
                            "amount": cents})
    if bad:
        raise violation(f"csv_bonuses: these ids did not take part in study {study_id}: {bad}.")
    bid = state.new_id("b")
    amount = sum(e["amount"] for e in entries)
    fees = round(amount / 3)
    setup = {"id": bid, "study": study_id, "amount": amount, "fees": fees, "vat": 0,
             "total_amount": amount + fees, "entries": entries, "times_paid": 0}
    state.bonus_setups[bid] = setup
    return 201, {k: setup[k] for k in ("id", "study", "amount", "fees", "vat", "total_amount")}


def api_pay_bonus(state, body, m):
    setup = find(state.bonus_setups, m["id"], "Bulk bonus payment")
    if body not in (None, {}):
        raise violation("This endpoint takes no body.")
    # Not idempotent, like Prolific: every call pays every entry again.
    setup["times_paid"] += 1
    for e in setup["entries"]:
        state.payments.append({"bulk_id": setup["id"], "study_id": setup["study"], "paid_at": now_iso(), **e})
        state.submissions[e["submission_id"]]["bonus_payments"].append(e["amount"])
    return 202, None


def api_me(state, _body, _m):
    return 200, state.user


def api_workspaces(state, _body, _m):
    return 200, {"results": list(state.workspaces.values())}


def api_projects(state, _body, m):
    find(state.workspaces, m["id"], "Workspace")
    return 200, {"results": [p for p in state.projects.values() if p["workspace"] == m["id"]]}


ID = r"(?P<id>[^/]+)"
ROUTES = [  # (method, path regex, handler, takes a JSON body)
    ("GET", r"/api/v1/users/me/", api_me, False),
    ("GET", r"/api/v1/workspaces/", api_workspaces, False),
    ("GET", rf"/api/v1/workspaces/{ID}/projects/", api_projects, False),
    ("POST", r"/api/v1/studies/", api_create_study, True),
    ("GET", rf"/api/v1/studies/{ID}/", api_get_study, False),
    ("PATCH", rf"/api/v1/studies/{ID}/", api_patch_study, True),
    ("POST", rf"/api/v1/studies/{ID}/transition/", api_transition_study, True),
    ("GET", rf"/api/v1/studies/{ID}/submissions/", api_list_submissions, False),
    ("POST", r"/api/v1/submissions/bonus-payments/", api_setup_bonus, True),
    ("GET", rf"/api/v1/submissions/{ID}/", api_get_submission, False),
    ("POST", rf"/api/v1/submissions/{ID}/transition/", api_transition_submission, True),
    ("POST", r"/api/v1/participant-groups/", api_create_group, True),
    ("GET", rf"/api/v1/participant-groups/{ID}/", api_get_group, False),
    ("DELETE", rf"/api/v1/participant-groups/{ID}/", api_delete_group, False),
    ("GET", rf"/api/v1/participant-groups/{ID}/participants/", api_group_members, False),
    ("POST", rf"/api/v1/participant-groups/{ID}/participants/", api_add_members, True),
    ("DELETE", rf"/api/v1/participant-groups/{ID}/participants/", api_remove_members, True),
    ("POST", rf"/api/v1/bulk-bonus-payments/{ID}/pay/", api_pay_bonus, None),  # None: no body expected
]
COMPILED = [(meth, re.compile(rx + r"\Z"), fn, takes) for meth, rx, fn, takes in ROUTES]
