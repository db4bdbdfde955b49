"""The examples in help(crowdgate) and in the README's Python section run as written."""
import re

import crowdgate
from conftest import SOURCE_DIR


def run_example(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lines = [line for line in code.splitlines() if "db.export(" not in line and "for row in" not in line]
    env = {"crowdgate": crowdgate}
    exec("\n".join(lines), env)  # noqa: S102 - our own documentation
    return env


def test_module_docstring_example_runs(tmp_path, monkeypatch):
    block = crowdgate.__doc__.split("Start with open():", 1)[1].split("\n\n")[1]
    code = "\n".join(line[4:] for line in block.splitlines())
    env = run_example(code, tmp_path, monkeypatch)
    assert env["db"].worker_is_qualified("prolific:5f3a9c0e1d2b4a6f7e8d9c0b", env["reqs"])


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = (SOURCE_DIR / "README.md").read_text()
    section = readme.split("### The Python module", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = run_example(code, tmp_path, monkeypatch)
    assert env["db"].worker_is_qualified("prolific:5f3a9c0e1d2b4a6f7e8d9c0b", env["requirements"])
