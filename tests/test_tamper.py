"""Tampering with the grader from inside the sandbox is recorded and shown (autograder/sandbox/tamper.py).

Hostile submissions are the reference with a real bug (``discounted_return`` returns zeros) plus the attack,
graded through the real runner and sandbox: the attack is flagged with its kind and the line of the
submission that made it, the problem scores 0, and results.json shows it. A change to the grader's code
scores 0 by itself (diagnosis "tampering"), even when every check passes; a probe alone is flagged and the
score stands. The honest side matters most: the reference solutions and correct variants leave no record.
"""

from __future__ import annotations

import os

import pytest

from autograder import render
from autograder.homeworks import HOMEWORKS
from autograder.paths import SOLUTIONS
from autograder.problem import Reference
from autograder.results import GradeRun
from autograder.runner import grade, select
from autograder.sandbox import tamper
from instructor import class_report
from tests.conftest import grade_problem, make_submission
from tests.submissions import grade_source
from instructor.variants import collect

BUG = """
    return torch.zeros_like(rewards)
"""


def attack(setup: str, body: str = "") -> str:
    """A ``discounted_return`` with the bug; ``setup`` runs at import, ``body`` at each call."""
    return f"import torch\n{setup}\n\ndef discounted_return(rewards, gamma):\n{body}{BUG}"


def shown_in_results_json(result) -> dict:
    (test,) = render.results_run([result], 1.0).to_json(render.markdown)["tests"]
    assert "your code touched the grader's internals" in test["output"], test["output"]
    return test["extra_data"]["tampering"]


# --------------------------------------------------------------------------- changes to the grader's code: 0 points
CHANGES = {
    "autograd.grad": ("import torch.autograd\n_grad = torch.autograd.grad\n"
                      "torch.autograd.grad = lambda *a, **k: _grad(*a, **k)", "autograd: torch.autograd.grad"),
    "Tensor.backward": ("_backward = torch.Tensor.backward\n"
                        "torch.Tensor.backward = lambda self, *a, **k: _backward(self, *a, **k)",
                        "autograd: torch.Tensor.backward"),
    "child._call": ("import autograder.sandbox.child as child\n_call = child._call\n"
                    "child._call = lambda *a: _call(*a)", "grader-code: autograder.sandbox.child._call"),
    "wire.pack": ("from autograder.sandbox import wire\n_pack = wire.pack\nwire.pack = lambda *a: _pack(*a)",
                  "grader-code: autograder.sandbox.wire.pack"),
    "child_tasks.TASKS": ("from autograder import child_tasks\n"
                          "child_tasks.TASKS['train_imitation'] = lambda *a, **k: {}",
                          "grader-code: autograder.child_tasks.TASKS.train_imitation"),
    "function code": ("from autograder.sandbox import wire\nwire.tensors_in.__code__ = (lambda x: []).__code__",
                      "grader-code: autograder.sandbox.wire.tensors_in.__code__"),
}


@pytest.mark.parametrize("name", CHANGES)
def test_changing_the_graders_code_at_import_scores_zero(tmp_path, name):
    setup, changed = CHANGES[name]
    result = grade_source(tmp_path, attack(setup))
    assert result.score == 0 and result.status == "failed"
    assert result.diagnosis == "tampering", result.reason  # the change decided, not the bug
    assert changed in result.tampering.changed, result.tampering
    assert result.reason.startswith("your code changed the grader's"), result.reason
    data = shown_in_results_json(result)
    assert changed in data["changed"] and changed.split(":")[0] in data["kinds"]


def test_a_change_scores_zero_even_when_every_check_passes(tmp_path):
    """The answer is right and the patch only forwards: the rule, not the bug, takes the points."""
    setup, changed = CHANGES["autograd.grad"]
    result = grade_source(tmp_path, setup)
    assert result.score == 0 and result.diagnosis == "tampering"
    assert result.tampering.changed == (changed,)


