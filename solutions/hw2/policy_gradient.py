"""Homework 2, part 2: policy-gradient estimators.

Notation (lecture 5):
  τ = (s_0, a_0, r_0, …, s_{T-1}, a_{T-1}, r_{T-1})   one trajectory
  ∇ log π_t = ∇_θ log π_θ(a_t|s_t)                   the score of step t
  J_γ(θ) = E_{τ~π_θ}[ Σ_t γ^t r_t ]                   the objective

Every estimator below returns ONE TENSOR PER PARAMETER, in the order of
``policy.parameters()`` and with the same shapes: the gradient estimate ĝ, the
thing you would put into ``p.grad`` before an optimizer step (ascent: J goes up
along +ĝ).

Rules for every function in this file:
  * the result must not depend on earlier calls. If you use ``.backward()``,
    ``.grad`` accumulates: zero it first (or use ``torch.autograd.grad``) and
    return copies, not the ``.grad`` tensors themselves;
  * inputs (trajectories, the policy's parameters) are never modified;
  * returns, reward-to-go, baselines and importance weights are constants in
    the surrogate: only log π_θ is differentiated (``.detach()`` them).

The policy is any module from ``rlkit.policies``: ``policy(observations)``
returns a distribution, and ``.log_prob(actions)`` has shape [T].
"""

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hw2.returns import discounted_return, discounted_reward_to_go
from rlkit.trajectory import Trajectory


# ============================================================================ on-policy
def policy_gradient(policy, trajectories: Sequence[Trajectory], gamma: float, reward_to_go: bool = True,
                    baseline: Callable[[Tensor], Tensor] | None = None) -> list[Tensor]:
    """The REINFORCE estimate of ∇_θ J from N trajectories sampled with π_θ.

        ĝ = (1/N) Σ_{i=1}^{N} Σ_{t=0}^{T_i-1} ∇ log π_θ(a_t|s_t) · (Q̂_t − b(s_t))

    trajectories: N trajectories (lengths T_i may differ), each with
                  observations [T, obs_dim], actions [T] or [T, act_dim], rewards [T].
    Q̂_t:          reward_to_go=True  → discounted_reward_to_go(rewards, γ)[t]
                                        = Σ_{t'≥t} γ^{t'-t} r_{t'}  (causality)
                  reward_to_go=False → discounted_return(rewards, γ)[t]
                                        = Σ_{t'} γ^{t'} r_{t'}      (the same for every t)
    b(s_t):       baseline(observations)[t], a tensor [T]; 0 when baseline is None.
                  It depends on the state only, never on the action, so it
                  leaves E[ĝ] unchanged and (if chosen well) lowers the variance.
    returns:      [ĝ_p for p in policy.parameters()], each of p's shape.

    The mean is over TRAJECTORIES (divide by N), not over time steps.
    The usual trick: build the surrogate L(θ) = (1/N) Σ_i Σ_t log π_θ(a_t|s_t) · A_t
    with A_t = Q̂_t − b(s_t) held constant, and differentiate it once.

    Note (Nota & Thomas 2020): with γ < 1, the γ^{t'-t} reward-to-go drops the
    factor γ^t, so E[ĝ] is not exactly ∇J_γ; it is at γ = 1, and the
    full-return estimator is unbiased for ∇J_γ at any γ.
    """
    ### BEGIN SOLUTION
    params = list(policy.parameters())
    surrogate = 0.0
    for traj in trajectories:
        logp = policy(traj.observations).log_prob(traj.actions)  # [T]
        if reward_to_go:
            q = discounted_reward_to_go(traj.rewards, gamma)
        else:
            q = discounted_return(traj.rewards, gamma)
        adv = q.to(logp.dtype)
        if baseline is not None:
            adv = adv - baseline(traj.observations).to(logp.dtype)
        surrogate = surrogate + (logp * adv.detach()).sum()
    surrogate = surrogate / len(trajectories)
    grads = torch.autograd.grad(surrogate, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    ### END SOLUTION


def optimal_baseline(score_sums: Tensor, returns: Tensor) -> Tensor:
    """The variance-minimising constant baseline, one per parameter coordinate.

    score_sums: [N, D]  g_i = Σ_t ∇_θ log π(a_t|s_t) of trajectory i, flattened
    returns:    [N]     R_i, the return of trajectory i
    result:     [D]     b*_d = Σ_i g_id² R_i / Σ_i g_id²,
                        and b*_d = 0 where Σ_i g_id² = 0 (no information).

    Why: Var_d(b) = Var_d(0) − 2b E[g_d² R] + b² E[g_d²] (the score has mean 0),
    a parabola in b minimised at b* = E[g_d² R] / E[g_d²]. This is NOT E[R]:
    the mean return is only a heuristic, and can even increase the variance.
    Pitfall: 0/0 for a coordinate whose score is always 0 must give 0, not nan.
    """
    ### BEGIN SOLUTION
    g2 = score_sums ** 2
    num = (g2 * returns.to(score_sums.dtype)[:, None]).sum(0)
    den = g2.sum(0)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, num / safe, torch.zeros_like(num))
    ### END SOLUTION


