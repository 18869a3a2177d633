"""The exact oracle for policy-gradient estimators on small tabular MDPs.

A finite-horizon MDP with S states, A actions and horizon H has (S·A)^H
trajectories. For the small MDPs drawn here (at most ``MAX_TRAJECTORIES``),
every trajectory is enumerated with its probability, so the expectation and the
variance of any estimator that averages over trajectories are exact sums:

    E[ĝ] = Σ_τ p(τ) ĝ({τ}),    Var[ĝ] = Σ_τ p(τ) (ĝ({τ}) − E[ĝ])²

and J_γ(θ) is computed by dynamic programming in float64, differentiated with
autograd. No sampling noise, so no flaky verdicts.

Also here:
  * picklable baselines (``TabularBaseline``, ``QuadraticBaseline``) that the
    grader passes to student code in the sandboxed child;
  * ``GaussianBandit``, a contextual bandit for the linear-Gaussian policy,
    whose per-step estimator has an exact mean and variance (Gauss–Hermite
    quadrature), used by the one Monte Carlo check.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from rlkit.trajectory import Trajectory

F64 = torch.float64
MAX_TRAJECTORIES = 256


# =========================================================================== the MDP
@dataclass(frozen=True, repr=False)
class TabularMDP:
    """A finite-horizon tabular MDP, a discount and the policies' logits.

    start:       [S]        p(s_0)
    transitions: [S][A][S]  P(s'|s, a)
    rewards:     [S][A]     r(s, a), deterministic
    horizon:     H          every trajectory has exactly H steps
    gamma:       γ
    logits:      [S][A]     θ of the target policy π_θ(a|s) = softmax(θ[s])_a
    behavior_logits: [S][A] or None, of the behavior policy μ (off-policy)
    """

    start: tuple
    transitions: tuple
    rewards: tuple
    horizon: int
    gamma: float
    logits: tuple
    behavior_logits: tuple | None = None

    @property
    def n_states(self) -> int:
        return len(self.start)

    @property
    def n_actions(self) -> int:
        return len(self.rewards[0])

    @property
    def n_trajectories(self) -> int:
        return (self.n_states * self.n_actions) ** self.horizon

    def tensors(self):
        """(start [S], P [S, A, S], r [S, A], θ [S, A]) in float64."""
        return (torch.tensor(self.start, dtype=F64), torch.tensor(self.transitions, dtype=F64),
                torch.tensor(self.rewards, dtype=F64), torch.tensor(self.logits, dtype=F64))

    def theta(self) -> Tensor:
        return torch.tensor(self.logits, dtype=F64)

    def mu_logits(self) -> Tensor:
        return torch.tensor(self.behavior_logits if self.behavior_logits is not None else self.logits, dtype=F64)

    def __repr__(self) -> str:
        pi = torch.softmax(self.theta(), -1)
        parts = [f"states={self.n_states}", f"actions={self.n_actions}", f"horizon={self.horizon}",
                 f"gamma={self.gamma:.4g}", f"start={_r(self.start)}", f"rewards r(s,a)={_r(self.rewards)}",
                 f"pi(a|s)={_r(pi.tolist())}"]
        if self.behavior_logits is not None:
            parts.append(f"mu(a|s)={_r(torch.softmax(self.mu_logits(), -1).tolist())}")
        if self.horizon > 1:
            parts.append(f"P(s'|s,a)={_r(self.transitions)}")
        return "TabularMDP(" + ", ".join(parts) + ")"

    def _repr_pretty_(self, printer, cycle) -> None:
        """Hypothesis prints falsifying examples with its own pretty printer: use the short form."""
        printer.text(repr(self))


def _r(x) -> str:
    """Nested lists of floats, 3 significant digits."""
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_r(v) for v in x) + "]"
    return f"{float(x):.3g}"


def bandit(pi: tuple[float, ...], rewards: tuple[float, ...], gamma: float = 1.0) -> TabularMDP:
    """A one-state, one-step MDP (a bandit) with the given policy probabilities."""
    logits = tuple(math.log(p) for p in pi)
    return TabularMDP(start=(1.0,), transitions=(tuple((1.0,) for _ in pi),), rewards=(tuple(rewards),),
                      horizon=1, gamma=gamma, logits=(logits,))


def max_horizon(n_states: int, n_actions: int, limit: int = MAX_TRAJECTORIES) -> int:
    """The longest horizon H with (S·A)^H ≤ limit."""
    h = 1
    while (n_states * n_actions) ** (h + 1) <= limit:
        h += 1
    return h


# =========================================================================== exact J_γ and ∇J_γ
def objective(mdp: TabularMDP, logits: Tensor) -> Tensor:
    """J_γ(θ) = E[Σ_{t<H} γ^t r_t] by dynamic programming over state distributions (float64)."""
    start, P, r, _ = mdp.tensors()
    pi = torch.softmax(logits, dim=-1)  # [S, A]
    d = start
    total = torch.zeros((), dtype=F64)
    for t in range(mdp.horizon):
        sa = d[:, None] * pi  # [S, A] p(s_t, a_t)
        total = total + mdp.gamma ** t * (sa * r).sum()
        d = torch.einsum("sa,sax->x", sa, P)
    return total


def exact_gradient(mdp: TabularMDP) -> Tensor:
    """∇_θ J_γ(θ) [S, A], exact in float64 (autograd through ``objective``)."""
    theta = mdp.theta().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(mdp, theta), theta)
    return grad


def objective_by_enumeration(mdp: TabularMDP, logits: Tensor) -> Tensor:
    """J_γ(θ) = Σ_τ p_θ(τ) Σ_t γ^t r_t, summing over every trajectory (for tests)."""
    e = enumerate_trajectories(mdp)
    start, P, _, _ = mdp.tensors()
    logpi = torch.log_softmax(logits, -1)
    logp = torch.log(start[e.states[:, 0]]) + logpi[e.states, e.actions].sum(1)
    if mdp.horizon > 1:
        logp = logp + torch.log(P[e.states[:, :-1], e.actions[:, :-1], e.states[:, 1:]]).sum(1)
    return (logp.exp() * e.returns).sum()


def value_by_inverse(mdp: TabularMDP) -> Tensor:
    """V = (I − γ P_π)⁻¹ r_π [S]: the infinite-horizon value of π (γ < 1), for tests."""
    _, P, r, theta = mdp.tensors()
    pi = torch.softmax(theta, -1)
    P_pi = torch.einsum("sa,sax->sx", pi, P)
    r_pi = (pi * r).sum(-1)
    return torch.linalg.solve(torch.eye(mdp.n_states, dtype=F64) - mdp.gamma * P_pi, r_pi)


# =========================================================================== enumeration
@dataclass
class Enumeration:
    """Every trajectory of an MDP, K = (S·A)^H of them.

    states, actions: [K, H] long
    rewards:         [K, H] float64
    prob:            [K]    p(τ) under the sampling policy (π, or μ when behavior=True)
    logp_pi, logp_mu:[K, H] log π(a_t|s_t), log μ(a_t|s_t)
    scores:          [K, H, S, A]  ∇_θ log π_θ(a_t|s_t) (closed form for the softmax)
    """

    mdp: TabularMDP
    states: Tensor
    actions: Tensor
    rewards: Tensor
    prob: Tensor
    logp_pi: Tensor
    logp_mu: Tensor
    scores: Tensor

    @property
    def discounts(self) -> Tensor:
        return self.mdp.gamma ** torch.arange(self.mdp.horizon, dtype=F64)

    @property
    def returns(self) -> Tensor:
        """[K] G(τ) = Σ_t γ^t r_t."""
        return (self.rewards * self.discounts).sum(1)

    def reward_to_go(self) -> Tensor:
        """[K, H] Q̂_t = Σ_{t'≥t} γ^{t'-t} r_{t'} (the discount restarts at t)."""
        q = torch.zeros_like(self.rewards)
        running = torch.zeros(self.rewards.shape[0], dtype=F64)
        for t in reversed(range(self.mdp.horizon)):
            running = self.rewards[:, t] + self.mdp.gamma * running
            q[:, t] = running
        return q

    def score_sums(self) -> Tensor:
        """[K, S, A] g(τ) = Σ_t ∇ log π(a_t|s_t)."""
        return self.scores.sum(1)

    def baseline_values(self, values: Tensor) -> Tensor:
        """[K, H] b(s_t) for a tabular baseline ``values`` [S]."""
        return values.to(F64)[self.states]

    # -- per-trajectory values of the estimators, by their definitions ([K, S, A])
    def estimate(self, reward_to_go: bool, baseline: Tensor | None = None) -> Tensor:
        """ĝ({τ}) = Σ_t ∇ log π_t (Q̂_t − b(s_t)), with Q̂ the reward-to-go or the full return."""
        q = self.reward_to_go() if reward_to_go else self.returns[:, None].expand(-1, self.mdp.horizon)
        if baseline is not None:
            q = q - self.baseline_values(baseline)
        return torch.einsum("kh,khsa->ksa", q, self.scores)

    def baseline_term(self, baseline: Tensor) -> Tensor:
        """[K, S, A] Σ_t ∇ log π_t b(s_t): what subtracting the baseline removes."""
        return torch.einsum("kh,khsa->ksa", self.baseline_values(baseline), self.scores)

    def weights(self, per_decision: bool) -> Tensor:
        """Importance weights in float64 log space: [K, H] cumulative w_t, or [K] w_{H-1}."""
        log_w = torch.cumsum(self.logp_pi - self.logp_mu, 1)
        return log_w.exp() if per_decision else log_w[:, -1].exp()

    def off_policy_estimate(self, per_decision: bool) -> Tensor:
        """Trajectory-level w · Σ_t ∇ log π_t · G, or per-decision Σ_t ∇ log π_t Σ_{t'≥t} γ^{t'} r_{t'} w_{t'}."""
        if per_decision:
            terms = self.rewards * self.discounts * self.weights(True)  # [K, H]
            coef = torch.flip(torch.cumsum(torch.flip(terms, [1]), 1), [1])
        else:
            coef = (self.weights(False) * self.returns)[:, None].expand(-1, self.mdp.horizon)
        return torch.einsum("kh,khsa->ksa", coef, self.scores)

    def off_policy_magnitudes(self, per_decision: bool) -> Tensor:
        """[K, S, A] ``off_policy_estimate`` with every factor made non-negative: |r|, w, and for the score
        1[a = a_t] − π(a|s_t) the magnitudes it is computed from, 1[a = a_t] + π(a|s_t), times 1 + 2·max|θ| (π is
        a softmax of θ rounded to float32, whose rounding moves π by up to π·2·max|θ|·u). The sum of the
        magnitudes of the terms that make each value, which bounds its rounding error."""
        S, A = self.mdp.n_states, self.mdp.n_actions
        theta = self.mdp.theta().to(F64)
        pi = torch.softmax(theta, -1)
        onehot_s = torch.nn.functional.one_hot(self.states, S).to(F64)
        onehot_a = torch.nn.functional.one_hot(self.actions, A).to(F64)
        scores = onehot_s[..., :, None] * (onehot_a + pi[self.states])[..., None, :] * (1 + 2 * float(theta.abs().max()))
        terms = self.rewards.abs() * self.discounts
        if per_decision:
            coef = torch.flip(torch.cumsum(torch.flip(terms * self.weights(True), [1]), 1), [1])
        else:
            coef = (self.weights(False) * terms.sum(1))[:, None].expand(-1, self.mdp.horizon)
        return torch.einsum("kh,khsa->ksa", coef, scores)

    # -- the sandbox's inputs
    def trajectories(self, dtype: torch.dtype = torch.float32, behavior: bool = False) -> list[Trajectory]:
        """One ``Trajectory`` per enumerated τ: one-hot observations [H, S], actions [H], rewards [H]."""
        S = self.mdp.n_states
        obs = torch.nn.functional.one_hot(self.states, S).to(dtype)
        out = []
        for k in range(self.states.shape[0]):
            # clone(): a view would pickle the whole [K, …] storage with every trajectory
            out.append(Trajectory(observations=obs[k].clone(), actions=self.actions[k].clone(),
                                  rewards=self.rewards[k].to(dtype).clone(), terminated=True,
                                  behavior_log_probs=self.logp_mu[k].to(dtype).clone() if behavior else None))
        return out


def enumerate_trajectories(mdp: TabularMDP, behavior: bool = False) -> Enumeration:
    """All (S·A)^H trajectories; ``prob`` is p(τ) under μ when ``behavior`` else under π."""
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    index = torch.tensor(list(itertools.product(range(S * A), repeat=H)), dtype=torch.long).reshape(-1, H)
    return paths(mdp, index // A, index % A, behavior)


def paths(mdp: TabularMDP, states: Tensor, actions: Tensor, behavior: bool = False) -> Enumeration:
    """The given trajectories ([K, H] states and actions, H = mdp.horizon) with the same oracle as an
    enumeration: per-trajectory estimators by their definitions, for trajectories chosen rather than all of
    them (a long one, a batch concatenated). ``prob`` is each one's probability, as in an enumeration."""
    start, P, r, theta = mdp.tensors()
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    logpi = torch.log_softmax(theta, -1)
    logmu = torch.log_softmax(mdp.mu_logits(), -1)
    logp_pi, logp_mu = logpi[states, actions], logmu[states, actions]
    log_dyn = torch.log(start[states[:, 0]])
    if H > 1:
        log_dyn = log_dyn + torch.log(P[states[:, :-1], actions[:, :-1], states[:, 1:]]).sum(1)
    prob = torch.exp(log_dyn + (logp_mu if behavior else logp_pi).sum(1))
    pi = logpi.exp()
    onehot_s = torch.nn.functional.one_hot(states, S).to(F64)  # [K, H, S]
    onehot_a = torch.nn.functional.one_hot(actions, A).to(F64)  # [K, H, A]
    scores = onehot_s[..., :, None] * (onehot_a - pi[states])[..., None, :]  # [K, H, S, A]
    return Enumeration(mdp, states, actions, r[states, actions], prob, logp_pi, logp_mu, scores)


def expectation(prob: Tensor, values: Tensor) -> Tensor:
    """Σ_τ p(τ) v(τ), over the first dimension."""
    p = prob.to(F64).reshape(-1, *([1] * (values.dim() - 1)))
    return (p * values.to(F64)).sum(0)


def variance(prob: Tensor, values: Tensor) -> Tensor:
    """Σ_τ p(τ) (v(τ) − E[v])², over the first dimension."""
    mean = expectation(prob, values)
    return expectation(prob, (values.to(F64) - mean) ** 2)


def variance_with_constant_baseline(e: Enumeration, b: Tensor) -> Tensor:
    """[S, A] exact Var_d of g_d(τ)·(G(τ) − b_d), one constant b_d per coordinate."""
    g = e.score_sums()  # [K, S, A]
    return variance(e.prob, g * (e.returns[:, None, None] - b.to(F64)))


# =========================================================================== baselines for the sandbox
class TabularBaseline:
    """b(s) = values[s] for one-hot observations: ``baseline(observations)`` → [T]."""

    def __init__(self, values):
        self.values = torch.as_tensor(values, dtype=F64)

    def __call__(self, observations: Tensor) -> Tensor:
        v = self.values.to(device=observations.device, dtype=observations.dtype)
        return observations @ v

    def __repr__(self) -> str:
        return f"TabularBaseline({_r(self.values.tolist())})"


class SharedTrunkBaseline:
    """b(s) = values[s] + scale · Σ_a θ[s, a]: a critic that shares the policy's parameters θ (as an
    actor-critic with one trunk does). Its values are a TabularBaseline's (``effective_values``), but it is
    not a constant of θ: an estimator that does not treat Q̂ − b as a constant (no ``.detach()``)
    differentiates it too and moves. The policy object is the one passed in the same call."""

    def __init__(self, policy, values, scale: float = 0.5):
        self.policy, self.values, self.scale = policy, torch.as_tensor(values, dtype=F64), scale

    def __call__(self, observations: Tensor) -> Tensor:
        logits = self.policy.logits
        o = observations.to(logits.dtype)
        return o @ self.values.to(device=o.device, dtype=o.dtype) + self.scale * (o @ logits).sum(-1)

    def effective_values(self) -> Tensor:
        return self.values + self.scale * self.policy.logits.detach().to(F64).sum(-1)

    def __repr__(self) -> str:
        return f"SharedTrunkBaseline(values={_r(self.values.tolist())} + {self.scale:g}·Σ_a θ[s, a])"


class QuadraticBaseline:
    """A perfect critic for ``GaussianBandit``: b(o) = E_{a~π}[r(o, a)] = −‖μ(o) − M o‖² − Σ_j σ_j²."""

    def __init__(self, weight: Tensor, bias: Tensor, log_std: Tensor, target: Tensor):
        self.weight, self.bias, self.log_std, self.target = (x.detach().to(F64) for x in (weight, bias, log_std, target))

    def __call__(self, observations: Tensor) -> Tensor:
        o = observations.to(F64)
        w, c, ls, m = (x.to(observations.device) for x in (self.weight, self.bias, self.log_std, self.target))
        d = o @ (w - m).T + c
        return (-(d ** 2).sum(-1) - (2 * ls).exp().sum()).to(observations.dtype)


# =========================================================================== the continuous check
@dataclass
class GaussianBandit:
    """A contextual bandit for the linear-Gaussian policy π(a|o) = N(W o + c, diag(σ²)).

    Every step, an observation o is drawn uniformly from ``contexts`` [C, obs_dim],
    independently of the past; the reward is r(o, a) = −‖a − M o‖² (``target`` M
    [act_dim, obs_dim]). Actions never influence later observations or rewards,
    so with Q̂_t = r_t − b(o_t) (reward-to-go at γ = 0) the estimator is unbiased
    for ∇_θ J with J = E[Σ_{t<T} r_t].
    """

    contexts: Tensor
    target: Tensor
    weight: Tensor
    bias: Tensor
    log_std: Tensor

    def parameter_shapes(self) -> list[torch.Size]:
        return [self.weight.shape, self.bias.shape, self.log_std.shape]

    def per_step_moments(self, nodes: int = 8) -> tuple[Tensor, Tensor]:
        """Exact mean and variance [D] of X = ∇_θ log π(a|o) · (r(o, a) − b(o)), one step.

        X is a polynomial of degree ≤ 4 in the Gaussian noise z (a = μ + σ z), so
        Gauss–Hermite quadrature with ``nodes`` ≥ 5 points per dimension is exact
        for E[X] and E[X²]; the contexts are averaged exactly.
        """
        import numpy as np

        x, w = np.polynomial.hermite_e.hermegauss(nodes)
        x, w = torch.tensor(x, dtype=F64), torch.tensor(w / w.sum(), dtype=F64)
        act_dim = self.weight.shape[0]
        grids = torch.meshgrid(*([x] * act_dim), indexing="ij")
        z = torch.stack([g.reshape(-1) for g in grids], -1)  # [Q, act_dim]
        wz = torch.ones(z.shape[0], dtype=F64)
        for j, g in enumerate(torch.meshgrid(*([w] * act_dim), indexing="ij")):
            wz = wz * g.reshape(-1)
        W, c, ls, M = (t.to(F64) for t in (self.weight, self.bias, self.log_std, self.target))
        sigma = ls.exp()
        first, second = 0.0, 0.0
        for o in self.contexts.to(F64):
            mu = W @ o + c
            d = mu - M @ o
            a = mu + sigma * z  # [Q, act_dim]
            adv = -((a - M @ o) ** 2).sum(-1) + (d ** 2).sum() + (sigma ** 2).sum()  # r − b
            dmu = z / sigma  # ∂ log π / ∂ μ  [Q, act_dim]
            score = torch.cat([(dmu[:, :, None] * o[None, None, :]).reshape(z.shape[0], -1), dmu, z ** 2 - 1], -1)
            X = score * adv[:, None]  # [Q, D]
            first = first + (wz[:, None] * X).sum(0)
            second = second + (wz[:, None] * X ** 2).sum(0)
        n = self.contexts.shape[0]
        mean, meansq = first / n, second / n
        return mean, meansq - mean ** 2

    def exact_gradient(self) -> Tensor:
        """∇_θ E[r] per step [D], analytic (E[r] = −‖μ − M o‖² − Σσ²), by autograd."""
        W, c, ls = (t.to(F64).clone().requires_grad_(True) for t in (self.weight, self.bias, self.log_std))
        M = self.target.to(F64)
        o = self.contexts.to(F64)
        mu = o @ W.T + c
        J = (-((mu - o @ M.T) ** 2).sum(-1) - (2 * ls).exp().sum()).mean()
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(J, (W, c, ls))])

    def sample(self, n_trajectories: int, length: int, generator: torch.Generator, device: str,
               dtype: torch.dtype = torch.float32) -> list[Trajectory]:
        """Trajectories sampled with π on ``device`` (explicit generator), returned on the CPU."""
        C = self.contexts.shape[0]
        W, c, ls, M, ctx = (t.to(device=device, dtype=dtype) for t in
                            (self.weight, self.bias, self.log_std, self.target, self.contexts))
        idx = torch.randint(C, (n_trajectories, length), generator=generator, device=device)
        obs = ctx[idx]  # [N, T, obs_dim]
        mu = obs @ W.T + c
        noise = torch.randn(mu.shape, generator=generator, device=device, dtype=dtype)
        actions = mu + ls.exp() * noise
        rewards = -((actions - obs @ M.T) ** 2).sum(-1)
        obs, actions, rewards = obs.cpu(), actions.cpu(), rewards.cpu()
        # clone(): a view would pickle the whole batch's storage with every trajectory
        return [Trajectory(observations=obs[i].clone(), actions=actions[i].clone(), rewards=rewards[i].clone(),
                           terminated=False)
                for i in range(n_trajectories)]


def median_of_means_groups(n_coordinates: int, delta: float) -> int:
    """The smallest odd number k of groups so that the median of k group means misses by more than
    2 standard deviations of a group mean with probability ≤ delta, for every coordinate at once.

    Chebyshev: one group misses with probability ≤ 1/4, independently of the others. The median misses
    only if at least (k+1)/2 groups miss, so its probability is at most the binomial tail
    P(Bin(k, 1/4) ≥ (k+1)/2), computed exactly (Hoeffding's exp(−k/8) would ask for a third more groups).
    A union bound over the coordinates: n_coordinates · tail ≤ delta.
    """
    k = 1
    while median_of_means_failure_bound(n_coordinates, k) > delta:
        k += 2
    return k


def median_of_means_failure_bound(n_coordinates: int, k: int) -> float:
    """n_coordinates · P(Bin(k, 1/4) ≥ (k+1)/2): the probability that the median of k group means misses at any
    coordinate (see ``median_of_means_groups``)."""
    need = (k + 1) // 2
    return n_coordinates * sum(math.comb(k, i) * 0.25 ** i * 0.75 ** (k - i) for i in range(need, k + 1))


# =========================================================================== Hypothesis strategies
def _strategies():
    from hypothesis import strategies as st

    return st


def tabular_mdps(max_trajectories: int = MAX_TRAJECTORIES, off_policy: bool = False, gamma=None,
                 min_states: int = 2, max_states: int = 4, max_actions: int = 3):
    """Small MDPs: 2–4 states, 2–3 actions, horizon ≥ 1 with (S·A)^H ≤ max_trajectories,
    transition probabilities ≥ 1/(5S − 4) (bounded away from 0), rewards in
    [−2, 2] (quarters), a start distribution (zeros allowed), γ ∈ [0, 1], softmax
    logits in [−3, 3] (halves), and for off-policy a behavior policy's logits."""
    st = _strategies()
    from autograder.strategies import GAMMA

    gamma = GAMMA if gamma is None else gamma

    @st.composite
    def build(draw):
        S = draw(st.integers(min_states, max_states))
        A = draw(st.integers(2, max_actions))
        H = draw(st.integers(1, max_horizon(S, A, max_trajectories)))
        g = draw(gamma)
        start_w = draw(st.lists(st.integers(0, 4), min_size=S, max_size=S).filter(lambda v: sum(v) > 0))
        start = tuple(v / sum(start_w) for v in start_w)
        trans = []
        for _ in range(S):
            row = []
            for _ in range(A):
                w = draw(st.lists(st.integers(1, 5), min_size=S, max_size=S))
                row.append(tuple(v / sum(w) for v in w))
            trans.append(tuple(row))
        half = st.integers(-6, 6).map(lambda v: v / 2)
        quarter = st.integers(-8, 8).map(lambda v: v / 4)
        rewards = tuple(tuple(draw(st.lists(quarter, min_size=A, max_size=A))) for _ in range(S))
        logits = tuple(tuple(draw(st.lists(half, min_size=A, max_size=A))) for _ in range(S))
        behavior = None
        if off_policy:
            behavior = tuple(tuple(draw(st.lists(half, min_size=A, max_size=A))) for _ in range(S))
        return TabularMDP(start, tuple(trans), rewards, H, g, logits, behavior)

    return build()


def small_mdp(horizon: int = 3, gamma: float = 0.5, off_policy: bool = False) -> TabularMDP:
    """A fixed 2-state, 2-action MDP for explicit examples (64 trajectories at H = 3)."""
    return TabularMDP(start=(0.75, 0.25), transitions=(((0.8, 0.2), (0.3, 0.7)), ((0.5, 0.5), (0.1, 0.9))),
                      rewards=((1.0, 0.0), (-0.5, 2.0)), horizon=horizon, gamma=gamma,
                      logits=((0.5, -0.5), (0.0, 1.0)),
                      behavior_logits=((0.0, 0.0), (1.0, -1.0)) if off_policy else None)


__all__ = ["TabularMDP", "Enumeration", "enumerate_trajectories", "exact_gradient", "objective", "expectation",
           "variance", "paths", "TabularBaseline", "QuadraticBaseline", "GaussianBandit", "tabular_mdps", "bandit",
           "small_mdp", "median_of_means_groups"]
