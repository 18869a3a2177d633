"""hw2 part 1: discounted return, reward-to-go and GAE.

Public problems check the defining identities (which determine each output
uniquely); hidden problems compare with the reference solution.
"""

from __future__ import annotations

import torch
from hypothesis import example, note
from hypothesis import strategies as st

from autograder.compare import (Mismatch, assert_close, discounted_magnitudes, expect_tensor, recognise,
                                sum_tolerance)
from autograder.hangs import probe
from autograder.problem import GRADER_SETTINGS, problem
from autograder.properties import given
from autograder.strategies import DTYPE, GAMMA, LAMBDA, episodes, long_episode, long_rewards, rewards

MODULE = "hw2.returns"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "undiscounted": "the return or reward-to-go is not discounted (γ ignored)",
    "discounted-from-one": "the full return's first reward is discounted too (the power of γ starts at 1)",
    "return-is-reward-to-go": "discounted_return returns the reward-to-go instead of the full return at every step",
    "reward-to-go-forward": "the reward-to-go sums forwards, from the start up to t, instead of from t to the end",
    "reward-to-go-reversed": "the reward-to-go values are right but in reverse time order",
    "reward-to-go-discounted-from-start": "the reward-to-go is discounted from the episode's start (γ^t') instead "
                                          "of from t (γ^(t'−t))",
    "excludes-current-reward": "the reward-to-go at t leaves out r_t itself",
    "full-return-at-every-step": "the reward-to-go is the full return at every step (causality ignored)",
    "bootstraps-past-terminal": "GAE bootstraps V(s_T) after a terminated episode, where it counts as 0",
    "lambda-ignored": "GAE computes the λ = 1 advantage (reward-to-go minus V) whatever λ is",
    "gae-forward-recursion": "GAE's recursion runs forwards instead of backwards from the last step",
    "lambda-return-not-advantage": "GAE returns the λ-return A_t + V(s_t) instead of the advantage A_t",
    "delta-sign-flipped": "the TD error adds the current state's value and subtracts the next one's",
    "delta-baseline-off-by-one": "the TD error subtracts V(s_{t+1}) instead of V(s_t)",
}
RETURN_HINT = ("the full return Σ_t γ^t r_t is one number per trajectory, discounted from the start (γ^{t'}), "
               "repeated at every step")
RTG_HINT = ("reward-to-go (causality): Q̂_t sums only the rewards from t on, discounted from t: "
            "Q̂_t = r_t + γ Q̂_{t+1}, backwards from Q̂_{T-1} = r_{T-1}")
GAE_HINT = ("GAE: δ_t = r_t + γ V(s_{t+1}) − V(s_t), where V(s_T) counts as 0 only when the episode terminated "
            "(not when it was truncated); then A_t = δ_t + γλ A_{t+1}, backwards from A_{T-1} = δ_{T-1}")


def _tensor(values, dtype: str) -> torch.Tensor:
    return torch.tensor(values, dtype=getattr(torch, dtype))


def _call(ctx, function: str, args: tuple, length: int, dtype: str) -> torch.Tensor:
    """Call the student's function (held to the side-effect contract) and check type, shape, dtype, device."""
    return expect_tensor(ctx.student(MODULE, function)(*args), name=function, shape=[length],
                         dtype=getattr(torch, dtype), device=ctx.device)



def _discounted_sum(r: list[float], gamma: float) -> float:
    """Σ_t γ^t r_t in float64, the definition, not the solution code."""
    total, discount = 0.0, 1.0
    for x in r:
        total += discount * x
        discount *= gamma
    return total


# --------------------------------------------------------------------------- recognising the classic mistakes
def _backward(x: list[float], rate: float) -> torch.Tensor:
    """y_t = x_t + rate · y_{t+1}, backwards from y_{T-1} = x_{T-1} (float64)."""
    out, running = [0.0] * len(x), 0.0
    for t in reversed(range(len(x))):
        running = x[t] + rate * running
        out[t] = running
    return torch.tensor(out, dtype=torch.float64)


def _forward(x: list[float], rate: float) -> torch.Tensor:
    """y_t = x_t + rate · y_{t-1}: the recursion run in the wrong direction."""
    out, running = [], 0.0
    for value in x:
        running = value + rate * running
        out.append(running)
    return torch.tensor(out, dtype=torch.float64)


