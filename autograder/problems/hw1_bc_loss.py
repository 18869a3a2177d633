"""hw1, behavioral cloning's loss: ``bc_loss`` and its gradient (hw1/imitation.py).

The student's ``bc_loss`` runs on Hypothesis-drawn policies and batches of
(observation, action) pairs; the expected value, −(1/B) Σ_i log π(a_i|o_i), and
its gradient with respect to the policy's parameters come from the definition,
computed here in the judge.
"""

from __future__ import annotations

import torch
from hypothesis import example, note
from hypothesis import strategies as st

from autograder.compare import Mismatch, assert_close, expect_tensor, fmt, tolerance, within
from autograder.problem import GRADER_SETTINGS, grader_settings, problem
from autograder.properties import given
from autograder.strategies import FLOAT, seeded

MODULE = "hw1.imitation"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "summed-not-averaged": "bc_loss sums over the batch instead of taking the mean",
    "probability-not-log": "bc_loss uses the probability π(a|o) instead of its log",
    "averaged-over-action-dimensions": "bc_loss averages over the action's dimensions too (a log-likelihood "
                                       "sums them)",
    "parameter-not-in-loss": "a policy parameter gets no gradient from bc_loss (the loss skips part of the policy)",
}

BC_HINT = ("the behavioral-cloning loss is the MEAN over the batch of the NEGATIVE LOG-likelihood of the "
           "expert's actions, −(1/B) Σ_i log π_θ(a_i|o_i): calling the policy gives a distribution over actions, "
           "and a distribution can score an action's log-probability")
GRAD_HINT = ("∂ bc_loss / ∂θ must be the gradient of −(1/B) Σ_i log π_θ(a_i|o_i) for every parameter: return the "
             "loss tensor itself, computed from the policy's distribution and still attached to the graph (no "
             ".item(), .detach(), torch.no_grad() or numpy on the way)")
PARAMETER_NOT_IN_LOSS_HINT = ("the loss must be the negative log-likelihood of the expert's actions under the "
                              "policy's whole distribution: a Gaussian's log-density depends on its std (log σ, and "
                              "the squared error scaled by 1/σ²), so every parameter, log_std included, gets a "
                              "gradient; a loss of the mean action alone (a squared error) leaves log_std untrained")


@st.composite
def bc_batches(draw) -> dict:
    """A policy (kind, sizes, init seed) and a batch of (observation, action) pairs."""
    kind = draw(st.sampled_from(["gaussian_mlp", "linear_gaussian", "categorical_mlp"]))
    obs_dim = draw(st.integers(1, 4))
    batch = draw(st.integers(1, 24))
    obs = draw(st.lists(st.lists(FLOAT, min_size=obs_dim, max_size=obs_dim), min_size=batch, max_size=batch))
    case = {"kind": kind, "observations": obs, "seed": draw(st.integers(0, 1000))}
    if kind == "categorical_mlp":
        n = draw(st.integers(2, 5))
        case["n_actions"] = n
        case["actions"] = draw(st.lists(st.integers(0, n - 1), min_size=batch, max_size=batch))
    else:
        act_dim = draw(st.integers(1, 3))
        case["actions"] = draw(st.lists(st.lists(FLOAT, min_size=act_dim, max_size=act_dim),
                                        min_size=batch, max_size=batch))
        case["log_std"] = draw(st.sampled_from([-1.0, -0.5, 0.0, 0.5]))
    return case


def build_bc_case(case: dict):
    """(policy, observations, actions) as the student receives them (float32)."""
    from rlkit.policies import CategoricalMLPPolicy, GaussianMLPPolicy, LinearGaussianPolicy

    obs = torch.tensor(case["observations"], dtype=torch.float32)
    obs_dim = obs.shape[1]
    if case["kind"] == "categorical_mlp":
        policy = seeded(case["seed"], lambda: CategoricalMLPPolicy(obs_dim, case["n_actions"], (16,)))
        actions = torch.tensor(case["actions"], dtype=torch.long)
        return policy, obs, actions
    actions = torch.tensor(case["actions"], dtype=torch.float32)
    act_dim = actions.shape[1]
    if case["kind"] == "gaussian_mlp":
        policy = seeded(case["seed"], lambda: GaussianMLPPolicy(obs_dim, act_dim, (16,), log_std=case["log_std"]))
    else:
        def build():
            return LinearGaussianPolicy(torch.randn(act_dim, obs_dim), torch.randn(act_dim),
                                        torch.full((act_dim,), case["log_std"]))
        policy = seeded(case["seed"], build)
    return policy, obs, actions


def expected_bc_loss(policy, obs, actions) -> tuple[torch.Tensor, torch.Tensor]:
    """−(1/B) Σ log π(a_i|o_i) in float64, and the per-sample log-likelihoods."""
    import copy

    p64 = copy.deepcopy(policy).double()
    a = actions if actions.dtype == torch.long else actions.double()
    logp = p64(obs.double()).log_prob(a).detach()
    return -logp.mean(), logp


