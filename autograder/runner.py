"""Grade a submission: one sandbox per problem, verdicts computed here.

load the submission in a sandboxed child → run the problem's checks (Hypothesis
in this process, student calls in the child) → score → report.
"""

from __future__ import annotations

import collections
import importlib
import pkgutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from concurrent.futures import wait as wait_futures
from pathlib import Path

from autograder import render
from autograder.compare import Mismatch
from autograder.hangs import PROBE_SECONDS, HangProbes
from autograder.problem import REGISTRY, Context, Problem, Reference
from autograder.properties import forget_example, last_example
from autograder.results import Failure, ProblemResult
from autograder.sandbox import (DEFAULT_MEMORY_MB, Limits, NotImplementedYet, Sandbox, SandboxFatal,
                                StudentException, SubmissionError, memory_limit_mb)
from autograder.sandbox import processes
from autograder.sandbox.limits import DEFAULT_TOTAL_SECONDS, JUDGE_RESERVE_SECONDS  # noqa: F401 - re-exported


# One results type: the model's. ``Result(problem, score, status, reason, …)`` still reads as it did.
Result = ProblemResult


def load_problems() -> dict[str, Problem]:
    import autograder.problems as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return REGISTRY


def select(assignment: str = "all", problem: str | None = None, with_reference: bool = True,
           include_slow: bool = True) -> list[Problem]:
    problems = [p for p in load_problems().values()
                if (assignment in ("all", p.assignment)) and (with_reference or not p.needs_reference)
                and (include_slow or not p.slow)]
    if problem:
        wanted = {name.strip() for name in problem.split(",")}
        problems = [p for p in problems if p.name in wanted or p.id in wanted]
    return sorted(problems, key=lambda p: (p.assignment, p.slow, p.needs_reference, p.name))


def sealed_paths(reference: Reference | None, results: Path | None = None) -> list[Path]:
    """What the child must never read besides the checkout: the reference and the results' folder."""
    return [p for p in ((reference.root if reference else None), (results.parent if results else None)) if p]


MIN_PROBLEM_SECONDS = 3.0
# Where the child's end tells the cause better than the problem's hint does.
FATAL_HINTS = {"forged-reply": "the grader reads only what its own request loop in the child sends back; code that "
                               "writes onto the grader's channel fails the problem, whatever it writes",
               "hung-on-probe": "a loop that never ends (its condition never turns false, a counter never grows) is "
                                "the usual cause; 'your code was at' shows where it was. Once that function returns, "
                                "this problem is graded as usual"}
IMPORT_HINT = ("a module must import cleanly before anything in it can be graded; `python -c \"import {module}\"` "
               "in your submission folder shows the same error")
LOAD_FAILURES = ("import-error", "syntax-error", "missing-file")  # the module did not load: shown once per module
TAMPERING_HINT = ("the grader's code that runs beside yours (its request loop, gradient and training routines, "
                  "torch.autograd) is not yours to change: remove the code that replaces it")


