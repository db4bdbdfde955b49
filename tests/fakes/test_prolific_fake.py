"""Self-test of the fake Prolific server: a valid flow passes with no violation, each class of malformed request is
refused with Prolific's error shape and recorded, throttled and failed calls have no effect, a slow call has its
effect, the fake can go away and come back, and paying a bulk bonus twice pays twice."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "test-token-0123"
CODE = "C" + "7" * 15
SCREEN = "S" + "3" * 15
URL = ("https://crowd.example.org/runs/r1?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}"
       "&SESSION_ID={{%SESSION_ID%}}")
REASON = "Your answers did not follow the instructions given at the top of the task page; " \
         "the checks embedded in the task were failed."


class Fake:
    def __init__(self, token=TOKEN):
        self.dir = tempfile.mkdtemp()
        port_file = os.path.join(self.dir, "port")
        args = [sys.executable, os.path.join(HERE, "prolific_fake.py"), "--port", "0", "--port-file", port_file]
        if token:
            args += ["--token", token]
        self.proc = subprocess.Popen(args)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def request(self, method, path, body=None, token=TOKEN, content_type="application/json", raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token is not None:
            req.add_header("Authorization", f"Token {token}")
        if data is not None and content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read()
                return resp.status, (json.loads(text) if text else None), dict(resp.headers)
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, (json.loads(text) if text else None), dict(e.headers)

    def ok(self, method, path, body=None, expect=(200, 201, 202, 204)):
        status, out, _ = self.request(method, path, body)
        assert status in expect, (method, path, status, out)
        return out

    def control(self, method, path, body=None):
        return self.request(method, "/_fake/" + path, body, token=None)[1]

    def violations(self):
        return self.control("GET", "violations")["violations"]

    def state(self):
        return self.control("GET", "state")


@pytest.fixture(scope="module")
def fake():
    f = Fake()
    yield f
    f.stop()


@pytest.fixture(autouse=True)
def fresh(fake):
    fake.control("POST", "reset")


def study_body(**over):
    body = {"name": "Label images", "description": "Label 10 images.", "external_study_url": URL,
            "prolific_id_option": "url_parameters", "total_available_places": 3, "estimated_completion_time": 5,
            "reward": 150, "completion_codes": [
                {"code": CODE, "code_type": "COMPLETED", "actions": [{"action": "MANUALLY_REVIEW"}]},
                {"code": SCREEN, "code_type": "SCREENED_OUT", "actions": [{"action": "MANUALLY_REVIEW"}]}]}
    body.update(over)
    return body


def published_study(fake, **over):
    study = fake.ok("POST", "/api/v1/studies/", study_body(**over))
    fake.ok("POST", f"/api/v1/studies/{study['id']}/transition/", {"action": "PUBLISH"})
    return study


def awaiting_submission(fake, study_id, pid):
    sub = fake.control("POST", "participants", {"study_id": study_id, "participant_id": pid})
    fake.control("POST", f"submissions/{sub['id']}/complete", {"code": CODE})
    return sub


def test_valid_flow_has_no_violation(fake):
    me = fake.ok("GET", "/api/v1/users/me/")
    assert me["id"]
    ws = fake.ok("GET", "/api/v1/workspaces/")["results"][0]["id"]
    block = fake.ok("POST", "/api/v1/participant-groups/", {"name": "run r1 block", "workspace_id": ws,
                                                            "participant_ids": ["blocked1"]})
    allow = fake.ok("POST", "/api/v1/participant-groups/", {"name": "run r1 allow", "workspace_id": ws})
    fake.ok("POST", f"/api/v1/participant-groups/{allow['id']}/participants/",
            {"participant_ids": ["p1", "p2", "blocked1"]})
    members = fake.ok("DELETE", f"/api/v1/participant-groups/{allow['id']}/participants/",
                      {"participant_ids": ["blocked1", "never-member"]})
    assert [m["participant_id"] for m in members["results"]] == ["p1", "p2"]
    filters = [{"filter_id": "age", "selected_range": {"lower": 18, "upper": 60}},
               {"filter_id": "participant_group_allowlist", "selected_values": [allow["id"]]},
               {"filter_id": "participant_group_blocklist", "selected_values": [block["id"]]}]
    study = fake.ok("POST", "/api/v1/studies/", study_body(filters=filters))
    assert study["status"] == "UNPUBLISHED"
    assert fake.ok("PATCH", f"/api/v1/studies/{study['id']}/", {"reward": 160})["reward"] == 160
    assert fake.ok("POST", f"/api/v1/studies/{study['id']}/transition/", {"action": "PUBLISH"})["status"] == "ACTIVE"
    # Prolific itself keeps out a blocked participant and one missing from the allow list.
    status, _, _ = fake.request("POST", "/_fake/participants", {"study_id": study["id"], "participant_id": "blocked1"},
                                token=None)
    assert status == 403
    status, _, _ = fake.request("POST", "/_fake/participants", {"study_id": study["id"], "participant_id": "p9"},
                                token=None)
    assert status == 403
    s1 = fake.control("POST", "participants", {"study_id": study["id"], "participant_id": "p1"})
    assert s1["url"] == ("https://crowd.example.org/runs/r1?PROLIFIC_PID=p1&STUDY_ID=%s&SESSION_ID=%s"
                         % (study["id"], s1["id"]))
    s2 = fake.control("POST", "participants", {"study_id": study["id"], "participant_id": "p2"})
    listed = fake.ok("GET", f"/api/v1/studies/{study['id']}/submissions/?page=1&page_size=1")["results"]
    assert [s["id"] for s in listed] == [s1["id"]] and listed[0]["status"] == "ACTIVE"
    assert fake.ok("GET", f"/api/v1/studies/{study['id']}/submissions/?page=2&page_size=1")["results"][0]["id"] == s2["id"]
    fake.control("POST", f"submissions/{s1['id']}/complete", {"code": CODE})
    fake.control("POST", f"submissions/{s2['id']}/complete", {"code": SCREEN})
    assert fake.ok("POST", f"/api/v1/submissions/{s1['id']}/transition/", {"action": "APPROVE"})["status"] == "APPROVED"
    rejected = fake.ok("POST", f"/api/v1/submissions/{s2['id']}/transition/",
                       {"action": "REJECT", "message": REASON, "rejection_category": "FAILED_INSTRUCTIONS"})
    assert rejected["status"] == "REJECTED"
    setup = fake.ok("POST", "/api/v1/submissions/bonus-payments/",
                    {"study_id": study["id"], "csv_bonuses": f"p1,0.50\n{s2['id']},1\n"})
    assert setup["amount"] == 150
    assert fake.request("POST", f"/api/v1/bulk-bonus-payments/{setup['id']}/pay/")[0] == 202
    assert fake.ok("GET", f"/api/v1/submissions/{s1['id']}/")["bonus_payments"] == [50]
    assert fake.ok("POST", f"/api/v1/studies/{study['id']}/transition/", {"action": "STOP"})["status"] == "COMPLETED"
    assert fake.violations() == []
    state = fake.state()
    assert state["groups"][allow["id"]]["members"] == ["p1", "p2"]
    assert len(state["payments"]) == 2


def test_published_study_patch_rules(fake):
    study = published_study(fake)
    path = f"/api/v1/studies/{study['id']}/"
    assert fake.ok("PATCH", path, {"total_available_places": 5})["total_available_places"] == 5
    assert fake.request("PATCH", path, {"reward": 10})[0] == 400
    assert fake.request("PATCH", path, {"total_available_places": 4})[0] == 400
    fake.ok("POST", path + "transition/", {"action": "STOP"})
    assert fake.ok("PATCH", path, {"total_available_places": 6})["status"] == "ACTIVE"  # more places reopen it
    assert len(fake.violations()) == 2


MALFORMED = [  # (name, method, path template, body) — {study} and {sub} are filled in
    ("no trailing slash", "GET", "/api/v1/studies/{study}", None),
    ("wrong method", "PUT", "/api/v1/studies/{study}/", {"name": "x"}),
    ("missing field", "POST", "/api/v1/studies/", study_body(reward=None) | {"reward": None}),
    ("reward not integer cents", "POST", "/api/v1/studies/", study_body(reward=1.5)),
    ("reward zero", "POST", "/api/v1/studies/", study_body(reward=0)),
    ("places as string", "POST", "/api/v1/studies/", study_body(total_available_places="3")),
    ("bad prolific_id_option", "POST", "/api/v1/studies/", study_body(prolific_id_option="url")),
    ("missing placeholder", "POST", "/api/v1/studies/",
     study_body(external_study_url="https://x.org/runs/r1?PROLIFIC_PID={{%PROLIFIC_PID%}}")),
    ("no completion codes", "POST", "/api/v1/studies/", study_body(completion_codes=[])),
    ("code without actions", "POST", "/api/v1/studies/",
     study_body(completion_codes=[{"code": CODE, "code_type": "COMPLETED"}])),
    ("actions as strings", "POST", "/api/v1/studies/",
     study_body(completion_codes=[{"code": CODE, "code_type": "COMPLETED", "actions": ["MANUALLY_REVIEW"]}])),
    ("unknown study field", "POST", "/api/v1/studies/", study_body(rewrad=100)),
    ("filter without values", "POST", "/api/v1/studies/", study_body(filters=[{"filter_id": "age"}])),
    ("filter with unknown group", "POST", "/api/v1/studies/",
     study_body(filters=[{"filter_id": "participant_group_blocklist", "selected_values": ["nope"]}])),
    ("bad study action", "POST", "/api/v1/studies/{study}/transition/", {"action": "publish"}),
    ("reject short message", "POST", "/api/v1/submissions/{sub}/transition/",
     {"action": "REJECT", "message": "too short", "rejection_category": "OTHER"}),
    ("rejection category as array", "POST", "/api/v1/submissions/{sub}/transition/",
     {"action": "REJECT", "message": REASON, "rejection_category": ["OTHER"]}),
    ("unknown rejection category", "POST", "/api/v1/submissions/{sub}/transition/",
     {"action": "REJECT", "message": REASON, "rejection_category": "BORING"}),
    ("bad submission action", "POST", "/api/v1/submissions/{sub}/transition/", {"action": "ACCEPT"}),
    ("group without workspace", "POST", "/api/v1/participant-groups/", {"name": "g"}),
    ("participant_ids not a list", "POST", "/api/v1/participant-groups/{group}/participants/",
     {"participant_ids": "p1"}),
    ("delete members without body", "DELETE", "/api/v1/participant-groups/{group}/participants/", None),
    ("bonus amount in cents", "POST", "/api/v1/submissions/bonus-payments/",
     {"study_id": "{study}", "csv_bonuses": "p1,1.005\n"}),
    ("bonus id not in study", "POST", "/api/v1/submissions/bonus-payments/",
     {"study_id": "{study}", "csv_bonuses": "stranger,1.00\n"}),
    ("bonus csv with semicolon", "POST", "/api/v1/submissions/bonus-payments/",
     {"study_id": "{study}", "csv_bonuses": "p1;1.00\n"}),
    ("bad page_size", "GET", "/api/v1/studies/{study}/submissions/?page_size=0", None),
]


@pytest.mark.parametrize("name,method,path,body", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_request_is_rejected(fake, name, method, path, body):
    study = published_study(fake)
    sub = awaiting_submission(fake, study["id"], "p1")
    ws = fake.ok("GET", "/api/v1/workspaces/")["results"][0]["id"]
    group = fake.ok("POST", "/api/v1/participant-groups/", {"name": "g", "workspace_id": ws})
    ids = {"{study}": study["id"], "{sub}": sub["id"], "{group}": group["id"]}

    def fill(v):
        for k, x in ids.items():
            v = v.replace(k, x)
        return v
    body = json.loads(fill(json.dumps(body))) if body is not None else None
    if name == "missing field":
        body.pop("reward")
    before = fake.state()
    status, out, _ = fake.request(method, fill(path), body)
    expected = {"no trailing slash": 404, "wrong method": 405}.get(name, 400)
    assert status == expected, out
    assert out["error"]["status"] == expected and out["error"]["detail"] and out["error"]["title"]
    violations = fake.violations()
    assert len(violations) == 1 and violations[0]["path"] == fill(path).split("?")[0]
    after = fake.state()
    assert after["studies"] == before["studies"] and after["submissions"] == before["submissions"]
    assert after["bonus_setups"] == before["bonus_setups"] and after["groups"] == before["groups"]


def test_auth_and_content_type(fake):
    assert fake.request("GET", "/api/v1/users/me/", token=None)[0] == 401
    assert fake.request("GET", "/api/v1/users/me/", token="wrong")[0] == 401
    status, _, _ = fake.request("POST", "/api/v1/studies/", raw=json.dumps(study_body()).encode(),
                                content_type="text/plain")
    assert status == 400
    assert len(fake.violations()) == 3
    assert fake.state()["studies"] == {}


def test_state_refusals_are_not_violations(fake):
    study = published_study(fake)
    sub = fake.control("POST", "participants", {"study_id": study["id"], "participant_id": "p1"})
    # ACTIVE, not AWAITING REVIEW: Prolific refuses, the request itself was well formed.
    status, out, _ = fake.request("POST", f"/api/v1/submissions/{sub['id']}/transition/", {"action": "APPROVE"})
    assert status == 400 and "AWAITING REVIEW" in out["error"]["detail"]
    assert fake.request("POST", f"/api/v1/studies/{study['id']}/transition/", {"action": "PUBLISH"})[0] == 400
    assert fake.violations() == []
    assert len(fake.control("GET", "refusals")["refusals"]) == 2
    assert fake.state()["submissions"][sub["id"]]["status"] == "ACTIVE"


def test_returned_submission_frees_its_place(fake):
    study = published_study(fake, total_available_places=1)
    sub = fake.control("POST", "participants", {"study_id": study["id"], "participant_id": "p1"})
    status, _, _ = fake.request("POST", "/_fake/participants", {"study_id": study["id"], "participant_id": "p2"},
                                token=None)
    assert status == 409
    fake.control("POST", f"submissions/{sub['id']}/status", {"status": "RETURNED"})
    listed = fake.ok("GET", f"/api/v1/studies/{study['id']}/submissions/")["results"]
    assert listed[0]["status"] == "RETURNED"
    assert fake.control("POST", "participants", {"study_id": study["id"], "participant_id": "p2"})["status"] == "ACTIVE"


def test_throttled_and_failed_calls_have_no_effect(fake):
    ws = fake.ok("GET", "/api/v1/workspaces/")["results"][0]["id"]
    group = fake.ok("POST", "/api/v1/participant-groups/", {"name": "g", "workspace_id": ws})
    fake.control("POST", "config", {"throttle_share": 1.0})
    status, _, headers = fake.request("POST", f"/api/v1/participant-groups/{group['id']}/participants/",
                                      {"participant_ids": ["p1"]})
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert fake.request("POST", "/api/v1/studies/", study_body())[0] == 429
    fake.control("POST", "config", {"throttle_share": 0.0, "fail_share": 1.0})
    status, _, _ = fake.request("POST", f"/api/v1/participant-groups/{group['id']}/participants/",
                                {"participant_ids": ["p1"]})
    assert status in (500, 502, 503)
    fake.control("POST", "config", {"fail_share": 0.0})
    state = fake.state()
    assert state["groups"][group["id"]]["members"] == [] and state["studies"] == {}
    outcomes = [c["outcome"] for c in fake.control("GET", "calls")["calls"]]
    assert outcomes.count("throttled") == 2 and outcomes.count("failed") == 1


def test_throttle_share_is_a_share(fake):
    fake.control("POST", "config", {"throttle_share": 0.1, "seed": 7})
    statuses = [fake.request("GET", "/api/v1/users/me/")[0] for _ in range(400)]
    fake.control("POST", "config", {"throttle_share": 0.0})
    assert 20 <= statuses.count(429) <= 60 and set(statuses) == {200, 429}


def test_pay_twice_pays_twice(fake):
    study = published_study(fake)
    awaiting_submission(fake, study["id"], "p1")
    setup = fake.ok("POST", "/api/v1/submissions/bonus-payments/", {"study_id": study["id"], "csv_bonuses": "p1,2.25"})
    assert setup["amount"] == 225 and fake.state()["payments"] == []  # set up is not paid
    for _ in range(2):
        status, body, _ = fake.request("POST", f"/api/v1/bulk-bonus-payments/{setup['id']}/pay/")
        assert status == 202
    payments = fake.state()["payments"]
    assert [p["amount"] for p in payments] == [225, 225] and {p["participant_id"] for p in payments} == {"p1"}
    sub_id = payments[0]["submission_id"]
    assert fake.ok("GET", f"/api/v1/submissions/{sub_id}/")["bonus_payments"] == [225, 225]


def test_slow_path_answers_late_but_takes_effect(fake):
    study = published_study(fake)
    awaiting_submission(fake, study["id"], "p1")
    setup = fake.ok("POST", "/api/v1/submissions/bonus-payments/", {"study_id": study["id"], "csv_bonuses": "p1,1"})
    fake.control("POST", "config", {"slow_paths": {"/pay/$": 1.5}})
    req = urllib.request.Request(f"{fake.base}/api/v1/bulk-bonus-payments/{setup['id']}/pay/", data=b"",
                                 method="POST", headers={"Authorization": f"Token {TOKEN}"})
    with pytest.raises((socket.timeout, urllib.error.URLError, TimeoutError)):
        urllib.request.urlopen(req, timeout=0.3)
    assert len(fake.state()["payments"]) == 1  # paid although the caller saw a timeout
    fake.control("POST", "config", {"slow_paths": {}})
    time.sleep(1.3)  # let the slow answer drain


def test_down_refuses_connections_then_comes_back(fake):
    fake.ok("GET", "/api/v1/users/me/")
    fake.control("POST", "config", {"down_for_s": 1.0})
    with pytest.raises(urllib.error.URLError) as err:
        urllib.request.urlopen(fake.base + "/api/v1/users/me/", timeout=2)
    assert isinstance(err.value.reason, ConnectionRefusedError)
    time.sleep(1.3)
    assert fake.ok("GET", "/api/v1/users/me/")["id"]


def test_down_mode_503(fake):
    fake.control("POST", "config", {"down_for_s": 0.5, "down_mode": "503"})
    assert fake.request("POST", "/api/v1/studies/", study_body())[0] == 503
    time.sleep(0.6)
    fake.control("POST", "config", {"down_mode": "refuse"})
    assert fake.state()["studies"] == {}
    assert fake.request("GET", "/api/v1/users/me/")[0] == 200
