"""hw1, the training step: ``train_policy`` (hw1/imitation.py), graded by what it does.

The judge builds a small policy, buffer and configuration and sends them as
data (``autograder.child_tasks``); the child runs the student's ``train_policy``
on objects built from them. Public: one finite float per step, the policy
trained, each step as the contract fixes it, from what the grader's optimizer
and buffer recorded (``autograder.train_steps``). Hidden: the same final
parameters and losses as the reference's ``train_policy`` replayed here on the
same objects and generator seed.
"""

from __future__ import annotations

import math

import torch
from hypothesis import example, note
from hypothesis import strategies as st

from autograder.compare import Mismatch, describe, load_checked_parameters, within
from autograder.problem import grader_settings, problem
from autograder.properties import given
from autograder.strategies import seeded
from autograder.train_steps import check_train_steps

MODULE = "hw1.imitation"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "loss-not-float": "train_policy logs tensors instead of Python floats",
    "parameters-unchanged": "train_policy leaves the policy's parameters unchanged (no step taken)",
    "wrong-loss-count": "train_policy returns another number of losses than optimizer steps",
}

# The judge builds a small policy, a buffer and a configuration, sends them as data, and the child runs the
# student's train_policy on objects built from them (autograder.child_tasks.train_policy_call), which record what
# happens to them. Public: every step as the contract fixes it, checked from those records without the reference
# (autograder.train_steps: the given optimizer and its settings, a fresh minibatch with the given generator, the
# gradient of its bc_loss, the loss logged before the step). Hidden: because ReplayBuffer.sample(n, generator) is
# deterministic, the reference's train_policy run in the judge on the same objects gives the same minibatches, and
# the parameters after the last step must agree within the tolerance below.
TRAIN_STEP_HINT = ("train_policy takes exactly cfg.train_steps_per_iter optimizer steps; before each one it draws "
                   "a FRESH minibatch of cfg.train_batch_size pairs with the buffer's own sampler and the GIVEN "
                   "generator (never torch's global RNG, never the whole buffer), computes your bc_loss on it, "
                   "clears the old gradients, backpropagates and steps once; it returns one Python number per step "
                   "(the loss's value, detached from the graph)")
TRAIN_POLICY_EXAMPLE = {"kind": "gaussian_mlp", "obs_dim": 2, "act_dim": 1, "n_actions": 0, "hidden": (8,),
                        "buffer_size": 12, "train_batch_size": 4, "batch_size": 9, "steps": 5, "learning_rate": 5e-3,
                        "init_seed": 3, "data_seed": 4, "generator_seed": 5, "global_seed": 1005}
# Parameters after a few Adam steps: float rounding (float64 inside bc_loss, another summation order) moves them
# by ~1e-7; every mistake above moves some of them by about the learning rate (Adam's step size). Measured over
# 300 drawn cases: a per-sample float64 bc_loss stays within 0.06% of the tolerance; a minibatch drawn once, the
# whole buffer, torch's global RNG, cfg.batch_size for the minibatch or two optimizer steps per minibatch each
# exceed it at least 2.5-fold in 95% of the (case, mistake) pairs, the rest being cases where the mistake happens
# to draw the same minibatches (a buffer of 2 pairs, say): other drawn cases catch it.
TRAIN_PARAM_ATOL, TRAIN_PARAM_RTOL = 2e-4, 1e-3


@st.composite
def train_policy_cases(draw) -> dict:
    kind = draw(st.sampled_from(["gaussian_mlp", "categorical_mlp"]))
    train_batch_size = draw(st.integers(1, 8))
    return {"kind": kind, "obs_dim": draw(st.integers(1, 4)),
            "act_dim": draw(st.integers(1, 2)) if kind == "gaussian_mlp" else 0,
            "n_actions": draw(st.integers(2, 4)) if kind == "categorical_mlp" else 0,
            "hidden": draw(st.sampled_from([(8,), (4, 4)])),
            "buffer_size": draw(st.integers(2, 30)), "train_batch_size": train_batch_size,
            "batch_size": train_batch_size + draw(st.integers(1, 20)), "steps": draw(st.integers(2, 8)),
            "learning_rate": draw(st.sampled_from([1e-3, 5e-3, 2e-2])),
            "init_seed": draw(st.integers(0, 10_000)), "data_seed": draw(st.integers(0, 10_000)),
            "generator_seed": draw(st.integers(1, 10_000)), "global_seed": draw(st.integers(10_001, 20_000))}


def build_train_policy_case(case: dict) -> tuple:
    """(policy_spec, observations, actions, config, generator_seed, global_seed): what the child task receives."""
    from autograder.child_tasks import _parameters
    from rlkit.policies import CategoricalMLPPolicy, GaussianMLPPolicy

    obs_dim, hidden, n = case["obs_dim"], tuple(case["hidden"]), case["buffer_size"]
    if case["kind"] == "categorical_mlp":
        policy = seeded(case["init_seed"], lambda: CategoricalMLPPolicy(obs_dim, case["n_actions"], hidden))
    else:
        policy = seeded(case["init_seed"], lambda: GaussianMLPPolicy(obs_dim, case["act_dim"], hidden))
    gen = torch.Generator().manual_seed(case["data_seed"])
    observations = torch.randn(n, obs_dim, generator=gen)
    if case["kind"] == "categorical_mlp":
        actions = torch.randint(case["n_actions"], (n,), generator=gen)
    else:
        actions = 0.5 * torch.randn(n, case["act_dim"], generator=gen)
    spec = {"kind": case["kind"], "obs_dim": obs_dim, "act_dim": case["act_dim"], "n_actions": case["n_actions"],
            "hidden": list(hidden), "parameters": _parameters(policy)}
    config = {"train_steps_per_iter": case["steps"], "train_batch_size": case["train_batch_size"],
              "batch_size": case["batch_size"], "learning_rate": case["learning_rate"],
              "max_replay_buffer_size": max(n, 1)}
    return spec, observations, actions, config, case["generator_seed"], case["global_seed"]