def grade(submission: Path, problems: Iterable[Problem], device: str = "cpu", reference: Reference | None = None,
          memory_mb: int = DEFAULT_MEMORY_MB, on_result: Callable[[Result], None] | None = None,
          time_limit: float | None = None, deadline: float | None = None, jobs: int = 1,
          stop: threading.Event | None = None, hangs: HangProbes | None = None) -> list[Result]:
    """Grade each problem in a fresh sandbox (the CLI calls ``sandbox.prepare`` and ``self_check`` first).

    ``jobs`` problems are graded at once, each in its own sandbox (threads here: the work is in the children
    and in short stretches of judging), the longest first; ``on_result`` still sees the results in the
    problems' order. Each child's memory limit is its share of what the machine or container can give.

    ``deadline`` (time.monotonic()): the whole grade's end. A problem gets its own limit, or what is left
    before the deadline less JUDGE_RESERVE_SECONDS if that is less; once less than MIN_PROBLEM_SECONDS
    would be left, the remaining problems are "not graded: out of time" (0 points), so the results are
    always written before the platform's own limit ends the run. That holds even when a problem's own limit
    does not (the judge stuck on a child, say on a reply the child wrote halfway): at the deadline every
    child still running is killed, and the problems without a verdict get 0 for running out of time; what
    is still closing then (a work folder being removed) is left to finish on its own or to the next grade's
    sweep. ``stop`` set: problems not yet started are not graded (the start-up self-check failed).

    ``hangs``: where the stubs' probes are run and their outcomes kept (``autograder.hangs``); by default one of
    this grade's own."""
    problems = list(problems)
    jobs = max(1, min(jobs, len(problems)))
    if jobs > 1:
        memory_mb = memory_limit_mb(memory_mb, jobs)

    board = _Board(problems, on_result)
    # A stub that hung on its short probe call is set aside in every problem (see autograder.hangs).
    if hangs is None:
        hangs = HangProbes(submission, device, memory_mb, sealed_paths(reference),
                           min(PROBE_SECONDS, time_limit or PROBE_SECONDS), deadline)

    per_homework = collections.Counter(p.assignment for p in problems)

    def one(p: Problem) -> Result:
        limit = time_limit or p.seconds
        if board.halted.is_set():  # the grade is over: start nothing more
            return out_of_time(p, started=False)
        if stop is not None and stop.is_set():
            return Result(p, 0.0, "error", "not graded: the grader stopped", diagnosis="grader-error")
        # Before the deadline is read (a probe takes seconds of its own); only where a hang would cost a later
        # problem too: a grade with one problem of a homework has nothing to save (--problem reward_to_go).
        hung = hangs.hung(p.stubs, p.assignment) if per_homework[p.assignment] > 1 else {}
        if deadline is not None:
            left = deadline - time.monotonic() - JUDGE_RESERVE_SECONDS
            if left < MIN_PROBLEM_SECONDS:
                own = next((hung[stub] for stub in p.stubs if stub in hung), None)
                if own is not None:  # what it would have ended on (a check calls the functions it grades)
                    return Result(p, 0.0, "failed", own, Failure(own, hint=FATAL_HINTS["hung-on-probe"]),
                                  diagnosis="hung-on-probe")
                return out_of_time(p, started=False)
            limit = min(limit, left)
        return run_problem(p, submission, device, reference, memory_mb, limit, cleanup=cleanup, hung=hung)

    # Closing a sandbox (about 0.07 s: the child's exit, the uid sweep, its folder) overlaps the next problem.
    closers = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="close")
    closing = []

    def cleanup(finish: Callable[[], None]) -> None:
        closing.append(closers.submit(finish))

    grading = _Grading(lambda: _run_all(problems, one, jobs, board))
    try:
        finished = grading.wait(deadline)
    except BaseException:  # an interrupt of the judge itself: no child left behind
        board.halted.set()
        processes.kill_tracked()
        raise
    if not finished:
        board.halted.set()
        processes.kill_tracked()
        return board.close(out_of_time)
    if wait_futures(closing, timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))[1]:
        processes.kill_tracked()  # out of time while closing (a huge folder to remove): no child outlives it
    else:
        closers.shutdown()
    grading.raise_failure()
    return board.results


def out_of_time(p: Problem, started: bool) -> Result:
    if started:
        return Result(p, 0.0, "failed", "timed out: the whole grade's time budget ran out while this problem was "
                      "being graded (its process was killed)", diagnosis="time-limit")
    return Result(p, 0.0, "failed", "not graded: out of time (the whole grade's time budget ran out before this "
                  "problem; earlier problems used it)", diagnosis="out-of-time")


