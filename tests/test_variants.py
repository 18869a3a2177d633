"""Every buggy variant in tests/variants loses its points; every correct one keeps them."""

import pytest

from tests.conftest import grade_problem, make_submission
from tests.variants import Variant, collect

BUGGY = collect("BUGGY")
CORRECT = collect("CORRECT")


def _grade(tmp_path, variant: Variant, name: str):
    return grade_problem(make_submission(tmp_path, {variant.module: variant.source}), name)


@pytest.mark.parametrize("variant", BUGGY, ids=lambda v: v.id)
def test_buggy_variant_is_caught(tmp_path, variant):
    for name in variant.problems:
        result = _grade(tmp_path / name, variant, name)
        assert result.status == "failed" and result.score == 0, f"{variant.name} passed {name}: {result.reason}"
        assert "not implemented" not in result.reason and "internal" not in result.reason, result.reason
        assert "hint:" in result.details or "timed out" in result.reason, result.details
        if variant.reason:
            assert variant.reason in result.reason or variant.reason in result.details, result.details
        if variant.diagnosis:
            assert result.diagnosis == variant.diagnosis, (result.diagnosis, result.reason)


@pytest.mark.parametrize("variant", CORRECT, ids=lambda v: v.id)
def test_correct_variant_gets_full_marks(tmp_path, variant):
    for name in variant.problems:
        result = _grade(tmp_path / name, variant, name)
        assert result.passed and result.score == result.problem.points, f"{variant.name} on {name}:\n{result.details}"
        assert not result.tampering, f"{variant.name} on {name} was flagged: {result.tampering.line()}"
