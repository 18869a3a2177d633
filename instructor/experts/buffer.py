"""A replay buffer small enough to checkpoint: observations stored as float16 (half the bytes;
relative rounding ≤ 2⁻¹¹ ≈ 5e-4), actions / rewards / terminal flags as float32, ring of
``capacity`` transitions. Sampling uses torch's global RNG (saved in the checkpoint)."""

from __future__ import annotations

import numpy as np
import torch

F16_MAX = float(torch.finfo(torch.float16).max)


class ReplayBuffer:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int, obs_dtype: torch.dtype = torch.float16):
        self.capacity = int(capacity)
        self.obs_dtype = obs_dtype
        self.obs = torch.zeros(self.capacity, obs_dim, dtype=obs_dtype)
        self.next_obs = torch.zeros(self.capacity, obs_dim, dtype=obs_dtype)
        self.act = torch.zeros(self.capacity, act_dim)
        self.rew = torch.zeros(self.capacity, 1)
        self.done = torch.zeros(self.capacity, 1)  # 1 only for a true terminal state (not a time limit)
        self.ptr = 0
        self.size = 0

    def _obs(self, o) -> torch.Tensor:
        o = torch.as_tensor(np.asarray(o, dtype=np.float32))
        if self.obs_dtype == torch.float16:
            o = o.clamp(-F16_MAX, F16_MAX)
        return o

    def add(self, obs, act, rew: float, next_obs, terminated: bool) -> None:
        i = self.ptr
        self.obs[i] = self._obs(obs)
        self.next_obs[i] = self._obs(next_obs)
        self.act[i] = torch.as_tensor(act)
        self.rew[i, 0] = float(rew)
        self.done[i, 0] = float(terminated)
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int):
        idx = torch.randint(0, self.size, (batch_size,))
        return (self.obs[idx].float(), self.act[idx], self.rew[idx], self.next_obs[idx].float(), self.done[idx])

    # ---------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict:
        n = self.size  # only the filled part is saved
        return {"obs": self.obs[:n].clone(), "next_obs": self.next_obs[:n].clone(), "act": self.act[:n].clone(),
                "rew": self.rew[:n].clone(), "done": self.done[:n].clone(), "ptr": self.ptr, "size": n,
                "capacity": self.capacity}

    def load_state_dict(self, state: dict) -> None:
        n = int(state["size"])
        if n > self.capacity:
            raise ValueError(f"checkpointed buffer holds {n} transitions, more than the capacity {self.capacity}")
        for name in ("obs", "next_obs", "act", "rew", "done"):
            getattr(self, name)[:n] = state[name].to(getattr(self, name).dtype)
        self.size = n
        self.ptr = int(state["ptr"]) % self.capacity