class _Grading:
    """``work`` in a thread of its own, so that the caller can stop waiting for it at the deadline."""

    def __init__(self, work: Callable[[], None]):
        self._failure: BaseException | None = None

        def run() -> None:
            try:
                work()
            except BaseException as err:  # noqa: BLE001 - handed to the caller by raise_failure
                self._failure = err

        self._thread = threading.Thread(target=run, name="grading", daemon=True)
        self._thread.start()

    def wait(self, deadline: float | None) -> bool:
        """Whether the work ended before ``deadline`` (time.monotonic(); None: wait for it)."""
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


class _Board:
    """The problems' results as they come in, shown (``on_result``) in the problems' order whatever order
    they finish in. Halted when the whole grade's time runs out: a result that comes later is dropped."""

    def __init__(self, problems: list[Problem], on_result: Callable[[Result], None] | None):
        self.problems, self._on_result = problems, on_result
        self.results: list[Result | None] = [None] * len(problems)
        self.halted = threading.Event()  # set: the grade is over, nothing more is started or shown
        self._started = [False] * len(problems)
        self._shown = 0
        self._lock = threading.Lock()

    def run(self, index: int, one: Callable[[Problem], Result]) -> None:
        self._started[index] = True
        result = one(self.problems[index])
        with self._lock:
            if not self.halted.is_set():
                self.results[index] = result
                self._show_ready()

    def close(self, missing: Callable[[Problem, bool], Result]) -> list[Result]:
        """Once halted: the results so far, each missing one given by ``missing(problem, started)``."""
        with self._lock:
            self.results = [r or missing(p, started) for p, r, started in
                            zip(self.problems, self.results, self._started)]
            self._show_ready()
            return list(self.results)

    def _show_ready(self) -> None:
        while self._shown < len(self.results) and self.results[self._shown] is not None:
            if self._on_result:
                self._on_result(self.results[self._shown])
            self._shown += 1


def _run_all(problems: list[Problem], one: Callable[[Problem], Result], jobs: int, board: _Board) -> None:
    if jobs == 1:
        for index in range(len(problems)):
            board.run(index, one)
        return
    # Longest first (training problems, then by time limit), so that no long problem starts last.
    order = sorted(range(len(problems)), key=lambda i: (not problems[i].slow, -problems[i].seconds, i))
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade") as pool:
        for future in as_completed([pool.submit(board.run, i, one) for i in order]):
            future.result()