def _gae_of(r: torch.Tensor, v: torch.Tensor, gamma: float, lam: float, terminated: bool, *,
            forward: bool = False) -> torch.Tensor:
    deltas = _deltas(r, v, gamma, terminated).tolist()
    return (_forward if forward else _backward)(deltas, gamma * lam)


def _return_mistakes(r: torch.Tensor, gamma: float):
    x = r.to(torch.float64).tolist()
    T = len(x)
    return [("undiscounted", torch.full((T,), sum(x), dtype=torch.float64),
             "the return is discounted: Σ_t γ^t r_t, each reward weighted by γ to the power of its step"),
            ("return-is-reward-to-go", _backward(x, gamma),
             "this is the reward-to-go (a different number at every step); the full return is one number, "
             "Σ_t γ^t r_t from the start of the trajectory, repeated at every step"),
            ("discounted-from-one", torch.full((T,), gamma * _discounted_sum(x, gamma), dtype=torch.float64),
             "the first reward is not discounted: γ^0 = 1 (the discount's power starts at 0)")]


EXCLUDES_CURRENT = "Q̂_t includes r_t itself (the action a_t earned it): Q̂_t = r_t + γ Q̂_{t+1}"


def _reward_to_go_mistakes(r: torch.Tensor, gamma: float):
    x = r.to(torch.float64).tolist()
    T = len(x)
    rtg = _backward(x, gamma)
    return [("reward-to-go-forward", _forward(x, gamma),
             "your sums run forwards (Q̂_t = r_t + γ Q̂_{t-1}): reward-to-go sums the rewards from t to the END, "
             "so the recursion runs backwards, from Q̂_{T-1} = r_{T-1}"),
            ("undiscounted", _backward(x, 1.0), "reward-to-go is discounted: Q̂_t = r_t + γ Q̂_{t+1}"),
            ("reward-to-go-discounted-from-start", _backward([gamma ** t * v for t, v in enumerate(x)], 1.0),
             "the discount restarts at t: Q̂_t = Σ_{t'≥t} γ^{t'-t} r_{t'}, not γ^{t'}"),
            ("excludes-current-reward", torch.cat([rtg[1:], rtg.new_zeros(min(T, 1))]), EXCLUDES_CURRENT),
            ("excludes-current-reward", rtg - torch.tensor(x, dtype=torch.float64), EXCLUDES_CURRENT),
            ("full-return-at-every-step", torch.full((T,), float(rtg[0]) if T else 0.0, dtype=torch.float64),
             "causality: the action at t cannot change rewards before t, so Q̂_t sums only the rewards from t on"),
            ("reward-to-go-reversed", rtg.flip(0),
             "your values are right but in reverse time order: a recursion that runs backwards from T-1 must "
             "store Q̂_t at index t (or reverse what it collected)")]


def _flipped_deltas(r: torch.Tensor, v: torch.Tensor, gamma: float, terminated: bool) -> torch.Tensor:
    """r_t + γ V(s_t) − V(s_{t+1}): the TD error with the two values swapped (V(s_T) = 0 when terminated)."""
    v64 = v.to(torch.float64)
    next_v = v64[1:].clone()
    if terminated:
        next_v[-1] = 0.0
    return r.to(torch.float64) + gamma * v64[:-1] - next_v


