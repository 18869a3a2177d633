"""Shared helpers: build submissions from the reference with one function
replaced, and grade them through the real runner (sandbox included)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from autograder.paths import ROOT, SOLUTIONS, STARTER
from autograder.problem import Reference
from autograder.runner import Result, run_problem, select
from instructor.classroom import appended  # the made-up students' way: a later ``def`` replaces the reference's


# The project's own property tests run derandomised too: the same verdict every run.
settings.register_profile("tests", derandomize=True, deadline=None, max_examples=50,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tests")


def make_submission(tmp_path: Path, overrides: dict[str, str] | None = None, base: Path = SOLUTIONS) -> Path:
    """A copy of ``base`` where each ``{"hw2/returns.py": source}`` is appended to
    that module: a later ``def`` replaces the reference one, as a student's would."""
    dst = tmp_path / "submission"
    shutil.copytree(base, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for rel, source in (overrides or {}).items():
        path = dst / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(appended(path.read_text() if path.exists() else "", source, "variant under test"))
    return dst


def grade_problem(submission: Path, name: str, time_limit: float | None = None, with_reference: bool = True) -> Result:
    problems = select(problem=name, with_reference=with_reference)
    assert len(problems) == 1, f"no single problem named {name}"
    reference = Reference.find(SOLUTIONS) if with_reference else None
    return run_problem(problems[0], submission, reference=reference, time_limit=time_limit)


@pytest.fixture
def submission(tmp_path):
    def build(overrides=None, base=SOLUTIONS):
        return make_submission(tmp_path, overrides, base)

    return build


__all__ = ["ROOT", "SOLUTIONS", "STARTER", "make_submission", "grade_problem"]


@pytest.fixture(scope="session")
def variant_grading(tmp_path_factory):
    """``grade(variant, problem)``: each (variant, problem) graded once per session, its Result shared by every
    test that asks (tests/test_variants.py and tests/test_diagnoses.py grade the same buggy variants)."""
    results = {}

    def grade(variant, name: str) -> Result:
        key = (variant.module, variant.name, name)
        if key not in results:
            folder = tmp_path_factory.mktemp(f"{variant.name}-{name}")
            results[key] = grade_problem(make_submission(folder, {variant.module: variant.source}), name)
        return results[key]

    return grade

