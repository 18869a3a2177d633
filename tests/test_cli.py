"""The grading command as students and instructors run it."""

import json
import subprocess
import time
import sys

import pytest

from autograder.paths import ROOT
from autograder.runner import select

GRADESCOPE_VISIBILITY = {"visible", "hidden", "after_due_date", "after_published"}


def run_grader(*args, cwd=ROOT, timeout=900):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def check_results_format(data: dict) -> None:
    assert isinstance(data["score"], (int, float)) and isinstance(data["execution_time"], (int, float))
    assert data["visibility"] in GRADESCOPE_VISIBILITY and data["stdout_visibility"] in GRADESCOPE_VISIBILITY
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in {"passed", "failed"} and test["visibility"] in GRADESCOPE_VISIBILITY
        assert 0 <= test["score"] <= test["max_score"]
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))


def test_starter_scores_zero_with_not_implemented_and_no_traceback(tmp_path):
    out = tmp_path / "results.json"
    proc = run_grader("--submission", "starter", "--results", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    check_results_format(data)
    assert data["score"] == 0
    assert len(data["tests"]) == len(select())
    for test in data["tests"]:
        assert test["status"] == "failed" and "not implemented yet" in test["output"], test


def test_solutions_get_full_marks_on_the_fast_problems(tmp_path):
    out = tmp_path / "results.json"
    proc = run_grader("--submission", str(ROOT / "solutions"), "--results", str(out), "--skip-slow")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    check_results_format(data)
    failed = [t for t in data["tests"] if t["status"] != "passed"]
    assert not failed, failed
    assert data["score"] == sum(p.points for p in select(include_slow=False))


@pytest.mark.slow
def test_solutions_get_full_marks_including_integration_problems(tmp_path):
    slow = select(include_slow=True)
    slow_names = ",".join(p.name for p in slow if p.slow)
    if not slow_names:
        pytest.skip("no integration problems registered")
    out = tmp_path / "results.json"
    proc = run_grader("--submission", "solutions", "--results", str(out), "--problem", slow_names)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert all(t["status"] == "passed" for t in data["tests"]), data["tests"]


def test_one_problem_can_be_graded_alone(tmp_path):
    out = tmp_path / "r.json"
    proc = run_grader("--submission", "solutions", "--problem", "reward_to_go", "--results", str(out))
    assert proc.returncode == 0
    names = [t["name"] for t in json.loads(out.read_text())["tests"]]
    assert len(names) == 1 and names[0].startswith("hw2/reward_to_go")


def test_missing_submission_directory_is_a_usage_error(tmp_path):
    proc = run_grader("--submission", str(tmp_path / "nope"), "--results", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_make_grade_is_the_documented_entry_point(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(["make", "-s", "grade", f"RESULTS={out}", "PROBLEM=reward_to_go,gae"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "not implemented yet" in proc.stdout and "total: 0/" in proc.stdout


def test_a_slow_submission_ends_inside_the_total_budget_with_every_result_written(tmp_path):
    """Code that sleeps in every function: each function's short probe call runs out of its limit (the last one
    shortened, or skipped, by the budget's end), every problem gets that verdict or 'not graded: out of time', and
    results.json is written before the budget is over."""
    from tests.conftest import make_submission

    sleepy = "import time\n" + "".join(
        f"def {name}(*args, **kwargs):\n    time.sleep(3600)\n"
        for name in ["discounted_return", "discounted_reward_to_go", "generalized_advantages"])
    submission = make_submission(tmp_path, {"hw2/returns.py": sleepy})
    out = tmp_path / "results.json"
    budget = 40
    start = time.monotonic()
    proc = run_grader("--submission", str(submission), "--results", str(out), "--total-seconds", str(budget),
                      "--problem", "discounted_return,reward_to_go,gae")
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    check_results_format(data)
    outputs = [t["output"] for t in data["tests"]]
    assert len(outputs) == 3 and data["score"] == 0
    assert "discounted_return did not return within 10 s on the grader's small first call" in outputs[0]
    assert all("did not return within" in o or "not graded: out of time" in o for o in outputs), outputs
    assert elapsed < budget + 30, f"{elapsed:.0f} s for a {budget} s budget"  # + the judge's own start-up


def test_a_mistyped_problem_gets_the_closest_names_and_make_list():
    from autograder.__main__ import no_match_message

    message = no_match_message("reward_to_gp, gae", select("hw2"))
    assert "did you mean reward_to_go" in message and "make list" in message
    assert "python -m autograder list" not in message and "'gae'" not in message  # gae exists: not listed
    assert "did you mean" not in no_match_message("zzzz", select("hw2"))
