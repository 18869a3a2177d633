"""What a student's code returned, made safe for the judge to read.

The child sends back data only, but data of any type: a Trajectory whose rewards
are a Python list, a number too large for a float, an infinite step count. The
judge's own code must never trip over such a value (an exception there is an
"internal grader error", exit status 3): a wrong type is the student's mistake,
said as such. So every value a student function returns is checked here before
any problem code sees it (``check_returned``, called by
``autograder.problem.StudentFunction``), and numbers read from a student's logs
go through ``as_number`` / ``as_count``, which never raise.
"""

from __future__ import annotations

import math

import torch

from autograder.compare import Mismatch, describe
from autograder.sandbox.wire import MAX_DEPTH, TRAJECTORY_FIELDS
from rlkit.trajectory import Trajectory

# What rlkit.trajectory.Trajectory's docstring asks of each field.
FIELD_CONTRACT = {
    "observations": "a tensor [T, obs_dim]",
    "actions": "a tensor [T] (discrete, long) or [T, act_dim] (continuous)",
    "rewards": "a tensor [T] (one reward per step: len(trajectory) is rewards.shape[0])",
    "terminated": "a bool",
    "behavior_log_probs": "a tensor [T], or None",
    "final_observation": "a tensor [obs_dim], or None",
}
OPTIONAL_FIELDS = ("behavior_log_probs", "final_observation")
FIELD_HINT = ("build every field of a Trajectory as a torch.Tensor: torch.stack(list_of_tensors), "
              "torch.tensor(list_of_floats, dtype=torch.float32), torch.as_tensor(numpy_array); and "
              "terminated=bool(...)")


def check_returned(value, function: str) -> None:
    """Raise a Mismatch at the first Trajectory in ``value`` (itself, or inside its lists, tuples and dicts) whose
    fields are not of the types its docstring gives: the judge reads ``len(traj)`` and each field as a tensor."""
    for where, traj in _trajectories(value, ""):
        what = f"{function}(…){where} is a Trajectory" if where else f"{function} returned a Trajectory"
        for name in TRAJECTORY_FIELDS:
            field = getattr(traj, name)
            if not _has_contract_type(name, field):
                raise Mismatch(f"{what} whose {name} is {describe(field)}; rlkit.trajectory.Trajectory asks for "
                               f"{name}: {FIELD_CONTRACT[name]}", FIELD_HINT, "wrong-type")
        if traj.rewards.dim() != 1:
            raise Mismatch(f"{what} whose rewards is {describe(traj.rewards)}; rlkit.trajectory.Trajectory asks "
                           f"for rewards: {FIELD_CONTRACT['rewards']}", diagnosis="wrong-shape")


def _has_contract_type(name: str, field) -> bool:
    if name == "terminated":
        return isinstance(field, (bool, int)) or (isinstance(field, torch.Tensor) and field.numel() == 1)
    return isinstance(field, torch.Tensor) or (field is None and name in OPTIONAL_FIELDS)


def _trajectories(value, where: str, depth: int = 0):
    """(where, trajectory) for every Trajectory in ``value``; ``where`` as an index path, "[2]" or "['a'][0]"."""
    if isinstance(value, Trajectory):
        yield where, value
    elif depth < MAX_DEPTH and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _trajectories(item, f"{where}[{index}]", depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, dict):
        for key, item in value.items():
            yield from _trajectories(item, f"{where}[{key!r}]", depth + 1)


def as_number(value) -> float | None:
    """A returned number as a float (±inf for an int beyond float's range, NaN kept), or None when it is not a
    number: bools are not, a one-element floating-point tensor is."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point():
        return float(value.reshape(()))
    return None


def as_count(value) -> int | None:
    """A returned count: an int, or a finite float (truncated); None for anything else (a bool, NaN, ±inf, a
    tensor, …)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, float) and math.isfinite(value) else None
