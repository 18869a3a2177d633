"""Instructor commands (the Makefile's release, autograde, report and gradescope targets).

Exit status: 0 on success, 1 when a leak or an nbgrader failure stops the build,
2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.settings import GradeSettings, SettingsError, add_arguments
from instructor.course import BUILD, CourseError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="nbgrader generate_assignment + the student release")
    r.add_argument("--out", type=Path, default=BUILD / "release")
    r.add_argument("--course", type=Path, default=BUILD / "course")
    a = sub.add_parser("autograde", help="grade a folder of submissions with nbgrader; export grades.csv")
    a.add_argument("submissions", type=Path, nargs="?",
                   help="folder laid out as <student>/<assignment>/ (nbgrader's submitted/ layout)")
    a.add_argument("--samples", action="store_true",
                   help="grade made-up submissions, written to build/samples: correct, partly wrong, hanging")
    a.add_argument("--course", type=Path, default=BUILD / "course")
    a.add_argument("--csv", type=Path, default=None, help="where to write the grades (default: COURSE/grades.csv)")
    a.add_argument("--assignment", action="append", default=None, help="only this assignment (repeatable)")
    add_arguments(a, jobs=False, reference=False,
                  total="budget of one student's whole grade (per assignment): past it the student gets 0 with the "
                        "diagnosis student-time-limit")
    a.add_argument("--no-feedback", action="store_true", help="do not run nbgrader generate_feedback")
    a.add_argument("--jobs", "-j", type=int, default=None,
                   help="students graded at once (default: the number of usable cores)")
    a.add_argument("--force", action="store_true", help="regrade every submission, changed or not")
    a.add_argument("--problem", default=None, help="grade only these problems (comma-separated names)")
    c = sub.add_parser("make-class", help="made-up students: the reference with 0-4 bugs from instructor/variants each")
    c.add_argument("--out", type=Path, default=BUILD / "class")
    c.add_argument("--students", type=int, default=60)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--assignment", action="append", default=None, help="only this assignment (repeatable)")
    c.add_argument("--modules", default=None,
                   help="draw bugs only in these modules (comma-separated, e.g. hw2/returns.py)")
    c.add_argument("--broken", type=int, default=None,
                   help="students who hang, crash, print a lot or hand in a syntax error (default: 1 in 12)")
    rp = sub.add_parser("report", help="the class report (Markdown + PNG) from graded results")
    rp.add_argument("source", type=Path, nargs="?", default=BUILD / "course",
                    help="a course folder after autograde (default build/course), or a Gradescope "
                         "'Export Submissions' zip or folder")
    rp.add_argument("--out", type=Path, default=BUILD / "report")
    rp.add_argument("--manifest", type=Path, default=None,
                    help="a generated class's manifest.json: the report also compares its counts with the bugs")
    g = sub.add_parser("gradescope", help="build the Gradescope autograder zip")
    g.add_argument("--out", type=Path, default=BUILD / "gradescope", help="folder for <assignment>.zip")
    g.add_argument("--assignment", action="append", default=None, help="only this assignment (repeatable)")
    run = sub.add_parser("gradescope-run", help="what run_autograder does (inside the bundle)")
    run.add_argument("--root", type=Path, default=None, help="Gradescope's /autograder (default: $GRADER_ROOT)")
    s = sub.add_parser("scan", help="fail if files hold solution code")
    s.add_argument("paths", nargs="+", type=Path)
    n = sub.add_parser("sync-notebooks", help="add grade cells for new problems to assignments/source notebooks")
    args = parser.parse_args(argv)

    try:
        if args.command == "release":
            from instructor.release import build_release

            if build_release(args.out, args.course):
                return 1
        elif args.command == "autograde":
            from instructor.autograde import autograde
            from instructor.classroom import make_samples

            if args.samples and args.submissions is None:
                args.submissions = make_samples(BUILD / "samples")
            if args.submissions is None or not args.submissions.is_dir():
                print(f"error: no submissions folder {args.submissions}", file=sys.stderr)
                return 2
            from instructor.autograde import usable_cores

            autograde(args.submissions, args.course, csv=args.csv, only=args.assignment,
                      settings=GradeSettings.from_args(args), feedback=not args.no_feedback,
                      jobs=args.jobs or usable_cores(), force=args.force, problem=args.problem)
        elif args.command == "make-class":
            from instructor.classroom import make_class

            make_class(args.out, args.students, args.seed, only=args.assignment, broken=args.broken,
                       modules=args.modules.split(",") if args.modules else None)
        elif args.command == "report":
            from instructor.class_report import write_report

            print(write_report(args.source, args.out, manifest=args.manifest))
        elif args.command == "gradescope":
            from instructor.gradescope import build_bundle

            build_bundle(args.out, args.assignment)
        elif args.command == "gradescope-run":
            from instructor.gradescope import run

            return run(args.root)
        elif args.command == "scan":
            from instructor.leaks import scan

            found = scan(args.paths)
            for leak in found:
                print(leak)
            print(f"{len(found)} leak(s) of solution code in {', '.join(map(str, args.paths))}")
            return 1 if found else 0
        elif args.command == "sync-notebooks":
            from instructor.course import sync_source_notebooks

            sync_source_notebooks()
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
