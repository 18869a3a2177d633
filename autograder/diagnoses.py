"""The catalogue of diagnosis ids: what each one means, and which only say how a check ended.

A diagnosis is a field of every problem's result (``ProblemResult.diagnosis``, ``extra_data.diagnosis`` in
results.json): a stable id, lowercase words joined by hyphens, that class reports count. Each id has a
one-line meaning, written for the instructor reading a class report. The grader's own ids are below; a
problem module adds the ids only it raises as a ``DIAGNOSES`` dict of its own, so that a new homework
brings its mistakes with its files (``catalogue()`` puts them together; tests/test_diagnoses.py checks that
every id a check can raise is in it, and that no id is declared twice).

A *generic* id says what was seen without naming a cause (a wrong value, shape or type, a value off the
reference's, an exception, a time limit): its hint is the problem's own. Every other id is *targeted*: it
names one mistake and comes with that mistake's hint, so it may be given only where the evidence pins the
mistake down (tests/test_diagnoses.py holds every buggy variant to that).
"""

from __future__ import annotations

import functools
import importlib

GENERIC_MEANINGS = {
    # the value itself: wrong, or not even the right kind of value
    "wrong-value": "a value is wrong, and no single classic mistake explains it",
    "wrong-type": "a value is of the wrong Python type (a list for a tensor, a tensor for a float, …)",
    "wrong-shape": "a tensor has the wrong shape",
    "wrong-dtype": "a tensor has the wrong dtype",
    "non-finite": "a value is nan or infinite where the right one is finite",
    "not-a-tensor": "a function returned something other than a tensor",
    "malformed-reply": "the child's account of a call could not be read as the grader expects",
    # a comparison that can only say "different": from the reference, from an expectation, from a target
    "differs-from-reference": "a hidden check: the value differs from the reference solution's",
    "biased": "the estimator's exact expectation (enumerated) is not the quantity it estimates",
    "below-target": "training ran, but the trained policy's return stayed below the target",
    "no-result": "training returned nothing the judge could evaluate",
    # how the run ended
    "time-limit": "a call ran past its time limit (an infinite loop, or far too slow)",
    "out-of-time": "the whole grade's time budget ran out before this problem could run",
    "memory-limit": "a call used more memory than its limit",
    "crashed": "the student's process died (a signal, e.g. a segfault)",
    "exited": "the student's code called exit() or os._exit()",
    "not-implemented": "the function still raises NotImplementedError (the starter's stub)",
    # the submission could not be loaded, or the grader failed
    "import-error": "a module of the submission raised while it was imported",
    "syntax-error": "a module of the submission is not valid Python",
    "missing-file": "a module of the submission is missing",
    "missing-function": "a function the homework asks for is not defined",
    "grader-error": "the grader itself failed on this problem (a bug of ours: report it)",
    "tampering": "the student's code changed the grader's code while it ran; the problem scored 0",
}
GENERIC = frozenset(GENERIC_MEANINGS)
GENERIC_PREFIXES = ("raised-",)  # raised-<ExceptionType>: the student's code raised

