"""A policy-gradient agent (given code) whose advantage math is the student's.

The agent samples whole episodes, asks the student's ``hw2.returns`` functions
for the weights of ∇ log π(a_t|s_t), and takes one gradient step on the
surrogate loss

    L(θ) = − (1/N) Σ_i Σ_t log π_θ(a_t^i | s_t^i) · A_t^i ,   N = steps in the batch,

whose gradient is the policy-gradient estimate. Which weights A_t:

=====================  ===============================================  ==========================
options                A_t                                              student function
=====================  ===============================================  ==========================
(none)                 Σ_{t'} γ^{t'} r_{t'}  (the same at every t)       discounted_return
--rtg                  Q̂_t = Σ_{t'≥t} γ^{t'-t} r_{t'}                   discounted_reward_to_go
--baseline             Q̂_t − V(s_t) (+ γ^{T-t} V(s_T) if truncated)     generalized_advantages, λ=1
--gae-lambda λ         Σ_k (γλ)^k δ_{t+k}                               generalized_advantages
=====================  ===============================================  ==========================

With a baseline, a value critic V_φ is fitted to the Monte-Carlo targets
Q̂_t + γ^{T-t} V(s_T) (the bootstrap only when the episode was truncated).
``--normalize-advantages`` rescales A to mean 0 and std 1 over the batch.

gymnasium ≥ 1.0: ``step`` returns ``terminated`` (a terminal state was reached:
V(s_T) = 0) and ``truncated`` (time limit: s_T still has a value). Only
``terminated`` ends the future; a Trajectory records which one happened and
its ``final_observation`` s_T, so that V(s_T) can be bootstrapped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import ModuleType

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlkit import envs
from rlkit.policies import CategoricalMLPPolicy, GaussianMLPPolicy, mlp
from rlkit.sampling import EnvPool, episode_returns, policy_actor, seed_stream
from rlkit.trajectory import Trajectory


# --------------------------------------------------------------------------- hyper-parameters
@dataclass
class PGConfig:
    env: str = "CartPole-v1"
    "gymnasium id of the task"
    steps: int = 100_000
    "budget of environment steps for training (the x axis of the learning curve)"
    batch_size: int = 1000
    "environment steps per policy update (whole episodes: those running when it is reached are finished)"
    num_envs: int = 1
    "environments stepped side by side while sampling (faster; more of them finish more episodes per batch)"
    gamma: float = 0.99
    "discount γ"
    rtg: bool = False
    "weight ∇ log π(a_t|s_t) by the reward-to-go Q̂_t instead of the full return"
    baseline: bool = False
    "subtract a learned state value V(s_t) (implies reward-to-go)"
    gae_lambda: float | None = None
    "GAE λ (implies a baseline); None: λ = 1 when there is a baseline"
    normalize_advantages: bool = False
    "rescale the advantages of each batch to mean 0, std 1"
    lr: float = 5e-3
    "Adam learning rate of the policy"
    critic_lr: float = 5e-3
    "Adam learning rate of the value critic"
    critic_steps: int = 5
    "full-batch gradient steps of the critic per update"
    hidden: tuple[int, ...] = (64, 64)
    "hidden layer widths of the policy and of the critic"
    max_episode_steps: int | None = None
    "episode length limit (None: the environment's own)"
    eval_episodes: int = 10
    "episodes of the final evaluation (greedy actions: argmax, or the Gaussian mean)"
    seed: int = 0
    "seeds torch, the environment resets and the action sampling"
    target_return: float | None = None
    "stop early once the average training return of a batch reaches this"
    target_eval_episodes: int = 0
    "if > 0, stop early only when, in addition, this many greedy episodes average ≥ target_return"

    def __post_init__(self):
        if self.gae_lambda is not None:
            self.baseline = True
        if self.baseline:
            self.rtg = True
        self.hidden = tuple(self.hidden)

    @property
    def estimator(self) -> str:
        """A short name for plots: 'return', 'rtg', 'rtg+baseline', 'gae(0.97)', with '+norm'."""
        name = "return" if not self.rtg else "rtg"
        if self.gae_lambda is not None:
            name = f"gae(λ={self.gae_lambda:g})"
        elif self.baseline:
            name = "rtg+baseline"
        return name + ("+norm" if self.normalize_advantages else "")

    @property
    def slug(self) -> str:
        """The estimator's name for file names: 'return', 'rtg', 'rtg_baseline', 'gae0.97', with '_na'."""
        name = "rtg" if self.rtg else "return"
        if self.gae_lambda is not None:
            name = f"gae{self.gae_lambda:g}"
        elif self.baseline:
            name = "rtg_baseline"
        return name + ("_na" if self.normalize_advantages else "")


