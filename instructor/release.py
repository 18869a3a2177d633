"""``make release``: the student release, built with nbgrader.

    nbgrader generate_assignment (every assignment) → build/course/release/<a>/
    assemble build/release/: starter/<a>/ (notebook + starter modules; the modules only for a homework
        without a handout notebook), rlkit/,
        the grader (public checks; no solutions/, so hidden problems are skipped),
        Makefile, README.md, requirements.txt, pyproject.toml
    scan it for solution code: any leak fails the build

The release mirrors the kit's own layout, so ``make grade`` works there as it
does here (SUBMISSION defaults to starter/).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from instructor import leaks
from instructor.course import BUILD, build_course, generate
from autograder.homeworks import HOMEWORKS
from autograder.paths import ROOT, SOLUTIONS
from autograder.starter import render

TEMPLATES = Path(__file__).parent / "templates"
# What of the kit students receive, besides the notebooks and starter modules.
SHIPPED = ["rlkit", "autograder", "requirements.txt", "pyproject.toml"]
# Instructor-only parts of the grader (no solution code, but no use to students).
NOT_SHIPPED = ["starter.py"]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", ".*")


def assemble(course: Path, out: Path, names: list[str]) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in SHIPPED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=IGNORED)
        else:
            shutil.copy2(src, out / name)
    for name in NOT_SHIPPED:
        path = out / "autograder" / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    shutil.copy2(TEMPLATES / "Makefile.release", out / "Makefile")
    shutil.copy2(TEMPLATES / "README.release.md", out / "README.md")
    (out / ".gitignore").write_text(".venv/\n__pycache__/\n*.pyc\n/results.json\n/runs/\n.ipynb_checkpoints/\n")
    for assignment in names:
        shutil.copytree(course / "release" / assignment, out / "starter" / assignment, ignore=IGNORED)
    for rel, text in render(SOLUTIONS).items():  # a homework without a handout notebook: its modules only
        if rel.parts[0] in HOMEWORKS and rel.parts[0] not in names:
            (out / "starter" / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / "starter" / rel).write_text(text)


def build_release(out: Path = BUILD / "release", course: Path = BUILD / "course", log=print) -> list[leaks.Leak]:
    """Build the release in ``out``; return the leaks of solution code found in it (the build fails on any)."""
    course = build_course(course, log=log)
    names = generate(course, log=log)
    assemble(course, Path(out), names)
    found = leaks.scan(out)
    if found:
        log(f"LEAK: the release in {out} contains solution code; do not hand it out:\n"
            + "\n".join(map(str, found)))
    else:
        log(f"student release: {out} ({', '.join(HOMEWORKS)}); no solution code found in it")
    return found
