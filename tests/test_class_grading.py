"""Class grading: parallel and resumable autograde, the gradebook's one writer, the made-up class, the report.

Fast tests replace the grader by a stand-in command (a few lines of Python that write a results.json
derived from the student's module), so that JOBS, resuming and the student time limit are checked in
seconds. The slow tests grade a real made-up class of six (hw2's returns problems only) and check the
class report, and the report from a Gradescope export of the same class, against the injected bugs.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from autograder.runner import select
from autograder.settings import GradeSettings
from instructor import autograde as ag
from instructor.class_report import (check_against_manifest, from_course, from_gradescope_export,
                                     gradescope_export_zip, summarise, write_report)
from instructor.classroom import make_class

RETURNS = ["discounted_return", "reward_to_go", "gae", "gae_lambda_one", "returns_match_reference"]
CLASS_SETTINGS = GradeSettings(skip_slow=True, time_limit=10, total_seconds=240)

# --------------------------------------------------------------------------- a stand-in grader
FAKE = textwrap.dedent('''
    import hashlib, json, sys, time
    from pathlib import Path
    submission, assignment, results, problems = sys.argv[1:5]
    text = (Path(submission) / assignment / "returns.py").read_bytes()
    if b"HANG" in text:
        time.sleep(1000)
    digest = hashlib.sha256(text).digest()
    time.sleep(digest[0] / 255 * 0.3)  # finishing order differs from the submission order
    tests = []
    for i, p in enumerate(json.loads(problems)):
        ok = (digest[i + 1] % 3) != 0
        tests.append({"name": p["id"] + ": t", "score": p["points"] if ok else 0.0, "max_score": p["points"],
                      "status": "passed" if ok else "failed", "output": "fake", "tags": [assignment],
                      "extra_data": {"problem": p["id"], "diagnosis": "" if ok else "wrong-value"}})
    Path(results).write_text(json.dumps({"score": sum(t["score"] for t in tests), "tests": tests}))
''')


def fake_command(submission, assignment, results, options):
    problems = [{"id": p.id, "points": p.points} for p in select(assignment)]
    return [sys.executable, "-c", FAKE, str(submission), assignment, str(results), json.dumps(problems)]


def expected_total(student_dir: Path) -> float:
    digest = hashlib.sha256((student_dir / "hw2" / "returns.py").read_bytes()).digest()
    return sum(p.points for i, p in enumerate(select("hw2")) if digest[i + 1] % 3)


def write_students(root: Path, n: int, hang: tuple[str, ...] = ()) -> Path:
    from autograder.paths import SOLUTIONS

    for i in range(n):
        name = f"s{i:02d}"
        d = root / name / "hw2"
        d.mkdir(parents=True)
        (d / "returns.py").write_text((SOLUTIONS / "hw2" / "returns.py").read_text()
                                      + f"\n# student {i}\n" + ("# HANG\n" if name in hang else ""))
        (d / "policy_gradient.py").write_text((SOLUTIONS / "hw2" / "policy_gradient.py").read_text())
    return root


def csv_rows(path: Path) -> list[str]:
    return sorted(Path(path).read_text().splitlines())


@pytest.fixture(scope="module")
def course_template(tmp_path_factory):
    """A course with hw2 generated (nbgrader generate_assignment), copied by each test that grades."""
    from instructor.course import build_course

    from instructor.autograde import generate_if_changed

    course = build_course(tmp_path_factory.mktemp("template") / "course", log=lambda *_: None)
    generate_if_changed(course, ["hw2"], log=lambda *_: None)
    return course


def fresh_course(template: Path, where: Path) -> Path:
    import shutil

    shutil.copytree(template, where)
    return where


# --------------------------------------------------------------------------- JOBS, resuming, time limit
@pytest.mark.slow
def test_parallel_and_sequential_runs_give_the_same_gradebook_and_csv(tmp_path, course_template):
    subs = write_students(tmp_path / "subs", 6)
    csvs, books = {}, {}
    for jobs in (1, 3):
        course = fresh_course(course_template, tmp_path / f"course{jobs}")
        run = ag.ClassRun(csv=Path())
        csvs[jobs] = ag.autograde(subs, course, only=["hw2"], jobs=jobs, command=fake_command, feedback=False,
                                  log=lambda *_: None, run=run)
        assert sorted(run.graded) == [f"s{i:02d}/hw2" for i in range(6)]
        books[jobs] = ag.gradebook_snapshot(course)
    assert csv_rows(csvs[1]) == csv_rows(csvs[3])
    assert books[1] == books[3] and len(books[1]) >= 6 and {row[0] for row in books[1]} == {f"s{i:02d}" for i in range(6)}
    scores = {line.split(",")[3]: float(line.split(",")[9]) for line in csv_rows(csvs[3]) if line.startswith("hw2")}
    assert scores == {f"s{i:02d}": expected_total(subs / f"s{i:02d}") for i in range(6)}
    assert len(set(scores.values())) > 1  # the stand-in grades differ: the comparison can tell students apart


@pytest.mark.slow
def test_rerun_grades_only_new_or_changed_submissions(tmp_path, course_template, monkeypatch):
    monkeypatch.setattr(ag, "grader_fingerprint", lambda: "fixed for this test")
    subs = write_students(tmp_path / "subs", 4)
    course = fresh_course(course_template, tmp_path / "course")
    quiet = {"only": ["hw2"], "jobs": 2, "command": fake_command, "feedback": False, "log": lambda *_: None}
    ag.autograde(subs, course, **quiet)
    again = ag.ClassRun(csv=Path())
    ag.autograde(subs, course, run=again, **quiet)
    assert again.graded == [] and len(again.skipped) == 4
    (subs / "s02" / "hw2" / "returns.py").write_text((subs / "s02" / "hw2" / "returns.py").read_text() + "# edit\n")
    write_students(tmp_path / "more", 5)
    (subs / "s04").mkdir()
    (tmp_path / "more" / "s04" / "hw2").rename(subs / "s04" / "hw2")
    changed = ag.ClassRun(csv=Path())
    csv = ag.autograde(subs, course, run=changed, **quiet)
    assert sorted(changed.graded) == ["s02/hw2", "s04/hw2"], changed.graded
    forced = ag.ClassRun(csv=Path())
    ag.autograde(subs, course, run=forced, force=True, **quiet)
    assert len(forced.graded) == 5
    on_cuda = ag.ClassRun(csv=Path())  # the stand-in grades the same anywhere; the real grader may not
    ag.autograde(subs, course, run=on_cuda, settings=GradeSettings(device="cuda"), **quiet)
    assert len(on_cuda.graded) == 5, on_cuda.skipped
    rows = [line for line in csv_rows(csv) if line.startswith("hw2")]
    assert len(rows) == 5  # one row per student: regrading replaced, never added


def test_the_job_key_changes_with_the_settings_that_change_a_verdict(tmp_path):
    """`make autograde DEVICE=cuda` (or another budget) after a CPU run regrades: the key holds the settings."""
    (tmp_path / "returns.py").write_text("# a student's module\n")

    def key(problem=None, **settings):
        return ag.job_key(tmp_path, ["returns.py"], "grader", ag.key_options(GradeSettings(**settings), problem))

    base = key()
    changed = [key(device="cuda"), key(total_seconds=240.0), key(memory_mb=1024), key(skip_slow=True),
               key(time_limit=5.0), key(problem="gae")]
    assert base not in changed and len(set(changed)) == len(changed)
    assert key(jobs=2, verbose=True) == base  # how many problems run side by side changes no verdict


def test_each_grader_gets_every_setting_on_its_command_line(tmp_path):
    """The warm worker's environment (GRADER_* of the instructor's shell) cannot change a student's grade."""
    from autograder.__main__ import build_parser

    settings = GradeSettings(device="cuda", total_seconds=200.0, memory_mb=900, jobs=1)
    argv = ag.grade_command(tmp_path, "hw2", tmp_path / "r.json", {"settings": settings, "problem": "gae"})
    args = build_parser().parse_args(argv[3:])
    assert GradeSettings.from_args(args, {"GRADER_DEVICE": "cpu", "GRADER_SKIP_SLOW": "1",
                                          "GRADER_TIME_LIMIT": "3"}) == settings
    assert args.problem == "gae" and args.assignment == "hw2"


