"""A verdict is data from the moment it exists: the results model, its one writer, and its renderings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st

from autograder import render
from autograder.paths import ROOT
from autograder.properties import forget_example, given, last_example
from autograder.results import Failure, GradeRun, ProblemInfo, ProblemResult
from autograder.sandbox.tamper import Record, summarise
from tests.conftest import grade_problem, make_submission

INFO = ProblemInfo("hw2/reward_to_go", "hw2", "reward_to_go", "Q̂_t = r_t + γ Q̂_{t+1}", 3.0)


def failed(**failure) -> ProblemResult:
    fields = {"message": "discounted_reward_to_go is wrong at step 0: expected 2, got 1", "example":
              "rewards=[2.0, 1.0], gamma=0.5", "expected": "[2, 1]", "got": "[1, 1]", "hint": "sum from t on",
              **failure}
    return ProblemResult(INFO, 0.0, "failed", "discounted_reward_to_go is wrong", Failure(**fields),
                         diagnosis="reward-to-go-from-start", student_output="step 0\n")


# --------------------------------------------------------------------------- the model
def test_the_results_model_imports_neither_torch_nor_hypothesis():
    code = ("import sys, autograder.results, autograder.render; "
            "print(sorted({'torch', 'hypothesis'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_result_reads_back_from_results_json_field_by_field():
    flagged = summarise([Record("frames", "sys._getframe", "", "hw2/returns.py:4")], [])
    result = failed(notes=["on 2 steps"], where="hw2/returns.py:7")
    result.tampering = flagged
    data = json.loads(json.dumps(GradeRun([result], 1.5).to_json(render.markdown)))
    back = GradeRun.from_json(data).results[0]
    assert back.failure == result.failure and back.tampering == flagged
    assert (back.problem.id, back.diagnosis, back.student_output, back.reason, back.status) == \
        (INFO.id, result.diagnosis, "step 0\n", result.reason, "failed")


def test_the_problem_id_is_a_field_never_read_from_the_name():
    data = GradeRun([failed()], 1.0).to_json()
    data["tests"][0]["name"] = "something else: with a colon"
    assert GradeRun.from_json(data).results[0].problem.id == "hw2/reward_to_go"


def test_the_shrunk_input_is_the_failing_calls_own_arguments():
    @settings(derandomize=True, database=None, max_examples=100, deadline=None)
    @given(values=st.lists(st.integers(0, 100), min_size=1))
    def prop(values):
        assert sum(values) < 50

    forget_example()
    with pytest.raises(AssertionError):
        prop()
    assert last_example() == "values=[50]"

    @settings(derandomize=True, database=None, max_examples=5, deadline=None)
    @given(x=st.integers())
    def holds(x):
        pass

    holds()
    assert last_example() == ""  # a property that held leaves no input to show


# --------------------------------------------------------------------------- one writer
def test_the_shell_fallback_writes_the_models_grader_error(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    env = {**os.environ, "GRADER_ROOT": str(tmp_path), "GRADER_PYTHON": "/bin/false"}
    script = ROOT / "instructor" / "templates" / "run_autograder"
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True)
    shell = json.loads((tmp_path / "results" / "results.json").read_text())
    model = GradeRun.failed_to_grade("it failed to start (exit status 1)").to_json()
    assert shell == model


def test_a_grader_error_reads_back_as_one():
    run = GradeRun.from_json(GradeRun.failed_to_grade("no landlock").to_json())
    assert run.grader_error == "no landlock" and run.results == [] and "no landlock" in run.output


# --------------------------------------------------------------------------- renderings
def test_gradescope_gets_markdown_with_code_blocks_and_a_quoted_hint():
    test = GradeRun([failed()], 1.0).to_json(render.markdown)["tests"][0]
    assert test["output_format"] == "md"
    out = test["output"]
    assert "```python\nrewards=[2.0, 1.0], gamma=0.5\n```" in out
    assert "```\nexpected: [2, 1]\ngot:      [1, 1]\n```" in out
    assert "> **Hint:** sum from t on" in out


def test_student_text_cannot_close_its_code_block_nor_inject_html():
    result = failed(message="f raised ValueError: ```\n# title\n<script>x</script>")
    out = render.markdown(result)
    assert "````\nf raised ValueError: ```\n# title\n<script>x</script>\n````" in out
    page = render.notebook_html(result)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_the_autograded_notebook_shows_what_check_shows_live():
    """Live, ``check`` shows ``notebook_outputs`` of its result; the autograded notebook's cell gets them from
    results.json: the same outputs, so nothing is lost on the way through the file."""
    from instructor.autograde import cell_outputs

    result = failed(notes=["on 2 steps"])
    back = GradeRun.from_json(json.loads(json.dumps(GradeRun([result], 1.0).to_json(render.markdown))))
    live = render.notebook_outputs([INFO.id], {INFO.id: result})
    graded = cell_outputs([INFO.id], {r.problem.id: r for r in back.results})
    assert [dict(o) for o in graded] == live
    assert "smallest failing input" in live[0]["data"]["text/html"] and live[1]["ename"] == "CheckFailed"


# --------------------------------------------------------------------------- output kept, errors once
def printing_returns() -> str:
    """The reference's hw2/returns.py whose discounted_return prints as it works."""
    from autograder.paths import SOLUTIONS

    text = (SOLUTIONS / "hw2" / "returns.py").read_text()
    head, sep, rest = text.partition("def discounted_return(")
    body, begin, tail = rest.partition("    ### BEGIN SOLUTION\n")
    return head + sep + body + begin + '    print("computing a return")\n' + tail


def test_a_passing_problems_output_is_kept_and_pointed_to(tmp_path):
    result = grade_problem(make_submission(tmp_path, {"hw2/returns.py": printing_returns()}), "discounted_return",
                           with_reference=False)
    assert result.passed and "computing a return" in result.student_output
    path = tmp_path / "results.json"
    render.write_results(path, [result], 1.0)
    (test,) = json.loads(path.read_text())["tests"]
    assert "computing a return" in test["extra_data"]["student_output"]
    under_table = render.summary([result], path)
    assert f"your code printed (each problem's output is in {path}" in under_table
    assert "hw2/discounted_return" in under_table.split("your code printed")[1]


def test_a_module_that_does_not_import_is_shown_once(tmp_path):
    broken = make_submission(tmp_path, {"hw2/returns.py": "import notapackage_of_the_kit\n"})
    results = [grade_problem(broken, name, with_reference=False) for name in ("discounted_return", "reward_to_go")]
    assert [r.module for r in results] == ["hw2/returns.py"] * 2
    under_table = render.summary(results)
    assert under_table.count("No module named") == 1
    assert "── hw2/returns.py does not import (2 problems not graded" in under_table
    for r in results:
        assert "not graded: hw2/returns.py does not import — see below" in render.line(r, width=200)
