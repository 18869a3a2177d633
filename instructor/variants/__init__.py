"""The library of student implementations the grader is tested against.

``BUGGY`` variants are realistic mistakes: each must lose the points of every
problem it lists. ``CORRECT`` variants are alternative right answers
(vectorised, looped, float64 inside, another autograd route): each must keep
full marks on every problem it lists. Grow this whenever you think of a new
student mistake: add a ``Variant`` to the module of its homework part.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    name: str
    module: str  # the submission file the source is appended to, e.g. "hw2/returns.py"
    source: str
    problems: tuple[str, ...]  # buggy: must fail each; correct: must pass each
    reason: str = ""  # buggy only: a phrase the failure reason must contain
    diagnosis: str = ""  # buggy only: the diagnosis id every listed problem must give
    # buggy only: the diagnosis id one listed problem must give, where problems name the mistake differently
    # (each problem's evidence is its own); every other targeted id a listed problem gives is a wrong diagnosis
    diagnoses: dict[str, str] = field(default_factory=dict)

    def diagnosis_on(self, problem: str) -> str:
        """The diagnosis id ``problem`` must give this variant ("" where none is pinned)."""
        return self.diagnoses.get(problem, self.diagnosis)

    @property
    def id(self) -> str:
        """The test id: the homework, then the name (``-k hw2`` selects one homework's variants)."""
        return f"{self.module.split('/')[0]}-{self.name}"


def collect(kind: str) -> list[Variant]:
    """Every ``BUGGY`` or ``CORRECT`` variant of every module in this package."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += getattr(module, kind, [])
    return found
