"""Time to grade solutions/: per problem, per assignment, and the whole command.

    python bench/grade_time.py [--runs 5] [--assignment hw2] [--skip-slow] [--submission solutions]

Prints medians (and min–max) over the runs. Per-problem times come from the
runner (a fresh sandbox per problem, as in real grading); the command's wall
time is a fresh ``python -m autograder grade`` process, start-up (torch
import, fork server) included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def problem_times(submission: str, assignment: str, skip_slow: bool) -> tuple[dict[str, float], float]:
    """Per-problem seconds from the runner (sandbox start-up included), and the score."""
    from autograder.paths import SOLUTIONS
    from autograder.problem import Reference
    from autograder.runner import grade, select

    reference = Reference.find(SOLUTIONS)
    problems = select(assignment, with_reference=reference is not None, include_slow=not skip_slow)
    results = grade(ROOT / submission, problems, reference=reference)
    return {r.problem.id: r.seconds for r in results}, sum(r.score for r in results)


def command_time(submission: str, assignment: str, skip_slow: bool) -> float:
    """Wall time of the whole ``python -m autograder grade`` command."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "autograder", "grade", "--submission", submission, "--assignment", assignment,
               "--results", str(Path(tmp) / "results.json")] + (["--skip-slow"] if skip_slow else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"grading failed:\n{proc.stdout}\n{proc.stderr}")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--assignment", default="all")
    parser.add_argument("--submission", default="solutions")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the training integration problems")
    args = parser.parse_args()

    walls, problems, scores = [], defaultdict(list), set()
    for i in range(args.runs):
        per_problem, score = problem_times(args.submission, args.assignment, args.skip_slow)
        wall = command_time(args.submission, args.assignment, args.skip_slow)
        walls.append(wall)
        scores.add(score)
        for name, seconds in per_problem.items():
            problems[name].append(seconds)
        print(f"run {i + 1}/{args.runs}: {wall:.2f} s, score {score:g}", flush=True)

    def stat(xs):
        return f"{statistics.median(xs):7.2f} s  (min {min(xs):.2f}, max {max(xs):.2f})"

    print(f"\nmedian over {args.runs} runs of grading {args.submission}/ ({args.assignment}):")
    by_assignment = defaultdict(lambda: [0.0] * args.runs)
    for name, xs in sorted(problems.items()):
        print(f"  {name:<40} {stat(xs)}")
        for i, x in enumerate(xs):
            by_assignment[name.split("/")[0]][i] += x
    for assignment, xs in sorted(by_assignment.items()):
        print(f"  {assignment + ' (sum of its problems)':<40} {stat(xs)}")
    print(f"  {'whole command (wall, incl. start-up)':<40} {stat(walls)}")
    if len(scores) != 1:
        print(f"WARNING: scores differed between runs: {sorted(scores)}")


if __name__ == "__main__":
    main()
