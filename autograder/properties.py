"""Hypothesis's ``given``, keeping the arguments of the property's failing call.

After a failure Hypothesis calls the property one last time with the shrunk input, and that call raises:
the arguments it was called with are the smallest failing input. ``given`` here wraps the property so that
each call records its arguments and a call that ends without a failure forgets them; ``last_example()`` is
then what the runner shows, as ``name=value, …`` on one line, long sequences summarised. Nothing is read
back from Hypothesis's own report text.

Per thread: problems graded side by side each run their properties in a thread of their own.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading

import hypothesis
from hypothesis.errors import UnsatisfiedAssumption

_last = threading.local()


def given(*strategies, **named):
    """``hypothesis.given``; the property's last failing call is kept for ``last_example``."""

    def decorate(test):
        signature = inspect.signature(test)

        @functools.wraps(test)
        def recorded(*args, **kwargs):
            _last.arguments = signature.bind_partial(*args, **kwargs).arguments
            try:
                value = test(*args, **kwargs)
            except UnsatisfiedAssumption:  # a rejected input is no failing input
                forget_example()
                raise
            except Exception:  # the failure: kept
                raise
            except BaseException:  # the sandbox is gone, or Hypothesis stopped the call: no input to show
                forget_example()
                raise
            forget_example()
            return value

        return hypothesis.given(*strategies, **named)(recorded)

    return decorate


def forget_example() -> None:
    _last.arguments = None


def last_example() -> str:
    """The arguments of the last property call that failed in this thread (since ``forget_example``), as
    ``name=value, …``; empty when the failure came from no property call."""
    arguments = getattr(_last, "arguments", None)
    if not arguments:
        return ""
    return summarise(", ".join(f"{name}={_one_line(repr(value))}" for name, value in arguments.items()))


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text)


EXAMPLE_CHARS = 300
_LONG_SEQUENCE = re.compile(r"\[([^\[\]]{60,})\]")


def summarise(text: str, limit: int = EXAMPLE_CHARS) -> str:
    """``text`` with every long bracketed sequence shown as its first and last values and its length
    (``[1.0, 2.0, 3.0, …, 9.0, 10.0] (1500 values)``), then cut in the middle if still over ``limit``."""
    def short(match: re.Match) -> str:
        items = [item.strip() for item in match.group(1).split(",")]
        if len(items) <= 6:
            return match.group(0)
        if items[-1] == "...":  # a value's repr that already stopped after its first items
            return f"[{', '.join(items[:3])}, …] (more than {len(items) - 1} values)"
        return f"[{', '.join(items[:3])}, …, {', '.join(items[-2:])}] ({len(items)} values)"

    text = _LONG_SEQUENCE.sub(short, text)
    if len(text) > limit:
        text = text[: limit * 2 // 3] + " … " + text[-(limit // 3 - 3):]
    return text


__all__ = ["given", "forget_example", "last_example", "summarise"]
