"""Command line: ``python -m autograder grade --submission starter``.

Exit status 0 whenever grading completed, whatever the score; 2 when the
command itself is wrong (no such submission); 3 when the grader cannot grade
here (the start-up self-check failed) or failed internally on a problem.

Start-up is arranged for speed: the fork server (which imports torch for the
children) starts before this process imports torch itself, so both imports run
at once; the start-up self-check runs beside the first problems, and their
results are shown only once it has passed.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import threading
import time
from pathlib import Path

from autograder.homeworks import HOMEWORKS
from autograder.imports_check import import_warnings
from autograder.paths import ROOT, SOLUTIONS
from autograder.settings import GradeSettings, SettingsError, add_arguments


def no_match_message(problem: str, known) -> str:
    """Why ``PROBLEM=…`` graded nothing: each name no problem has, with the closest names (difflib), and where
    the list is (``make list``, the command a student types)."""
    names = sorted({p.name for p in known})
    valid = set(names) | {p.id for p in known}
    lines = [f"error: no problem matches {problem!r}"]
    for wanted in dict.fromkeys(name.strip() for name in problem.split(",")):
        if wanted and wanted not in valid:
            close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
            lines.append(f"  {wanted!r}: no such problem" + (f"; did you mean {' or '.join(close)}?" if close else ""))
    lines.append("see `make list` for the problems and their points")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade a homework submission.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a submission directory laid out like starter/")
    g.add_argument("--submission", default="starter", help="directory holding a folder per homework (default: starter)")
    g.add_argument("--assignment", default="all", choices=["all", *HOMEWORKS])
    g.add_argument("--problem", default=None, help="grade only these problems (comma-separated names)")
    g.add_argument("--results", default="results.json", help="where to write Gradescope's results.json")
    add_arguments(g)
    sub.add_parser("list", help="list the problems")
    sub.add_parser("serve", help="a warm grading worker for class grading: reads `grade` command lines, one "
                                 "JSON object per line, from standard input (instructor/workers.py drives it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        from autograder.serve import serve

        return serve(parser)

    if args.command == "list":
        from autograder.runner import select

        for p in select():
            tag = "hidden" if p.needs_reference else "public"
            print(f"{p.id:<34} {p.points:>4g} pts  {tag:<6} {p.title}")
        return 0

    try:
        settings = GradeSettings.from_args(args)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    submission = resolve_submission(args.submission)
    if submission is None:
        print(f"error: submission directory {args.submission!r} does not exist", file=sys.stderr)
        return 2
    start = time.monotonic()
    from autograder.problems import may_train
    from autograder.sandbox import forkserver

    # It imports torch in its own process while this one does the same below.
    forkserver.start(optimizers=may_train(args.assignment, args.problem, settings.skip_slow))
    code = grade_command(args, settings, submission, start)
    if time.monotonic() >= start + settings.total_seconds:
        end_now(code)
    return code


def resolve_submission(given: str) -> Path | None:
    """The submission's folder (relative to the checkout when not found here), or None if there is none."""
    submission = Path(given)
    if not submission.is_absolute() and not submission.exists() and (ROOT / submission).exists():
        submission = ROOT / submission
    return submission if submission.is_dir() else None


def grade_command(args, settings: GradeSettings, submission: Path, start: float) -> int:
    """Grade ``submission`` as the parsed ``grade`` command ``args`` says (what to grade, where the results go),
    with ``settings``; write the results; return the exit status."""
    return grade_checked(args, settings, submission, start)[0]