# ============================================================================ off-policy
def importance_weights(target_log_probs: Tensor, behavior_log_probs: Tensor, per_decision: bool = False) -> Tensor:
    """Importance weights ρ_t = π(a_t|s_t) / μ(a_t|s_t) of one trajectory, multiplied.

    target_log_probs:   [T]  log π(a_t|s_t), the policy being evaluated/improved
    behavior_log_probs: [T]  log μ(a_t|s_t), the policy that collected the data
    returns:  per_decision=False → 0-dim tensor  w = Π_{t=0}^{T-1} ρ_t
              per_decision=True  → [T]           w_t = Π_{t'=0}^{t} ρ_{t'}  (cumulative)

    Stability: work in log space, w = exp(Σ (log π − log μ)). Multiplying
    probabilities and dividing underflows to 0/0 = nan on long trajectories
    (e^{-3} per step, T = 2000).
    The result must stay differentiable with respect to ``target_log_probs``
    (no ``.detach()``, no numpy inside).
    """
    ### BEGIN SOLUTION
    log_ratio = target_log_probs - behavior_log_probs.to(target_log_probs.dtype)
    if per_decision:
        return torch.exp(torch.cumsum(log_ratio, dim=0))
    return torch.exp(log_ratio.sum())
    ### END SOLUTION


def off_policy_policy_gradient(policy, trajectories: Sequence[Trajectory], gamma: float,
                               per_decision: bool = False) -> list[Tensor]:
    """∇_θ J_γ estimated from trajectories collected by another policy μ.

    Each trajectory carries ``behavior_log_probs`` [T] = log μ(a_t|s_t).
    With w_t = Π_{t'≤t} π_θ(a_{t'}|s_{t'}) / μ(a_{t'}|s_{t'})  (see importance_weights):

    per_decision=False (trajectory-level importance sampling):
        ĝ = (1/N) Σ_i  w_{T-1} · Σ_t ∇ log π_θ(a_t|s_t) · Σ_{t'} γ^{t'} r_{t'}
    per_decision=True (Precup, Sutton & Singh 2000): reward r_{t'} only needs
    the weights of the actions before it:
        ĝ = (1/N) Σ_i  Σ_t ∇ log π_θ(a_t|s_t) · Σ_{t'≥t} γ^{t'} r_{t'} w_{t'}

    Both are unbiased for ∇J_γ(θ) with J_γ = E_π[Σ_t γ^t r_t] (note γ^{t'},
    discounted from the start). Returns one tensor per ``policy.parameters()``.

    Where this comes from: J_γ = E_μ[w(θ) · G], so ∇J_γ = E_μ[w · ∇ log π_θ(τ) · G].
    Either differentiate the weighted return w(θ)·G itself, or hold w constant and
    differentiate log π: but not both (that counts the score twice).
    """
    ### BEGIN SOLUTION
    params = list(policy.parameters())
    surrogate = 0.0
    for traj in trajectories:
        logp = policy(traj.observations).log_prob(traj.actions)  # [T]
        T = logp.shape[0]
        w = importance_weights(logp.detach(), traj.behavior_log_probs, per_decision)
        discounts = gamma ** torch.arange(T, dtype=logp.dtype, device=logp.device)
        disc_rewards = discounts * traj.rewards.to(logp.dtype)  # γ^{t'} r_{t'}
        if per_decision:
            coef = discounted_reward_to_go(disc_rewards * w, 1.0)  # Σ_{t'≥t} γ^{t'} r_{t'} w_{t'}
        else:
            coef = (w * disc_rewards.sum()).expand(T)
        surrogate = surrogate + (logp * coef.detach()).sum()
    surrogate = surrogate / len(trajectories)
    grads = torch.autograd.grad(surrogate, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    ### END SOLUTION
