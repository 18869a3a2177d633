"""Crafted hostile and broken submissions, built from source text at test time.

Each attack is the reference submission with one graded function replaced by
``source`` (see ``tests.conftest.make_submission``), graded through the real
runner and sandbox with a small time and memory limit so that the tests stay fast.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from autograder.problem import Reference
from autograder.runner import Result, run_problem, select
from autograder.paths import SOLUTIONS
from autograder.sandbox import isolation
from autograder.sandbox.isolation import SANDBOX_UID_BASE, SANDBOX_UID_COUNT
from tests.conftest import make_submission

RETURNS = "hw2/returns.py"
IS_ROOT = os.geteuid() == 0 and not os.environ.get("GRADER_NO_PRIVDROP")
ROOT_ONLY_REASON = ("needs a root judge: as an ordinary user the child keeps the user's rights "
                    "(documented limitation)")


def grade_source(tmp_path: Path, source: str, problem: str = "discounted_return", *, time_limit: float = 20,
                 memory_mb: int = 512, module: str = RETURNS, with_reference: bool = False) -> Result:
    """Grade ``problem`` on the reference submission with ``source`` appended to ``module``."""
    submission = make_submission(tmp_path, {module: source})
    return grade_dir(submission, problem, time_limit=time_limit, memory_mb=memory_mb, with_reference=with_reference)


def grade_dir(submission: Path, problem: str, *, time_limit: float = 20, memory_mb: int = 512,
              with_reference: bool = False) -> Result:
    (p,) = select(problem=problem, with_reference=with_reference)
    reference = Reference.find(SOLUTIONS) if with_reference else None
    return run_problem(p, submission, reference=reference, time_limit=time_limit, memory_mb=memory_mb)


@contextlib.contextmanager
def shared_dir():
    """A world-writable folder the sandboxed child (another uid, under Landlock) can write into."""
    path = Path(tempfile.mkdtemp(prefix="grader-attack-"))
    os.chmod(path, 0o777)
    saved = isolation.EXTRA_WRITABLE
    isolation.EXTRA_WRITABLE = (*saved, str(path))
    try:
        yield path
    finally:
        isolation.EXTRA_WRITABLE = saved
        shutil.rmtree(path, ignore_errors=True)


def alive_sandbox_process(pid: int) -> bool:
    """Is ``pid`` still running (and not a zombie)? When the judge is root, only
    processes of a sandbox uid count, so a recycled pid cannot give a false alarm."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return False
    if fields.get("State", "").strip().startswith("Z"):
        return False
    uid = int(fields["Uid"].split()[0])
    return not IS_ROOT or SANDBOX_UID_BASE <= uid < SANDBOX_UID_BASE + SANDBOX_UID_COUNT
