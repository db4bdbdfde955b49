"""The module next to a running `crowdgate serve` on the same database: a grant made from Python
reaches the server at the next request for work; runs() and export() see what the server wrote."""
import json
import re
import subprocess
import time
import urllib.request

import pytest

import crowdgate
from conftest import BIN, run_cli


def launch(tmp_path, db_path):
    (tmp_path / "task.html").write_text('<p>${text}</p><input name="label">')
    (tmp_path / "units.jsonl").write_text("".join(json.dumps({"text": f"item {i}"}) + "\n" for i in range(5)))
    config = tmp_path / "config.yaml"
    config.write_text("task:\n  task_name: py-serve\n  task_title: Python and serve\n"
                      "blueprint:\n  type: static_html\n  task_source: task.html\n  data: units.jsonl\n"
                      "  block_qualification: py-block\n"
                      # The test names workers in the request body instead of signing links.
                      "provider:\n  type: local\n  trust_worker_param: true\n")
    return run_cli(db_path, "launch", str(config)).stdout.strip().splitlines()[-1]


@pytest.fixture
def server(tmp_path, db_path):
    run_id = launch(tmp_path, db_path)
    err = open(tmp_path / "serve-stderr.txt", "w+")
    proc = subprocess.Popen([BIN, "--db", db_path, "serve", "--port", "0"], stdout=subprocess.DEVNULL, stderr=err)
    port = None
    for _ in range(300):
        err.seek(0)
        m = re.search(r"serving on http://127\.0\.0\.1:(\d+)", err.read())
        if m:
            port = int(m.group(1))
            break
        assert proc.poll() is None, "serve exited early"
        time.sleep(0.05)
    assert port, "serve printed no port"
    yield run_id, f"http://127.0.0.1:{port}"
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    err.close()


def post(url, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_grant_from_python_reaches_a_running_server(server, db_path):
    run_id, base = server
    work = base + f"/api/v1/runs/{run_id}/work"
    with crowdgate.open(db_path) as db:
        carol = post(work, {"provider": "local", "worker": "carol"})
        assert carol["outcome"] == "unit"
        # Block bob from Python while the server runs: refused at his next request, no restart.
        db.grant_qualification("bob", "py-block", reason="from a notebook")
        bob = post(work, {"provider": "local", "worker": "bob"})
        assert (bob["outcome"], bob["reason"]) == ("not_qualified", "blocked")
        assert db.revoke_qualification("bob", "py-block") is True
        assert post(work, {"provider": "local", "worker": "bob"})["outcome"] == "unit"
        # What the server wrote is visible from Python.
        post(base + f"/api/v1/agents/{carol['agent_id']}/submit", {"data": {"label": "pos"}}, carol["token"])
        runs = db.runs()
        assert [r["run_id"] for r in runs] == [run_id]
        assert runs[0]["task_name"] == "py-serve" and runs[0]["units"]["completed"] == 1
        rows = db.export(run_id)
        submitted = [r for r in rows if r["worker"] == "local:carol"]
        assert submitted[0]["data"] == {"label": "pos"} and submitted[0]["kind"] == "unit"
        assert set(submitted[0]) >= {"run_id", "unit_id", "item", "worker", "agent_id", "kind", "status",
                                     "submitted_at", "duration_s", "data"}


def test_aggregate_returns_one_label_per_labelled_item(server, db_path):
    run_id, base = server
    work = base + f"/api/v1/runs/{run_id}/work"
    # Three workers label the same item (units_per_item is 1, so each gets a different item):
    # every labelled item comes back once, with its only label and full vote share.
    given = {}
    for worker, label in (("ann", "pos"), ("ben", "neg"), ("cid", "pos")):
        w = post(work, {"provider": "local", "worker": worker})
        assert w["outcome"] == "unit"
        post(base + f"/api/v1/agents/{w['agent_id']}/submit", {"data": {"label": label}}, w["token"])
        given[w["data"]["text"]] = label
    with crowdgate.open(db_path) as db:
        rows = db.aggregate(run_id, method="majority")
        assert len(rows) == 3
        assert all(set(r) == {"item", "label", "confidence", "labels"} for r in rows)
        assert sorted(r["label"] for r in rows) == sorted(given.values())
        assert all(r["confidence"] == 1.0 and r["labels"] == 1 for r in rows)
        assert [r["item"] for r in rows] == sorted(r["item"] for r in rows)
        with pytest.raises(ValueError):
            db.aggregate(run_id, method="average")
        with pytest.raises(ValueError):
            db.aggregate(run_id, field="missing")
        with pytest.raises(LookupError):
            db.aggregate("run_0000000000000000")
