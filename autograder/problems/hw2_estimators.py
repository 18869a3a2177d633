"""hw2 part 2: policy-gradient estimators, checked exactly.

Public problems use the exact oracle of ``autograder.tabular``: every
trajectory of a small tabular MDP is enumerated, the student's estimator is
called on each one (one sandbox round trip per Hypothesis example), and the
probability-weighted sum is the estimator's exact expectation (and variance),
compared with ∇J_γ computed by dynamic programming in float64. The one check
with continuous actions is Monte Carlo, with a stated false-failure bound.
Hidden problems compare with the reference solution.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from hypothesis import example, note
from hypothesis import strategies as st

from autograder.compare import (Mismatch, assert_close, describe, expect_tensor, fmt, nan_as_inf, recognise,
                                sum_tolerance, within)
from autograder.gradients import check_slope, grad_list
from autograder.problem import GRADER_SETTINGS, grader_settings, problem
from autograder.properties import given
from autograder.shrinking import shrink_budget
from autograder.strategies import GAMMA
from autograder.tabular import (F64, GaussianBandit, QuadraticBaseline, SharedTrunkBaseline, TabularBaseline,
                                TabularMDP, bandit, enumerate_trajectories, exact_gradient, expectation, median_of_means_failure_bound,
                                median_of_means_groups, objective, paths, small_mdp, tabular_mdps, variance,
                                variance_with_constant_baseline)
from rlkit.policies import CategoricalMLPPolicy, LinearGaussianPolicy, TabularSoftmaxPolicy
from rlkit.trajectory import Trajectory

MODULE = "hw2.policy_gradient"
EPS32 = torch.finfo(torch.float32).eps
COSTLY = grader_settings(max_examples=8)  # each example: one round trip of up to 128 calls (or 2 × 64)
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "averaged-over-time-steps": "the policy gradient averages over time steps instead of over trajectories",
    "reward-to-go-ignored": "with reward_to_go=True the estimator still weights every step by the full return",
    "grad-accumulates": "two identical calls give different gradients: .grad accumulates across backward() calls",
    "baseline-added": "the baseline is added to Q̂_t instead of subtracted",
    "gradient-through-baseline": "the gradient flows through the baseline (it must be a constant in the surrogate)",
    "batch-not-mean-of-trajectories": "the batch estimate is not the mean over trajectories (divided by the number "
                                      "of steps, or a trajectory left out)",
    "gradient-is-zero": "the estimator's expectation is 0: the return or the gradient is detached or zeroed",
    "epsilon-in-denominator": "the optimal baseline has an ε in its denominator (or a clamp), which moves b* where "
                              "the scores are small",
    "nan-where-score-is-zero": "the optimal baseline is nan where Σ g² = 0 (0/0 computed, then masked)",
    "not-variance-minimising": "the baseline returned does not minimise the estimator's variance",
    "weights-underflow": "importance weights computed as a product of probabilities underflow to 0/0 on long "
                         "trajectories",
    "batch-as-one-trajectory": "the off-policy batch is treated as one long trajectory (one weight for all)",
    "summed-over-trajectories": "the off-policy estimate sums the trajectories' estimates instead of averaging",
    "one-trajectory-only": "the off-policy estimate uses one trajectory of the batch alone",
}

PG_HINT = ("ĝ = (1/N) Σ_i Σ_t ∇ log π(a_t|s_t) · (Q̂_t − b(s_t)): differentiate the surrogate "
           "Σ_t log π(a_t|s_t)·Q̂_t with Q̂ held constant, average over trajectories (not time steps), and return "
           "+∇ (the ascent direction), one tensor per policy.parameters()")
RTG_HINT = ("with reward_to_go=True, Q̂_t = discounted_reward_to_go(rewards, γ)[t] = Σ_{t'≥t} γ^{t'-t} r_{t'} "
            "(causality: an action cannot change earlier rewards); with reward_to_go=False every step gets the "
            "full return Σ_t γ^t r_t")
BASELINE_HINT = ("subtract the baseline: weight ∇ log π(a_t|s_t) by Q̂_t − b(s_t) with b(s_t) = baseline(observations)[t]"
                 "; a baseline that depends on the state only leaves E[ĝ] unchanged, because E_a[∇ log π(a|s)] = 0")
OPT_B_HINT = ("b*_d = Σ_i g_id² R_i / Σ_i g_id² (the score squared, per coordinate d), and 0 where Σ_i g_id² = 0; "
              "it minimises the parabola Var_d(b) = Var_d(0) − 2b E[g_d² R] + b² E[g_d²]")
IW_HINT = ("w = Π_t π(a_t|s_t)/μ(a_t|s_t) = exp(Σ_t (log π − log μ)), computed in log space; per_decision=True "
           "returns the running products w_t = exp(cumsum(log π − log μ))[t]; keep it differentiable in log π")
OFF_HINT = ("trajectory-level: w · Σ_t ∇ log π_t · Σ_{t'} γ^{t'} r_{t'}; per-decision: Σ_t ∇ log π_t · "
            "Σ_{t'≥t} γ^{t'} r_{t'} w_{t'}; hold the weights constant (w.detach()) when you differentiate log π, "
            "or differentiate the weighted return itself, not both")


# =========================================================================== helpers
def _tabular_values(values: list, name: str, shape, device: str) -> torch.Tensor:
    """[K, S, A] from the K replies of a map over single trajectories."""
    return torch.stack([grad_list(v, name, [shape], device)[0].to(F64) for v in values])


def _scale(e, baseline: torch.Tensor | None = None) -> float:
    """A bound on |ĝ({τ})| for rounding tolerances: H · (H · max|r| + max|b|)."""
    H = e.mdp.horizon
    b = float(baseline.abs().max()) if baseline is not None else 0.0
    return H * (H * float(e.rewards.abs().max()) + b) + 1e-3


def _atol(scale: float) -> float:
    return 64 * EPS32 * scale


def _diagnose(got: torch.Tensor, want: torch.Tensor, horizon: int, atol: float) -> tuple[str, str | None]:
    """(diagnosis id, hint) for the classic mistakes, recognised from the exact expectation; ("biased", None)
    when the expectation is wrong in no recognised way."""
    def close(a, b):
        return bool(((a - b).abs() <= atol + 1e-6 * b.abs()).all())

    if want.abs().max() <= 10 * atol:
        return "biased", None
    if close(got, -want):
        return "sign-flipped", ("your expectation is exactly −∇J: the sign is flipped. Return the gradient of the "
                                "objective (ascent), not of the loss −J")
    if horizon > 1 and close(got, want / horizon):
        return "averaged-over-time-steps", (f"your expectation is ∇J / {horizon} (the horizon): average over "
                                            "trajectories, not over time steps")
    if close(got, torch.zeros_like(want)):
        return "gradient-is-zero", ("your expectation is 0: is the return (or the gradient) detached or zeroed, "
                                    "or the weights Q̂_t normalised inside the estimator (a one-step trajectory "
                                    "normalises to 0; normalising advantages is a training heuristic, not part of ĝ)?")
    return "biased", None


def _expect_expectation(got_values, e, want, *, name: str, atol: float, what: str) -> None:
    """Compare Σ_τ p(τ) ĝ({τ}) with ``want`` at every coordinate (s, a)."""
    got = expectation(e.prob, got_values)
    diagnosis, hint = _diagnose(got, want, e.mdp.horizon, atol)
    try:
        assert_close(got, want, name=name, atol=atol, label="coordinate (s, a) =", diagnosis=diagnosis)
    except Mismatch as err:
        note(f"exact expectation over all {e.prob.shape[0]} trajectories; expected = {what}")
        err.hint = hint or err.hint
        raise


def _traj_repr(e, k: int) -> str:
    return (f"states {e.states[k].tolist()}, actions {e.actions[k].tolist()}, "
            f"rewards {[round(x, 4) for x in e.rewards[k].tolist()]}")


def _expect_per_trajectory(got_values, want_values, e, *, name: str, atol: float | torch.Tensor,
                           hint: str | None = None, diagnosis: str = "wrong-value") -> None:
    """Per-trajectory values, reporting the worst trajectory (relative to its own tolerance when ``atol`` is a
    tensor with one per trajectory); ``hint`` and ``diagnosis`` name the mistake when the caller recognised it."""
    err = (got_values - want_values).abs().reshape(got_values.shape[0], -1).amax(1)
    err = nan_as_inf(err)
    bound = atol if isinstance(atol, torch.Tensor) else torch.full_like(err, atol)
    k = int((err / bound).argmax())
    if float(err[k]) > float(bound[k]):
        assert_close(got_values[k], want_values[k], name=f"{name} on the trajectory {_traj_repr(e, k)}",
                     atol=float(bound[k]), label="coordinate (s, a) =", hint=hint,
                     diagnosis=diagnosis)


def _policy(mdp: TabularMDP) -> TabularSoftmaxPolicy:
    return TabularSoftmaxPolicy(mdp.theta().to(torch.float32))


SHARED_BASELINE_HINT = ("a baseline may share the policy's parameters (one trunk for actor and critic): Q̂_t − b(s_t) "
                        "is a constant weight of ∇log π(a_t|s_t), and the baseline is never differentiated in the "
                        "policy gradient, so no gradient may flow through it")


def _map_pg(ctx, mdp, trajs, policy=None, **kwargs) -> list:
    policy = _policy(mdp) if policy is None else policy
    return ctx.student(MODULE, "policy_gradient").map([((policy, [t], mdp.gamma), kwargs) for t in trajs])


def _on_policy_target(mdp, e) -> tuple[torch.Tensor, str]:
    """E[ĝ] of the reward-to-go estimator: ∇J at γ = 1, else the oracle's own expectation."""
    if mdp.gamma == 1.0:
        return exact_gradient(mdp), "∇J (γ = 1: reward-to-go is unbiased)"
    return expectation(e.prob, e.estimate(True)), (
        "the expectation of Σ_t ∇log π_t Σ_{t'≥t} γ^{t'-t} r_{t'} (with γ < 1 this is not ∇J_γ, "
        "since the γ^t factor is dropped: Nota & Thomas 2020)")


