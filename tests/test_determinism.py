"""The same submission graded again gives the same results, timing aside, even
when student code draws unseeded random numbers: Hypothesis is derandomised in
the judge, and the child reseeds torch, numpy and random, and replays the same
"OS entropy" (np.random.default_rng(), SystemRandom, secrets), before every call;
the fork server runs with a fixed hash seed (set iteration order)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autograder import render
from autograder.paths import ROOT
from tests.conftest import make_submission
from tests.submissions import RETURNS, grade_dir

RUNS = 20

# Unseeded randomness from every usual source; the error it adds shows in the feedback.
NOISY = """
import random, secrets
import numpy as np
import torch

def _noise():
    first = sorted({"alpha", "beta", "gamma", "delta"}, key=lambda s: 0)[0]  # set order: the hash seed
    return (float(torch.rand(())) + float(torch.randn(())) + np.random.rand() + random.random()
            + np.random.default_rng().random() + random.SystemRandom().random() + secrets.randbelow(100)
            + len(first) + float(torch.randperm(5)[0]))

def discounted_return(rewards, gamma):
    discount = gamma ** torch.arange(rewards.shape[0], dtype=torch.float64)
    total = (discount * rewards.to(torch.float64)).sum()
    wrong = rewards.shape[0] > 2 and float(torch.rand(())) < 0.7
    print("noise", _noise())
    return (total + (_noise() if wrong else 0.0)).expand(rewards.shape[0]).to(rewards.dtype).clone()

def discounted_reward_to_go(rewards, gamma):
    out, running = torch.empty_like(rewards), 0.0
    for t in reversed(range(rewards.shape[0])):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    print("noise", _noise())
    return out
"""


def _summary(result) -> tuple:
    return (result.status, result.score, result.reason, render.details(result), result.student_output)


@pytest.mark.parametrize("name, verdict", [("discounted_return", "failed"), ("reward_to_go", "passed")])
def test_twenty_gradings_give_identical_results(tmp_path, name, verdict):
    submission = make_submission(tmp_path, {RETURNS: NOISY})
    results = [_summary(grade_dir(submission, name)) for _ in range(RUNS)]
    assert results[0][0] == verdict, results[0]
    assert "noise" in results[0][4]
    different = [i for i, r in enumerate(results) if r != results[0]]
    assert not different, f"runs {different} differ from run 0:\n{results[0]}\n{results[different[0]]}"


@pytest.mark.slow
def test_two_grading_processes_agree(tmp_path):
    """Separate judge processes (separate fork servers, so separate hash seeds unless fixed)."""
    submission = make_submission(tmp_path, {RETURNS: NOISY})
    outputs = []
    for run in range(2):
        out = tmp_path / f"results{run}.json"
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submission", str(submission),
                               "--results", str(out), "--problem", "discounted_return", "--no-reference"],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(json.loads(out.read_text())["tests"])
    assert outputs[0] == outputs[1]
    assert outputs[0][0]["status"] == "failed" and "noise" in outputs[0][0]["output"]
