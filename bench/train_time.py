"""Wall time (and env steps) for the reference hw2 code to reach each task's bar.

    python bench/train_time.py [--tasks CartPole-v1,InvertedPendulum-v5] [--seeds 3] [--submission solutions]

For each task and seed, trains with the published configuration (the one in
the README, run by ``make train``) and stops as soon as a batch's average
training return reaches the task's bar; then evaluates 10 greedy episodes.
Prints per-seed rows and the median over seeds. Timings depend on the load:
run it on an idle machine (training uses one core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# task -> (bar, options on top of rlkit.experiments.hw2.ENV_DEFAULTS): the README's published runs
TASKS = {
    "CartPole-v1": (500.0, dict(gae_lambda=0.97, normalize_advantages=True)),
    "InvertedPendulum-v5": (1000.0, dict(gae_lambda=0.97, normalize_advantages=True)),
    "HalfCheetah-v5": (300.0, dict(baseline=True)),
    "LunarLander-v3": (180.0, dict(gae_lambda=0.98, normalize_advantages=True)),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="CartPole-v1,InvertedPendulum-v5", help=f"comma-separated, from {list(TASKS)}")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--submission", default="solutions")
    args = p.parse_args(argv)

    from rlkit.experiments.hw2 import ENV_DEFAULTS, GENERIC_DEFAULTS, load_functions
    from rlkit.pg_agent import PGConfig, train

    functions = load_functions(args.submission)
    print(f"{'task':22s} {'seed':>4s} {'reached':>8s} {'env steps':>10s} {'wall s':>8s} {'eval':>8s}")
    for task in args.tasks.split(","):
        bar, options = TASKS[task]
        rows = []
        for seed in range(args.seeds):
            cfg = PGConfig(env=task, seed=seed, target_return=bar, eval_episodes=10,
                           **{**GENERIC_DEFAULTS, **ENV_DEFAULTS.get(task, {}), **options})
            start = time.monotonic()
            result = train(cfg, functions)
            wall = time.monotonic() - start
            best = max(r["return_mean"] for r in result.log)
            reached = best >= bar
            steps = result.log[-1]["env_steps"]
            ev = statistics.mean(result.eval_returns)
            rows.append((reached, steps, result.log[-1]["wall_s"], ev))
            print(f"{task:22s} {seed:4d} {str(reached):>8s} {steps:10d} {result.log[-1]['wall_s']:8.1f} {ev:8.1f}"
                  f"   (budget {cfg.steps}, best batch {best:.1f}, total {wall:.1f} s with evaluation)", flush=True)
        hit = [r for r in rows if r[0]]
        if hit:
            print(f"{task:22s} median over the {len(hit)}/{len(rows)} seeds that reached {bar:g}: "
                  f"{statistics.median(r[1] for r in hit):.0f} env steps, {statistics.median(r[2] for r in hit):.1f} s")
        else:
            print(f"{task:22s} no seed reached {bar:g} within the budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
