"""`make autograde`: a class graded through nbgrader, end to end, on made-up submissions.

One session build (tests/instructor_builds.py) autogrades hw2 for three students:
correct (the reference), partly_wrong (returns.py with reward-to-go discounted from
the start, policy_gradient.py not implemented) and hangs (discounted_return loops
forever). Problems that train a policy are skipped, and each problem's time limit is
lowered to TIME_LIMIT seconds, to keep the test short.
"""

import csv
import json
from pathlib import Path

import pytest

from instructor.classroom import make_samples
from instructor.course import graded_files
from autograder.paths import SOLUTIONS
from autograder.runner import select
from tests.instructor_builds import TIME_LIMIT, autograded_class  # noqa: F401 - fixture

PUBLIC_FAST = [p for p in select("hw2") if not p.slow]
SLOW_POINTS = sum(p.points for p in select("hw2") if p.slow)
TOTAL = sum(p.points for p in select("hw2"))


def _grades(course) -> dict[str, dict[str, float]]:
    """student → grade cell → auto score, read from nbgrader's gradebook (its SQLite db) with nbgrader's API."""
    from nbgrader.api import Gradebook

    table: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}", "rl-homework-kit") as gb:
        for student in ["correct", "partly_wrong", "hangs"]:
            notebook = gb.find_submission_notebook("hw2", "hw2", student)
            table[student] = {grade.name: grade.auto_score for grade in notebook.grades}
    return table


def test_samples_are_three_students_in_nbgrader_layout(tmp_path):
    samples = make_samples(tmp_path / "samples")
    assert sorted(p.name for p in samples.iterdir() if p.is_dir()) == ["correct", "hangs", "partly_wrong"]
    for rel in graded_files()["hw2"]:
        assert (samples / "correct" / "hw2" / rel).read_text() == (SOLUTIONS / "hw2" / rel).read_text()
    assert "while True" in (samples / "hangs" / "hw2" / "returns.py").read_text()


def test_the_samples_bugs_come_from_the_variants_library_and_are_recorded(tmp_path):
    """The samples are the made-up class's generator with a fixed selection: the partly wrong student's bugs are
    variants of instructor/variants, and manifest.json says what each student must fail."""
    from instructor.variants import collect

    samples = make_samples(tmp_path / "samples")
    manifest = json.loads((samples / "manifest.json").read_text())["students"]
    buggy = {v.name: v for v in collect("BUGGY")}
    bugs = {b["variant"]: b["module"] for b in manifest["partly_wrong"]["bugs"]}
    assert bugs == {"rtg_discount_from_start": "hw2/returns.py", "learner_actions_kept": "hw1/imitation.py"}
    for name, module in bugs.items():
        assert buggy[name].module == module
        assert f"a bug from instructor/variants ({name})" in (samples / "partly_wrong" / module).read_text()
    assert manifest["correct"]["must_fail"] == {} and manifest["correct"]["may_fail"] == []
    assert manifest["partly_wrong"]["stubs"] == ["hw2/policy_gradient.py"]
    assert manifest["partly_wrong"]["must_fail"]["hw2/pg_baseline"] == ["not-implemented"]
    assert "hw2/discounted_return" not in manifest["partly_wrong"]["may_fail"]
    assert manifest["hangs"]["broken"] == {"kind": "hangs", "functions": {"hw1/imitation.py": "bc_loss",
                                                                         "hw2/returns.py": "discounted_return"}}
    assert "time-limit" in manifest["hangs"]["diagnoses"]["hw2/discounted_return"]


def test_the_partly_wrong_student_is_partly_wrong_in_every_assignment(tmp_path):
    from tests.conftest import grade_problem

    student = make_samples(tmp_path / "samples") / "partly_wrong"
    for problem, passes in [("reward_to_go", False), ("discounted_return", True),
                            ("dagger_relabel", False), ("bc_loss", True)]:
        assert grade_problem(student, problem, with_reference=False).passed == passes, problem


@pytest.mark.slow
def test_grades_csv_ranks_the_class(autograded_class):
    with open(autograded_class["csv"]) as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == "hw2"}
    assert set(rows) == {"correct", "partly_wrong", "hangs"}
    score = {s: float(r["score"]) for s, r in rows.items()}
    assert all(float(r["max_score"]) == TOTAL for r in rows.values())
    assert score["correct"] == TOTAL - SLOW_POINTS, autograded_class["log"]
    assert 0 < score["partly_wrong"] < score["correct"]
    assert score["hangs"] == 0


@pytest.mark.slow
def test_each_grade_cell_scores_its_own_problem(autograded_class):
    grades = _grades(autograded_class["course"])
    correct, wrong, hangs = grades["correct"], grades["partly_wrong"], grades["hangs"]
    for p in PUBLIC_FAST + [p for p in select("hw2") if p.needs_reference]:
        assert correct[f"check_{p.name}"] == p.points, p.id
    assert wrong["check_discounted_return"] == 2 and wrong["check_gae"] == 4
    assert wrong["check_reward_to_go"] == 0 and wrong["check_pg_baseline"] == 0
    assert wrong["check_returns_match_reference"] == 0  # the hidden check ran, and caught the bug too
    assert set(hangs.values()) == {0}


@pytest.mark.slow
def test_a_hang_costs_only_its_own_problems_time_limit(autograded_class):
    course = Path(autograded_class["course"])
    import nbformat

    nb = nbformat.read(course / "autograded" / "hangs" / "hw2" / "hw2.ipynb", as_version=4)
    outputs = {c.metadata["nbgrader"]["grade_id"]: "".join(o.get("evalue", "") + o.get("text", "")
                                                             + o.get("data", {}).get("text/plain", "")
                                                             for o in c.get("outputs", []))
               for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert "did not return within" in outputs["check_discounted_return"], outputs["check_discounted_return"]
    assert "not implemented yet" in outputs["check_reward_to_go"]
    assert "CellTimeoutError" not in "".join(outputs.values())


@pytest.mark.slow
def test_feedback_is_generated_for_every_student(autograded_class):
    feedback = Path(autograded_class["course"]) / "feedback"
    for student in ["correct", "partly_wrong", "hangs"]:
        assert (feedback / student / "hw2" / "hw2.html").is_file()
    page = (feedback / "partly_wrong" / "hw2" / "hw2.html").read_text()
    assert "discounted_reward_to_go" in page and "hint" in page


def test_feedback_tracebacks_do_not_quote_hidden_tests():
    import nbformat

    from instructor.feedback import ShortenTracebacks

    hidden = nbformat.v4.new_code_cell('### BEGIN HIDDEN TESTS\ncheck("hw2/x")\n### END HIDDEN TESTS')
    hidden.outputs = [nbformat.v4.new_output("error", ename="TimeoutError", evalue="slow",
                                             traceback=['----> 2 check("hw2/x")', "### BEGIN HIDDEN TESTS"])]
    public = nbformat.v4.new_code_cell('check("hw2/y")')
    public.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue="expected 1, got 2",
                                             traceback=["  File notebook.py", "CheckFailed: expected 1, got 2"])]
    for cell in (hidden, public):
        ShortenTracebacks().preprocess_cell(cell, {}, 0)
    assert hidden.outputs[0]["traceback"] == ["TimeoutError: slow"]
    assert public.outputs[0]["traceback"] == ["CheckFailed: expected 1, got 2"]
