"""Which diagnosis ids name a mistake and which only say how a check ended.

A *generic* id says what was seen without naming a cause (a wrong value, shape or type, a value off the
reference's, an exception, a time limit): its hint is the problem's own. Every other id is *targeted*: it
names one mistake and comes with that mistake's hint, so it may be given only where the evidence pins the
mistake down (tests/test_diagnoses.py holds every buggy variant to that).
"""

from __future__ import annotations

GENERIC = frozenset({
    # the value itself: wrong, or not even the right kind of value
    "wrong-value", "wrong-type", "wrong-shape", "wrong-dtype", "non-finite", "not-a-tensor", "malformed-reply",
    # a comparison that can only say "different": from the reference, from an expectation, from a target
    "differs-from-reference", "biased", "below-target", "no-result",
    # how the run ended
    "time-limit", "out-of-time", "memory-limit", "crashed", "exited", "not-implemented",
    # the submission could not be loaded, or the grader failed
    "import-error", "syntax-error", "missing-file", "missing-function", "grader-error", "tampering",
})
GENERIC_PREFIXES = ("raised-",)  # raised-<ExceptionType>: the student's code raised


def is_targeted(diagnosis: str) -> bool:
    """True when ``diagnosis`` names a mistake ("" — a passed problem — names none)."""
    return bool(diagnosis) and diagnosis not in GENERIC and not diagnosis.startswith(GENERIC_PREFIXES)
