"""Imports of a submission that Gradescope will not have, read from the source, never run.

The student release and the Gradescope bundle install requirements.txt and nothing else. A module that imports
a package from outside it (and outside the standard library and the kit's own packages) may grade locally, where
the student installed it, and fail to import on Gradescope: say so, naming the package, before it costs points.
The modules are parsed (``ast``), not imported: the judge never runs student code.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

from autograder.paths import ROOT

KIT_PACKAGES = frozenset({"hw1", "hw2", "rlkit", "autograder"})  # the kit's own, shipped with it


def _normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def required_distributions(requirements: Path = ROOT / "requirements.txt") -> frozenset[str]:
    """The distributions requirements.txt installs, by normalised name ("typing-extensions")."""
    names = set()
    for line in Path(requirements).read_text().splitlines():
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
        if name:
            names.add(_normalised(name.group(1)))
    return frozenset(names)


def imported_packages(source: str) -> set[str]:
    """The top-level names a module imports (absolute imports only; a relative one stays in the submission)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def foreign_imports(submission: Path, requirements: Path = ROOT / "requirements.txt") -> dict[str, list[str]]:
    """{module path relative to ``submission``: the packages it imports that Gradescope will not install}."""
    submission = Path(submission)
    required = required_distributions(requirements)
    provided = importlib.metadata.packages_distributions()  # import name → the distributions that install it
    found = {}
    for path in sorted(submission.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        try:
            imported = imported_packages(path.read_text(errors="replace"))
        except (SyntaxError, ValueError):  # the grade reports a module that does not parse
            continue
        local = {child.stem for folder in (path.parent, submission) for child in folder.iterdir()}  # the student's own
        foreign = sorted(
            name for name in imported
            if name not in sys.stdlib_module_names and name not in KIT_PACKAGES and name not in local
            and not any(_normalised(d) in required for d in provided.get(name, [])))
        if foreign:
            found[str(path.relative_to(submission))] = foreign
    return found


def import_warnings(submission: Path) -> list[str]:
    """One line for each module that imports a package outside the kit's requirements."""
    return [f"warning: {module} imports {', '.join(packages)}, which the kit's requirements.txt does not install: "
            f"{'it is' if len(packages) == 1 else 'they are'} not on Gradescope, where this module will fail to "
            "import (use the standard library, torch, numpy or gymnasium instead)"
            for module, packages in foreign_imports(submission).items()]
