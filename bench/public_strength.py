"""How strong the student release is: the buggy variants that only the hidden problems catch.

    .venv/bin/python bench/public_strength.py [--homework all|hw1|hw2] [--jobs N] [--slow] [--variant NAME,...]

Every buggy variant of the library (instructor/variants) is graded on the problems its functions feed: those
whose stubs call, directly or through other graded functions, a function the variant defines. It is
graded twice over: by the full grader (public and hidden problems, the reference present) and as the
student release grades it (public problems only, no reference). A public problem never reads the
reference, so its verdict is the same in both: it is graded once, without the reference, and counted in
both columns. A variant that loses points only in the full grader is one a student grading locally sees
at full marks and loses points for after publication: the list at the end should be empty, or each
remaining variant explained in the README (the hidden checks' section).

The training problems (``slow``) are left out unless --slow: they take minutes each, and both columns
would count them alike.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.paths import SOLUTIONS  # noqa: E402
from instructor.classroom import call_graph, called_names, defined_functions, module_path, reach  # noqa: E402


@dataclass
class Measured:
    """One variant's verdicts: the points each problem took, and by which problems."""
    name: str
    module: str
    lost_public: dict[str, float]  # problem id → points lost (public problems, graded as the release does)
    lost_hidden: dict[str, float]  # problem id → points lost (hidden problems, reference present)
    errors: list[str]  # "problem: reason" where the grader itself failed
    seconds: float

    @property
    def full(self) -> float:
        return sum(self.lost_public.values()) + sum(self.lost_hidden.values())

    @property
    def release(self) -> float:
        return sum(self.lost_public.values())

    @property
    def verdict(self) -> str:
        if self.errors:
            return "GRADER ERROR"
        if self.full == 0:
            return "MISSED"
        return "hidden only" if self.release == 0 else ""


def fed_problems(variant, problems, graph: dict) -> list:
    """The problems whose stubs reach a function the variant defines, with the variant's own calls in the
    call graph (its version of a function may call what the reference's did not)."""
    injected = {(variant.module, f) for f in defined_functions(variant.source)}
    graph = dict(graph)
    for function, called in called_names(variant.source).items():
        graph[(variant.module, function)] = {(m, c) for c in called for m, f in graph if f == c}
    return [p for p in problems if reach(graph, {(module_path(m), f) for m, f in p.stubs}) & injected]


def write_submission(variant, into: Path) -> Path:
    """solutions/ with the variant appended to its module: its ``def`` replaces the reference's, as a
    student's would."""
    submission = into / "submission"
    shutil.copytree(SOLUTIONS, submission, ignore=shutil.ignore_patterns("__pycache__"))
    path = submission / variant.module
    path.write_text(path.read_text() + "\n\n# --- variant under test\n" + textwrap.dedent(variant.source))
    return submission


# The hidden problems replay the reference in this process, with torch's and numpy's global RNGs (saved and
# restored around each replay): two replays at once, for two variants, would draw from each other's streams.
# A grade never runs one problem twice at once, so neither does this script.
REFERENCE_REPLAY = threading.Lock()


def measure(variant, problems, reference, memory_mb: int) -> Measured:
    from autograder.runner import grade

    start = time.monotonic()
    public = [p for p in problems if not p.needs_reference]
    hidden = [p for p in problems if p.needs_reference]
    with tempfile.TemporaryDirectory(prefix="strength-") as tmp:
        submission = write_submission(variant, Path(tmp))
        results = grade(submission, public, memory_mb=memory_mb)
        with REFERENCE_REPLAY:
            results += grade(submission, hidden, reference=reference, memory_mb=memory_mb)
    lost = {r.problem.id: r.problem.points - r.score for r in results}
    return Measured(variant.name, variant.module,
                    {p.id: lost[p.id] for p in public if lost[p.id] > 0},
                    {p.id: lost[p.id] for p in hidden if lost[p.id] > 0},
                    [f"{r.problem.id}: {r.reason}" for r in results if r.status == "error"],
                    time.monotonic() - start)


