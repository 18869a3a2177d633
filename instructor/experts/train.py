"""Instructor command: train the hw1 MuJoCo experts, resumably, and ship the best actor.

    python -m instructor.experts.train --env Hopper-v5                  # train (or resume) one task
    python -m instructor.experts.train --all                            # the four tasks, one after another
    python -m instructor.experts.train --env Hopper-v5 --demos          # demos from the shipped weights
    make experts ENV=Hopper-v5 STEPS=1000000                            # the same through make

A lean TD3 (default) or SAC of our own (``agent.py``), one torch thread: no stable-baselines3.

**Resuming.** Every ``--ckpt-every`` steps (at the end of the episode that crosses the mark),
and when stopped by SIGINT/SIGTERM, ``--stop-at``, ``--max-hours`` or the step budget, the whole
training state is written atomically to ``<ckpt-root>/<env_id>/checkpoint.pt``: networks,
targets, optimiser states, torch's RNG state, the replay buffer (float16 observations), step
and episode counters, training wall time and the evaluation history. Starting the same command
again continues from there; an uninterrupted run and a killed-and-resumed one give the same
weights bit for bit (only the steps since the last checkpoint are done again). ``--restart``
discards the checkpoint. The checkpoint root defaults to ``~/.cache/rl-homework-kit/experts``
(``$RLKIT_EXPERTS_CKPT`` or ``--ckpt-root`` override it), outside the work tree: it never goes
into git. The log (``train.log``) and the evaluations (``evals.csv``) sit beside it.

**Shipping.** Every ``--eval-every`` steps the deterministic actor (tanh of the mean, rescaled to
the action bounds) is evaluated over ``--eval-episodes`` episodes with reset seeds 1000, 1001, ….
When the mean beats the best so far, the actor is exported as a torch-only ``ExpertPolicy`` to
``rlkit/experts/weights/<env_id>.pt``, two 1000-step demonstrations to ``rlkit/experts/demos/``
and its record to ``rlkit/experts/experts.json``. "Best so far" includes the expert already
recorded in experts.json: a run never replaces a better recorded expert (``--fresh`` ignores
the record). The run's own best actor is also kept in the checkpoint directory.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from instructor.experts.agent import Agent, AgentConfig
from instructor.experts.buffer import ReplayBuffer
from instructor.experts.export import (
    CS285_EXPERT_RETURNS,
    EVAL_SEED,
    HOLDOUT_SEED,
    TARGET_RETURNS,
    actor_to_expert,
    evaluate,
    make_env,
    read_info,
    update_info,
    write_demos,
)
from rlkit.experts import EXPERT_ENVS, INFO_FILE, ExpertPolicy, weights_path

CKPT_ENV_VAR = "RLKIT_EXPERTS_CKPT"
DEFAULT_CKPT_ROOT = Path("~/.cache/rl-homework-kit/experts")
CKPT_NAME = "checkpoint.pt"
FORMAT = "rlkit-expert-trainer-v1"
# --all trains one task after another, in this order (Hopper first: the most instructive for hw1)
TRAIN_ORDER = ("Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5")
EXIT_INTERRUPTED = 3  # stopped by SIGINT/SIGTERM after checkpointing: run the same command to resume


@dataclass
class TrainConfig:
    """Everything a run can change; each field is a command-line flag (``--batch-size`` …)."""

    env: str = "Hopper-v5"
    steps: int = 1_000_000  # total environment steps; a resumed run continues up to this
    seed: int = 0
    algo: str = "td3"  # td3 | sac
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    batch_size: int = 128  # measured: TD3 at 128 runs ~1.6x the env steps/s of 256 (one CPU thread)
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    utd: float = 1.0  # gradient updates per environment step (0.5: one update every second step)
    learning_starts: int = 10_000  # uniform random actions (and no updates) before this step
    buffer_size: int = 1_000_000
    obs_dtype: str = "float16"  # replay-buffer observations: float16 | float32
    expl_noise: float = 0.1  # TD3's Gaussian exploration noise (in [-1, 1] action units)
    eval_every: int = 10_000
    eval_episodes: int = 10
    ckpt_every: int = 20_000
    log_every: int = 5_000
    stop_at: float | None = None  # stop once the best eval reaches this (default: issue #17's target)
    max_hours: float | None = None  # stop after this much wall time in this process
    threads: int = 1

    # fields a resumed run must share with its checkpoint (the rest may change between sessions)
    IDENTITY = ("env", "seed", "algo", "hidden", "buffer_size", "obs_dtype")

    def agent_config(self) -> AgentConfig:
        return AgentConfig(algo=self.algo, hidden=list(self.hidden), lr=self.lr, gamma=self.gamma, tau=self.tau)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


HELP = {
    "steps": "total environment steps; a resumed run continues up to this",
    "seed": "seed of the networks, the exploration and the training resets",
    "algo": "td3 (the cheaper update: delayed actor, no log-likelihood) or sac",
    "hidden": "hidden layer widths of the actor and of each critic",
    "batch_size": "transitions per gradient step",
    "lr": "Adam learning rate (actor, critics, SAC's temperature)",
    "gamma": "discount",
    "tau": "Polyak rate of the target networks",
    "utd": "gradient steps per environment step (update-to-data ratio; 0.5 = one every second step)",
    "learning_starts": "uniform random actions, and no updates, before this step",
    "buffer_size": "replay capacity in transitions",
    "obs_dtype": "replay-buffer observations: float16 (half the bytes) or float32",
    "expl_noise": "TD3's Gaussian exploration noise, in [-1, 1] action units",
    "eval_every": "evaluate the deterministic actor every this many steps (and export it when it is the best)",
    "eval_episodes": "evaluation episodes (reset seeds 1000, 1001, ...)",
    "ckpt_every": "checkpoint every this many steps (at the end of the episode that crosses the mark)",
    "log_every": "a progress line (steps/s, training return) every this many steps",
    "max_hours": "stop (and checkpoint) after this many hours in this process",
    "threads": "torch threads (1: the measured best on the shared 2-core machine)",
}
CHOICES = {"algo": ["td3", "sac"], "obs_dtype": ["float16", "float32"]}


def ckpt_root(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get(CKPT_ENV_VAR) or DEFAULT_CKPT_ROOT).expanduser()


class Log:
    """Timestamped lines to stdout and to ``<ckpt dir>/train.log``."""

    def __init__(self, path: Path | None, prefix: str):
        self.path, self.prefix = path, prefix

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{self.prefix}] {msg}"
        print(line, flush=True)
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(line + "\n")


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # a reader (or a resumed run) sees the old file or the new one, never half of one


class Trainer:
    def __init__(self, cfg: TrainConfig, ckpt_dir: Path, out_dir: Path | None = None, fresh: bool = False,
                 restart: bool = False, quiet: bool = False):
        self.cfg = cfg
        self.env_id = cfg.env
        self.ckpt_dir = Path(ckpt_dir)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_path = self.ckpt_dir / CKPT_NAME
        self.log = Log(None if quiet else self.ckpt_dir / "train.log", cfg.env)
        self.out_dir = out_dir
        self.w_path = weights_path(cfg.env, out_dir / "weights" if out_dir else None)
        self.demo_root = out_dir / "demos" if out_dir else None
        self.info_file = out_dir / "experts.json" if out_dir else INFO_FILE
        self.fresh = fresh
        self.stop_requested = False

        torch.set_num_threads(cfg.threads)
        self.env = make_env(cfg.env)
        self.eval_env = make_env(cfg.env)
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        self.low = np.asarray(self.env.action_space.low, dtype=np.float64)
        self.high = np.asarray(self.env.action_space.high, dtype=np.float64)

        torch.manual_seed(cfg.seed)
        self.agent = Agent(self.obs_dim, self.act_dim, cfg.agent_config())
        dtype = {"float16": torch.float16, "float32": torch.float32}[cfg.obs_dtype]
        self.buffer = ReplayBuffer(self.obs_dim, self.act_dim, cfg.buffer_size, obs_dtype=dtype)
        self.step = 0
        self.episode = 0
        self.update_credit = 0.0
        self.wall_before = 0.0  # training wall time of earlier processes (resumed runs)
        self.evals: list[dict] = []
        self.episode_returns: list[float] = []
        if restart and self.ckpt_path.exists():
            self.ckpt_path.unlink()
        if self.ckpt_path.exists():
            self._load()
        else:
            self._write_evals_csv()  # (a restarted run starts a fresh evals.csv)
            self.log(f"new run: {json.dumps(cfg.as_dict())}; checkpoints in {self.ckpt_dir}")
        self.t0 = time.time()

    # ------------------------------------------------------------------ checkpoints
    def _load(self) -> None:
        state = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        if state.get("format") != FORMAT:
            raise ValueError(f"{self.ckpt_path} is not a checkpoint of this trainer ({state.get('format')!r})")
        saved = state["config"]
        diff = {k: (saved.get(k), getattr(self.cfg, k)) for k in TrainConfig.IDENTITY
                if saved.get(k) != getattr(self.cfg, k)}
        if diff:
            raise SystemExit(f"{self.ckpt_path} was trained with other settings {diff} (checkpoint, now); "
                             f"use the same ones, --restart to discard it, or another --ckpt-root")
        changed = {k: (saved.get(k), v) for k, v in self.cfg.as_dict().items() if saved.get(k) != v}
        self.agent.load_full_state(state["agent"])
        for opt in (self.agent.actor_opt, self.agent.critic_opt, self.agent.alpha_opt):
            for group in opt.param_groups if opt is not None else []:
                group["lr"] = self.cfg.lr  # the optimiser state carries the old one; the command line wins
        self.buffer.load_state_dict(state["buffer"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.episode = int(state["step"]), int(state["episode"])
        self.update_credit = float(state["update_credit"])
        self.wall_before = float(state["wall_time_s"])
        self.evals = list(state["evals"])
        self.episode_returns = list(state["episode_returns"])
        self._write_evals_csv()  # drop evaluations made after the checkpoint (they are done again)
        self.log(f"resumed at step {self.step} (episode {self.episode}, {self.wall_before / 3600:.2f} h trained, "
                 f"best eval {self.run_best:.1f})" + (f"; changed settings {changed}" if changed else ""))

    def save(self) -> None:
        t = time.time()
        state = {
            "format": FORMAT,
            "config": self.cfg.as_dict(),
            "agent": self.agent.full_state(),
            "buffer": self.buffer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": self.step,
            "episode": self.episode,
            "update_credit": self.update_credit,
            "wall_time_s": self.wall_time,
            "evals": self.evals,
            "episode_returns": self.episode_returns[-1000:],
        }
        atomic_torch_save(state, self.ckpt_path)
        mb = self.ckpt_path.stat().st_size / 2**20
        self.log(f"checkpoint at step {self.step}: {mb:.1f} MB in {time.time() - t:.1f} s")

    # ------------------------------------------------------------------ bookkeeping
    @property
    def wall_time(self) -> float:
        return self.wall_before + (time.time() - self.t0)

    @property
    def run_best(self) -> float:
        return max((e["mean"] for e in self.evals), default=-math.inf)

    def recorded_best(self) -> float:
        """The expert recorded in experts.json (if its weights exist), unless --fresh."""
        if self.fresh:
            return -math.inf
        entry = read_info(self.info_file).get(self.env_id)
        return float(entry["mean"]) if entry and self.w_path.exists() else -math.inf

    def _write_evals_csv(self) -> None:
        path = self.ckpt_dir / "evals.csv"
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["steps", "wall_s", "mean", "std", "min", "max", "mean_len", "exported"])
            for e in self.evals:
                w.writerow([e["steps"], e["wall_s"], e["mean"], e["std"], e["min"], e["max"], e["mean_len"],
                            int(e["exported"])])

    def export_policy(self) -> ExpertPolicy:
        hp = {k: v for k, v in self.cfg.as_dict().items() if k not in ("env", "threads", "stop_at", "max_hours")}
        meta = {"steps": int(self.step), "seed": self.cfg.seed, "algo": self.cfg.algo.upper(),
                "hyperparams": hp, "wall_time_s": round(self.wall_time, 1)}
        return actor_to_expert(self.agent.actor.net, self.env, self.env_id, meta)

    def evaluate_and_maybe_export(self) -> None:
        t = time.time()
        policy = self.export_policy()
        returns, lengths = evaluate(policy, self.env_id, self.cfg.eval_episodes, self.eval_env)
        mean, std = float(np.mean(returns)), float(np.std(returns))
        best_before = max(self.run_best, self.recorded_best())
        run_improved = mean > self.run_best
        exported = mean > best_before
        wall = self.wall_time
        self.evals.append({"steps": self.step, "wall_s": round(wall, 1), "mean": round(mean, 2),
                           "std": round(std, 2), "min": round(min(returns), 2), "max": round(max(returns), 2),
                           "mean_len": float(np.mean(lengths)), "exported": exported})
        csv_path = self.ckpt_dir / "evals.csv"
        if not csv_path.exists():
            self._write_evals_csv()
        else:
            with open(csv_path, "a", newline="") as fh:
                e = self.evals[-1]
                csv.writer(fh).writerow([e["steps"], e["wall_s"], e["mean"], e["std"], e["min"], e["max"],
                                         e["mean_len"], int(exported)])
        self.log(f"EVAL step {self.step}: return {mean:.1f} ± {std:.1f} (min {min(returns):.1f}, mean length "
                 f"{np.mean(lengths):.0f}; {time.time() - t:.1f} s)"
                 + ("  -> new best, exported" if exported else f"  (best so far {best_before:.1f})"))
        policy.meta.update(return_mean=round(mean, 2), return_std=round(std, 2), episodes=len(returns))
        if run_improved:  # this run's best actor, kept beside the checkpoint whether or not it ships
            policy.to_file(self.ckpt_dir / "best_actor.pt")
        if not exported:
            return
        entry = {
            "mean": round(mean, 2),
            "std": round(std, 2),
            "episodes": len(returns),
            "returns": [round(r, 2) for r in returns],
            "episode_lengths": lengths,
            "eval_seeds": [EVAL_SEED + i for i in range(len(returns))],
            "steps": int(self.step),
            "wall_time_s": round(wall, 1),
            "steps_per_s": round(self.step / max(wall, 1e-9), 1),
            "algo": self.cfg.algo.upper(),
            "seed": self.cfg.seed,
            "hyperparams": policy.meta["hyperparams"],
            "trainer": "instructor.experts.train",
            "cs285_expert_return": CS285_EXPERT_RETURNS.get(self.env_id),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        held, _ = evaluate(policy, self.env_id, len(returns), self.eval_env, first_seed=HOLDOUT_SEED)
        entry.update(holdout_mean=round(float(np.mean(held)), 2), holdout_std=round(float(np.std(held)), 2),
                     holdout_seeds=[HOLDOUT_SEED + i for i in range(len(held))])
        self.log(f"exported; on the holdout seeds {HOLDOUT_SEED}…: {np.mean(held):.1f} ± {np.std(held):.1f}")
        policy.to_file(self.w_path)
        entry.update(write_demos(policy, self.env_id, self.demo_root))
        entry["weights_bytes"] = self.w_path.stat().st_size
        update_info(self.info_file, self.env_id, entry)

    # ------------------------------------------------------------------ training
    def _stop_reason(self) -> str | None:
        cfg = self.cfg
        if self.step >= cfg.steps:
            return f"step budget {cfg.steps} reached"
        if cfg.stop_at is not None and self.run_best >= cfg.stop_at:
            return f"best eval {self.run_best:.1f} ≥ --stop-at {cfg.stop_at}"
        if cfg.max_hours is not None and time.time() - self.t0 > cfg.max_hours * 3600:
            return f"--max-hours {cfg.max_hours} reached"
        if self.stop_requested:
            return "stop requested (signal)"
        return None

    def run(self) -> None:
        cfg = self.cfg
        reason = self._stop_reason()
        if reason:
            self.log(f"nothing to do: {reason}")
            return
        self.log(f"training from step {self.step} to {cfg.steps} ({cfg.algo.upper()}, batch {cfg.batch_size}, "
                 f"hidden {cfg.hidden}, utd {cfg.utd}, {torch.get_num_threads()} torch thread(s))")
        next_ckpt = (self.step // cfg.ckpt_every + 1) * cfg.ckpt_every
        win_t, win_n = time.time(), self.step
        scale = 0.5 * (self.high - self.low)
        while reason is None:
            # one episode; episode k resets with seed (seed, k), so a resumed run replays the same resets
            obs, _ = self.env.reset(seed=cfg.seed * 1_000_003 + self.episode)
            ep_ret, done = 0.0, False
            while not done:
                if self.step < cfg.learning_starts:
                    act = torch.rand(self.act_dim) * 2.0 - 1.0
                else:
                    obs_t = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)
                    act = self.agent.act(obs_t, explore=True, noise=cfg.expl_noise)[0]
                a = act.numpy()
                next_obs, rew, terminated, truncated, _ = self.env.step(self.low + (a + 1.0) * scale)
                self.buffer.add(obs, a, rew, next_obs, terminated)
                obs, ep_ret, done = next_obs, ep_ret + float(rew), terminated or truncated
                self.step += 1
                if self.step >= cfg.learning_starts:
                    self.update_credit += cfg.utd
                    while self.update_credit >= 1.0:
                        self.agent.update(*self.buffer.sample(cfg.batch_size))
                        self.update_credit -= 1.0
                if self.step % cfg.log_every == 0:
                    now = time.time()
                    recent = np.mean(self.episode_returns[-10:]) if self.episode_returns else float("nan")
                    self.log(f"step {self.step:>8d}  {(self.step - win_n) / max(now - win_t, 1e-9):6.1f} steps/s  "
                             f"{self.wall_time / 60:7.1f} min  train return (last 10) {recent:8.1f}  "
                             f"best eval {self.run_best:8.1f}")
                    win_t, win_n = now, self.step
                if self.step % cfg.eval_every == 0 and self.step >= cfg.learning_starts:
                    self.evaluate_and_maybe_export()
                if self.step >= cfg.steps:
                    break
            self.episode += 1
            self.episode_returns.append(ep_ret)
            reason = self._stop_reason()
            if reason or self.step >= next_ckpt:
                self.save()
                next_ckpt = (self.step // cfg.ckpt_every + 1) * cfg.ckpt_every
        self.log(f"stopped at step {self.step}: {reason}; {self.wall_time / 3600:.2f} h trained, "
                 f"{self.step / max(self.wall_time, 1e-9):.1f} steps/s overall, best eval {self.run_best:.1f}")


# ---------------------------------------------------------------------- command line
def regenerate_demos(env_id: str, out_dir: Path | None = None) -> None:
    policy = ExpertPolicy.from_file(weights_path(env_id, out_dir / "weights" if out_dir else None))
    res = write_demos(policy, env_id, out_dir / "demos" if out_dir else None)
    update_info(out_dir / "experts.json" if out_dir else INFO_FILE, env_id, res, merge=True)
    print(f"[{env_id}] demos from the expert trained {policy.meta.get('steps')} steps: "
          f"returns {[round(r, 1) for r in res['demo_returns']]}, lengths {res['demo_lengths']}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", choices=EXPERT_ENVS)
    p.add_argument("--all", action="store_true", help="every task in EXPERT_ENVS, one after another")
    p.add_argument("--demos", action="store_true", help="only (re)generate demos from the shipped weights")
    p.add_argument("--ckpt-root", default=None,
                   help=f"checkpoint root (default ${CKPT_ENV_VAR} or {DEFAULT_CKPT_ROOT}); one folder per task")
    p.add_argument("--out-dir", default=None, help="write weights/, demos/, experts.json here, not in rlkit/experts")
    p.add_argument("--fresh", action="store_true", help="replace the recorded expert even when this run is worse")
    p.add_argument("--restart", action="store_true",
                   help="discard the task's checkpoint and start over (with --all: every task's)")
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "env":
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if f.name == "hidden":
            p.add_argument(flag, type=int, nargs="+", default=default, help=HELP[f.name])
        elif f.name == "stop_at":
            p.add_argument(flag, default="target",
                           help="stop once the best eval reaches this: a number, 'target' (issue #17's: "
                                + ", ".join(f"{k} {v:g}" for k, v in TARGET_RETURNS.items()) + ") or 'none'")
        elif f.name == "max_hours":
            p.add_argument(flag, type=float, default=None, help=HELP[f.name])
        else:
            p.add_argument(flag, type=type(default), default=default, choices=CHOICES.get(f.name),
                           help=f"{HELP[f.name]} (default {default})")
    args = p.parse_args(argv)
    if not args.env and not args.all:
        p.error("give --env ENV or --all")
    return args


def config_for(args, env_id: str) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "env"}
    stop = str(args.stop_at).lower()
    values["stop_at"] = None if stop == "none" else TARGET_RETURNS.get(env_id) if stop == "target" else float(stop)
    return TrainConfig(env=env_id, **values)


def main(argv=None) -> None:
    args = parse_args(argv)
    envs = list(TRAIN_ORDER) if args.all else [args.env]
    out_dir = Path(args.out_dir) if args.out_dir else None
    if args.demos:
        for env_id in envs:
            regenerate_demos(env_id, out_dir)
        return
    root = ckpt_root(args.ckpt_root)
    trainer = None

    def on_signal(signum, frame):  # finish the episode, checkpoint, exit
        if trainer is not None:
            trainer.stop_requested = True
        print(f"signal {signum}: checkpointing at the end of this episode", flush=True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for env_id in envs:
        trainer = Trainer(config_for(args, env_id), root / env_id, out_dir, fresh=args.fresh, restart=args.restart)
        trainer.run()
        if trainer.stop_requested:  # checkpointed; a non-zero status stops `--all` and shell loops
            sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
