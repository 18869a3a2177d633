"""``make autograde``: grade a class's submissions through nbgrader.

    submissions/<student>/<assignment>/  (nbgrader's submitted/ layout; extra files are ignored)
      → course/submitted/<student>/<assignment>/: the modules the student writes, as submitted,
        and the RELEASED notebook (the notebook is the handout, not student input: code a
        student adds to it would run in the grading kernel, outside the sandbox)
      → nbgrader autograde <a> --force    (grade cells run the checks, hidden ones included;
                                           student code runs only in the sandbox's child)
      → nbgrader generate_feedback <a> --force   (hidden-test source removed)
      → nbgrader export --to grades.csv          (from the gradebook, nbgrader's SQLite db)

Limits: each problem has its own time budget in the sandbox (AUTOGRADER_TIME_LIMIT
overrides it); nbgrader interrupts a cell after ``c.Execute.timeout``. A hang costs
the problem it happens in, nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from instructor.course import BUILD, CourseError, build_course, generate, graded_files, nbgrader


def stage_submissions(submissions: Path, course: Path, names: list[str], log=print) -> dict[str, list[str]]:
    """Copy each ``<student>/<a>/`` into ``course/submitted/``; return assignment → students."""
    graded = graded_files()
    staged: dict[str, list[str]] = {}
    for student_dir in sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_dir.name
        for assignment in names:
            src = student_dir / assignment
            if not src.is_dir():
                continue
            dst = course / "submitted" / student / assignment
            if dst.exists():
                shutil.rmtree(dst)
            dst.mkdir(parents=True)
            kept = []
            for rel in graded.get(assignment, []):
                if (src / rel).is_file():
                    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src / rel, dst / rel)
                    kept.append(rel)
            shutil.copyfile(course / "release" / assignment / f"{assignment}.ipynb", dst / f"{assignment}.ipynb")
            if (src / "timestamp.txt").is_file():
                shutil.copyfile(src / "timestamp.txt", dst / "timestamp.txt")
            missing = sorted(set(graded.get(assignment, [])) - set(kept))
            log(f"{student}/{assignment}: {', '.join(kept) or 'no modules'}"
                + (f" (missing: {', '.join(missing)})" if missing else ""))
            staged.setdefault(assignment, []).append(student)
    return staged


def autograde(submissions: Path, course: Path = BUILD / "course", csv: Path | None = None,
              only: list[str] | None = None, time_limit: float | None = None, skip_slow: bool = False,
              feedback: bool = True, log=print) -> Path:
    """Grade every submission; return the path of the CSV export."""
    course = build_course(Path(course), log=log)
    names = generate(course, only, log=log)
    staged = stage_submissions(Path(submissions), course, names, log=log)
    if not staged:
        raise CourseError(f"no submissions in {submissions}: expected <student>/<assignment>/ folders "
                          f"for assignments {', '.join(names)}")
    env = {}
    if time_limit:
        env["AUTOGRADER_TIME_LIMIT"] = str(time_limit)
    if skip_slow:
        env["AUTOGRADER_SKIP_SLOW"] = "1"
    for student in sorted({s for students in staged.values() for s in students}):
        nbgrader(course, "db", "student", "add", student, env=env, log=log)
    for assignment in sorted(staged):
        nbgrader(course, "autograde", assignment, "--force", env=env, log=log)
        if feedback:
            nbgrader(course, "generate_feedback", assignment, "--force", env=env, log=log)
    out = course / "grades.csv"
    nbgrader(course, "export", "--to", str(out), env=env, log=log)
    if csv:
        Path(csv).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, csv)
        out = Path(csv)
    log(f"grades: {out}" + (f"; feedback: {course / 'feedback'}" if feedback else ""))
    return out


__all__ = ["autograde", "stage_submissions"]


# --------------------------------------------------------------------------- made-up submissions
HANG = "\n\n# --- made-up sample: this function never returns\ndef {name}(*args, **kwargs):\n    while True:\n        pass\n"
WRONG_RTG = '''

# --- made-up sample: the discount restarts nowhere (γ^{t'} instead of γ^{t'-t})
def discounted_reward_to_go(rewards, gamma):
    T = rewards.shape[0]
    discounts = gamma ** torch.arange(T, dtype=torch.float64)
    rtg = torch.stack([(discounts[t:] * rewards[t:].to(torch.float64)).sum() for t in range(T)])
    return rtg.to(rewards.dtype)
'''
WRONG_RELABEL = '''

# --- made-up sample: DAgger that keeps the learner's own actions instead of asking the expert
def dagger_relabel(expert, trajectories):
    return list(trajectories)
'''


def _first_graded_function(text: str) -> str | None:
    import ast

    lines = text.splitlines()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and any("BEGIN SOLUTION" in line
                                                     for line in lines[node.lineno - 1:node.end_lineno]):
            return node.name
    return None


def foundation_first(assignment: str, files: list[str], root: Path) -> list[str]:
    """The graded modules, those the others import first (hw2/returns.py before policy_gradient.py)."""
    def imported_by(rel: str) -> int:
        name = f"{assignment}.{Path(rel).with_suffix('').as_posix().replace('/', '.')}"
        return sum(name in (root / assignment / other).read_text() for other in files if other != rel)

    return sorted(files, key=lambda rel: (-imported_by(rel), rel))


def make_samples(dst: Path = BUILD / "samples") -> Path:
    """Three made-up students for every assignment, in nbgrader's submitted/ layout.

    correct:      the reference modules;
    partly_wrong: the first graded module (the one the others import) from the reference, with
                  a classic bug (hw2: reward-to-go discounted from the start; hw1: DAgger that
                  keeps the learner's actions); the others not implemented;
    hangs:        the starter, where the first graded function of that first module loops forever.
    """
    from autograder.paths import SOLUTIONS
    from autograder.starter import render

    dst = Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    starter = render(SOLUTIONS)
    graded = graded_files()
    for assignment, files in graded.items():
        for i, rel in enumerate(foundation_first(assignment, files, SOLUTIONS)):
            reference = (SOLUTIONS / assignment / rel).read_text()
            stub = starter[Path(assignment) / rel]
            wrong = reference if i == 0 else stub
            if rel == "returns.py" and "def discounted_reward_to_go" in wrong:
                wrong += WRONG_RTG
            if rel == "imitation.py" and "def dagger_relabel" in wrong:
                wrong += WRONG_RELABEL
            name = _first_graded_function(reference)
            for student, text in [("correct", reference), ("partly_wrong", wrong),
                                  ("hangs", stub + (HANG.format(name=name) if name and i == 0 else ""))]:
                path = dst / student / assignment / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return dst
