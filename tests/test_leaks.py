"""No solution code in anything a student receives: the scanner, and the real artifacts."""

import json
from pathlib import Path

import pytest

from instructor.leaks import (Region, _expression, grader_messages, normalise, readable_text, scan, scan_messages,
                              solution_regions)
from autograder.paths import STARTER
from tests.instructor_builds import autograded_class, built_release  # noqa: F401 - fixtures

REGIONS = solution_regions()


def _longest_region():
    return max(REGIONS, key=lambda r: len(r.lines))


def _region_source(region) -> list[str]:
    """The region's lines as they stand in solutions/ (not normalised)."""
    from autograder.paths import SOLUTIONS

    rel, start = region.where.rsplit(":", 1)
    lines = (SOLUTIONS / rel).read_text().splitlines()[int(start):]
    return lines[:lines.index(next(line for line in lines if "END SOLUTION" in line))]


def test_every_graded_module_has_regions_to_look_for():
    assert REGIONS and all(region.lines for region in REGIONS)


def test_a_copied_region_is_found_whatever_its_indentation_and_comments(tmp_path):
    region = _longest_region()
    body = [line.strip() + "  # my comment" for line in _region_source(region)]
    (tmp_path / "copied.py").write_text("def f():\n" + "\n".join("        " + line for line in body))
    found = scan(tmp_path, REGIONS)
    assert [leak.region for leak in found] == [region], found
    assert "copied.py" in str(found[0]) and region.where in str(found[0])


def test_half_a_region_is_a_leak_two_lines_of_boilerplate_are_not(tmp_path):
    region = _longest_region()
    assert len(region.lines) >= 4
    half = (len(region.lines) + 1) // 2
    (tmp_path / "half.py").write_text("\n".join(region.lines[:half]))
    (tmp_path / "fewer.py").write_text("\n".join(region.lines[:half - 1]))
    half_rule_only = Region(region.where, region.lines)  # no long line, no pair: the half rule alone
    found = {Path(leak.artifact).name for leak in scan(tmp_path, [half_rule_only])}
    assert found == {"half.py"}


def test_trivial_lines_are_ignored(tmp_path):
    (tmp_path / "given.py").write_text("else:\n    loss.backward()\nif terminated or truncated:\n    break\n")
    assert scan(tmp_path, REGIONS) == []
    assert all(len(line) >= 24 for region in REGIONS for line in region.lines)
    assert normalise("    x = f(a,  b)  # note") == "x=f(a,b)"


def test_notebooks_html_and_zips_are_read_as_a_student_reads_them(tmp_path):
    import zipfile

    region = _longest_region()
    source = "\n".join(_region_source(region))
    notebook = {"cells": [{"cell_type": "code", "source": source.splitlines(True), "metadata": {}}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    highlighted = "".join(f'<span class="n">{word}</span> ' for word in source.replace("<", "&lt;").split(" "))
    (tmp_path / "feedback.html").write_text(f"<pre>{highlighted}</pre>")
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as archive:
        archive.writestr("hw/x.py", source)
    found = {Path(leak.artifact).name for leak in scan(tmp_path, REGIONS)}
    assert found == {"nb.ipynb", "feedback.html", "bundle.zip"}
    assert readable_text("weights.pt", b"\x80\x02binary") is None


def test_the_generated_starter_holds_no_solution_code():
    assert scan(STARTER) == []


@pytest.mark.slow
def test_the_student_release_holds_no_solution_code(built_release):
    leaks = scan(built_release["release"])
    assert leaks == [], "solution code in the student release:\n" + "\n".join(map(str, leaks))
    assert built_release["leaks"] == []


@pytest.mark.slow
def test_the_feedback_students_get_holds_no_solution_code_nor_hidden_tests(autograded_class):
    course = Path(autograded_class["course"])
    feedback, submitted = course / "feedback", course / "submitted"
    pages = sorted(feedback.rglob("*.html"))
    assert pages, "nbgrader generate_feedback wrote nothing"

    def own_submission(path: Path) -> bool:  # nbgrader hands each student's own modules back: not a leak
        theirs = submitted / path.relative_to(feedback)
        return theirs.is_file() and theirs.read_bytes() == path.read_bytes()

    returned = [p for p in feedback.rglob("*") if p.is_file() and not own_submission(p)]
    # What is scanned: every page, and any module that is not the student's own (autograde builds the feedback
    # from the grader's results, so nbgrader hands back only the student's modules besides the pages).
    assert {p for p in returned if p.suffix == ".html"} == set(pages)
    assert any(p.suffix == ".py" for p in feedback.rglob("*")), "the students' own modules are handed back"
    leaks = scan(returned)
    assert leaks == [], "\n".join(map(str, leaks))
    for page in pages:
        text = readable_text(page.name, page.read_bytes())
        assert "BEGIN HIDDEN TESTS" not in text and 'check("hw2/returns_match_reference")' not in text, \
            f"{page} shows a hidden check's source"


# --------------------------------------------------------------------------- single long lines, adjacent pairs, hints
def _region_with(long_line: bool):
    return next(r for r in REGIONS if (r.long if long_line else r.pairs))


def test_one_long_solution_line_alone_is_a_leak(tmp_path):
    region = _region_with(long_line=True)
    (tmp_path / "one.py").write_text("x = 1\n" + region.long[0] + "\n")
    assert [leak.region for leak in scan(tmp_path, [region])] == [region]


def test_two_consecutive_solution_lines_are_a_leak_and_apart_they_are_not(tmp_path):
    region = next(r for r in REGIONS if r.pairs)
    a, b = region.pairs[0]
    pair_rule_only = Region(region.where, (), (), ((a, b),))
    (tmp_path / "adjacent.py").write_text(f"{a}\n\n{b}\n")
    (tmp_path / "apart.py").write_text(f"{a}\nsomething_else = 1\n{b}\n")
    found = {Path(leak.artifact).name for leak in scan(tmp_path, [pair_rule_only])}
    assert found == {"adjacent.py"}


def test_a_hint_that_quotes_a_solution_expression_is_a_leak():
    region = _region_with(long_line=True)
    line = region.long[0]
    expression = _expression(line)
    hint = {"hints.py:1": f"the answer is {expression} of course"}
    assert scan_messages(hint, [region])


def test_no_hint_or_message_of_the_grader_contains_solution_code():
    from autograder.paths import ROOT

    leaks = scan_messages(grader_messages(ROOT / "autograder"))
    assert leaks == [], "\n".join(map(str, leaks))


def test_the_grader_and_the_given_code_hold_no_solution_line():
    from autograder.paths import ROOT

    leaks = scan([ROOT / "autograder", ROOT / "rlkit"])
    assert leaks == [], "\n".join(map(str, leaks))