# --------------------------------------------------------------------------- the student's functions
@dataclass
class AdvantageFunctions:
    """The three functions of ``hw2/returns.py`` the agent calls (one trajectory at a time)."""

    discounted_return: Callable
    discounted_reward_to_go: Callable
    generalized_advantages: Callable

    @classmethod
    def from_module(cls, module: ModuleType) -> "AdvantageFunctions":
        return cls(module.discounted_return, module.discounted_reward_to_go, module.generalized_advantages)

    def probe(self, cfg: "PGConfig") -> None:
        """Call the functions this configuration uses once on a tiny episode, so that a stub
        (NotImplementedError) or a wrong shape shows up before any environment step."""
        r, v = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.5, 0.25, 1.0, 0.0])
        if not cfg.rtg:
            _checked(self.discounted_return(r.clone(), cfg.gamma), "discounted_return", 3)
            return
        _checked(self.discounted_reward_to_go(r.clone(), cfg.gamma), "discounted_reward_to_go", 3)
        if cfg.baseline:
            lam = 1.0 if cfg.gae_lambda is None else cfg.gae_lambda
            _checked(self.generalized_advantages(r.clone(), v.clone(), cfg.gamma, lam, False),
                     "generalized_advantages", 3)


def _checked(value, name: str, length: int) -> Tensor:
    """The student's output as a float32 [T] tensor, or a clear error."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} returned {type(value).__name__}, expected a torch.Tensor of shape [{length}]")
    if tuple(value.shape) != (length,):
        raise ValueError(f"{name} returned shape {list(value.shape)}, expected [{length}]")
    value = value.detach().to("cpu", torch.float32)
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} returned non-finite values (nan or inf)")
    return value


# --------------------------------------------------------------------------- sampling
def make_env(cfg: PGConfig) -> gym.Env:
    kwargs = {} if cfg.max_episode_steps is None else {"max_episode_steps": cfg.max_episode_steps}
    return envs.make(cfg.env, **kwargs)


def make_policy(env: gym.Env, hidden=(64, 64)) -> nn.Module:
    obs_dim = int(np.prod(env.observation_space.shape))
    if isinstance(env.action_space, gym.spaces.Discrete):
        return CategoricalMLPPolicy(obs_dim, int(env.action_space.n), hidden)
    return GaussianMLPPolicy(obs_dim, int(np.prod(env.action_space.shape)), hidden)


def make_pool(cfg: PGConfig) -> EnvPool:
    """``cfg.num_envs`` copies of the task, stepped together (``rlkit.sampling``)."""
    return EnvPool.make(lambda: make_env(cfg), cfg.num_envs)


# --------------------------------------------------------------------------- the agent
class ValueCritic(nn.Module):
    """V_φ(s): an MLP from observations [T, obs_dim] to values [T]."""

    def __init__(self, obs_dim: int, hidden=(64, 64)):
        super().__init__()
        self.net = mlp(obs_dim, 1, hidden)

    def forward(self, observations: Tensor) -> Tensor:
        return self.net(observations).squeeze(-1)


class PGAgent:
    def __init__(self, cfg: PGConfig, env: gym.Env | EnvPool, functions: AdvantageFunctions):
        self.cfg, self.fn = cfg, functions
        self.policy = make_policy(env, cfg.hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        self.critic = None
        if cfg.baseline:
            self.critic = ValueCritic(int(np.prod(env.observation_space.shape)), cfg.hidden)
            self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)

    # -- advantages: the student's functions, one trajectory at a time
    def advantages(self, batch: list[Trajectory]) -> tuple[Tensor, Tensor | None]:
        """(A for every step of the batch [N], critic targets [N] or None)."""
        cfg, advs, targets = self.cfg, [], []
        for traj in batch:
            T, r = len(traj), traj.rewards
            if not cfg.rtg:
                advs.append(_checked(self.fn.discounted_return(r.clone(), cfg.gamma), "discounted_return", T))
                continue
            q = _checked(self.fn.discounted_reward_to_go(r.clone(), cfg.gamma), "discounted_reward_to_go", T)
            if self.critic is None:
                advs.append(q)
                continue
            with torch.no_grad():
                v = self.critic(torch.cat([traj.observations, traj.final_observation.unsqueeze(0)]))
            lam = 1.0 if cfg.gae_lambda is None else cfg.gae_lambda
            a = _checked(self.fn.generalized_advantages(r.clone(), v.clone(), cfg.gamma, lam, traj.terminated),
                         "generalized_advantages", T)
            advs.append(a)
            # Monte-Carlo target for V(s_t): Q̂_t, plus the discounted bootstrap γ^{T-t} V(s_T) after a truncation
            bootstrap = 0.0 if traj.terminated else float(v[-1])
            discounts = cfg.gamma ** torch.arange(T, 0, -1, dtype=torch.float64)
            targets.append(q + (discounts * bootstrap).to(torch.float32))
        adv = torch.cat(advs)
        if cfg.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
        return adv, (torch.cat(targets) if targets else None)

    def update(self, batch: list[Trajectory]) -> dict[str, float]:
        adv, targets = self.advantages(batch)
        obs = torch.cat([t.observations for t in batch])
        acts = torch.cat([t.actions for t in batch])
        logp = self.policy(obs).log_prob(acts)
        loss = -(logp * adv).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        info = {"policy_loss": float(loss.detach())}
        if self.critic is not None:
            for _ in range(self.cfg.critic_steps):
                critic_loss = ((self.critic(obs) - targets) ** 2).mean()
                self.critic_optimizer.zero_grad()
                critic_loss.backward()
                self.critic_optimizer.step()
            info["critic_loss"] = float(critic_loss.detach())
        return info


# --------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    policy: nn.Module
    log: list[dict] = field(default_factory=list)  # one row per update
    eval_returns: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train(cfg: PGConfig, functions: AdvantageFunctions, progress: Callable[[int, dict], None] | None = None,
          evaluate_at_end: bool = True) -> TrainResult:
    """Train for ``cfg.steps`` environment steps; one log row per update.

    Log columns: iteration, env_steps, wall_s, episodes, return_mean, return_std,
    return_min, return_max, episode_length, policy_loss, critic_loss.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # tiny networks: threads only add overhead (and results depend on the thread count)
    rng = np.random.default_rng(cfg.seed)
    pool = make_pool(cfg)
    agent = PGAgent(cfg, pool, functions)
    functions.probe(cfg)
    seeds, explore = seed_stream(rng), policy_actor(agent.policy, rng=rng)
    start, steps, log = time.monotonic(), 0, []
    while steps < cfg.steps:
        batch = pool.episodes(explore, seeds, min_steps=cfg.batch_size)
        steps += sum(len(t) for t in batch)
        info = agent.update(batch)
        returns = np.array([float(t.rewards.sum()) for t in batch])
        row = {"iteration": len(log), "env_steps": steps, "wall_s": round(time.monotonic() - start, 3),
               "episodes": len(batch), "return_mean": float(returns.mean()), "return_std": float(returns.std()),
               "return_min": float(returns.min()), "return_max": float(returns.max()),
               "episode_length": float(np.mean([len(t) for t in batch])),
               "policy_loss": info["policy_loss"], "critic_loss": info.get("critic_loss", math.nan)}
        log.append(row)
        if progress:
            progress(steps, row)
        if cfg.target_return is not None and row["return_mean"] >= cfg.target_return:
            if cfg.target_eval_episodes <= 0:
                break
            if np.mean(evaluate(pool, agent.policy, cfg.target_eval_episodes, seed=20_000)) >= cfg.target_return:
                break
    result = TrainResult(agent.policy, log)
    if evaluate_at_end and cfg.eval_episodes > 0:
        result.eval_returns = evaluate(pool, agent.policy, cfg.eval_episodes)
    pool.close()
    result.seconds = time.monotonic() - start
    return result


def evaluate(pool: EnvPool, policy: nn.Module, episodes: int, seed: int = 10_000) -> list[float]:
    """Undiscounted returns of ``episodes`` greedy episodes (argmax, or the Gaussian's mean) on reset seeds
    seed, seed+1, …"""
    return episode_returns(pool, policy_actor(policy, greedy=True), episodes, seed)


def config_dict(cfg: PGConfig) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
