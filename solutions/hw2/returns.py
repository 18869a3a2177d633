"""Homework 2, part 1: returns, reward-to-go and generalized advantages.

Each function below takes one trajectory's rewards as a 1-D tensor.
Rules for every function in this file:
  * the output keeps the dtype and device of ``rewards``;
  * inputs are never modified in place.
"""

import torch
from torch import Tensor


def discounted_return(rewards: Tensor, gamma: float) -> Tensor:
    """The discounted return of the whole trajectory, repeated at every step.

    rewards: [T]  r_0 … r_{T-1}
    returns: [T]  every entry equals  Σ_{t'=0}^{T-1} γ^{t'} r_{t'}

    This is the "full return" weight of the vanilla policy gradient: each
    ∇ log π(a_t|s_t) is multiplied by the same number, whatever t is.
    """
    ### BEGIN SOLUTION
    discounts = gamma ** torch.arange(rewards.shape[0], dtype=torch.float64, device=rewards.device)
    total = (discounts * rewards.to(torch.float64)).sum()
    return total.expand(rewards.shape[0]).to(rewards.dtype).clone()
    ### END SOLUTION


def discounted_reward_to_go(rewards: Tensor, gamma: float) -> Tensor:
    """The reward-to-go Q̂_t of every step.

    rewards: [T]  r_0 … r_{T-1}
    returns: [T]  Q̂_t = Σ_{t'=t}^{T-1} γ^{t'-t} r_{t'}

    Causality: the action at time t cannot change rewards received before t,
    so only the rewards from t onwards weight ∇ log π(a_t|s_t).
    Equivalently Q̂_{T-1} = r_{T-1} and Q̂_t = r_t + γ Q̂_{t+1}.
    Pitfall: the exponent is t' − t (the discount restarts at every step),
    not t'.
    """
    ### BEGIN SOLUTION
    rtg = torch.empty(rewards.shape[0], dtype=torch.float64, device=rewards.device)
    running = torch.zeros((), dtype=torch.float64, device=rewards.device)
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t].to(torch.float64) + gamma * running
        rtg[t] = running
    return rtg.to(rewards.dtype)
    ### END SOLUTION


def generalized_advantages(rewards: Tensor, values: Tensor, gamma: float, lam: float, terminated: bool) -> Tensor:
    """Generalized advantage estimates (GAE) of every step.

    rewards: [T]    r_0 … r_{T-1}
    values:  [T+1]  V(s_0) … V(s_T). values[T] is the value of the state after
                    the last step. It counts as 0 when ``terminated`` (the
                    episode really ended) and is used as it is when the episode
                    was truncated (time limit): then the future still exists.
    returns: [T]    A_t = Σ_{k=0}^{T-1-t} (γλ)^k δ_{t+k},
                    with δ_t = r_t + γ V(s_{t+1}) − V(s_t).

    Equivalently A_{T-1} = δ_{T-1} and A_t = δ_t + γλ A_{t+1}.
    λ = 0 gives the one-step TD error δ_t; λ = 1 gives Q̂_t − V(s_t) plus the
    discounted bootstrap γ^{T-t} V(s_T).
    Pitfall: marking a time-limit truncation as terminal throws V(s_T) away
    and teaches the critic that the episode ends there.
    """
    ### BEGIN SOLUTION
    T = rewards.shape[0]
    r = rewards.to(torch.float64)
    v = values.to(torch.float64)
    next_values = v[1:].clone()
    if terminated:
        next_values[-1] = 0.0
    deltas = r + gamma * next_values - v[:-1]
    adv = torch.empty(T, dtype=torch.float64, device=rewards.device)
    running = torch.zeros((), dtype=torch.float64, device=rewards.device)
    for t in reversed(range(T)):
        running = deltas[t] + gamma * lam * running
        adv[t] = running
    return adv.to(rewards.dtype)
    ### END SOLUTION
