"""CPU/GPU parity: grading on CUDA gives the same verdicts as on the CPU.

Every test here is marked ``cuda`` and skips without a CUDA device. On a GPU
machine (torch built with CUDA): ``make test PYTEST_ARGS="-m cuda"``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from autograder.paths import ROOT, SOLUTIONS
from autograder.problem import Reference
from autograder.runner import run_problem, select
from tests.conftest import make_submission
from instructor.variants import Variant, collect

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")]

VARIANTS = collect("BUGGY") + collect("CORRECT")


def _verdict(submission, name: str, device: str):
    (p,) = select(problem=name)
    result = run_problem(p, submission, device=device, reference=Reference.find(SOLUTIONS))
    return result.status, result.score, result


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_every_variant_gets_the_same_verdict_on_cuda(tmp_path, variant: Variant):
    submission = make_submission(tmp_path, {variant.module: variant.source})
    for name in variant.problems:
        cpu = _verdict(submission, name, "cpu")
        cuda = _verdict(submission, name, "cuda")
        assert cpu[:2] == cuda[:2], f"{variant.name} on {name}: cpu {cpu[2].reason!r} vs cuda {cuda[2].reason!r}"


def test_a_tensor_created_on_the_wrong_device_fails_on_cuda_only(tmp_path):
    """The one intended difference: new tensors must follow the input's device."""
    submission = make_submission(tmp_path, {"hw2/returns.py": """
        import torch
        def discounted_return(rewards, gamma):
            out = torch.zeros(rewards.shape[0], dtype=rewards.dtype)  # no device=
            discount = gamma ** torch.arange(rewards.shape[0], dtype=torch.float64)
            return out + float((discount * rewards.double().cpu()).sum())
        """})
    assert _verdict(submission, "discounted_return", "cpu")[0] == "passed"
    status, _, result = _verdict(submission, "discounted_return", "cuda")
    assert status == "failed" and "expected it on cuda" in result.reason


def test_the_command_gives_the_same_results_with_DEVICE_cuda(tmp_path):
    tests = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.json"
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submission", str(SOLUTIONS),
                               "--results", str(out), "--skip-slow", "--device", device],
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        tests[device] = [(t["name"], t["status"], t["score"]) for t in json.loads(out.read_text())["tests"]]
    assert tests["cpu"] == tests["cuda"]
    assert all(status == "passed" for _, status, _ in tests["cuda"]), tests["cuda"]


def test_a_hanging_stub_times_out_on_cuda_too(tmp_path):
    submission = make_submission(tmp_path, {"hw2/returns.py": """
        import torch
        def discounted_return(rewards, gamma):
            x = torch.ones(1, device=rewards.device)
            while True:
                x = x + 1
        """})
    (p,) = select(problem="discounted_return")
    result = run_problem(p, submission, device="cuda", time_limit=5)
    assert result.status == "failed" and "timed out" in result.reason