def table(rows: list[Measured]) -> str:
    width = max([len(r.name) for r in rows] + [7])
    lines = [f"{'variant':<{width}}  {'lost, full':>10}  {'lost, release':>13}  caught by (points lost)",
             f"{'':-<{width}}  {'':->10}  {'':->13}  {'':-<23}"]
    for r in rows:
        by = ", ".join(f"{k.split('/')[1]} {v:g}" for k, v in {**r.lost_public, **r.lost_hidden}.items())
        lines.append(f"{r.name:<{width}}  {r.full:>10g}  {r.release:>13g}  {by or '-'}"
                     + (f"  [{r.verdict}]" if r.verdict else ""))
    return "\n".join(lines)


def summary(rows: list[Measured], elapsed: float) -> str:
    hidden_only = [r for r in rows if r.verdict == "hidden only"]
    missed = [r for r in rows if r.verdict == "MISSED"]
    errors = [r for r in rows if r.errors]
    lines = [f"{len(rows)} buggy variants graded in {elapsed:.0f} s: {len(rows) - len(hidden_only) - len(missed)}"
             f" lose points in the release, {len(hidden_only)} only in the full grader (hidden problems), "
             f"{len(missed)} nowhere"]
    lines.append(f"caught only by hidden problems ({len(hidden_only)}):")
    lines += [f"  {r.name} ({r.module}): {', '.join(r.lost_hidden)}" for r in hidden_only] or ["  none"]
    if missed:
        lines.append(f"caught by no problem graded here ({len(missed)}):")
        lines += [f"  {r.name} ({r.module})" for r in missed]
    if errors:
        lines.append(f"grader errors ({len(errors)}):")
        lines += [f"  {r.name}: {e}" for r in errors for e in r.errors]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homework", default="all", choices=["all", "hw1", "hw2"])
    parser.add_argument("--jobs", type=int, default=0, help="variants graded at once (default: the usable CPUs, "
                                                             "as memory allows)")
    parser.add_argument("--slow", action="store_true", help="grade the training problems too (minutes each)")
    parser.add_argument("--variant", default=None, help="only these variants (comma-separated names)")
    args = parser.parse_args(argv)

    from autograder.problem import Reference
    from autograder.runner import select
    from autograder.sandbox import DEFAULT_MEMORY_MB, memory_limit_mb, prepare
    from autograder.sandbox.limits import default_jobs
    from instructor.variants import collect  # the kit's own library: instructor-only

    import torch

    torch.set_num_threads(1)  # as the grading command: the work is in the children
    reference = Reference.find(SOLUTIONS)
    if reference is None:
        print(f"error: no reference solutions in {SOLUTIONS}: the hidden problems need them", file=sys.stderr)
        return 2
    problems = select(args.homework, include_slow=args.slow)
    wanted = {n.strip() for n in args.variant.split(",")} if args.variant else None
    variants = [v for v in collect("BUGGY") if args.homework in ("all", v.module.split("/")[0])
                and (wanted is None or v.name in wanted)]
    if not variants:
        print("error: no buggy variant matches", file=sys.stderr)
        return 2
    modules = {module_path(m) for p in problems for m, _ in p.stubs}
    graph = call_graph({m: (SOLUTIONS / m).read_text() for m in modules if (SOLUTIONS / m).is_file()})
    jobs = args.jobs if args.jobs > 0 else default_jobs()
    memory_mb = memory_limit_mb(DEFAULT_MEMORY_MB, jobs)
    prepare([reference.root])
    print(f"grading {len(variants)} buggy variants ({args.homework}{', training included' if args.slow else ''}), "
          f"{jobs} at a time", flush=True)

    start, rows = time.monotonic(), {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(measure, v, fed_problems(v, problems, graph), reference, memory_mb): v
                   for v in variants}
        for done, future in enumerate(as_completed(futures), 1):
            r = future.result()
            rows[r.name] = r
            print(f"[{done:>3}/{len(variants)}] {r.name:<48} lost: full {r.full:>4g}, release {r.release:>4g}  "
                  f"{r.seconds:5.1f} s  {r.verdict}", flush=True)
    ordered = [rows[v.name] for v in variants]
    print()
    print(table(ordered))
    print()
    print(summary(ordered, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
