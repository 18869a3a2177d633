"""The one place a result becomes text: the terminal's table and the details under it, the notebook's cell
(live and autograded: the same outputs), and Gradescope's Markdown. Everything here reads a
``autograder.results.ProblemResult``; nothing reads text back.

What came from the student (an exception's message, what the code printed, a failing value) is never
wrapped into the grader's prose, goes into code blocks in Markdown, and is escaped in HTML.
"""

from __future__ import annotations

import html
import re
import shutil
import textwrap
from collections.abc import Iterable
from pathlib import Path

from autograder.results import GradeRun, ProblemResult

STATUS = {"passed": "pass", "failed": "FAIL", "error": "ERROR"}
PRINTED = "what your code printed (its own output, not the grader's)"
LOAD_FAILURES = {"import-error": "does not import", "syntax-error": "has a syntax error",
                 "missing-file": "is missing"}
_ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def student_text(text: str) -> str:
    """What student code printed, made safe to show: no ANSI escapes (colours, cursor moves, terminal
    titles), no control characters but newlines and tabs, carriage-return overwrites resolved."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def printed(result: ProblemResult) -> str:
    return student_text(result.student_output).strip()


# --------------------------------------------------------------------------- the parts, as plain text
def value_rows(result: ProblemResult) -> list[str]:
    f = result.failure
    if f is None or not (f.expected or f.got):
        return []
    expected, got = f"  {f.expected_label + ':':<10}{f.expected}", f"  {'got:':<10}{f.got}"
    # What the student's own values imply reads after those values, as the check derived it from them.
    return [got, expected] if f.expected_label == "implied" else [expected, got]


def details(result: ProblemResult) -> str:
    """The whole feedback as plain text: the message, where, expected vs got, the smallest failing input, the
    notes, the hint (a passing problem: its notes)."""
    f = result.failure
    if f is None:
        return "\n".join(result.notes)
    lines = [f.message]
    if f.where:
        lines.append(f"  at {f.where}")
    lines += value_rows(result)
    if f.example:
        lines.append(f"smallest failing input: {f.example}")
    lines += f.notes
    if f.hint:
        lines.append(f"hint: {f.hint}")
    return "\n".join(lines)


def load_failure(result: ProblemResult) -> str:
    """"hw1/imitation.py does not import", for a problem not graded because a module did not load; else ""."""
    if not result.module:
        return ""
    return f"{result.module} {LOAD_FAILURES.get(result.diagnosis, 'does not load')}"


# --------------------------------------------------------------------------- the terminal
def _id_width() -> int:
    from autograder.problem import REGISTRY

    return max([34, *(len(p.id) for p in REGISTRY.values())])


def line(result: ProblemResult, width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((120, 20)).columns
    p = result.problem
    head = f"{p.id:<{_id_width()}} {result.score:>4g}/{p.points:<4g} {STATUS[result.status]:<5} "
    room = max(20, width - len(head))
    reason = f"not graded: {load_failure(result)} — see below" if result.module else result.reason
    reason = reason if len(reason) <= room else reason[: room - 1] + "…"
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
    for text_line in text.splitlines():
        if len(text_line) <= width or not text_line.startswith(WRAPPED_PREFIXES):
            out.append(text_line)
            continue
        indent = text_line[: len(text_line) - len(text_line.lstrip())]
        out.append(textwrap.fill(text_line.strip(), width, initial_indent=indent, subsequent_indent=indent + "  ",
                                 break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def total(results: list[ProblemResult]) -> str:
    got = sum(r.score for r in results)
    points = sum(r.problem.points for r in results)
    return f"total: {got:g}/{points:g} points ({sum(r.passed for r in results)}/{len(results)} problems passed)"


def summary(results: list[ProblemResult], results_path: Path | str | None = None) -> str:
    """What the terminal shows under the table: the total, each failure's details (a stub's line says all
    there is), each module that did not load (once), what the code printed and where to read it."""
    parts = [total(results)]
    for r in results:
        if not r.passed and r.failure and r.diagnosis != "not-implemented" and not r.module:
            parts.append(wrapped(f"\n── {r.problem.id}: {r.problem.title}\n{details(r)}"))
    parts += _load_failures(results)
    for r in results:
        if r.tampering:
            parts.append(f"\n── {r.problem.id}: {r.tampering.line()}")
    parts += _printed_block(results, results_path)
    return "\n".join(parts)


def _load_failures(results: list[ProblemResult]) -> list[str]:
    by_module: dict[str, list[ProblemResult]] = {}
    for r in results:
        if r.module:
            by_module.setdefault(r.module, []).append(r)
    blocks = []
    for module, hit in by_module.items():
        first = hit[0]
        blocks.append(wrapped(f"\n── {load_failure(first)} ({len(hit)} problem{'s' * (len(hit) > 1)} not graded, "
                              f"marked above)\n{details(first)}"))
    return blocks


def _printed_block(results: list[ProblemResult], results_path) -> list[str]:
    loud = [(r, printed(r)) for r in results if printed(r)]
    if not loud:
        return []
    where = f" (each problem's output is in {results_path}, tests[].extra_data.student_output)" if results_path \
        else ""
    width = max(len(r.problem.id) for r, _ in loud)
    rows = [f"  {r.problem.id:<{width}}  {len(text.splitlines())} lines, {len(text)} characters"
            for r, text in loud]
    return [f"\n── your code printed{where}:", *rows]


# --------------------------------------------------------------------------- Gradescope: Markdown
def _fenced(text: str, language: str = "") -> str:
    """``text`` in a code block whose fence is longer than any run of backticks in it: it cannot close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def markdown(result: ProblemResult) -> str:
    """Gradescope's test output (``output_format: md``): the message, expected vs got and the smallest failing
    input in code blocks, the notes as a list, the hint as a quote, what the code printed."""
    f = result.failure
    parts = []
    if f is None:
        parts.append(_fenced(result.reason))
        if result.notes:
            parts.append(_fenced("\n".join(result.notes)))
    else:
        parts.append(_fenced(f.message + (f"\n  at {f.where}" if f.where else "")))
        if f.expected or f.got:
            parts.append(_fenced("\n".join(row.strip() for row in value_rows(result))))
        if f.example:
            parts.append("**Smallest failing input**\n\n" + _fenced(f.example, "python"))
        if f.notes:
            parts.append("\n".join("- " + _fenced(note).replace("\n", "\n  ") for note in f.notes))
        if f.hint:
            parts.append("> **Hint:** " + f.hint.replace("\n", "\n> "))
    if result.tampering:
        parts.append(_fenced(result.tampering.line()))
    if printed(result):
        parts.append(f"**{PRINTED[0].upper() + PRINTED[1:]}**\n\n" + _fenced(printed(result)))
    return "\n\n".join(parts)


