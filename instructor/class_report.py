"""The class report: ``make report`` (after ``make autograde``), or from a Gradescope export.

Input: one results.json per (student, assignment), in Gradescope's format, whose tests carry
``extra_data.diagnosis`` (the grader's stable id of the mistake). Two sources:

    a course folder after ``make autograde``: course/class/<student>/<assignment>/results.json
    Gradescope's "Export Submissions" zip (or its unzipped folder) of one assignment:
        assignment_<id>_export/submission_metadata.yml
        assignment_<id>_export/submission_<id>/…/results.json
      the student is the submitter's SID (else e-mail, else name) from submission_metadata.yml,
      else the folder name; the assignment comes from each test's tag (the grader tags each test with its homework).

Output (``out/``): report.md with the score histogram per homework (PNG), the pass rate per
problem (PNG), per problem the most common diagnoses with their counts and, under the table, what each
of those diagnoses means (``autograder.diagnoses``' catalogue), the students whose
grading hit a time or memory limit, and the submissions flagged for touching the grader's internals
(``extra_data.tampering``: what their code changed or probed in the sandbox).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from autograder.diagnoses import catalogue, meaning
from autograder.results import GradeRun
from autograder.sandbox.tamper import KINDS

LIMITS = ("time-limit", "hung-on-probe", "memory-limit", "out-of-time", "student-time-limit")


@dataclass
class ClassResults:
    # (student, assignment) → that grade's results.json, read through the results model
    results: dict[tuple[str, str], GradeRun] = field(default_factory=dict)

    def tests(self):
        """(student, assignment, result) for every problem of every results.json."""
        for (student, assignment), run in sorted(self.results.items()):
            for result in run.results:
                yield student, assignment, result


# --------------------------------------------------------------------------- sources
def _assignment_of(run: GradeRun, default: str = "") -> str:
    return next((r.problem.assignment for r in run.results if r.problem.assignment), default)


def from_course(course: Path) -> ClassResults:
    found = ClassResults()
    for path in sorted(Path(course).glob("class/*/*/results.json")):
        found.results[(path.parent.parent.name, path.parent.name)] = GradeRun.read(path)
    return found


def _student_names(metadata_text: str) -> dict[str, str]:
    """submission folder → student id, from Gradescope's submission_metadata.yml."""
    import yaml

    names = {}
    for folder, record in (yaml.safe_load(metadata_text) or {}).items():
        submitters = (record or {}).get(":submitters") or (record or {}).get("submitters") or []
        if submitters:
            s = submitters[0]
            get = lambda key: s.get(f":{key}") or s.get(key)  # noqa: E731 - Ruby symbols or plain keys
            names[str(folder)] = str(get("sid") or get("email") or get("name") or folder)
    return names


def from_gradescope_export(source: Path) -> ClassResults:
    """Every submission's results.json in a Gradescope "Export Submissions" zip (or its unzipped folder)."""
    source = Path(source)
    files: dict[str, bytes] = {}
    if source.is_dir():
        for path in source.rglob("*"):
            if path.is_file() and path.name in ("results.json", "submission_metadata.yml"):
                files[path.relative_to(source).as_posix()] = path.read_bytes()
    else:
        with zipfile.ZipFile(source) as archive:
            for name in archive.namelist():
                if Path(name).name in ("results.json", "submission_metadata.yml"):
                    files[name] = archive.read(name)
    names = {}
    for name, data in files.items():
        if name.endswith("submission_metadata.yml"):
            names.update(_student_names(data.decode()))
    found = ClassResults()
    for name, data in sorted(files.items()):
        if not name.endswith("results.json"):
            continue
        parts = Path(name).parts
        folder = next((p for p in parts if p.startswith("submission_")), parts[-2] if len(parts) > 1 else name)
        results = GradeRun.from_json(json.load(io.BytesIO(data)))
        student = names.get(folder, folder)
        found.results[(student, _assignment_of(results, "?"))] = results
    return found


def load(source: Path) -> ClassResults:
    source = Path(source)
    if source.is_dir() and (source / "class").is_dir():
        return from_course(source)
    return from_gradescope_export(source)


# --------------------------------------------------------------------------- what the report counts
@dataclass
class Summary:
    scores: dict[str, dict[str, float]]  # assignment → student → score
    max_scores: dict[str, float]  # assignment → max
    passed: dict[str, int]  # problem → students who passed
    graded: dict[str, int]  # problem → students graded
    diagnoses: dict[str, Counter]  # problem → diagnosis → count (failures only)
    failed: dict[str, set]  # problem → students who failed
    limits: dict[str, list[tuple[str, str]]]  # student → [(problem, diagnosis)] that hit a time/memory limit
    # student → [(problem, kinds touched, grader names changed)] flagged for touching the grader's internals
    tampering: dict[str, list[tuple[str, list[str], list[str]]]] = field(default_factory=dict)


