"""The list of homeworks comes from the files, and a homework is added by adding files only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from autograder.homeworks import HOMEWORKS, find_homeworks, homework_of
from autograder.paths import ROOT
from autograder.runner import select


def test_the_homeworks_are_read_from_the_problem_modules_names(tmp_path):
    for name in ("__init__.py", "hw2_returns.py", "hw2_training.py", "hw10_bandits.py", "notes.txt"):
        (tmp_path / name).write_text("")
    assert find_homeworks(tmp_path) == ("hw2", "hw10")


def test_every_problem_is_graded_by_a_module_named_after_its_homework():
    problems = select()
    assert {p.assignment for p in problems} == set(HOMEWORKS)
    for p in problems:
        assert homework_of(p.check.__module__.rsplit(".", 1)[-1]) == p.assignment, (p.id, p.check.__module__)


def test_a_reference_is_any_folder_holding_a_homework_package(tmp_path):
    from autograder.problem import Reference

    assert Reference.find(tmp_path) is None
    (tmp_path / HOMEWORKS[0]).mkdir()
    (tmp_path / HOMEWORKS[0] / "__init__.py").write_text("")
    assert Reference.find(tmp_path) is not None


def test_the_child_forgets_every_homeworks_modules_before_importing_the_submission(monkeypatch):
    """A child must import the submission's hw3, never a copy already in sys.modules (the reference's)."""
    from autograder.sandbox import child

    monkeypatch.setattr(child, "HOMEWORKS", ("hw3",))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    sys.modules["hw3"] = sys.modules["hw3.bandit"] = object()
    child._forget_submission_modules("/nowhere", [])
    assert "hw3" not in sys.modules and "hw3.bandit" not in sys.modules
    assert "autograder.sandbox.child" in sys.modules


# --------------------------------------------------------------------------- a toy hw3, added by adding files
TOY_SOLUTION = '''\
"""Homework 3: the greedy arm of a bandit."""


def greedy_arm(values: list[float]) -> int:
    """The index of the largest value estimate (the first one on a tie)."""
    ### BEGIN SOLUTION
    return max(range(len(values)), key=values.__getitem__)
    ### END SOLUTION
'''

TOY_PROBLEMS = '''\
"""hw3: a toy bandit."""

from autograder.compare import Mismatch
from autograder.problem import problem

MODULE = "hw3.bandit"


@problem("hw3", "greedy_arm", points=2, stubs=[(MODULE, "greedy_arm")], hint="the arm with the largest estimate")
def check_greedy_arm(ctx):
    """greedy_arm picks the arm with the largest value estimate"""
    greedy_arm = ctx.student(MODULE, "greedy_arm")
    for values in ([1.0, 3.0, 2.0], [5.0, 0.0], [0.5]):
        expected = values.index(max(values))
        got = greedy_arm(values)
        if got != expected:
            raise Mismatch(f"greedy_arm({values}) returned {got!r}, expected {expected}")
'''


def _copy_checkout(dst: Path) -> None:
    """The checkout's tracked files as they are now (uncommitted changes included)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (ROOT / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dst / rel)


@pytest.fixture(scope="module")
def clone_with_hw3(tmp_path_factory):
    clone = tmp_path_factory.mktemp("kit")
    _copy_checkout(clone)
    (clone / "solutions" / "hw3").mkdir()
    (clone / "solutions" / "hw3" / "__init__.py").write_text("")
    (clone / "solutions" / "hw3" / "bandit.py").write_text(TOY_SOLUTION)
    (clone / "autograder" / "problems" / "hw3_bandit.py").write_text(TOY_PROBLEMS)
    return clone


def run_in(clone: Path, *args: str) -> subprocess.CompletedProcess:
    """``python *args`` with this checkout's environment, importing the clone's packages."""
    env = {**os.environ, "PYTHONPATH": str(clone)}
    return subprocess.run([sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=600)


def test_the_clone_imports_its_own_grader(clone_with_hw3):
    out = run_in(clone_with_hw3, "-c", "import autograder; print(autograder.__file__)")
    assert out.stdout.strip() == str(clone_with_hw3 / "autograder" / "__init__.py"), out.stdout + out.stderr


@pytest.mark.slow
def test_a_homework_added_by_its_files_is_generated_listed_and_graded(clone_with_hw3, tmp_path):
    clone = clone_with_hw3
    out = run_in(clone, "-m", "autograder.starter")
    assert out.returncode == 0, out.stdout + out.stderr
    stub = (clone / "starter" / "hw3" / "bandit.py").read_text()
    assert "raise NotImplementedError" in stub and "values.__getitem__" not in stub

    listed = run_in(clone, "-m", "autograder", "list")
    assert "hw3/greedy_arm" in listed.stdout, listed.stdout + listed.stderr

    for submission, score in (("solutions", 2), ("starter", 0)):
        results = tmp_path / f"{submission}.json"
        out = run_in(clone, "-m", "autograder", "grade", "--submission", submission, "--assignment", "hw3",
                     "--results", str(results))
        assert out.returncode == 0 and "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
        data = json.loads(results.read_text())
        assert data["score"] == score and len(data["tests"]) == 1, data
        if not score:
            assert "not implemented yet" in data["tests"][0]["output"], data["tests"][0]


@pytest.mark.slow
def test_a_homework_added_by_its_files_is_in_the_release_and_has_a_gradescope_bundle(clone_with_hw3, tmp_path):
    clone = clone_with_hw3
    out = run_in(clone, "-m", "instructor", "release", "--out", str(tmp_path / "release"),
                 "--course", str(tmp_path / "course"))
    assert out.returncode == 0, out.stdout + out.stderr
    stub = (tmp_path / "release" / "starter" / "hw3" / "bandit.py").read_text()
    assert "raise NotImplementedError" in stub and "values.__getitem__" not in stub
    assert (tmp_path / "release" / "autograder" / "problems" / "hw3_bandit.py").is_file()

    out = run_in(clone, "-m", "instructor", "gradescope", "--out", str(tmp_path / "bundles"), "--assignment", "hw3")
    assert out.returncode == 0, out.stdout + out.stderr
    with zipfile.ZipFile(tmp_path / "bundles" / "hw3.zip") as bundle:
        names = set(bundle.namelist())
    assert {"starter/hw3/bandit.py", "solutions/hw3/bandit.py", "autograder/problems/hw3_bandit.py"} <= names
