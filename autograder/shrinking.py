"""Shrinking a failure within a time budget: Hypothesis's search for the smallest failing input, bounded.

A problem whose every example is a costly sandbox round trip (many student calls) wraps its property in
``shrink_budget``: once the budget has passed since the first failure, new candidates are skipped, and the
smallest failing input found so far is reported. ``value_digest`` recognises an input by its values, so the
final replay of a failing example is never skipped.
"""

from __future__ import annotations

import functools
import hashlib
import time

import torch
from hypothesis import reject

SHRINK_SECONDS = 6.0


def value_digest(value) -> str:
    """A digest of ``value`` that depends only on its values: equal tensors (which pickle to different
    bytes), equal dicts, equal dataclasses give the same digest, so the final replay of a failing example
    is recognised and never rejected."""
    h = hashlib.sha256()

    def feed(x) -> None:
        h.update(type(x).__name__.encode() + b"\0")
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"{t.dtype}{list(t.shape)}".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        elif isinstance(x, torch.nn.Module):
            feed(x.state_dict())
        elif isinstance(x, dict):
            for k in sorted(x, key=repr):
                feed(k)
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(str(len(x)).encode())
            for v in x:
                feed(v)
        elif hasattr(x, "__dict__") and not isinstance(x, type):
            feed(vars(x))
        else:
            h.update(repr(x).encode())
        h.update(b"\1")

    feed(value)
    return h.hexdigest()


def shrink_budget(seconds: float = SHRINK_SECONDS):
    """Bound the time Hypothesis spends shrinking a failure.

    Each example here is a sandbox round trip of up to 128 student calls, and
    shrinking re-runs the check on hundreds of candidates. Once ``seconds`` have
    passed since the first failure, new candidates are rejected (skipped), so
    Hypothesis reports the smallest failing input found so far; inputs that
    already failed still run, so the final replay fails as it should.
    """

    def wrap(fn):
        failed: set[str] = set()
        first: list[float] = []

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            key = value_digest((args, sorted(kwargs.items())))
            if first and key not in failed and time.monotonic() - first[0] > seconds:
                reject()
            try:
                return fn(*args, **kwargs)
            except Exception:
                failed.add(key)
                if not first:
                    first.append(time.monotonic())
                raise

        return inner

    return wrap
