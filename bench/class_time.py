"""Time a whole made-up class through ``make autograde``, with JOBS=1 and JOBS=2, and extrapolate.

    python bench/class_time.py                         # the issue's measurement: 60 students, all of hw1+hw2
    python bench/class_time.py --students 4 --assignment hw2 --skip-slow   # a quick check of the script
    python bench/class_time.py --jobs 2 --base HEAD~1  # and the same class at an older commit, in the same run

Each run grades the same generated class (instructor/classroom.py, fixed seed) from scratch in its
own course folder (FORCE: nothing is reused), prints the time of every student and of the whole class,
and checks that the JOBS=2 gradebook (every grade in gradebook.db) and its CSV export equal the JOBS=1 ones. The extrapolation to N students
scales the measured grading wall time linearly and adds the class's fixed overhead (course build,
nbgrader feedback and export, measured as wall time less grading time): overhead + N × grading / students.

``--base COMMIT`` first grades the same class (same seed, the same made-up students) with that commit's own
bench/class_time.py in a plain copy of its tree (``git archive``, this checkout's virtualenv), and prints its
figures above this checkout's: a class takes minutes, so the two run one after the other, not interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", default="1,2", help="comma-separated JOBS values to time")
    parser.add_argument("--assignment", action="append", default=None)
    parser.add_argument("--skip-slow", action="store_true")
    parser.add_argument("--problem", default=None)
    parser.add_argument("--extrapolate", type=int, default=300)
    parser.add_argument("--work", type=Path, default=None, help="folder for the class and courses (default: a temp dir)")
    parser.add_argument("--base", default=None, help="also time this commit's grader on the same class, first")
    args = parser.parse_args(argv)

    from autograder.settings import GradeSettings
    from instructor.autograde import ClassRun, autograde, gradebook_snapshot
    from instructor.classroom import make_class

    work = args.work or Path(tempfile.mkdtemp(prefix="class_time."))
    if args.base:
        time_base(args, work)
        print(f"\nthis checkout ({commit_name('HEAD')}):")
    make_class(work / "class", args.students, args.seed, only=args.assignment)
    exports, gradebooks = {}, {}
    for jobs in [int(j) for j in args.jobs.split(",")]:
        run = ClassRun(csv=Path())
        start = time.monotonic()
        csv = autograde(work / "class", work / f"course-jobs{jobs}", only=args.assignment, jobs=jobs, force=True,
                        settings=GradeSettings(skip_slow=args.skip_slow), problem=args.problem, feedback=True, log=lambda *_: None,
                        run=run)
        wall = time.monotonic() - start
        exports[jobs] = sorted(Path(csv).read_text().splitlines())
        gradebooks[jobs] = gradebook_snapshot(work / f"course-jobs{jobs}")
        per = sorted(run.seconds.items())
        grading = sum(s for _, s in per)
        median = statistics.median(s for _, s in per)
        overhead = wall - run.grading_wall
        print(f"\nJOBS={jobs}: {len(per)} gradings (student × assignment) in {wall:.1f} s")
        for name, seconds in per:
            print(f"  {name:<24} {seconds:7.1f} s")
        print(f"  per grading: median {median:.1f} s, min {per and min(s for _, s in per):.1f} s, "
              f"max {per and max(s for _, s in per):.1f} s; the class's fixed overhead ≈ {overhead:.0f} s")
        per_student = run.grading_wall / max(1, args.students)
        estimate = overhead + args.extrapolate * per_student
        print(f"  whole class {wall:.1f} s = overhead {overhead:.1f} s + grading {run.grading_wall:.1f} s "
              f"({per_student:.1f} s of wall time per student at JOBS={jobs}, {grading:.1f} s of grading in all)")
        print(f"  extrapolated to {args.extrapolate} students: {estimate / 60:.1f} min "
              f"(overhead + {args.extrapolate} × {per_student:.1f} s)")
    if len(exports) > 1:
        first = next(iter(exports.values()))
        same = all(rows == first for rows in exports.values())
        print(f"\ngrades.csv identical across JOBS={','.join(map(str, exports))}: {same}")
        first_book = next(iter(gradebooks.values()))
        same_book = all(rows == first_book for rows in gradebooks.values())
        print(f"gradebook.db's {len(first_book)} grades identical across JOBS={','.join(map(str, gradebooks))}: "
              f"{same_book}")
        return 0 if same and same_book else 1
    return 0


def commit_name(commit: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", commit], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def time_base(args, work: Path) -> None:
    """The same measurement by ``args.base``'s own script on a copy of its tree; its figures printed as it gives
    them (its progress lines left out)."""
    from bench.speed import checkout

    tree = checkout(args.base, work / "base-tree")
    argv = ["--students", str(args.students), "--seed", str(args.seed), "--jobs", args.jobs,
            "--extrapolate", str(args.extrapolate), "--work", str(work / "base")]
    argv += [a for name in args.assignment or () for a in ("--assignment", name)]
    argv += (["--skip-slow"] if args.skip_slow else []) + (["--problem", args.problem] if args.problem else [])
    print(f"base ({commit_name(args.base)}), graded first:", flush=True)
    proc = subprocess.run([sys.executable, "bench/class_time.py", *argv], cwd=tree, capture_output=True, text=True)
    print("\n".join(line for line in proc.stdout.splitlines() if not line.startswith("[")))
    if proc.returncode != 0:
        print(f"(the base run ended with status {proc.returncode})\n{proc.stderr[-1500:]}")


if __name__ == "__main__":
    sys.exit(main())