CORE = {
    **GENERIC_MEANINGS,
    # the sandbox and the whole grade
    "hung-on-probe": "a function never returned on its first example, so every problem that calls it scored 0 "
                     "without waiting",
    "forged-reply": "a reply reached the judge that the child's grader code did not write",
    "state-carried-over": "a function's result depends on earlier calls (state kept in a global or a default "
                          "argument)",
    "student-time-limit": "class grading stopped this student's whole grade at its budget (every problem 0)",
    "malformed-policy": "the policy sent back after training does not have the given parameters' shapes",
    "training-diverged": "the parameters after training are nan or infinite",
    "wrong-device": "a tensor came back on another device than its inputs (created without device=)",
    "wrong-length": "a list of gradients has the wrong number of entries (one per policy parameter)",
    # the side-effect contract (autograder.contract)
    "converts-input": "an argument's tensors changed dtype or device (policy.double(), .to(...))",
    "modifies-input": "an argument's values were written (in place, or a field reassigned)",
    "input-requires-grad-changed": "an argument's requires_grad flag was switched",
    "returns-grad-buffer": "a returned tensor is a parameter's .grad, which the next backward() writes into",
    "output-aliases-input": "a returned tensor shares memory with an argument (itself, or a view of it)",
    "output-shared-across-calls": "two calls returned tensors that share memory (a buffer kept between calls)",
    "constant-requires-grad": "a constant or a label (returns, advantages, the expert's labels) requires grad",
    "gradient-wrong-dtype": "a returned gradient has another dtype than its parameter",
    "reseeds-global-rng": "a function given a seed or a generator reseeded torch's, numpy's or Python's global RNG",
    # mistakes any homework can make in a value or a gradient
    "sign-flipped": "the value is exactly the negative of the right one",
    "no-gradient": "the value carries no gradient: detached, or computed outside autograd",
    "wrong-gradient": "the gradient is not the gradient of the returned value",
    "gradient-not-autograd": "the gradient does not match the slope of the student's own function (a separate "
                             "formula, or detached pieces re-attached)",
    "truncation-as-terminal": "an episode cut by the time limit is treated as terminated (no bootstrap, or "
                              "terminated=True)",
    # sampled actions (autograder.draws)
    "actions-not-sampled": "the recorded actions are the policy's mean or mode, not draws a ~ π(·|o)",
    "actions-clipped": "the recorded actions are the clipped ones the env received, not the policy's draws",
    "draws-not-independent": "the recorded actions repeat across steps or episodes: the RNG is reset or reused",
    # one optimizer step at a time (autograder.train_steps)
    "own-optimizer": "train_policy makes an optimizer of its own instead of stepping the given one",
    "optimizer-settings-changed": "train_policy changed the given optimizer's settings (its learning rate, …)",
    "wrong-optimizer-step-count": "train_policy takes another number of optimizer steps than "
                                  "cfg.train_steps_per_iter",
    "two-steps-per-minibatch": "train_policy takes two optimizer steps on each minibatch",
    "wrong-generator": "minibatches are drawn with torch's global RNG instead of the given generator",
    "wrong-minibatch-size": "minibatches are not of cfg.train_batch_size pairs (another field of the config)",
    "minibatch-reused": "one minibatch is drawn once and reused for every step",
    "whole-buffer-as-batch": "every step trains on the whole buffer instead of a minibatch",
    "no-zero-grad": "gradients are never cleared, so each step adds up every earlier gradient",
    "loss-logged-after-step": "the loss logged is the minibatch's loss after the step, not before it",
    "wrong-loss-logged": "the losses logged are not each step's minibatch loss (summed, averaged, …)",
    # DAgger's rollouts (autograder.dagger_moves)
    "mean-action-rollouts": "DAgger rolls out the learner's mean action instead of sampling from it",
    "expert-rollouts": "DAgger rolls out the expert instead of the learner",
    "stale-learner": "DAgger rolls out an earlier learner (the initial one, or one iteration behind)",
}


def is_targeted(diagnosis: str) -> bool:
    """True when ``diagnosis`` names a mistake ("" — a passed problem — names none)."""
    return bool(diagnosis) and diagnosis not in GENERIC and not diagnosis.startswith(GENERIC_PREFIXES)


def declared() -> dict[str, dict[str, str]]:
    """Where each id is declared: ``{"autograder.diagnoses": CORE, "autograder.problems.hw2_returns": {...}, …}``.
    Imports the problem modules (and so torch)."""
    from autograder.homeworks import PROBLEM_MODULES

    found = {__name__: CORE}
    for path in sorted(PROBLEM_MODULES.glob("*.py")):
        if not path.stem.startswith("_"):
            name = f"autograder.problems.{path.stem}"
            found[name] = dict(getattr(importlib.import_module(name), "DIAGNOSES", {}))
    return found


@functools.cache
def catalogue() -> dict[str, str]:
    """Every diagnosis id the grader can give, with its meaning (the grader's own and the problem modules')."""
    merged: dict[str, str] = {}
    for ids in declared().values():
        merged.update(ids)
    return merged


def meaning(diagnosis: str, known: dict[str, str] | None = None) -> str:
    """The one-line meaning of ``diagnosis`` ("" when the catalogue does not hold it)."""
    if diagnosis.startswith("raised-"):
        return f"the student's code raised {diagnosis.removeprefix('raised-')}"
    return (catalogue() if known is None else known).get(diagnosis, "")
