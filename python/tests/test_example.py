"""examples/from_mephisto runs end to end on a Mephisto database built from tests/data/mephisto."""
import os
import sqlite3
import subprocess
import sys

from conftest import BIN, SOURCE_DIR


def test_moving_from_mephisto_example_runs(tmp_path):
    mephisto = tmp_path / "database.db"
    con = sqlite3.connect(mephisto)
    con.executescript((SOURCE_DIR / "tests/data/mephisto/schema_after_2024.sql").read_text())
    con.executescript((SOURCE_DIR / "tests/data/mephisto/data.sql").read_text())
    con.close()
    env = dict(os.environ, CROWDGATE_BIN=BIN)
    out = subprocess.run([sys.executable, str(SOURCE_DIR / "examples/from_mephisto/moving_from_mephisto.py"),
                          str(mephisto), str(tmp_path / "crowdgate.db")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "sentiment-onboarding-failed" in out.stdout
    assert "prolific:5f3a9c0e1d2b4a6f7e8d9c0b True" in out.stdout
    assert "mturk:A1B2C3D4E5 False" in out.stdout  # holds sentiment-block from Mephisto
    assert "too fast, see run notes" in out.stdout
    assert "refused:" in out.stdout and "englsh-level" in out.stdout
