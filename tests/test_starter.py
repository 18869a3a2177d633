"""starter/ is generated from solutions/ by nbgrader's ClearSolutions, and kept in sync."""

import ast

import pytest

from autograder.paths import SOLUTIONS, STARTER
from autograder.starter import SolutionRegionError, render, stale_files, strip_solutions


def test_committed_starter_is_in_sync_with_solutions():
    assert stale_files() == [], "starter/ is stale: run `make starter`"


def test_stub_raises_not_implemented_at_the_region_indentation():
    text = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    assert strip_solutions(text) == "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"


@pytest.mark.parametrize("text, problem", [
    ("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n", "nested"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a matching"),
])
def test_malformed_solution_regions_are_errors(text, problem):
    with pytest.raises(SolutionRegionError, match=problem):
        strip_solutions(text, "bad.py")


def test_every_graded_module_has_regions_and_the_starter_has_none():
    files = render()
    graded = [rel for rel in files if rel.suffix == ".py" and "BEGIN SOLUTION" in (SOLUTIONS / rel).read_text()]
    assert graded, "solutions/ holds no solution regions"
    for rel, text in files.items():
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, rel
        if rel.suffix == ".py":
            ast.parse(text, filename=str(rel))  # the stubs are valid Python


def test_starter_keeps_the_docstrings():
    rel = "hw2/returns.py"
    starter_tree = ast.parse((STARTER / rel).read_text())
    solution_tree = ast.parse((SOLUTIONS / rel).read_text())
    docs = lambda tree: {n.name: ast.get_docstring(n) for n in tree.body if isinstance(n, ast.FunctionDef)}  # noqa: E731
    assert docs(starter_tree) == docs(solution_tree)
    assert "Q̂_t = Σ_{t'=t}^{T-1} γ^{t'-t} r_{t'}" in docs(starter_tree)["discounted_reward_to_go"]