def _gae_mistakes(r: torch.Tensor, v: torch.Tensor, gamma: float, lam: float, terminated: bool):
    v64 = v.to(torch.float64)
    return [("truncation-as-terminal", _gae_of(r, v, gamma, lam, True),
             "a time limit is not a terminal state: after a truncation V(s_T) = values[T] is bootstrapped; "
             "only a terminated episode has V(s_T) = 0"),
            ("bootstraps-past-terminal", _gae_of(r, v, gamma, lam, False),
             "a terminated episode has no future: V(s_T) counts as 0 there, whatever values[T] holds"),
            ("lambda-ignored", _gae_of(r, v, gamma, 1.0, terminated),
             "this is the λ = 1 estimator (reward-to-go minus V); GAE weighs the k-step advantages by λ: "
             "A_t = δ_t + γλ A_{t+1}"),
            ("gae-forward-recursion", _gae_of(r, v, gamma, lam, terminated, forward=True),
             "the recursion runs backwards: A_t = δ_t + γλ A_{t+1}, from A_{T-1} = δ_{T-1}"),
            ("lambda-return-not-advantage", _gae_of(r, v, gamma, lam, terminated) + v64[:-1],
             "this is A_t + V(s_t), the λ-return (the critic's target); the advantage is what the action added "
             "over the baseline V(s_t): subtract it"),
            ("delta-sign-flipped", _backward(_flipped_deltas(r, v, gamma, terminated).tolist(), gamma * lam),
             "the TD error is δ_t = r_t + γ V(s_{t+1}) − V(s_t): the next state's value is added, the current "
             "state's subtracted"),
            ("delta-baseline-off-by-one", _backward((_deltas(r, v, gamma, terminated) + v64[:-1] - v64[1:]).tolist(),
                                                    gamma * lam),
             "the TD error's baseline is the value of the state the action was taken in: "
             "δ_t = r_t + γ V(s_{t+1}) − V(s_t), not − V(s_{t+1})")]


# --------------------------------------------------------------------------- probes (autograder.hangs)
# Each function's first example: every estimator problem reaches these through the student's policy gradient.
@probe(MODULE, "discounted_return")
def probe_discounted_return():
    return (_tensor([1.0, 2.0, 3.0], "float64"), 0.0), {}


@probe(MODULE, "discounted_reward_to_go")
def probe_discounted_reward_to_go():
    return (_tensor([2.0, 1.0], "float64"), 0.5), {}


@probe(MODULE, "generalized_advantages")
def probe_generalized_advantages():
    return (_tensor([1.0], "float64"), _tensor([0.5, 2.0], "float64"), 1.0, 1.0, False), {}


# --------------------------------------------------------------------------- discounted_return
@problem("hw2", "discounted_return", points=2, stubs=[(MODULE, "discounted_return")], hint=RETURN_HINT)
def check_discounted_return(ctx):
    """discounted_return: Σ_t γ^t r_t at every step, dtype and device kept, input untouched."""

    @GRADER_SETTINGS
    @given(rewards=rewards(), gamma=GAMMA, dtype=DTYPE)
    @example(rewards=[1.0, 2.0, 3.0], gamma=0.0, dtype="float64")  # short first: a failure here reads at a glance
    @example(rewards=long_rewards(1000), gamma=0.99, dtype="float32")
    def prop(rewards, gamma, dtype):
        r = _tensor(rewards, dtype)
        got = _call(ctx, "discounted_return", (r, gamma), len(rewards), dtype)
        want = torch.full((len(rewards),), _discounted_sum(r.tolist(), gamma), dtype=torch.float64)
        atol = sum_tolerance(r.dtype, discounted_magnitudes(r, gamma), len(rewards))
        try:
            assert_close(got, want, name="discounted_return", atol=atol)
        except Mismatch as err:
            recognise(err, got, want, atol, _return_mistakes(r, gamma))
            raise

    prop()


# --------------------------------------------------------------------------- reward-to-go
@problem("hw2", "reward_to_go", points=3, stubs=[(MODULE, "discounted_reward_to_go")], hint=RTG_HINT)
def check_reward_to_go(ctx):
    """discounted_reward_to_go: Q̂_{T-1} = r_{T-1} and Q̂_t = r_t + γ Q̂_{t+1} at every step."""

    @GRADER_SETTINGS
    @given(rewards=rewards(), gamma=GAMMA, dtype=DTYPE)
    # short first: a failure here reads at a glance, and each classic mistake gives a different answer on it
    @example(rewards=[2.0, 1.0], gamma=0.5, dtype="float64")
    @example(rewards=long_rewards(1500), gamma=0.99, dtype="float32")
    @example(rewards=long_rewards(1000), gamma=1.0, dtype="float64")
    @example(rewards=[1.0, -2.0, 3.0], gamma=0.0, dtype="float32")  # γ = 0: Q̂_t = r_t, in a tensor of its own
    def prop(rewards, gamma, dtype):
        r = _tensor(rewards, dtype)
        got = _call(ctx, "discounted_reward_to_go", (r, gamma), len(rewards), dtype)
        g, r64 = got.to(torch.float64), r.to(torch.float64)
        # The recursion's right-hand side, built from the student's own Q̂_{t+1}: it pins Q̂ down uniquely.
        # Its tolerance is twice a sum's: both Q̂_t and Q̂_{t+1} carry their own rounding.
        rhs = r64 + gamma * torch.cat([g[1:], g.new_zeros(1)])
        atol = 2 * sum_tolerance(r.dtype, discounted_magnitudes(r, gamma, per_step=True), len(rewards))
        try:
            assert_close(g, rhs, name="discounted_reward_to_go", label="step",
                         expected_is="r_t + γ·Q̂_{t+1}, with your Q̂_{t+1}", atol=atol)
        except Mismatch as err:
            recognise(err, g, _backward(r64.tolist(), gamma), atol, _reward_to_go_mistakes(r, gamma))
            raise
        if gamma == 1.0:
            assert_close(g[:1], r64.sum().reshape(1), name="discounted_reward_to_go (Q̂_0 at γ = 1)", atol=atol[:1])

    prop()