def results_run(results: list[ProblemResult], execution_time: float, warnings: Iterable[str] = ()) -> GradeRun:
    """The grade as results.json holds it; ``warnings`` (about the whole submission) follow the total in its
    top-level output."""
    return GradeRun(list(results), execution_time, output="\n".join([total(results), *warnings]))


def write_results(path: Path, results: list[ProblemResult], execution_time: float,
                  warnings: Iterable[str] = ()) -> None:
    results_run(results, execution_time, warnings).write(path, markdown)


def write_grader_error(path: Path, message: str, execution_time: float) -> None:
    """results.json when the grader cannot grade here: no score, the reason for the instructor."""
    GradeRun.failed_to_grade(message, execution_time).write(path)


# --------------------------------------------------------------------------- the notebook
def headline(result: ProblemResult) -> str:
    p = result.problem
    return f"{p.id}: {result.score:g}/{p.points:g} points, {'passed' if result.passed else 'FAILED'}"


def notebook_text(result: ProblemResult) -> str:
    """The notebook's feedback as plain text (a terminal, or a notebook that shows no HTML)."""
    lines = [headline(result), f"  {result.problem.title}"]
    if not result.passed:
        lines.append(details(result) or result.reason)
    if printed(result):
        lines.append(f"── {PRINTED} ──\n" + printed(result))
    return "\n".join(lines)


def notebook_html(result: ProblemResult) -> str:
    """The notebook's feedback as HTML: everything that came from the student escaped."""
    e = html.escape
    colour = "#2e7d32" if result.passed else "#c62828"
    out = [f'<div class="autograder-feedback"><p><b style="color:{colour}">{e(headline(result))}</b>'
           f"<br><i>{e(result.problem.title)}</i></p>"]
    f = result.failure
    if not result.passed and f is None:
        out.append(f"<pre>{e(result.reason)}</pre>")
    if f is not None:
        out.append(f"<pre>{e(f.message)}{e(chr(10) + '  at ' + f.where) if f.where else ''}</pre>")
        if f.expected or f.got:
            out.append(f"<pre>{e(chr(10).join(row.strip() for row in value_rows(result)))}</pre>")
        if f.example:
            out.append(f"<p>smallest failing input:</p><pre>{e(f.example)}</pre>")
        if f.notes:
            out.append("<ul>" + "".join(f"<li><pre>{e(n)}</pre></li>" for n in f.notes) + "</ul>")
        if f.hint:
            out.append(f"<blockquote><b>hint:</b> {e(f.hint)}</blockquote>")
    if result.tampering:
        out.append(f"<pre>{e(result.tampering.line())}</pre>")
    if printed(result):
        out.append(f"<details><summary>{e(PRINTED)}</summary><pre>{e(printed(result))}</pre></details>")
    return "".join(out) + "</div>"


def notebook_outputs(problem_ids: Iterable[str], results: dict[str, ProblemResult]) -> list[dict]:
    """A grade cell's outputs (nbformat's dicts), live and autograded alike: each problem's feedback as a
    display (HTML and plain text), then, if any failed, the CheckFailed error nbgrader counts."""
    outputs, failed = [], []
    for pid in problem_ids:
        result = results.get(pid)
        if result is None:
            failed.append(f"{pid}: not graded")
            continue
        outputs.append(display(result))
        if not result.passed:
            failed.append(f"{headline(result)}: {result.reason}")
    if failed:
        text = "\n".join(failed)
        outputs.append({"output_type": "error", "ename": "CheckFailed", "evalue": text,
                        "traceback": [f"CheckFailed: {text}"]})
    return outputs


def display(result: ProblemResult) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": notebook_html(result), "text/plain": notebook_text(result)}}


__all__ = ["details", "header", "line", "summary", "markdown", "notebook_html", "notebook_text",
           "notebook_outputs", "student_text", "write_results", "write_grader_error"]
