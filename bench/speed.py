"""`make bench`: the grade's wall time now and at an older commit, measured in one run, as medians.

    .venv/bin/python bench/speed.py [--base COMMIT] [--runs 3] [--gradescope-runs 1] [--only NAME,...]

Each scenario is one whole ``python -m autograder grade`` command on solutions/ (start-up, the
self-check and writing results.json included), run alternately on this checkout and on a copy of
``--base`` (``git archive``), so that both see the same machine load. Both use this checkout's
virtualenv. Scenarios (issue #27's targets in brackets):

    hw2, no training          --assignment hw2 --skip-slow          [≤ 4 s]
    hw1, no training          --assignment hw1 --skip-slow          [≤ 4 s]
    all, with training        every problem                         [≤ 25 s]
    one problem               --problem reward_to_go                [≤ 2 s]
    Gradescope hw1 / hw2      each homework, training included, in a cgroup v1 box of 768 MB and
                              half a CPU (tests/gradescope_box.py; root only)   [≤ 30 s]

The scores of both commits are printed too: a speed-up that changed a verdict is no speed-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = {
    "hw2, no training": (["--assignment", "hw2", "--skip-slow"], 4.0),
    "hw1, no training": (["--assignment", "hw1", "--skip-slow"], 4.0),
    "all, with training": ([], 25.0),
    "one problem": (["--problem", "reward_to_go"], 2.0),
}
GRADESCOPE = {
    "Gradescope box, hw1": (["--assignment", "hw1"], 30.0),
    "Gradescope box, hw2": (["--assignment", "hw2"], 30.0),
}


def checkout(commit: str, into: Path) -> Path:
    """A plain copy of ``commit``'s tree (no .git): the grader as it was."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_once(tree: Path, args: list[str], box=None) -> tuple[float, float, str]:
    """(wall seconds, score, error) of one grading command in ``tree``."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        command = [sys.executable, "-m", "autograder", "grade", "--submission", "solutions",
                   "--results", str(results), *args]
        if box is not None:
            command = box.wrap(command)
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=tree, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not results.exists():
            return wall, float("nan"), (proc.stdout + proc.stderr)[-800:]
        return wall, json.loads(results.read_text())["score"], ""


def measure(trees: dict[str, Path], scenarios: dict, runs: int, box_factory=None) -> dict:
    """{scenario: {label: [(wall, score), ...]}}, the trees alternating within each run."""
    table: dict[str, dict[str, list]] = {}
    for name, (args, _) in scenarios.items():
        table[name] = {label: [] for label in trees}
        for run in range(runs):
            for label, tree in trees.items():
                if box_factory is None:
                    wall, score, error = run_once(tree, args)
                else:
                    with box_factory(f"bench-{label}-{run}") as box:
                        wall, score, error = run_once(tree, args, box)
                if error:
                    print(f"  {name} at {label}: the command failed:\n{error}", file=sys.stderr)
                table[name][label].append((wall, score))
                print(f"  {name:<24} {label:<8} run {run + 1}/{runs}: {wall:6.2f} s, score {score:g}", flush=True)
    return table


def report(table: dict, scenarios: dict, labels: list[str]) -> None:
    print(f"\n{'scenario':<24} " + " ".join(f"{label:>18}" for label in labels) + f" {'target':>8}  scores")
    for name, per_label in table.items():
        cells, scores = [], []
        for label in labels:
            walls = [w for w, _ in per_label[label]]
            cells.append(f"{statistics.median(walls):7.2f} s ({min(walls):.1f}–{max(walls):.1f})")
            scores.append("/".join(sorted({f"{s:g}" for _, s in per_label[label]})))
        target = scenarios[name][1]
        print(f"{name:<24} " + " ".join(f"{c:>18}" for c in cells) + f" {'≤ ' + format(target, 'g') + ' s':>8}  "
              + " vs ".join(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="3839ca0", help="the older commit (default: the grader before #15)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gradescope-runs", type=int, default=1, help="0 leaves the Gradescope box out")
    parser.add_argument("--only", default="", help="comma-separated scenario names (substrings)")
    args = parser.parse_args()

    base = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]

    def chosen(scenarios):
        return {k: v for k, v in scenarios.items() if not wanted or any(w in k for w in wanted)}

    with tempfile.TemporaryDirectory(prefix="bench-base-") as tmp:
        trees = {"now": ROOT, "base": checkout(base, Path(tmp) / base)}
        labels = [f"now ({head}{'+' if dirty else ''})", f"base ({base})"]
        print(f"grading solutions/ {args.runs}× per scenario, alternating this checkout and {base}")
        table = measure(trees, chosen(SCENARIOS), args.runs)
        scenarios = dict(SCENARIOS)
        if args.gradescope_runs > 0 and chosen(GRADESCOPE):
            from tests.gradescope_box import gradescope_box, unavailable_reason

            reason = unavailable_reason()
            if reason:
                print(f"Gradescope box left out: {reason}")
            else:
                table.update(measure(trees, chosen(GRADESCOPE), args.gradescope_runs, gradescope_box))
                scenarios.update(GRADESCOPE)
        table = {name: dict(zip(labels, per_label.values())) for name, per_label in table.items()}
        report(table, scenarios, labels)


if __name__ == "__main__":
    main()