# --------------------------------------------------------------------------- GAE
def _gae_call(ctx, ep, gamma, lam, dtype):
    r, v = _tensor(ep["rewards"], dtype), _tensor(ep["values"], dtype)
    got = _call(ctx, "generalized_advantages", (r, v, gamma, lam, ep["terminated"]), len(ep["rewards"]), dtype)
    return r, v, got


def _delta_magnitudes(r: torch.Tensor, v: torch.Tensor, gamma: float) -> torch.Tensor:
    """|r_t| + γ|V(s_{t+1})| + |V(s_t)|: the magnitudes each δ_t adds up."""
    v64 = v.to(torch.float64).abs()
    return r.to(torch.float64).abs() + gamma * v64[1:] + v64[:-1]


def _deltas(r: torch.Tensor, v: torch.Tensor, gamma: float, terminated: bool) -> torch.Tensor:
    """δ_t = r_t + γ V(s_{t+1}) − V(s_t), with V(s_T) = 0 when terminated (float64)."""
    r64, v64 = r.to(torch.float64), v.to(torch.float64)
    next_v = v64[1:].clone()
    if terminated:
        next_v[-1] = 0.0
    return r64 + gamma * next_v - v64[:-1]


@problem("hw2", "gae", points=4, stubs=[(MODULE, "generalized_advantages")], hint=GAE_HINT)
def check_gae(ctx):
    """generalized_advantages: A_t = δ_t + γλ A_{t+1}; λ = 0 gives δ; λ = 1 gives Q̂ − V plus the bootstrap."""

    @GRADER_SETTINGS
    @given(ep=episodes(), gamma=GAMMA, lam=LAMBDA, dtype=DTYPE)
    # short first; V(s_0) ≠ 0 and V(s_0) ≠ V(s_1), so that the classic mistakes give different answers
    @example(ep={"rewards": [1.0], "values": [0.5, 2.0], "terminated": False}, gamma=1.0, lam=1.0, dtype="float64")
    @example(ep={"rewards": [1.0], "values": [0.5, 2.0], "terminated": True}, gamma=1.0, lam=1.0, dtype="float64")
    @example(ep={"rewards": [1.0, 2.0, -1.0], "values": [0.5, -1.0, 2.0, 1.0], "terminated": False}, gamma=0.9,
             lam=0.8, dtype="float64")
    @example(ep=long_episode(1200, terminated=False), gamma=0.99, lam=0.95, dtype="float32")
    def prop(ep, gamma, lam, dtype):
        r, v, got = _gae_call(ctx, ep, gamma, lam, dtype)
        g = got.to(torch.float64)
        deltas = _deltas(r, v, gamma, ep["terminated"])
        atol = 2 * sum_tolerance(r.dtype, discounted_magnitudes(_delta_magnitudes(r, v, gamma), gamma * lam, per_step=True),
                                 len(r))
        if not ep["terminated"] and len(r) == 1:
            note("the episode was truncated, so V(s_T) = values[T] is bootstrapped, not 0")
        rhs = deltas + gamma * lam * torch.cat([g[1:], g.new_zeros(1)])
        try:
            assert_close(g, rhs, name="generalized_advantages", label="step", atol=atol,
                         expected_is="δ_t + γλ·A_{t+1}, with your A_{t+1}")
        except Mismatch as err:
            recognise(err, g, _gae_of(r, v, gamma, lam, ep["terminated"]), atol,
                        _gae_mistakes(r, v, gamma, lam, ep["terminated"]))
            raise
        if lam == 0.0:
            assert_close(g, deltas, name="generalized_advantages at λ = 0 (must equal δ_t)", label="step", atol=atol)

    prop()


