"""Find solution code in what students receive.

Every solution region of ``solutions/`` (the lines between ``### BEGIN
SOLUTION`` and ``### END SOLUTION``) is normalised line by line: comments and
all whitespace removed. Lines shorter than ``MIN_CHARS`` after that
(``else:``, ``loss.backward()``, ``if terminated or truncated:``) are trivial
and ignored. A region leaks into a file when at least half of its n
non-trivial lines occur in that file (``ceil(n / 2)``: the one line of a
one-line region). Two lines of boilerplate shared with given code
(``params = list(policy.parameters())``) are not a leak; most of a function is.

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
BINARY_SUFFIXES = {".pt", ".npz", ".npy", ".pyc", ".png", ".jpg", ".db", ".so", ".gz", ".whl"}


def normalise(line: str) -> str:
    code = line.split("#", 1)[0] if "#" in line else line
    return re.sub(r"\s+", "", code)


@dataclass(frozen=True)
class Region:
    where: str  # "hw2/returns.py:23"
    lines: tuple[str, ...]  # its non-trivial normalised lines

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
                kept = tuple(dict.fromkeys(n for n in map(normalise, body) if len(n) >= MIN_CHARS))
                if kept:
                    regions.append(Region(f"{path.relative_to(root)}:{start}", kept))
                body = None
            elif body is not None:
                body.append(line)
    return regions


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
    present = {normalise(line) for line in text.splitlines()}
    leaks = []
    for region in regions:
        found = tuple(line for line in region.lines if line in present)
        if len(found) >= region.needed:
            leaks.append(Leak(region, artifact, found))
    return leaks


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