def summarise(found: ClassResults) -> Summary:
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    max_scores: dict[str, float] = {}
    passed, graded = Counter(), Counter()
    diagnoses: dict[str, Counter] = defaultdict(Counter)
    failed: dict[str, set] = defaultdict(set)
    limits: dict[str, list] = defaultdict(list)
    tampering: dict[str, list] = defaultdict(list)
    for (student, assignment), run in found.results.items():
        scores[assignment][student] = run.score
        max_scores[assignment] = max(max_scores.get(assignment, 0.0), sum(r.problem.points for r in run.results))
    for student, assignment, r in found.tests():
        problem = r.problem.id
        graded[problem] += 1
        if r.tampering:
            tampering[student].append((problem, list(r.tampering.kinds), list(r.tampering.changed)))
        if r.passed:
            passed[problem] += 1
            continue
        diagnosis = r.diagnosis or "unknown"
        diagnoses[problem][diagnosis] += 1
        failed[problem].add(student)
        if diagnosis in LIMITS:
            limits[student].append((problem, diagnosis))
    return Summary(dict(scores), max_scores, dict(passed), dict(graded), dict(diagnoses), dict(failed),
                   dict(limits), dict(tampering))


def check_against_manifest(summary: Summary, manifest: dict) -> list[str]:
    """Disagreements between the report and a generated class's injected bugs (empty: they agree).

    Per graded problem: every student with a bug that must fail it failed it; every student who failed
    it has a bug that can reach it; a broken student got the diagnosis of its kind."""
    issues = []
    for problem in sorted(summary.graded):
        must = {s for s, r in manifest["students"].items() if problem in r["must_fail"]}
        may = {s for s, r in manifest["students"].items() if problem in r["may_fail"]} | must
        got = summary.failed.get(problem, set())
        if must - got:
            issues.append(f"{problem}: injected bugs not caught for {sorted(must - got)}")
        if got - may:
            issues.append(f"{problem}: failed without an injected bug for {sorted(got - may)}")
    return issues


def manifest_counts(summary: Summary, manifest: dict) -> list[tuple[str, int, int, int]]:
    """(problem, must fail, failed, may fail) per graded problem."""
    rows = []
    for problem in sorted(summary.graded):
        must = sum(problem in r["must_fail"] for r in manifest["students"].values())
        may = sum(problem in r["may_fail"] or problem in r["must_fail"] for r in manifest["students"].values())
        rows.append((problem, must, len(summary.failed.get(problem, ())), may))
    return rows


# --------------------------------------------------------------------------- the report
def _plots(summary: Summary, out: Path) -> list[str]:
    from rlkit.plotting import pyplot

    plt = pyplot()

    written = []
    for assignment, scores in sorted(summary.scores.items()):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        top = summary.max_scores.get(assignment) or max(scores.values(), default=1.0) or 1.0
        ax.hist(list(scores.values()), bins=min(20, max(5, int(top))), range=(0, top), color="#4c72b0")
        ax.set_xlabel(f"score (of {top:g})")
        ax.set_ylabel("students")
        ax.set_title(f"{assignment}: {len(scores)} students")
        fig.tight_layout()
        name = f"scores_{assignment}.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        written.append(name)
    problems = sorted(summary.graded)
    if problems:
        fig, ax = plt.subplots(figsize=(7, 0.28 * len(problems) + 1.2))
        rates = [summary.passed.get(p, 0) / summary.graded[p] for p in problems]
        ax.barh(problems, rates, color="#55a868")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_xlabel("pass rate")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        fig.savefig(out / "pass_rate.png", dpi=100)
        plt.close(fig)
        written.append("pass_rate.png")
    return written


