"""Episodes from a pool of environments stepped side by side (given code).

The training and evaluation code of both homeworks collects data here. A pool
holds ``n`` copies of one task. Each copy runs its own episode, and at every
step the actor is called ONCE on the observations of all running episodes
([B, obs_dim] → B actions), so a pool of 8 costs little more policy time than
a single environment. When an episode ends its slot starts the next one,
until the pool has run the episodes it was asked for.

An episode is recorded as an ``rlkit.trajectory.Trajectory``: the observation
each action was taken in, the action, the reward, the environment's
``terminated`` flag of the last step (a time limit or ``max_length`` is NOT
termination) and the observation after the last step.

Determinism: the n environments are reset with explicit seeds, episodes are
returned in the order they were started, and an actor that draws its noise
from its own generator sees the same batches every time. With a deterministic
actor, an episode depends only on its reset seed, not on the pool's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlkit.policies import CategoricalMLPPolicy, GaussianMLPPolicy
from rlkit.trajectory import Trajectory

Actor = Callable[[Tensor], Tensor]
"observations [B, obs_dim] float32 → actions [B] (discrete) or [B, act_dim] (continuous)"


def env_action(space: gym.Space, action: Tensor | np.ndarray):
    """One action as ``env.step`` wants it: an int for Discrete, else a numpy array of the box's dtype,
    clipped to the box (a Gaussian policy's sample is unbounded; log π uses the unclipped action)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(action)
    if isinstance(action, Tensor):
        action = action.detach().cpu().numpy()
    a = np.asarray(action).astype(space.dtype).reshape(space.shape)
    return np.clip(a, space.low, space.high)


@torch.no_grad()
def policy_actor(policy: nn.Module, greedy: bool = False, rng: np.random.Generator | None = None) -> Actor:
    """The actor of a policy (a module returning a distribution) or of an expert (returning actions).

    greedy: the most likely action (argmax, or the Gaussian's mean). Otherwise a ~ π(·|o) with
    the noise drawn from ``rng``; the two MLP policies get fast paths, because building a torch
    Distribution per step costs more than their networks.
    """
    rng = rng if rng is not None else np.random.default_rng(0)

    @torch.no_grad()
    def actor(observations: Tensor) -> Tensor:
        if isinstance(policy, CategoricalMLPPolicy):
            logits = _mlp(policy.net, observations).double()
            if greedy:
                return logits.argmax(-1)
            cdf = torch.softmax(logits, -1).numpy().cumsum(-1)
            u = rng.random(cdf.shape[0]) * cdf[:, -1]
            index = (cdf <= u[:, None]).sum(-1)  # inverse-CDF sampling: the first bin whose cdf exceeds u
            return torch.from_numpy(np.minimum(index, cdf.shape[1] - 1))
        if isinstance(policy, GaussianMLPPolicy):
            mean = _mlp(policy.mean, observations)
            if greedy:
                return mean
            noise = torch.from_numpy(rng.standard_normal(tuple(mean.shape)).astype(np.float32))
            return mean + policy.log_std.exp() * noise
        out = policy(observations)
        if isinstance(out, Tensor):  # an expert maps observations to actions
            return out
        return out.mode if greedy else out.sample()

    return actor


def _mlp(net: nn.Module, x: Tensor) -> Tensor:
    """``net(x)``; for a plain ``nn.Sequential`` (rlkit.policies.mlp's) layer by layer without the module-call
    machinery, the same arithmetic at a third less of a CartPole step's time."""
    if type(net) is not nn.Sequential or any(m._forward_hooks or m._forward_pre_hooks for m in (net, *net)):
        return net(x)
    for layer in net:
        x = layer.forward(x)
    return x


class _Running:
    """The episode one slot of the pool is playing: its observations and actions as numpy rows, turned into
    tensors once, when the episode ends (a tensor per step costs more than CartPole's own step)."""

    def __init__(self, order: int, observation):
        self.order, self.observation = order, observation
        self.observations, self.actions, self.rewards = [], [], []

    def trajectory(self, terminated: bool) -> Trajectory:
        return Trajectory(observations=torch.from_numpy(np.stack(self.observations)),
                          actions=torch.from_numpy(np.stack(self.actions)),
                          rewards=torch.tensor(self.rewards, dtype=torch.float32), terminated=terminated,
                          final_observation=_observation(self.observation))


def _observation(obs) -> Tensor:
    return torch.from_numpy(_observation_row(obs))


def _observation_row(obs) -> np.ndarray:
    """The observation as the float32 row the actor sees."""
    return np.asarray(obs, dtype=np.float32).reshape(-1)


class EnvPool:
    """Environments of one task, stepped together: ``EnvPool([env])``, or ``EnvPool.make(make_env, n)``."""

    def __init__(self, envs: Sequence[gym.Env]):
        self.envs = list(envs)
        if not self.envs:
            raise ValueError("a pool needs at least one environment")
        self.action_space = self.envs[0].action_space
        self.observation_space = self.envs[0].observation_space

    @classmethod
    def make(cls, make_env: Callable[[], gym.Env], n: int = 1) -> "EnvPool":
        """``n`` environments from ``make_env``, a zero-argument callable."""
        if n < 1:
            raise ValueError(f"a pool needs at least one environment, got n={n}")
        return cls([make_env() for _ in range(n)])

    def __len__(self) -> int:
        return len(self.envs)

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def episodes(self, actor: Actor, seeds: Iterable[int | None], *, min_steps: int | None = None,
                 max_length: int | None = None) -> list[Trajectory]:
        """Whole episodes, in the order they were started; episode k is reset with the k-th seed.

        Without ``min_steps``: one episode per seed. With it: episodes start only while fewer than
        ``min_steps`` steps have been taken in all (finished and running episodes together), and
        every started episode is played to its end, so the steps add up to at least ``min_steps``.
        ``max_length`` cuts an episode after that many steps (recorded as not terminated).
        """
        seeds = iter(seeds)
        running: dict[int, _Running] = {}  # slot → its episode
        done: list[tuple[int, Trajectory]] = []
        started = taken = 0

        def start(slot: int) -> None:
            nonlocal started
            if min_steps is not None and taken >= min_steps:
                return
            seed = next(seeds, StopIteration)
            if seed is StopIteration:
                return
            obs, _ = self.envs[slot].reset(seed=seed)
            running[slot] = _Running(started, obs)
            started += 1

        for slot in range(len(self.envs)):
            start(slot)
        while running:
            slots = sorted(running)
            rows = [_observation_row(running[s].observation) for s in slots]
            actions = actor(torch.from_numpy(np.stack(rows)))
            chosen = actions.detach().cpu().numpy()  # the actor's dtype, kept through np.stack
            freed = []
            for i, slot in enumerate(slots):
                episode, a = running[slot], chosen[i]
                next_obs, reward, terminated, truncated, _ = self.envs[slot].step(env_action(self.action_space, a))
                episode.observations.append(rows[i])
                episode.actions.append(a)
                episode.rewards.append(float(reward))
                episode.observation = next_obs
                taken += 1
                cut = max_length is not None and len(episode.rewards) >= max_length
                if terminated or truncated or cut:
                    done.append((episode.order, episode.trajectory(bool(terminated))))
                    del running[slot]
                    freed.append(slot)
            for slot in freed:  # after the whole pool has stepped, so that every slot sees the same count
                start(slot)
        return [traj for _, traj in sorted(done, key=lambda pair: pair[0])]


def seed_stream(rng: np.random.Generator) -> Iterator[int]:
    """Reset seeds drawn from ``rng``, one per episode, forever."""
    while True:
        yield int(rng.integers(2**31))


def episode_returns(pool: EnvPool, actor: Actor, episodes: int, seed: int,
                    max_length: int | None = None) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes on reset seeds seed, seed+1, …"""
    trajectories = pool.episodes(actor, range(seed, seed + episodes), max_length=max_length)
    return [float(t.rewards.double().sum()) for t in trajectories]
