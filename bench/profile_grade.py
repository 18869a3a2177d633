"""Where a grade's time goes, per problem: the profile to read before making the grader faster.

    .venv/bin/python bench/profile_grade.py [--assignment hw2] [--skip-slow] [--problem NAMES]

Grades solutions/ in this process (the judge) with the sandbox's entry points timed, and
prints, per problem, seconds spent in:

    sandbox start   copying the submission, planning the confinement, forking the child,
                    until the child is confined and ready (fork server warm-up excluded)
    round trips     requests to the child (student calls, grader tasks, loads): sending,
                    the child's work, waiting; and of that, the student code itself as the
                    child's own clock would see it is not separable from here
    decode          reading replies (torch.load with weights_only) in the judge
    oracle          the exact expectations of autograder/tabular.py
    other judge     what is left: Hypothesis generating and shrinking, comparisons,
                    evaluating trained policies, building inputs
    cleanup         killing the child and its descendants, removing its folder

and, once, the judge's start-up: importing the grader (torch included), the fork server's
first start (it imports torch, torch.optim and gymnasium), and the start-up self-check.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

clock: dict[str, float] = defaultdict(float)


@contextmanager
def timed(key: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        clock[key] += time.perf_counter() - start


def wrap(owner, name: str, key: str) -> None:
    original = getattr(owner, name)

    def timed_call(*args, **kwargs):
        with timed(key):
            return original(*args, **kwargs)

    setattr(owner, name, timed_call)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="all")
    parser.add_argument("--problem", default=None)
    parser.add_argument("--skip-slow", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    from autograder import tabular
    from autograder.paths import SOLUTIONS
    from autograder.problem import Reference
    from autograder.runner import run_problem, select
    from autograder.sandbox import forkserver, judge, prepare, self_check, wire
    imports = time.perf_counter() - start

    with timed("fork server start"):
        forkserver.start()
    with timed("self-check"):
        prepare()
        self_check(SOLUTIONS)
    startup = {"imports": imports, "fork server start": clock.pop("fork server start"),
               "self-check": clock.pop("self-check")}

    wrap(judge.Sandbox, "__init__", "sandbox start")
    wrap(judge.Sandbox, "_wait_ready", "sandbox start")
    wrap(judge.Sandbox, "request", "round trips")
    wrap(wire, "decode", "decode")
    wrap(judge.Sandbox, "close", "cleanup")
    reference = Reference.find(SOLUTIONS)
    problems = select(args.assignment, args.problem, with_reference=reference is not None,
                      include_slow=not args.skip_slow)
    oracle = ("exact_gradient", "enumerate_trajectories", "expectation", "variance", "variance_with_constant_baseline",
              "objective", "objective_by_enumeration", "value_by_inverse")
    for module in [tabular, *(sys.modules[m] for m in list(sys.modules) if m.startswith("autograder.problems."))]:
        for name in oracle:  # the problems bind these names at import: wrap them where they are looked up
            if getattr(module, name, None) is getattr(tabular, name, None) and hasattr(module, name):
                wrap(module, name, "oracle")
    columns = ["sandbox start", "round trips", "decode", "oracle", "other judge", "cleanup"]
    print(f"judge start-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in startup.items()))
    print(f"{'problem':<40} {'total':>7} " + " ".join(f"{c:>13}" for c in columns))
    totals: dict[str, float] = defaultdict(float)
    for p in problems:
        clock.clear()
        t0 = time.perf_counter()
        result = run_problem(p, SOLUTIONS, reference=reference)
        total = time.perf_counter() - t0
        row = dict(clock)
        row["round trips"] = row.get("round trips", 0.0) - row.get("decode", 0.0)  # decode happens inside request
        row["other judge"] = total - sum(row.get(c, 0.0) for c in columns if c != "other judge")
        for c in columns:
            totals[c] += row.get(c, 0.0)
        totals["total"] += total
        flag = "" if result.passed else "  (not passed!)"
        print(f"{p.id:<40} {total:>7.2f} " + " ".join(f"{row.get(c, 0.0):>13.2f}" for c in columns) + flag)
    print(f"{'all problems':<40} {totals['total']:>7.2f} " + " ".join(f"{totals[c]:>13.2f}" for c in columns))


if __name__ == "__main__":
    main()
