"""The grader, called from a notebook cell.

    from autograder.notebook import check
    check("hw2/reward_to_go")

``check`` grades one problem on the student's modules, in the same sandbox as
``make grade`` (a forked child, with the problem's time and memory limits): the
notebook's own process never imports the student's code. It shows the feedback
(``render.notebook_outputs``: HTML in a notebook, plain text elsewhere; the
autograded notebook's grade cell gets the very same outputs) and, when the problem
fails, raises ``AssertionError``, which is how an nbgrader grade cell fails and
loses its points.

Where the modules are: a notebook ``hw2.ipynb`` lives inside its assignment's
package directory (``hw2/hw2.ipynb`` next to ``hw2/returns.py``), so the
submission root is the directory that holds ``hw2/``: the parent of the
notebook's working directory. ``submission=`` overrides it.

Settings (``GradeSettings``, autograder/settings.py) come from the environment, so that
``nbgrader autograde`` (which runs the notebooks) can pass them through: ``GRADER_DEVICE``,
``GRADER_TIME_LIMIT``, ``GRADER_SKIP_SLOW``, ``GRADER_REFERENCE`` ("none": public checks only),
``GRADER_MEMORY_MB``; ``settings=`` passes them instead. And where the modules are:

    GRADER_SUBMISSION   the folder that holds hw1/ and hw2/ (default: found from the
                        notebook's folder; for the handouts in the kit's own
                        assignments/source/, the kit's starter/)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder.paths import ROOT, SOLUTIONS, STARTER
from autograder.problem import Problem, Reference
from autograder import render
from autograder.runner import Result, run_problem, select
from autograder.settings import GradeSettings

SUBMISSION_ENV = "GRADER_SUBMISSION"


class CheckFailed(AssertionError):
    """A graded problem failed; the message is the grader's feedback."""


def find_submission(assignment: str, start: Path | None = None) -> Path:
    """The directory holding the ``assignment`` package: GRADER_SUBMISSION, else searched from
    ``start`` upwards; a handout opened in the kit's own ``assignments/`` grades the kit's ``starter/``."""
    if os.environ.get(SUBMISSION_ENV):
        return Path(os.environ[SUBMISSION_ENV]).resolve()
    start = Path(start or Path.cwd()).resolve()
    for directory in [start, *start.parents]:
        if directory.name == assignment and (directory / "__init__.py").is_file():
            return directory.parent
        if (directory / assignment / "__init__.py").is_file():
            return directory
    if start.is_relative_to(ROOT / "assignments") and (STARTER / assignment / "__init__.py").is_file():
        return STARTER
    raise FileNotFoundError(f"no {assignment}/ package (with an __init__.py) in {start} or above it: "
                            "open the notebook from its assignment folder, or pass submission=")


def find_problem(problem_id: str) -> Problem:
    problems = select(problem=problem_id, with_reference=True)
    if len(problems) != 1:
        raise KeyError(f"no problem named {problem_id!r}; see `python -m autograder list`")
    return problems[0]


def reference(settings: GradeSettings) -> Reference | None:
    if not settings.wants_reference():
        return None
    return Reference.find(Path(settings.reference) if settings.reference else SOLUTIONS)


def _forget_submission_paths(root: Path) -> None:
    """Take the notebook's folder (the student's package) off sys.path: the sandbox's fork server
    inherits sys.path, and a student file named like a module it preloads must not be imported."""
    student = {root.resolve()} | {d.resolve() for d in root.iterdir() if d.is_dir()}
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() not in student]


def grade(problem_id: str, submission: str | Path | None = None, settings: GradeSettings | None = None) -> Result:
    """Grade one problem with ``settings`` (default: the environment's); return the runner's Result without
    raising."""
    settings = settings or GradeSettings.from_env()
    p = find_problem(problem_id)
    root = Path(submission) if submission is not None else find_submission(p.assignment)
    _forget_submission_paths(root)
    ref = reference(settings)
    if p.needs_reference and ref is None:
        return Result(p, 0.0, "failed", "hidden check: it runs only in your instructor's grading "
                                        "(the reference solutions are not here)")
    if p.slow and settings.skip_slow:
        return Result(p, 0.0, "failed", "skipped: skip-slow is set (GRADER_SKIP_SLOW; this problem trains a policy)")
    return run_problem(p, root, settings.device, ref, memory_mb=settings.memory_mb, time_limit=settings.time_limit)


def feedback(result: Result) -> str:
    """The feedback as plain text (what a notebook without HTML, or a terminal, shows)."""
    return render.notebook_text(result)


def show(outputs: list[dict]) -> None:
    """Show a grade cell's display outputs: as rich output in IPython, as plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    for output in outputs:
        if output["output_type"] != "display_data":
            continue
        if shell is not None:
            display(output["data"], raw=True)
        else:
            print(output["data"]["text/plain"])


def check(problem_id: str, submission: str | Path | None = None, settings: GradeSettings | None = None) -> None:
    """Grade ``problem_id`` (e.g. ``"hw2/reward_to_go"``); raise ``AssertionError`` unless it passes."""
    __tracebackhide__ = True  # noqa: F841 - IPython and pytest hide this frame
    result = grade(problem_id, submission, settings)
    outputs = render.notebook_outputs([result.problem.id], {result.problem.id: result})
    show(outputs)
    error = next((o for o in outputs if o["output_type"] == "error"), None)
    if error is not None:
        raise CheckFailed(error["evalue"])


__all__ = ["check", "grade", "find_submission", "CheckFailed"]
