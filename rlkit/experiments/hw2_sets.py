"""``make experiments SET=cartpole|lunar|pendulum|cheetah|all [SUBMISSION=...]``: CS285's hw2 experiment sets.

Each set trains several configurations with your ``hw2.returns`` and draws
comparison plots (average training return against environment steps):

* ``cartpole``: full return vs reward-to-go, with and without advantage
  normalisation, at batch sizes 1000 and 4000 (CS285's 8 CartPole runs);
  plots ``rtg.png``, ``normalization.png``, ``batch_size.png``.
* ``lunar``: GAE λ ∈ {0, 0.95, 0.98, 0.99, 1} on LunarLander-v3 (normalised advantages);
  ``gae_lambda.png``.
* ``pendulum``: InvertedPendulum-v5 with a baseline and GAE; ``pendulum.png``.
* ``cheetah``: HalfCheetah-v5 with and without a baseline; ``baseline.png``.

Runs go to ``runs/hw2_sets/<set>/<run>/`` (log.csv, curve.png, summary.json);
a run whose summary.json exists is reused (``--force`` retrains), so an
interrupted set resumes where it stopped. ``--steps`` caps every run's budget
(e.g. ``ARGS="--steps 20000"`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rlkit.train import KIT_ROOT as ROOT
from rlkit.experiments.hw2 import ENV_DEFAULTS, GENERIC_DEFAULTS, load_functions, plot_curves, read_csv, run


@dataclass
class Run:
    name: str
    env: str
    options: dict = field(default_factory=dict)  # PGConfig fields on top of the task's defaults


@dataclass
class ExperimentSet:
    runs: list[Run]
    plots: dict[str, tuple[str, list[str], float | None]]  # file -> (title, run names, target line)


def _cartpole() -> ExperimentSet:
    runs = []
    for batch in (1000, 4000):
        for rtg in (False, True):
            for na in (False, True):
                name = f"b{batch}_{'rtg' if rtg else 'return'}{'_na' if na else ''}"
                runs.append(Run(name, "CartPole-v1", dict(batch_size=batch, rtg=rtg, normalize_advantages=na)))
    plots = {
        "rtg.png": ("CartPole-v1: full return vs reward-to-go (no normalisation)",
                    ["b1000_return", "b1000_rtg", "b4000_return", "b4000_rtg"], 500.0),
        "normalization.png": ("CartPole-v1: advantage normalisation (reward-to-go)",
                              ["b1000_rtg", "b1000_rtg_na", "b4000_rtg", "b4000_rtg_na"], 500.0),
        "batch_size.png": ("CartPole-v1: batch size 1000 vs 4000 (all estimators)", [r.name for r in runs], 500.0),
    }
    return ExperimentSet(runs, plots)


def _lunar() -> ExperimentSet:
    lambdas = (0.0, 0.95, 0.98, 0.99, 1.0)
    runs = [Run(f"lambda{lam:g}", "LunarLander-v3", dict(gae_lambda=lam, normalize_advantages=True)) for lam in lambdas]
    return ExperimentSet(runs, {"gae_lambda.png": ("LunarLander-v3: GAE λ sweep", [r.name for r in runs], 180.0)})


def _pendulum() -> ExperimentSet:
    runs = [Run("gae0.97_na", "InvertedPendulum-v5", dict(gae_lambda=0.97, normalize_advantages=True))]
    return ExperimentSet(runs, {"pendulum.png": ("InvertedPendulum-v5: baseline + GAE(0.97)", ["gae0.97_na"], 1000.0)})


def _cheetah() -> ExperimentSet:
    runs = [Run("rtg", "HalfCheetah-v5", dict(rtg=True)), Run("rtg_baseline", "HalfCheetah-v5", dict(baseline=True))]
    return ExperimentSet(runs, {"baseline.png": ("HalfCheetah-v5: with and without a baseline",
                                                 ["rtg", "rtg_baseline"], 300.0)})


SETS = {"cartpole": _cartpole, "lunar": _lunar, "pendulum": _pendulum, "cheetah": _cheetah}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make experiments", description=__doc__.split("\n\n")[0])
    p.add_argument("--set", default="cartpole", choices=[*SETS, "all"])
    p.add_argument("--submission", default="starter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="cap on every run's env-step budget")
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "hw2_sets"))
    p.add_argument("--force", action="store_true", help="retrain runs that already have a summary.json")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--plot-only", action="store_true", help="train nothing: redraw the plots from the logs there are")
    return p


def config_for(r: Run, seed: int, steps: int | None):
    from rlkit.pg_agent import PGConfig

    values = {**GENERIC_DEFAULTS, **ENV_DEFAULTS.get(r.env, {}), **r.options}
    if steps is not None:
        values["steps"] = min(values["steps"], steps)
    return PGConfig(env=r.env, seed=seed, **values)


def run_set(name: str, args, functions) -> list[str]:
    spec = SETS[name]()
    out = Path(args.runs_dir) / name
    lines = []
    for k, r in enumerate(spec.runs, 1):
        cfg = config_for(r, args.seed, args.steps)
        run_dir = out / f"{r.name}_s{args.seed}"
        summary_path = run_dir / "summary.json"
        trains = not args.plot_only and (args.force or not summary_path.exists())
        print(f"{name}: run {k} of {len(spec.runs)}: {r.env}, {r.name}"
              + ("" if trains else " (not trained: " + ("--plot-only)" if args.plot_only else "summary.json exists)")),
              flush=True)
        if trains:
            run(cfg, functions, run_dir, progress=not args.no_progress, title=f"{r.env}, {r.name}")
        if not summary_path.exists():
            lines.append(f"{name:9s} {r.name:18s} not finished")
            continue
        summary = json.loads(summary_path.read_text())
        rows = read_csv(run_dir / "log.csv")
        evals = summary["eval_returns"]
        last, recent = rows[-1], [x["return_mean"] for x in rows[-10:]]
        lines.append(f"{name:9s} {r.name:18s} {int(last['env_steps']):8d} steps"
                     f"  last-10 mean {sum(recent) / len(recent):8.1f}"
                     f"  best batch {max(x['return_mean'] for x in rows):8.1f}"
                     f"  eval {sum(evals) / max(len(evals), 1):8.1f}  {summary['seconds']:7.1f} s")
    for file, (title, names, target) in spec.plots.items():
        logs = {n: out / f"{n}_s{args.seed}" / "log.csv" for n in names}
        curves = {n: read_csv(path) for n, path in logs.items() if path.exists()}  # unfinished runs: partial curves
        if not curves:
            continue
        plot_curves(curves, out / file, title, hline=target)
        lines.append(f"plot: {out / file}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        functions = None if args.plot_only else load_functions(args.submission)
    except ImportError as err:
        print(f"error: cannot import hw2.returns from {args.submission!r}: {err}", file=sys.stderr)
        return 2
    names = list(SETS) if args.set == "all" else [args.set]
    lines = []
    try:
        for name in names:
            lines += run_set(name, args, functions)
    except NotImplementedError:
        print(f"error: {args.submission}/hw2/returns.py still has a function that raises NotImplementedError",
              file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