@pytest.mark.slow
def test_a_hanging_student_is_stopped_at_the_student_limit(tmp_path, course_template, monkeypatch):
    monkeypatch.setattr(ag, "KILL_GRACE", 1.0)
    subs = write_students(tmp_path / "subs", 3, hang=("s01",))
    course = fresh_course(course_template, tmp_path / "course")
    run = ag.ClassRun(csv=Path())
    csv = ag.autograde(subs, course, only=["hw2"], jobs=2, command=fake_command, feedback=False,
                       log=lambda *_: None, run=run, settings=GradeSettings(total_seconds=2.0))
    assert run.seconds["s01/hw2"] < 30
    results = json.loads((course / "class" / "s01" / "hw2" / "results.json").read_text())
    assert {t["extra_data"]["diagnosis"] for t in results["tests"]} == {ag.STUDENT_LIMIT}
    scores = {line.split(",")[3]: float(line.split(",")[9]) for line in csv_rows(csv) if line.startswith("hw2")}
    assert scores["s01"] == 0 and scores["s00"] == expected_total(subs / "s00")
    assert "s01" in summarise(from_course(course)).limits


# --------------------------------------------------------------------------- the gradebook's writers
def _writer(course: str, students: list[str], scale: float) -> None:
    results = {"tests": [{"name": f"{p.id}: t", "score": p.points * scale, "max_score": p.points,
                          "status": "passed", "tags": ["hw2"], "extra_data": {"problem": p.id}}
                         for p in select("hw2")]}
    for _ in range(2):  # and again: a second import of the same student replaces, never adds
        for student in students:
            with ag.gradebook_lock(Path(course)):
                ag.import_results(Path(course), student, "hw2", results)


