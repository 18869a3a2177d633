"""The fork server every sandboxed child is forked from: one per judge, started first.

It imports trusted modules only (torch, numpy, gymnasium, the given code, the
grader's child side), never the submission or the reference, so a fresh child
per problem costs milliseconds rather than a torch import. ``start()`` is cheap
in the judge: the server imports in its own process, on another core, while the
judge imports its own modules, so the two start-up costs overlap. This module
imports nothing heavy, so the command line can start the server before it
imports torch.
"""

from __future__ import annotations

import multiprocessing
import os

# Imported once by the fork server, so every child starts with them. The grader's own modules among them are
# those whose objects requests carry (unpickled in the child, which cannot read the grader's files).
PRELOAD = ["torch", "torch.optim", "numpy", "gymnasium", "rlkit.trajectory", "rlkit.policies", "rlkit.imitation",
           "rlkit.pg_agent", "autograder.tabular", "autograder.child_tasks", "autograder.sandbox.child"]

# Imported by torch.optim when the first optimizer is made: preloaded when a problem trains (see
# the TRAINING set of the problems package); 1.4 s of the fork server's start that other grades need not wait for.
OPTIMIZER_PRELOAD = ["torch._dynamo"]

_context = None


def start(optimizers: bool = True):
    """The fork server's multiprocessing context, starting the server on the first call (preloading what
    optimizers need unless ``optimizers`` is False)."""
    global _context
    if _context is None:
        from multiprocessing import forkserver

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD + (OPTIMIZER_PRELOAD if optimizers else []))
        # A fixed hash seed: student code iterating over a set of strings sees the same order every run.
        saved = os.environ.get("PYTHONHASHSEED")
        os.environ["PYTHONHASHSEED"] = "0"
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONHASHSEED"]
            else:
                os.environ["PYTHONHASHSEED"] = saved
        _context = context
    return _context
