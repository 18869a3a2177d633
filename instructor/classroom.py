"""Made-up students, from ONE generator: ``write_students``.

Every made-up student is a recipe (``MadeUpStudent``): the reference modules (``solutions/``), some left as
the starter's stubs (not implemented), with bugs from the library of buggy variants (``instructor/variants``:
a variant's source is appended to its module, so the later ``def`` replaces the reference's, as a student's
would), or broken in a way that stresses a grader rather than a check (a function that hangs, one that crashes
the process, a module that prints a lot and is otherwise correct, a syntax error). Two selections use it:

    make_class     ``python -m instructor make-class``: a class of N students, each with 0-4 bugs drawn (fixed
                   seed) from the library, and 1 in 12 broken
    make_samples   ``python -m instructor autograde --samples``: three named students per assignment:
                   correct (the reference), partly_wrong (the module the others import, with a classic bug from
                   the library: hw2 reward-to-go discounted from the start, hw1 DAgger that keeps the learner's
                   actions; the other modules not implemented) and hangs (the starter, where that module's first
                   graded function never returns)

``manifest.json`` records what was injected, and what the grade must then show per student:

    must_fail   problem → the bugs that must make it fail (each variant lists the problems it fails; a
                broken student fails every problem that calls the broken function, or whose module
                cannot be imported; a problem that calls a stub fails "not-implemented")
    may_fail    the problems that can fail at all: those whose graded functions reach an injected
                function, through the reference's own calls (policy_gradient calls discounted_return…)
    diagnoses   problem → the diagnosis a broken student must get there (syntax-error, time-limit…)

so a class report can be checked against it (``class_report.check_against_manifest``).
"""

from __future__ import annotations

import ast
import json
import random
import shutil
import textwrap
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

BROKEN_KINDS = ("hangs", "crashes", "prints", "syntax")
# What the grader must call each broken kind, on every problem that reaches the broken function or module.
BROKEN_DIAGNOSES = {"hangs": {"time-limit", "hung-on-probe"}, "crashes": {"exited", "crashed"},
                    "syntax": {"syntax-error", "import-error"}}

HANG = "\n\n# --- made-up student: this function never returns\ndef {name}(*args, **kwargs):\n    while True:\n        pass\n"
CRASH = ("\n\n# --- made-up student: this function kills its own process\ndef {name}(*args, **kwargs):\n"
         "    import os\n    os._exit(7)\n")
PRINTS = ("\n\n# --- made-up student: debugging output left in (the module prints on import)\n"
          "for _line in range(20000):\n    print('debug ' + str(_line) + ': ' + 'x' * 60)\n")
SYNTAX = "\n\n# --- made-up student: an unfinished edit\ndef {name}(rewards, gamma:\n    return rewards\n"


NOT_IMPLEMENTED = "not-implemented"  # the kind of a stub: the starter's function, which raises NotImplementedError
# The variant each assignment's partly wrong sample gets in its foundation module (another assignment: the first
# buggy variant of that module in the library).
SAMPLE_BUGS = {"hw2": "rtg_discount_from_start", "hw1": "learner_actions_kept"}


def defined_functions(source: str) -> list[str]:
    return [n.name for n in ast.parse(textwrap.dedent(source)).body if isinstance(n, ast.FunctionDef)]