# =========================================================================== on-policy
@problem("hw2", "pg_unbiased_full_return", points=4, stubs=[(MODULE, "policy_gradient")], hint=PG_HINT)
def check_pg_unbiased_full_return(ctx):
    """policy_gradient(reward_to_go=False): E[ĝ] = ∇J_γ exactly, at any γ (all trajectories enumerated)."""

    @COSTLY
    @given(mdp=tabular_mdps(max_trajectories=128))
    @example(mdp=bandit((0.9, 0.1), (1.0, 0.0)))
    @example(mdp=small_mdp(horizon=3, gamma=0.5))
    @shrink_budget()
    def prop(mdp):
        e = enumerate_trajectories(mdp)
        S, A = mdp.n_states, mdp.n_actions
        got = _tabular_values(_map_pg(ctx, mdp, e.trajectories(), reward_to_go=False),
                              "policy_gradient", (S, A), ctx.device)
        _expect_expectation(got, e, exact_gradient(mdp), atol=_atol(_scale(e)), what="∇J_γ",
                            name="E[ĝ] = Σ_τ p(τ)·policy_gradient(π, [τ], γ, reward_to_go=False)")

    prop()


@problem("hw2", "pg_reward_to_go", points=3, stubs=[(MODULE, "policy_gradient")], hint=RTG_HINT)
def check_pg_reward_to_go(ctx):
    """policy_gradient(reward_to_go=True): E[ĝ] = ∇J at γ = 1; at γ < 1, the γ^{t'-t} estimator's exact expectation."""

    @COSTLY
    @given(mdp=tabular_mdps(max_trajectories=128))
    @example(mdp=small_mdp(horizon=3, gamma=1.0))
    @example(mdp=small_mdp(horizon=3, gamma=0.5))
    @shrink_budget()
    def prop(mdp):
        e = enumerate_trajectories(mdp)
        got = _tabular_values(_map_pg(ctx, mdp, e.trajectories(), reward_to_go=True),
                              "policy_gradient", (mdp.n_states, mdp.n_actions), ctx.device)
        want, what = _on_policy_target(mdp, e)
        atol = _atol(_scale(e))
        try:
            _expect_expectation(got, e, want, atol=atol, what=what,
                                name="E[ĝ] = Σ_τ p(τ)·policy_gradient(π, [τ], γ, reward_to_go=True)")
        except Mismatch as err:
            grad = exact_gradient(mdp)
            full = e.estimate(False)  # the full-return estimator on each trajectory: reward_to_go ignored
            if not bool(((full - e.estimate(True)).abs() <= atol).all()) and bool(((got - full).abs() <= 2 * atol).all()):
                err.diagnosis = "reward-to-go-ignored"
                err.hint = ("your value on every trajectory is the full-return estimator's, every step weighted by "
                            "Σ_{t'} γ^{t'} r_{t'}: with reward_to_go=True step t is weighted by the rewards from t "
                            "on, Q̂_t = discounted_reward_to_go(rewards, γ)[t]")
            elif mdp.gamma < 1.0:
                note(f"for comparison, ∇J_γ = {fmt(grad.reshape(-1))} (flattened)")
                if bool(((expectation(e.prob, got) - grad).abs() <= atol).all()):
                    err.diagnosis = "reward-to-go-discounted-from-start"
                    err.hint = ("your expectation is ∇J_γ, the full-return estimator's, though your values on single "
                                "trajectories are not that estimator's: Q̂_t is discounted from the start (γ^{t'}). "
                                "The contract's Q̂_t = discounted_reward_to_go(rewards, γ)[t] restarts the discount "
                                "at t (γ^{t'-t}), which at γ < 1 is biased for ∇J_γ (Nota & Thomas 2020): that is "
                                "expected here")
            raise

    prop()


