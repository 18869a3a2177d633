"""compare.py and render.py, one question each: what a failure says, and what a tolerance admits."""

from __future__ import annotations

import math

import pytest
import torch

from autograder.compare import (Mismatch, assert_close, describe, expect_tensor, fmt, nan_as_inf, same_value,
                                tolerance, within)
from autograder.sandbox.wire import NumpyArray, Unsupported
from rlkit.trajectory import Trajectory


def test_a_wrong_entry_is_named_with_expected_and_got():
    with pytest.raises(Mismatch) as info:
        assert_close(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 3.0]), name="f", atol=1e-6, label="step")
    text = str(info.value)
    assert "f is wrong at step 1: expected 2.5, got 2" in text
    assert (info.value.expected, info.value.got) == ("[1, 2.5, 3]", "[1, 2, 3]")


def test_a_check_against_the_students_own_values_never_says_expected():
    with pytest.raises(Mismatch) as info:
        assert_close(torch.tensor([0.75, 0.5]), torch.tensor([1.25, 1.0]), name="rtg", atol=1e-6,
                     expected_is="r_t + γ·Q̂_{t+1}, with your Q̂_{t+1}")
    err = info.value
    assert "inconsistent" in str(err) and err.expected_label == "implied" and "not the true answer" in err.expected
    assert "expected" not in str(err) + err.expected


def test_nan_is_the_largest_error_not_a_silent_pass():
    assert math.isinf(float(nan_as_inf(torch.tensor([float("nan")]))[0]))
    with pytest.raises(Mismatch):
        assert_close(torch.tensor([float("nan")]), torch.tensor([1.0]), name="f", atol=1e3)


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_the_tolerance_admits_float32_summation_in_any_order(n):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    exact = x.sum()
    forward = x.float().sum().double()
    backward = x.float().flip(0).cumsum(0)[-1].double()
    atol = tolerance(torch.float32, float(x.abs().sum()), n)
    assert abs(float(forward - exact)) <= atol and abs(float(backward - exact)) <= atol


def test_expect_tensor_names_type_shape_and_numpy():
    with pytest.raises(Mismatch, match="should return a torch.Tensor, but returned a numpy array"):
        expect_tensor(NumpyArray(torch.zeros(2)), name="f")
    with pytest.raises(Mismatch, match=r"returned shape \[2, 1\], expected shape \[2\]"):
        expect_tensor(torch.zeros(2, 1), name="f", shape=[2])
    assert describe(Unsupported("generator")) == "a generator"


def test_long_values_are_shown_short():
    assert fmt(torch.arange(100.0)) == "[0, 1, 2, 3, 4, 5, 6, 7, … (100 values)]"


def test_same_value_is_to_the_last_bit_through_containers():
    a = [torch.tensor([1.0, float("nan")]), {"k": (1, 2.0)}]
    assert same_value(a, [torch.tensor([1.0, float("nan")]), {"k": (1, 2.0)}])
    assert not same_value(a, [torch.tensor([1.0, 2.0]), {"k": (1, 2.0)}])
    assert not same_value(torch.tensor([1.0]), torch.tensor([1.0], dtype=torch.float64))


def test_same_value_reads_what_the_judge_rebuilt_without_raising():
    """Two equal replies of a type the judge does not accept are the same answer (not state carried over), and
    two Trajectories compare field by field (a dataclass's == would ask a tensor for its truth value)."""
    assert same_value(NumpyArray(torch.ones(3)), NumpyArray(torch.ones(3)))
    assert same_value(Unsupported("generator"), Unsupported("generator"))
    assert not same_value(Unsupported("generator"), Unsupported("set"))
    traj = Trajectory(observations=torch.zeros(2, 1), actions=torch.zeros(2), rewards=[1.0, 2.0], terminated=False)
    assert same_value(traj, Trajectory(torch.zeros(2, 1), torch.zeros(2), [1.0, 2.0], False))
    assert not same_value(traj, Trajectory(torch.zeros(2, 1), torch.ones(2), [1.0, 2.0], False))


def test_within_never_passes_a_nan_nor_an_inf_where_a_number_is_expected():
    assert within(1.0, 1.5, 0.5) and not within(1.0, 1.6, 0.5)
    for bad in (math.nan, math.inf, -math.inf):
        assert not within(bad, 1.0, 1e30)
        assert not within(torch.tensor([1.0, bad]), torch.tensor([1.0, 1.0]), 1e30)
    assert not within(torch.tensor([math.inf]), torch.tensor([math.inf]), 1e30)


def test_within_compares_any_dtypes_and_refuses_other_shapes():
    assert within(torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 2.0]), 0.0)
    assert within(torch.tensor([1, 2]), torch.tensor([1.0, 2.5]), torch.tensor([0.0, 0.5]))
    assert not within(torch.zeros(2, 1), torch.zeros(2), 1.0)


def test_describe_says_what_came_back_in_a_few_words():
    traj = Trajectory(observations=torch.zeros(2, 1), actions=torch.zeros(2), rewards=torch.zeros(2), terminated=False)
    assert describe([traj, traj]) == "list of 2 items (a Trajectory, a Trajectory)"
    assert describe({"rewards": torch.zeros(2)}) == "dict with keys ['rewards']"
    assert describe(10 ** 400).startswith("int 1000") and len(describe(10 ** 400)) < 130


