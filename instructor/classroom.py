"""A made-up class to measure and check class grading on: ``python -m instructor make-class``.

Each student is a copy of the reference modules (``solutions/``) with 0-4 bugs drawn, with a fixed
seed, from the library of buggy variants in ``tests/variants`` (a variant's source is appended to its
module: the later ``def`` replaces the reference's, as a student's would). A few students are broken
in the ways that stress a grader instead: one hangs, one crashes the process, one prints a lot (and is
otherwise correct), one hands in a syntax error.

``manifest.json`` records what was injected, and what the grade must then show per student:

    must_fail   problem → the bugs that must make it fail (each variant lists the problems it fails; a
                broken student fails every problem that calls the broken function, or whose module
                cannot be imported)
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


def make_class(out: Path, students: int = 60, seed: int = 0, only: list[str] | None = None,
               broken: int | None = None, modules: list[str] | None = None,
               max_bugs: int = 4) -> dict:
    """Write ``out/<student>/<assignment>/`` for every student and ``out/manifest.json``; return the manifest."""
    from autograder.paths import SOLUTIONS
    from autograder.runner import select
    from instructor.course import graded_files
    import sys

    from autograder.paths import ROOT

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.variants import collect  # the kit's own library; instructor-only, never shipped to students

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    graded = {a: files for a, files in graded_files().items() if not only or a in only}
    reference = {f"{a}/{rel}": (SOLUTIONS / a / rel).read_text() for a, files in graded.items() for rel in files}
    wanted = set(modules) if modules else set(reference)
    pool = [v for v in collect("BUGGY") if v.module in reference and v.module in wanted]
    if not pool:
        raise ValueError(f"no buggy variant for the modules {sorted(wanted)}")
    problems = [p for p in select() if p.assignment in graded]
    graph = call_graph(reference)
    module_imports = {m: imports_of(text) & set(reference) for m, text in reference.items()}
    rng = random.Random(seed)
    n_broken = max(1, students // 12) if broken is None else broken
    names = [f"student{i:03d}" for i in range(students)]
    broken_of = {}
    for i, name in enumerate(rng.sample(names, min(n_broken, students))):
        broken_of[name] = BROKEN_KINDS[i % len(BROKEN_KINDS)]
    # the module a broken student breaks: the foundation (the one the others import), within `modules`
    foundation = sorted(wanted & set(reference), key=lambda m: (-sum(m in module_imports[o] for o in reference), m))[0]
    manifest = {"seed": seed, "students": {}, "problems": [p.id for p in problems]}
    for name in names:
        texts = dict(reference)
        record = {"bugs": [], "broken": None, "must_fail": {}, "may_fail": [], "diagnoses": {}}
        injected: set[tuple[str, str]] = set()
        graph_here = {k: set(v) for k, v in graph.items()}
        if name in broken_of:
            kind = broken_of[name]
            function = defined_functions(reference[foundation])[0]
            record["broken"] = {"kind": kind, "module": foundation, "function": function}
            texts[foundation] += {"hangs": HANG, "crashes": CRASH, "prints": PRINTS, "syntax": SYNTAX}[kind].format(
                name=function)
            if kind in ("hangs", "crashes"):
                injected.add((foundation, function))
            elif kind == "syntax":  # every function of the module, and of every module importing it, is broken
                for m in reference:
                    if m == foundation or foundation in module_imports[m]:
                        injected |= {(m, f) for f in defined_functions(reference[m])}
        else:
            taken: set[tuple[str, str]] = set()
            for variant in rng.sample(pool, rng.randint(0, max_bugs)):
                functions = {(variant.module, f) for f in defined_functions(variant.source)}
                if functions & taken:
                    continue  # two bugs in one function: the later would hide the earlier
                taken |= functions
                injected |= functions
                texts[variant.module] += "\n\n# --- made-up student: a bug from tests/variants\n" + \
                    textwrap.dedent(variant.source)
                for f, called in called_names(variant.source).items():
                    graph_here[(variant.module, f)] = {(m, c) for c in called for m in reference
                                                       if c in defined_functions(reference[m])}
                record["bugs"].append({"variant": variant.name, "module": variant.module,
                                       "functions": sorted(f for _, f in functions),
                                       "problems": list(variant.problems)})
                for problem_name in variant.problems:
                    record["must_fail"].setdefault(f"{variant.module.split('/')[0]}/{problem_name}", []).append(
                        variant.name)
        for p in problems:
            stubs = {(module_path(m), f) for m, f in p.stubs}
            if reach(graph_here, stubs) & injected:
                record["may_fail"].append(p.id)
                kind = (record["broken"] or {}).get("kind")
                if kind in BROKEN_DIAGNOSES and stubs & injected:  # called directly: it must fail, and how
                    record["must_fail"].setdefault(p.id, []).append(kind)
                    record["diagnoses"][p.id] = sorted(BROKEN_DIAGNOSES[kind])
        manifest["students"][name] = record
        for rel, text in texts.items():
            path = out / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


__all__ = ["make_class", "BROKEN_KINDS"]
