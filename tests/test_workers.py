"""Class grading's warm workers (autograder/serve.py, instructor/workers.py): one judge process grades student
after student, and each student gets exactly what a grade in a fresh process gives."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.paths import ROOT, SOLUTIONS
from instructor.autograde import GRADER_ENV
from instructor.workers import Worker, WorkerGone

PROBLEMS = "discounted_return,reward_to_go,pg_batch_mean,returns_match_reference"


def _student(root: Path, name: str, replace: tuple[str, str] | None = None) -> Path:
    d = root / name
    shutil.copytree(SOLUTIONS, d, ignore=shutil.ignore_patterns("__pycache__"))
    if replace:
        path = d / "hw2" / "returns.py"
        text = path.read_text()
        assert replace[0] in text
        path.write_text(text.replace(replace[0], replace[1]))
    return d


def _argv(submission: Path, results: Path, *extra: str) -> list[str]:
    return ["grade", "--submission", str(submission), "--assignment", "hw2", "--problem", PROBLEMS,
            "--results", str(results), "--jobs", "1", *extra]


def _comparable(path: Path) -> dict:
    """The results file less its time, and with the line where a never-ending loop was stopped left out (a stack
    dump lands on any line of the loop, from one run to the next, in fresh processes too)."""
    data = json.loads(path.read_text())
    data.pop("execution_time")
    return json.loads(re.sub(r"returns\.py:\d+", "returns.py:N", json.dumps(data)))


@pytest.mark.slow
def test_students_graded_one_after_another_in_a_worker_get_their_fresh_process_results(tmp_path):
    students = {"right": _student(tmp_path, "right"),
                "halved": _student(tmp_path, "halved", ("return rtg.to(rewards.dtype)",
                                                        "return (0.5 * rtg).to(rewards.dtype)")),
                "hang": _student(tmp_path, "hang", ("def discounted_return(rewards: Tensor, gamma: float) -> Tensor:\n",
                                                    "def discounted_return(rewards: Tensor, gamma: float) -> Tensor:\n"
                                                    "    while True:\n        pass\n"))}
    fresh = {}
    for name, sub in students.items():
        fresh[name] = tmp_path / f"{name}-fresh.json"
        subprocess.run([sys.executable, "-m", "autograder", *_argv(sub, fresh[name], "--time-limit", "4")],
                       cwd=ROOT, env=GRADER_ENV, check=True, capture_output=True)
    worker = Worker(GRADER_ENV)
    pids = []
    try:
        for round_, order in enumerate((["halved", "right", "hang"], ["right", "hang", "halved"])):
            for name in order:
                results = tmp_path / f"{name}-worker-{round_}.json"
                status = worker.grade(_argv(students[name], results, "--time-limit", "4"),
                                      tmp_path / f"{name}-{round_}.log", 120)
                pids.append(worker.proc.pid)
                assert status == 0
                assert _comparable(results) == _comparable(fresh[name]), name
    finally:
        worker.stop()
    scores = {name: json.loads(fresh[name].read_text())["score"] for name in students}
    assert scores["right"] > scores["halved"] and scores["right"] > scores["hang"]  # the students differ
    assert len(set(pids)) == 1  # all six in one process: the worker was warm throughout


@pytest.mark.slow
def test_a_student_who_uses_the_whole_budget_costs_the_worker_but_not_the_next_student(tmp_path):
    hang = _student(tmp_path, "hang", ("def discounted_return(rewards: Tensor, gamma: float) -> Tensor:\n",
                                       "def discounted_return(rewards: Tensor, gamma: float) -> Tensor:\n"
                                       "    while True:\n        pass\n"))
    right = _student(tmp_path, "right")
    worker = Worker(GRADER_ENV)
    try:
        status = worker.grade(_argv(hang, tmp_path / "hang.json", "--total-seconds", "20"), tmp_path / "h.log", 80)
        hung = json.loads((tmp_path / "hang.json").read_text())
        # 20 s less the judge's reserve of 15: the probe of discounted_return is cut short, what is left is not graded
        first = hung["tests"][0]
        assert status == 0 and first["score"] == 0, first
        assert first["extra_data"]["diagnosis"] in ("hung-on-probe", "out-of-time"), first
        # A grade that outlives the pool's deadline: the worker is killed, the next student gets a fresh one.
        with pytest.raises(WorkerGone) as gone:
            worker.grade(_argv(hang, tmp_path / "again.json", "--total-seconds", "60"), tmp_path / "a.log", 6)
        assert gone.value.status is None and worker.proc is None
        status = worker.grade(_argv(right, tmp_path / "right.json"), tmp_path / "r.log", 120)
        assert status == 0 and json.loads((tmp_path / "right.json").read_text())["score"] == 2 + 3 + 2 + 2
    finally:
        worker.stop()


def test_the_judge_state_a_grade_could_change_is_put_back(tmp_path, monkeypatch):
    import numpy as np
    import torch
    from hypothesis import settings

    from autograder.serve import JudgeState

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "left_behind.py").write_text("X = 1\n")
    state = JudgeState()
    before = (random.random(), np.random.random(), torch.rand(1).item())
    state.restore()
    threads, name = torch.get_num_threads(), settings.get_current_profile_name()
    try:
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(threads + 1)
        torch.set_grad_enabled(False)
        settings.register_profile("left-behind", max_examples=3)
        settings.load_profile("left-behind")
        random.random(), np.random.random(), torch.rand(3)
        os.environ["LEFT_BEHIND"] = "1"
        os.chdir(tmp_path / "sub")
        sys.path.insert(0, str(tmp_path / "sub"))
        import left_behind  # noqa: F401

        state.restore(tmp_path / "sub")
        assert (random.random(), np.random.random(), torch.rand(1).item()) == before
        assert torch.get_default_dtype() == torch.float32 and torch.get_num_threads() == threads
        assert torch.is_grad_enabled() and settings.get_current_profile_name() == name
        assert "LEFT_BEHIND" not in os.environ and Path.cwd() == tmp_path
        assert str(tmp_path / "sub") not in sys.path and "left_behind" not in sys.modules
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_num_threads(threads)
        torch.set_grad_enabled(True)
        settings.load_profile(name)
        sys.modules.pop("left_behind", None)