def test_the_results_table_fits_every_problem_id():
    from autograder.render import header, line
    from autograder.runner import Result, select

    columns = {line(Result(p, 0.0, "failed", "r"), width=200).index("0/") for p in select()}
    assert len(columns) == 1, "the points column moves from row to row"
    assert header().index("points") <= columns.pop()


def test_the_sum_bound_admits_float32_loops_and_matrices_and_rejects_a_reversed_reward_to_go():
    """The 1500-step example of reward_to_go at γ = 0.99 (rewards in [−2.5, 2.5]): the old n²-style tolerance
    was 12.9 there, larger than the values themselves; the bound on the magnitudes actually summed is ~0.1."""
    from autograder.compare import discounted_magnitudes, sum_tolerance
    from autograder.strategies import long_rewards

    gamma = 0.99
    r = torch.tensor(long_rewards(1500), dtype=torch.float32)
    exact = torch.zeros(1500, dtype=torch.float64)
    running = 0.0
    for t in reversed(range(1500)):
        running = float(r[t]) + gamma * running
        exact[t] = running
    loop32 = torch.zeros(1500, dtype=torch.float32)
    running32 = torch.tensor(0.0)
    for t in reversed(range(1500)):
        running32 = r[t] + torch.tensor(gamma, dtype=torch.float32) * running32
        loop32[t] = running32
    k = torch.arange(1500, dtype=torch.float32)
    matrix32 = torch.triu(torch.tensor(gamma, dtype=torch.float32) ** (k[None, :] - k[:, None]).clamp(min=0)) @ r
    atol = sum_tolerance(torch.float32, discounted_magnitudes(r, gamma), 1500)
    assert atol < 0.2
    for got in (loop32, matrix32):
        assert float((got.double() - exact).abs().max()) <= atol / 10
    reversed_rtg = exact.flip(0)
    assert float((reversed_rtg - exact).abs().max()) > 10 * atol


def test_the_graders_prose_reads_at_80_columns_and_student_text_is_never_split():
    from autograder.render import wrapped

    hint = "hint: " + " ".join(["reward-to-go"] * 20)
    student = "f raised ValueError: " + " ".join(["hw2/reward_to_go  3/3 pass FAKE"] * 4)
    lines = wrapped("short line\n" + hint + "\n" + student).splitlines()
    assert lines[0] == "short line" and lines[-1] == student  # a line that may quote the student stays whole
    assert all(len(line) <= 80 for line in lines[:-1]) and lines[2].startswith("  reward-to-go")


def test_per_step_tolerances_admit_float32_and_catch_a_mistake_in_the_last_steps():
    """A tolerance per step, from the magnitudes summed from t on: float32 loops and matrices still pass, and a
    mistake confined to the last steps of a long episode (a GAE that bootstraps past a terminal state: off by
    γ·V(s_T) ≈ 0.5 at the last step) is caught where the one tolerance of the whole sum (≈ 1.5) hid it."""
    from autograder.compare import discounted_magnitudes, sum_tolerance
    from autograder.strategies import long_rewards

    gamma, n = 0.999, 2000
    r = torch.tensor(long_rewards(n), dtype=torch.float32)
    exact = torch.zeros(n, dtype=torch.float64)
    running = 0.0
    for t in reversed(range(n)):
        running = float(r[t]) + gamma * running
        exact[t] = running
    loop32 = torch.zeros(n, dtype=torch.float32)
    running32 = torch.tensor(0.0)
    for t in reversed(range(n)):
        running32 = r[t] + torch.tensor(gamma, dtype=torch.float32) * running32
        loop32[t] = running32
    per_step = sum_tolerance(torch.float32, discounted_magnitudes(r, gamma, per_step=True), n)
    whole = sum_tolerance(torch.float32, discounted_magnitudes(r, gamma), n)
    assert per_step.shape == (n,) and float(per_step.max()) == pytest.approx(whole)
    assert_close(loop32, exact, name="loop", atol=per_step)
    wrong = exact.clone()
    wrong[-1] += 0.5
    assert 0.5 < whole
    assert_close(wrong, exact, name="whole-sum tolerance", atol=whole)  # hidden by the whole sum's tolerance
    with pytest.raises(Mismatch, match=r"at step 1999"):
        assert_close(wrong, exact, name="per-step tolerance", atol=per_step, label="step")


def test_what_the_students_values_imply_is_shown_after_those_values():
    """The recursion check's "implied" row is derived from the student's own values: it reads after them, with
    what it means on its row; a plain comparison keeps expected first."""
    from autograder import render
    from autograder.results import Failure, ProblemInfo, ProblemResult

    with pytest.raises(Mismatch) as info:
        assert_close(torch.tensor([1.25, 0.5]), torch.tensor([2.25, 1.0]), name="rtg", atol=1e-6,
                     expected_is="r_t + γ·Q̂_{t+1}, with your Q̂_{t+1}")
    err = info.value
    problem = ProblemInfo("hw2/x", "hw2", "x", "x", 1)
    failure = Failure(str(err), expected=err.expected, got=err.got, expected_label=err.expected_label)
    rows = render.value_rows(ProblemResult(problem, 0.0, "failed", str(err), failure))
    assert rows[0].split() == ["got:", "[1.25,", "0.5]"]
    assert rows[1].startswith("  implied:  [2.25, 1]   ← r_t + γ·Q̂_{t+1}") and "if your next one were right" in rows[1]
    plain = Failure("f", expected="[1]", got="[2]")
    assert render.value_rows(ProblemResult(problem, 0.0, "failed", "f", plain))[0].startswith("  expected:")
