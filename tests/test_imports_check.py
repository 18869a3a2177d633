"""A submission that imports a package outside the kit's requirements is told, by name, that Gradescope will not
have it: read from the source (autograder/imports_check.py), shown under the table and in results.json."""

from __future__ import annotations

import json

from autograder.imports_check import foreign_imports, import_warnings
from tests.conftest import SOLUTIONS, STARTER, make_submission
from tests.test_cli import run_grader

# pip is installed where the kit runs (the student's pip install lands beside it) but not in requirements.txt
OUTSIDE = "import pip\nfrom pip import __version__\n"
INSIDE = ("import json, os.path\nfrom collections import deque\nimport numpy as np\nimport torch.nn as nn\n"
          "import gymnasium\nimport yaml\nfrom rlkit.trajectory import Trajectory\nimport helpers\nfrom . import x\n")


def test_a_package_outside_the_requirements_is_named_even_when_installed_here(tmp_path):
    submission = make_submission(tmp_path, {"hw2/returns.py": OUTSIDE, "hw1/imitation.py": INSIDE,
                                            "hw1/helpers.py": "X = 1\n"})
    assert foreign_imports(submission) == {"hw2/returns.py": ["pip"]}
    [warning] = import_warnings(submission)
    assert "hw2/returns.py imports pip" in warning and "not on Gradescope" in warning


def test_the_shipped_modules_import_only_what_the_kit_installs():
    assert foreign_imports(SOLUTIONS) == {} and foreign_imports(STARTER) == {}


def test_a_module_that_does_not_parse_is_left_to_the_grade(tmp_path):
    submission = make_submission(tmp_path, {"hw2/returns.py": "def (:\n"})
    assert foreign_imports(submission) == {}


def test_the_warning_is_under_the_table_and_in_results_json(tmp_path):
    submission = make_submission(tmp_path, {"hw2/returns.py": "import not_a_kit_package_at_all\n"})
    out = tmp_path / "results.json"
    proc = run_grader("--submission", str(submission), "--assignment", "hw2", "--problem", "discounted_return",
                      "--results", str(out))
    table_end = proc.stdout.index("total:")
    assert "hw2/returns.py imports not_a_kit_package_at_all" in proc.stdout[table_end:], proc.stdout
    assert "not on Gradescope" in json.loads(out.read_text())["output"]
