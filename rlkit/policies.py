"""Policies. Each is an ``nn.Module`` whose call returns a distribution.

``policy(observations)`` with observations [T, obs_dim] returns a
``torch.distributions.Distribution`` whose ``log_prob(actions)`` has shape [T]
and whose ``sample()`` has the shape of the actions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), activation=nn.Tanh) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), activation()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class TabularSoftmaxPolicy(nn.Module):
    """π(a|s) = softmax(θ[s])_a for one-hot observations [T, n_states].

    The only parameter is ``logits`` θ, shape [n_states, n_actions].
    """

    def __init__(self, logits: Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits.clone())

    def forward(self, observations: Tensor) -> Distribution:
        return Categorical(logits=observations.to(self.logits.dtype) @ self.logits)


class CategoricalMLPPolicy(nn.Module):
    """Discrete actions: π(·|o) = Categorical(logits = MLP(o))."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.net = mlp(obs_dim, n_actions, hidden)

    def forward(self, observations: Tensor) -> Distribution:
        return Categorical(logits=self.net(observations))


class GaussianMLPPolicy(nn.Module):
    """Continuous actions: π(·|o) = N(MLP(o), diag(exp(log_std))²).

    ``log_prob(actions)`` sums over action dimensions, so it has shape [T].
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64), log_std: float = -0.5):
        super().__init__()
        self.mean = mlp(obs_dim, act_dim, hidden)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std)))

    def forward(self, observations: Tensor) -> Distribution:
        mean = self.mean(observations)
        return Independent(Normal(mean, self.log_std.exp().expand_as(mean)), 1)


class LinearGaussianPolicy(nn.Module):
    """π(a|o) = N(W o + c, diag(exp(log_std))²), a small policy for exact checks."""

    def __init__(self, weight: Tensor, bias: Tensor, log_std: Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.log_std = nn.Parameter(log_std.clone())

    def forward(self, observations: Tensor) -> Distribution:
        mean = observations.to(self.weight.dtype) @ self.weight.T + self.bias
        return Independent(Normal(mean, self.log_std.exp().expand_as(mean)), 1)