def grade_checked(args, settings: GradeSettings, submission: Path, start: float, checked: "SelfCheck | None" = None):
    """``grade_command``'s work; ``checked``: a self-check that already passed in this process (a warm
    worker's), else one runs beside the first problems. Returns the exit status and the self-check."""
    from autograder import render
    from autograder.problem import Reference
    from autograder.problems import TRAINING
    from autograder.runner import grade, sealed_paths, select
    from autograder.sandbox import GraderError, prepare, self_check
    from autograder.sandbox.limits import default_jobs

    device = settings.device
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: device cuda (--device, GRADER_DEVICE or make's DEVICE) but torch sees no CUDA device",
                  file=sys.stderr)
            return 2, checked
    reference = Reference.find(Path(settings.reference or SOLUTIONS)) if settings.wants_reference() else None
    problems = select(args.assignment, args.problem, with_reference=reference is not None,
                      include_slow=not settings.skip_slow)
    if not problems:
        print(no_match_message(args.problem, select(args.assignment, include_slow=True)), file=sys.stderr)
        return 2, checked
    jobs = settings.jobs if settings.jobs > 0 else default_jobs(settings.memory_mb)
    if reference is not None and any(p.id in TRAINING and p.needs_reference for p in problems):
        # The hidden training problems replay the reference here, with torch.optim: its lazy import of
        # torch._dynamo (1.4 s) is done while this thread waits for the fork server and the self-check.
        threading.Thread(target=importlib.import_module, args=("torch._dynamo",), name="warm-up",
                         daemon=True).start()
    import torch

    # The judge's own tensors are small (exact expectations on tiny MDPs, a policy's rollouts): one thread each,
    # so that the judge threads and the children of parallel problems do not fight over the cores.
    torch.set_num_threads(1)

    print(f"grading {submission} ({args.assignment}, device {device}"
          f"{', public checks only' if reference is None else ''}"
          f"{f', {jobs} problems at a time' if jobs > 1 and len(problems) > 1 else ''})")
    sealed = sealed_paths(reference, Path(args.results).resolve())

    def grader_error(err: GraderError) -> int:
        print(f"grader error: {err}", file=sys.stderr)
        render.write_grader_error(Path(args.results), str(err), time.monotonic() - start)
        return 3

    try:
        confinement = prepare(sealed)
    except GraderError as err:
        return grader_error(err), checked
    if settings.verbose:
        print(confinement.describe())
    # The self-check runs beside the first problems; nothing is shown before it has passed.
    checked, stop = checked or SelfCheck(submission, device, sealed), threading.Event()
    shown = []

    def show(result) -> None:
        if checked.wait() is None:
            if not shown:
                print(render.header())
            shown.append(result)
            print(render.line(result), flush=True)
        else:
            stop.set()

    deadline = start + settings.total_seconds
    results = grade(submission, problems, device, reference, settings.memory_mb, on_result=show,
                    time_limit=settings.time_limit, deadline=deadline, jobs=jobs, stop=stop)
    if checked.wait() is not None:
        return grader_error(checked.wait()), checked
    elapsed = time.monotonic() - start
    warnings = import_warnings(submission)  # read from the source: Gradescope installs requirements.txt only
    render.write_results(Path(args.results), results, elapsed, warnings)
    print(render.summary(results, args.results))
    print("\n".join(warnings), end="\n" if warnings else "")
    print(f"results written to {args.results} ({elapsed:.1f} s)")
    return (3 if any(r.status == "error" for r in results) else 0), checked


def end_now(code: int) -> None:
    """The whole grade's time is over and its results are written: end this process now, every child of it
    killed, without waiting for the judge's threads (one may still be stuck on a child's half-written reply)
    nor for a work folder's removal (the next grade's sweep finishes it)."""
    from autograder.sandbox import processes

    processes.kill_tracked(ending=True)
    exit_now(code)


def exit_now(code: int) -> None:
    """End this process without tearing down torch (0.6 s of a 3 s command). The fork server ends on its own when
    this process is gone (its socket pair closes)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class SelfCheck:
    """The start-up self-check (``sandbox.self_check``) in a thread of its own; ``wait()`` gives its GraderError,
    or None once it passed."""

    def __init__(self, submission: Path, device: str, sealed):
        from autograder.sandbox import GraderError, self_check

        self.error = None

        def run():
            try:
                self_check(submission, device, sealed)
            except GraderError as err:
                self.error = err

        self._thread = threading.Thread(target=run, name="self-check", daemon=True)
        self._thread.start()

    def wait(self):
        self._thread.join()
        return self.error


if __name__ == "__main__":
    exit_now(main())  # everything is written and every sandbox closed
