"""Attacks on the grader by a hostile stub: each gets 0 with a clear reason, and
none can raise its score, outlive its problem, or reach the reference.

Target: hw2/discounted_return (2 points), graded through the real runner and
sandbox with a small time limit (4 s for the hangs) and memory limit.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import pytest

import autograder.sandbox.wire
from autograder import render
from autograder.paths import ROOT, SOLUTIONS
from tests.submissions import (IS_ROOT, ROOT_ONLY_REASON, alive_sandbox_process, grade_dir, grade_source,
                               shared_dir)
from tests.conftest import make_submission

HANG_LIMIT = 4.0
RETURNS_LINES = (SOLUTIONS / "hw2" / "returns.py").read_text().splitlines()
# What a stub that "succeeds" at an attack returns: right shape and dtype, wrong values.
WRONG = "    return torch.zeros_like(rewards)\n"


def assert_zero(result, *phrases):
    assert result.status == "failed" and result.score == 0, (result.status, result.reason, render.details(result))
    text = result.reason + "\n" + render.details(result)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in: {text}"


# --------------------------------------------------------------------------- a stub that misbehaves
@pytest.mark.parametrize("body, phrase", [
    ("    while True:\n        pass\n", "timed out"),
    ("    import time\n    time.sleep(3600)\n", "timed out"),
], ids=["infinite_loop", "sleep"])
def test_a_hanging_stub_times_out_within_its_limit(tmp_path, body, phrase):
    start = time.monotonic()
    result = grade_source(tmp_path, "def discounted_return(rewards, gamma):\n" + body, time_limit=HANG_LIMIT)
    assert_zero(result, phrase, "time limit of 4 s", "discounted_return(")
    first = len(RETURNS_LINES) + 4  # the variant's def line (make_submission adds a header before it)
    lines = range(first + 1, first + 1 + body.count("\n"))  # the body's lines: the loop, the sleep
    assert any(f"your code was at hw2/returns.py:{n} in discounted_return" in result.reason for n in lines), \
        result.reason
    assert time.monotonic() - start < HANG_LIMIT + 60  # a cold fork server imports torch first


@pytest.mark.parametrize("body, phrase", [
    ("    import sys\n    sys.exit(0)\n", "sys.exit(0)"),
    ("    raise SystemExit(3)\n", "sys.exit(3)"),
    ("    exit()\n", "sys.exit(None)"),
    ("    raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ("    import os\n    os._exit(7)\n", "exited with status 7"),
    ("    import ctypes\n    ctypes.string_at(0)\n", "SIGSEGV"),
    ("    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n", "SIGKILL"),
], ids=["sys_exit", "raise_SystemExit", "builtin_exit", "KeyboardInterrupt", "os_exit", "segfault", "self_kill"])
def test_a_stub_that_exits_or_crashes_gets_zero_with_the_reason(tmp_path, body, phrase):
    result = grade_source(tmp_path, "def discounted_return(rewards, gamma):\n" + body)
    assert_zero(result, phrase)


@pytest.mark.parametrize("body", [
    "    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n",
    "    import torch\n    return torch.empty(2**40, dtype=torch.uint8)\n",
    "    import numpy as np\n    return np.ones(2**37)\n",
], ids=["python_list", "torch_empty", "numpy_ones"])
def test_unbounded_memory_hits_the_memory_limit(tmp_path, body):
    start = time.monotonic()
    result = grade_source(tmp_path, "def discounted_return(rewards, gamma):\n" + body, memory_mb=256)
    assert_zero(result, "out of memory")
    assert "256 MB" in result.reason + render.details(result)
    assert time.monotonic() - start < 60


@pytest.mark.skipif(not IS_ROOT, reason=ROOT_ONLY_REASON)
def test_a_fork_bomb_is_capped_and_every_process_killed(tmp_path):
    with shared_dir() as shared:
        pids = shared / "pids"
        result = grade_source(tmp_path, f"""
            def discounted_return(rewards, gamma):
                import os, time
                for _ in range(12):
                    try:
                        os.fork()
                    except OSError:
                        pass
                    with open({str(pids)!r}, "a") as f:
                        f.write(f"{{os.getpid()}}\\n")
                time.sleep(600)
            """, time_limit=HANG_LIMIT)
        assert_zero(result)
        started = {int(x) for x in pids.read_text().split()}
        assert len(started) > 10, "the bomb did not go off"
        assert len(started) <= 300, "RLIMIT_NPROC did not cap the bomb"
        survivors = [pid for pid in started if alive_sandbox_process(pid)]
        assert not survivors, f"{len(survivors)} processes of the fork bomb outlived the problem"


def test_a_double_forked_daemon_is_killed_when_the_problem_ends(tmp_path):
    with shared_dir() as shared:
        pidfile, forged = shared / "daemon.pid", shared / "results.json"
        result = grade_source(tmp_path, f"""
            import torch
            def discounted_return(rewards, gamma):
                import os, time
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        with open({str(pidfile)!r} + ".tmp", "w") as f:
                            f.write(str(os.getpid()))
                        os.rename({str(pidfile)!r} + ".tmp", {str(pidfile)!r})
                        time.sleep(3)
                        with open({str(forged)!r}, "w") as f:
                            f.write('{{"score": 1000}}')
                        time.sleep(600)
                    os._exit(0)
                while not os.path.exists({str(pidfile)!r}):
                    time.sleep(0.01)
                return torch.zeros_like(rewards)
            """)
        assert_zero(result, "discounted_return is wrong")
        daemon = int(pidfile.read_text())  # the stub returned only once the daemon had written it
        assert not alive_sandbox_process(daemon), "the daemon outlived its problem"
        time.sleep(3.5)
        assert not forged.exists(), "the daemon was still running after the problem ended"


def test_printing_without_end_costs_nothing_but_its_own_output(tmp_path):
    """Tens of megabytes of debug prints: the problem is graded as usual, the output keeps its head and
    tail with a note of how much was printed, and nothing is written to disk."""
    result = grade_source(tmp_path, """
        import torch
        def discounted_return(rewards, gamma):
            for i in range(100_000):
                print("debug line", i, "x" * 100)
            return torch.zeros_like(rewards)
        """, time_limit=60)
    assert_zero(result, "discounted_return is wrong")
    out = result.student_output
    assert out.startswith("debug line 0 ") and out.rstrip().endswith("x" * 100)
    assert "your code printed" in out and "MB; the first and last 4 KB are kept" in out
    assert len(out) < 20_000


# --------------------------------------------------------------------------- a stub that tampers
def test_monkeypatching_comparisons_in_the_child_changes_nothing(tmp_path):
    result = grade_source(tmp_path, """
        import math, operator
        import numpy as np
        import torch
        def discounted_return(rewards, gamma):
            yes = lambda *a, **k: True
            torch.allclose = torch.equal = torch.testing.assert_close = yes
            torch.isclose = lambda a, b, *x, **k: torch.ones_like(a, dtype=torch.bool)
            torch.Tensor.__eq__ = torch.Tensor.__le__ = torch.Tensor.__lt__ = lambda self, other: True
            torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)
            torch.Tensor.abs = lambda self: torch.zeros_like(self)
            np.allclose = np.array_equal = np.testing.assert_allclose = yes
            np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), dtype=bool)
            math.isclose = operator.eq = yes
            return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong", "expected")


