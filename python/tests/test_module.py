"""The crowdgate module's API: names, return shapes, errors and help, as a Python user meets them."""
import datetime
import json
import threading

import pytest

import crowdgate
from conftest import run_cli


def test_find_or_create_qualification_is_idempotent(db):
    first = db.find_or_create_qualification("english", "English level")
    again = db.find_or_create_qualification("english", "another description")
    assert first == again
    assert first["name"] == "english" and first["description"] == "English level"
    assert [q["name"] for q in db.qualifications()] == ["english"]


def test_grant_revoke_and_lists_of_dicts(db):
    db.find_or_create_qualification("english")
    entry = db.grant_qualification("prolific:5f3a9c0e1d2b", "english", value=85, reason="test")
    assert entry["kind"] == "grant" and entry["old_value"] is None and entry["new_value"] == 85
    assert entry["worker"] == "prolific:5f3a9c0e1d2b"
    changed = db.grant_qualification("prolific:5f3a9c0e1d2b", "english", 90)
    assert changed["kind"] == "change" and changed["old_value"] == 85
    db.grant_qualification("alice", "english")  # bare name = local, value defaults to 1
    grants = db.grants("english")
    assert [(g["worker"], g["value"]) for g in grants] == [("local:alice", 1), ("prolific:5f3a9c0e1d2b", 90)]
    assert set(grants[0]) == {"worker", "value", "granted_at", "updated_at", "expires_at"}
    assert db.qualifications()[0]["grants"] == 2
    assert db.revoke_qualification("alice", "english", reason="left") is True
    assert db.revoke_qualification("alice", "english") is False  # held none: nothing changes
    history = db.history(worker="local:alice")
    assert [e["kind"] for e in history] == ["grant", "revoke"]
    assert history[-1]["reason"] == "left" and history[-1]["actor"].startswith("python:")
    assert [e["new_value"] for e in db.history(name="english", worker="prolific:5f3a9c0e1d2b")] == [85, 90]


def test_module_and_cli_share_the_database(db, db_path):
    db.find_or_create_qualification("blocked")
    db.grant_qualification("bob", "blocked", reason="spam")
    shown = json.loads(run_cli(db_path, "--json", "qual", "show", "blocked").stdout)
    assert shown[0]["worker"] == "local:bob"
    run_cli(db_path, "qual", "grant", "blocked", "carol")
    assert [g["worker"] for g in db.grants("blocked")] == ["local:bob", "local:carol"]


@pytest.mark.parametrize(
    "expires",
    ["30d", "12h", "2w", datetime.timedelta(days=3), datetime.datetime(2099, 1, 31), "2099-01-31",
     datetime.datetime(2099, 1, 31, tzinfo=datetime.timezone.utc).timestamp()],
)
def test_expiry_forms(db, expires):
    db.find_or_create_qualification("temp-block")
    entry = db.grant_qualification("alice", "temp-block", expires=expires)
    assert entry["expires_at"] is not None
    assert db.grants("temp-block")[0]["expires_at"] == entry["expires_at"]


def test_naive_datetime_means_utc(db):
    db.find_or_create_qualification("q")
    entry = db.grant_qualification("alice", "q", expires=datetime.datetime(2099, 1, 31, 12, 0, 0))
    assert entry["expires_at"] == "2099-01-31T12:00:00Z"


def test_errors_are_python_exceptions_with_crowdgate_messages(db):
    with pytest.raises(LookupError, match="nosuchqual"):
        db.grant_qualification("alice", "nosuchqual")
    with pytest.raises(LookupError, match="nosuchqual"):
        db.grants("nosuchqual")
    with pytest.raises(LookupError, match="run_0000"):
        db.export("run_0000000000000000")
    db.find_or_create_qualification("q")
    with pytest.raises(ValueError, match="bad name"):
        db.grant_qualification("bad name", "q")
    with pytest.raises(ValueError, match="must be in the future"):
        db.grant_qualification("alice", "q", expires=datetime.datetime(2000, 1, 1))
    with pytest.raises(ValueError, match="yesterday"):
        db.grant_qualification("alice", "q", expires="yesterday")
    with pytest.raises(ValueError):
        db.find_or_create_qualification("")
    with pytest.raises(ValueError, match="comparator"):
        crowdgate.make_qualification_dict("q", "Bigger", 1)
    with pytest.raises(ValueError, match="value"):
        crowdgate.make_qualification_dict("q", "GreaterThan", 1.5)
    with pytest.raises(ValueError, match="value"):
        crowdgate.make_qualification_dict("q", "Exists", 1)
    with pytest.raises(ValueError, match="missing key"):
        db.worker_is_qualified("alice", [{"qualification_name": "q", "comparator": "Exists"}])
    with pytest.raises(ValueError):
        db.worker_is_qualified("alice", {"qualification_name": "q"})  # a dict, not a list of them