def markdown(summary: Summary, images: list[str], source: str, manifest: dict | None = None,
             top: int = 5, meanings: dict[str, str] | None = None) -> str:
    """The report's text. ``meanings``: diagnosis id → its one line (default: the grader's catalogue)."""
    lines = [f"# Class report\n", f"Source: `{source}`.\n"]
    for assignment, scores in sorted(summary.scores.items()):
        values = sorted(scores.values())
        mean = sum(values) / len(values) if values else 0.0
        median = values[len(values) // 2] if values else 0.0
        lines.append(f"## {assignment}: {len(values)} students, mean {mean:.1f}, median {median:g} "
                     f"of {summary.max_scores.get(assignment, 0):g}\n")
        if f"scores_{assignment}.png" in images:
            lines.append(f"![{assignment} scores](scores_{assignment}.png)\n")
    lines.append("## Problems: pass rate and the most common mistakes\n")
    if "pass_rate.png" in images:
        lines.append("![pass rate per problem](pass_rate.png)\n")
    lines.append("| problem | passed | failed | most common diagnoses (students) |")
    lines.append("|---|---|---|---|")
    for problem in sorted(summary.graded):
        graded, ok = summary.graded[problem], summary.passed.get(problem, 0)
        common = ", ".join(f"`{d}` {n}" for d, n in summary.diagnoses.get(problem, Counter()).most_common(top))
        lines.append(f"| {problem} | {ok}/{graded} ({ok / graded:.0%}) | {graded - ok} | {common} |")
    shown = sorted({d for c in summary.diagnoses.values() for d, _ in c.most_common(top)})
    if shown:
        known = catalogue() if meanings is None else meanings
        lines.append("\nWhat these diagnoses mean:\n")
        lines += [f"- `{d}`: {meaning(d, known) or 'not in the grader’s catalogue'}" for d in shown]
    lines.append("\n## Students whose grading hit a time or memory limit\n")
    if summary.limits:
        lines.append("| student | problems (diagnosis) |")
        lines.append("|---|---|")
        for student, hits in sorted(summary.limits.items()):
            lines.append(f"| {student} | " + ", ".join(f"{p} ({d})" for p, d in hits) + " |")
    else:
        lines.append("None.")
    lines.append("\n## Submissions flagged for touching the grader's internals\n")
    if summary.tampering:
        lines.append("What their code did in the sandbox, recorded as it happened. A change to the grader's code "
                     "scored the problem 0; a probe alone left the score as it was.\n")
        lines.append("| student | problem | touched | changed (scored 0) |")
        lines.append("|---|---|---|---|")
        for student, hits in sorted(summary.tampering.items()):
            for problem, kinds, changed in hits:
                cells = [student, problem, ", ".join(kinds), ", ".join(changed) or "—"]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        seen = sorted({k for hits in summary.tampering.values() for _, kinds, _ in hits for k in kinds})
        lines.append("")
        lines += [f"- `{k}`: {KINDS[k]}" for k in seen if k in KINDS]
    else:
        lines.append("None.")
    if manifest is not None:
        lines.append("\n## Against the generated class's manifest\n")
        lines.append("| problem | must fail (injected) | failed | may fail (reached by a bug) |")
        lines.append("|---|---|---|---|")
        for problem, must, got, may in manifest_counts(summary, manifest):
            lines.append(f"| {problem} | {must} | {got} | {may} |")
        issues = check_against_manifest(summary, manifest)
        lines.append("\n" + ("Every count is within what the injected bugs explain." if not issues
                             else "Disagreements:\n\n" + "\n".join(f"- {i}" for i in issues)))
    return "\n".join(lines) + "\n"


def write_report(source: Path, out: Path, manifest: Path | dict | None = None) -> Path:
    """Read the results, write ``out/report.md`` and its PNGs; return the report's path."""
    found = load(Path(source))
    if not found.results:
        raise FileNotFoundError(f"no results.json in {source} (run `make autograde` first, or pass a Gradescope "
                                "'Export Submissions' zip)")
    summary = summarise(found)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = _plots(summary, out)
    if isinstance(manifest, (str, Path)):
        manifest = json.loads(Path(manifest).read_text())
    path = out / "report.md"
    path.write_text(markdown(summary, images, str(source), manifest))
    (out / "summary.json").write_text(json.dumps({
        "scores": summary.scores, "max_scores": summary.max_scores, "passed": summary.passed,
        "graded": summary.graded, "diagnoses": {p: dict(c) for p, c in summary.diagnoses.items()},
        "limits": summary.limits, "tampering": summary.tampering}, indent=1, sort_keys=True))
    return path


# --------------------------------------------------------------------------- a Gradescope export, made up
def gradescope_export_zip(course: Path, path: Path, assignment: str) -> Path:
    """The layout of Gradescope's "Export Submissions" zip, from a graded course: one folder per
    submission with its results.json, and submission_metadata.yml naming the submitter. For tests, and to
    try the report on the same data both ways."""
    import yaml

    metadata = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        root = "assignment_1_export"
        for i, results in enumerate(sorted(Path(course).glob(f"class/*/{assignment}/results.json"))):
            student = results.parent.parent.name
            folder = f"submission_{100000 + i}"
            archive.writestr(f"{root}/{folder}/results.json", results.read_text())
            for module in sorted((results.parent / "submission" / assignment).glob("*.py")):
                archive.writestr(f"{root}/{folder}/{module.name}", module.read_text())
            metadata[folder] = {":submitters": [{":name": f"Student {student}", ":sid": student,
                                                 ":email": f"{student}@example.edu"}],
                                ":created_at": "2026-01-01 12:00:00 -0800",
                                ":score": GradeRun.read(results).score}
        archive.writestr(f"{root}/submission_metadata.yml", yaml.safe_dump(metadata))
    return Path(path)


__all__ = ["write_report", "load", "summarise", "check_against_manifest", "gradescope_export_zip"]