def _checked_losses(losses, steps: int) -> list:
    if not isinstance(losses, (list, tuple)):
        raise Mismatch(f"train_policy should return a list of {steps} losses (one per step), got {describe(losses)}",
                       diagnosis="wrong-type")
    if len(losses) != steps:
        raise Mismatch(f"train_policy returned {len(losses)} losses, expected cfg.train_steps_per_iter = {steps} "
                       "(one per optimizer step)", diagnosis="wrong-loss-count")
    return list(losses)


def _trained(reply, spec: dict) -> dict:
    """The child's final parameters, checked against the policy the judge built (names, shapes, finite)."""
    from autograder.child_tasks import build_policy

    if not isinstance(reply, dict):
        raise Mismatch("train_policy's run returned no result", "did your code replace the given objects?", "no-result")
    return load_checked_parameters(build_policy(spec), reply.get("policy"), TRAIN_STEP_HINT).state_dict()


def check_train_run(case: dict, args: tuple, reply) -> list:
    """The public properties of one train_policy run (the losses it returned): one finite Python float per
    step, the policy trained, and every step as the contract fixes it (``autograder.train_steps``)."""
    losses = _checked_losses(reply.get("losses") if isinstance(reply, dict) else None, case["steps"])
    for k, loss in enumerate(losses):
        if not isinstance(loss, float) or isinstance(loss, bool):
            what = ("a tensor" if isinstance(loss, torch.Tensor) else type(loss).__name__)
            raise Mismatch(f"train_policy: losses[{k}] is {what}, not a Python float: the log keeps numbers; a "
                           "tensor kept in the list also keeps its whole graph alive", diagnosis="loss-not-float")
        if not math.isfinite(loss):
            raise Mismatch(f"train_policy: losses[{k}] = {loss} is not finite", diagnosis="non-finite")
    params = _trained(reply, args[0])
    if all(torch.equal(params[name], value) for name, value in args[0]["parameters"].items()):
        raise Mismatch(f"train_policy ran {case['steps']} steps but the policy's parameters did not change: "
                       "no optimizer step moved them (is a step taken, on a loss computed with the given "
                       "policy, by the given optimizer?)", diagnosis="parameters-unchanged")
    check_train_steps(reply, args, losses, TRAIN_STEP_HINT)
    return losses


@problem("hw1", "train_policy_steps", points=2, stubs=[(MODULE, "bc_loss"), (MODULE, "train_policy")],
         hint=TRAIN_STEP_HINT, seconds=60)
def check_train_policy_steps(ctx):
    """train_policy step by step: the given optimizer, a fresh minibatch, its bc_loss gradient, the loss before."""
    run = ctx.task("train_policy_call", MODULE)

    @grader_settings(max_examples=6)
    @given(case=train_policy_cases())
    @example(case=TRAIN_POLICY_EXAMPLE)
    def prop(case):
        args = build_train_policy_case(case)
        check_train_run(case, args, run(*args))

    prop()


def _reference_module(ctx, function: str):
    import inspect

    return inspect.getmodule(ctx.ref(MODULE, function))


def _params_close(got: dict, want: dict) -> tuple[str, float] | None:
    """The first parameter (name, largest difference) outside the tolerance, or None."""
    for name, w in want.items():
        g, w = got[name].to(torch.float64), w.to(torch.float64)
        if not within(g, w, TRAIN_PARAM_ATOL + TRAIN_PARAM_RTOL * w.abs()):
            return name, float((g - w).abs().max())
    return None


@problem("hw1", "train_policy_matches_reference", points=3, needs_reference=True,
         stubs=[(MODULE, "bc_loss"), (MODULE, "train_policy")], hint=TRAIN_STEP_HINT, seconds=60)
def check_train_policy_matches_reference(ctx):
    """train_policy takes the reference's steps: the same minibatches (the given generator), one Adam step each."""
    from autograder.child_tasks import train_policy_call

    run = ctx.task("train_policy_call", MODULE)
    reference = _reference_module(ctx, "train_policy")

    @grader_settings(max_examples=6)
    @given(case=train_policy_cases())
    @example(case=TRAIN_POLICY_EXAMPLE)
    def prop(case):
        args = build_train_policy_case(case)
        reply = run(*args)
        losses = check_train_run(case, args, reply)  # the public properties first: they name the mistake
        with torch.random.fork_rng(devices=[]):
            want_reply = train_policy_call(reference, *args)
        off = _params_close(_trained(reply, args[0]), want_reply["policy"])
        if off is not None:
            name, diff = off
            note(f"steps={case['steps']}, buffer of {case['buffer_size']} pairs, "
                 f"train_batch_size={case['train_batch_size']}, batch_size={case['batch_size']}")
            raise Mismatch(f"train_policy: after {case['steps']} steps the parameter {name} differs from the "
                           f"reference's by up to {diff:.3g} (tolerance {TRAIN_PARAM_ATOL:g} + "
                           f"{TRAIN_PARAM_RTOL:g}·|θ|), though every step followed the gradient of its minibatch's "
                           "bc_loss: the update itself is not one step of the given optimizer",
                           diagnosis="differs-from-reference")
        for k, (g, w) in enumerate(zip(losses, want_reply["losses"])):
            if not within(g, w, 1e-3 * (1.0 + abs(w))):
                raise Mismatch(f"train_policy: losses[{k}] is {describe(g)}, expected the loss of step {k}'s "
                               f"minibatch before that step, {w:.6g}", diagnosis="wrong-loss-logged")

    prop()
