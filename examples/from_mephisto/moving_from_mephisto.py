# %% [markdown]
# # Moving a live project from Mephisto to crowdgate
#
# A notebook in script form (each `# %%` is a cell; VS Code and Jupytext open it as a notebook).
# Run it as a script with your Mephisto database and a crowdgate database:
#
#     PYTHONPATH=build/release/python /usr/bin/python3 examples/from_mephisto/moving_from_mephisto.py \
#         ~/mephisto/data/database.db crowdgate.db
#
# It imports the Mephisto database (read-only: Mephisto may keep running), then does in crowdgate
# what a Mephisto script does with `find_or_create_qualification`, `grant_qualification`,
# `make_qualification_dict` and `worker_is_qualified`.

# %%
import os
import subprocess
import sys

import crowdgate

MEPHISTO_DB = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/mephisto/data/database.db")
CROWDGATE_DB = sys.argv[2] if len(sys.argv) > 2 else "crowdgate.db"
CROWDGATE = os.environ.get("CROWDGATE_BIN", "build/release/src/cli/crowdgate")

# %% [markdown]
# ## 1. Import: qualifications, grants and workers. Run it again any time; only changes are written.

# %%
report = subprocess.run([CROWDGATE, "--db", CROWDGATE_DB, "import-mephisto", MEPHISTO_DB],
                        capture_output=True, text=True, check=True)
print(report.stdout)

# %% [markdown]
# ## 2. What came over. Workers are PROVIDER:NAME; Mephisto's mock workers are local ones.

# %%
db = crowdgate.open(CROWDGATE_DB)
for q in db.qualifications():
    print(f"{q['name']:32} {q['grants']:6} grants")

# %% [markdown]
# ## 3. The same calls as in a Mephisto script.

# %%
db.find_or_create_qualification("english-level", "Self-reported English level, 0-100")
db.grant_qualification("prolific:5f3a9c0e1d2b4a6f7e8d9c0b", "english-level", value=90)
requirements = [
    crowdgate.make_qualification_dict("english-level", crowdgate.QUAL_GREATER_EQUAL, 80),
    crowdgate.make_qualification_dict("sentiment-block", crowdgate.QUAL_NOT_EXIST, None),
]
for worker in ("prolific:5f3a9c0e1d2b4a6f7e8d9c0b", "mturk:A1B2C3D4E5", "local:alice"):
    print(worker, db.worker_is_qualified(worker, requirements))

# %% [markdown]
# ## 4. A temporary block, with a reason kept in the history.

# %%
db.find_or_create_qualification("sentiment-block")
db.grant_qualification("local:alice", "sentiment-block", expires="7d", reason="too fast, see run notes")
print(db.worker_is_qualified("local:alice", requirements))
for entry in db.history(worker="local:alice"):
    print(entry["at"], entry["kind"], entry["qualification"], entry["new_value"], entry["reason"])

# %% [markdown]
# ## 5. Unlike Mephisto, a requirement naming a qualification that does not exist fails closed.

# %%
try:
    db.worker_is_qualified("local:alice", [crowdgate.make_qualification_dict("englsh-level", "Exists", None)])
except LookupError as e:
    print("refused:", e)
db.close()