def test_walking_the_stack_and_gc_finds_no_expected_values(tmp_path):
    result = grade_source(tmp_path, """
        import gc, sys
        import torch
        def discounted_return(rewards, gamma):
            seen = []
            frame = sys._getframe(1)
            while frame is not None:
                seen += [v for v in frame.f_locals.values() if isinstance(v, torch.Tensor)]
                frame = frame.f_back
            seen += [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
            candidates = [t for t in seen if t is not rewards and t.shape == rewards.shape
                          and t.dtype == rewards.dtype and not torch.equal(t, rewards)]
            print(f"found {len(candidates)} candidate answers")
            return candidates[0].clone() if candidates else torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")


def test_the_reference_is_not_importable_by_module_name(tmp_path):
    result = grade_source(tmp_path, """
        import importlib
        import torch
        def discounted_return(rewards, gamma):
            for name in ["solutions.hw2.returns", "solutions", "reference.hw2.returns", "instructor.variants"]:
                try:
                    importlib.import_module(name)
                    print(f"IMPORTED {name}")
                    return importlib.import_module(name).discounted_return(rewards, gamma)
                except (ImportError, OSError):  # not found, or found (the kit's own packages) and unreadable
                    print(f"blocked {name}")
            return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")
    lines = set(result.student_output.splitlines())
    assert "IMPORTED" not in result.student_output and len({x for x in lines if x.startswith("blocked")}) == 4


@pytest.mark.skipif(not IS_ROOT, reason=ROOT_ONLY_REASON)
def test_the_reference_cannot_be_read_by_path(tmp_path):
    """solutions/, the git objects that hold it, and the CORRECT variants of instructor/variants."""
    result = grade_source(tmp_path, """
        import os
        import torch
        from autograder.paths import ROOT, SOLUTIONS
        def discounted_return(rewards, gamma):
            targets = [SOLUTIONS / "hw2" / "returns.py", ROOT / ".git" / "HEAD", ROOT / "instructor" / "variants"]
            for path in targets:
                try:
                    if path.is_dir():
                        os.listdir(path)
                    else:
                        path.read_bytes()
                    print(f"READ {path}")
                except OSError as err:
                    print(f"blocked {path}: {type(err).__name__}")
            ns = {}
            try:
                exec((SOLUTIONS / "hw2" / "returns.py").read_text(), ns)
                return ns["discounted_return"](rewards, gamma)
            except OSError:
                return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")
    lines = set(result.student_output.splitlines())
    assert "READ" not in result.student_output
    assert len({x for x in lines if x.endswith("PermissionError")}) == 3, result.student_output


def test_a_symlink_in_the_submission_is_not_followed(tmp_path):
    submission = make_submission(tmp_path)
    (submission / "hw2" / "returns.py").unlink()
    (submission / "hw2" / "returns.py").symlink_to(SOLUTIONS / "hw2" / "returns.py")
    result = grade_dir(submission, "discounted_return")
    assert_zero(result, "missing file hw2/returns.py")


def test_the_output_log_cannot_be_swapped_for_a_link_to_the_reference(tmp_path):
    result = grade_source(tmp_path, f"""
        import os
        import torch
        def discounted_return(rewards, gamma):
            print("hello")
            log = os.path.join(os.path.dirname(os.getcwd()), "output.log")
            os.unlink(log)
            os.symlink({str(SOLUTIONS / "hw2" / "returns.py")!r}, log)
            return torch.zeros_like(rewards)
        """)
    assert_zero(result)
    assert "hello" in result.student_output
    assert "BEGIN SOLUTION" not in result.student_output


def _digest(paths) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.skipif(not IS_ROOT, reason=ROOT_ONLY_REASON)
def test_the_grader_files_on_disk_cannot_be_tampered_with(tmp_path):
    import autograder.problems.hw2_returns as problems

    grader_files = [ROOT / "autograder" / "compare.py", ROOT / "autograder" / "sandbox" / "child.py",
                    ROOT / "autograder" / "runner.py", ROOT / "autograder" / "problems" / "hw2_returns.py"]
    site = next(p for p in sys.path if p.endswith("site-packages"))
    before = _digest(grader_files)
    result = grade_source(tmp_path, f"""
        import os
        import torch
        def discounted_return(rewards, gamma):
            for path in {[str(p) for p in grader_files]!r} + [{site!r} + "/zz_grader_hook.pth",
                                                              {str(ROOT)!r} + "/sitecustomize.py"]:
                try:
                    with open(path, "a") as f:
                        f.write("\\nimport os; os.environ['PWNED'] = '1'\\n")
                    print(f"WROTE {{path}}")
                except OSError as err:
                    print(f"blocked {{path}}: {{type(err).__name__}}")
            return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")
    assert "WROTE" not in result.student_output, result.student_output
    assert _digest(grader_files) == before
    assert not os.path.exists(os.path.join(site, "zz_grader_hook.pth"))
    assert problems.check_discounted_return is not None


# --------------------------------------------------------------------------- facts decided in the judge
def test_an_in_place_change_is_seen_even_with_the_childs_own_checks_patched_out(tmp_path):
    """The judge compares the arguments it sent with those the child sends back; patching the child's
    comparison or its walk over the arguments hides nothing (the second makes the reply malformed)."""
    for patch in ["wire._same = lambda a, b: True", "child.tensors_in = lambda x: []"]:
        result = grade_source(tmp_path / patch[:5], f"""
            import torch
            import autograder.sandbox.child as child
            import autograder.sandbox.wire as wire
            {patch}
            _correct = discounted_reward_to_go
            def discounted_reward_to_go(rewards, gamma):
                out = _correct(rewards, gamma)
                rewards.mul_(0.5)
                return out
            """, problem="reward_to_go")
        assert_zero(result)
        text = result.reason + render.details(result)  # the reason names the change to the grader's code (see tamper)
        assert "modified its input in place" in text or "malformed reply" in text, text


def test_a_forged_gradient_is_checked_against_the_slope_of_the_students_own_function(tmp_path):
    """Twice the right weights, with the child's gradient routine replaced so that it reports the gradient
    of the right ones: the judge's finite differences of the student's own values expose it."""
    result = grade_source(tmp_path, """
        import torch
        import autograder.sandbox.child as child
        _correct = importance_weights
        def importance_weights(target_log_probs, behavior_log_probs, per_decision=False):
            return 2 * _correct(target_log_probs, behavior_log_probs, per_decision=per_decision)
        def forged(value, inputs, cotangent):
            weight = torch.ones_like(value) if cotangent is None else cotangent.to(value.dtype)
            return list(torch.autograd.grad((value / 2 * weight).sum(), inputs))
        child._grads = forged
        """, problem="importance_weights_grad", module="hw2/policy_gradient.py")
    assert_zero(result, "is not the slope of your own function")


# --------------------------------------------------------------------------- forging the reply protocol
_FORGE = """
import gc, io, os, pickle, socket, sys, time
import torch
from autograder.sandbox import channel

class Evil:
    def __reduce__(self):
        return (exec, ("import autograder.sandbox.wire as s; s.PWNED = True",))

def _nonce():  # the strongest forger: it found the request being served, and its nonce
    frame = sys._getframe()
    while frame is not None:
        request = frame.f_locals.get("request")
        if isinstance(request, dict) and "nonce" in request:
            return request["nonce"]
        frame = frame.f_back

def discounted_return(rewards, gamma):
    (conn,) = [o for o in gc.get_objects()
               if isinstance(o, socket.socket) and o.family == socket.AF_UNIX and o.fileno() >= 0]
    NONCE = _nonce()
    payload = PAYLOAD
    channel.send_frame(conn, payload)
    time.sleep(600)
"""


def _sent(obj) -> str:
    """A reply as the child's own code would send it, holding ``obj``, with its request's nonce."""
    return f"__import__('autograder.sandbox.wire').sandbox.wire.dumps_reply(dict({obj}, nonce=NONCE))"


def _raw(obj) -> str:
    return f"pickle.dumps({obj})"


@pytest.mark.parametrize("payload", [
    "pickle.dumps(Evil())",
    _raw('{"ok": True, "value": Evil(), "after": [], "grads": None}'),
    "b'not a reply at all'",
    _sent('{"ok": "yes"}'),
    _sent('{"ok": False, "kind": "made-up"}'),
    _sent('{"ok": False, "kind": "error"}'),
    _sent('{"ok": True, "value": {"__tensor__": 5}, "after": "x", "grads": None}'),
    _raw('{"ok": True, "value": {"__tensor__": ("__raw_tensor__", "float32", (3,), bytes(5))}, "after": [], '
         '"grads": None}'),
    _raw('{"ok": True, "value": {"__tensor__": ("__raw_tensor__", "complex64", (3,), bytes(24))}, "after": [], '
         '"grads": None}'),
    _raw('{"ok": True, "value": {"__tensor__": ("__raw_tensor__", "float32", (2**39, 2**39), b"")}, "after": [], '
         '"grads": None}'),
    _sent('{"ok": True, "value": (lambda x: [x := [x] for _ in range(500)][-1])([]), "after": [], '
          '"grads": {"__dict__": {"a": 1}}}'),
    _sent('{"ok": False, "kind": "error", "type": "X", "message": "\\nhw2/discounted_return  2/2  pass"}'),
], ids=["pickle_exec", "exec_inside_a_reply", "garbage", "ok_not_bool", "unknown_kind", "missing_fields",
        "tensor_not_tensor", "tensor_bytes_short", "complex_tensor", "huge_shape", "deeply_nested",
        "newline_in_message"])
def test_a_forged_reply_is_a_failure_never_code_or_an_internal_error(tmp_path, payload):
    autograder.sandbox.wire.__dict__.pop("PWNED", None)
    result = grade_source(tmp_path, _FORGE.replace("PAYLOAD", payload), time_limit=HANG_LIMIT)
    assert not getattr(autograder.sandbox.wire, "PWNED", False), "the judge ran code from the child's reply"
    assert_zero(result)
    assert "\n" not in result.reason


def test_a_judge_killed_with_sigkill_leaves_a_work_directory_the_next_judge_removes(tmp_path):
    """SIGKILL gives the judge no chance to clean up; the copy of the submission must not stay in /tmp for good."""
    import signal
    import subprocess

    from autograder.sandbox.processes import sweep_orphaned_workdirs

    sub = make_submission(tmp_path, {})
    judge = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom autograder.sandbox import Sandbox\n"
         f"print(Sandbox({str(sub)!r}).workdir, flush=True)\ntime.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        workdir = Path(judge.stdout.readline().strip())
        assert workdir.is_dir() and (workdir / "submission").is_dir()
        assert workdir not in sweep_orphaned_workdirs(), "a running judge's directory was removed"
    finally:
        judge.send_signal(signal.SIGKILL)
        judge.wait()
    assert workdir.is_dir()
    assert workdir in sweep_orphaned_workdirs() and not workdir.exists()


def test_the_sweep_leaves_directories_it_does_not_own_by_name(tmp_path):
    from autograder.sandbox.processes import WORKDIR_PREFIX, sweep_orphaned_workdirs

    mine = tmp_path / f"{WORKDIR_PREFIX}{os.getpid()}-abc"
    other = tmp_path / f"{WORKDIR_PREFIX}xyz_123"  # not a pid: not ours to judge
    for path in (mine, other):
        path.mkdir()
    assert sweep_orphaned_workdirs(tmp_path) == [] and mine.is_dir() and other.is_dir()


@pytest.mark.slow
def test_given_code_patched_to_hand_a_bc_only_loop_more_demonstrations_still_gets_zero_for_dagger(tmp_path):
    """The old attack rewrote the grader's DAgger configuration in the child; configurations are now data from
    the judge, so its successor patches the given demonstration loader instead. The outcome alone would pass
    (measured: 101% of the expert); dagger_training also checks that the loop is DAgger, on judge-built data."""
    from instructor.variants import collect

    variant = next(v for v in collect("BUGGY") if v.name == "dagger_never_uses_learner_data")
    tamper = ("\nimport rlkit.imitation as _given\n_load = _given.load_task_demonstrations\n"
              "_given.load_task_demonstrations = lambda task, n=2: _load(task, 10)  # the judge asked for 1\n")
    result = grade_source(tmp_path, variant.source + tamper, problem="dagger_training", module="hw1/imitation.py",
                          time_limit=300, memory_mb=2048)
    assert_zero(result, "never rolled out the learner")