@pytest.mark.slow
def test_two_writers_at_once_never_lose_or_duplicate_a_grade(tmp_path, course_template):
    course = fresh_course(course_template, tmp_path / "course")
    a = [f"a{i:02d}" for i in range(12)] + [f"both{i}" for i in range(6)]
    b = [f"b{i:02d}" for i in range(12)] + [f"both{i}" for i in reversed(range(6))]
    for student in set(a) | set(b):  # the students' submitted folders (the autograded copy comes from there)
        (course / "submitted" / student / "hw2").mkdir(parents=True)
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_writer, args=(str(course), a, 1.0)),
             spawn.Process(target=_writer, args=(str(course), b, 1.0))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cells = len(select("hw2"))
    db = sqlite3.connect(course / "gradebook.db")
    (submissions,) = db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()
    (grades,) = db.execute("SELECT COUNT(*) FROM grade").fetchone()
    (total,) = db.execute("SELECT SUM(auto_score) FROM grade").fetchone()
    assert submissions == len(set(a) | set(b)) == 30
    assert grades == 30 * cells
    assert total == pytest.approx(30 * sum(p.points for p in select("hw2")))


# --------------------------------------------------------------------------- the made-up class
def test_the_made_up_class_is_reproducible_and_records_its_bugs(tmp_path):
    one = make_class(tmp_path / "one", students=12, seed=3, only=["hw2"])
    two = make_class(tmp_path / "two", students=12, seed=3, only=["hw2"])
    assert one == two
    for name in one["students"]:
        for rel in ("hw2/returns.py", "hw2/policy_gradient.py"):
            assert (tmp_path / "one" / name / rel).read_text() == (tmp_path / "two" / name / rel).read_text()
    records = one["students"].values()
    assert all(0 <= len(r["bugs"]) <= 4 for r in records)
    assert {r["broken"]["kind"] for r in records if r["broken"]} == {"hangs"}  # 12 // 12 = one broken student
    assert sum(bool(r["bugs"]) for r in records) >= 6
    for name, r in one["students"].items():
        for bug in r["bugs"]:
            assert "# --- made-up student: a bug from instructor/variants" in (tmp_path / "one" / name / bug["module"]).read_text()
            for problem in bug["problems"]:
                assert f"hw2/{problem}" in r["must_fail"] and f"hw2/{problem}" in r["may_fail"]
    assert make_class(tmp_path / "three", students=12, seed=4, only=["hw2"]) != one


