"""Expert policies and expert demonstrations for homework 1 (BC / DAgger).

Student-facing, read-only. Needs only ``torch`` and ``numpy`` at load time
(no stable-baselines3): each expert is stored as a plain actor ``state_dict``
plus a small metadata dict in ``weights/<env_id>.pt``; demonstrations live in
``demos/<env_id>.npz``. Both are produced by the instructor's trainer,
``python -m instructor.experts.train`` (``make experts``), which is not part of the student kit.

    >>> from rlkit.experts import load_expert, load_demonstrations
    >>> expert = load_expert("Hopper-v5")
    >>> actions = expert(torch.as_tensor(observations))      # [B, act_dim]
    >>> paths = load_demonstrations("Hopper-v5")              # list of dicts

The expert's action is deterministic: ``tanh`` of the actor MLP's output, rescaled
from [-1, 1] to the action bounds (the deterministic action of a SAC or TD3 actor).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "EXPERT_ENVS",
    "ExpertPolicy",
    "load_expert",
    "load_demonstrations",
    "expert_info",
    "weights_path",
    "demos_path",
]

EXPERT_ENVS: tuple[str, ...] = ("Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")

_HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = _HERE / "weights"
DEMOS_DIR = _HERE / "demos"
INFO_FILE = _HERE / "experts.json"


def _check_env(env_id: str) -> None:
    if env_id not in EXPERT_ENVS:
        raise ValueError(f"no expert for {env_id!r}; available: {', '.join(EXPERT_ENVS)}")


def weights_path(env_id: str, root: Path | None = None) -> Path:
    return Path(root or WEIGHTS_DIR) / f"{env_id}.pt"


def demos_path(env_id: str, root: Path | None = None) -> Path:
    return Path(root or DEMOS_DIR) / f"{env_id}.npz"


class ExpertPolicy(nn.Module):
    """Plain MLP actor: obs -> [Linear, ReLU]*n -> Linear -> tanh -> rescale.

    Calling it maps a batch of observations ``[B, obs_dim]`` (float32 or
    float64 tensor; numpy arrays and a single ``[obs_dim]`` observation are
    accepted too) to a float32 batch of actions ``[B, act_dim]`` inside the
    action bounds. Runs under ``torch.no_grad``.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes, action_low, action_high, meta: dict | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        last = obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(last, int(h)), nn.ReLU()]
            last = int(h)
        layers.append(nn.Linear(last, act_dim))
        self.net = nn.Sequential(*layers)
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32)).reshape(act_dim)
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32)).reshape(act_dim)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.meta: dict[str, Any] = dict(meta or {})
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def env_id(self) -> str | None:
        return self.meta.get("env_id")

    @torch.no_grad()
    def forward(self, obs) -> torch.Tensor:
        obs = torch.as_tensor(obs)
        single = obs.dim() == 1
        if single:
            obs = obs.unsqueeze(0)
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"expected observations [B, {self.obs_dim}], got {tuple(obs.shape)}")
        first = self.net[0].weight
        squashed = torch.tanh(self.net(obs.to(device=first.device, dtype=first.dtype)))
        action = self.action_low + 0.5 * (squashed + 1.0) * (self.action_high - self.action_low)
        return action[0] if single else action

    def get_action(self, obs: np.ndarray) -> np.ndarray:
        """numpy in, numpy out (convenience for rollouts)."""
        return self(torch.as_tensor(np.asarray(obs))).cpu().numpy()

    def to_file(self, path: Path) -> None:
        payload = {
            "format": "rlkit-expert-v1",
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "meta": self.meta,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)  # atomic: readers never see a half-written file

    @classmethod
    def from_file(cls, path: Path) -> "ExpertPolicy":
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        meta = payload["meta"]
        policy = cls(
            meta["obs_dim"], meta["act_dim"], meta["hidden_sizes"], meta["action_low"], meta["action_high"], meta=meta
        )
        policy.net.load_state_dict(payload["state_dict"])
        return policy


def load_expert(env_id: str) -> ExpertPolicy:
    """The expert policy for ``env_id`` (one of ``EXPERT_ENVS``)."""
    _check_env(env_id)
    path = weights_path(env_id)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m instructor.experts.train --env {env_id}`")
    return ExpertPolicy.from_file(path)


def load_demonstrations(env_id: str) -> list[dict]:
    """Expert trajectories for ``env_id``: a list of dicts with

    - ``observations`` float32 ``[T, obs_dim]``
    - ``actions``      float32 ``[T, act_dim]``
    - ``rewards``      float32 ``[T]``
    - ``terminated``   bool (the episode ended in a terminal state, not a time limit)
    """
    _check_env(env_id)
    path = demos_path(env_id)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m instructor.experts.train --demos --env {env_id}`")
    with np.load(path, allow_pickle=False) as data:
        obs, act, rew = data["observations"], data["actions"], data["rewards"]
        lengths, terminated = data["episode_lengths"], data["terminated"]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [
        {
            "observations": obs[a:b].astype(np.float32),
            "actions": act[a:b].astype(np.float32),
            "rewards": rew[a:b].astype(np.float32),
            "terminated": bool(term),
        }
        for a, b, term in zip(bounds[:-1], bounds[1:], terminated)
    ]


def expert_info(env_id: str | None = None) -> dict:
    """Measured returns etc. recorded in ``experts.json`` (all envs, or one)."""
    info = json.loads(INFO_FILE.read_text()) if INFO_FILE.exists() else {}
    return info if env_id is None else info.get(env_id, {})
