"""What can go wrong in a sandbox, as the judge sees it.

Student outcomes (``NotImplementedYet``, ``SubmissionError``, ``StudentException``,
``SandboxFatal``) cost the problem its points. ``GraderError`` is the grader's own
failure (the sandbox cannot start, the start-up self-check failed): it stops the
grade with exit status 3 and is never turned into a student's failure.
"""

from __future__ import annotations


class GraderError(RuntimeError):
    """The grader cannot grade here; the message says why and what to do."""


class SandboxFatal(BaseException):
    """The child is gone (timed out, crashed, exited). Derives from BaseException
    so that Hypothesis aborts at once instead of trying to shrink it. ``kind`` is
    decided by the judge: "time-limit", "memory-limit", "exited", "crashed" or
    "malformed-reply"."""

    def __init__(self, message: str, kind: str = "crashed"):
        super().__init__(message)
        self.kind = kind


class KnownHang(SandboxFatal):
    """The problem's code reached a student function that had already failed to return on the judge's short probe
    call (``autograder.hangs``): it was not run again. The child is alive; the problem ends here, with 0 points,
    instead of waiting out its own time limit. ``kind`` is "hung-on-probe"."""

    def __init__(self, message: str):
        super().__init__(message, "hung-on-probe")


class NotImplementedYet(BaseException):
    """A stub still raises NotImplementedError; ``function`` and ``where`` come from the child's frame."""

    def __init__(self, function: str, where: str = ""):
        super().__init__(function)
        self.function, self.where = function, where


class SubmissionError(BaseException):
    """The submission cannot be loaded: missing file, syntax error, missing function."""

    def __init__(self, message: str, module: str = "", diagnosis: str = "import-error"):
        super().__init__(message)
        self.module = module
        self.diagnosis = diagnosis  # "syntax-error", "import-error", "missing-file", "missing-function"


class StudentException(Exception):
    """Student code raised an ordinary exception. An ``Exception``, so Hypothesis
    shrinks the input that triggers it."""

    def __init__(self, function: str, type_name: str, message: str, where: str):
        self.function, self.type_name, self.message, self.where = function, type_name, message, where
        super().__init__(f"{function} raised {type_name}: {message}" + (f"\n  at {where}" if where else ""))
