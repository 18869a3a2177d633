"""``make hw1-lesson [SUBMISSION=...] [TASKS="Hopper-v5 ..."] [SEEDS="0 1 2"]``: BC vs DAgger on MuJoCo.

For every task and seed it runs what ``make train HW=hw1 ENV=<task>
METHOD=bc|dagger ARGS="--seed <seed>"`` runs (the same defaults, the same
run folder contents: log.csv, config.json, summary.json, curve.png), and
BC once more with as many gradient steps as the whole DAgger run
(``bc-long``: is BC short of data on the learner's states, or of training?), and
BC on as many expert demonstrations as DAgger's whole budget of labelled
pairs, with the same gradient steps (``bc-data``: the equal-budget control:
is DAgger better for its data's states or for its amount?), then
prints a Markdown table: the final return of each run (mean action, 10
episodes on reset seeds 10000–10009), its mean ± std over the seeds, the
share of the expert's return on the same episodes, the last iteration's
evaluation with sampled actions (the last point of the run's curve.png), and
the expert-labelled (o, a) pairs each run trained on, and
the wall time of each run with its CPU time in brackets (training and
per-iteration evaluation; the final evaluation excluded).

Runs go to ``runs/hw1_lesson/<task>_<method>_s<seed>/``; a run whose
summary.json exists is reused (``--force`` retrains), so an interrupted
table resumes where it stopped. The table is also written to
``runs/hw1_lesson/table.md``, and CS285's DAgger figure, one panel per
task over the seeds, to ``runs/hw1_lesson/dagger.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from rlkit.imitation import MUJOCO_TASKS, TASKS
from rlkit.train import KIT_ROOT as ROOT

# "bc-long": BC with as many gradient steps as the whole DAgger run takes (n_iter × train_steps_per_iter), the
# control that tells distribution shift from too little training.
# "bc-data": BC on as many expert-labelled pairs as DAgger ends with, and DAgger's gradient steps: the equal-budget
# control that tells where the data come from (the learner's states) from how much data there is.
METHODS = ("bc", "dagger", "bc-long", "bc-data")
LABELS = {"bc": "BC", "dagger": "DAgger", "bc-long": "BC, DAgger's gradient steps",
          "bc-data": "BC, DAgger's data budget and gradient steps"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make hw1-lesson", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submission", default="starter", help="directory holding hw1/imitation.py (default: starter)")
    p.add_argument("--tasks", nargs="+", default=list(MUJOCO_TASKS), choices=TASKS, metavar="TASK",
                   help=f"tasks, in this order (default: {' '.join(MUJOCO_TASKS)})")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                   help="bc, dagger; bc-long: BC with as many gradient steps as the whole DAgger run; bc-data: "
                        "those and as many expert demonstrations as DAgger's labelled pairs")
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "hw1_lesson"))
    p.add_argument("--force", action="store_true", help="retrain runs that already have a summary.json")
    p.add_argument("--table-only", action="store_true", help="train nothing: the table of the runs there are")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p


def config_for(task: str, method: str, seed: int):
    """The ImitationConfig ``make train HW=hw1 ENV=task METHOD=method`` uses; the controls take the task's
    DAgger defaults' budget: bc-long, its n_iter × train_steps_per_iter gradient steps; bc-data, those and
    as many demonstrations as its labelled pairs fill (its own, then ep_len-step episodes for the
    (n_iter - 1) × batch_size steps the learner collects)."""
    from rlkit.experiments import hw1

    def cfg(m: str, *extra: str):
        return hw1.config_from_args(hw1.build_parser().parse_args(["--env", task, "--method", m, "--seed", str(seed),
                                                                   *extra]))

    if method not in ("bc-long", "bc-data"):
        return cfg(method)
    dagger = cfg("dagger")
    steps = ["--train-steps", str(dagger.n_iter * dagger.train_steps_per_iter)]
    if method == "bc-long":
        return cfg("bc", *steps)
    learner_steps = (dagger.n_iter - 1) * dagger.batch_size
    n_demos = dagger.n_demos + -(-learner_steps // dagger.ep_len)
    return cfg("bc", *steps, "--n-demos", str(n_demos))


def run_name(task: str, method: str, seed: int) -> str:
    return f"{task}_{method}_s{seed}"


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _last_row(path: Path) -> dict | None:
    rows = _rows(path)
    return rows[-1] if rows else None


def dagger_curve(run_dir: Path) -> list[float]:
    """A DAgger run's return per iteration: the learner's mean action on the final evaluation's episodes where
    the log has it (what the table's final return measures), else CS285's sampled-action evaluation."""
    rows = _rows(run_dir / "log.csv")
    key = "mean_action_return_mean" if rows and rows[0].get("mean_action_return_mean") else "eval_return_mean"
    return [float(r[key]) for r in rows]


LINE_STYLES = {"bc": ("tab:red", ":"), "bc-long": ("tab:orange", "-."), "bc-data": ("tab:brown", "--")}


def figure(results: dict[tuple[str, str], dict[int, dict]], tasks: list[str], out: Path, path: Path) -> bool:
    """CS285's DAgger figure for every task at once, over seeds: DAgger's return per iteration (mean ± std over
    the seeds), the expert and the BC runs' final returns as horizontal lines. False when no DAgger run is there."""
    from rlkit.plotting import pyplot, subplots_grid

    shown = [t for t in tasks if results.get((t, "dagger"))]
    if not shown:
        return False
    fig, axes = subplots_grid(len(shown))
    for ax, task in zip(axes, shown):
        runs = results[(task, "dagger")]
        curves = [dagger_curve(out / run_name(task, "dagger", seed)) for seed in sorted(runs)]
        length = min(len(c) for c in curves)
        columns = [[c[i] for c in curves] for i in range(length)]
        ax.errorbar(range(length), [_mean(col) for col in columns], yerr=[statistics.pstdev(col) for col in columns],
                    marker="o", capsize=3, color="tab:blue", label="DAgger, per iteration")
        expert = _mean([r["expert"] for r in runs.values()])
        ax.axhline(expert, color="tab:green", linestyle="--", label="expert")
        for method, (color, style) in LINE_STYLES.items():
            others = results.get((task, method))
            if others:
                ax.axhline(_mean([r["return"] for r in others.values()]), color=color, linestyle=style,
                           label=LABELS[method])
        demos = config_for(task, "dagger", min(runs)).n_demos
        ax.set_title(f"{task}, {demos} demonstration{'s' if demos != 1 else ''} (seeds "
                     f"{', '.join(map(str, sorted(runs)))})", fontsize=10)
        ax.set_xlabel("DAgger iteration")
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:  # every label once, in the order first met
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("BC vs DAgger (BC runs: final returns; DAgger: mean ± std over seeds)")
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return True


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def summarize(summary: dict, last_row: dict | None = None) -> dict:
    """One run's numbers: the final return (mean action, mean over its evaluation episodes), the expert's on the
    same episodes, the share, seconds; and from the log's last row (``last_row``), the per-iteration evaluation
    with sampled actions that the plot's last point shows and the labelled pairs in the buffer."""
    ret, expert = _mean(summary["eval_returns"]), _mean(summary["expert_eval_returns"])
    cpu = summary.get("cpu_seconds")
    sampled = None if last_row is None else float(last_row["eval_return_mean"])
    pairs = None if last_row is None or not last_row.get("buffer_size") else int(float(last_row["buffer_size"]))
    return {"return": ret, "expert": expert, "percent": 100.0 * ret / expert, "seconds": float(summary["seconds"]),
            "cpu_seconds": None if cpu is None else float(cpu), "sampled": sampled, "pairs": pairs}


def _mean_std(xs: list[float]) -> str:
    return f"{_mean(xs):.0f} ± {statistics.pstdev(xs):.0f}" if len(xs) > 1 else f"{xs[0]:.0f}"


def _seconds(run: dict) -> str:
    """Wall time, with the CPU time in brackets where the run recorded it (a busy machine inflates only the first)."""
    cpu = run.get("cpu_seconds")
    return f"{run['seconds']:.0f}" + ("" if cpu is None else f" ({cpu:.0f})")


HEADER = ("| task | expert | method | final return per seed (mean action) | mean ± std over seeds | % of expert "
          "| last iteration, sampled actions: mean over seeds (% of expert) | labelled (o, a) pairs "
          "| wall (CPU) time per run |")


def table(results: dict[tuple[str, str], dict[int, dict]], tasks: list[str], methods: list[str]) -> str:
    """Markdown: one row per (task, method); ``results[(task, method)][seed]`` is ``summarize``'s dict."""
    lines = [HEADER, "|---|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        for method in methods:
            label = LABELS[method]
            runs = results.get((task, method), {})
            if not runs:
                lines.append(f"| {task} | | {label} | not run | | | | | |")
                continue
            seeds = sorted(runs)
            rets = [runs[s]["return"] for s in seeds]
            experts = sorted({round(runs[s]["expert"], 1) for s in seeds})
            pct = [runs[s]["percent"] for s in seeds]
            pct_text = f"{_mean(pct):.0f}% ({min(pct):.0f}–{max(pct):.0f}%)" if len(pct) > 1 else f"{pct[0]:.0f}%"
            sampled = [runs[s]["sampled"] for s in seeds if runs[s]["sampled"] is not None]
            sampled_text = (f"{_mean(sampled):.0f} ({100.0 * _mean(sampled) / _mean(experts):.0f}%)"
                            if sampled else "")
            pairs = [runs[s]["pairs"] for s in seeds if runs[s]["pairs"] is not None]
            pairs_text = "" if not pairs else (f"{min(pairs)}" if min(pairs) == max(pairs)
                                               else f"{min(pairs)}–{max(pairs)}")
            lines.append(
                f"| {task} | {', '.join(f'{e:.0f}' for e in experts)} | {label} "
                f"| {', '.join(f'{r:.0f}' for r in rets)} (seeds {', '.join(map(str, seeds))}) "
                f"| {_mean_std(rets)} | {pct_text} | {sampled_text} | {pairs_text} "
                f"| {', '.join(_seconds(runs[s]) for s in seeds)} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    from rlkit.experiments import hw1

    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    out = Path(args.runs_dir)
    training_loop = None
    results: dict[tuple[str, str], dict[int, dict]] = {}
    for task in args.tasks:
        for method in args.methods:
            for seed in args.seeds:
                run_dir = out / run_name(task, method, seed)
                summary_path = run_dir / "summary.json"
                if not args.table_only and (args.force or not summary_path.exists()):
                    if training_loop is None:
                        try:
                            training_loop = hw1.load_training_loop(args.submission)
                        except ImportError as err:
                            print(f"error: cannot import hw1.imitation from {args.submission!r}: {err}",
                                  file=sys.stderr)
                            return 2
                    cfg = config_for(task, method, seed)
                    try:
                        hw1.run(cfg, training_loop, run_dir, progress=not args.no_progress)
                    except NotImplementedError as err:
                        from rlkit.train import not_implemented_message

                        print(not_implemented_message(err, args.submission, "hw1/imitation.py"), file=sys.stderr)
                        return 1
                if summary_path.exists():
                    s = summarize(json.loads(summary_path.read_text()), _last_row(run_dir / "log.csv"))
                    results.setdefault((task, method), {})[seed] = s
                    print(f"{run_name(task, method, seed):32s} return {s['return']:8.1f}  expert {s['expert']:8.1f}"
                          f"  {s['percent']:5.1f}%  {_seconds(s)} s", file=sys.stderr)
    text = table(results, args.tasks, args.methods)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")
    print(text)
    print(f"table: {out / 'table.md'}")
    if figure(results, args.tasks, out, out / "dagger.png"):
        print(f"figure: {out / 'dagger.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
