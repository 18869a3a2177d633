"""The trajectory type every homework passes around."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Trajectory:
    """One episode (or the part of it that was recorded).

    observations: [T, obs_dim]  o_t, the observation the action a_t was taken in.
    actions:      [T] (discrete, long) or [T, act_dim] (continuous)  a_t.
    rewards:      [T]  r_t, received after taking a_t in o_t.
    terminated:   True only when the episode reached a terminal state after the
                  last step. False when it was cut short (time limit, max_length):
                  then the state after the last step still has value V(s_T).
    behavior_log_probs: [T] or None  log μ(a_t|o_t) of the policy that collected
                  the data, used by off-policy estimators.
    final_observation: [obs_dim] or None  the observation after the last step,
                  o_T, needed to bootstrap V(s_T) when the episode was truncated.
    """

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    terminated: bool
    behavior_log_probs: Tensor | None = None
    final_observation: Tensor | None = None
    infos: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def to(self, device: torch.device | str) -> "Trajectory":
        def move(x):
            return None if x is None else x.to(device)

        return Trajectory(
            observations=move(self.observations),
            actions=move(self.actions),
            rewards=move(self.rewards),
            terminated=self.terminated,
            behavior_log_probs=move(self.behavior_log_probs),
            final_observation=move(self.final_observation),
            infos=dict(self.infos),
        )
