"""``make train HW=hw1 ENV=<task> METHOD=bc|dagger [SUBMISSION=starter] ARGS="..."``: imitation learning on your hw1 code.

    make train HW=hw1 ENV=LunarLanderContinuous-v3 METHOD=dagger SUBMISSION=solutions
    make train HW=hw1 ENV=Hopper-v5 METHOD=bc ARGS="--train-steps 2000 --seed 1"

Tasks: LunarLanderContinuous-v3 (the fast one: gymnasium's hand-written lander
controller is the expert) and the CS285 tasks Ant-v5, HalfCheetah-v5,
Hopper-v5, Walker2d-v5 (experts and two demonstrations each from rlkit/experts).
Your ``hw1.imitation.run_training_loop`` does the work. The run writes
``runs/hw1/<run>/log.csv`` (one row per iteration), ``config.json``,
``summary.json`` and ``curve.png`` (return per iteration with error bars, the
expert's and BC's returns as horizontal lines: CS285's DAgger figure), and
prints as its last line ``average return over N evaluation episodes: X``
(mean action, reset seeds 10000, 10001, …).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

from rlkit.train import KIT_ROOT as ROOT
from rlkit.imitation import FAST_TASK, TASKS
from rlkit.train import not_implemented_message, run_directory

# Per-task defaults (ImitationConfig's fields); options given on the command line win.
TASK_DEFAULTS: dict[str, dict] = {
    FAST_TASK: {"bc": dict(n_demos=2, train_steps_per_iter=1000),
                "dagger": dict(n_demos=1, n_iter=6, batch_size=1000, train_steps_per_iter=300)},
}
# MuJoCo: CS285's settings (2 demonstrations, 10 iterations, minibatches of 100, Adam 5e-3, 64×64), but
# 3000 gradient steps per iteration instead of 1000 and 5000 learner env steps per DAgger iteration instead
# of 1000. Hopper-v5, seeds 0–2, final return as % of the expert: 1000 steps/1000 env steps 41, 101, 101;
# 2000/1000 101, 40 (seeds 0, 1); 3000/1000 99, 99, 99; 3000/5000 99, 100, 101. Walker2d-v5 (seed 0):
# 3000/1000 23%, 3000/5000 91%. BC trains exactly as DAgger's iteration 0 does.
MUJOCO_DEFAULTS = {"bc": dict(n_demos=2, train_steps_per_iter=3000, eval_batch_size=5000),
                   "dagger": dict(n_demos=2, n_iter=10, batch_size=5000, train_steps_per_iter=3000,
                                  eval_batch_size=5000)}
OPTIONS = ("n_iter", "batch_size", "train_batch_size", "train_steps_per_iter", "learning_rate", "ep_len",
           "eval_batch_size", "max_replay_buffer_size", "n_demos", "seed")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make train HW=hw1", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--submission", default="starter", help="directory holding hw1/imitation.py (default: starter)")
    p.add_argument("--env", default=FAST_TASK, choices=TASKS, help="the task")
    p.add_argument("--method", default="bc", choices=["bc", "dagger"], help="bc (one iteration) or dagger")
    p.add_argument("--n-iter", dest="n_iter", type=int, default=None, help="DAgger iterations, iteration 0 included")
    p.add_argument("--batch-size", "-b", dest="batch_size", type=int, default=None,
                   help="learner env steps collected per DAgger iteration")
    p.add_argument("--train-batch-size", dest="train_batch_size", type=int, default=None,
                   help="(o, a) pairs per gradient step")
    p.add_argument("--train-steps", dest="train_steps_per_iter", type=int, default=None,
                   help="gradient steps per iteration")
    p.add_argument("--lr", dest="learning_rate", type=float, default=None, help="Adam learning rate")
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden layer widths, e.g. --hidden 64 64")
    p.add_argument("--ep-len", dest="ep_len", type=int, default=None, help="max_length of every rollout")
    p.add_argument("--eval-batch-size", dest="eval_batch_size", type=int, default=None,
                   help="env steps of evaluation rollouts after every iteration (sampled actions)")
    p.add_argument("--max-replay-buffer-size", dest="max_replay_buffer_size", type=int, default=None)
    p.add_argument("--n-demos", dest="n_demos", type=int, default=None, help="expert demonstrations at iteration 0")
    p.add_argument("--eval-episodes", type=int, default=10, help="final evaluation episodes (mean action)")
    p.add_argument("--iter-eval-episodes", type=int, default=None,
                   help="DAgger: after every iteration, also evaluate the mean action on the final evaluation's "
                        "first N episodes (default: --eval-episodes; 0: only CS285's sampled-action evaluation)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--runs-dir", default=str(ROOT / "runs" / "hw1"), help="where the run's folder is created")
    p.add_argument("--name", default=None, help="the run's folder name (default: env_method_seed_time)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=1, help="torch threads (small MLPs run fastest on one)")
    return p


def config_from_args(args: argparse.Namespace):
    from rlkit.imitation import ImitationConfig

    defaults = TASK_DEFAULTS.get(args.env, MUJOCO_DEFAULTS)[args.method]
    values = {"env": args.env, "method": args.method, **defaults}
    for name in OPTIONS:
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if args.hidden is not None:
        values["hidden"] = tuple(args.hidden)
    return ImitationConfig(**values)


def plot_dagger(rows: list[dict], path: Path, title: str, expert: float, bc: float | None,
                final: float | None = None) -> None:
    """CS285's DAgger figure: return per iteration (mean ± std over the evaluation rollouts, sampled actions),
    expert and BC as horizontal lines. Rows with ``mean_action_return_mean`` add the learner's mean action on
    the final evaluation's episodes; ``final``: the final evaluation (mean action), a star at the last iteration
    when there is no such curve."""
    from rlkit.plotting import new_figure, save_figure

    fig, ax = new_figure()
    x = [int(r["iteration"]) for r in rows]
    mean_action = [r for r in rows if r.get("mean_action_return_mean") is not None]
    if mean_action:
        episodes = int(mean_action[0]["mean_action_episodes"])
        ax.errorbar([int(r["iteration"]) for r in mean_action], [r["mean_action_return_mean"] for r in mean_action],
                    yerr=[r["mean_action_return_std"] for r in mean_action], marker="s", capsize=4,
                    color="tab:purple", label=f"learner, mean action (mean ± std over {episodes} fixed episodes)")
    ax.errorbar(x, [r["eval_return_mean"] for r in rows], yerr=[r["eval_return_std"] for r in rows], marker="o",
                capsize=4, color="tab:blue", alpha=0.8,
                label="learner, sampled actions (mean ± std over evaluation rollouts)")
    ax.axhline(expert, color="tab:green", linestyle="--", label=f"expert {expert:.1f}")
    if bc is not None:
        ax.axhline(bc, color="tab:red", linestyle=":", label=f"behavioral cloning {bc:.1f} (iteration 0{', mean action' if mean_action else ''})")
    if final is not None and x and not mean_action:
        ax.plot([x[-1]], [final], marker="*", markersize=14, color="black", linestyle="none", zorder=5,
                label=f"final evaluation {final:.1f} (mean action)")
    ax.set_xlabel("DAgger iteration (0 = behavioral cloning on the demonstrations)")
    ax.set_ylabel("return")
    ax.set_xticks(x)
    fig.set_size_inches(7, 5.2)
    save_figure(fig, ax, title, path, legend_below=True)


def load_training_loop(submission: str):
    """The submission's hw1.imitation.run_training_loop (imported here: your own code, not grading)."""
    from rlkit.train import student_module

    return student_module(submission, "hw1.imitation").run_training_loop



