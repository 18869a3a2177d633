"""Problems graded side by side (``--jobs``) give exactly the sequential verdicts, shown in the same order;
sandboxes graded at once never share a uid."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from autograder import render
from autograder.paths import ROOT, SOLUTIONS
from autograder.problem import Reference
from autograder.runner import grade, select
from autograder.sandbox import isolation
from tests.conftest import make_submission
from instructor.variants import hw2_estimators, hw2_returns

PROBLEMS = ("discounted_return,reward_to_go,gae,gae_lambda_one,returns_match_reference,pg_unbiased_full_return,"
            "pg_batch_mean,importance_weights")


def _buggy(tmp_path):
    """Two realistic bugs from the variants library, in two modules."""
    chosen = [next(v for v in hw2_returns.BUGGY if v.name == "rtg_undiscounted"),
              hw2_estimators.BUGGY[0]]
    overrides: dict[str, str] = {}
    for v in chosen:
        overrides[v.module] = overrides.get(v.module, "") + "\n" + v.source
    return make_submission(tmp_path, overrides)


def _verdicts(results):
    return [(r.problem.id, r.status, r.score, r.reason, render.details(r), r.diagnosis, r.student_output) for r in results]


def test_two_jobs_give_the_sequential_verdicts_in_the_same_order(tmp_path):
    submission = _buggy(tmp_path)
    problems = select(problem=PROBLEMS)
    reference = Reference.find(SOLUTIONS)
    runs = {}
    for jobs in (1, 2):
        shown: list[str] = []
        threads: set[str] = set()

        def on_result(r):
            shown.append(r.problem.id)
            threads.add(threading.current_thread().name)

        results = grade(submission, problems, reference=reference, jobs=jobs, on_result=on_result)
        assert shown == [p.id for p in problems]
        runs[jobs] = _verdicts(results)
    assert runs[1] == runs[2]
    assert any(v[1] == "failed" for v in runs[1]) and any(v[1] == "passed" for v in runs[1])


def test_the_command_line_shows_results_in_the_problems_order_with_two_jobs(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submission", str(_buggy(tmp_path)),
                           "--results", str(out), "--problem", PROBLEMS, "--jobs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 problems at a time" in proc.stdout
    ids = [p.id for p in select(problem=PROBLEMS)]
    table = [line.split()[0] for line in proc.stdout.splitlines() if line.split() and line.split()[0] in ids]
    assert table == ids
    tests = json.loads(out.read_text())["tests"]
    assert [t["extra_data"]["problem"] for t in tests] == ids
    assert {t["extra_data"]["diagnosis"] for t in tests if t["status"] == "failed"} - {""}


def test_sandboxes_alive_at_once_never_share_a_uid(monkeypatch):
    monkeypatch.setattr(isolation, "SANDBOX_UID_COUNT", 3)
    monkeypatch.setattr(isolation.processes, "uids_in_use", lambda: set())
    drawn = [isolation._fresh_ids()[0] for _ in range(3)]
    assert len(set(drawn)) == 3
    isolation.release_ids((drawn[1], 0))
    assert isolation._fresh_ids()[0] == drawn[1]
    for uid in drawn:
        isolation.release_ids((uid, 0))


def test_the_training_problems_named_for_the_fork_server_exist_and_are_chosen_from_the_command_line():
    """autograder.problems.TRAINING decides whether the fork server preloads torch._dynamo; a stale name would
    only make grading slower, so check the names, and the command-line rule, here."""
    from autograder.problems import TRAINING, may_train

    slow = {p.id: p.slow for p in select()}
    assert {pid: slow.get(pid) for pid in TRAINING} == TRAINING
    assert may_train("hw1") and may_train("all") and may_train("hw2") and may_train("hw1", skip_slow=True)
    assert not may_train("hw2", skip_slow=True)
    assert may_train(problem="reward_to_go,hw1/dagger_process") and not may_train(problem="reward_to_go,gae")