def test_make_qualification_dict_is_mephistos_shape():
    d = crowdgate.make_qualification_dict("english", crowdgate.QUAL_GREATER_EQUAL, 80)
    assert d == {"qualification_name": "english", "comparator": "GreaterThanOrEqualTo", "value": 80,
                 "applicable_providers": None}
    d = crowdgate.make_qualification_dict("block", crowdgate.QUAL_NOT_EXIST, None, ["mock", "prolific"])
    assert d["applicable_providers"] == ["mock", "prolific"]  # Mephisto's names are kept in the dict
    assert crowdgate.make_qualification_dict("q", "In", [1, 2])["value"] == [1, 2]


def test_worker_is_qualified_rules(db):
    for name in ("english", "block"):
        db.find_or_create_qualification(name)
    db.grant_qualification("alice", "english", 85)
    db.grant_qualification("bob", "english", 60)
    db.grant_qualification("bob", "block", 0)  # value 0 still exists: blocked
    reqs = [crowdgate.make_qualification_dict("english", "GreaterThanOrEqualTo", 80),
            crowdgate.make_qualification_dict("block", "DoesNotExist", None)]
    assert db.worker_is_qualified("alice", reqs)
    assert not db.worker_is_qualified("bob", reqs)
    assert not db.worker_is_qualified("carol", reqs)  # no grant fails GreaterThanOrEqualTo
    assert not db.worker_is_qualified("carol", [crowdgate.make_qualification_dict("english", "NotEqualTo", 1)])
    assert db.worker_is_qualified("carol", [])
    # Mephisto's mock provider means local.
    only_mock = [crowdgate.make_qualification_dict("english", "Exists", None, ["mock"])]
    assert not db.worker_is_qualified("carol", only_mock)
    assert db.worker_is_qualified("prolific:p1", only_mock)  # does not apply to prolific workers


def test_threads_share_a_database(db):
    db.find_or_create_qualification("count")
    errors = []

    def work(i):
        try:
            for j in range(50):
                db.grant_qualification(f"w{i}-{j}", "count", j)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(db.grants("count")) == 200


def test_closed_database_says_so(db_path):
    database = crowdgate.open(db_path)
    database.close()
    with pytest.raises(ValueError, match="closed"):
        database.qualifications()


def test_help_teaches():
    text = crowdgate.__doc__
    for word in ("open(", "grant_qualification", "make_qualification_dict", "worker_is_qualified", "LookupError",
                 "import-mephisto", "PROVIDER:NAME"):
        assert word in text
    for name in ("open", "make_qualification_dict"):
        assert getattr(crowdgate, name).__doc__
    for name in ("find_or_create_qualification", "grant_qualification", "revoke_qualification",
                 "worker_is_qualified", "qualifications", "grants", "history", "runs", "export", "close"):
        assert len(getattr(crowdgate.Database, name).__doc__) > 60, name


def test_long_calls_release_the_gil(db, db_path):
    """A grant waiting for a write lock held elsewhere lets other Python threads run: here the very thread
    that holds the lock, which could never let go of it if the grant kept the GIL."""
    import sqlite3
    import time

    db.find_or_create_qualification("q")
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, as a busy server would hold it
    result = {}
    grant = threading.Thread(target=lambda: result.update(entry=db.grant_qualification("alice", "q", 7)))
    grant.start()
    ticks = 0
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        ticks += 1
        time.sleep(0.01)
    assert grant.is_alive()  # still waiting for the lock
    other.execute("COMMIT")
    grant.join(timeout=10)
    other.close()
    assert ticks > 10
    assert result["entry"]["new_value"] == 7
