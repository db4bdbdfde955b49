"""Everything the fake Prolific server knows (studies, submissions, groups, bonus payments, recorded calls and its
fault-injection config), behind one lock."""

import random
import threading


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
