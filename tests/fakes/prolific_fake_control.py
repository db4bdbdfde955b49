"""The test-control endpoints (/_fake/...) of the fake Prolific server: fault-injection config, and what
participants do on Prolific's side (start a study, change a submission's status, enter a completion code). No
auth, never throttled, not recorded as calls."""

import random
import re
import time

from prolific_fake_api import submission_full
from prolific_fake_rules import (FREED_STATUSES, GROUP_FILTERS, PLACEHOLDERS, SUBMISSION_STATUSES, ApiError, find,
                                 is_number, now_iso, require_object, require_str, violation)

CONFIG_KEYS = {"throttle_share", "fail_share", "down_for_s", "down_mode", "slow_paths", "drop_paths", "seed"}


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