def called_names(source: str) -> dict[str, set[str]]:
    """function → the names it calls (top-level functions of the source)."""
    calls = {}
    for node in ast.parse(textwrap.dedent(source)).body:
        if isinstance(node, ast.FunctionDef):
            calls[node.name] = {c.func.id for c in ast.walk(node)
                                if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
    return calls


def call_graph(modules: dict[str, str]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(module, function) → the graded (module, function) pairs it calls, by name, across the graded modules."""
    where = {}
    for module, text in modules.items():
        for name in defined_functions(text):
            where.setdefault(name, set()).add(module)
    graph = {}
    for module, text in modules.items():
        for name, called in called_names(text).items():
            graph[(module, name)] = {(m, c) for c in called if c in where for m in where[c]}
    return graph


def graded_functions(text: str) -> list[str]:
    """The functions of a reference module that hold a solution region (those the starter leaves to the student)."""
    lines = text.splitlines()
    return [n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)
            and any("BEGIN SOLUTION" in line for line in lines[n.lineno - 1:n.end_lineno])]


def reach(graph: dict, start: set[tuple[str, str]]) -> set[tuple[str, str]]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def module_path(dotted: str) -> str:
    """"hw2.returns" → "hw2/returns.py"."""
    return dotted.replace(".", "/") + ".py"


def imports_of(text: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(module_path(node.module))
        elif isinstance(node, ast.Import):
            found |= {module_path(a.name) for a in node.names}
    return found


def appended(text: str, source: str, why: str) -> str:
    """``text`` with ``source`` after it, under a ``# --- why`` line: a later ``def`` replaces the earlier one."""
    return text + f"\n\n# --- {why}\n" + textwrap.dedent(source)


@dataclass
class MadeUpStudent:
    """One made-up student's recipe (modules as "hw2/returns.py")."""

    name: str
    bugs: tuple = ()  # Variants of the library, each appended to its module
    broken: str | None = None  # one of BROKEN_KINDS ...
    broken_in: tuple[str, ...] = ()  # ... in these modules (their first graded function, or the module itself)
    stubs: frozenset[str] = frozenset()  # modules left as the starter has them: not implemented


class Homework:
    """What the generator reads from the kit once: the reference's graded modules and their starter stubs, the
    problems, and who calls and imports whom."""

    def __init__(self, only: list[str] | None = None):
        from autograder.paths import SOLUTIONS
        from autograder.runner import select
        from instructor.course import graded_files

        graded = {a: files for a, files in graded_files().items() if not only or a in only}
        self.assignments = sorted(graded)
        self.reference = {f"{a}/{rel}": (SOLUTIONS / a / rel).read_text() for a, files in graded.items()
                          for rel in files}
        self.problems = [p for p in select() if p.assignment in graded]
        self.graph = call_graph(self.reference)
        self.imports = {m: imports_of(text) & set(self.reference) for m, text in self.reference.items()}

    @cached_property
    def stubs(self) -> dict[str, str]:
        from autograder.paths import SOLUTIONS
        from autograder.starter import render

        starter = render(SOLUTIONS)
        return {m: starter[Path(m)] for m in self.reference}

    def modules_of(self, assignment: str) -> set[str]:
        return {m for m in self.reference if m.split("/")[0] == assignment}

    def foundation(self, modules: set[str]) -> str:
        """Of ``modules``, the one the other graded modules import most (hw2/returns.py before policy_gradient.py)."""
        return sorted(modules & set(self.reference),
                      key=lambda m: (-sum(m in self.imports[o] for o in self.reference), m))[0]


def write_students(out: Path, students: list[MadeUpStudent], homework: Homework | None = None,
                   seed: int | None = None) -> dict:
    """THE generator of made-up students: ``out/<student>/<assignment>/<module>`` for every recipe, and
    ``out/manifest.json`` (see the module's doc); returns the manifest."""
    homework = homework or Homework()
    reference, graph = homework.reference, homework.graph
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    manifest = {"seed": seed, "students": {}, "problems": [p.id for p in homework.problems]}
    for student in students:
        texts = {m: homework.stubs[m] if m in student.stubs else text for m, text in reference.items()}
        record = {"bugs": [], "broken": None, "stubs": sorted(student.stubs), "must_fail": {}, "may_fail": [],
                  "diagnoses": {}}
        broken: set[tuple[str, str]] = set()
        graph_here = {k: set(v) for k, v in graph.items()}
        if student.broken:
            kind = student.broken
            functions = {m: graded_functions(reference[m])[0] for m in student.broken_in}
            record["broken"] = {"kind": kind, "functions": functions}
            for module, function in functions.items():
                texts[module] += {"hangs": HANG, "crashes": CRASH, "prints": PRINTS, "syntax": SYNTAX}[kind].format(
                    name=function)
                if kind in ("hangs", "crashes"):
                    broken.add((module, function))
                elif kind == "syntax":  # every function of the module, and of every module importing it, is broken
                    for m in reference:
                        if m == module or module in homework.imports[m]:
                            broken |= {(m, f) for f in defined_functions(reference[m])}
        stubbed = {(m, f) for m in student.stubs for f in graded_functions(reference[m])} - broken
        bugged: set[tuple[str, str]] = set()
        for variant in student.bugs:
            functions = {(variant.module, f) for f in defined_functions(variant.source)}
            bugged |= functions
            texts[variant.module] = appended(texts[variant.module], variant.source,
                                             f"made-up student: a bug from instructor/variants ({variant.name})")
            for f, called in called_names(variant.source).items():
                graph_here[(variant.module, f)] = {(m, c) for c in called for m in reference
                                                   if c in defined_functions(reference[m])}
            record["bugs"].append({"variant": variant.name, "module": variant.module,
                                   "functions": sorted(f for _, f in functions), "problems": list(variant.problems)})
            for problem_name in variant.problems:
                record["must_fail"].setdefault(f"{variant.module.split('/')[0]}/{problem_name}", []).append(
                    variant.name)
        injected = broken | stubbed | bugged
        for p in homework.problems:
            stubs = {(module_path(m), f) for m, f in p.stubs}
            if not reach(graph_here, stubs) & injected:
                continue
            record["may_fail"].append(p.id)
            direct = stubs & injected
            if student.broken in BROKEN_DIAGNOSES and direct & broken:  # called directly: it must fail, and how
                record["must_fail"].setdefault(p.id, []).append(student.broken)
                if direct <= broken:
                    record["diagnoses"][p.id] = sorted(BROKEN_DIAGNOSES[student.broken])
            if direct & stubbed:
                record["must_fail"].setdefault(p.id, []).append(NOT_IMPLEMENTED)
        manifest["students"][student.name] = record
        for rel, text in texts.items():
            path = out / student.name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def make_class(out: Path, students: int = 60, seed: int = 0, only: list[str] | None = None,
               broken: int | None = None, modules: list[str] | None = None,
               max_bugs: int = 4) -> dict:
    """A class of ``students``, drawn with ``seed``: ``out/<student>/<assignment>/`` for every student and
    ``out/manifest.json``; return the manifest."""
    from instructor.variants import collect

    homework = Homework(only)
    wanted = set(modules) if modules else set(homework.reference)
    pool = [v for v in collect("BUGGY") if v.module in homework.reference and v.module in wanted]
    if not pool:
        raise ValueError(f"no buggy variant for the modules {sorted(wanted)}")
    rng = random.Random(seed)
    n_broken = max(1, students // 12) if broken is None else broken
    names = [f"student{i:03d}" for i in range(students)]
    broken_of = {}
    for i, name in enumerate(rng.sample(names, min(n_broken, students))):
        broken_of[name] = BROKEN_KINDS[i % len(BROKEN_KINDS)]
    # the module a broken student breaks: the foundation (the one the others import), within `modules`
    foundation = homework.foundation(wanted)
    recipes = []
    for name in names:
        if name in broken_of:
            recipes.append(MadeUpStudent(name, broken=broken_of[name], broken_in=(foundation,)))
            continue
        bugs, taken = [], set()
        for variant in rng.sample(pool, rng.randint(0, max_bugs)):
            functions = {(variant.module, f) for f in defined_functions(variant.source)}
            if functions & taken:
                continue  # two bugs in one function: the later would hide the earlier
            taken |= functions
            bugs.append(variant)
        recipes.append(MadeUpStudent(name, bugs=tuple(bugs)))
    return write_students(out, recipes, homework, seed=seed)


def make_samples(dst: Path | None = None) -> Path:
    """``dst`` (default build/samples): the three named students of the module's doc, for every assignment, in
    nbgrader's submitted/ layout (and their manifest.json)."""
    from instructor.course import BUILD
    from instructor.variants import collect

    dst = Path(dst) if dst is not None else BUILD / "samples"
    homework = Homework()
    foundations = [homework.foundation(homework.modules_of(a)) for a in homework.assignments]
    buggy = collect("BUGGY")
    bugs = []
    for assignment, module in zip(homework.assignments, foundations):
        named = SAMPLE_BUGS.get(assignment)
        found = [v for v in buggy if v.module == module and (named is None or v.name == named)]
        if named and not found:
            raise ValueError(f"no buggy variant {named} of {module} in instructor/variants for the samples")
        bugs += found[:1]
    everything = frozenset(homework.reference)
    write_students(dst, [MadeUpStudent("correct"),
                         MadeUpStudent("partly_wrong", bugs=tuple(bugs), stubs=everything - set(foundations)),
                         MadeUpStudent("hangs", broken="hangs", broken_in=tuple(foundations), stubs=everything)],
                   homework)
    return dst


__all__ = ["make_class", "make_samples", "write_students", "MadeUpStudent", "BROKEN_KINDS"]