def test_a_change_made_during_a_call_is_seen_after_that_call(tmp_path):
    body = "    import autograder.sandbox.wire as wire\n    wire.mutated = lambda *a: []\n"
    result = grade_source(tmp_path, attack("", body))
    assert result.score == 0 and result.diagnosis == "tampering"
    assert "grader-code: autograder.sandbox.wire.mutated" in result.tampering.changed
    assert "grader-import" in result.tampering.kinds


def test_importing_the_graders_modules_is_recorded_with_the_line(tmp_path):
    result = grade_source(tmp_path, attack(CHANGES["child._call"][0]))
    (record,) = [r for r in result.tampering.records if r.kind == "grader-import"]
    assert record.detail == "import autograder.sandbox.child" and record.where.startswith("hw2/returns.py:")


def test_closing_the_evidence_pipe_scores_zero(tmp_path):
    setup = ("import os, stat\nfor fd in range(3, 256):\n    try:\n        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
             "            os.close(fd)\n    except OSError:\n        pass")
    result = grade_source(tmp_path, attack(setup))
    assert result.score == 0 and result.diagnosis == "tampering"
    assert "reply-channel: evidence pipe (closed by your code)" in result.tampering.changed


# --------------------------------------------------------------------------- probes: flagged, the score stands
PROBES = {
    "sys._getframe": ("import sys", "    f = sys._getframe(1)\n    while f is not None and 'request' not in f.f_locals:"
                      "\n        f = f.f_back\n", "frames"),
    "inspect.stack": ("import inspect", "    callers = inspect.stack()\n", "frames"),
    "traceback frames": ("import sys", "    try:\n        raise ValueError\n    except ValueError as err:\n"
                         "        caller = err.__traceback__.tb_frame.f_back\n", "frames"),
    "gc.get_objects": ("import gc", "    requests = [o for o in gc.get_objects() if isinstance(o, dict) "
                       "and o.get('op') == 'call']\n", "gc"),
    "ctypes": ("import ctypes", "    ctypes.string_at(id(rewards), 8)\n", "ctypes"),
    "uid": ("import os", "    graded = 200000 <= os.getuid() < 300000\n", "sandbox-probe"),
    "home folder": ("import os", "    graded = 'grader-sandbox' in os.path.expanduser('~')\n", "sandbox-probe"),
    "/proc": ("", "    open('/proc/self/status').read()\n", "proc"),
    "grader's files": ("import os", "    try:\n        os.listdir('" + str(SOLUTIONS) + "')\n"
                       "    except OSError:\n        pass\n", "grader-files"),
}


@pytest.mark.parametrize("name", PROBES)
def test_a_probe_is_flagged_with_its_kind_and_line(tmp_path, name):
    setup, body, kind = PROBES[name]
    result = grade_source(tmp_path, attack(setup, body))
    assert result.score == 0 and result.diagnosis != "tampering", result.reason  # the bug's own verdict
    assert kind in result.tampering.kinds and not result.tampering.changed, result.tampering
    assert any(r.kind == kind and r.where.startswith("hw2/returns.py:") for r in result.tampering.records)
    assert kind in shown_in_results_json(result)["kinds"]


def test_a_probe_alone_leaves_a_right_answer_its_points(tmp_path):
    result = grade_source(tmp_path, "import sys\n_discounted_return = discounted_return\n\n"
                                    "def discounted_return(rewards, gamma):\n    sys._getframe(1)\n"
                                    "    return _discounted_return(rewards, gamma)\n")
    assert result.passed and result.score == result.problem.points
    assert result.tampering.kinds == ("frames",)


# --------------------------------------------------------------------------- no false alarms
@pytest.mark.parametrize("assignment", HOMEWORKS)
def test_the_reference_solutions_leave_no_record(assignment):
    problems = select(assignment=assignment, include_slow=False)
    for result in grade(SOLUTIONS, problems, reference=Reference.find(SOLUTIONS)):
        assert result.passed, result.reason
        assert not result.tampering, (result.problem.id, result.tampering)


