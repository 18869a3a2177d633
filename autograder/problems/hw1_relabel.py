"""hw1, DAgger's relabelling: ``dagger_relabel`` (hw1/imitation.py).

A linear layer is the expert (its parameters require grad, as a student's own
expert network's would) on Hypothesis-drawn trajectories; the expected labels
come from the definition, actions = expert(observations), computed here in the
judge.
"""

from __future__ import annotations

import torch
from hypothesis import example
from hypothesis import strategies as st

from autograder.compare import (Mismatch, assert_close, describe, expect_flag, expect_tensor, expect_trajectory, fmt,
                                within)
from autograder.problem import grader_settings, problem
from autograder.properties import given
from autograder.strategies import FLOAT, seeded
from rlkit.trajectory import Trajectory

MODULE = "hw1.imitation"
# The mistakes only this module names (autograder.diagnoses holds the grader's own ids).
DIAGNOSES = {
    "learner-actions-kept": "dagger_relabel keeps the learner's actions instead of the expert's labels",
    "expert-label-off-by-one": "dagger_relabel labels o_t with the expert's action in a neighbouring observation",
    "observations-changed": "dagger_relabel changes the learner's observations",
    "rewards-changed": "dagger_relabel changes the rewards",
    "terminated-changed": "dagger_relabel changes terminated",
}

RELABEL_HINT = ("DAgger keeps the learner's observations and replaces its actions by the expert's action in the "
                "same observation: actions = expert(observations)")


@st.composite
def relabel_cases(draw) -> dict:
    obs_dim = draw(st.integers(1, 4))
    act_dim = draw(st.integers(1, 3))
    trajs = []
    for _ in range(draw(st.integers(1, 3))):
        T = draw(st.integers(1, 12))
        rest = draw(st.lists(st.lists(FLOAT, min_size=obs_dim - 1, max_size=obs_dim - 1), min_size=T, max_size=T))
        trajs.append({
            "observations": [[float(t)] + row for t, row in enumerate(rest)],
            "actions": draw(st.lists(st.lists(FLOAT, min_size=act_dim, max_size=act_dim), min_size=T, max_size=T)),
            "rewards": draw(st.lists(FLOAT, min_size=T, max_size=T)),
            "terminated": draw(st.booleans()),
        })
    return {"act_dim": act_dim, "trajectories": trajs, "seed": draw(st.integers(0, 1000))}


def build_relabel_case(case: dict):
    """(expert, trajectories). The expert is an ordinary linear layer whose parameters require grad, as a
    student's own expert network would be: labels computed with autograd on carry its graph."""
    trajs = [Trajectory(observations=torch.tensor(t["observations"], dtype=torch.float32),
                        actions=torch.tensor(t["actions"], dtype=torch.float32),
                        rewards=torch.tensor(t["rewards"], dtype=torch.float32), terminated=t["terminated"])
             for t in case["trajectories"]]
    obs_dim = trajs[0].observations.shape[1]

    def build():
        weight = torch.randn(case["act_dim"], obs_dim)
        weight[:, 0] = 1.0 + weight[:, 0].abs()  # the step counter always moves the expert's action
        expert = torch.nn.Linear(obs_dim, case["act_dim"])
        with torch.no_grad():
            expert.weight.copy_(weight)
            expert.bias.copy_(torch.randn(case["act_dim"]))
        return expert

    return seeded(case["seed"], build), trajs


RELABEL_EXAMPLE = {"act_dim": 1, "seed": 0, "trajectories": [
    {"observations": [[0.0, 1.0], [1.0, -1.0], [2.0, 0.5]], "actions": [[0.0], [0.0], [0.0]],
     "rewards": [1.0, 2.0, 3.0], "terminated": False}]}


@problem("hw1", "dagger_relabel", points=3, stubs=[(MODULE, "dagger_relabel")], hint=RELABEL_HINT)
def check_dagger_relabel(ctx):
    """dagger_relabel: the same observations, rewards and flags; actions = expert(o_t) of the same step."""

    @grader_settings(max_examples=25)
    @given(case=relabel_cases())
    @example(case=RELABEL_EXAMPLE)
    def prop(case):
        expert, trajs = build_relabel_case(case)
        reply = ctx.student(MODULE, "dagger_relabel").call(expert, trajs)
        value = reply["value"]
        if not isinstance(value, (list, tuple)) or len(value) != len(trajs):
            raise Mismatch(f"dagger_relabel should return a list of {len(trajs)} Trajectory (one per input), "
                           f"got {describe(value)}", diagnosis="wrong-type")
        for k, (got, old) in enumerate(zip(value, trajs)):
            name = f"dagger_relabel: trajectory {k}"
            got = expect_trajectory(got, name)
            T = len(old)
            obs = expect_tensor(got.observations, name=f"{name}: observations", shape=list(old.observations.shape))
            assert_close(obs, old.observations, name=f"{name}: observations (must be the learner's, unchanged)",
                         atol=1e-6, label="step, dim", diagnosis="observations-changed")
            labels = expect_tensor(got.actions, name=f"{name}: actions", shape=list(old.actions.shape))
            with torch.no_grad():
                want = expert(old.observations)
            if not within(labels, want, 1e-4):
                if within(labels, old.actions, 1e-6):
                    raise Mismatch(f"{name}: the actions are still the learner's actions {fmt(old.actions)}; "
                                   f"expected the expert's labels {fmt(want)}", diagnosis="learner-actions-kept")
                if T > 1 and within(labels[:-1], want[1:], 1e-4):
                    raise Mismatch(f"{name}: actions[t] is the expert's action in o_(t+1), the next observation; "
                                   f"expected its action in o_t: {fmt(want)}, got {fmt(labels)}",
                                   diagnosis="expert-label-off-by-one")
                if T > 1 and within(labels[1:], want[:-1], 1e-4):
                    raise Mismatch(f"{name}: actions[t] is the expert's action in o_(t-1), the previous "
                                   f"observation; expected its action in o_t: {fmt(want)}, got {fmt(labels)}",
                                   diagnosis="expert-label-off-by-one")
            assert_close(labels, want, name=f"{name}: actions (expected expert(observations))", atol=1e-4,
                         label="step, dim")
            rewards = expect_tensor(got.rewards, name=f"{name}: rewards", shape=[T])
            assert_close(rewards, old.rewards, name=f"{name}: rewards (unchanged)", atol=1e-6, label="step",
                         diagnosis="rewards-changed")
            if expect_flag(got.terminated, name) != old.terminated:
                raise Mismatch(f"{name}: terminated changed from {old.terminated} to {got.terminated}",
                               diagnosis="terminated-changed")

    prop()
