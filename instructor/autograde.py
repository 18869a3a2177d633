"""``make autograde``: grade a class's submissions in parallel, into nbgrader's gradebook.

    submissions/<student>/<assignment>/  (nbgrader's submitted/ layout; extra files are ignored)
      → course/submitted/<student>/<assignment>/: the modules the student writes, as submitted,
        and the RELEASED notebook (the notebook is the handout, not student input)
      → JOBS warm graders at once (instructor/workers.py: `python -m autograder serve`, torch imported
        and the fork server started once per slot), each grading (student, assignment) after another as
          python -m autograder grade --submission course/class/<student>/<assignment>/submission
        would (the starter layout completed with the student's modules; hidden checks included; every
        problem in the sandbox) → course/class/<student>/<assignment>/results.json (Gradescope's format)
      → ONE writer (a thread of this process, holding the gradebook's file lock) imports each
        results.json into nbgrader's gradebook (course/gradebook.db, through nbgrader's API), and
        writes course/autograded/<student>/<assignment>/<assignment>.ipynb: the released notebook with
        each grade cell's output (the grader's feedback)
      → nbgrader generate_feedback <a> --force   (hidden-test source removed)
      → nbgrader export --to grades.csv          (from the gradebook)

Why one writer: nbgrader's gradebook is one SQLite file, and nbgrader has no parallel autograde
(jupyter/nbgrader#174). Workers only write their own folder; every write to the gradebook goes
through ``import_results``, under an exclusive lock on ``gradebook.db.lock``, so that two
``make autograde`` runs at once serialise there too. An import REPLACES the student's grades for
that assignment (update-or-create): grading again never duplicates a grade, and a grade is in the
gradebook once its import returned.

Resumable: each job's key hashes the student's modules, the grader, the reference, the given code
and the grade's settings that change a verdict (``GradeSettings.key()``: device, budgets, memory,
skip-slow) and problems; a job whose results.json was imported under the same key is not graded again
(``force`` regrades all), and a class graded again with ``DEVICE=cuda`` or another budget is graded
again. Every setting reaches the grader on its command line, never through the environment. A student
whose grading runs past the settings' ``total_seconds`` is killed and gets 0 on every problem with the
diagnosis "student-time-limit": a hang never stalls the class.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder.render import markdown, notebook_outputs
from autograder.results import GradeRun, ProblemInfo, ProblemResult
from autograder.settings import GradeSettings
from instructor.completion import complete_starter, student_module
from instructor.course import BUILD, CHECK_CALL, CourseError, build_course, generate, graded_files, nbgrader
from instructor.workers import Worker, WorkerGone, WorkerPool

KILL_GRACE = 60.0  # after the budget: the grader writes its results by then, or it is killed
STUDENT_LIMIT = "student-time-limit"
LIMIT_DIAGNOSES = ("time-limit", "memory-limit", "out-of-time", STUDENT_LIMIT)


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- staging
def stage_submissions(submissions: Path, course: Path, names: list[str], log=print) -> dict[str, list[str]]:
    """Copy each ``<student>/<a>/`` into ``course/submitted/``; return assignment → students."""
    graded = graded_files()
    staged: dict[str, list[str]] = {}
    for student_dir in sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_dir.name
        for assignment in names:
            src = student_dir / assignment
            if not src.is_dir():
                continue
            dst = course / "submitted" / student / assignment
            if dst.exists():
                shutil.rmtree(dst)
            dst.mkdir(parents=True)
            kept = []
            for rel in graded.get(assignment, []):
                if student_module(src, rel):  # a regular file: never what a symbolic link points at
                    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src / rel, dst / rel)
                    kept.append(rel)
            shutil.copyfile(course / "release" / assignment / f"{assignment}.ipynb", dst / f"{assignment}.ipynb")
            if (src / "timestamp.txt").is_file():
                shutil.copyfile(src / "timestamp.txt", dst / "timestamp.txt")
            missing = sorted(set(graded.get(assignment, [])) - set(kept))
            log(f"{student}/{assignment}: {', '.join(kept) or 'no modules'}"
                + (f" (missing: {', '.join(missing)})" if missing else ""))
            staged.setdefault(assignment, []).append(student)
    return staged


def _tree_digest(h, root: Path, pattern: str = "*.py") -> None:
    for path in sorted(Path(root).rglob(pattern)):
        if path.is_file() and not {"__pycache__", ".hypothesis", ".ipynb_checkpoints"} & set(path.parts):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")


def grader_fingerprint() -> str:
    """What a grade depends on besides the submission: the grader, the reference, the given code."""
    from autograder.paths import ROOT

    h = hashlib.sha256()
    for top in ("autograder", "solutions", "rlkit", "starter"):
        _tree_digest(h, ROOT / top)
    for name in ("requirements.txt",):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


@dataclass
class Job:
    student: str
    assignment: str
    key: str
    folder: Path  # course/class/<student>/<assignment>/

    @property
    def results(self) -> Path:
        return self.folder / "results.json"

    @property
    def imported(self) -> Path:
        return self.folder / "imported.json"

    @property
    def name(self) -> str:
        return f"{self.student}/{self.assignment}"


def key_options(settings: GradeSettings, problem: str | None) -> dict:
    """What a grade depends on besides the submission and the grader: the settings that change a verdict
    (not how many problems run side by side) and the problems graded."""
    return {"settings": settings.key(), "problem": problem}


def job_key(staged: Path, modules: list[str], fingerprint: str, options: dict) -> str:
    h = hashlib.sha256(fingerprint.encode() + json.dumps(options, sort_keys=True).encode())
    for rel in sorted(modules):
        path = Path(staged) / rel
        h.update(rel.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"<missing>") + b"\0")
    return h.hexdigest()


def grading_tree(job: Job, staged: Path, modules: list[str]) -> Path:
    """``job.folder/submission/<a>/``: the starter's files with the student's modules over them (a module missing
    from the submission is graded as missing, not as the starter's stub: ``completion.complete_starter``)."""
    from autograder.paths import STARTER

    root = job.folder / "submission"
    if root.exists():
        shutil.rmtree(root)
    complete_starter(STARTER / job.assignment, root / job.assignment, modules, Path(staged))
    return root


# --------------------------------------------------------------------------- one worker
def _write_json(path: Path, data: dict) -> None:
    """A job's bookkeeping (imported.json); results.json is written by ``GradeRun.write`` alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def limit_results(problems, seconds: float, why: str) -> GradeRun:
    """The grade of a student whose whole grading was stopped: every problem 0, one diagnosis."""
    return GradeRun([ProblemResult(ProblemInfo.of(p), 0.0, "failed", why, diagnosis=STUDENT_LIMIT) for p in problems],
                    seconds, output=why)


GRADER_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def grade_command(submission: Path, assignment: str, results: Path, options: dict) -> list[str]:
    """The grade's command line; ``options["settings"]`` (GradeSettings) all on it, whatever the environment."""
    command = [sys.executable, "-m", "autograder", "grade", "--submission", str(submission),
               "--assignment", assignment, "--results", str(results), *options["settings"].argv()]
    if options.get("problem"):
        command += ["--problem", options["problem"]]
    return command


def run_job(job: Job, submission: Path, options: dict, command=grade_command, worker: Worker | None = None) -> dict:
    """Grade one (student, assignment), in ``worker`` (warm) or else in a process of its own; always leaves a
    results.json. Returns its meta."""
    from autograder.runner import select

    start = time.monotonic()
    budget = options["settings"].total_seconds
    tmp_results = job.folder / "grading.json"
    with contextlib.suppress(FileNotFoundError):
        tmp_results.unlink()
    argv = command(submission, job.assignment, tmp_results, options)
    log = job.folder / "grader.log"
    if worker is not None:
        log.write_bytes(b"")
        try:
            status = worker.grade(argv[3:], log, budget + KILL_GRACE)
        except WorkerGone as gone:
            status = gone.status
    else:
        status = _run_alone(argv, log, budget + KILL_GRACE)
    seconds = time.monotonic() - start
    if status is None or not tmp_results.is_file():
        problems = select(job.assignment, options.get("problem"),
                          include_slow=not options["settings"].skip_slow)
        why = (f"grading stopped: the whole grade of this submission ran past {budget + KILL_GRACE:g} s"
               if status is None else f"grading stopped: the grader exited with status {status} without results")
        limit_results(problems, seconds, why).write(tmp_results, markdown)
    graded = GradeRun.read(tmp_results)
    grader_error = status == 3 and not graded.results
    os.replace(tmp_results, job.results)
    return {"key": job.key, "seconds": round(seconds, 3), "status": status, "grader_error": grader_error}


def _run_alone(argv: list[str], log: Path, seconds: float) -> int | None:
    """``argv`` in a process of its own, killed with its group after ``seconds`` (then None)."""
    from autograder.paths import ROOT

    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=GRADER_ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            return proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None


# --------------------------------------------------------------------------- the one writer
@contextlib.contextmanager
def gradebook_lock(course: Path):
    """Exclusive across processes: every writer of course/gradebook.db holds it."""
    with open(Path(course) / "gradebook.db.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


COURSE_ID = "rl-homework-kit"


def problem_results(run: GradeRun) -> dict[str, ProblemResult]:
    """problem id → its result, from a grade's results.json (read through the results model)."""
    return {r.problem.id: r for r in run.results}


def cell_outputs(problem_ids: list[str], results: dict[str, ProblemResult]):
    """The outputs a grade cell gets: what ``check`` shows live (``render.notebook_outputs``)."""
    import nbformat

    return [nbformat.from_dict(output) for output in notebook_outputs(problem_ids, results)]


def import_results(course: Path, student: str, assignment: str, results: GradeRun | dict, log=print) -> float:
    """Write one student's results for one assignment into nbgrader's gradebook (replacing what was there)
    and the autograded notebook; return the total imported. Call with ``gradebook_lock`` held."""
    import nbformat
    from nbgrader.api import Gradebook

    course = Path(course)
    tests = problem_results(results if isinstance(results, GradeRun) else GradeRun.from_json(results))
    nb_path = course / "release" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    # grade cell → the problems it checks, from the source notebook: the release has no hidden-test code
    source = nbformat.read(course / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    checks = {c.metadata["nbgrader"]["grade_id"]: CHECK_CALL.findall(c.source) for c in source.cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    total = 0.0
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        warnings.simplefilter("ignore")  # nbgrader's add_submission trips SQLAlchemy's autoflush warnings
        gb.update_or_create_student(student)
        staged = course / "submitted" / student / assignment / "timestamp.txt"
        kwargs = {"timestamp": staged.read_text().strip()} if staged.is_file() else {}
        gb.update_or_create_submission(assignment, student, **kwargs)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("grade"):
                continue
            ids = checks.get(meta["grade_id"], [])
            score = sum(tests[pid].score for pid in ids if pid in tests)
            grade = gb.find_grade(meta["grade_id"], assignment, assignment, student)
            grade.auto_score = min(score, float(meta.get("points") or 0.0))
            grade.needs_manual_grade = grade.manual_score is not None
            total += grade.auto_score
            cell.outputs = cell_outputs(ids, tests)
        gb.db.commit()
    autograded = course / "autograded" / student / assignment
    if autograded.exists():
        shutil.rmtree(autograded)
    submitted = course / "submitted" / student / assignment
    shutil.copytree(submitted, autograded, ignore=shutil.ignore_patterns(f"{assignment}.ipynb"))
    nbformat.write(nb, autograded / f"{assignment}.ipynb")
    return total


def gradebook_snapshot(course: Path) -> list[tuple]:
    """Every grade in nbgrader's gradebook as sorted rows (student, assignment, notebook, grade cell, auto score,
    manual score, max score, needs manual grade): what two gradings of a class must agree on."""
    from nbgrader.api import Gradebook

    rows = []
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}", COURSE_ID) as gb:
        warnings.simplefilter("ignore")
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    rows += [(submission.student_id, assignment.name, notebook.name, grade.name, grade.auto_score,
                              grade.manual_score, grade.max_score, grade.needs_manual_grade)
                             for grade in notebook.grades]
    return sorted(rows, key=repr)


class Writer(threading.Thread):
    """The single importer: takes finished jobs from a queue, imports them in order of arrival."""

    def __init__(self, course: Path, log=print):
        super().__init__(daemon=True, name="gradebook-writer")
        self.course, self.log = Path(course), log
        self.jobs: queue.Queue = queue.Queue()
        self.errors: list[str] = []
        self.imported = 0

    def run(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                return
            job, meta = item
            try:
                results = GradeRun.read(job.results)
                with gradebook_lock(self.course):
                    import_results(self.course, job.student, job.assignment, results, log=self.log)
                _write_json(job.imported, meta)
                self.imported += 1
            except Exception as err:  # noqa: BLE001 - reported at the end; the other students go on
                self.errors.append(f"{job.name}: import failed: {type(err).__name__}: {err}")


# --------------------------------------------------------------------------- progress
class Progress:
    """One line, rewritten in place on a terminal (a line per student otherwise), with an ETA."""

    def __init__(self, total: int, jobs: int, stream=None):
        self.total, self.jobs, self.done, self.start = total, jobs, 0, time.monotonic()
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lock = threading.Lock()

    def line(self, last: str = "") -> str:
        elapsed = time.monotonic() - self.start
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        eta_text = "--:--" if eta != eta else _clock(eta)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} graded, "
                f"{_clock(elapsed)} elapsed, ETA {eta_text}" + (f"  ({last})" if last else ""))

    def step(self, last: str = "") -> None:
        with self.lock:
            self.done += 1
            text = self.line(last)
            if self.tty:
                self.stream.write("\r" + text[:160].ljust(160))
                if self.done == self.total:
                    self.stream.write("\n")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


# --------------------------------------------------------------------------- the whole class
def generate_if_changed(course: Path, only: list[str] | None = None, log=print) -> list[str]:
    """``nbgrader generate_assignment`` for the assignments whose source changed since their release was made
    (a release is made once per version of the handout, not once per ``make autograde``)."""
    from instructor.course import assignments

    names = [a for a in assignments(course) if not only or a in only]
    for assignment in names:
        h = hashlib.sha256()
        _tree_digest(h, course / "source" / assignment, "*")
        stamp = course / "release" / assignment / ".source-sha256"
        if stamp.is_file() and stamp.read_text() == h.hexdigest() and (course / "gradebook.db").is_file():
            continue
        generate(course, [assignment], log=log)
        stamp.write_text(h.hexdigest())
    return names


@dataclass
class ClassRun:
    csv: Path
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    grading_wall: float = 0.0  # from the first grading started to the last import: wall less the fixed overhead


def autograde(submissions: Path, course: Path = BUILD / "course", csv: Path | None = None,
              only: list[str] | None = None, settings: GradeSettings = GradeSettings(),
              feedback: bool = True, log=print, jobs: int | None = None, force: bool = False,
              problem: str | None = None,
              command=grade_command, progress_stream=None, run: ClassRun | None = None) -> Path:
    """Grade every submission, ``jobs`` at a time (``make autograde``: the usable cores), with ``settings``
    (its ``total_seconds``: one student's whole grade per assignment); return the CSV's path.

    ``run`` (a ClassRun) is filled with what was graded, skipped, and how long each took."""
    start = time.monotonic()
    course = build_course(Path(course), log=log)
    names = generate_if_changed(course, only, log=log)
    staged = stage_submissions(Path(submissions), course, names, log=log)
    if not staged:
        raise CourseError(f"no submissions in {submissions}: expected <student>/<assignment>/ folders "
                          f"for assignments {', '.join(names)}")
    jobs = max(1, jobs or 1)  # the command line's default is usable_cores(); a caller that says nothing gets 1
    # students are graded JOBS at a time; each grader takes its share of the cores for its problems
    options = {"settings": dataclasses.replace(settings, jobs=max(1, usable_cores() // jobs)), "problem": problem}
    fingerprint = grader_fingerprint()
    graded = graded_files()
    todo: list[Job] = []
    run = run if run is not None else ClassRun(csv=Path())
    for assignment in sorted(staged):
        for student in staged[assignment]:
            folder = course / "class" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            key = job_key(course / "submitted" / student / assignment, graded.get(assignment, []), fingerprint,
                          key_options(settings, problem))
            job = Job(student, assignment, key, folder)
            done = json.loads(job.imported.read_text()) if job.imported.is_file() else {}
            if not force and done.get("key") == key and job.results.is_file():
                run.skipped.append(job.name)
                continue
            with contextlib.suppress(FileNotFoundError):
                job.imported.unlink()
            todo.append(job)
    log(f"{len(todo)} to grade, {len(run.skipped)} unchanged since they were graded"
        + (" (FORCE=1 regrades them)" if run.skipped else "") + f"; {jobs} at a time")
    writer = Writer(course, log=log)
    writer.start()
    bar = Progress(len(todo), jobs, progress_stream)
    # Warm workers run the real grader; a stand-in command (the tests') runs as a process per student.
    workers = WorkerPool(GRADER_ENV) if command is grade_command else None

    def work(job: Job) -> None:
        modules = graded.get(job.assignment, [])
        tree = grading_tree(job, course / "submitted" / job.student / job.assignment, modules)
        try:
            meta = run_job(job, tree, options, command, workers.mine() if workers else None)
        except Exception as err:  # noqa: BLE001 - one student's failure must not stop the class
            run.errors.append(f"{job.name}: {type(err).__name__}: {err}")
            bar.step(f"{job.name} ERROR")
            return
        run.seconds[job.name] = meta["seconds"]
        if meta["grader_error"]:
            run.errors.append(f"{job.name}: the grader could not grade (see {job.folder / 'grader.log'})")
        else:
            writer.jobs.put((job, meta))
            run.graded.append(job.name)
        bar.step(f"{job.name} {meta['seconds']:.0f} s")

    grading_start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(work, todo))
    finally:
        if workers:
            workers.close()
    writer.jobs.put(None)
    writer.join()
    run.grading_wall = time.monotonic() - grading_start
    run.errors += writer.errors
    for assignment in sorted(staged):
        if feedback:
            nbgrader(course, "generate_feedback", assignment, "--force", log=log)
    out = course / "grades.csv"
    nbgrader(course, "export", "--to", str(out), log=log)
    if csv:
        Path(csv).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, csv)
        out = Path(csv)
    run.csv, run.wall = out, time.monotonic() - start
    for error in run.errors:
        log(f"error: {error}")
    log(f"grades: {out}" + (f"; feedback: {course / 'feedback'}" if feedback else "")
        + f"; per-student results: {course / 'class'}")
    if run.errors:
        raise CourseError(f"{len(run.errors)} submission(s) could not be graded or imported:\n  "
                          + "\n  ".join(run.errors))
    return out


__all__ = ["autograde", "stage_submissions", "import_results", "gradebook_lock", "ClassRun"]

