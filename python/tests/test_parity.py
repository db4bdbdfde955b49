"""Eligibility parity with Mephisto: for random grants and random requirement lists in Mephisto's dict
shape, worker_is_qualified agrees with Mephisto's worker_is_qualified as its rules are documented
(mephisto/utils/qualifications.py) - except where crowdgate differs on purpose, which is asserted too:
  - a requirement naming a qualification that does not exist: Mephisto skips it (fails open),
    crowdgate raises LookupError (fails closed);
  - applicable_providers: Mephisto checks every requirement locally, crowdgate only those that apply
    to the worker's provider.
"""
import operator
import random

import pytest

import crowdgate

COMPARATORS = ["GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "EqualTo", "NotEqualTo",
               "Exists", "DoesNotExist", "In", "NotIn"]
OPS = {
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
    "EqualTo": operator.eq,
    "NotEqualTo": lambda a, b: not a == b,
    "In": lambda a, b: a in b,
    "NotIn": lambda a, b: a not in b,
}
QUALS = ["q0", "q1", "q2", "q3"]
GHOST = "never-created"
WORKERS = ["local:alice", "local:bob", "prolific:p1", "mturk:A1", "mturk_sandbox:S1"]


def mephisto_worker_is_qualified(grants, existing, requirements):
    """Mephisto's rules, step by step: unknown qualification -> skipped; Exists / DoesNotExist look at
    existence only; every other comparator fails without a grant, else compares the value."""
    for req in requirements:
        name = req["qualification_name"]
        if name not in existing:
            continue  # "Expected to create qualification ..., but none found... skipping."
        granted = grants.get(name)
        comparator = req["comparator"]
        if comparator == "Exists":
            if granted is None:
                return False
        elif comparator == "DoesNotExist":
            if granted is not None:
                return False
        elif granted is None or not OPS[comparator](granted, req["value"]):
            return False
    return True


def applies(req, worker):
    providers = req["applicable_providers"]
    provider = worker.split(":")[0]
    return providers is None or provider in ["local" if p in ("mock", "inhouse") else p for p in providers]


def random_requirement(rng, names):
    comparator = rng.choice(COMPARATORS)
    if comparator in ("Exists", "DoesNotExist"):
        value = None
    elif comparator in ("In", "NotIn"):
        value = rng.sample(range(-3, 4), rng.randint(1, 3))
    else:
        value = rng.randint(-3, 3)
    providers = None
    if rng.random() < 0.25:
        providers = rng.sample(["mock", "inhouse", "prolific", "mturk", "mturk_sandbox"], rng.randint(1, 2))
    return crowdgate.make_qualification_dict(rng.choice(names), comparator, value, providers)


@pytest.mark.parametrize("seed", range(40))
def test_worker_is_qualified_agrees_with_mephisto(tmp_path, seed):
    rng = random.Random(seed)
    grants = {w: {} for w in WORKERS}
    with crowdgate.open(str(tmp_path / f"parity-{seed}.db")) as db:
        for q in QUALS:
            db.find_or_create_qualification(q)
        for worker in WORKERS:
            for q in QUALS:
                if rng.random() < 0.5:
                    grants[worker][q] = rng.randint(-3, 3)
                    db.grant_qualification(worker, q, grants[worker][q])
        for _ in range(60):
            reqs = [random_requirement(rng, QUALS) for _ in range(rng.randint(0, 4))]
            worker = rng.choice(WORKERS)
            mephisto = mephisto_worker_is_qualified(grants[worker], set(QUALS), reqs)
            ours = db.worker_is_qualified(worker, reqs)
            if all(r["applicable_providers"] is None for r in reqs):
                assert ours == mephisto, (worker, grants[worker], reqs)
            # crowdgate honours applicable_providers: the same rules over the requirements that apply.
            expected = mephisto_worker_is_qualified(grants[worker], set(QUALS), [r for r in reqs if applies(r, worker)])
            assert ours == expected, (worker, grants[worker], reqs)


@pytest.mark.parametrize("seed", range(10))
def test_unknown_qualification_fails_closed_where_mephisto_lets_everyone_in(tmp_path, seed):
    rng = random.Random(1000 + seed)
    with crowdgate.open(str(tmp_path / "ghost.db")) as db:
        for q in QUALS:
            db.find_or_create_qualification(q)
        reqs = [random_requirement(rng, QUALS) for _ in range(rng.randint(0, 3))]
        reqs.insert(rng.randint(0, len(reqs)), crowdgate.make_qualification_dict(GHOST, "Exists", None))
        worker = rng.choice(WORKERS)
        # Mephisto ignores the allow list it cannot find: a worker with no grant at all gets in
        # whenever the other requirements are DoesNotExist ones.
        only_ghost = [crowdgate.make_qualification_dict(GHOST, "Exists", None)]
        assert mephisto_worker_is_qualified({}, set(QUALS), only_ghost) is True
        with pytest.raises(LookupError, match=GHOST):
            db.worker_is_qualified(worker, only_ghost)
        with pytest.raises(LookupError, match=GHOST):
            db.worker_is_qualified(worker, reqs)
