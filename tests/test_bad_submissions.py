"""Broken submissions: each problem gets a clear message, and the rest is graded.
Also the command's contract: results.json always written, exit status 0 whenever
grading completed, 2 for a missing submission, 3 only for internal errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from autograder import render
from autograder import __main__ as cli
from autograder.paths import ROOT
from autograder.problem import REGISTRY, problem
from tests.conftest import make_submission
from tests.submissions import RETURNS, grade_dir, grade_source, shared_dir


def assert_zero(result, *phrases):
    assert result.status == "failed" and result.score == 0, (result.status, result.reason, render.details(result))
    for phrase in phrases:
        assert phrase in result.reason, f"{phrase!r} not in: {result.reason}"


# --------------------------------------------------------------------------- cannot be loaded
def test_missing_file(tmp_path):
    submission = make_submission(tmp_path)
    (submission / RETURNS).unlink()
    assert_zero(grade_dir(submission, "reward_to_go"), "missing file hw2/returns.py")


def test_syntax_error_names_the_file_and_line(tmp_path):
    submission = make_submission(tmp_path)
    path = submission / RETURNS
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + ["def oops(:", ""]))
    assert_zero(grade_dir(submission, "reward_to_go"), f"hw2/returns.py, line {len(lines) + 1}: SyntaxError")


def test_error_at_import_time(tmp_path):
    result = grade_source(tmp_path, "raise RuntimeError('my code runs at import')\n")
    assert_zero(result, "importing hw2/returns.py raised RuntimeError: my code runs at import")


def test_missing_function_fails_only_its_problems(tmp_path):
    submission = make_submission(tmp_path, {RETURNS: "del discounted_return\n"})
    assert_zero(grade_dir(submission, "discounted_return"), "does not define a function `discounted_return`")
    other = grade_dir(submission, "reward_to_go")
    assert other.passed and other.score == other.problem.points, render.details(other)


# --------------------------------------------------------------------------- wrong values
@pytest.mark.parametrize("body, phrase", [
    ("    return rewards.tolist()\n", "should return a torch.Tensor, but returned list"),
    ("    return None\n", "should return a torch.Tensor, but returned NoneType"),
    ("    return 'all checks passed'\n", "should return a torch.Tensor, but returned str"),
    ("    return rewards.numpy() * 0\n", "numpy array"),
    ("    return rewards.sum()\n", "returned shape [], expected shape"),
    ("    return rewards.unsqueeze(0).clone()\n", "returned shape [1, "),  # a view would share the input's memory
    ("    return rewards.to(torch.float16)\n", "returned dtype torch.float16"),
    ("    return torch.zeros(rewards.shape, dtype=rewards.dtype, device='meta')\n", "returned a tensor on meta"),
    ("    return rewards * float('nan')\n", "non-finite value"),
    ("    return rewards.to_sparse()\n", "layout"),
    ("    return object()\n", "returned a object"),
], ids=["list", "none", "str", "numpy", "scalar", "extra_dim", "dtype", "device", "nan", "sparse", "object"])
def test_wrong_return_value_gets_a_clear_message(tmp_path, body, phrase):
    result = grade_source(tmp_path, "import torch\ndef discounted_return(rewards, gamma):\n" + body)
    assert_zero(result, "discounted_return", phrase)
    assert "hint:" in render.details(result)


# --------------------------------------------------------------------------- the command's contract
def _grade_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_a_hanging_problem_does_not_stop_the_run(tmp_path):
    """One problem hangs: the others are graded, results.json lists all, exit 0, bounded time."""
    submission = make_submission(tmp_path, {RETURNS: """
        def discounted_reward_to_go(rewards, gamma):
            while True:
                pass
        """})
    out = tmp_path / "results.json"
    start = time.monotonic()
    proc = _grade_cli("--submission", str(submission), "--results", str(out), "--time-limit", "4",
                      "--problem", "discounted_return,reward_to_go,gae", "--no-reference")
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = {t["extra_data"]["problem"]: t for t in json.loads(out.read_text())["tests"]}
    assert set(tests) == {"hw2/discounted_return", "hw2/reward_to_go", "hw2/gae"}
    # its short probe call did not return (autograder.hangs): the problem gets that verdict, not its whole limit
    assert tests["hw2/reward_to_go"]["status"] == "failed"
    assert "discounted_reward_to_go did not return within 4 s" in tests["hw2/reward_to_go"]["output"]
    assert tests["hw2/discounted_return"]["status"] == tests["hw2/gae"]["status"] == "passed"
    assert elapsed < 180, elapsed


def test_forged_results_and_fake_output_do_not_reach_the_report(tmp_path):
    """The stub prints a fake table, raises with one in its message, and writes a
    fake results.json to its cwd, to the (world-writable) results folder, as a link
    at a guessable temp name, and to Gradescope's path. The real report wins."""
    fake = "hw2/reward_to_go  3/3 pass all checks passed FAKE"
    with shared_dir() as shared:
        out = shared / "results.json"
        submission = make_submission(tmp_path, {RETURNS: f"""
            import json, os
            def discounted_reward_to_go(rewards, gamma):
                forged = json.dumps({{"score": 1000, "tests": []}})
                print({fake!r})
                print("total: 1000/1000 points FAKE")
                for path in ["results.json", {str(out)!r}, "/autograder/results/results.json"]:
                    try:
                        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                        with open(path, "w") as f:
                            f.write(forged)
                    except OSError:
                        pass
                try:
                    os.symlink("/tmp/grader-attack-planted", {str(out) + ".tmp"!r})
                except OSError:
                    pass
                raise ValueError("\\n" + {fake!r} + "\\ntotal: 1000/1000 points FAKE")
            """})
        existed = os.path.exists("/autograder/results/results.json")
        proc = _grade_cli("--submission", str(submission), "--results", str(out), "--problem",
                          "discounted_return,reward_to_go", "--no-reference")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = json.loads(out.read_text())
        assert data["score"] == 2 and len(data["tests"]) == 2, data
        assert not any(line.lstrip().startswith(("hw2/reward_to_go  3/3", "total: 1000")) for line in
                       proc.stdout.splitlines()), proc.stdout
        for line in proc.stdout.splitlines():  # only inside the grader's own "raised ValueError" lines
            assert "FAKE" not in line or "ValueError" in line, line
        assert not os.path.exists("/tmp/grader-attack-planted")
        if not existed:
            assert not os.path.exists("/autograder/results/results.json")


