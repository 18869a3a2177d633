"""Show the results: a table on the terminal and Gradescope's results.json."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path

from autograder.runner import Result

STATUS = {"passed": "pass", "failed": "FAIL", "error": "ERROR"}
_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def student_text(text: str) -> str:
    """What student code printed, made safe to show: no ANSI escapes (colours, cursor moves, terminal
    titles), no control characters but newlines and tabs, carriage-return overwrites resolved."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def _id_width() -> int:
    from autograder.problem import REGISTRY

    return max([34, *(len(p.id) for p in REGISTRY.values())])


def line(result: Result, width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((120, 20)).columns
    p = result.problem
    head = f"{p.id:<{_id_width()}} {result.score:>4g}/{p.points:<4g} {STATUS[result.status]:<5} "
    room = max(20, width - len(head))
    reason = result.reason if len(result.reason) <= room else result.reason[: room - 1] + "…"
    return head + reason


def header() -> str:
    return f"{'problem':<{_id_width()}} {'points':<9} {'':<5} reason"


WIDTH = 80


WRAPPED_PREFIXES = ("hint:", "── ")  # the grader's own prose; never a line that may quote the student's text


def wrapped(text: str, width: int = WIDTH) -> str:
    """``text`` with each long line of the grader's own prose (the problem's title, the hint) wrapped at spaces
    to ``width``, its continuation indented under the line's text. Lines that may quote what the student's code
    said (an exception's message) stay whole, so that no part of them can start a line of its own."""
    out = []
    for line in text.splitlines():
        if len(line) <= width or not line.startswith(WRAPPED_PREFIXES):
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out.append(textwrap.fill(line.strip(), width, initial_indent=indent, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def summary(results: list[Result]) -> str:
    got = sum(r.score for r in results)
    total = sum(r.problem.points for r in results)
    # A stub's table line says all there is ("not implemented yet"): no block for it under the table.
    failed = [r for r in results if not r.passed and r.details and not r.reason.startswith("not implemented yet")]
    parts = [f"total: {got:g}/{total:g} points ({sum(r.passed for r in results)}/{len(results)} problems passed)"]
    for r in failed:
        parts.append(wrapped(f"\n── {r.problem.id}: {r.problem.title}\n{r.details}"))
    for r in results:
        if r.tampering:
            parts.append(f"\n── {r.problem.id}: {r.tampering.line()}")
    return "\n".join(parts)


def results_json(results: list[Result], execution_time: float, student_visible_output: bool = False) -> dict:
    """Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/"""
    tests = []
    for number, r in enumerate(results, start=1):
        output = r.details or r.reason  # unwrapped: Gradescope's box wraps, and phrases stay whole for tools
        flagged = f"\n\n{r.tampering.line()}" if r.tampering else ""
        output += flagged
        printed = student_text(r.student_output).strip()
        if printed and student_visible_output:
            output += f"\n\n── what your code printed (its own output, not the grader's) ──\n{printed}"
        tests.append({
            "name": f"{r.problem.id}: {r.problem.title}",
            "number": str(number),
            "score": r.score,
            "max_score": r.problem.points,
            "status": "passed" if r.passed else "failed",
            "output": output if r.passed is False else r.reason + flagged,
            "visibility": r.problem.visibility,
            "tags": [r.problem.assignment],
            # nothing timing-dependent: a regrade gives the same file
            "extra_data": {"diagnosis": r.diagnosis, **({"tampering": r.tampering.to_json()} if r.tampering else {})},
        })
    return {
        "score": sum(r.score for r in results),
        "execution_time": round(execution_time, 3),
        "output": summary(results).splitlines()[0],
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def write_results(path: Path, results: list[Result], execution_time: float, warnings: list[str] = ()) -> None:
    """results.json; ``warnings`` (about the whole submission) follow the summary in its top-level output."""
    data = results_json(results, execution_time, student_visible_output=True)
    data["output"] = "\n".join([data["output"], *warnings])
    _write_json(path, data)


def write_grader_error(path: Path, message: str, execution_time: float) -> None:
    """results.json when the grader cannot grade here: no score, the reason for the instructor."""
    _write_json(path, {"score": 0, "execution_time": round(execution_time, 3), "visibility": "visible",
                       "output": f"The autograder could not run (not your code's fault): {message}", "tests": []})


def _write_json(path: Path, data: dict) -> None:
    """Write results.json atomically, after every sandbox is gone: a fresh temporary
    file (never a guessable name a student could have planted a link at), then a
    rename over whatever is at ``path``, a forged file included."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2)
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
