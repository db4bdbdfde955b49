"""Shared fixtures: a fresh crowdgate database per test, the crowdgate binary, the source tree."""
import os
import pathlib
import subprocess

import pytest

import crowdgate

SOURCE_DIR = pathlib.Path(os.environ.get("CROWDGATE_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BIN = os.environ.get("CROWDGATE_BIN", str(SOURCE_DIR / "build/release/src/cli/crowdgate"))


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "crowdgate.db")


@pytest.fixture
def db(db_path):
    with crowdgate.open(db_path) as database:
        yield database


def run_cli(db_path, *args, check=True):
    """Runs the crowdgate binary on db_path and returns the CompletedProcess."""
    result = subprocess.run([BIN, "--db", db_path, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result
