"""The grading tree: one assignment's starter layout, completed with a student's modules.

Class autograding (``instructor/autograde.py``) and Gradescope's run_autograder
(``instructor/gradescope.py``) both grade a student through this: a copy of the starter's
files for the assignment (the given ``__init__.py`` and whatever else the starter holds; no
notebooks, no caches), where every module the student writes is the student's own file, or is
absent. A module the student did not hand in is removed rather than left as the starter's stub,
so the grader reports the file missing instead of grading a stub as the student's.

Only regular files are taken: a student's module that is a symbolic link (or sits under one)
would make this process, which may run as root, copy whatever the link points at (the
reference, on Gradescope) into the tree the student's code is graded from; a folder or a fifo
is not a module. Such a module is refused and treated as missing, with the reason.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.ipynb", ".ipynb_checkpoints")


@dataclass
class Completion:
    """What ``complete_starter`` did, module by module (paths relative to the assignment's folder)."""

    tree: Path  # the assignment's folder in the grading tree
    found: dict[str, Path] = field(default_factory=dict)  # module → the student's file copied there
    missing: list[str] = field(default_factory=list)  # modules the student did not hand in (or that were refused)
    refused: dict[str, str] = field(default_factory=dict)  # module → why the student's file was not taken


def why_not_a_module(path: Path, submission: Path) -> str | None:
    """Why the student's ``path`` (inside ``submission``) cannot be graded as a module, or None for a regular file
    reached without a symbolic link."""
    try:
        inside = Path(path).relative_to(submission)
    except ValueError:
        return f"{path} is outside the submission"
    here = Path(submission)
    for part in inside.parts[:-1]:
        here = here / part
        if here.is_symlink():
            return f"{inside} is inside a symbolic link ({here.relative_to(submission)})"
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return f"{inside} cannot be read"
    if stat.S_ISLNK(mode):
        return f"{inside} is a symbolic link, not a file"
    if stat.S_ISDIR(mode):
        return f"{inside} is a folder, not a file"
    if not stat.S_ISREG(mode):
        return f"{inside} is not a regular file"
    return None


def at_its_path(submission: Path, rel: str) -> Path | None:
    """The student's file for ``rel`` where the starter has it (``submission/rel``), if anything is there."""
    path = Path(submission) / rel
    return path if os.path.lexists(path) else None


def student_module(submission: Path, rel: str) -> Path | None:
    """``submission/rel`` when it is a module that can be graded (a regular file, no symbolic link on the way)."""
    path = at_its_path(submission, rel)
    return path if path is not None and why_not_a_module(path, submission) is None else None


def complete_starter(starter: Path, dst: Path, modules: Iterable[str], submission: Path,
                     find: Callable[[Path, str], Path | None] = at_its_path) -> Completion:
    """``dst``: a copy of ``starter`` (one assignment's starter folder) where each of ``modules`` (paths relative to
    it) is the student's file ``find(submission, rel)``, or absent where there is none or it is refused (see
    ``why_not_a_module``). Extra files of the submission are not copied. ``dst`` is replaced if it exists."""
    dst = Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(starter, dst, ignore=IGNORED)
    done = Completion(dst)
    for rel in modules:
        target = dst / rel
        found = find(Path(submission), rel)
        why = None if found is None else why_not_a_module(found, Path(submission))
        if found is None or why:
            target.unlink(missing_ok=True)  # the grader then says which file is missing
            done.missing.append(rel)
            if why:
                done.refused[rel] = why
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, target)
        done.found[rel] = found
    return done


__all__ = ["Completion", "complete_starter", "student_module", "why_not_a_module", "at_its_path"]