def _bc_tolerance(logp: torch.Tensor) -> float:
    return tolerance(torch.float32, float(logp.abs().mean()) + 1.0, 8 * logp.numel() + 64)


BC_EXAMPLE = {"kind": "gaussian_mlp", "observations": [[0.5, -1.0], [1.0, 2.0], [-2.0, 0.0], [0.0, 0.25]],
              "seed": 0, "actions": [[1.0], [-1.0], [0.5], [2.0]], "log_std": 0.0}
BC_EXAMPLE_DISCRETE = {"kind": "categorical_mlp", "observations": [[0.5], [1.0], [-2.0]], "seed": 1,
                       "n_actions": 3, "actions": [0, 2, 1]}


@problem("hw1", "bc_loss", points=3, stubs=[(MODULE, "bc_loss")], hint=BC_HINT)
def check_bc_loss(ctx):
    """bc_loss: −(1/B) Σ_i log π(a_i|o_i), a 0-dim tensor, for discrete and Gaussian policies."""

    @GRADER_SETTINGS
    @given(case=bc_batches())
    @example(case=BC_EXAMPLE)
    @example(case=BC_EXAMPLE_DISCRETE)
    def prop(case):
        policy, obs, actions = build_bc_case(case)
        reply = ctx.student(MODULE, "bc_loss").call(policy, obs, actions)
        got = expect_tensor(reply["value"], name="bc_loss", shape=[])
        want, logp = expected_bc_loss(policy, obs, actions)
        atol = _bc_tolerance(logp)
        if not within(got, want, atol):
            B = logp.numel()
            dims = actions.shape[-1] if actions.dim() == 2 and actions.is_floating_point() else 1
            candidates = {"the SUM over the batch instead of the mean": ("summed-not-averaged", -logp.sum(), B > 1),
                          "+mean log π (the sign is flipped: we minimise the NEGATIVE log-likelihood)":
                              ("sign-flipped", logp.mean(), True),
                          "the mean of −π(a|o), the probability instead of its log":
                              ("probability-not-log", -logp.exp().mean(), True),
                          "the mean over the action dimensions too (an action's log-likelihood is the SUM of its "
                          "dimensions' log-densities)": ("averaged-over-action-dimensions", want / dims, dims > 1)}
            for what, (diagnosis, value, telling) in candidates.items():
                if telling and within(got, value, atol):
                    note(f"your value equals {what}")
                    raise Mismatch(f"bc_loss is wrong: expected {fmt(want)}, got {fmt(got)}, which is {what}",
                                   diagnosis=diagnosis)
        assert_close(got, want, name="bc_loss", atol=atol)

    prop()


@problem("hw1", "bc_loss_gradient", points=2, stubs=[(MODULE, "bc_loss")], hint=GRAD_HINT)
def check_bc_loss_gradient(ctx):
    """bc_loss is differentiable: its gradient with respect to the policy's parameters is ∇θ of the mean NLL."""
    grads_of = ctx.task("bc_loss_gradients", MODULE)

    @grader_settings(max_examples=15)
    @given(case=bc_batches())
    @example(case=BC_EXAMPLE)
    @example(case=BC_EXAMPLE_DISCRETE)
    def prop(case):
        policy, obs, actions = build_bc_case(case)
        got = grads_of(policy, obs, actions)
        if isinstance(got, str):
            raise Mismatch(f"bc_loss has no gradient: {got}", diagnosis="no-gradient")
        names = [name for name, _ in policy.named_parameters()]
        want_policy = policy
        for p in want_policy.parameters():
            p.grad = None
        loss = -want_policy(obs).log_prob(actions).mean()
        want = torch.autograd.grad(loss, list(want_policy.parameters()))
        if not isinstance(got, list) or len(got) != len(want):
            raise Mismatch("bc_loss's gradient could not be computed (malformed reply)", diagnosis="malformed-reply")
        _, logp = expected_bc_loss(policy, obs, actions)
        for name, g, w in zip(names, got, want):
            if g is None and bool((w != 0).any()):
                raise Mismatch(f"bc_loss does not depend on the policy's parameter {name}: no gradient reaches it, "
                               f"but the negative log-likelihood's gradient there is {fmt(w)}",
                               PARAMETER_NOT_IN_LOSS_HINT, "parameter-not-in-loss")
            g = torch.zeros_like(w) if g is None else expect_tensor(g, name=f"∂ bc_loss / ∂ {name}",
                                                                    shape=list(w.shape))
            scale = float(w.abs().max()) + float(logp.abs().mean()) + 1.0
            assert_close(g, w, name=f"∂ bc_loss / ∂ {name}", atol=tolerance(torch.float32, scale, 64 * obs.numel()),
                         diagnosis="wrong-gradient")

    prop()