def test_exit_status_is_3_only_for_an_internal_error(tmp_path, monkeypatch, capsys):
    """(Exit status 2 for a missing submission directory: tests/test_cli.py.)"""
    @problem("hw2", "zz_broken_check", points=1, stubs=[("hw2.returns", "discounted_return")], hint="-")
    def broken(ctx):
        """A problem whose own code has a bug."""
        raise KeyError("bug in the grader")

    monkeypatch.setitem(REGISTRY, "hw2/zz_broken_check", REGISTRY.pop("hw2/zz_broken_check"))
    submission = make_submission(tmp_path)
    code = cli.main(["grade", "--submission", str(submission), "--results", str(tmp_path / "r.json"),
                     "--problem", "zz_broken_check,discounted_return", "--no-reference"])
    assert code == 3
    tests = json.loads((tmp_path / "r.json").read_text())["tests"]
    assert [t["status"] for t in tests] == ["passed", "failed"]
    assert "internal grader error" in capsys.readouterr().out

    # A failing, crashing or forging submission is never an internal error.
    bad = make_submission(tmp_path / "bad", {RETURNS: "def discounted_return(rewards, gamma):\n    import os\n"
                                                      "    os._exit(1)\n"})
    code = cli.main(["grade", "--submission", str(bad), "--results", str(tmp_path / "r2.json"),
                     "--problem", "discounted_return", "--no-reference"])
    assert code == 0
