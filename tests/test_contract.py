"""The side-effect contract's parts, one question each: what the child observes (autograder.sandbox.effects) and
what the judge concludes from it (autograder.contract). Whole submissions breaking the contract are variants in
instructor/variants (graded by tests/test_variants.py, their diagnoses pinned in tests/test_diagnoses.py)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from autograder import contract
from autograder.compare import Mismatch
from autograder.sandbox import effects, wire


# --------------------------------------------------------------------------- replies are copies
def test_a_packed_tensor_is_a_copy_taken_when_it_is_packed():
    """On the CPU too: a later write into the tensor (the next backward() into a .grad) leaves the reply alone."""
    grad = torch.ones(3)
    packed = wire.pack(grad)["__tensor__"]
    grad.add_(1.0)
    assert packed.tolist() == [1.0, 1.0, 1.0]
    assert packed.untyped_storage().data_ptr() != grad.untyped_storage().data_ptr()


# --------------------------------------------------------------------------- reseeding, as the child sees it
def _watched(action, seeds=()):
    """Seed as the child does before a call, watch, run ``action``; the RNGs it reseeded."""
    torch.default_generator.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    watch = effects.RngWatch(seeds)
    action()
    return watch.reseeded()


def test_the_mark_leaves_torchs_stream_as_it_was():
    torch.default_generator.manual_seed(0)
    want = torch.rand(5)
    assert _watched(lambda: None) == []
    assert torch.equal(torch.rand(5), want)  # the draws a call sees are seed 0's, as before the mark


@pytest.mark.parametrize("reseed", [lambda: torch.manual_seed(0), lambda: torch.manual_seed(7),
                                    lambda: torch.manual_seed(2**40 + 3), lambda: torch.seed(),
                                    lambda: torch.set_rng_state(torch.Generator().manual_seed(5).get_state())],
                         ids=["manual_seed_0", "manual_seed_7", "manual_seed_large", "seed", "set_rng_state"])
def test_any_reseed_of_torchs_global_generator_is_seen(reseed):
    assert _watched(lambda: (reseed(), torch.rand(100))) == ["torch"]


def test_draws_and_a_forked_rng_are_not_reseeds():
    def draw_and_fork():
        torch.randn(1000)
        with torch.random.fork_rng():
            torch.manual_seed(3)
            torch.rand(3)
        np.random.standard_normal(5000)
        random.random()

    assert _watched(draw_and_fork, seeds=[3]) == []


@pytest.mark.parametrize("seed", [3, 42])
def test_numpy_and_random_reseeded_with_the_calls_seed_or_a_usual_one_are_seen(seed):
    def reseed_and_draw():
        np.random.seed(seed)
        np.random.standard_normal(2000)  # several twists of the state after the reseed
        random.seed(seed)
        random.random()

    assert _watched(reseed_and_draw, seeds=[3]) == ["numpy", "random"]


def test_a_guarded_student_function_reports_its_reseed_with_the_task():
    watch = effects.TaskWatch()
    with effects.given_a_seed("train_policy", [torch.Generator().manual_seed(5)]):
        torch.manual_seed(5)
    assert effects.validated(watch.report(None, [], {}))["reseeded"] == [["train_policy", "torch"]]
    assert effects.validated(effects.TaskWatch().report(None, [], {}))["reseeded"] == []


# --------------------------------------------------------------------------- the judge's conclusions
class _Box:  # what the contract needs of a Sandbox: its device, and to be the key of what it returned
    device = "cpu"


def _reply(value, outputs=(), arena=None):
    """A reply to discounted_reward_to_go(rewards, gamma) whose account lists ``outputs`` [(path, start, end)] on
    the CPU and no argument tensors, in the wire's form, read as the judge reads it."""
    rows = [(effects.OUTPUT, i, 0, start, end) for i, (_, start, end) in enumerate(outputs)]
    rows += [(effects.ARENA, 0, 0, *arena)] if arena else []
    notes = {"paths": [path for path, _, _ in outputs], "requires_grad": "0", "reseeded": []}
    raw = {"ranges": torch.tensor(rows, dtype=torch.int64).reshape(-1, 5), "notes": json.dumps(notes)}
    return {"value": value, "mutated": [], "after": [[0], []], "contract": effects.validated(raw)}


def _check(reply, box=None):
    contract.check_call(box or _Box(), "hw2.returns", "discounted_reward_to_go", (torch.zeros(3), 0.5), {}, reply)


def test_an_output_inside_the_judges_arena_is_an_alias_whatever_the_child_says_of_its_inputs():
    """The child lists no argument tensors at all; the output's memory lies in the mapping of the request: the judge
    concludes from the two ranges itself."""
    with pytest.raises(Mismatch) as err:
        _check(_reply(torch.zeros(3), [("", 5000, 5012)], arena=[4096, 8192]))
    assert err.value.diagnosis == "output-aliases-input"


def test_an_output_beside_the_arena_is_its_own():
    _check(_reply(torch.zeros(3), [("", 8192, 8204)], arena=[4096, 8192]))


def test_memory_returned_twice_in_one_sandbox_is_seen_across_requests():
    box = _Box()
    _check(_reply(torch.zeros(3), [("", 100, 400)]), box)
    _check(_reply(torch.zeros(3), [("", 1000, 1012)]), box)
    _check(_reply(torch.zeros(3), [("", 400, 412)]), box)  # touches the first, never overlaps it
    with pytest.raises(Mismatch) as err:
        _check(_reply(torch.zeros(3), [("", 300, 312)]), box)  # inside the first, long range
    assert err.value.diagnosis == "output-shared-across-calls"
    _check(_reply(torch.zeros(3), [("", 300, 312)]))  # another sandbox: another child


def test_a_reward_to_go_that_requires_grad_breaks_the_contract():
    value = torch.zeros(3)
    value.sandbox_requires_grad = True
    with pytest.raises(Mismatch) as err:
        _check(_reply(value))
    assert err.value.diagnosis == "constant-requires-grad"


def test_a_reply_without_its_account_of_side_effects_is_malformed():
    from autograder.sandbox import SandboxFatal

    with pytest.raises(SandboxFatal):
        _check({**_reply(torch.zeros(3)), "contract": None})
    notes = json.dumps({"paths": [""], "requires_grad": "", "reseeded": [["f", "torch"]]})

    def account(row, text=notes):
        return effects.validated({"ranges": torch.tensor([row]), "notes": text})

    assert account([effects.OUTPUT, 0, 0, 2, 5])
    assert account([effects.OUTPUT, 0, 0, 5, 2]) is None  # ends before it starts
    assert account([effects.OUTPUT, 0, 9, 2, 5]) is None  # no such device
    assert account([effects.OUTPUT, 1, 0, 2, 5]) is None  # no path for it
    assert account([effects.OUTPUT, 0, 0, 2, 5], "{") is None


def test_parameter_names_come_from_the_starter():
    assert contract.parameter_names("hw2.returns", "generalized_advantages") == (
        "rewards", "values", "gamma", "lam", "terminated")
