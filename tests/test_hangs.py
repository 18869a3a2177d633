"""A hang costs one limit: a stub that never returns is found by one short probe call, the problems that reach it
end at once with that verdict, pre-checks of long problems have short limits of their own, and a time-out names
the function under test, not only the innermost callee."""

from __future__ import annotations

import re

import pytest

from autograder import render
from autograder.hangs import HangProbes
from autograder.problems import hw1_training
from autograder.runner import grade, run_problem, select
from autograder.sandbox.judge import where_in
from tests.conftest import make_submission
from tests.submissions import grade_dir

MODULE = "hw1.imitation"
IMITATION = "hw1/imitation.py"
PROBE_SECONDS = 3.0
NEVER_RETURNS = '''
def sample_trajectories(env, policy, min_timesteps, max_length):
    while True:
        pass
'''
# The loop: sample_trajectory returns every time, the total never grows.
COUNTER_NEVER_GROWS = '''
def sample_trajectories(env, policy, min_timesteps, max_length):
    trajectories, steps = [], 0
    while steps < min_timesteps:
        sample_trajectory(env, policy, max_length)
    return trajectories
'''


def _lines_of(submission, *snippets: str) -> set[int]:
    """The line numbers, in the submission's hw1/imitation.py, of the appended variant's lines holding ``snippets``."""
    lines = (submission / IMITATION).read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("def sample_trajectories("))
    return {i + 1 for i in range(start, len(lines)) if any(s in lines[i] for s in snippets)}


def _verdicts(results):
    """What a grade decided, the sampled line of "your code was at" left out (a stack dump lands on any line of
    the loop)."""
    return [(r.problem.id, r.status, r.score, re.sub(r"\.py:\d+", ".py:N", r.reason), r.diagnosis) for r in results]


def test_a_stub_that_hangs_is_probed_once_and_every_problem_that_reaches_it_ends_with_that_verdict(tmp_path):
    submission = make_submission(tmp_path, {IMITATION: NEVER_RETURNS})
    problems = select(problem="sample_trajectory,sample_trajectories,dagger_process", with_reference=False)
    runs = {}
    for jobs in (1, 2):
        hangs = HangProbes(submission, seconds=PROBE_SECONDS)
        results = {r.problem.name: r for r in grade(submission, problems, jobs=jobs, hangs=hangs)}
        # What the judge recorded: one probe per probed stub; the one that never returned, with its verdict.
        assert set(hangs.verdicts) == {(MODULE, "sample_trajectory"), (MODULE, "sample_trajectories")}
        assert hangs.verdicts[(MODULE, "sample_trajectory")] == ""
        verdict = hangs.verdicts[(MODULE, "sample_trajectories")]
        assert verdict.startswith(f"not graded: sample_trajectories did not return within {PROBE_SECONDS:g} s on "
                                  "the grader's small first call of it, sample_trajectories(")
        assert re.search(r"your code was at hw1/imitation\.py:\d+ in sample_trajectories$", verdict), verdict
        assert " at 0x" not in verdict  # no memory address: the same words on every run
        # The problem that grades it and the one that reaches it through run_training_loop: that verdict, at once,
        # neither charged its own time limit (30 s, 90 s) nor timed out.
        for name in ("sample_trajectories", "dagger_process"):
            r = results[name]
            assert (r.status, r.score, r.diagnosis) == ("failed", 0.0, "hung-on-probe"), (name, r.reason)
            assert r.reason.startswith(verdict), r.reason
            assert "time limit" not in r.reason and "timed out" not in r.reason
        assert results["sample_trajectories"].reason == verdict
        assert re.search(r"\(called at hw1/imitation\.py:\d+ in run_training_loop: paths = sample_trajectories\(",
                         results["dagger_process"].reason), results["dagger_process"].reason
        assert "hint: a loop that never ends" in render.details(results["dagger_process"])
        assert results["sample_trajectory"].passed  # a problem that never reaches it is graded as before
        runs[jobs] = _verdicts(results.values())
    assert runs[1] == runs[2]


def test_a_function_set_aside_but_never_called_leaves_the_problem_graded_as_before(tmp_path):
    submission = make_submission(tmp_path)
    (p,) = select(problem="sample_trajectory", with_reference=False)
    result = run_problem(p, submission, hung={(MODULE, "sample_trajectories"): "not graded: it hung"},
                         time_limit=60)
    assert result.passed, result.reason


@pytest.mark.parametrize("body", [
    "    return [sample_trajectory(env, policy, max_length)]\n",
    "    raise ValueError('no')\n",  # the problems judge that
    "    import os\n    os._exit(3)\n",  # a crash is no evidence of a hang either
], ids=["returns", "raises", "exits"])
def test_only_a_probe_that_does_not_return_marks_its_function(tmp_path, body):
    source = "def sample_trajectories(env, policy, min_timesteps, max_length):\n" + body
    hangs = HangProbes(make_submission(tmp_path, {IMITATION: source}), seconds=PROBE_SECONDS)
    assert hangs.hung([(MODULE, "sample_trajectories"), (MODULE, "bc_loss")]) == {}
    # the module's probes, each once (bc_loss has none); the one after the crash in a fresh child
    assert hangs.verdicts == {(MODULE, "sample_trajectories"): "", (MODULE, "sample_trajectory"): ""}