# --------------------------------------------------------------------------- a real class, and its report
@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, course_template):
    # The grader's own files are part of each job's key; another engineer editing them between the two runs
    # would (rightly) regrade: hold the fingerprint still for this class.
    mp = pytest.MonkeyPatch()
    mp.setattr(ag, "grader_fingerprint", lambda: "fixed for this test")
    where = tmp_path_factory.mktemp("class")
    manifest = make_class(where / "class", students=6, seed=1, only=["hw2"], modules=["hw2/returns.py"], broken=4)
    course = fresh_course(course_template, where / "course")
    run = ag.ClassRun(csv=Path())
    ag.autograde(where / "class", course, only=["hw2"], jobs=2, settings=CLASS_SETTINGS,
                 problem=",".join(RETURNS), feedback=False, log=lambda *_: None, run=run)
    yield {"manifest": manifest, "course": course, "run": run, "where": where}
    mp.undo()


@pytest.mark.slow
def test_the_class_report_counts_the_injected_bugs(graded_class):
    manifest, course = graded_class["manifest"], graded_class["course"]
    summary = summarise(from_course(course))
    assert set(summary.graded) == {f"hw2/{p}" for p in RETURNS}
    assert check_against_manifest(summary, manifest) == []
    bugged = [s for s, r in manifest["students"].items() if r["bugs"]]
    assert bugged, manifest  # the class has bugs from the library, not only broken students
    for problem in summary.graded:
        must = {s for s, r in manifest["students"].items() if problem in r["must_fail"]}
        may = {s for s, r in manifest["students"].items() if problem in r["may_fail"]}
        if must == may:  # every bug that reaches this problem must fail it: the count is exact
            assert summary.failed.get(problem, set()) == must
        assert sum(summary.diagnoses.get(problem, {}).values()) == len(summary.failed.get(problem, ()))
        for student, record in manifest["students"].items():
            if problem in record["diagnoses"]:  # a broken student: its kind's diagnosis, counted
                results = json.loads((course / "class" / student / "hw2" / "results.json").read_text())
                got = {t["extra_data"]["problem"]: t["extra_data"]["diagnosis"] for t in results["tests"]}
                assert got[problem] in record["diagnoses"][problem], (student, problem, got[problem])
    kinds = {r["broken"]["kind"]: s for s, r in manifest["students"].items() if r["broken"]}
    assert set(kinds) == {"hangs", "crashes", "prints", "syntax"}
    assert kinds["prints"] not in {s for f in summary.failed.values() for s in f}  # loud, but correct
    assert kinds["hangs"] in summary.limits and kinds["crashes"] not in summary.limits
    assert summary.diagnoses["hw2/discounted_return"]["syntax-error"] == 1


@pytest.mark.slow
def test_the_report_is_written_and_the_rerun_grades_nothing(graded_class, tmp_path):
    report = write_report(graded_class["course"], tmp_path / "report", manifest=graded_class["manifest"])
    text = report.read_text()
    assert "Every count is within what the injected bugs explain." in text
    assert (tmp_path / "report" / "scores_hw2.png").stat().st_size > 1000
    assert (tmp_path / "report" / "pass_rate.png").stat().st_size > 1000
    again = ag.ClassRun(csv=Path())
    ag.autograde(graded_class["where"] / "class", graded_class["course"], only=["hw2"], jobs=2,
                 settings=CLASS_SETTINGS, problem=",".join(RETURNS), feedback=False, log=lambda *_: None, run=again)
    assert again.graded == [] and len(again.skipped) == 6


@pytest.mark.slow
def test_the_report_from_a_gradescope_export_is_the_same(graded_class, tmp_path):
    course = graded_class["course"]
    export = gradescope_export_zip(course, tmp_path / "assignment_1_export.zip", "hw2")
    with zipfile.ZipFile(export) as archive:
        names = archive.namelist()
    assert "assignment_1_export/submission_metadata.yml" in names
    assert sum(n.endswith("/results.json") for n in names) == 6
    local, remote = summarise(from_course(course)), summarise(from_gradescope_export(export))
    assert remote.scores == local.scores and remote.failed == local.failed
    assert remote.diagnoses == local.diagnoses and remote.limits == local.limits
    assert check_against_manifest(remote, graded_class["manifest"]) == []
    lines = write_report(export, tmp_path / "report").read_text().splitlines()
    assert sum(line.startswith("| hw2/") for line in lines) == len(RETURNS)  # one row per graded problem