def run_problem(p: Problem, submission: Path, device: str = "cpu", reference: Reference | None = None,
                memory_mb: int = DEFAULT_MEMORY_MB, time_limit: float | None = None,
                cleanup: Callable[[Callable[[], None]], None] | None = None,
                hung: dict[tuple[str, str], str] | None = None) -> Result:
    """Grade one problem in a fresh sandbox; ``time_limit`` overrides the problem's own. ``hung``: the stubs that
    did not return on their probe (``autograder.hangs``), each with its verdict; they are set aside in the child.

    Never raises for anything the submission does: every outcome is a Result, and
    status "error" is kept for failures of the grader itself. The verdict is final once
    the checks end; closing the sandbox (killing what is left, reading the rest of the
    output into ``student_output``) is done before returning, or handed to ``cleanup``
    to run in the background."""
    start = time.monotonic()
    limits = Limits(seconds=time_limit or p.seconds, memory_mb=memory_limit_mb(memory_mb))
    try:
        sandbox = Sandbox(Path(submission), device, limits, sealed=sealed_paths(reference))
    except Exception as err:  # noqa: BLE001 - no child could be started: the grader's problem, not the student's
        reason = f"internal grader error: could not start the sandbox: {type(err).__name__}: {err}"
        result = Result(p, 0.0, "error", reason, Failure(reason, notes=[traceback.format_exc()]))
        result.seconds = time.monotonic() - start
        return result
    try:
        # Set aside first: a module of the stubs that imports a hung function by name then binds the stand-in.
        for (module, function), verdict in (hung or {}).items():
            sandbox.load(module, function)
            sandbox.guard(module, function, verdict)
        for module, function in p.stubs:
            sandbox.load(module, function)
        ctx = Context(sandbox, device, reference)
        forget_example()
        p.check(ctx)
        result = Result(p, p.points, "passed", "all checks passed", notes=list(ctx.notes))
    except NotImplementedYet as err:
        result = Result(p, 0.0, "failed", f"not implemented yet ({err.function} raises NotImplementedError)",
                        Failure(f"not implemented yet: {err.function} still raises NotImplementedError",
                                where=err.where), diagnosis="not-implemented")
    except SubmissionError as err:
        result = Result(p, 0.0, "failed", str(err), Failure(str(err), hint=IMPORT_HINT.format(module=err.module)),
                        diagnosis=err.diagnosis, module=module_file(err.module) if err.diagnosis in LOAD_FAILURES
                        else "")
    except SandboxFatal as err:
        result = Result(p, 0.0, "failed", str(err), Failure(str(err), hint=FATAL_HINTS.get(err.kind, p.hint)),
                        diagnosis=err.kind)
    except (AssertionError, StudentException) as err:
        result = _failure(p, err)
    except Exception as err:  # noqa: BLE001 - a bug in the grader must not hide the other problems
        reason = f"internal grader error: {type(err).__name__}: {err}"
        result = Result(p, 0.0, "error", reason, Failure(reason, notes=[traceback.format_exc()]),
                        diagnosis="grader-error")
    except BaseException:  # an interrupt of the judge itself: no sandbox left behind
        sandbox.close()
        raise
    tampering = sandbox.tampering()
    if tampering.changed:  # whatever the checks said, they ran beside changed grader code
        checks = "every check passed" if result.passed else render.details(result) or result.reason
        result = Result(p, 0.0, "failed", tampering.reason(),
                        Failure(tampering.reason(), notes=[f"the checks on their own: {checks}"],
                                hint=TAMPERING_HINT), diagnosis="tampering")
    result.tampering = tampering
    result.seconds = time.monotonic() - start

    def finish() -> None:
        try:
            sandbox.close()
        except Exception as err:  # noqa: BLE001 - the verdict stands; a failed cleanup is the grader's to report
            print(f"warning: closing the sandbox of {p.id} failed: {type(err).__name__}: {err}", file=sys.stderr)
        result.student_output = sandbox.output_tail()

    if cleanup is None:
        finish()
    else:
        cleanup(finish)
    return result


def module_file(module: str) -> str:
    """``hw1.imitation`` → ``hw1/imitation.py``: the student's file, as the student sees it."""
    return module.replace(".", "/") + ".py"


HYPOTHESIS_NOTES = ("Falsifying", "Failing", "You can reproduce", "Explanation:", "The test ")  # its own report


def _failure(p: Problem, err: BaseException) -> Result:
    example = last_example()
    if isinstance(err, StudentException):
        message, where = f"{err.function} raised {err.type_name}: {err.message}", err.where
    else:
        message, where = str(err).strip() or type(err).__name__, ""
    notes = [n for n in getattr(err, "__notes__", []) if not n.strip().startswith(HYPOTHESIS_NOTES)]
    failure = Failure(message, example, getattr(err, "expected", ""), getattr(err, "got", ""),
                      getattr(err, "expected_label", "expected"), notes, getattr(err, "hint", None) or p.hint, where)
    reason = message.splitlines()[0]
    if example:
        reason += f" — input: {example}"
    return Result(p, 0.0, "failed", reason, failure, diagnosis=diagnosis_of(err))


def diagnosis_of(err: BaseException) -> str:
    """A failed check's stable id: the Mismatch's own, or what kind of exception the student's code raised."""
    if isinstance(err, StudentException):
        return "memory-limit" if err.type_name == "MemoryError" else f"raised-{err.type_name}"
    return getattr(err, "diagnosis", None) or "wrong-value"


__all__ = ["Result", "grade", "run_problem", "select", "load_problems", "Mismatch"]
