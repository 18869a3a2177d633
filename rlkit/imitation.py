"""Given code for homework 1 (imitation learning): tasks, experts, data, evaluation.

Students read this, they do not edit it. Their code is in ``hw1/imitation.py``.

Tasks:
  * the four CS285 hw1 tasks in their gymnasium v5 form (Ant, HalfCheetah,
    Hopper, Walker2d), with the SAC experts and two demonstrations each from
    ``rlkit.experts``;
  * ``LunarLanderContinuous-v3``, the fast task: its expert is gymnasium's own
    hand-written lander controller (``lunar_lander.heuristic``, vectorised
    here), and its demonstrations are generated on the fly from fixed seeds.

An expert is a callable (an ``nn.Module``) from a batch of observations
[B, obs_dim] to a batch of actions [B, act_dim].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlkit import envs
from rlkit.policies import GaussianMLPPolicy
from rlkit.sampling import EnvPool, episode_returns, policy_actor
from rlkit.trajectory import Trajectory

FAST_TASK = "LunarLanderContinuous-v3"
MUJOCO_TASKS = ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")
TASKS = (FAST_TASK, *MUJOCO_TASKS)
DEMO_SEED = 2000  # reset seeds of the demonstrations (the shipped MuJoCo ones too): 2000, 2001, …
EVAL_SEED = 10_000  # reset seeds of the final evaluation: none of them is used in training


@dataclass
class ImitationConfig:
    """Hyper-parameters of one BC or DAgger run (CS285's run_hw1.py flags)."""

    env: str = FAST_TASK  # the task (one of TASKS)
    method: str = "bc"  # "bc": one iteration on the demonstrations; "dagger": n_iter iterations
    n_iter: int = 10  # DAgger iterations, iteration 0 included (BC always runs 1)
    batch_size: int = 1000  # env steps of learner rollouts collected per DAgger iteration
    train_batch_size: int = 100  # (o, a) pairs per gradient step
    train_steps_per_iter: int = 1000  # gradient steps per iteration
    learning_rate: float = 5e-3  # Adam
    hidden: tuple[int, ...] = (64, 64)  # widths of the policy's MLP
    ep_len: int = 1000  # max_length of every rollout
    eval_batch_size: int = 1000  # env steps of evaluation rollouts after every iteration (0: none)
    max_replay_buffer_size: int = 1_000_000  # (o, a) pairs kept; the oldest are dropped beyond it
    n_demos: int = 2  # expert demonstrations used at iteration 0
    seed: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}


