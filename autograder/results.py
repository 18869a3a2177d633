"""A grade as data: each problem's verdict, and the whole run, as Gradescope's results.json holds them.

    ProblemInfo    what was graded (id, assignment, name, title, points, visibility)
    Failure        why it failed: the message, the smallest failing input, expected vs got, notes, hint, where
    ProblemResult  one problem's verdict: status, score, reason, failure, diagnosis id, what the code printed
    GradeRun       every verdict of one grade, its time, or the grader's own error instead

Plain data, written once and read back by field: the problem id and the diagnosis id are in each test's
``extra_data``, never recovered from a name or from words. Imports nothing heavy (no torch, no Hypothesis), so
that instructor tools read results cheaply. How a result reads (the terminal, the notebook, Gradescope's
Markdown) is ``autograder.render``'s; ``GradeRun.write`` is the one writer of results.json.

Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.sandbox.tamper import Tampering

STATUSES = ("passed", "failed", "error")  # "error": the grader itself failed on this problem
GRADER_ERROR = "The autograder could not run (not your code's fault): "


@dataclass(frozen=True)
class ProblemInfo:
    """What was graded. ``autograder.problem.Problem`` has the same fields (and the check itself)."""

    id: str
    assignment: str
    name: str
    title: str
    points: float
    visibility: str = "visible"

    @classmethod
    def of(cls, problem) -> "ProblemInfo":
        return cls(problem.id, problem.assignment, problem.name, problem.title, float(problem.points),
                   problem.visibility)


@dataclass
class Failure:
    """Why a problem failed, in parts. ``message`` is the check's own words (its first line is the reason);
    ``expected``/``got`` are the values it compared, when it compared two (``expected_label`` says what the
    expected row is when it is not the true answer); ``example`` is the smallest failing input; ``where`` is the
    student's file:line the failure came from, when one is known."""

    message: str
    example: str = ""
    expected: str = ""
    got: str = ""
    expected_label: str = "expected"
    notes: list[str] = field(default_factory=list)
    hint: str = ""
    where: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> "Failure | None":
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            return None
        text = {k: str(data.get(k) or "") for k in ("example", "expected", "got", "hint", "where")}
        notes = [n for n in data.get("notes") or [] if isinstance(n, str)]
        return cls(data["message"], expected_label=str(data.get("expected_label") or "expected"), notes=notes,
                   **text)


@dataclass
class ProblemResult:
    problem: ProblemInfo  # or the registry's Problem, which has the same fields
    score: float
    status: str  # one of STATUSES
    reason: str  # one line
    failure: Failure | None = None
    # The mistake's stable id, for class reports: a Mismatch's own ("grad-accumulates"), else what the judge
    # saw ("not-implemented", "import-error", "time-limit", "memory-limit", "crashed", "raised-ValueError", …).
    diagnosis: str = ""
    student_output: str = ""  # what the problem's code printed (the sandbox keeps its last part)
    seconds: float = 0.0
    # What the submission's code touched of the grader's internals in the child (flagged for the instructor);
    # a change to the grader's code makes the problem score 0.
    tampering: Tampering = field(default_factory=Tampering)
    notes: list[str] = field(default_factory=list)  # a passing check's remarks (measured on …)
    module: str = ""  # the student's module that did not load ("hw1/imitation.py"), for an import failure

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self, output: str) -> dict:
        """One entry of results.json's ``tests``; ``output`` is its rendering (``autograder.render``).
        Nothing timing-dependent: a regrade gives the same entry."""
        p = self.problem
        extra = {"problem": p.id, "diagnosis": self.diagnosis, "status": self.status, "reason": self.reason,
                 "student_output": self.student_output}
        if self.failure is not None:
            extra["failure"] = self.failure.to_json()
        if self.notes:
            extra["notes"] = list(self.notes)
        if self.module:
            extra["module"] = self.module
        if self.tampering:
            extra["tampering"] = self.tampering.to_json()
        return {"name": f"{p.id}: {p.title}", "score": self.score, "max_score": p.points,
                "status": "passed" if self.passed else "failed", "output": output, "output_format": "md",
                "visibility": p.visibility, "tags": [p.assignment], "extra_data": extra}

    @classmethod
    def from_json(cls, test: dict) -> "ProblemResult":
        """A test of results.json, read by its fields; a field that is missing or malformed reads as empty."""
        extra = test.get("extra_data") if isinstance(test.get("extra_data"), dict) else {}
        pid = str(extra.get("problem") or "")
        assignment = pid.partition("/")[0] if pid else next(iter(test.get("tags") or []), "")
        title = str(test.get("name") or "").removeprefix(f"{pid}: ")
        info = ProblemInfo(pid, assignment, pid.partition("/")[2], title, _number(test.get("max_score")),
                           str(test.get("visibility") or "visible"))
        status = extra.get("status") if extra.get("status") in STATUSES else (
            "passed" if test.get("status") == "passed" else "failed")
        return cls(info, _number(test.get("score")), status, str(extra.get("reason") or ""),
                   Failure.from_json(extra.get("failure")), str(extra.get("diagnosis") or ""),
                   str(extra.get("student_output") or ""), tampering=Tampering.from_json(extra.get("tampering")),
                   notes=[n for n in extra.get("notes") or [] if isinstance(n, str)],
                   module=str(extra.get("module") or ""))


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass
class GradeRun:
    """One grade: its results, or, when the grader could not grade here, ``grader_error`` and no results."""

    results: list[ProblemResult] = field(default_factory=list)
    execution_time: float = 0.0
    grader_error: str = ""
    output: str = ""  # the run's one line for the student (Gradescope's top-level output)

    @classmethod
    def failed_to_grade(cls, message: str, execution_time: float = 0.0) -> "GradeRun":
        """No score: the grader could not run; ``message`` says why, for the instructor."""
        return cls([], execution_time, message, GRADER_ERROR + message)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    def to_json(self, render: Callable[[ProblemResult], str] = lambda r: r.reason) -> dict:
        data = {"score": self.score, "execution_time": round(self.execution_time, 3), "output": self.output,
                "visibility": "visible", "stdout_visibility": "hidden",
                "tests": [r.to_json(render(r)) for r in self.results]}
        if self.grader_error:
            data["extra_data"] = {"grader_error": self.grader_error}
        return data

    @classmethod
    def from_json(cls, data) -> "GradeRun":
        if not isinstance(data, dict):
            return cls()
        tests = [ProblemResult.from_json(t) for t in data.get("tests") or [] if isinstance(t, dict)]
        extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
        return cls(tests, _number(data.get("execution_time")), str(extra.get("grader_error") or ""),
                   str(data.get("output") or ""))

    @classmethod
    def read(cls, path: Path) -> "GradeRun":
        return cls.from_json(json.loads(Path(path).read_text()))

    def write(self, path: Path, render: Callable[[ProblemResult], str] = lambda r: r.reason) -> None:
        """Write results.json atomically, after every sandbox is gone: a fresh temporary file (never a
        guessable name a student could have planted a link at), then a rename over whatever is at ``path``,
        a forged file included."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(render), indent=2)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


__all__ = ["Failure", "GradeRun", "ProblemInfo", "ProblemResult", "GRADER_ERROR"]
