"""A wrong type, shape or number in what a student's code returns is the student's failure, never the grader's.

Each submission is the reference with one function replaced, graded through the real runner and sandbox: the
problem must fail (score 0) with a message that names what came back, and never end in "internal grader error"
(which would stop the whole grade with exit status 3).
"""

from __future__ import annotations

import pytest

from autograder import render
from tests.conftest import grade_problem, make_submission

HW1 = "hw1/imitation.py"
HW2_RETURNS = "hw2/returns.py"
HW2_PG = "hw2/policy_gradient.py"

# The reference's sample_trajectory with one field of the returned Trajectory changed.
SAMPLE_WITH = """
import numpy as np
import torch

_reference_sample_trajectory = sample_trajectory

def sample_trajectory(env, policy, max_length, seed=None):
    traj = _reference_sample_trajectory(env, policy, max_length, seed)
    {change}
    return traj
"""

CASES = {
    # sample_trajectories counts its steps without len(), so the list reaches the judge, whose len() read
    # rewards.shape: "internal grader error: AttributeError" before the fields' types were checked.
    "trajectory_rewards_a_list": (HW1, """
        def sample_trajectories(env, policy, min_timesteps, max_length):
            trajs, steps = [], 0
            while steps < min_timesteps:
                traj = sample_trajectory(env, policy, max_length)
                steps += traj.observations.shape[0]
                traj.rewards = traj.rewards.tolist()
                trajs.append(traj)
            return trajs
        """, "sample_trajectories", ["sample_trajectories", "rewards is list"]),
    "trajectory_rewards_none": (HW1, SAMPLE_WITH.format(change="traj.rewards = None"), "sample_trajectory",
                                ["rewards is NoneType"]),
    "trajectory_actions_numpy": (HW1, SAMPLE_WITH.format(change="traj.actions = traj.actions.numpy()"),
                                 "sample_trajectory", ["actions is a numpy array"]),
    "trajectory_rewards_complex": (HW1, SAMPLE_WITH.format(change="traj.rewards = traj.rewards.to(torch.complex64)"),
                                   "sample_trajectory", ["rewards is a tensor of dtype complex64"]),
    "trajectory_field_deleted": (HW1, SAMPLE_WITH.format(change="del traj.rewards"), "sample_trajectory",
                                 ["rewards is a missing field"]),
    "own_trajectory_class": (HW1, """
        import dataclasses

        @dataclasses.dataclass
        class Trajectory:
            observations: object
            actions: object
            rewards: object
            terminated: bool
            behavior_log_probs: object = None
            final_observation: object = None

        _reference_sample_trajectory = sample_trajectory

        def sample_trajectory(env, policy, max_length, seed=None):
            t = _reference_sample_trajectory(env, policy, max_length, seed)
            return Trajectory(t.observations, t.actions, t.rewards, t.terminated)  # not rlkit's
        """, "sample_trajectory", ["hw1.imitation.Trajectory"]),
    # torch.allclose refuses two dtypes: float64 labels compared with the expert's float32 ones raised in the judge.
    "relabel_float64_learner_actions": (HW1, """
        import torch
        from rlkit.trajectory import Trajectory

        def dagger_relabel(expert, trajectories):
            return [Trajectory(observations=t.observations, actions=t.actions.double(), rewards=t.rewards,
                               terminated=t.terminated) for t in trajectories]
        """, "dagger_relabel", ["learner's actions"]),
    # float(10**400) overflows: the hidden check converted the logged loss without asking.
    "train_policy_logs_a_huge_int": (HW1, """
        _reference_train_policy = train_policy

        def train_policy(policy, optimizer, buffer, cfg, generator):
            return [10 ** 400 for _ in _reference_train_policy(policy, optimizer, buffer, cfg, generator)]
        """, "train_policy_matches_reference", ["losses[0] is int"]),
    # int(inf) overflows: the DAgger check counted env steps without asking.
    "dagger_logs_infinite_env_steps": (HW1, """
        _reference_loop = run_training_loop

        def run_training_loop(env, policy, expert, demonstrations, cfg, on_iteration=None):
            def report(row):
                on_iteration({**row, "env_steps": float("inf")})
            return _reference_loop(env, policy, expert, demonstrations, cfg, report)
        """, "dagger_process", ["env_steps", "inf"]),
    # The finite-difference check subtracted two replies of different shapes.
    "weights_shape_changes_with_the_input": (HW2_PG, """
        import torch

        _reference_weights = importance_weights

        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            w = _reference_weights(target_log_probs, behavior_log_probs, per_decision)
            quarters = target_log_probs * 4
            if not per_decision or bool((quarters == quarters.round()).all()):
                return w
            return torch.cat([w, w[:1]]) if bool((quarters > quarters.round()).any()) else w
        """, "importance_weights_grad", ["shape"]),
    # A reply whose gradient field is None (the child's own code patched by the submission) was indexed.
    "gradient_reply_forged_as_none": (HW2_PG, """
        import autograder.sandbox.child as _child
        _child._grads = lambda value, inputs, cotangent: None
        """, "importance_weights_grad", ["malformed"]),
    # A training task replaced by the submission returns a 0-dim env_steps: the judge indexed it.
    "training_result_forged": (HW2_RETURNS, """
        import torch
        import autograder.child_tasks as _tasks
        from rlkit.policies import CategoricalMLPPolicy

        def _forged(student, config, seed, steps, target_return):
            policy = CategoricalMLPPolicy(4, 2, (64, 64))
            return {"policy": {k: v.detach().clone() for k, v in policy.state_dict().items()},
                    "env_steps": torch.tensor(float("nan")), "return_mean": torch.ones(2, 2)}

        _tasks.TASKS["train_policy_gradient"] = _forged
        """, "cartpole_training", ["(no learning curve)"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_return_is_the_students_failure(tmp_path, case):
    module, source, problem, phrases = CASES[case]
    result = grade_problem(make_submission(tmp_path, {module: source}), problem)
    text = f"{result.reason}\n{render.details(result)}"
    assert "internal grader error" not in text, render.details(result)
    assert result.status == "failed" and result.score == 0, (result.status, result.reason)
    for phrase in phrases:
        assert phrase in text, text
