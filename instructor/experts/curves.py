"""The experts' training curves: each task's evaluations (``evals.csv``) against environment steps.

    python -m instructor.experts.curves                                   # runs/experts_training.png
    python -m instructor.experts.curves --ckpt-root "seed 0=~/a" "seed 1=~/b"  # several runs, labelled
    python -m instructor.experts.curves --out docs/figures/experts_training.png

One panel per task that has an ``evals.csv`` under a checkpoint root (the default root is
the trainer's, ``~/.cache/rl-homework-kit/experts``): the deterministic actor's mean return over
its 10 evaluation episodes ± their std, every evaluation where a new best was exported marked,
and the task's target as a dashed line. With several roots, each root is one line, named by
its label (``LABEL=ROOT``) or its folder.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from instructor.experts.export import TARGET_RETURNS
from instructor.experts.train import TRAIN_ORDER, ckpt_root


def read_evals(path: Path) -> list[dict]:
    """The rows of one ``evals.csv``, numbers parsed; a step evaluated twice keeps its last row."""
    by_step: dict[int, dict] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            steps = int(row["steps"])
            by_step[steps] = {"steps": steps, "mean": float(row["mean"]), "std": float(row["std"]),
                              "exported": row["exported"] == "1"}
    return [by_step[s] for s in sorted(by_step)]


def collect(roots: list[Path], labels: list[str] | None = None, tasks=TRAIN_ORDER) -> dict[str, dict[str, list[dict]]]:
    """{task: {run label: rows}} for every root that holds ``<task>/evals.csv`` with at least one row; a run is
    labelled by ``labels`` (default: the root's folder name)."""
    found: dict[str, dict[str, list[dict]]] = {}
    for root, label in zip(roots, labels or [r.name for r in roots]):
        for task in tasks:
            path = root / task / "evals.csv"
            if path.exists() and (rows := read_evals(path)):
                found.setdefault(task, {})[label] = rows
    return found


def figure(curves: dict[str, dict[str, list[dict]]], path: Path) -> None:
    from rlkit.plotting import pyplot, subplots_grid

    fig, axes = subplots_grid(len(curves))
    for ax, (task, runs) in zip(axes, curves.items()):
        for label, rows in runs.items():
            x = [r["steps"] / 1000 for r in rows]
            mean = [r["mean"] for r in rows]
            line, = ax.plot(x, mean, label=label if len(runs) > 1 else "evaluation (10 episodes)")
            ax.fill_between(x, [m - r["std"] for m, r in zip(mean, rows)], [m + r["std"] for m, r in zip(mean, rows)],
                            color=line.get_color(), alpha=0.15)
            best = [(xi, m) for xi, m, r in zip(x, mean, rows) if r["exported"]]
            if best:
                ax.plot(*zip(*best), "o", color=line.get_color(), markersize=4,
                        label="new best, exported" if len(runs) == 1 else None)
        if task in TARGET_RETURNS:
            ax.axhline(TARGET_RETURNS[task], color="black", linestyle="--", linewidth=1, label="target")
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("environment steps (thousands)")
        ax.set_ylabel("return (deterministic actor)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Expert training (TD3): evaluation mean ± std over 10 episodes")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt-root", nargs="+", default=None, metavar="[LABEL=]ROOT",
                   help="checkpoint roots to read, each optionally labelled (default: the trainer's root, "
                        "~/.cache/rl-homework-kit/experts)")
    p.add_argument("--out", default="runs/experts_training.png", help="where to write the figure")
    args = p.parse_args(argv)
    labels, roots = [], []
    for arg in args.ckpt_root or [""]:
        label, _, path = arg.rpartition("=")
        roots.append(ckpt_root(path or None))
        labels.append(label or roots[-1].name)
    curves = collect(roots, labels)
    if not curves:
        print(f"no evals.csv under {', '.join(map(str, roots))}: train an expert first (make experts)",
              file=sys.stderr)
        return 1
    figure(curves, Path(args.out))
    for task, runs in curves.items():
        for label, rows in runs.items():
            best = max(rows, key=lambda r: r["mean"])
            print(f"{task} ({label}): {len(rows)} evaluations up to {rows[-1]['steps']} steps; "
                  f"best {best['mean']:.0f} ± {best['std']:.0f} at {best['steps']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
