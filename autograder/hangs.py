"""A student function that never returns costs one short limit, not every problem's.

Before a problem of a homework is graded (when the grade holds more than one of its problems), the judge calls
each probed function of that homework once on a small fixed input (its *probe*, registered with ``@probe`` beside
the problem that grades it), a module's probes in turn in one sandbox of their own (a fresh one after a call that
did not return), each under a short limit (PROBE_SECONDS, where a correct implementation takes milliseconds).
Each module is probed once per grade, by whichever problem asks first, the others waiting for that outcome: it
depends on the submission alone, so ``--jobs 2`` gives what ``--jobs 1`` gives.

A probe that does not return marks the function as hanging. Every problem of its homework sets it aside in its
own child, before the problem's own modules are imported (``Sandbox.guard``): a problem that calls it, directly or through other student code (a training loop
that rolls out with it), ends at once with 0 points and the probe's verdict (diagnosis "hung-on-probe") instead
of waiting out its own time limit; a problem that never calls it is graded as before. Any other outcome of the
probe (a value, an exception, a crash, an import that does not finish) is no evidence of a hang: the problems
judge it themselves.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from autograder.sandbox import Limits, SandboxFatal, wire
from autograder.sandbox.limits import JUDGE_RESERVE_SECONDS

PROBE_SECONDS = 10.0
MIN_PROBE_SECONDS = 1.0
LOAD_SECONDS = 30.0  # importing the module before the probe call (a problem's default limit): no verdict on a hang
_ADDRESS = re.compile(r" object at 0x[0-9a-fA-F]+>")

# (module, function) → build() -> (args, kwargs): the probe call, built in the judge and sent to the child.
PROBES: dict[tuple[str, str], Callable[[], tuple[tuple, dict]]] = {}


def probe(module: str, function: str):
    """Register ``build() -> (args, kwargs)``, a small ordinary call of ``module.function`` (a problem's first
    explicit example, say): a correct implementation returns on it far within PROBE_SECONDS."""

    def register(build):
        PROBES[(module, function)] = build
        return build

    return register


class HangProbes:
    """One grade's probes: what each probed function did on its probe call, run on first need, a module's
    probes one after another in one child (a fresh one after a call that did not return)."""

    def __init__(self, submission: Path, device: str = "cpu", memory_mb: int = 1024, sealed=(),
                 seconds: float = PROBE_SECONDS, deadline: float | None = None):
        self.submission, self.device, self.memory_mb, self.sealed = Path(submission), device, memory_mb, sealed
        self.seconds = seconds
        self.deadline = deadline  # the whole grade's end (time.monotonic()): no probe runs into its reserve
        # What the judge recorded, per probed (module, function): "" when the probe call ended (in any way),
        # else the verdict the problems that reach the function get.
        self.verdicts: dict[tuple[str, str], str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def hung(self, stubs, assignment: str = "") -> dict[tuple[str, str], str]:
        """The verdict of each probed function that did not return on its probe, among those of the modules of
        ``stubs`` and of every module of ``assignment`` (a problem's function may reach any of them: a
        policy gradient calls the student's reward-to-go), probing the modules not probed yet."""
        probed = {m for m, _ in PROBES}
        modules = {m for m, _ in stubs} | {m for m in probed if assignment and m.split(".")[0] == assignment}
        for module in sorted(modules & probed):
            self.probe_module(module)
        return {stub: verdict for stub, verdict in self.verdicts.items() if verdict and stub[0] in modules}

    def _seconds(self) -> float:
        """The next probe call's limit: PROBE_SECONDS, or what is left before the grade's reserve if less."""
        if self.deadline is None:
            return self.seconds
        return min(self.seconds, self.deadline - time.monotonic() - JUDGE_RESERVE_SECONDS)

    def probe_module(self, module: str) -> None:
        with self._lock:
            lock = self._locks.setdefault(module, threading.Lock())
        with lock:  # a second problem that needs the same module's probes waits for the first one's
            left = [f for m, f in PROBES if m == module and (m, f) not in self.verdicts]
            while left:
                self._probe_in_one_child(module, left)
                left = [f for f in left if (module, f) not in self.verdicts]

    def _probe_in_one_child(self, module: str, functions: list[str]) -> None:
        """Probe ``functions`` in turn in one child, until one does not return (the child is gone then)."""
        from autograder.sandbox import Sandbox

        try:
            box = Sandbox(self.submission, self.device, Limits(LOAD_SECONDS + self.seconds * len(functions),
                                                               self.memory_mb), sealed=self.sealed)
        except Exception:  # noqa: BLE001 - no probe, no evidence: the problems are graded as before
            self.verdicts.update({(module, f): "" for f in functions})
            return
        with box:
            for function in functions:
                seconds = self._seconds()
                if seconds < MIN_PROBE_SECONDS:  # the grade is nearly over: no evidence, the problems run out
                    self.verdicts.update({(module, f): "" for f in functions if (module, f) not in self.verdicts})
                    return
                with box.limited(LOAD_SECONDS, "importing the module"):
                    err = _attempt(lambda: box.load(module, function))
                if err is None:
                    args, kwargs = PROBES[(module, function)]()
                    call = _ADDRESS.sub(">", wire.describe_call(function, args, kwargs))  # the same words every run
                    with box.limited(seconds, "the probe call"):
                        err = _attempt(lambda: box.call(module, function, args, kwargs))
                    hung = isinstance(err, SandboxFatal) and err.kind == "time-limit"
                    self.verdicts[(module, function)] = verdict(function, seconds, call, str(err)) if hung else ""
                else:  # a failed import or a missing function is the problems' to report
                    self.verdicts[(module, function)] = ""
                if isinstance(err, SandboxFatal):  # this child is gone (a hang, a crash): the rest in a new one
                    return


def _attempt(step: Callable[[], object]) -> BaseException | None:
    """Run ``step``; the exception it raised, if any (an interrupt of the judge itself passes through)."""
    try:
        step()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # noqa: BLE001 - whatever the student's code does is an outcome here
        return err
    return None


def verdict(function: str, seconds: float, call: str, timeout: str) -> str:
    """The one-line reason of a problem that reaches ``function`` after its probe ``call`` timed out."""
    where = timeout.split("; your code was at ", 1)[1] if "; your code was at " in timeout else ""
    return (f"not graded: {function} did not return within {seconds:g} s on the grader's small first call of it, "
            f"{call}, so it was not run again" + (f"; your code was at {where}" if where else ""))


__all__ = ["PROBE_SECONDS", "PROBES", "HangProbes", "probe"]
