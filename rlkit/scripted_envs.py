"""Small scripted gymnasium environments, policies and experts for grading hw1.

They are trusted, importable classes: the grader pickles them into the
sandboxed child, and rebuilds the same objects in the judge to know what a
correct rollout must contain.

``ScriptedEnv`` makes every mistake visible in the recorded data:
  * the observation counts steps: o_t = [t, u, k, 0, …], where u is drawn
    from the env's RNG at reset (so it shows whether, and how, the reset was
    seeded) and k is the episode's index;
  * the reward encodes the step and the action the env received:
    r_t = 10 t + a_t (discrete) or 10 t + 4 clip(a_t[0], −1, 1) (continuous);
  * episode k ends after ``schedule[k % len(schedule)] = (length, how)`` steps,
    with how one of "terminated", "truncated", "both" (both flags, as
    gymnasium's TimeLimit does when a terminal state falls on the limit) or
    "never" (it runs until the caller stops).
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution

HOWS = ("terminated", "truncated", "both", "never")
STREAM_SEED = 12_345  # the env's RNG before any seeded reset


class ScriptedEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, schedule: Sequence[tuple[int, str]], discrete: bool = True, obs_dim: int = 3,
                 n_actions: int = 3, act_dim: int = 2, stream_seed: int = STREAM_SEED):
        if not schedule or any(how not in HOWS or length < 1 for length, how in schedule):
            raise ValueError(f"bad schedule {schedule!r}")
        self.schedule = [(int(length), str(how)) for length, how in schedule]
        self.discrete = bool(discrete)
        self.obs_dim = max(3, int(obs_dim))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        if self.discrete:
            self.action_space = gym.spaces.Discrete(int(n_actions))
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, (int(act_dim),), np.float32)
        self._np_random, _ = seeding.np_random(stream_seed)
        self.episode, self.t, self.u = -1, 0, 0.0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.obs_dim, dtype=np.float32)
        obs[:3] = (self.t, self.u, self.episode)
        return obs

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        self.u = float(np.float32(self.np_random.uniform(-1.0, 1.0)))
        return self._obs(), {}

    def action_code(self, action) -> float:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if self.discrete:
            if a.size != 1 or a[0] != int(a[0]) or not 0 <= a[0] < self.action_space.n:
                raise ValueError(f"ScriptedEnv.step: expected one integer action in [0, {self.action_space.n}), "
                                 f"got {action!r}")
            return float(a[0])
        if a.size != self.action_space.shape[0]:
            raise ValueError(f"ScriptedEnv.step: expected an action of shape {self.action_space.shape}, "
                             f"got {action!r}")
        return 4.0 * float(np.clip(a[0], -1.0, 1.0))

    def step(self, action):
        if self.episode < 0:
            raise RuntimeError("ScriptedEnv.step called before reset")
        reward = 10.0 * self.t + self.action_code(action)
        self.t += 1
        length, how = self.schedule[self.episode % len(self.schedule)]
        done = self.t == length
        terminated = done and how in ("terminated", "both")
        truncated = done and how in ("truncated", "both")
        return self._obs(), reward, terminated, truncated, {}

    # -- what a correct caller must see (used by the judge)
    def expected_episode(self, k: int, max_length: int) -> tuple[int, bool]:
        """(length, terminated) of episode k when the caller stops at max_length."""
        length, how = self.schedule[k % len(self.schedule)]
        if how == "never" or length > max_length:
            return max_length, False
        return length, how in ("terminated", "both")


class TablePolicy(nn.Module):
    """A discrete policy that depends on the observation's step count:
    π(·|o) = softmax(logits[int(o[0]) mod len(logits)])."""

    def __init__(self, logits: Tensor):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32).clone())

    def forward(self, observations: Tensor) -> Distribution:
        rows = observations[..., 0].round().long().remainder(self.logits.shape[0])
        return Categorical(logits=self.logits[rows])


class LinearExpert(nn.Module):
    """A deterministic expert: π*(o) = W o + b, for a batch [B, obs_dim] (or one observation)."""

    def __init__(self, weight: Tensor, bias: Tensor):
        super().__init__()
        self.register_buffer("weight", torch.as_tensor(weight, dtype=torch.float32).clone())
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32).clone())

    @torch.no_grad()
    def forward(self, observations: Tensor) -> Tensor:
        return torch.as_tensor(observations).to(torch.float32) @ self.weight.T + self.bias
