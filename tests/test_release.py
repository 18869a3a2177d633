"""The nbgrader course and the student release (`make release`)."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from instructor.course import (ASSIGNMENTS_DIR, POINTS_LABEL, CourseError, assignments, checked_problems,
                                          execute_timeout, graded_files, sync_grade_cells)
from autograder.homeworks import HOMEWORKS
from autograder.notebook import CheckFailed, check, find_submission
from autograder.paths import ROOT, SOLUTIONS, STARTER
from autograder.runner import select
from autograder.starter import render
from tests.instructor_builds import built_release  # noqa: F401 - fixture


def _source_notebook(assignment):
    return nbformat.read(ASSIGNMENTS_DIR / "source" / assignment / f"{assignment}.ipynb", as_version=4)


# --------------------------------------------------------------------------- the course (fast)
def test_every_assignment_has_a_handout_notebook_with_nbgrader_metadata():
    assert assignments() == list(HOMEWORKS)  # every homework of the kit has its handout
    for assignment in assignments():
        nb = _source_notebook(assignment)
        nbformat.validate(nb)
        ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)), f"{assignment}: duplicate grade_id"
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta and meta["grade"]:
                assert meta["schema_version"] == 3 and meta["locked"] and not meta["solution"]
                assert meta["points"] > 0 and CHECK_IN(cell.source)


def CHECK_IN(source: str) -> bool:  # noqa: N802
    return "from autograder.notebook import check" in source


def test_source_notebooks_check_only_registered_problems_with_their_points():
    registry = {p.id: p for p in select()}
    for assignment in assignments():
        nb = _source_notebook(assignment)
        for problem_id, index in checked_problems(nb).items():
            assert problem_id in registry, f"{assignment}.ipynb checks unknown problem {problem_id}"
            assert nb.cells[index].metadata["nbgrader"]["points"] == registry[problem_id].points, problem_id
            hidden = "BEGIN HIDDEN TESTS" in nb.cells[index].source
            assert hidden == registry[problem_id].needs_reference, f"{problem_id}: hidden iff it needs the reference"


def test_source_notebooks_have_a_grade_cell_for_every_registered_problem():
    """Committed in sync: the instructor's notebook is what they edit, not only the built copy
    (`python -m instructor sync-notebooks` adds the missing cells)."""
    for assignment in assignments():
        nb = _source_notebook(assignment)
        missing = sorted(p.id for p in select(assignment) if p.id not in checked_problems(nb))
        assert missing == [], f"{assignment}.ipynb has no grade cell for {missing}: run sync-notebooks"


def test_sync_adds_a_grade_cell_for_each_new_problem_and_rejects_unknown_ones():
    nb = _source_notebook("hw2")
    first = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    del nb.cells[first]
    nb.cells[-1].metadata["nbgrader"]["points"] = 99
    changes = sync_grade_cells(nb, "hw2")
    assert any("added a grade cell for hw2/discounted_return" in c for c in changes), changes
    assert any("→" in c for c in changes), changes
    assert set(checked_problems(nb)) == {p.id for p in select("hw2")}
    nb.cells.append(nbformat.v4.new_code_cell('from autograder.notebook import check\ncheck("hw2/no_such")'))
    nb.cells[-1].metadata["nbgrader"] = {"grade": True, "grade_id": "x", "points": 1, "schema_version": 3,
                                         "locked": True, "solution": False}
    with pytest.raises(CourseError, match="hw2/no_such"):
        sync_grade_cells(nb, "hw2")


@pytest.mark.parametrize("assignment", assignments())
def test_every_grade_cell_says_the_points_the_registry_gives(assignment):
    """The label a student reads ("# Hidden check (2 points)") is the registry's points, as nbgrader's are."""
    nb = _source_notebook(assignment)
    registry = {p.id: p.points for p in select(assignment)}
    for problem_id, index in checked_problems(nb).items():
        label = POINTS_LABEL.match(nb.cells[index].source)
        assert label, nb.cells[index].source
        assert float(label.group(2)) == registry[problem_id], f"{problem_id}: {nb.cells[index].source.splitlines()[0]}"


def test_sync_corrects_a_grade_cell_label_that_says_other_points():
    nb = _source_notebook("hw2")
    index = next(iter(checked_problems(nb).values()))
    nb.cells[index].source = POINTS_LABEL.sub(lambda m: f"{m.group(1)}99 points)", nb.cells[index].source)
    assert any("label (99 points)" in c for c in sync_grade_cells(nb, "hw2"))
    assert "(99 points)" not in nb.cells[index].source and POINTS_LABEL.match(nb.cells[index].source)


def test_the_graded_files_are_those_with_solution_regions():
    graded = graded_files()
    assert "returns.py" in graded["hw2"] and "__init__.py" not in graded["hw2"]
    for assignment, files in graded.items():
        for rel in files:
            assert "BEGIN SOLUTION" in (SOLUTIONS / assignment / rel).read_text()


def test_the_cell_timeout_covers_the_longest_problem_and_is_finite(monkeypatch):
    monkeypatch.delenv("GRADER_TIME_LIMIT", raising=False)
    assert max(p.seconds for p in select()) < execute_timeout() < 3600
    monkeypatch.setenv("GRADER_TIME_LIMIT", "10")
    assert execute_timeout() == 10 + 120


def test_nbgrader_config_loads_with_the_course_settings():
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ASSIGNMENTS_DIR)).load_config()
    assert config.Execute.timeout == execute_timeout()
    assert config.Autograde.exclude_overwriting == graded_files()


# --------------------------------------------------------------------------- the notebook API (fast)
def test_check_passes_on_the_reference_and_fails_with_feedback_on_the_starter(capsys):
    check("hw2/reward_to_go", submission=SOLUTIONS)
    assert "hw2/reward_to_go: 3/3 points, passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not implemented yet") as info:
        check("hw2/reward_to_go", submission=STARTER)
    assert isinstance(info.value, CheckFailed) and "0/3 points, FAILED" in str(info.value)


def test_check_finds_the_modules_from_the_notebooks_folder(tmp_path):
    package = tmp_path / "starter" / "hw2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    assert find_submission("hw2", package) == tmp_path / "starter"
    assert find_submission("hw2", tmp_path / "starter") == tmp_path / "starter"
    with pytest.raises(FileNotFoundError):
        find_submission("hw1", package)


def test_a_hidden_check_without_the_reference_fails_and_says_why(monkeypatch):
    monkeypatch.setenv("GRADER_REFERENCE", "none")
    with pytest.raises(AssertionError, match="instructor's grading"):
        check("hw2/returns_match_reference", submission=SOLUTIONS)


# --------------------------------------------------------------------------- the release (nbgrader: slow)
@pytest.mark.slow
def test_the_release_has_notebooks_starter_modules_and_the_public_grader_only(built_release):
    release = Path(built_release["release"])
    for name in ["Makefile", "README.md", "requirements.txt", "pyproject.toml", "rlkit", "autograder/problems"]:
        assert (release / name).exists(), name
    for name in ["solutions", "tests", "assignments", "instructor", "bench"]:
        assert not (release / name).exists(), f"{name} must not ship to students"
    course = Path(built_release["course"])
    for rel in render(SOLUTIONS):  # the modules are ClearSolutions' output (build_course wrote it to the course)
        text = (release / "starter" / rel).read_text()
        assert text == (course / "source" / rel).read_text(), f"starter/{rel} is not the course's starter module"
        assert "BEGIN SOLUTION" not in text
    for assignment, files in graded_files().items():
        for rel in files:
            assert "raise NotImplementedError()" in (release / "starter" / assignment / rel).read_text()
    for assignment in assignments():
        assert (release / "starter" / assignment / f"{assignment}.ipynb").is_file()


@pytest.mark.slow
def test_released_notebooks_grade_every_public_problem_and_hide_the_hidden_ones(built_release):
    release = Path(built_release["release"])
    for assignment in assignments():
        nb = nbformat.read(release / "starter" / assignment / f"{assignment}.ipynb", as_version=4)
        public = {p.id for p in select(assignment) if not p.needs_reference}
        assert set(checked_problems(nb)) == public
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN HIDDEN TESTS" not in text and "match_reference" not in text
        hidden_points = sum(p.points for p in select(assignment) if p.needs_reference)
        cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert sum(c.metadata["nbgrader"]["points"] for c in cells) == \
            sum(p.points for p in select(assignment) if not p.needs_reference) + hidden_points


@pytest.mark.slow
def test_make_grade_works_in_the_release_with_public_checks_only(built_release, tmp_path):
    release = Path(built_release["release"])
    proc = subprocess.run(["make", "-s", "grade", f"PY={sys.executable}", "PROBLEM=reward_to_go,returns_match_reference",
                           f"RESULTS={tmp_path / 'r.json'}"], cwd=release, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "public checks only" in proc.stdout and "not implemented yet" in proc.stdout
    assert "hw2/reward_to_go" in proc.stdout and "returns_match_reference" not in proc.stdout
    listed = subprocess.run(["make", "-s", "list", f"PY={sys.executable}"], cwd=release, capture_output=True,
                            text=True, timeout=300)
    assert "hw2/reward_to_go" in listed.stdout


def test_the_makefile_has_the_instructor_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ["release:", "autograde:", "gradescope:"]:
        assert f"\n{target}" in text


def test_a_handout_opened_in_the_kit_grades_starter_or_the_chosen_submission(monkeypatch):
    """`make notebook HW=hw2` opens assignments/source/hw2/hw2.ipynb: its grade cells must find modules."""
    from autograder.paths import ROOT, SOLUTIONS, STARTER

    monkeypatch.delenv("GRADER_SUBMISSION", raising=False)
    assert find_submission("hw2", ROOT / "assignments" / "source" / "hw2") == STARTER
    monkeypatch.setenv("GRADER_SUBMISSION", str(SOLUTIONS))
    assert find_submission("hw2", ROOT / "assignments" / "source" / "hw2") == SOLUTIONS


@pytest.mark.slow
def test_the_handouts_first_grade_cell_runs_in_a_kernel_from_the_notebooks_own_folder():
    import nbformat
    from nbclient import NotebookClient

    from autograder.paths import ROOT, SOLUTIONS

    folder = ROOT / "assignments" / "source" / "hw2"
    nb = nbformat.read(folder / "hw2.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code" and "check(" in c.source)
    nb.cells = [first]
    import os

    os.environ["GRADER_SUBMISSION"] = str(SOLUTIONS)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        del os.environ["GRADER_SUBMISSION"]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in nb.cells[0].outputs)
    assert any("text/html" in o.get("data", {}) for o in nb.cells[0].outputs), nb.cells[0].outputs
    assert "points, passed" in text, nb.cells[0].outputs