def test_a_time_out_names_the_function_under_test_and_where_inside_it_the_code_was(tmp_path):
    submission = make_submission(tmp_path, {IMITATION: COUNTER_NEVER_GROWS})
    result = grade_dir(submission, "sample_trajectories", time_limit=4)
    assert result.diagnosis == "time-limit", result.reason
    loop = _lines_of(submission, "while steps", "sample_trajectory(env")
    found = re.search(r"your code was at hw1/imitation\.py:(\d+) in sample_trajectories\b", result.reason)
    assert found and int(found.group(1)) in loop, result.reason


def test_where_in_a_stack_dump_gives_the_outermost_frame_of_the_submission_then_the_innermost():
    code = "/w/submission"
    dump = ("Stack (most recent call first):\n"
            '  File "/venv/torch/distributions/normal.py", line 70 in sample\n'
            f'  File "{code}/hw1/imitation.py", line 103 in sample_trajectory\n'
            f'  File "{code}/hw1/imitation.py", line 126 in sample_trajectories\n'
            '  File "/kit/autograder/sandbox/child.py", line 290 in _call\n'
            '  File "/kit/autograder/sandbox/child.py", line 60 in child_main\n')
    assert where_in(dump, code) == ("hw1/imitation.py:126 in sample_trajectories, which was running "
                                    "hw1/imitation.py:103 in sample_trajectory")
    only = "\n".join(line for line in dump.splitlines() if "line 103" not in line)
    assert where_in(only, code) == "hw1/imitation.py:126 in sample_trajectories"
    assert where_in(dump, "/elsewhere") == ""


def test_the_pre_check_of_a_long_problem_has_a_short_limit_of_its_own(tmp_path):
    source = "def discounted_reward_to_go(rewards, gamma):\n    while True:\n        pass\n"
    result = grade_dir(make_submission(tmp_path, {"hw2/returns.py": source}), "cartpole_training", time_limit=60)
    assert result.diagnosis == "time-limit", result.reason
    assert result.reason.startswith("timed out: the time limit of 10 s of the pre-check before training "), result.reason
    assert "60 s" not in result.reason and "discounted_reward_to_go(" in result.reason


def test_dagger_trainings_pre_check_runs_under_dagger_process_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(hw1_training, "DAGGER_SECONDS", 3)  # read when the check runs, in this process
    source = ("def run_training_loop(env, policy, expert, demonstrations, cfg, on_iteration=None):\n"
              "    while True:\n        pass\n")
    result = grade_dir(make_submission(tmp_path, {IMITATION: source}), "dagger_training", time_limit=60)
    assert result.diagnosis == "time-limit", result.reason
    assert result.reason.startswith("timed out: the time limit of 3 s of the pre-check before training "
                                    "(hw1/dagger_process's checks) ran out while running dagger_loop("), result.reason


def test_the_grader_s_stack_dump_is_not_shown_as_what_the_student_s_code_printed(tmp_path):
    """The judge asks a child that ran out of time for a stack dump (it says where the code was); that dump is the
    grader's evidence, not the student's output: what the code printed before stays, the dump does not."""
    submission = make_submission(tmp_path, {"hw2/returns.py": '''
def discounted_return(rewards, gamma):
    print("about to loop")
    while True:
        pass
'''})
    result = run_problem(select(problem="discounted_return", with_reference=False)[0], submission, "cpu", None,
                         1024, 3.0)
    assert result.diagnosis == "time-limit" and "in discounted_return" in result.reason
    assert "about to loop" in result.student_output
    assert "most recent call first" not in result.student_output and "child.py" not in result.student_output


def test_a_hang_reached_through_another_module_ends_the_problems_that_reach_it(tmp_path):
    """discounted_return never returns; policy_gradient (another module, which imports it by name) reaches it: the
    estimator problems end with the probe's verdict, a problem that does not reach it is graded as usual."""
    submission = make_submission(tmp_path, {"hw2/returns.py": """
def discounted_return(rewards, gamma):
    while True:
        pass
"""})
    problems = select(problem="pg_batch_mean,reward_to_go", with_reference=False)
    hangs = HangProbes(submission, seconds=PROBE_SECONDS)
    results = {r.problem.name: r for r in grade(submission, problems, jobs=1, hangs=hangs)}
    assert hangs.verdicts[("hw2.returns", "discounted_return")].startswith("not graded: discounted_return did not")
    assert results["pg_batch_mean"].diagnosis == "hung-on-probe" and results["pg_batch_mean"].score == 0
    assert results["reward_to_go"].passed


def test_a_grade_with_one_problem_of_a_homework_probes_nothing(tmp_path):
    """A probe saves later problems their limits; a grade of one problem (make grade PROBLEM=reward_to_go) has
    none, and pays its own limit at most, as before probes."""
    submission = make_submission(tmp_path, {})
    hangs = HangProbes(submission, seconds=PROBE_SECONDS)
    [result] = grade(submission, select(problem="reward_to_go", with_reference=False), hangs=hangs)
    assert result.passed and hangs.verdicts == {}
    grade(submission, select(problem="reward_to_go,gae", with_reference=False), hangs=hangs)
    assert set(hangs.verdicts) == {("hw2.returns", f) for f in
                                   ("discounted_return", "discounted_reward_to_go", "generalized_advantages")}
