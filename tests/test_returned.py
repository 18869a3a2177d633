"""returned.py: a Trajectory with fields of the wrong type is stopped, with words, before the judge reads it;
numbers read from a student's logs never raise."""

from __future__ import annotations

import math

import pytest
import torch

from autograder.compare import Mismatch
from autograder.returned import as_count, as_number, check_returned
from autograder.sandbox.wire import NumpyArray
from rlkit.trajectory import Trajectory


def _trajectory(**fields) -> Trajectory:
    base = dict(observations=torch.zeros(3, 2), actions=torch.zeros(3, dtype=torch.long), rewards=torch.ones(3),
                terminated=True)
    return Trajectory(**{**base, **fields})


def test_a_well_typed_trajectory_passes_wherever_it_is():
    check_returned([_trajectory(), {"k": (_trajectory(terminated=torch.tensor(False)),)}], "f")
    check_returned(_trajectory(behavior_log_probs=torch.zeros(3), final_observation=None), "f")


@pytest.mark.parametrize("field, value, phrase", [
    ("rewards", [1.0, 2.0, 3.0], "whose rewards is list [1.0, 2.0, 3.0]"),
    ("rewards", None, "whose rewards is NoneType None"),
    ("actions", NumpyArray(torch.zeros(3)), "whose actions is a numpy array of shape [3]"),
    ("observations", (1, 2), "whose observations is tuple (1, 2)"),
    ("terminated", "yes", "whose terminated is str 'yes'"),
    ("final_observation", [0.0, 0.0], "whose final_observation is list"),
])
def test_a_field_of_the_wrong_type_is_named_with_what_it_held(field, value, phrase):
    with pytest.raises(Mismatch) as info:
        check_returned(_trajectory(**{field: value}), "sample_trajectory")
    assert str(info.value).startswith("sample_trajectory returned a Trajectory " + phrase)
    assert f"asks for {field}: " in str(info.value) and info.value.diagnosis == "wrong-type"


def test_where_the_wrong_trajectory_sits_in_a_list_is_said():
    with pytest.raises(Mismatch, match=r"sample_trajectories\(…\)\[1\] is a Trajectory whose rewards is list"):
        check_returned([_trajectory(), _trajectory(rewards=[1.0])], "sample_trajectories")


def test_rewards_without_a_time_axis_are_a_wrong_shape():
    """len(trajectory) reads rewards.shape[0]: a 0-dim tensor (the episode's return) has none."""
    with pytest.raises(Mismatch, match=r"rewards is a tensor of shape \[\]") as info:
        check_returned(_trajectory(rewards=torch.tensor(3.0)), "f")
    assert info.value.diagnosis == "wrong-shape"


def test_numbers_from_a_log_never_raise():
    assert as_number(10 ** 400) == math.inf and as_number(-(10 ** 400)) == -math.inf
    assert as_number(True) is None and as_number("1.0") is None and as_number(torch.ones(2)) is None
    assert as_number(torch.tensor([0.5])) == 0.5 and math.isnan(as_number(math.nan))
    assert as_count(7) == 7 and as_count(7.9) == 7 and as_count(10 ** 400) == 10 ** 400
    assert as_count(math.inf) is None and as_count(math.nan) is None and as_count(False) is None
    assert as_count(torch.tensor(3)) is None
