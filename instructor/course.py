"""The nbgrader course: build a working copy of ``assignments/`` and run nbgrader on it.

``assignments/`` (committed) holds ``nbgrader_config.py`` and one handout
notebook per assignment, ``source/hwN/hwN.ipynb``. A notebook lives inside its
assignment's package directory, next to the modules the student writes, so the
working course ``build/course/source/hwN/`` is the notebook plus the STARTER
modules (nbgrader copies ``.py`` files into a release unchanged: they must be
the stripped ones). Its grade cells are brought in line with the problem
registry: points from the registry, and a grade cell for every problem that
has none yet (hidden problems inside nbgrader's ``### BEGIN HIDDEN TESTS``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from autograder.paths import ROOT, SOLUTIONS, STARTER
from autograder.settings import GradeSettings
from autograder.starter import BEGIN, render, stale_files

ASSIGNMENTS_DIR = ROOT / "assignments"
BUILD = ROOT / "build"
STARTUP_SECONDS = 120  # per grade cell, on top of the problem's own budget: kernel, torch import, fork server
CHECK_CALL = re.compile(r"""check\(\s*["']([\w-]+/[\w-]+)["']""")
# A grade cell's first line says what it is worth: "# hw1/bc_loss (3 points): …", "# Hidden check (2 points): …"
POINTS_LABEL = re.compile(r"^(#[^\n(]*\()([\d.]+) points?\)")


class CourseError(RuntimeError):
    """The course cannot be built (unknown problem in a notebook, nbgrader failed, a leak)."""


# --------------------------------------------------------------------------- what the config needs
def assignments(course: Path = ASSIGNMENTS_DIR) -> list[str]:
    source = Path(course) / "source"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").is_file())


def graded_files(solutions: Path = SOLUTIONS) -> dict[str, list[str]]:
    """Per assignment, the files students write (those with solution regions), relative to the assignment."""
    graded: dict[str, list[str]] = {}
    for path in sorted(Path(solutions).rglob("*.py")):
        if "__pycache__" in path.parts or BEGIN not in path.read_text():
            continue
        rel = path.relative_to(solutions)
        graded.setdefault(rel.parts[0], []).append(str(Path(*rel.parts[1:])))
    return graded


def execute_timeout(settings: GradeSettings | None = None) -> int:
    """nbgrader's per-cell timeout: the longest problem budget (``settings``' time limit, default the
    environment's) plus start-up."""
    from autograder.runner import select

    limit = (settings or GradeSettings.from_env()).time_limit
    longest = limit or max((p.seconds for p in select()), default=60.0)
    return int(longest + STARTUP_SECONDS)


# --------------------------------------------------------------------------- grade cells
def _meta(grade_id: str, grade: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": True, "schema_version": 3, "solution": False}
    if grade:
        meta["points"] = points
    return meta


def grade_cell(problem) -> nbformat.NotebookNode:
    """The grade cell of one problem: public checks in the open, hidden ones as nbgrader hidden tests."""
    call = f'from autograder.notebook import check\ncheck("{problem.id}")'
    if problem.needs_reference:
        source = (f"# Hidden check ({problem.points:g} points): it runs when your instructor grades the homework.\n"
                  f"### BEGIN HIDDEN TESTS\n{call}\n### END HIDDEN TESTS")
    else:
        source = f"# {problem.id} ({problem.points:g} points): {problem.title}\n{call}"
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = _meta(f"check_{problem.name}".replace(".", "_"), True, problem.points)
    cell.metadata["deletable"] = False
    cell.metadata["editable"] = False
    return cell


def checked_problems(nb) -> dict[str, int]:
    """problem id → index of the grade cell that checks it."""
    found = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for problem_id in CHECK_CALL.findall(cell.source):
                found[problem_id] = index
    return found


def sync_grade_cells(nb, assignment: str) -> list[str]:
    """Points from the registry; a grade cell appended for every problem without one. Returns what changed."""
    from autograder.runner import select

    registry = {p.id: p for p in select(assignment)}
    changes = []
    present = checked_problems(nb)
    unknown = sorted(set(present) - set(registry))
    if unknown:
        raise CourseError(f"{assignment}.ipynb checks problems that are not registered: {', '.join(unknown)} "
                          "(see `python -m autograder list`)")
    for problem_id, index in present.items():
        meta = nb.cells[index].metadata["nbgrader"]
        ids_in_cell = CHECK_CALL.findall(nb.cells[index].source)
        points = sum(registry[i].points for i in ids_in_cell)
        if meta.get("points") != points:
            changes.append(f"{meta.get('grade_id')}: points {meta.get('points')} → {points:g}")
            meta["points"] = points
        label = POINTS_LABEL.match(nb.cells[index].source)
        if label and float(label.group(2)) != points:
            changes.append(f"{meta.get('grade_id')}: label ({label.group(2)} points) → ({points:g} points)")
            nb.cells[index].source = POINTS_LABEL.sub(lambda m: f"{m.group(1)}{points:g} points)",
                                                      nb.cells[index].source, count=1)
    missing = [p for p in registry.values() if p.id not in present]
    has_checks_heading = any(c.metadata.get("nbgrader", {}).get("grade_id") == "checks" for c in nb.cells)
    if missing and not has_checks_heading:
        heading = nbformat.v4.new_markdown_cell(
            "## More checks\n\nProblems added to the grader after this notebook was written. "
            "Each cell grades one problem on your modules, exactly as `make grade` does.")
        heading.metadata["nbgrader"] = _meta(f"more_checks_{len(nb.cells)}", False)
        nb.cells.append(heading)
    if missing:
        for p in missing:
            nb.cells.append(grade_cell(p))
            changes.append(f"added a grade cell for {p.id}")
    return changes


# --------------------------------------------------------------------------- the working course directory
def build_course(course: Path = BUILD / "course", src: Path = ASSIGNMENTS_DIR, log=print) -> Path:
    """``course`` = ``src``'s config and notebooks + the starter modules; gradebook and submissions are kept."""
    course = Path(course)
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(src) / "nbgrader_config.py", course / "nbgrader_config.py")
    stale = stale_files(STARTER, SOLUTIONS)
    if stale:
        log(f"warning: starter/ is stale ({', '.join(stale)}); the course uses freshly stripped modules "
            "(run `make starter` to update starter/)")
    starter = render(SOLUTIONS)
    for assignment in assignments(src):
        dst = course / "source" / assignment
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(Path(src) / "source" / assignment, dst,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        for rel, text in starter.items():
            if rel.parts[0] == assignment:
                target = dst.joinpath(*rel.parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        if not (dst / "__init__.py").exists():  # the assignment directory is the package
            (dst / "__init__.py").write_text(f'"""{assignment}."""\n')
        nb_path = dst / f"{assignment}.ipynb"
        nb = nbformat.read(nb_path, as_version=4)
        for change in sync_grade_cells(nb, assignment):
            log(f"{assignment}.ipynb: {change}")
        nbformat.write(nb, nb_path)
    return course


def nbgrader(course: Path, *args: str, env: dict | None = None, timeout: float | None = None,
             log=print) -> subprocess.CompletedProcess:
    """Run one nbgrader command in ``course`` (its nbgrader_config.py applies)."""
    command = [sys.executable, "-m", "nbgrader", *args]
    log("$ nbgrader " + " ".join(args))
    # nbgrader runs `alembic` (and the kernel) from PATH: put this interpreter's scripts first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    proc = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": path, **(env or {})})
    if proc.returncode != 0:
        raise CourseError(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n"
                          f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def generate(course: Path, only: list[str] | None = None, log=print) -> list[str]:
    """``nbgrader generate_assignment`` for every assignment (or ``only`` these): course/release/<a>/."""
    names = [a for a in assignments(course) if not only or a in only]
    for assignment in names:
        nbgrader(course, "generate_assignment", assignment, "--force", log=log)
    return names



def sync_source_notebooks(src: Path = ASSIGNMENTS_DIR, log=print) -> None:
    """Bring ``src``'s notebooks in line with the registry, in place (then move the new cells where they belong)."""
    for assignment in assignments(src):
        path = Path(src) / "source" / assignment / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        changes = sync_grade_cells(nb, assignment)
        for change in changes:
            log(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {change}")
        if changes:
            nbformat.write(nb, path)
