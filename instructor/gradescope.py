"""``make gradescope``: one Gradescope autograder zip per assignment.

The zip (unpacked by Gradescope into /autograder/source):

    setup.sh          installs Python ≥ 3.11 and the pinned requirements into /autograder/venv
    run_autograder    grades /autograder/submission → /autograder/results/results.json
    gradescope.json   which assignment this bundle grades
    rlkit/ autograder/ pyproject.toml requirements.txt
    starter/          the given files (the layout a submission is completed with)
    solutions/        the reference, for the hidden checks: made readable by root only

``run`` (what run_autograder calls) finds the student's modules in the submission
(by path, or by file name for a flat upload), completes the starter layout with
them, and runs the full grader, hidden checks included. The judge runs as root;
student code runs in the sandbox's child under a fresh uid that can read neither
solutions/ nor write results/. Every path hangs off GRADER_ROOT (default
/autograder), so a test can run run_autograder against a temporary directory. The grade's
settings come from the environment as ``make grade``'s do (autograder/settings.py):
``GRADER_TOTAL_SECONDS`` below the assignment's Gradescope timeout (600 s by default),
``GRADER_MEMORY_MB``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import tempfile
import time
import traceback
import zipfile
from pathlib import Path

from autograder.homeworks import HOMEWORKS
from autograder.paths import ROOT, SOLUTIONS
from autograder.results import GradeRun
from autograder.starter import render
from instructor.completion import complete_starter
from instructor.course import BUILD, graded_files

TEMPLATES = Path(__file__).parent / "templates"
# What the bundle holds besides the starter and the reference: the grader, the given code, and the instructor
# commands run_autograder calls (not the expert trainer, nor the variants library: student code runs in the
# bundle, and the variants hold right answers that only the reference's permissions would otherwise guard).
SHIPPED = ["rlkit", "autograder", "instructor", "requirements.txt", "pyproject.toml"]
NOT_SHIPPED = {"experts", "variants"}
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}


# --------------------------------------------------------------------------- building the zip
def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # fixed time: the same kit, the same zip
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _files(top: Path, skip: set[str] = frozenset()):
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top)
        if path.is_file() and not (SKIP_PARTS | skip) & set(rel.parts) and not path.suffix == ".pyc" \
                and not any(part.startswith(".") or part.endswith(".egg-info") for part in rel.parts):
            yield path


def build_bundle(out: Path = BUILD / "gradescope", only: list[str] | None = None, log=print) -> list[Path]:
    """``out/<assignment>.zip`` for every assignment (or ``only`` these)."""
    out = Path(out)
    if out.suffix == ".zip":  # a single file name: one bundle, the first assignment asked for
        out, names = out.parent, [out.stem]
    else:
        names = [a for a in HOMEWORKS if not only or a in only]
    out.mkdir(parents=True, exist_ok=True)
    starter = render(SOLUTIONS)
    built = []
    for assignment in names:
        path = out / f"{assignment}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            _add(archive, "setup.sh", (TEMPLATES / "setup.sh").read_bytes(), 0o755)
            _add(archive, "run_autograder", (TEMPLATES / "run_autograder").read_bytes(), 0o755)
            _add(archive, "gradescope.json", json.dumps({"assignment": assignment}, indent=2).encode())
            for name in SHIPPED:
                src = ROOT / name
                for file in ([src] if src.is_file() else _files(src, skip=NOT_SHIPPED)):
                    _add(archive, str(file.relative_to(ROOT)), file.read_bytes())
            for rel, text in sorted(starter.items()):
                _add(archive, f"starter/{rel}", text.encode())
            for file in _files(SOLUTIONS):
                _add(archive, f"solutions/{file.relative_to(SOLUTIONS)}", file.read_bytes(), 0o600)
        log(f"Gradescope autograder for {assignment}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
        built.append(path)
    return built


# --------------------------------------------------------------------------- inside Gradescope
def protect(path: Path) -> None:
    """Only the owner (root, the judge) may read the reference; the sandboxed child runs as another uid."""
    for p in [path, *path.rglob("*")]:
        os.chmod(p, 0o700 if p.is_dir() else 0o600)


def find_module(submission: Path, rel: str) -> Path | None:
    """The submitted file for ``rel`` (e.g. hw2/returns.py): by path suffix first, else by file name."""
    files = sorted((p for p in submission.rglob("*") if p.is_file() and not SKIP_PARTS & set(p.parts)),
                   key=lambda p: (len(p.parts), str(p)))
    want = Path(rel).parts
    for p in files:
        if p.relative_to(submission).parts[-len(want):] == want:
            return p
    named = [p for p in files if p.name == want[-1]]
    return named[0] if named else None


def prepare_submission(submission: Path, source: Path, assignment: str, dst: Path) -> list[str]:
    """The starter layout of ``assignment`` in ``dst``, with the student's modules (``completion.complete_starter``,
    each found by ``find_module``); returns the notes, one per module."""
    modules = graded_files(source / "solutions").get(assignment, [])
    done = complete_starter(source / "starter" / assignment, dst / assignment, modules, submission,
                            find=lambda folder, rel: find_module(folder, f"{assignment}/{rel}"))
    notes = []
    for rel in modules:
        if rel in done.found:
            notes.append(f"{assignment}/{rel}: {done.found[rel].relative_to(submission)}")
        else:  # the grader then says which file is missing
            notes.append(f"{assignment}/{rel}: " + (f"not graded: {done.refused[rel]}" if rel in done.refused
                                                     else "not found in the submission"))
    return notes


def run(root: Path | None = None) -> int:
    root = Path(root or os.environ.get("GRADER_ROOT") or "/autograder")
    source, submission = root / "source", root / "submission"
    results = root / "results" / "results.json"
    start = time.monotonic()
    try:
        assignment = json.loads((source / "gradescope.json").read_text())["assignment"]
        protect(source / "solutions")
        layout = Path(tempfile.mkdtemp(prefix="gradescope-submission-"))
        for note in prepare_submission(submission, source, assignment, layout):
            print(note)
        from autograder.__main__ import main as grade

        # The whole grade ends within the settings' total seconds (GRADER_TOTAL_SECONDS, read by the grade command):
        # problems left then are "not graded: out of time", and results.json is written.
        argv = ["grade", "--submission", str(layout), "--assignment", assignment, "--results", str(results),
                "--reference", str(source / "solutions")]
        argv += shlex.split(os.environ.get("GRADER_GRADE_ARGS", ""))  # tests only: --skip-slow, --problem …
        status = grade(argv)
        shutil.rmtree(layout, ignore_errors=True)
    except Exception:  # noqa: BLE001 - Gradescope must always get a results file
        traceback.print_exc()
        GradeRun.failed_to_grade("it failed (its log shows the error)", time.monotonic() - start).write(results)
        return 1
    if not results.is_file():
        GradeRun.failed_to_grade(f"it produced no results (exit status {status})",
                                 time.monotonic() - start).write(results)
    print(f"graded in {time.monotonic() - start:.1f} s; results in {results}")
    return 0