@problem("hw2", "pg_batch_mean", points=2, stubs=[(MODULE, "policy_gradient")], hint=PG_HINT)
def check_pg_batch_mean(ctx):
    """policy_gradient on N trajectories is the mean of the N single-trajectory estimates, and repeatable."""

    @COSTLY
    @given(mdp=tabular_mdps(max_trajectories=64), reward_to_go=st.booleans())
    @example(mdp=small_mdp(horizon=3, gamma=0.9), reward_to_go=False)
    @shrink_budget()
    def prop(mdp, reward_to_go):
        e = enumerate_trajectories(mdp)
        full = e.trajectories()
        K, H = len(full), mdp.horizon
        picks = [(0, H), (K // 2, max(1, H - 1)), (K - 1, max(1, H - 2))]
        batch = [_truncate(full[k], T) for k, T in picks]
        lengths = [len(t) for t in batch]
        policy = _policy(mdp)
        kwargs = {"reward_to_go": reward_to_go}
        calls = [((policy, batch, mdp.gamma), kwargs), ((policy, batch, mdp.gamma), kwargs)]
        calls += [((policy, [t], mdp.gamma), kwargs) for t in batch]
        replies = ctx.student(MODULE, "policy_gradient").map(calls)
        shape = (mdp.n_states, mdp.n_actions)
        first, again, *singles = [grad_list(v, "policy_gradient", [shape], ctx.device)[0].to(F64) for v in replies]
        atol = _atol(_scale(e)) * 4
        assert_close(again, first, atol=atol, label="coordinate (s, a) =",
                     name=f"policy_gradient called twice with the same {len(batch)} trajectories (the second call)",
                     hint="the result changed between two identical calls: gradients accumulate in .grad across "
                          ".backward() calls; use torch.autograd.grad, or zero .grad first and return copies",
                     diagnosis="grad-accumulates")
        note(f"batch of {len(batch)} trajectories of lengths {lengths}")
        assert_close(first, torch.stack(singles).mean(0), atol=atol, label="coordinate (s, a) =",
                     name=f"policy_gradient on {len(batch)} trajectories (lengths {lengths}) vs the mean of its "
                          "values on each trajectory alone",
                     hint="ĝ = (1/N) Σ_i ĝ_i: use every trajectory, sum over each trajectory's time steps, "
                          "then divide by the number of trajectories N (not by the number of steps)",
                     diagnosis="batch-not-mean-of-trajectories")

    prop()


def _truncate(t: Trajectory, T: int) -> Trajectory:
    return Trajectory(observations=t.observations[:T].clone(), actions=t.actions[:T].clone(),
                      rewards=t.rewards[:T].clone(), terminated=t.terminated if T == len(t) else False)


@problem("hw2", "pg_baseline", points=3, stubs=[(MODULE, "policy_gradient")], hint=BASELINE_HINT)
def check_pg_baseline(ctx):
    """policy_gradient with a state baseline: E[ĝ] unchanged, and ĝ_b = ĝ − Σ_t ∇log π_t · b(s_t) per trajectory."""

    @COSTLY
    @given(mdp=tabular_mdps(max_trajectories=64), values=st.lists(st.integers(-8, 8).map(lambda v: v / 4),
                                                                   min_size=4, max_size=4),
           reward_to_go=st.booleans(), shared=st.booleans())
    @example(mdp=bandit((0.9, 0.1), (1.0, 0.0)), values=[0.9, 0, 0, 0], reward_to_go=False, shared=False)
    @example(mdp=small_mdp(horizon=3, gamma=1.0), values=[1.0, -2.0, 0, 0], reward_to_go=True, shared=False)
    @example(mdp=small_mdp(horizon=3, gamma=1.0), values=[0.5, 0.25, 0, 0], reward_to_go=True, shared=True)
    @shrink_budget()
    def prop(mdp, values, reward_to_go, shared):
        S, A = mdp.n_states, mdp.n_actions
        b = torch.tensor(values[:S], dtype=F64)
        e = enumerate_trajectories(mdp)
        trajs = e.trajectories()
        kwargs = {"reward_to_go": reward_to_go}
        policy = _policy(mdp)
        baseline = SharedTrunkBaseline(policy, b) if shared else TabularBaseline(b)
        if shared:  # the values it takes at θ; its gradient in θ must not enter the estimate
            b = baseline.effective_values()
        with_b = _tabular_values(_map_pg(ctx, mdp, trajs, policy=policy, baseline=baseline, **kwargs),
                                 "policy_gradient", (S, A), ctx.device)
        note(f"baseline {baseline!r}: b(s) = {fmt(b)}, reward_to_go={reward_to_go}")
        if shared:  # the same values from a constant baseline: any difference is a gradient through b
            constant = _tabular_values(_map_pg(ctx, mdp, trajs, baseline=TabularBaseline(b), **kwargs),
                                       "policy_gradient", (S, A), ctx.device)
            if not within(with_b, constant, _atol(_scale(e, b))):
                gap = float(nan_as_inf((with_b - constant).abs()).max())
                raise Mismatch(f"policy_gradient changes (by up to {gap:.4g}) when the baseline shares the policy's "
                               "parameters, although it takes the same values b(s) as a constant one: the gradient "
                               "flows through the baseline", SHARED_BASELINE_HINT, "gradient-through-baseline")
        if reward_to_go:
            want, what = _on_policy_target(mdp, e)
        else:
            want, what = exact_gradient(mdp), "∇J_γ"
        atol = _atol(_scale(e, b))
        var_b, var_0 = variance(e.prob, with_b).reshape(-1), variance(e.prob, e.estimate(reward_to_go)).reshape(-1)
        note(f"exact per-coordinate variance of ĝ: {fmt(var_0)} without the baseline, {fmt(var_b)} with yours "
             "(a baseline can raise or lower it; it must not move the mean)")
        _expect_expectation(with_b, e, want, atol=atol, what=what,
                            name=f"E[ĝ] with baseline b(s) = {fmt(b)} (reward_to_go={reward_to_go})")
        hint = "the baseline is subtracted, Q̂_t − b(s_t), once per step, with b(s_t) = baseline(observations)[t]"
        diagnosis = "wrong-value"
        if bool(((with_b - e.estimate(reward_to_go, -b)).abs() <= atol).all()):
            hint = "your values are Σ_t ∇log π_t (Q̂_t + b(s_t)): the baseline is added instead of subtracted"
            diagnosis = "baseline-added"
        _expect_per_trajectory(with_b, e.estimate(reward_to_go, b), e, atol=atol, hint=hint, diagnosis=diagnosis,
                               name="policy_gradient(..., baseline=b) (expected Σ_t ∇log π(a_t|s_t)·(Q̂_t − b(s_t)))")

    prop()


# =========================================================================== optimal baseline
def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


# The scale of the scores: a parameter's score can be small (a late layer, a nearly deterministic action), and
# there Σ_i g_id² is small too. At 1e-6, Σ_i g_id² is 6e-14 to 1e-10, still far above float32's smallest normal
# number (1.2e-38): a correct float32 formula keeps its relative accuracy, and an ε of 1e-8 (or a denominator
# clamped to 1e-8) moves b* by a factor of 100 or more, where the tolerance allows 1e-5 to 1e-4 of max|R|.
# At scale 1 a column's Σ_i g_id² is 0 or at least 0.25² = 0.0625.
SCORE_SCALES = (1.0, 1e-3, 1e-6)


@st.composite
def score_matrices(draw):
    """score_sums [N, D] (quarters times a scale, zero columns likely), returns [N], dtype."""
    N = draw(st.integers(1, 10))
    D = draw(st.integers(1, 5))
    quarter = st.integers(-12, 12).map(lambda v: v / 4)
    g = [draw(st.lists(quarter, min_size=D, max_size=D)) for _ in range(N)]
    R = draw(st.lists(st.integers(-40, 40).map(lambda v: v / 4), min_size=N, max_size=N))
    return {"score_sums": g, "returns": R, "dtype": draw(st.sampled_from(["float32", "float64"])),
            "scale": draw(st.sampled_from(SCORE_SCALES))}


EPSILON_HINT = ("the optimal baseline is b*_d = Σ_i g_id² R_i / Σ_i g_id² exactly: no ε in the denominator, no clamp, "
                "no cut-off. The one special case, Σ_i g_id² = 0 (the score carries no information: b*_d = 0), needs "
                "a mask (torch.where), not an ε: where the score is small an ε is not small next to Σ_i g_id², and "
                "it pulls the baseline towards 0, which is then no longer the variance-minimising one")


def _epsilon_mistake(g64: torch.Tensor, R64: torch.Tensor, got: torch.Tensor, want: torch.Tensor, atol: float) -> str:
    """A message naming an ε in the denominator (or a clamp, or a cut-off) when that is what ``got`` looks like:
    wrong only where Σ_i g_id² is small (below 1e-2: only scaled-down scores get there), and there pulled
    towards 0, never past it; "" otherwise."""
    den = (g64 ** 2).sum(0)
    got64 = got.to(F64)
    error = nan_as_inf((got64 - want).abs())
    wrong = error > atol
    shrunk = (got64 * want >= 0) & (got64.abs() <= want.abs())
    if not bool(wrong.any()) or not bool(shrunk[wrong].all()) or float(den[wrong].max()) >= 1e-2:
        return ""
    d = int(torch.where(wrong, error, -1.0).argmax())
    num = float((g64[:, d] ** 2 * R64).sum())
    implied = f" as if the denominator were Σ_i g_id² + ε with ε ≈ {num / float(got64[d]) - float(den[d]):.2g}" \
        if float(got64[d]) != 0 else " (0: as if a cut-off decided the column carries no information)"
    return (f"optimal_baseline is pulled towards 0 where Σ_i g_id² is small: at coordinate {d}, Σ_i g_id² = "
            f"{float(den[d]):.3g} and b* = {float(want[d]):.6g}, but you returned {float(got64[d]):.6g},{implied}")


@problem("hw2", "optimal_baseline_formula", points=2, stubs=[(MODULE, "optimal_baseline")], hint=OPT_B_HINT)
def check_optimal_baseline_formula(ctx):
    """optimal_baseline: b*_d = Σ_i g_id² R_i / Σ_i g_id², and 0 (not nan) where a score column is all zero.

    Also on small scores (quarters times 1e-3 or 1e-6), where an ε added to the denominator shows."""

    @GRADER_SETTINGS
    @given(case=score_matrices())
    @example(case={"score_sums": [[0.1, 0.0], [-0.9, 0.0]], "returns": [1.0, 0.0], "dtype": "float64", "scale": 1.0})
    @example(case={"score_sums": [[1.0, 0.0, 2.0], [1.0, 0.0, -2.0], [3.0, 0.0, 0.5]], "returns": [1.0, 2.0, -4.0],
                   "dtype": "float32", "scale": 1.0})
    @example(case={"score_sums": [[1.0, 0.0, 2.0], [1.0, 0.0, -2.0], [3.0, 0.0, 0.5]], "returns": [1.0, 2.0, -4.0],
                   "dtype": "float32", "scale": 1e-6})
    def prop(case):
        dtype = _dtype(case["dtype"])
        g = torch.tensor(case["score_sums"], dtype=dtype) * case["scale"]
        R = torch.tensor(case["returns"], dtype=dtype)
        reply = ctx.student(MODULE, "optimal_baseline").call(g, R)
        D = g.shape[1]
        got = expect_tensor(reply["value"], name="optimal_baseline", shape=[D], device=ctx.device, finite=False)
        g64, R64 = g.to(F64), R.to(F64)
        den = (g64 ** 2).sum(0)
        want = torch.where(den > 0, (g64 ** 2 * R64[:, None]).sum(0) / den.clamp(min=1e-300), 0.0)
        bad = ~torch.isfinite(got)
        if bool(bad.any()):
            d = int(bad.nonzero()[0])
            zero = bool(den[d] == 0)
            raise Mismatch(f"optimal_baseline returned {fmt(got[d])} at coordinate {d}"
                           + (" where every g_id is 0 (Σ_i g_id² = 0)" if zero else ""),
                           "where Σ_i g_id² = 0 the score carries no information: return 0 there, not 0/0 = nan; "
                           "a division that is computed everywhere and masked afterwards still produces the nan "
                           "(and its gradient), so keep the zero denominators out of the division" if zero else None,
                           "nan-where-score-is-zero" if zero else "non-finite")
        atol = 64 * max(EPS32, torch.finfo(dtype).eps) * (g.shape[0] + 1) * float(R64.abs().max() + 1e-3)
        if case["scale"] != 1.0:
            note(f"the scores are small here (quarters times {case['scale']:g}): Σ_i g_id² = {fmt(den)}")
        mistake = _epsilon_mistake(g64, R64, got, want, atol)
        if mistake:
            raise Mismatch(mistake, EPSILON_HINT, "epsilon-in-denominator")
        assert_close(got, want, name="optimal_baseline", atol=atol, label="coordinate")

    prop()


@problem("hw2", "optimal_baseline_variance", points=3, stubs=[(MODULE, "optimal_baseline")], hint=OPT_B_HINT)
def check_optimal_baseline_variance(ctx):
    """optimal_baseline minimises each coordinate's exact variance Var_d(b) of g_d·(G − b) (enumerated MDP)."""

    @COSTLY
    @given(mdp=tabular_mdps())
    @example(mdp=bandit((0.9, 0.1), (1.0, 0.0)))
    @example(mdp=small_mdp(horizon=2, gamma=0.9))
    @shrink_budget()
    def prop(mdp):
        e = enumerate_trajectories(mdp)
        S, A = mdp.n_states, mdp.n_actions
        g = e.score_sums().reshape(-1, S * A)  # [K, D]
        # √p(τ)·g(τ) as the samples: the sample formula Σ_i g² R / Σ_i g² becomes the exact E[g² R] / E[g²].
        weighted = e.prob.sqrt()[:, None] * g
        note("optimal_baseline was called on √p(τ)·g(τ) and G(τ) for every trajectory τ, so its sample "
             "averages are exact expectations")
        got = expect_tensor(ctx.student(MODULE, "optimal_baseline")(weighted, e.returns), name="optimal_baseline",
                            shape=[S * A], device=ctx.device, finite=False).to(F64).reshape(S, A)
        Eg2 = expectation(e.prob, e.score_sums() ** 2)
        Eg2R = expectation(e.prob, e.score_sums() ** 2 * e.returns[:, None, None])
        best = torch.where(Eg2 > 0, Eg2R / Eg2.clamp(min=1e-300), 0.0)
        mean_R = float(expectation(e.prob, e.returns))
        var_got = variance_with_constant_baseline(e, got)
        var_best = variance_with_constant_baseline(e, best)
        var_zero = variance_with_constant_baseline(e, torch.zeros(S, A, dtype=F64))
        var_mean = variance_with_constant_baseline(e, torch.full((S, A), mean_R, dtype=F64))
        tol = 1e-9 * (expectation(e.prob, (e.score_sums() * e.returns[:, None, None]) ** 2) + Eg2 * mean_R ** 2) + 1e-15
        excess = var_got - var_best
        excess = nan_as_inf(excess)
        worst = int((excess - tol).reshape(-1).argmax())
        s, a = divmod(worst, A)
        if float((excess - tol).reshape(-1)[worst]) > 0:
            extra = ""
            if float(var_mean[s, a]) > float(var_zero[s, a]):
                extra = " (here the mean-return baseline increases the variance: it is not the optimal one)"
            def var(v):  # a variance within the rounding tolerance of 0 is 0
                return fmt(v if float(v) > float(tol[s, a]) else 0.0)

            raise Mismatch(
                f"optimal_baseline does not minimise the variance at coordinate (s, a) = {s}, {a}: "
                f"your b = {fmt(got[s, a])} gives Var = {var(var_got[s, a])}, but the minimum is "
                f"Var = {var(var_best[s, a])} at b* = E[g² G]/E[g²] = {fmt(best[s, a])}.\n"
                f"  for comparison: b = 0 gives {var(var_zero[s, a])}; b = E[G] = {mean_R:.4g} gives "
                f"{var(var_mean[s, a])}{extra}", diagnosis="not-variance-minimising")

    prop()


# =========================================================================== importance weights
def _log_w(lp: list[float], lq: list[float], per_decision: bool) -> torch.Tensor:
    log_w = torch.cumsum(torch.tensor(lp, dtype=F64) - torch.tensor(lq, dtype=F64), 0)
    return log_w if per_decision else log_w[-1]


def _assert_relative(got: torch.Tensor, want: torch.Tensor, *, name: str, rtol: float, hint: str | None = None):
    g, w = got.detach().to(F64).reshape(-1), want.to(F64).reshape(-1)
    rel = (g - w).abs() / w.abs().clamp(min=1e-300)
    rel = nan_as_inf(rel)
    i = int(rel.argmax())
    if float(rel[i]) > rtol:
        where = f" at step {i}" if got.dim() else ""
        raise Mismatch(f"{name} is wrong{where}: expected {fmt(w[i])}, got {fmt(g[i])} (relative error "
                       f"{float(rel[i]):.3g} > {rtol:.2g})\n  expected: {fmt(w)}\n  got:      {fmt(g)}", hint)


def long_log_probs(T: int = 2000) -> dict:
    """log π_t, log μ_t near −3 for T steps: Π π and Π μ underflow to 0, the ratio w ≈ e^{4} does not."""
    lp = [-3.0 + 0.01 * ((7 * t) % 5 - 2) + 0.002 for t in range(T)]
    lq = [-3.0 + 0.01 * ((7 * t) % 5 - 2) for t in range(T)]
    return {"target": lp, "behavior": lq}


@st.composite
def log_prob_pairs(draw, max_len: int = 12):
    T = draw(st.integers(1, max_len))
    lp = st.integers(-24, 0).map(lambda v: v / 4)
    return {"target": draw(st.lists(lp, min_size=T, max_size=T)), "behavior": draw(st.lists(lp, min_size=T, max_size=T))}


def _iw_rtol(case: dict, dtype: torch.dtype) -> float:
    scale = sum(abs(x) for x in case["target"]) + sum(abs(x) for x in case["behavior"]) + 1.0
    return 32 * max(EPS32, torch.finfo(dtype).eps) * scale


@problem("hw2", "importance_weights", points=3, stubs=[(MODULE, "importance_weights")], hint=IW_HINT)
def check_importance_weights(ctx):
    """importance_weights: Π π/μ (or its running products), w ≡ 1 when π = μ, finite and accurate for T = 2000."""

    @GRADER_SETTINGS
    @given(case=log_prob_pairs(), per_decision=st.booleans(), dtype=st.sampled_from(["float32", "float64"]))
    @example(case={"target": [-0.5, -1.0, -2.0], "behavior": [-0.5, -1.0, -2.0]}, per_decision=True, dtype="float32")
    @example(case=long_log_probs(), per_decision=False, dtype="float32")
    @example(case=long_log_probs(), per_decision=True, dtype="float32")
    def prop(case, per_decision, dtype):
        dt = _dtype(dtype)
        lp, lq = torch.tensor(case["target"], dtype=dt), torch.tensor(case["behavior"], dtype=dt)
        T = lp.shape[0]
        reply = ctx.student(MODULE, "importance_weights").call(lp, lq, per_decision=per_decision)
        name = f"importance_weights(per_decision={per_decision})"
        got = expect_tensor(reply["value"], name=name, shape=[T] if per_decision else [], device=ctx.device,
                            finite=False)
        if not bool(torch.isfinite(got).all()):
            raise Mismatch(f"{name} returned a non-finite value (nan or inf) on a trajectory of {T} steps: {fmt(got)};"
                           f" the true weights are finite: {fmt(_log_w(case['target'], case['behavior'], per_decision).exp())}",
                           "Π π_t / Π μ_t underflows to 0/0 on long trajectories: compute exp(Σ (log π − log μ))",
                           "weights-underflow")
        if case["target"] == case["behavior"]:
            note("π = μ here, so every weight must be 1")
        want = _log_w(case["target"], case["behavior"], per_decision).exp()
        _assert_relative(got, want, name=name, rtol=_iw_rtol(case, dt))

    prop()


@problem("hw2", "importance_weights_grad", points=2, stubs=[(MODULE, "importance_weights")], hint=IW_HINT)
def check_importance_weights_grad(ctx):
    """importance_weights is differentiable in target_log_probs: ∂w/∂log π_k = w (and Σ_{t≥k} c_t w_t per decision)."""

    @GRADER_SETTINGS
    @given(case=log_prob_pairs(max_len=8), per_decision=st.booleans(),
           cot=st.lists(st.integers(-4, 4).map(lambda v: v / 2), min_size=8, max_size=8))
    @example(case={"target": [-1.0, -0.5], "behavior": [-0.5, -0.5]}, per_decision=True, cot=[1.0] * 8)
    def prop(case, per_decision, cot):
        lp = torch.tensor(case["target"], dtype=F64)
        lq = torch.tensor(case["behavior"], dtype=F64)
        T = lp.shape[0]
        c = torch.tensor(cot[:T], dtype=F64) if per_decision else None
        reply = ctx.student(MODULE, "importance_weights").call(lp, lq, per_decision=per_decision, grad_wrt=(0,),
                                                                cotangent=c)
        name = f"importance_weights(per_decision={per_decision})"
        expect_tensor(reply["value"], name=name, shape=[T] if per_decision else [], device=ctx.device)
        grads = reply["grads"]
        if isinstance(grads, str):
            raise Mismatch(f"no gradient flows from {name} to target_log_probs: {grads}",
                           "the off-policy gradient differentiates through the weights: keep w a torch function of "
                           "target_log_probs (no .detach(), .item(), numpy or torch.tensor(...) re-wrapping)", "no-gradient")
        if not isinstance(grads, list) or len(grads) != 1:
            raise Mismatch(f"the reply to {name} came back malformed: {describe(grads)} where the gradient with "
                           "respect to target_log_probs was expected", diagnosis="malformed-reply")
        g = grads[0]
        if isinstance(g, str):
            raise Mismatch(f"no gradient flows from {name} to target_log_probs: {g}", diagnosis="no-gradient")
        g = expect_tensor(g, name=f"the gradient of {name}", shape=[T])
        check_slope(ctx.student(MODULE, "importance_weights"), lp, (lq,), {"per_decision": per_decision}, c, g, name,
                    [T] if per_decision else [])
        w = _log_w(case["target"], case["behavior"], per_decision).exp()
        if per_decision:
            want = torch.flip(torch.cumsum(torch.flip(c * w, [0]), 0), [0])
            what = "Σ_{t≥k} c_t w_t for the cotangent c = " + fmt(c)
        else:
            want = w.expand(T)
            what = "w at every k"
        note(f"expected ∂/∂ log π_k: {what}")
        assert_close(g, want, label="k =",
                     name=f"the gradient of {name} with respect to target_log_probs",
                     atol=1e-9 * float(want.abs().max() + 1) + 1e-12, diagnosis="wrong-gradient")

    prop()


@problem("hw2", "importance_sampling_expectation", points=2, stubs=[(MODULE, "importance_weights")], hint=IW_HINT)
def check_importance_sampling_expectation(ctx):
    """Importance weights on trajectories of μ: E_μ[w] = 1, E_μ[w_t] = 1 and E_μ[w·G] = E_π[G] = J_γ, exactly."""

    @COSTLY
    @given(mdp=tabular_mdps(off_policy=True, max_trajectories=32))
    @example(mdp=small_mdp(horizon=3, gamma=0.9, off_policy=True))
    @shrink_budget()
    def prop(mdp):
        e = enumerate_trajectories(mdp, behavior=True)
        K, H = e.prob.shape[0], mdp.horizon
        lp, lq = e.logp_pi.to(torch.float32), e.logp_mu.to(torch.float32)
        calls = [((lp[k], lq[k]), {"per_decision": pd}) for pd in (False, True) for k in range(K)]
        values = ctx.student(MODULE, "importance_weights").map(calls)
        w = torch.stack([expect_tensor(v, name="importance_weights(per_decision=False)", shape=[], device=ctx.device)
                         for v in values[:K]]).to(F64)
        wt = torch.stack([expect_tensor(v, name="importance_weights(per_decision=True)", shape=[H], device=ctx.device)
                          for v in values[K:]]).to(F64)
        rtol = 64 * EPS32 * (float(e.logp_pi.abs().sum(1).max() + e.logp_mu.abs().sum(1).max()) + 1)
        note(f"all {K} trajectories enumerated under μ; E_μ[·] = Σ_τ p_μ(τ)·(·)")
        _assert_relative(expectation(e.prob, w), torch.tensor(1.0, dtype=F64),
                         name="E_μ[importance_weights(per_decision=False)] (expected Σ_τ p_μ(τ) w(τ) = 1)", rtol=rtol)
        _assert_relative(expectation(e.prob, wt), torch.ones(H, dtype=F64),
                         name="E_μ[importance_weights(per_decision=True)[t]] (expected 1 at every step t)", rtol=rtol)
        J = objective(mdp, mdp.theta())
        got_J = expectation(e.prob, w * e.returns)
        scale = float(expectation(e.prob, w * e.returns.abs()) + e.returns.abs().max())
        assert_close(got_J, J, name="E_μ[w·G] (expected E_π[G] = J_γ(θ))", atol=rtol * scale)

    prop()


# =========================================================================== off-policy gradient
@problem("hw2", "off_policy_unbiased", points=4, stubs=[(MODULE, "off_policy_policy_gradient")], hint=OFF_HINT)
def check_off_policy_unbiased(ctx):
    """off_policy_policy_gradient: E_μ[ĝ] = ∇J_γ(θ) for both variants, and each ĝ({τ}) matches its definition.

    Then on batches: the estimate on trajectories of different lengths is the mean of the single-trajectory
    estimates (each trajectory has its own weights); and on one trajectory of 1500 steps, where a product of
    probabilities underflows, it is finite and matches its definition."""

    @COSTLY
    @given(mdp=tabular_mdps(off_policy=True, max_trajectories=64))
    @example(mdp=small_mdp(horizon=3, gamma=0.9, off_policy=True))
    @shrink_budget()
    def prop(mdp):
        e = enumerate_trajectories(mdp, behavior=True)
        K = e.prob.shape[0]
        trajs = e.trajectories(behavior=True)
        policy = _policy(mdp)
        calls = [((policy, [t], mdp.gamma), {"per_decision": pd}) for pd in (False, True) for t in trajs]
        values = ctx.student(MODULE, "off_policy_policy_gradient").map(calls)
        shape = (mdp.n_states, mdp.n_actions)
        grad = exact_gradient(mdp)
        note(f"all {K} trajectories enumerated under the behavior policy μ; E_μ[ĝ] = Σ_τ p_μ(τ) ĝ({{τ}})")
        for i, pd in enumerate((False, True)):
            got = _tabular_values(values[i * K:(i + 1) * K], f"off_policy_policy_gradient(per_decision={pd})",
                                  shape, ctx.device)
            want_values = e.off_policy_estimate(pd)
            per_trajectory = _off_policy_atol(e, pd)
            atol = float(expectation(e.prob, per_trajectory))
            _expect_expectation(got, e, grad, atol=atol, what="∇J_γ(θ)",
                                name=f"E_μ[off_policy_policy_gradient(π, [τ], γ, per_decision={pd})]")
            hint = None
            if pd and bool(((got - e.off_policy_estimate(False)).abs() <= per_trajectory[:, None, None]).all()):
                hint = ("your per-decision values equal the trajectory-level ones: per_decision=True is ignored; "
                        "reward r_{t'} is weighted by w_{t'} (the ratios up to t'), not by the whole trajectory's w")
            _expect_per_trajectory(got, want_values, e, atol=per_trajectory, hint=hint,
                                   name=f"off_policy_policy_gradient(per_decision={pd})")

    prop()
    _check_off_policy_batch(ctx)
    _check_off_policy_long_trajectory(ctx)


OFF_BATCH_HINT = ("ĝ = (1/N) Σ_i ĝ(τ_i): each trajectory has its own importance weight Π_t π(a_t|s_t)/μ(a_t|s_t) "
                  "and its own per-decision weights w_t, starting again at its first step, and its own discount "
                  "γ^{t'} from its own start; compute each trajectory's estimate, then average over the N "
                  "trajectories (not over time steps)")
BATCH_MISTAKES = {
    "batch-as-one-trajectory": (
        "your value is the estimate of the batch concatenated into one long trajectory: the importance weight "
        "multiplies the ratios of the trajectories before, and the discount runs on. Each trajectory τ_i has its "
        "own importance weight (and per-decision weights) restarting at 1 on its first step: loop over the "
        "trajectories, or mask a padded batch, then average the N estimates"),
    "summed-over-trajectories": ("your value is the SUM of the trajectories' estimates: average them, "
                                 "ĝ = (1/N) Σ_i ĝ(τ_i)"),
    "one-trajectory-only": ("your value is the estimate of one trajectory of the batch alone: every trajectory "
                            "contributes, ĝ = (1/N) Σ_i ĝ(τ_i) (is a loop's last trajectory all that is used?)"),
}


def _one_path(mdp: TabularMDP, states: torch.Tensor, actions: torch.Tensor):
    """The oracle of one trajectory of any length (its own horizon), sampled by μ."""
    return paths(dataclasses.replace(mdp, horizon=len(states)), states[None], actions[None], behavior=True)


def _check_off_policy_batch(ctx) -> None:
    """On a batch of trajectories of different lengths, the estimate is the mean of the single-trajectory
    estimates (the student's own, checked above), for both variants. How a batch is combined does not depend
    on the MDP: a few MDPs suffice."""
    student = ctx.student(MODULE, "off_policy_policy_gradient")

    @grader_settings(max_examples=4)
    @given(mdp=tabular_mdps(off_policy=True, max_trajectories=64))
    @example(mdp=small_mdp(horizon=3, gamma=0.9, off_policy=True))
    @shrink_budget()
    def prop(mdp):
        e = enumerate_trajectories(mdp, behavior=True)
        K, H = e.prob.shape[0], mdp.horizon
        picks = [(0, H), (K // 2, max(1, H - 1)), (K - 1, max(1, H - 2))]
        ones = [_one_path(mdp, e.states[k, :T], e.actions[k, :T]) for k, T in picks]
        batch = [one.trajectories(behavior=True)[0] for one in ones]
        N, lengths = len(batch), [len(t) for t in batch]
        policy = _policy(mdp)
        calls = [((policy, batch, mdp.gamma), {"per_decision": pd}) for pd in (False, True)]
        calls += [((policy, [t], mdp.gamma), {"per_decision": pd}) for pd in (False, True) for t in batch]
        values = student.map(calls)
        shape = (mdp.n_states, mdp.n_actions)
        note(f"a batch of {N} trajectories of lengths {lengths}, sampled by μ")
        for i, pd in enumerate((False, True)):
            name = f"off_policy_policy_gradient(per_decision={pd})"
            got = grad_list(values[i], name, [shape], ctx.device)[0].to(F64)
            singles = _tabular_values(values[2 + i * N: 2 + (i + 1) * N], name, shape, ctx.device)
            atol = 4 * max(float(_off_policy_atol(one, pd)[0]) for one in ones)
            want = singles.mean(0)
            try:
                assert_close(got, want, atol=atol, label="coordinate (s, a) =", hint=OFF_BATCH_HINT,
                             name=f"{name} on {N} trajectories (lengths {lengths}) vs the mean of its values on "
                                  "each trajectory alone", diagnosis="batch-not-mean-of-trajectories")
            except Mismatch as err:
                whole = _one_path(mdp, torch.cat([one.states[0] for one in ones]),
                                  torch.cat([one.actions[0] for one in ones]))
                as_one = whole.off_policy_estimate(pd)[0]
                bound = max(atol, float(_off_policy_atol(whole, pd).max()))
                candidates = [("batch-as-one-trajectory", as_one / N), ("batch-as-one-trajectory", as_one),
                              ("summed-over-trajectories", singles.sum(0))]
                candidates += [("one-trajectory-only", single) for single in singles]
                recognise(err, got, want, bound, [(d, c, BATCH_MISTAKES[d]) for d, c in candidates])
                raise

    prop()


LONG_PATH_T = 1500


def _long_path():
    """One trajectory of LONG_PATH_T steps of a 2-state MDP whose μ is within 0.02 of π in log space: the weights
    stay moderate (between 0.6 and 1.1 here), but the probabilities multiply to about e^{−860}, below the
    smallest float64 number, so that a product of probabilities divided by another is 0/0."""
    mdp = dataclasses.replace(small_mdp(gamma=0.99, off_policy=True), horizon=LONG_PATH_T,
                              behavior_logits=((0.52, -0.5), (0.0, 0.98)))
    g = torch.Generator().manual_seed(285)
    states = torch.randint(mdp.n_states, (LONG_PATH_T,), generator=g)
    mu = torch.softmax(mdp.mu_logits(), -1)
    actions = torch.multinomial(mu[states], 1, generator=g).squeeze(-1)
    return paths(mdp, states[None], actions[None], behavior=True)


def _check_off_policy_long_trajectory(ctx) -> None:
    """On one trajectory of 1500 steps the estimate is finite and matches its definition."""
    e = _long_path()
    mdp = e.mdp
    values = ctx.student(MODULE, "off_policy_policy_gradient").map(
        [((_policy(mdp), e.trajectories(behavior=True), mdp.gamma), {"per_decision": pd}) for pd in (False, True)])
    for pd, value in zip((False, True), values):
        name = f"off_policy_policy_gradient(per_decision={pd})"
        try:
            got = grad_list(value, name, [(mdp.n_states, mdp.n_actions)], ctx.device)[0]
        except Mismatch as err:
            if err.diagnosis != "non-finite":
                raise
            raise Mismatch(f"{err}\n  on one trajectory of {LONG_PATH_T} steps (2 states, 2 actions, γ = "
                           f"{mdp.gamma}), whose importance weights are finite: w_{{T-1}} = "
                           f"{float(e.weights(False)[0]):.4g}, the per-decision w_t between "
                           f"{float(e.weights(True).min()):.4g} and {float(e.weights(True).max()):.4g}",
                           f"the probabilities of a long trajectory multiply to 0 (Π_t π(a_t|s_t) = "
                           f"e^{float(e.logp_pi.sum()):.0f} here, 0 in float32 and in float64), so Π π / Π μ is 0/0: "
                           "compute the importance weight in log space, exp(Σ_t (log π(a_t|s_t) − log μ(a_t|s_t))), "
                           "as importance_weights does",
                           "weights-underflow") from None
        assert_close(got, e.off_policy_estimate(pd)[0], atol=float(_off_policy_atol(e, pd)[0]),
                     label="coordinate (s, a) =", name=f"{name} on one trajectory of {LONG_PATH_T} steps")


def _off_policy_atol(e, per_decision: bool) -> torch.Tensor:
    """[K] the rounding allowed on each trajectory's off-policy gradient (any order, float32 or better inside):
    ``compare.sum_tolerance`` with the magnitudes actually summed, M = the estimator on |r|, w and the score's
    parts (its largest coordinate), and n = 2H + Σ_t (|log π_t| + |log μ_t| + 2·max|θ|) rounding steps: two
    nested H-term sums, and the weight's exponent, a sum of log-probabilities (μ's rounded to float32, π's
    computed from θ rounded to float32) whose absolute error exp turns into the weight's relative error.
    On the fixed example (H = 3, γ = 0.9) the expectation is checked to 1.0–1.5·10⁻⁴ and each trajectory to
    8·10⁻⁵ of its size (median), where 64·eps·scale allowed 0.034–0.039."""
    K = e.prob.shape[0]
    theta_max = float(e.mdp.theta().abs().max())
    n = 2 * e.mdp.horizon + (e.logp_pi.abs() + e.logp_mu.abs() + 2 * theta_max).sum(1)
    magnitudes = e.off_policy_magnitudes(per_decision).reshape(K, -1).amax(1)
    return sum_tolerance(torch.float32, magnitudes, n)


# =========================================================================== continuous actions
MC_DELTA = 1e-6
MC_GROUPS_TRAJ, MC_LENGTH = 4, 64


def _gaussian_bandit() -> GaussianBandit:
    """Policy mean near the target and σ = 1, so that every parameter's gradient (log_std's
    included) stands out of the Monte Carlo noise: |∇J_d| / sd ≥ 0.2 for most coordinates."""
    g = torch.Generator().manual_seed(285)
    contexts = torch.randn(4, 3, generator=g, dtype=F64)
    target = 0.5 * torch.randn(2, 3, generator=g, dtype=F64)
    return GaussianBandit(contexts=contexts, target=target, weight=target + 0.2 * torch.randn(2, 3, generator=g, dtype=F64),
                          bias=torch.zeros(2, dtype=F64), log_std=torch.zeros(2, dtype=F64))


@problem("hw2", "pg_gaussian_monte_carlo", points=2, stubs=[(MODULE, "policy_gradient")], hint=PG_HINT, seconds=60)
def check_pg_gaussian_monte_carlo(ctx):
    """policy_gradient with a linear-Gaussian policy (continuous actions): Monte Carlo, false failures ≤ 1e-6."""
    env = _gaussian_bandit()
    D = sum(math.prod(s) for s in env.parameter_shapes())
    k = median_of_means_groups(D, MC_DELTA)
    bound = median_of_means_failure_bound(D, k)
    assert bound <= MC_DELTA
    gen = torch.Generator(device=ctx.device).manual_seed(2026)
    policy = LinearGaussianPolicy(env.weight.float(), env.bias.float(), env.log_std.float())
    critic = QuadraticBaseline(env.weight, env.bias, env.log_std, env.target)
    trajs = env.sample(k * MC_GROUPS_TRAJ, MC_LENGTH, gen, ctx.device)  # one batch, drawn on ctx.device
    calls = [((policy, trajs[i * MC_GROUPS_TRAJ:(i + 1) * MC_GROUPS_TRAJ], 0.0),
              {"reward_to_go": True, "baseline": critic}) for i in range(k)]
    values = ctx.student(MODULE, "policy_gradient").map(calls)
    shapes = env.parameter_shapes()
    groups = torch.stack([torch.cat([g.to(F64).reshape(-1) for g in grad_list(v, "policy_gradient", shapes,
                                                                                  ctx.device)]) for v in values])
    mean, var = env.per_step_moments()
    want = MC_LENGTH * mean  # ∇J, J = E[Σ_{t<T} r_t]
    radius = 2 * (MC_LENGTH * var / MC_GROUPS_TRAJ).sqrt() + _atol(float(want.abs().max()) + 10.0)
    got = groups.median(0).values
    if not within(got, want, radius):
        d = int((nan_as_inf((got - want).abs()) / radius).argmax())
        names = [f"weight[{i}, {j}]" for i in range(2) for j in range(3)] + ["bias[0]", "bias[1]"] + \
                ["log_std[0]", "log_std[1]"]
        summed = within(got, MC_GROUPS_TRAJ * want, MC_GROUPS_TRAJ * radius)  # a batch's sum is N × its mean
        raise Mismatch(
            f"policy_gradient with a LinearGaussianPolicy (2-D actions) is off at {names[d]}: the median of {k} "
            f"batch estimates (each {MC_GROUPS_TRAJ} trajectories × {MC_LENGTH} steps, sampled with a fixed seed "
            f"on {ctx.device}) is {got[d]:.4g}, but the exact ∇J is {want[d]:.4g} ± {radius[d]:.3g}.\n"
            f"  the environment: a contextual bandit, r(o, a) = −‖a − M o‖², γ = 0, reward_to_go=True, baseline = "
            f"the exact E_a[r(o, a)]; a correct estimator lands outside ± the stated radius with probability "
            f"≤ {bound:.2g} (median of means: Chebyshev per batch, the exact binomial tail over the {k} batches, union bound "
            f"over {D} coordinates)\n  expected: {fmt(want)}\n  got:      {fmt(got)}"
            + (f"\n  your estimates are {MC_GROUPS_TRAJ} × ∇J at every coordinate (within {MC_GROUPS_TRAJ} × the "
               f"radius): the SUM over the {MC_GROUPS_TRAJ} trajectories of a batch, not their mean" if summed else ""),
            BATCH_MISTAKES["summed-over-trajectories"] if summed else None,
            "summed-over-trajectories" if summed else None)


# =========================================================================== hidden: against the reference
@st.composite
def mlp_batches(draw):
    """A few random trajectories for a small CategoricalMLPPolicy (obs_dim 3, 3 actions)."""
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(1, 4))
    g = torch.Generator().manual_seed(seed)
    trajs = []
    for _ in range(n):
        T = int(torch.randint(1, 25, (1,), generator=g))
        lq = torch.log_softmax(torch.randn(T, 3, generator=g), -1)
        actions = torch.randint(3, (T,), generator=g)
        trajs.append(Trajectory(observations=torch.randn(T, 3, generator=g), actions=actions,
                                rewards=torch.randn(T, generator=g), terminated=bool(torch.rand(1, generator=g) < 0.5),
                                behavior_log_probs=lq[torch.arange(T), actions]))
    return {"seed": seed, "trajectories": trajs, "gamma": draw(GAMMA), "reward_to_go": draw(st.booleans()),
            "baseline": draw(st.booleans()), "per_decision": draw(st.booleans()), "long": False}


LONG_T = 1200


def long_off_policy_trajectory(policy, seed: int) -> Trajectory:
    """One trajectory of LONG_T steps whose behavior policy μ is within ±0.02 of π in log space: every
    weight is moderate (e^(±0.02·√T) at most, typically), but the probabilities themselves multiply to
    e^(−1.1·T), far below float64's smallest number: a product of probabilities gives 0/0."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(LONG_T, 3, generator=g)
    with torch.no_grad():
        dist = policy(obs)
        actions = torch.multinomial(dist.probs, 1, generator=g).squeeze(-1)
        lq = dist.log_prob(actions) + 0.02 * (2 * torch.rand(LONG_T, generator=g) - 1)
    return Trajectory(observations=obs, actions=actions, rewards=torch.randn(LONG_T, generator=g) * 0.1,
                      terminated=False, behavior_log_probs=lq)


LONG_CASE = {"seed": 7, "trajectories": [], "gamma": 0.99, "reward_to_go": True, "baseline": False, "long": True}


@problem("hw2", "estimators_match_reference", points=2, needs_reference=True,
         stubs=[(MODULE, "policy_gradient"), (MODULE, "off_policy_policy_gradient"), (MODULE, "optimal_baseline"),
                (MODULE, "importance_weights")],
         hint="compare each estimator with the formula in its docstring on a neural-network policy and uneven lengths")
def check_estimators_match_reference(ctx):
    """All four estimator functions equal the reference on random batches for an MLP policy (hidden test)."""

    @COSTLY
    @given(case=mlp_batches())
    @example(case={**LONG_CASE, "per_decision": True})
    @example(case={**LONG_CASE, "per_decision": False})
    @shrink_budget()
    def prop(case):
        torch.manual_seed(case["seed"])
        policy = CategoricalMLPPolicy(3, 3, hidden=(8,))
        trajs, gamma = case["trajectories"], case["gamma"]
        if case["long"]:
            trajs = [long_off_policy_trajectory(policy, case["seed"])]
            note(f"one trajectory of {LONG_T} steps; log μ within ±0.02 of log π (moderate weights)")
        baseline = TabularBaseline(torch.tensor([0.5, -1.0, 0.25])) if case["baseline"] else None
        shapes = [p.shape for p in policy.parameters()]
        steps = sum(len(t) for t in trajs)
        scale = sum(float(t.rewards.abs().sum()) + 2.0 for t in trajs) * 4
        for function, args, kwargs in [
            ("policy_gradient", (policy, trajs, gamma), {"reward_to_go": case["reward_to_go"], "baseline": baseline}),
            ("off_policy_policy_gradient", (policy, trajs, gamma), {"per_decision": case["per_decision"]}),
        ]:
            got = grad_list(ctx.student(MODULE, function)(*args, **kwargs), function, shapes, ctx.device)
            want = ctx.ref(MODULE, function)(*args, **kwargs)
            w_scale = 1.0
            if function.startswith("off"):
                w_scale = max(float(torch.exp((policy(t.observations).log_prob(t.actions).detach() - t.behavior_log_probs)
                                              .cumsum(0)).max()) for t in trajs)
            for i, (g, w) in enumerate(zip(got, want)):
                assert_close(g, w.detach(), name=f"{function}(…)[{i}] ({kwargs})", label="entry",
                             atol=64 * EPS32 * (steps + 1) * scale * max(w_scale, 1.0))
        singles = ctx.student(MODULE, "policy_gradient").map([((policy, [t], gamma), {}) for t in trajs])
        g = torch.stack([torch.cat([x.reshape(-1) for x in grad_list(v, "policy_gradient", shapes, ctx.device)])
                         for v in singles])
        R = torch.stack([t.rewards.sum() for t in trajs])
        got = expect_tensor(ctx.student(MODULE, "optimal_baseline")(g, R), name="optimal_baseline",
                            shape=[g.shape[1]])
        assert_close(got, ctx.ref(MODULE, "optimal_baseline")(g, R), name="optimal_baseline", label="coordinate",
                     atol=64 * EPS32 * (len(trajs) + 1) * float(R.abs().max() + 1))
        lps = [policy(t.observations).log_prob(t.actions).detach() for t in trajs]
        calls = [((lp, t.behavior_log_probs, pd), {}) for lp, t in zip(lps, trajs) for pd in (False, True)]
        values = ctx.student(MODULE, "importance_weights").map(calls)
        for ((lp, lq, pd), _), got in zip(calls, values):
            want = ctx.ref(MODULE, "importance_weights")(lp, lq, pd)
            _assert_relative(expect_tensor(got, name="importance_weights", shape=list(want.shape)), want,
                             name=f"importance_weights(per_decision={pd})", rtol=64 * EPS32 * (len(lp) + 1) * 10)

    prop()