# --------------------------------------------------------------------------- replay buffer
class ReplayBuffer:
    """The aggregated data set D of (observation, action) pairs."""

    def __init__(self, max_size: int = 1_000_000):
        self.max_size = int(max_size)
        self.observations: Tensor | None = None
        self.actions: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.observations is None else int(self.observations.shape[0])

    def add(self, trajectories: Sequence[Trajectory]) -> None:
        """Append every step of every trajectory (keeping the newest ``max_size`` pairs)."""
        obs = [torch.as_tensor(t.observations, dtype=torch.float32) for t in trajectories]
        act = [torch.as_tensor(t.actions) for t in trajectories]
        if not obs:
            return
        obs, act = torch.cat(obs), torch.cat(act)
        if act.is_floating_point():
            act = act.to(torch.float32)
        if self.observations is not None:
            obs, act = torch.cat([self.observations, obs]), torch.cat([self.actions, act])
        self.observations, self.actions = obs[-self.max_size:], act[-self.max_size:]

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n pairs drawn uniformly with replacement: observations [n, obs_dim], actions [n, …]."""
        index = torch.randint(len(self), (n,), generator=generator)
        return self.observations[index], self.actions[index]


# --------------------------------------------------------------------------- the LunarLander expert
class LunarLanderExpert(nn.Module):
    """gymnasium's ``lunar_lander.heuristic`` for the continuous lander, on a batch.

    forward(observations [B, 8]) → actions [B, 2] float32 in [-1, 1], the same
    numbers as ``heuristic(env, o)`` row by row (tests/test_hw1_given.py).
    """

    @torch.no_grad()
    def forward(self, observations: Tensor) -> Tensor:
        s = torch.as_tensor(observations).to(torch.float64)
        single = s.dim() == 1
        s = s.reshape(-1, 8)
        angle_targ = (s[:, 0] * 0.5 + s[:, 2] * 1.0).clamp(-0.4, 0.4)
        hover_targ = 0.55 * s[:, 0].abs()
        angle_todo = (angle_targ - s[:, 4]) * 0.5 - s[:, 5] * 1.0
        hover_todo = (hover_targ - s[:, 1]) * 0.5 - s[:, 3] * 0.5
        contact = (s[:, 6] != 0) | (s[:, 7] != 0)
        angle_todo = torch.where(contact, torch.zeros_like(angle_todo), angle_todo)
        hover_todo = torch.where(contact, -s[:, 3] * 0.5, hover_todo)
        a = torch.stack([hover_todo * 20 - 1, -angle_todo * 20], dim=1).clamp(-1.0, 1.0).to(torch.float32)
        return a[0] if single else a


# --------------------------------------------------------------------------- tasks
def make_env(task: str, max_episode_steps: int | None = None) -> gym.Env:
    if task not in TASKS:
        raise ValueError(f"unknown hw1 task {task!r}; choose one of {', '.join(TASKS)}")
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    return envs.make(task, **kwargs)


def load_task_expert(task: str) -> nn.Module:
    if task == FAST_TASK:
        return LunarLanderExpert()
    from rlkit.experts import load_expert

    return load_expert(task)


def load_task_demonstrations(task: str, n: int = 2) -> list[Trajectory]:
    """The first ``n`` expert demonstrations of ``task`` as Trajectories.

    MuJoCo tasks ship two (``rlkit.experts``); beyond them, and for the fast task from the first, the
    expert plays 1000-step episodes from the reset seeds DEMO_SEED + k, k = the demonstration's index,
    which no evaluation uses: the same demonstrations on every run.
    """
    shipped: list[Trajectory] = []
    if task != FAST_TASK:
        from rlkit.experts import load_demonstrations

        shipped = [Trajectory(observations=torch.as_tensor(p["observations"]), actions=torch.as_tensor(p["actions"]),
                              rewards=torch.as_tensor(p["rewards"]), terminated=bool(p["terminated"]))
                   for p in load_demonstrations(task)[:n]]
    if len(shipped) >= n:
        return shipped
    seeds = range(DEMO_SEED + len(shipped), DEMO_SEED + n)
    with EnvPool.make(lambda: make_env(task), min(len(seeds), 8)) as pool:
        return shipped + pool.episodes(policy_actor(load_task_expert(task)), seeds, max_length=1000)


def make_policy(env: gym.Env, hidden: Sequence[int] = (64, 64)) -> GaussianMLPPolicy:
    return GaussianMLPPolicy(int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape)),
                             tuple(hidden))


# --------------------------------------------------------------------------- evaluation (given, trusted)
def evaluate(env: gym.Env | EnvPool, policy: nn.Module, episodes: int, seed: int = EVAL_SEED, greedy: bool = True,
             max_length: int = 1000) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes on reset seeds seed, seed+1, …, one after another in
    ``env``, or side by side in a pool of copies of the task (one policy call per step for all of them).

    greedy: act with the mean of a Gaussian policy (an expert, which returns actions, is
    simply called). Not greedy: sample, with noise from a generator seeded by ``seed``.
    """
    actor = policy_actor(policy, greedy=greedy, rng=np.random.default_rng(seed))
    pool = env if isinstance(env, EnvPool) else EnvPool([env])
    return episode_returns(pool, actor, episodes, seed, max_length=max_length)


@dataclass
class RunResult:
    policy: nn.Module
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def run(cfg: ImitationConfig, training_loop, on_iteration=None) -> RunResult:
    """Build the task, the policy, the expert and the demonstrations, seed everything, and call
    ``training_loop(env, policy, expert, demonstrations, cfg, on_iteration)`` (the student's)."""
    import time

    start = time.monotonic()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    env = make_env(cfg.env, cfg.ep_len)
    env.reset(seed=cfg.seed)  # later resets without a seed continue this seeded stream
    env.action_space.seed(cfg.seed)
    policy = make_policy(env, cfg.hidden)
    expert = load_task_expert(cfg.env)
    demos = load_task_demonstrations(cfg.env, cfg.n_demos)
    try:
        log = training_loop(env, policy, expert, demos, cfg, on_iteration)
    finally:
        env.close()
    return RunResult(policy, list(log or []), time.monotonic() - start)
