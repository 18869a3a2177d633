"""Dependencies run one way: the given code (rlkit/) is used by students, the grader and the instructor
tools, and depends on none of them; grader code that runs beside the student's receives the student's
module instead of importing it by name."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.homeworks import HOMEWORKS
from autograder.paths import ROOT

STUDENT_MODULES = {*HOMEWORKS, "solutions"}
FORBIDDEN_IN_RLKIT = {"autograder", "instructor", "tests", *STUDENT_MODULES}


def imported_names(path: Path) -> set[str]:
    """Top-level packages ``path`` imports: import statements and literal importlib.import_module calls."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "rlkit").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_given_code_imports_neither_the_grader_nor_student_modules(path):
    assert not imported_names(path) & FORBIDDEN_IN_RLKIT


def test_grader_code_run_in_the_child_receives_the_student_module_and_never_imports_it():
    assert not imported_names(ROOT / "autograder" / "child_tasks.py") & STUDENT_MODULES


def test_the_sandbox_does_not_depend_on_problems_or_the_runner():
    for path in (ROOT / "autograder" / "sandbox").glob("*.py"):
        text = path.read_text()
        assert "autograder.problems" not in text and "autograder.runner" not in text, path.name


def test_instructor_tools_are_outside_the_grader_and_the_given_code():
    assert not (ROOT / "autograder" / "instructor").exists()
    assert not (ROOT / "rlkit" / "experts" / "train.py").exists()
    assert (ROOT / "instructor" / "release.py").is_file()


def test_the_list_of_homeworks_is_read_without_importing_the_problems_or_torch():
    """The command line needs it for its choices before it starts the fork server and imports torch."""
    out = subprocess.run([sys.executable, "-c", "import sys, autograder.homeworks as h; "
                          "print(h.HOMEWORKS, 'torch' in sys.modules, 'autograder.problems' in sys.modules)"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout
