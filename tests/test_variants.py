"""Every buggy variant in instructor/variants loses its points; every correct one keeps them; and the estimators' verdicts
do not depend on whether the grader batches their calls."""

import pytest

from autograder import render
from autograder.sandbox.judge import Sandbox
from tests.conftest import grade_problem, make_submission
from instructor.variants import Variant, collect

BUGGY = collect("BUGGY")
CORRECT = collect("CORRECT")


def _grade(tmp_path, variant: Variant, name: str):
    return grade_problem(make_submission(tmp_path, {variant.module: variant.source}), name)


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: v.id)
def test_buggy_variant_is_caught(variant_grading, variant):
    for name in variant.problems:
        result = variant_grading(variant, name)
        assert result.status == "failed" and result.score == 0, f"{variant.name} passed {name}: {result.reason}"
        assert "not implemented" not in result.reason and "internal" not in result.reason, result.reason
        assert "hint:" in render.details(result) or "timed out" in result.reason, render.details(result)
        if variant.reason:
            assert variant.reason in result.reason or variant.reason in render.details(result), render.details(result)
        if variant.diagnosis_on(name):
            assert result.diagnosis == variant.diagnosis_on(name), (name, result.diagnosis, result.reason)


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: v.id)
def test_correct_variant_gets_full_marks(tmp_path, variant):
    for name in variant.problems:
        result = _grade(tmp_path / name, variant, name)
        assert result.passed and result.score == result.problem.points, f"{variant.name} on {name}:\n{render.details(result)}"
        assert not result.tampering, f"{variant.name} on {name} was flagged: {result.tampering.line()}"


def _one_request_per_call(self, module, function, calls):
    """``Sandbox.map`` as one request per call: every value read back on its own, before the next call runs."""
    replies = [self.call(module, function, args, kwargs) for args, kwargs in calls]
    return {field: [reply[field] for reply in replies] for field in ("value", "mutated", "after", "contract")}


ESTIMATORS = [v for v in BUGGY + CORRECT if v.module == "hw2/policy_gradient.py"]
# State carried from call to call on the arguments themselves (.grad accumulating on the policy) needs the same
# objects in two calls: only a batch has them (every request rebuilds its arguments), so only the batch sees it.
STATE_ON_THE_ARGUMENTS = {"state-carried-over", "grad-accumulates"}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ESTIMATORS, ids=lambda v: v.id)
def test_batched_and_single_calls_give_the_same_verdict(tmp_path, monkeypatch, variant):
    """A batch's values are copied when each call returns, so no later call of the batch can change them (on the CPU
    the batch once read every value after its last call; CUDA copied each at once)."""
    for name in variant.problems:
        batched = _grade(tmp_path / "batched" / name, variant, name)
        with monkeypatch.context() as patch:
            patch.setattr(Sandbox, "map", _one_request_per_call)
            single = _grade(tmp_path / "single" / name, variant, name)
        if batched.diagnosis in STATE_ON_THE_ARGUMENTS:
            continue
        assert (single.status, single.score, single.diagnosis) == (batched.status, batched.score, batched.diagnosis), \
            f"{variant.name} on {name}: batched {batched.reason!r}, one call per request {single.reason!r}"
