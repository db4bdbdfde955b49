#!/usr/bin/python3
"""A fake Prolific API server for tests (Python 3 standard library only).

Run: /usr/bin/python3 tests/fakes/prolific_fake.py --port 0 --port-file PATH [--token TOKEN]
The chosen port is written to PATH once the server listens.

Every request under /api/v1/ is checked against the shapes Prolific documents (method, path with its trailing
slash, `Authorization: Token <token>`, JSON content type, required fields, types, enum values). A request that
breaks a rule gets 400 with Prolific's error shape and is recorded as a violation; a well-formed request that the
current state does not allow (e.g. approving a submission that is not AWAITING REVIEW) gets 400 too but is recorded
as a refusal, not a violation. Control endpoints live under /_fake/ (no auth): see docs/prolific-wire.md.
"""

import argparse
import itertools
import json
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STUDY_ACTIONS = {"PUBLISH", "PAUSE", "START", "STOP", "SCHEDULE_PUBLISH", "CANCEL_PUBLISH"}
SUBMISSION_ACTIONS = {"APPROVE", "COMPLETE", "REJECT", "RETURN", "START", "SCREEN_OUT", "UNREJECT", "UNRETURN"}
SUPPORTED_SUBMISSION_ACTIONS = {"APPROVE", "REJECT"}
REJECTION_CATEGORIES = {"TOO_QUICKLY", "TOO_SLOWLY", "FAILED_INSTRUCTIONS", "INCOMP_LONGITUDINAL", "FAILED_CHECK",
                        "LOW_EFFORT", "MALINGERING", "NO_CODE", "BAD_CODE", "NO_DATA", "UNSUPP_DEVICE", "OTHER"}
SUBMISSION_STATUSES = {"RESERVED", "ACTIVE", "TIMED-OUT", "AWAITING REVIEW", "APPROVED", "PARTIALLY APPROVED",
                       "RETURNED", "REJECTED", "SCREENED OUT", "UNKNOWN"}
# Submissions in these states no longer hold a place in the study.
FREED_STATUSES = {"RETURNED", "TIMED-OUT", "REJECTED"}
CODE_ACTIONS = {"AUTOMATICALLY_APPROVE", "MANUALLY_REVIEW", "ADD_TO_PARTICIPANT_GROUP",
                "REMOVE_FROM_PARTICIPANT_GROUP", "REQUEST_RETURN", "DYNAMIC_PAYMENT", "FIXED_SCREEN_OUT_PAYMENT"}
PROLIFIC_ID_OPTIONS = {"question", "url_parameters", "not_required"}
DEVICES = {"desktop", "tablet", "mobile"}
PLACEHOLDERS = ("{{%PROLIFIC_PID%}}", "{{%STUDY_ID%}}", "{{%SESSION_ID%}}")
GROUP_FILTERS = {"participant_group_allowlist", "participant_group_blocklist"}
AMOUNT_RE = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
# Fields a study may be created with (checked: a misspelled key is a violation rather than silently ignored).
STUDY_FIELDS = {"name", "internal_name", "description", "external_study_url", "prolific_id_option",
                "completion_option", "completion_codes", "total_available_places", "estimated_completion_time",
                "maximum_allowed_time", "reward", "device_compatibility", "peripheral_requirements", "filters",
                "filter_set_id", "filter_set_version", "project", "submissions_config", "naivety_distribution_rate",
                "study_labels", "content_warnings", "content_warning_details", "metadata", "is_custom_screening"}
PATCHABLE_WHEN_PUBLISHED = {"internal_name", "total_available_places"}
CONFIG_KEYS = {"throttle_share", "fail_share", "down_for_s", "down_mode", "slow_paths", "drop_paths", "seed"}


class ApiError(Exception):
    """An answer other than success. kind: 'violation' (malformed request), 'refusal' (state does not allow it),
    'unauthorized' or 'not_found'."""

    def __init__(self, status, title, detail, kind="violation"):
        super().__init__(detail)
        self.status, self.title, self.detail, self.kind = status, title, detail, kind


