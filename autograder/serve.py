"""A warm grading worker: class grading's judge, kept from one student to the next.

``python -m autograder serve`` imports torch once, starts the fork server once and passes the start-up
self-check once, then grades one submission per line of standard input. A line is a JSON object::

    {"argv": ["grade", "--submission", ..., "--results", ...], "log": "/path/grader.log"}

(the ``grade`` command line a one-off grade would run, and where its terminal output goes). After each grade the
worker writes one JSON line on its standard output: ``{"status": <the exit status a one-off grade gives>,
"retire": <true when this process must not grade again>}``. It retires when a grade ran to its whole budget
(a judge thread may still be held by a child's half-written reply: the next student gets a fresh process) and
after ``MAX_GRADES`` grades. What one grade could leave behind in the judge (RNG states, torch's threads,
default dtype and grad mode, Hypothesis's profile, environment, working folder, modules imported from the
submission) is put back before the next one (``JudgeState``). Student code never runs here: it runs in the
fork server's children, a fresh one per problem, as in a one-off grade.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

MAX_GRADES = 200  # then a fresh process: whatever grows slowly in a judge (allocator arenas) starts again


class JudgeState:
    """The judge's global state as it is after start-up, to put back before every grade."""

    def __init__(self):
        import numpy as np
        import torch
        from hypothesis import settings

        self.random = random.getstate()
        self.numpy = np.random.get_state()
        self.torch = torch.get_rng_state()
        self.threads = torch.get_num_threads()
        self.dtype = torch.get_default_dtype()
        self.grad = torch.is_grad_enabled()
        self.profile = settings.get_current_profile_name()
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.modules = set(sys.modules)

    def restore(self, submission: Path | None = None) -> None:
        import numpy as np
        import torch
        from hypothesis import settings

        random.setstate(self.random)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch)
        torch.set_num_threads(self.threads)
        torch.set_default_dtype(self.dtype)
        torch.set_grad_enabled(self.grad)
        settings.load_profile(self.profile)
        os.environ.clear()
        os.environ.update(self.environ)
        os.chdir(self.cwd)
        sys.path[:] = self.path
        if submission is not None:
            for name in [n for n in sys.modules if n not in self.modules and _from(sys.modules[n], submission)]:
                del sys.modules[name]


def _from(module, folder: Path) -> bool:
    where = getattr(module, "__file__", None)
    return bool(where) and Path(where).resolve().is_relative_to(folder.resolve())


def serve(parser: argparse.ArgumentParser) -> int:
    """The worker's loop (see the module's docstring); ends when standard input closes."""
    from autograder.__main__ import exit_now, grade_checked, resolve_submission
    from autograder.sandbox import forkserver, processes
    from autograder.settings import GradeSettings

    replies = os.fdopen(os.dup(1), "w", buffering=1)  # standard output is each grade's log from here on
    _point_output_at(os.devnull)
    forkserver.start(optimizers=True)
    import torch  # noqa: F401 - once, here, while the fork server imports it too

    state, checked, graded = None, None, 0
    for line in sys.stdin:
        job = json.loads(line)
        start = time.monotonic()
        args = parser.parse_args(job["argv"])
        submission = resolve_submission(args.submission)
        _point_output_at(job["log"])
        try:
            settings = GradeSettings.from_args(args)  # class grading's command line names every one
            if state is None:
                state = JudgeState()
            state.restore(submission)
            if submission is None:
                print(f"error: submission directory {args.submission!r} does not exist", file=sys.stderr)
                status = 2
            else:  # the self-check runs with the first grade, and again only until it has passed
                passed = checked if checked is not None and checked.wait() is None else None
                status, checked = grade_checked(args, settings, submission, start, passed)
        except Exception as err:  # noqa: BLE001 - the grade stays this student's; the worker is not trusted after
            import traceback

            traceback.print_exc()
            print(f"grader error: {type(err).__name__}: {err}", file=sys.stderr)
            status = 3
            graded = MAX_GRADES
        graded += 1
        retire = graded >= MAX_GRADES or time.monotonic() >= start + settings.total_seconds  # (set unless it raised)
        _point_output_at(os.devnull)
        replies.write(json.dumps({"status": status, "retire": retire}) + "\n")
        if retire:
            processes.kill_tracked(ending=True)
            exit_now(0)
    return 0


def _point_output_at(path: str) -> None:
    """File descriptors 1 and 2 (this process's and what it starts) write to ``path`` from now on."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
