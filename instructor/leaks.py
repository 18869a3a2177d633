"""Find solution code in what students receive.

Every solution region of ``solutions/`` (the lines between ``### BEGIN
SOLUTION`` and ``### END SOLUTION``) is normalised line by line: comments and
all whitespace removed. A file leaks a region when it holds

- any one of its LONG lines (``LONG_CHARS`` or more once the comment and the
  indentation are gone): such a line is a piece of the answer on its own;
- any two of its consecutive lines, one after the other (blank lines aside),
  unless together they are boilerplate (fewer than ``2 · MIN_CHARS``
  normalised characters: ``if terminated or truncated:`` / ``break``);
- or at least half of its non-trivial lines, anywhere in the file.

Files are read as students would see them: notebooks and JSON as the strings
they hold, HTML (nbgrader feedback) with tags stripped and entities decoded,
zip archives member by member, anything else as UTF-8 text. Binary files that
are none of these (weights, arrays) are skipped.
"""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.paths import SOLUTIONS

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
MIN_CHARS = 24
LONG_CHARS = 40
BINARY_SUFFIXES = {".pt", ".npz", ".npy", ".pyc", ".png", ".jpg", ".db", ".so", ".gz", ".whl"}


def normalise(line: str) -> str:
    code = line.split("#", 1)[0] if "#" in line else line
    return re.sub(r"\s+", "", code)


@dataclass(frozen=True)
class Region:
    where: str  # "hw2/returns.py:23"
    lines: tuple[str, ...]  # its non-trivial normalised lines
    long: tuple[str, ...] = ()  # normalised lines that were LONG_CHARS or more as written
    pairs: tuple[tuple[str, str], ...] = ()  # consecutive normalised lines, more than boilerplate together

    @property
    def needed(self) -> int:
        return (len(self.lines) + 1) // 2


@dataclass(frozen=True)
class Leak:
    region: Region
    artifact: str
    found: tuple[str, ...]

    def __str__(self) -> str:
        shown = "\n    ".join(self.found[:3])
        return f"{self.artifact}: {len(self.found)} line(s) of the solution region at {self.region.where}:\n    {shown}"


def solution_regions(root: Path = SOLUTIONS) -> list[Region]:
    regions = []
    for path in sorted(Path(root).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        body, start = None, 0
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if BEGIN in line:
                body, start = [], lineno
            elif END in line and body is not None:
                regions.append(_region(f"{path.relative_to(root)}:{start}", body))
                body = None
            elif body is not None:
                body.append(line)
    return regions


def _stripped(line: str) -> str:
    return (line.split("#", 1)[0] if "#" in line else line).strip()


def _region(where: str, body: list[str]) -> Region:
    written = [_stripped(line) for line in body]
    written = [w for w in written if w]
    normal = [normalise(w) for w in written]
    kept = tuple(dict.fromkeys(n for n in normal if len(n) >= MIN_CHARS))
    long = tuple(dict.fromkeys(n for w, n in zip(written, normal) if len(w) >= LONG_CHARS))
    pairs = tuple(dict.fromkeys((a, b) for a, b in zip(normal, normal[1:]) if len(a) + len(b) >= 2 * MIN_CHARS))
    return Region(where, kept, long, pairs)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def readable_text(name: str, data: bytes) -> str | None:
    """The text a student reads in this file, or None for binary data."""
    suffix = Path(name).suffix.lower()
    if suffix in BINARY_SUFFIXES:
        return None
    if suffix == ".zip" or data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                parts = [readable_text(m, archive.read(m)) for m in archive.namelist() if not m.endswith("/")]
        except zipfile.BadZipFile:
            return None
        return "\n".join(p for p in parts if p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if suffix in {".ipynb", ".json"}:
        try:
            return "\n".join(_strings(json.loads(text)))
        except ValueError:
            return text
    if suffix in {".html", ".htm"}:
        return html.unescape(re.sub(r"<[^>]+>", "", text))
    return text


def scan_text(text: str, artifact: str, regions: list[Region]) -> list[Leak]:
    lines = [n for n in map(normalise, text.splitlines()) if n]
    present, adjacent = set(lines), set(zip(lines, lines[1:]))
    leaks = []
    for region in regions:
        found = tuple(line for line in region.lines if line in present)
        long = tuple(line for line in region.long if line in present)
        pairs = tuple(f"{a}  ⏎  {b}" for a, b in region.pairs if (a, b) in adjacent)
        if (found and len(found) >= region.needed) or long or pairs:
            leaks.append(Leak(region, artifact, long + pairs + tuple(f for f in found if f not in long)))
    return leaks


EXPRESSION_CHARS = 20


def _expression(line: str) -> str:
    """A normalised solution line without what makes it a statement (``return``, ``x =``, ``x +=``)."""
    return re.sub(r"^(return|[\w.\[\]]+(?::[\w.\[\]]+)?[-+*/]?=(?!=))", "", line)


def scan_messages(messages: dict[str, str], regions: list[Region] | None = None) -> list[Leak]:
    """Solution code inside a hint or message the grader can show (``{where: text}``): any expression of a
    solution line (``EXPRESSION_CHARS`` or more, normalised) that appears in the text, even mid-sentence."""
    regions = solution_regions() if regions is None else regions
    leaks = []
    for where, text in messages.items():
        flat = normalise(text.replace("#", ""))
        for region in regions:
            found = tuple(line for line in region.lines + region.long
                          if len(_expression(line)) >= EXPRESSION_CHARS and _expression(line) in flat)
            if found:
                leaks.append(Leak(region, where, tuple(dict.fromkeys(found))))
    return leaks


def grader_messages(root: Path) -> dict[str, str]:
    """Every string literal of the grader's modules under ``root`` (hints, messages, notes), by file and line."""
    import ast

    messages = {}
    for path in sorted(Path(root).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                messages[f"{path}:{node.lineno}"] = node.value
            elif isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
                messages[f"{path}:{node.lineno}"] = text
    return messages


def scan(paths, regions: list[Region] | None = None) -> list[Leak]:
    """Every leak of a solution region into the files under ``paths`` (files or directories)."""
    regions = solution_regions() if regions is None else regions
    leaks = []
    for top in [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            text = readable_text(path.name, path.read_bytes())
            if text:
                leaks += scan_text(text, str(path), regions)
    return leaks