def run(cfg, training_loop, run_dir: Path, eval_episodes: int = 10, progress: bool = True,
        iteration_eval_episodes: int | None = None) -> dict:
    """Train, then write log.csv, config.json, summary.json and curve.png into ``run_dir``.

    iteration_eval_episodes: after every iteration, also evaluate the learner's mean action on the final
    evaluation's first N reset seeds (log.csv's ``mean_action_*`` columns; default: ``eval_episodes`` for
    DAgger, none for BC, whose one iteration is the final evaluation). It draws no random number of the run's
    and steps an environment of its own, so training is the same with or without it.
    """
    from tqdm import tqdm

    from rlkit import imitation

    if iteration_eval_episodes is None:
        iteration_eval_episodes = eval_episodes if cfg.method == "dagger" else 0
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    n_iter = 1 if cfg.method == "bc" else cfg.n_iter
    bar = tqdm(total=n_iter, unit="iter", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               desc=f"{cfg.env} {cfg.method}")
    log_path = run_dir / "log.csv"
    log_path.unlink(missing_ok=True)
    learner: dict = {}  # the policy the training loop trains, for the mean-action evaluation
    rows: list[dict] = []
    eval_env = imitation.make_env(cfg.env, cfg.ep_len) if iteration_eval_episodes else None

    def loop(env, policy, expert, demonstrations, config, on_iter):
        learner["policy"] = policy
        return training_loop(env, policy, expert, demonstrations, config, on_iter)

    def on_iteration(row: dict) -> None:
        row = dict(row)
        if eval_env is not None:
            returns = imitation.evaluate(eval_env, learner["policy"], iteration_eval_episodes, max_length=cfg.ep_len)
            row.update(mean_action_return_mean=statistics.fmean(returns),
                       mean_action_return_std=statistics.pstdev(returns), mean_action_episodes=len(returns))
        rows.append(row)
        bar.update(1)
        bar.set_postfix(ret=f"{row['eval_return_mean']:.1f}", data=row["buffer_size"])
        new = not log_path.exists()
        with open(log_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    cpu_start = time.process_time()
    try:
        result = imitation.run(cfg, loop, on_iteration)
    finally:
        bar.close()
        if eval_env is not None:
            eval_env.close()
    cpu_seconds = time.process_time() - cpu_start  # this process's CPU time: what a busy machine does not inflate
    env = imitation.make_env(cfg.env, cfg.ep_len)
    try:
        returns = imitation.evaluate(env, result.policy, eval_episodes, max_length=cfg.ep_len)
        expert_returns = imitation.evaluate(env, imitation.load_task_expert(cfg.env), eval_episodes,
                                            max_length=cfg.ep_len)
    finally:
        env.close()
    expert = sum(expert_returns) / len(expert_returns)
    rows = rows if len(rows) == len(result.log) else result.log
    if rows and cfg.method == "dagger":
        bc = rows[0].get("mean_action_return_mean", rows[0]["eval_return_mean"])
    else:
        bc = None
    label = "DAgger" if cfg.method == "dagger" else "BC"
    plot_dagger(rows, run_dir / "curve.png", f"{cfg.env}, {label} from {cfg.n_demos} demonstration"
                f"{'s' if cfg.n_demos != 1 else ''}, seed {cfg.seed}", expert, bc,
                sum(returns) / len(returns) if returns else None)
    summary = {"eval_returns": returns, "expert_eval_returns": expert_returns, "seconds": round(result.seconds, 1),
               "cpu_seconds": round(cpu_seconds, 1),
               "iterations": len(rows), "env_steps": rows[-1]["env_steps"] if rows else 0}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    torch.set_num_threads(max(1, args.threads))
    try:
        training_loop = load_training_loop(args.submission)
    except ImportError as err:
        print(f"error: cannot import hw1.imitation from {args.submission!r}: {err}", file=sys.stderr)
        return 2
    name = args.name or f"{cfg.env}_{cfg.method}_s{cfg.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = run_directory(args.runs_dir, name)
    try:
        summary = run(cfg, training_loop, run_dir, args.eval_episodes, progress=not args.no_progress,
                      iteration_eval_episodes=args.iter_eval_episodes)
    except NotImplementedError as err:
        print(not_implemented_message(err, args.submission, "hw1/imitation.py"), file=sys.stderr)
        return 1
    returns, expert = summary["eval_returns"], summary["expert_eval_returns"]
    mean = sum(returns) / len(returns) if returns else float("nan")
    print(f"log: {run_dir / 'log.csv'}")
    print(f"learning curve: {run_dir / 'curve.png'}")
    print(f"wall time: {summary['seconds']:.1f} s ({summary['cpu_seconds']:.1f} s of CPU), "
          f"{summary['iterations']} iterations, {summary['env_steps']} learner env steps")
    print(f"expert: {sum(expert) / len(expert):.1f} average return over {len(expert)} evaluation episodes")
    print(f"average return over {len(returns)} evaluation episodes: {mean:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
