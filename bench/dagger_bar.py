"""Does the dagger_training bar tell DAgger from BC? Returns over training seeds, judged as the grader judges.

    .venv/bin/python bench/dagger_bar.py [--seeds 0-9]

For each seed, with the grader's own DAgger configuration (autograder/problems/hw1_training.py,
TRAINING_CONFIGS["dagger"]), trains the reference run_training_loop and a loop that never uses
the learner's data (the same iterations and gradient steps on the demonstrations only: the
library's buggy variant dagger_never_uses_learner_data), and evaluates both policies with the
judge's own evaluation, as a fraction of the expert's return. Prints one row per seed and the
medians; the bar is DAGGER_TARGET.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0-9", help="a range like 0-9, or a comma list")
    args = parser.parse_args()
    a, _, b = args.seeds.partition("-")
    seeds = list(range(int(a), int(b) + 1)) if b else [int(s) for s in args.seeds.split(",")]

    import torch

    from autograder import child_tasks
    from autograder.problems import hw1_training as problem
    from instructor.variants import collect

    torch.set_num_threads(1)
    reference = load(ROOT / "solutions" / "hw1" / "imitation.py", "reference_hw1")
    variant = next(v for v in collect("BUGGY") if v.name == "dagger_never_uses_learner_data")
    folder = Path(tempfile.mkdtemp(prefix="dagger-bar-"))
    (folder / "bc_only.py").write_text((ROOT / "solutions" / "hw1" / "imitation.py").read_text() + "\n" + variant.source)
    bc_only = load(folder / "bc_only.py", "bc_only_hw1")

    expert = sum(problem.expert_returns()) / problem.EVAL_EPISODES
    config = problem.TRAINING_CONFIGS["dagger"]
    print(f"config {config}; expert {expert:.1f}; bar {problem.DAGGER_TARGET:.0%}")
    print(f"{'seed':>4} {'DAgger':>8} {'BC only':>8} {'seconds':>8}")
    rows = []
    for seed in seeds:
        start = time.monotonic()
        got = []
        for module in (reference, bc_only):
            params = child_tasks.train_imitation(module, config, seed)["policy"]
            returns = problem.judge_returns(params)
            got.append(sum(returns) / len(returns) / expert)
        rows.append(got)
        print(f"{seed:>4} {got[0]:>8.0%} {got[1]:>8.0%} {time.monotonic() - start:>8.1f}", flush=True)
    for name, k in (("DAgger", 0), ("BC only", 1)):
        values = [r[k] for r in rows]
        above = sum(v >= problem.DAGGER_TARGET for v in values)
        print(f"{name}: median {statistics.median(values):.0%}, range {min(values):.0%}–{max(values):.0%}, "
              f"{above}/{len(values)} seeds at or above the bar")


if __name__ == "__main__":
    main()
