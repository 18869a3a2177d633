"""Command line: ``python -m autograder grade --submission starter``.

Exit status 0 whenever grading completed, whatever the score; 2 when the
command itself is wrong (no such submission); 3 when the grader cannot grade
here (the start-up self-check failed) or failed internally on a problem.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from autograder import report
from autograder.paths import ROOT, SOLUTIONS
from autograder.problem import Reference
from autograder.runner import DEFAULT_TOTAL_SECONDS, grade, sealed_paths, select
from autograder.sandbox import GraderError, prepare, self_check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description="Grade a homework submission.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a submission directory laid out like starter/")
    g.add_argument("--submission", default="starter", help="directory holding hw1/ and hw2/ (default: starter)")
    g.add_argument("--assignment", default="all", choices=["all", "hw1", "hw2"])
    g.add_argument("--problem", default=None, help="grade only these problems (comma-separated names)")
    g.add_argument("--results", default="results.json", help="where to write Gradescope's results.json")
    g.add_argument("--device", default=os.environ.get("DEVICE") or "cpu", choices=["cpu", "cuda"])
    g.add_argument("--reference", default=str(SOLUTIONS),
                   help="reference solutions for the hidden checks (skipped when absent)")
    g.add_argument("--no-reference", action="store_true", help="run only the public checks")
    g.add_argument("--skip-slow", action="store_true", help="skip the integration problems that train a policy")
    g.add_argument("--time-limit", type=float, default=None, help="seconds per problem (default: each problem's own)")
    g.add_argument("--memory-mb", type=int, default=int(os.environ.get("GRADER_MEMORY_MB", "2048")))
    g.add_argument("--total-seconds", type=float, default=DEFAULT_TOTAL_SECONDS,
                   help="budget of the whole grade: problems left when it runs out are 'not graded: out of time' "
                        f"(default {DEFAULT_TOTAL_SECONDS:g})")
    sub.add_parser("list", help="list the problems")
    args = parser.parse_args(argv)

    if args.command == "list":
        for p in select():
            tag = "hidden" if p.needs_reference else "public"
            print(f"{p.id:<34} {p.points:>4g} pts  {tag:<6} {p.title}")
        return 0

    submission = Path(args.submission)
    if not submission.is_absolute() and not submission.exists() and (ROOT / submission).exists():
        submission = ROOT / submission
    if not submission.is_dir():
        print(f"error: submission directory {args.submission!r} does not exist", file=sys.stderr)
        return 2
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: DEVICE=cuda but torch sees no CUDA device", file=sys.stderr)
            return 2
    reference = None if args.no_reference else Reference.find(Path(args.reference))
    problems = select(args.assignment, args.problem, with_reference=reference is not None,
                      include_slow=not args.skip_slow)
    if not problems:
        print(f"error: no problem matches {args.problem!r}; see `python -m autograder list`", file=sys.stderr)
        return 2

    print(f"grading {submission} ({args.assignment}, device {args.device}"
          f"{', public checks only' if reference is None else ''})")
    start = time.monotonic()
    sealed = sealed_paths(reference, Path(args.results).resolve())
    try:
        confinement = prepare(sealed)
        self_check(submission, args.device, sealed)
    except GraderError as err:
        print(f"grader error: {err}", file=sys.stderr)
        report.write_grader_error(Path(args.results), str(err), time.monotonic() - start)
        return 3
    if os.environ.get("GRADER_VERBOSE"):
        print(confinement.describe())
    print(report.header())
    results = grade(submission, problems, args.device, reference, args.memory_mb,
                    on_result=lambda r: print(report.line(r), flush=True), time_limit=args.time_limit,
                    deadline=start + args.total_seconds)
    elapsed = time.monotonic() - start
    report.write_results(Path(args.results), results, elapsed)
    print(report.summary(results))
    print(f"results written to {args.results} ({elapsed:.1f} s)")
    return 3 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
