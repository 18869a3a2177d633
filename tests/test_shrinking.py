"""Shrinking under a time budget never turns a failure into a crash of the grader."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import render
from autograder.shrinking import shrink_budget, value_digest


def test_equal_values_have_one_digest_even_where_their_pickles_differ():
    a = (torch.tensor([1.0, 2.0]), {"gamma": 0.5, "policy": torch.nn.Linear(2, 1)})
    b = (torch.tensor([1.0, 2.0]), {"gamma": 0.5, "policy": torch.nn.Linear(2, 1)})
    b[1]["policy"].load_state_dict(a[1]["policy"].state_dict())
    assert pickle.dumps(a) != pickle.dumps(b)  # what the old key tripped over
    assert value_digest(a) == value_digest(b)


@pytest.mark.parametrize("other", [torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0], dtype=torch.float64),
                                   torch.tensor([[1.0, 2.0]]), [1.0, 2.0]])
def test_different_values_types_or_shapes_have_different_digests(other):
    assert value_digest(torch.tensor([1.0, 2.0])) != value_digest(other)


def test_a_failure_found_after_the_budget_is_spent_still_replays_as_a_normal_failure():
    """seconds=0: every new candidate after the first failure is rejected; the final replay of the shrunk
    example (a fresh tensor, equal in value) must run and fail, not end in hypothesis' FlakyFailure."""

    @settings(derandomize=True, database=None, max_examples=200, deadline=None)
    @given(rewards=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=30).map(torch.tensor))
    @shrink_budget(seconds=0.0)
    def prop(rewards):
        assert float(rewards.sum()) < 5.0, "sum too large"

    with pytest.raises(AssertionError, match="sum too large") as info:
        prop()
    assert any("rewards=tensor(" in note for note in getattr(info.value, "__notes__", []))


def test_a_reversed_reward_to_go_is_shown_on_a_two_step_input_not_the_long_example(tmp_path):
    """The short explicit examples run before the long ones (which stay, for precision bugs): a bug that
    fails at T = 2 is shown at T = 2."""
    from tests.conftest import grade_problem, make_submission

    forward = """
        import torch
        def discounted_reward_to_go(rewards, gamma):
            out, running = torch.empty_like(rewards), 0.0
            for t in range(rewards.shape[0]):
                running = float(rewards[t]) + gamma * running
                out[t] = running
            return out
        """
    result = grade_problem(make_submission(tmp_path, {"hw2/returns.py": forward}), "reward_to_go",
                           with_reference=False)
    assert result.status == "failed"
    assert "smallest failing input: rewards=[2.0, 1.0], gamma=0.5" in render.details(result), render.details(result)
