"""The one "complete the starter" seam (instructor/completion.py), used by class autograding's grading tree and
by Gradescope's run_autograder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder.paths import SOLUTIONS, STARTER
from instructor.completion import complete_starter, student_module, why_not_a_module

MODULES = ["returns.py", "policy_gradient.py"]


def _student(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "student"
    folder.mkdir()
    for name, text in files.items():
        (folder / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (folder / name.replace("__", "/")).write_text(text)
    return folder


def test_the_students_modules_replace_the_stubs_and_the_rest_of_the_starter_stays(tmp_path):
    student = _student(tmp_path, **{"returns.py": "mine = 1\n", "policy_gradient.py": "mine = 2\n",
                                    "notes.txt": "extra", "scratch.py": "extra = 1\n"})
    done = complete_starter(STARTER / "hw2", tmp_path / "tree" / "hw2", MODULES, student)
    tree = tmp_path / "tree" / "hw2"
    assert (tree / "returns.py").read_text() == "mine = 1\n" and (tree / "policy_gradient.py").read_text() == "mine = 2\n"
    assert done.found == {rel: student / rel for rel in MODULES} and done.missing == [] and done.refused == {}
    assert (tree / "__init__.py").read_text() == (STARTER / "hw2" / "__init__.py").read_text()  # the starter's own
    assert not (tree / "notes.txt").exists() and not (tree / "scratch.py").exists()  # extra files are not graded
    assert not any(p.suffix == ".ipynb" or p.name == "__pycache__" for p in tree.rglob("*"))


def test_a_missing_module_is_absent_not_the_starters_stub(tmp_path):
    student = _student(tmp_path, **{"returns.py": "mine = 1\n"})
    done = complete_starter(STARTER / "hw2", tmp_path / "tree" / "hw2", MODULES, student)
    assert done.missing == ["policy_gradient.py"] and done.refused == {}
    assert not (tmp_path / "tree" / "hw2" / "policy_gradient.py").exists()
    assert (STARTER / "hw2" / "policy_gradient.py").is_file()


def test_a_module_that_is_a_symbolic_link_is_refused_not_followed(tmp_path):
    """The completing process may be root (Gradescope): following a link would copy the reference in."""
    student = _student(tmp_path, **{"policy_gradient.py": "mine = 2\n"})
    (student / "returns.py").symlink_to(SOLUTIONS / "hw2" / "returns.py")
    done = complete_starter(STARTER / "hw2", tmp_path / "tree" / "hw2", MODULES, student)
    assert done.missing == ["returns.py"] and "symbolic link" in done.refused["returns.py"]
    assert not (tmp_path / "tree" / "hw2" / "returns.py").exists()
    assert student_module(student, "returns.py") is None and student_module(student, "policy_gradient.py")


def test_a_module_under_a_linked_folder_or_that_is_a_folder_is_refused(tmp_path):
    student = tmp_path / "student"
    student.mkdir()
    (student / "hw2").symlink_to(SOLUTIONS / "hw2", target_is_directory=True)
    assert "inside a symbolic link" in why_not_a_module(student / "hw2" / "returns.py", student)
    assert student_module(student, "hw2/returns.py") is None
    (student / "returns.py").mkdir()
    done = complete_starter(STARTER / "hw2", tmp_path / "tree" / "hw2", ["returns.py"], student)
    assert done.missing == ["returns.py"] and "folder" in done.refused["returns.py"]
    os.mkfifo(student / "policy_gradient.py")
    assert "not a regular file" in why_not_a_module(student / "policy_gradient.py", student)


def test_the_tree_is_rebuilt_from_scratch(tmp_path):
    tree = tmp_path / "tree" / "hw2"
    tree.mkdir(parents=True)
    (tree / "stale.py").write_text("left over")
    complete_starter(STARTER / "hw2", tree, MODULES, _student(tmp_path))
    assert not (tree / "stale.py").exists() and (tree / "__init__.py").is_file()


def test_gradescope_notes_say_what_was_found_missing_or_refused(tmp_path):
    from instructor.gradescope import prepare_submission

    source = tmp_path / "source"
    (source / "starter").mkdir(parents=True)
    os.symlink(STARTER / "hw2", source / "starter" / "hw2")
    os.symlink(SOLUTIONS, source / "solutions")
    submission = _student(tmp_path, **{"deep__returns.py": "mine = 1\n"})
    (submission / "policy_gradient.py").symlink_to(SOLUTIONS / "hw2" / "policy_gradient.py")
    notes = prepare_submission(submission, source, "hw2", tmp_path / "layout")
    assert sorted(notes) == ["hw2/policy_gradient.py: not graded: policy_gradient.py is a symbolic link, not a file",
                             "hw2/returns.py: deep/returns.py"]
    assert (tmp_path / "layout" / "hw2" / "returns.py").read_text() == "mine = 1\n"
    assert not (tmp_path / "layout" / "hw2" / "policy_gradient.py").exists()
    (submission / "policy_gradient.py").unlink()
    assert "hw2/policy_gradient.py: not found in the submission" in \
        prepare_submission(submission, source, "hw2", tmp_path / "again")


@pytest.mark.parametrize("linked", [False, True])
def test_class_autograding_grades_the_staged_modules_and_never_a_link(tmp_path, linked):
    from instructor import autograde as ag

    staged = _student(tmp_path, **{"returns.py": "mine = 1\n"})
    if linked:
        (staged / "policy_gradient.py").symlink_to(SOLUTIONS / "hw2" / "policy_gradient.py")
    job = ag.Job("someone", "hw2", "key", tmp_path / "job")
    root = ag.grading_tree(job, staged, MODULES)
    assert root == tmp_path / "job" / "submission"
    assert (root / "hw2" / "returns.py").read_text() == "mine = 1\n"
    assert not (root / "hw2" / "policy_gradient.py").exists()


def test_staging_a_class_copies_regular_modules_only(tmp_path):
    from instructor import autograde as ag

    submissions = tmp_path / "submissions"
    (submissions / "alice" / "hw2").mkdir(parents=True)
    (submissions / "alice" / "hw2" / "returns.py").write_text("mine = 1\n")
    (submissions / "alice" / "hw2" / "policy_gradient.py").symlink_to(SOLUTIONS / "hw2" / "policy_gradient.py")
    course = tmp_path / "course"
    (course / "release" / "hw2").mkdir(parents=True)
    (course / "release" / "hw2" / "hw2.ipynb").write_text("{}")
    log = []
    assert ag.stage_submissions(submissions, course, ["hw2"], log=log.append) == {"hw2": ["alice"]}
    staged = course / "submitted" / "alice" / "hw2"
    assert (staged / "returns.py").read_text() == "mine = 1\n" and not (staged / "policy_gradient.py").exists()
    assert log == ["alice/hw2: returns.py (missing: policy_gradient.py)"]
