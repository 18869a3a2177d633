"""The course's homeworks, read from the files: one list for the command line, the sandbox and the tools.

A homework exists because a problem module grades it. Each module of ``autograder/problems/`` is named
``<homework>_<part>.py`` (``hw2_returns.py`` grades part of ``hw2``), so adding ``hw3_bandits.py`` adds
``hw3`` everywhere, before any problem is imported (the command line needs the list before it imports torch).
"""

from __future__ import annotations

from pathlib import Path

from autograder.paths import ROOT

PROBLEM_MODULES = ROOT / "autograder" / "problems"


def homework_of(module: str) -> str:
    """``"hw2_returns"`` → ``"hw2"``: the homework a problem module grades, from its name."""
    return module.split("_")[0]


def find_homeworks(problem_modules: Path = PROBLEM_MODULES) -> tuple[str, ...]:
    """The homeworks the problem modules in ``problem_modules`` grade, in order (``hw2`` before ``hw10``)."""
    names = {homework_of(p.stem) for p in Path(problem_modules).glob("*.py") if not p.stem.startswith("_")}
    return tuple(sorted(names, key=lambda name: (len(name), name)))


HOMEWORKS = find_homeworks()