@problem("hw2", "gae_lambda_one", points=1, stubs=[(MODULE, "generalized_advantages")], hint=GAE_HINT)
def check_gae_lambda_one(ctx):
    """generalized_advantages at λ = 1: Q̂_t − V(s_t) + γ^{T-t} V(s_T) (no bootstrap when terminated)."""

    @GRADER_SETTINGS
    @given(ep=episodes(max_len=60), gamma=GAMMA, dtype=DTYPE)
    def prop(ep, gamma, dtype):
        r, v, got = _gae_call(ctx, ep, gamma, 1.0, dtype)
        T = len(r)
        r64, v64 = r.to(torch.float64), v.to(torch.float64)
        bootstrap = 0.0 if ep["terminated"] else float(v64[-1])
        want = torch.tensor([_discounted_sum(r64[t:].tolist(), gamma) + gamma ** (T - t) * bootstrap - float(v64[t])
                             for t in range(T)], dtype=torch.float64)
        assert_close(got, want, name="generalized_advantages at λ = 1", label="step",
                     atol=sum_tolerance(r.dtype, discounted_magnitudes(_delta_magnitudes(r, v, gamma), gamma, per_step=True), T))

    prop()


# --------------------------------------------------------------------------- hidden: against the reference
@problem("hw2", "returns_match_reference", points=2, needs_reference=True,
         stubs=[(MODULE, "discounted_return"), (MODULE, "discounted_reward_to_go"),
                (MODULE, "generalized_advantages")],
         hint="compare your three functions with the formulas in their docstrings on long inputs")
def check_returns_match_reference(ctx):
    """All three return functions equal the reference solution (hidden test)."""

    @GRADER_SETTINGS
    @given(ep=episodes(), gamma=GAMMA, lam=LAMBDA, dtype=DTYPE)
    @example(ep={"rewards": [1.0, 2.0, -1.0], "values": [0.5, -1.0, 2.0, 1.0], "terminated": True}, gamma=0.9,
             lam=0.8, dtype="float64")
    @example(ep=long_episode(2000, terminated=True), gamma=0.999, lam=0.97, dtype="float32")
    def prop(ep, gamma, lam, dtype):
        r, v = _tensor(ep["rewards"], dtype), _tensor(ep["values"], dtype)
        n = len(r)
        # One tolerance per step for the sums from t on: a mistake in the last steps of a long episode is not
        # hidden by the size of the whole sum (a GAE that bootstraps past a terminal state differs by γ·V there).
        cases = [("discounted_return", (r, gamma), sum_tolerance(r.dtype, discounted_magnitudes(r, gamma), n)),
                 ("discounted_reward_to_go", (r, gamma),
                  sum_tolerance(r.dtype, discounted_magnitudes(r, gamma, per_step=True), n)),
                 ("generalized_advantages", (r, v, gamma, lam, ep["terminated"]),
                  sum_tolerance(r.dtype, discounted_magnitudes(_delta_magnitudes(r, v, gamma), gamma, per_step=True),
                                n))]
        mistakes = {"discounted_return": lambda: _return_mistakes(r, gamma),
                    "discounted_reward_to_go": lambda: _reward_to_go_mistakes(r, gamma),
                    "generalized_advantages": lambda: _gae_mistakes(r, v, gamma, lam, ep["terminated"])}
        for function, args, atol in cases:
            got = expect_tensor(ctx.student(MODULE, function)(*args), name=function, shape=[n])
            want = ctx.ref(MODULE, function)(*[a.to(torch.float64) if isinstance(a, torch.Tensor) else a
                                               for a in args])
            try:
                assert_close(got, want, name=function, label="step", atol=atol)
            except Mismatch as err:
                recognise(err, got, want, atol, mistakes[function]())
                raise

    prop()


__all__ = ["Mismatch"]