def violation(detail, title="Bad request"):
    return ApiError(400, title, detail, "violation")


def refusal(detail, title="Bad request"):
    return ApiError(400, title, detail, "refusal")


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v):
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def require_object(body):
    if not isinstance(body, dict):
        raise violation("The request body must be a JSON object.")
    return body


def require_str(body, key, non_empty=True):
    if key not in body:
        raise violation(f"{key}: This field is required.")
    v = body[key]
    if not isinstance(v, str):
        raise violation(f"{key}: must be a string, got {type(v).__name__}.")
    if non_empty and not v.strip():
        raise violation(f"{key}: This field may not be blank.")
    return v


def require_str_list(body, key, required=True):
    if key not in body:
        if required:
            raise violation(f"{key}: This field is required.")
        return []
    v = body[key]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise violation(f"{key}: must be a list of non-empty strings.")
    return v


class State:
    """Everything the fake knows. One lock guards it all; handlers hold it only while touching state."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.counter = 0
        self.user = {"id": self.new_id("u"), "email": "researcher@example.org", "name": "Fake Researcher",
                     "first_name": "Fake", "last_name": "Researcher", "currency_code": "GBP",
                     "balance": 1000000, "available_balance": 1000000}
        ws = self.new_id("w")
        proj = self.new_id("p")
        self.workspaces = {ws: {"id": ws, "title": "My Workspace", "description": "", "owner": self.user["id"],
                                "users": [{"id": self.user["id"]}], "naivety_distribution_rate": None,
                                "currency_code": "GBP"}}
        self.projects = {proj: {"id": proj, "title": "Project", "description": "", "workspace": ws, "owner":
                                self.user["id"], "users": [], "naivety_distribution_rate": None}}
        self.studies = {}
        self.groups = {}
        self.submissions = {}
        self.bonus_setups = {}
        self.payments = []
        self.calls = []
        self.violations = []
        self.refusals = []
        self.config = {"throttle_share": 0.0, "fail_share": 0.0, "down_mode": "refuse", "slow_paths": {}, "drop_paths": [],
                       "seed": 1}
        self.rng = random.Random(1)
        self.down_until = 0.0

    def new_id(self, prefix):
        # 24 hex characters like Prolific's ObjectIds; the first character tells the kind apart when debugging.
        self.counter += 1
        kind = {"u": "1", "w": "2", "p": "3", "s": "4", "g": "5", "x": "6", "b": "7"}[prefix]
        return kind + format(self.counter, "023x")

    def snapshot(self):
        groups = {gid: dict(g, members=sorted(g["members"].keys())) for gid, g in self.groups.items()}
        return {"user": self.user, "workspaces": self.workspaces, "projects": self.projects,
                "studies": self.studies, "groups": groups, "submissions": self.submissions,
                "bonus_setups": self.bonus_setups, "payments": self.payments, "config": self.config}


# ---------------------------------------------------------------------------------------------------------------
# The API proper. Each handler runs under the state lock and either returns (status, body) or raises ApiError.


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


def check_completion_codes(codes, state):
    if not isinstance(codes, list) or not codes:
        raise violation("completion_codes: specify at least one completion code.")
    seen = set()
    for i, c in enumerate(codes):
        where = f"completion_codes[{i}]"
        if not isinstance(c, dict):
            raise violation(f"{where}: must be an object.")
        code = c.get("code")
        if not isinstance(code, str) or not code:
            raise violation(f"{where}.code: must be a non-empty string.")
        if code in seen:
            raise violation(f"{where}.code: codes must be unique within a study ({code}).")
        seen.add(code)
        if not isinstance(c.get("code_type"), str) or not c["code_type"]:
            raise violation(f"{where}.code_type: must be a non-empty string.")
        if c.get("actor", "participant") not in ("participant", "researcher"):
            raise violation(f"{where}.actor: must be participant or researcher.")
        actions = c.get("actions")
        if not isinstance(actions, list):
            raise violation(f"{where}.actions: must be a list of action objects.")
        names = []
        for j, a in enumerate(actions):
            if not isinstance(a, dict) or a.get("action") not in CODE_ACTIONS:
                raise violation(f"{where}.actions[{j}]: must be an object whose action is one of "
                                f"{sorted(CODE_ACTIONS)}.")
            if a["action"] in ("ADD_TO_PARTICIPANT_GROUP", "REMOVE_FROM_PARTICIPANT_GROUP") and \
                    a.get("participant_group") not in state.groups:
                raise violation(f"{where}.actions[{j}].participant_group: unknown participant group.")
            names.append(a["action"])
        if "AUTOMATICALLY_APPROVE" in names and "MANUALLY_REVIEW" in names:
            raise violation(f"{where}.actions: AUTOMATICALLY_APPROVE and MANUALLY_REVIEW cannot be combined.")


def check_filters(filters, state):
    if not isinstance(filters, list):
        raise violation("filters: must be a list.")
    for i, f in enumerate(filters):
        where = f"filters[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("filter_id"), str) or not f["filter_id"]:
            raise violation(f"{where}: must be an object with a string filter_id.")
        has_values, has_range = "selected_values" in f, "selected_range" in f
        if has_values == has_range:
            raise violation(f"{where}: exactly one of selected_values or selected_range is required.")
        if has_values:
            vals = f["selected_values"]
            if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
                raise violation(f"{where}.selected_values: must be a non-empty list of strings.")
            if f["filter_id"] in GROUP_FILTERS:
                for v in vals:
                    if v not in state.groups:
                        raise violation(f"{where}.selected_values: unknown participant group {v}.")
            if "weightings" in f and not isinstance(f["weightings"], dict):
                raise violation(f"{where}.weightings: must be an object.")
        else:
            if f["filter_id"] in GROUP_FILTERS:
                raise violation(f"{where}: {f['filter_id']} is a select filter (selected_values).")
            rng = f["selected_range"]
            if not isinstance(rng, dict) or not rng or set(rng) - {"lower", "upper"}:
                raise violation(f"{where}.selected_range: must be an object with lower and/or upper.")
            for k, v in rng.items():
                if not (v is None or is_number(v) or isinstance(v, str)):
                    raise violation(f"{where}.selected_range.{k}: must be a number or an ISO date.")


def check_study_fields(body, state, creating):
    """Type checks shared by create and PATCH; `creating` adds the required-field checks."""
    unknown = set(body) - STUDY_FIELDS
    if unknown:
        raise violation(f"Unknown study field(s): {sorted(unknown)}.")
    if creating:
        for key in ("name", "description", "external_study_url", "prolific_id_option"):
            require_str(body, key)
        for key in ("total_available_places", "estimated_completion_time", "reward", "completion_codes"):
            if key not in body:
                raise violation(f"{key}: This field is required.")
    for key in ("name", "description", "internal_name"):
        if key in body and not isinstance(body[key], str):
            raise violation(f"{key}: must be a string.")
    if "name" in body and not body["name"].strip():
        raise violation("name: This field may not be blank.")
    if "external_study_url" in body:
        url = body["external_study_url"]
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            raise violation("external_study_url: must be an http(s) URL.")
        missing = [p for p in PLACEHOLDERS if p not in url]
        if missing:
            raise violation(f"external_study_url: missing placeholder(s) {missing}.")
    if "prolific_id_option" in body and body["prolific_id_option"] not in PROLIFIC_ID_OPTIONS:
        raise violation(f"prolific_id_option: must be one of {sorted(PROLIFIC_ID_OPTIONS)}.")
    for key in ("total_available_places", "estimated_completion_time", "reward"):
        if key in body and (not is_int(body[key]) or body[key] <= 0):
            unit = " (in cents)" if key == "reward" else ""
            raise violation(f"{key}: must be a positive integer{unit}, got {json.dumps(body[key])}.")
    if "maximum_allowed_time" in body and (not is_int(body["maximum_allowed_time"]) or
                                           body["maximum_allowed_time"] <= 0):
        raise violation("maximum_allowed_time: must be a positive integer (minutes).")
    if "completion_codes" in body:
        check_completion_codes(body["completion_codes"], state)
    if "filters" in body:
        check_filters(body["filters"], state)
    if "device_compatibility" in body:
        d = body["device_compatibility"]
        if not isinstance(d, list) or any(x not in DEVICES for x in d):
            raise violation(f"device_compatibility: must be a list of {sorted(DEVICES)}.")
    if "project" in body and body["project"] not in state.projects:
        raise violation(f"project: unknown project {body['project']}.")
    if "submissions_config" in body:
        sc = body["submissions_config"]
        if not isinstance(sc, dict) or any(not is_int(v) for v in sc.values()):
            raise violation("submissions_config: must be an object of integers.")


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


def find(collection, key, what):
    if key not in collection:
        raise ApiError(404, "Not found", f"{what} {key} does not exist.", "not_found")
    return collection[key]


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
    action = require_str(body, "action")
    if action not in STUDY_ACTIONS:
        raise violation(f"action: \"{action}\" is not a valid choice ({sorted(STUDY_ACTIONS)}).")
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


def int_query(query, key, default, lo):
    if key not in query:
        return default
    raw = query[key][-1]
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) < lo:
        raise violation(f"{key}: must be an integer >= {lo}, got {raw!r}.")
    return int(raw)


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
    action = require_str(body, "action")
    if action not in SUBMISSION_ACTIONS:
        raise violation(f"action: \"{action}\" is not a valid choice ({sorted(SUBMISSION_ACTIONS)}).")
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
        if cat not in REJECTION_CATEGORIES:
            raise violation(f"rejection_category: \"{cat}\" is not a valid choice ({sorted(REJECTION_CATEGORIES)}).")
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


# ---------------------------------------------------------------------------------------------------------------
# Control endpoints (/_fake/...): no auth, never throttled, not recorded as calls.


def fake_config(state, body):
    require_object(body)
    unknown = set(body) - CONFIG_KEYS
    if unknown:
        raise violation(f"Unknown config key(s): {sorted(unknown)}; known: {sorted(CONFIG_KEYS)}.")
    for key in ("throttle_share", "fail_share"):
        if key in body and (not is_number(body[key]) or not 0 <= body[key] <= 1):
            raise violation(f"{key}: a number in [0, 1].")
    if "slow_paths" in body:
        sp = body["slow_paths"]
        if not isinstance(sp, dict) or not all(is_number(v) and v >= 0 for v in sp.values()):
            raise violation("slow_paths: an object {regex: seconds}.")
        for rx in sp:
            re.compile(rx)
    if "drop_paths" in body:
        dp = body["drop_paths"]
        if not isinstance(dp, list) or not all(isinstance(rx, str) for rx in dp):
            raise violation("drop_paths: a list of regexes.")
        for rx in dp:
            re.compile(rx)
    if "down_mode" in body and body["down_mode"] not in ("refuse", "503"):
        raise violation("down_mode: refuse or 503.")
    if "down_for_s" in body and (not is_number(body["down_for_s"]) or body["down_for_s"] < 0):
        raise violation("down_for_s: a number of seconds >= 0.")
    for key in ("throttle_share", "fail_share", "slow_paths", "drop_paths", "down_mode"):
        if key in body:
            state.config[key] = body[key]
    if "seed" in body:
        state.config["seed"] = body["seed"]
        state.rng = random.Random(body["seed"])
    down = body.get("down_for_s")
    if down:
        state.down_until = time.time() + down
    return 200, dict(state.config, down_for_s=max(0.0, state.down_until - time.time()))


def fake_start_participant(state, body):
    require_object(body)
    study = find(state.studies, require_str(body, "study_id"), "Study")
    pid = require_str(body, "participant_id")
    if study["status"] != "ACTIVE":
        raise ApiError(409, "Conflict", f"Study {study['id']} is {study['status']}, not ACTIVE.", "refusal")
    for f in study.get("filters", []):
        if f.get("filter_id") in GROUP_FILTERS:
            member = any(pid in state.groups[g]["members"] for g in f["selected_values"])
            if (f["filter_id"] == "participant_group_allowlist") != member:
                raise ApiError(403, "Not eligible", f"Participant {pid} is not eligible for study "
                               f"{study['id']} ({f['filter_id']}).", "refusal")
    mine = [s for s in state.submissions.values() if s["study_id"] == study["id"]]
    if any(s["participant_id"] == pid and s["status"] not in FREED_STATUSES for s in mine):
        raise ApiError(409, "Conflict", f"Participant {pid} already has a submission in this study.", "refusal")
    if sum(s["status"] not in FREED_STATUSES for s in mine) >= study["total_available_places"]:
        raise ApiError(409, "Conflict", "All places are taken.", "refusal")
    sid = state.new_id("x")
    sub = {"id": sid, "study_id": study["id"], "participant_id": pid, "status": "ACTIVE",
           "started_at": now_iso(), "completed_at": None, "entered_code": None, "bonus_payments": []}
    state.submissions[sid] = sub
    study["places_taken"] = sum(s["status"] not in FREED_STATUSES for s in mine) + 1
    study["number_of_submissions"] = len(mine) + 1
    url = study["external_study_url"]
    for ph, val in zip(PLACEHOLDERS, (pid, study["id"], sid)):
        url = url.replace(ph, val)
    return 201, dict(submission_full(sub), url=url)


def fake_set_status(state, body, sid):
    sub = find(state.submissions, sid, "Submission")
    require_object(body)
    status = require_str(body, "status")
    if status not in SUBMISSION_STATUSES:
        raise violation(f"status: one of {sorted(SUBMISSION_STATUSES)}.")
    sub["status"] = status
    if status not in ("ACTIVE", "RESERVED") and sub["completed_at"] is None:
        sub["completed_at"] = now_iso()
    return 200, submission_full(sub)


def fake_complete(state, body, sid):
    """What Prolific does when the participant lands on /submissions/complete?cc=CODE."""
    sub = find(state.submissions, sid, "Submission")
    require_object(body)
    code = require_str(body, "code")
    study = state.studies[sub["study_id"]]
    match = [c for c in study["completion_codes"] if c["code"] == code]
    if not match:
        raise ApiError(400, "Bad code", f"{code} is not a completion code of study {study['id']}.", "refusal")
    if sub["status"] != "ACTIVE":
        raise ApiError(409, "Conflict", f"Submission {sid} is {sub['status']}, not ACTIVE.", "refusal")
    actions = {a["action"] for a in match[0]["actions"]}
    if "AUTOMATICALLY_APPROVE" in actions:
        sub["status"] = "APPROVED"
    elif "MANUALLY_REVIEW" in actions:
        sub["status"] = "AWAITING REVIEW"
    elif "REQUEST_RETURN" in actions:
        sub["status"] = "RETURNED"
    else:
        sub["status"] = "AWAITING REVIEW"
    sub["entered_code"] = code
    sub["completed_at"] = now_iso()
    return 200, submission_full(sub)


# ---------------------------------------------------------------------------------------------------------------


def encode(out):
    return None if out is None else json.dumps(out).encode()


def error_body(status, title, detail):
    return {"error": {"status": status, "error_code": 140000 + status, "title": title, "detail": detail}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    server_version = "ProlificFake/1.0"
    # Buffered writes: status line, headers and body leave in one segment (flushed after each request), so
    # Nagle's algorithm and delayed ACKs do not add 40 ms to every call.
    wbufsize = 1 << 16

    def log_message(self, *args):  # quiet: tests read /_fake/calls instead
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(self.connection)

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def send(self, status, body, headers=None):
        data = b"" if body is None else body if isinstance(body, bytes) else encode(body)
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def read_raw(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def dispatch(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query, keep_blank_values=True)
        raw = self.read_raw()
        if path.startswith("/_fake/"):
            return self.control(state, path, query, raw)
        return self.api(state, path, query, raw)

    def control(self, state, path, query, raw):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self.send(400, error_body(400, "Bad request", "Body is not JSON."))
        try:
            with state.lock:
                if path == "/_fake/config" and self.command == "POST":
                    status, out = fake_config(state, body)
                elif path == "/_fake/reset" and self.command == "POST":
                    state.reset()
                    status, out = 200, {}
                elif path == "/_fake/calls" and self.command == "GET":
                    since = int(query.get("since", ["0"])[-1])
                    status, out = 200, {"total": len(state.calls), "calls": state.calls[since:]}
                elif path == "/_fake/violations" and self.command == "GET":
                    status, out = 200, {"violations": state.violations}
                elif path == "/_fake/refusals" and self.command == "GET":
                    status, out = 200, {"refusals": state.refusals}
                elif path == "/_fake/state" and self.command == "GET":
                    status, out = 200, state.snapshot()
                elif path == "/_fake/stats" and self.command == "GET":
                    by = {}
                    for c in state.calls:
                        by[c["outcome"]] = by.get(c["outcome"], 0) + 1
                    status, out = 200, {"calls": len(state.calls), "by_outcome": by,
                                        "violations": len(state.violations), "payments": len(state.payments)}
                elif path == "/_fake/participants" and self.command == "POST":
                    status, out = fake_start_participant(state, body)
                elif (m := re.fullmatch(r"/_fake/submissions/([^/]+)/status", path)) and self.command == "POST":
                    status, out = fake_set_status(state, body, m.group(1))
                elif (m := re.fullmatch(r"/_fake/submissions/([^/]+)/complete", path)) and self.command == "POST":
                    status, out = fake_complete(state, body, m.group(1))
                else:
                    status, out = 404, error_body(404, "Not found", f"No control endpoint {self.command} {path}.")
                out = encode(out)  # under the lock: the answer may share dicts that other threads change
        except ApiError as e:
            status, out = e.status, error_body(e.status, e.title, e.detail)
        headers = {}
        if path == "/_fake/config" and status == 200 and state.config["down_mode"] == "refuse" \
                and state.down_until > time.time():
            # Stop listening before answering, so a caller never races a closing socket; this connection
            # closes after the answer.
            self.server.go_down(state.down_until, keep=self.connection)
            headers = {"Connection": "close"}
        self.send(status, out, headers)

    def api(self, state, path, query, raw):
        started = time.time()
        call = {"method": self.command, "path": path, "query": {k: v[-1] for k, v in query.items()},
                "body": None, "status": 0, "outcome": "", "time": started}
        try:
            call["body"] = json.loads(raw) if raw else None
        except ValueError:
            call["body"] = raw.decode("utf-8", "replace")
        with state.lock:
            cfg = state.config
            if state.down_until > started:  # down_mode 503 (the refuse mode closes the socket instead)
                status, out, headers, outcome = 503, error_body(503, "Service Unavailable", "Down."), {}, "down"
            elif state.rng.random() < cfg["throttle_share"]:
                status, out, outcome = 429, error_body(429, "Too Many Requests", "Request was throttled."), \
                    "throttled"
                headers = {"Retry-After": "1"}
            elif state.rng.random() < cfg["fail_share"]:
                status = state.rng.choice([500, 502, 503])
                out, headers, outcome = error_body(status, "Server error", "Simulated failure."), {}, "failed"
            else:
                headers = {}
                try:
                    status, out = self.handle_api(state, path, query, raw)
                    outcome = "ok"
                except ApiError as e:
                    status, out, outcome = e.status, error_body(e.status, e.title, e.detail), e.kind
                    if e.status == 401:
                        out = {"detail": e.detail}
                    record = {"method": self.command, "path": path, "status": e.status, "detail": e.detail,
                              "body": call["body"]}
                    (state.violations if e.kind in ("violation", "unauthorized") else state.refusals).append(record)
            call["status"], call["outcome"] = status, outcome
            state.calls.append(call)
            out = encode(out)
            delay = 0.0
            for rx, secs in cfg["slow_paths"].items():
                if re.search(rx, path) or re.search(rx, f"{self.command} {path}"):
                    delay = max(delay, secs)
            drop = any(re.search(rx, path) or re.search(rx, f"{self.command} {path}") for rx in cfg["drop_paths"])
        if delay:
            time.sleep(delay)  # the effect (if any) has already happened
        if drop:  # the effect (if any) has happened; the answer is lost with the connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send(status, out, headers)

    def handle_api(self, state, path, query, raw):
        auth = self.headers.get("Authorization", "")
        token = self.server.token
        if not auth.startswith("Token ") or not auth[6:].strip() or (token is not None and auth[6:] != token):
            raise ApiError(401, "Unauthorized", "Invalid token." if auth.startswith("Token ")
                           else "Authentication credentials were not provided (Authorization: Token <token>).",
                           "unauthorized")
        methods_here = []
        for meth, rx, fn, takes_body in COMPILED:
            m = rx.match(path)
            if not m:
                continue
            methods_here.append(meth)
            if meth != self.command:
                continue
            if takes_body is False and raw:
                raise violation(f"{meth} {path} takes no body.")
            body = None
            if raw:
                ctype = self.headers.get("Content-Type", "")
                if not ctype.split(";")[0].strip().lower() == "application/json":
                    raise violation(f"Content-Type must be application/json, got {ctype!r}.")
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise violation("The body is not valid JSON.")
            elif takes_body:
                raise violation(f"{meth} {path} needs a JSON body.")
            args = dict(m.groupdict(), query=query)
            return fn(state, body, args)
        # Calls the API does not have are violations too (a client bug), answered as Prolific would: 405 / 404.
        if methods_here:
            raise ApiError(405, "Method not allowed",
                           f"Method {self.command} not allowed on {path} (allowed: {methods_here}).")
        hint = " (Prolific paths end with a slash)" if not path.endswith("/") else ""
        raise ApiError(404, "Not found", f"No endpoint {self.command} {path}{hint}.")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, token):
        super().__init__(addr, Handler)
        self.state, self.token = state, token
        self.connections = set()
        self.conn_lock = threading.Lock()
        self.down_until = 0.0

    def go_down(self, until, keep):
        """Refuse connections until `until`: stop listening and drop every open connection but `keep` (the
        main loop listens again afterwards, on the same port). Called from a handler thread."""
        self.down_until = until
        self.shutdown()  # returns once serve_forever (in the main thread) has stopped
        self.socket.close()
        with self.conn_lock:
            for c in list(self.connections):
                if c is not keep:
                    try:
                        c.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


def serve(port, port_file, token):
    state = State()
    host = "127.0.0.1"
    server = FakeServer((host, port), state, token)
    port = server.server_address[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    import os
    os.replace(port_file + ".tmp", port_file)  # atomic: a reader never sees a half-written port
    while True:
        server.serve_forever(poll_interval=0.05)
        until = server.down_until
        while time.time() < until:
            time.sleep(0.02)
        for _ in range(200):  # the port may take a moment to be free again
            try:
                server = FakeServer((host, port), state, token)
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("prolific_fake: could not listen again on port %d" % port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--token", default=None, help="the only token accepted (default: any non-empty token)")
    args = ap.parse_args()
    try:
        serve(args.port, args.port_file, args.token)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