FEW_CORRECT = ("pg_autograd_per_trajectory", "sample_numpy_buffers", "train_indices_drawn_by_hand",
               "rtg_numpy_float64_loop")


@pytest.mark.parametrize("variant", [v for v in collect("CORRECT") if v.name in FEW_CORRECT], ids=lambda v: v.name)
def test_correct_variants_leave_no_record(tmp_path, variant):
    result = grade_problem(make_submission(tmp_path, {variant.module: variant.source}), variant.problems[0])
    assert result.passed and not result.tampering, result.tampering


# --------------------------------------------------------------------------- the judge reads untrusted evidence
def evidence(lines: bytes, close: bool = True):
    """A reader of a pipe holding ``lines``, its write end closed (or still open, and returned)."""
    read, write = os.pipe()
    reader = tamper.EvidenceReader(read)  # first: it makes the pipe large enough for what follows
    os.write(write, lines)
    if close:
        os.close(write)
    return reader, write


def test_evidence_records_and_noise_are_told_apart():
    record = b'{"kind": "gc", "event": "gc.get_objects", "detail": "(-1)", "where": "hw2/returns.py:3"}\n'
    reader, _ = evidence(record + b"not json\n" + b'{"kind": "BAD KIND", "event": "", "detail": "", "where": ""}\n'
                         + b"x" * 5000 + b"\n" + record)
    found = reader.tampering(child_alive=False)
    reader.close()
    assert found.kinds == ("gc", "reply-channel") and not found.changed
    assert [r.text() for r in found.records] == ["gc.get_objects (-1) at hw2/returns.py:3"] * 2 + [
        "noise (3 lines that are not the grader's records)"]


def test_an_evidence_pipe_closed_while_the_child_runs_is_a_change():
    reader, _ = evidence(b"")
    assert reader.tampering(child_alive=True).changed == ("reply-channel: evidence pipe (closed by your code)",)
    assert not reader.tampering(child_alive=False)  # a child that died closes it too
    reader.close()


def test_evidence_is_read_without_waiting_and_within_bounds():
    line = b'{"kind": "frames", "event": "sys._getframe", "detail": "", "where": "a.py:1"}\n'
    reader, write = evidence(line * (tamper.MAX_EVIDENCE_BYTES // len(line) + 100), close=False)
    found = reader.tampering(child_alive=True)  # the write end is open: returns at once
    os.close(write)
    reader.close()
    assert not found.changed and len(found.records) == tamper.KEPT_RECORDS
    assert found.more + len(found.records) <= (tamper.MAX_EVIDENCE_BYTES + 65536) // len(line) + 1


# --------------------------------------------------------------------------- the class report
def test_the_class_report_lists_flagged_submissions(tmp_path):
    flagged = tamper.summarise([tamper.Record("frames", "sys._getframe", "", "hw2/returns.py:4")],
                               ["autograd: torch.autograd.grad"])

    def results(extra):
        return GradeRun.from_json({"score": 0, "tests": [
            {"name": "hw2/gae: GAE", "score": 0, "max_score": 4, "status": "failed", "tags": ["hw2"],
             "extra_data": {"problem": "hw2/gae", "diagnosis": "tampering", **extra}}]})

    found = class_report.ClassResults({("alice", "hw2"): results({"tampering": flagged.to_json()}),
                                       ("bob", "hw2"): results({})})
    summary = class_report.summarise(found)
    assert summary.tampering == {"alice": [("hw2/gae", ["autograd", "frames"], ["autograd: torch.autograd.grad"])]}
    text = class_report.markdown(summary, [], "course")
    assert "| alice | hw2/gae | autograd, frames | autograd: torch.autograd.grad |" in text
    assert "bob |" not in text.split("flagged for touching")[1]
