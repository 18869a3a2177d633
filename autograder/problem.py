"""What a graded problem is, and what its check receives.

A problem is a function ``check(ctx)`` registered with ``@problem``. It raises
(a ``Mismatch``, or a sandbox error) to fail and returns to pass. Public
problems use properties and independent oracles only; problems registered with
``needs_reference=True`` compare with the reference solutions and are hidden
from students (they run only where ``solutions/`` is present).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, settings

from autograder.sandbox import Sandbox

settings.register_profile(
    "grader",
    derandomize=True,
    deadline=None,
    max_examples=20,
    report_multiple_bugs=False,
    print_blob=False,
    verbosity=Verbosity.normal,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
GRADER_SETTINGS = settings.get_profile("grader")


def grader_settings(**overrides) -> settings:
    """The grader profile with a few fields changed (``max_examples=8`` where each example is costly)."""
    return settings(GRADER_SETTINGS, **overrides)


@dataclass(frozen=True)
class Problem:
    assignment: str
    name: str
    points: float
    stubs: tuple[tuple[str, str], ...]  # (module, function) the check calls
    check: Callable[["Context"], None]
    hint: str
    title: str
    needs_reference: bool = False
    seconds: float = 30.0
    slow: bool = False  # integration problems that train a policy

    @property
    def id(self) -> str:
        return f"{self.assignment}/{self.name}"

    @property
    def visibility(self) -> str:
        return "after_published" if self.needs_reference else "visible"


REGISTRY: dict[str, Problem] = {}


def problem(assignment: str, name: str, *, points: float, stubs, hint: str, needs_reference: bool = False,
            seconds: float = 30.0, slow: bool = False):
    """Register ``check(ctx)`` as a graded problem. Its docstring's first line is the title."""

    def register(check):
        title = (check.__doc__ or name).strip().splitlines()[0]
        item = Problem(assignment, name, points, tuple(stubs), check, hint, title, needs_reference, seconds, slow)
        if item.id in REGISTRY:
            raise ValueError(f"problem {item.id} registered twice")
        REGISTRY[item.id] = item
        return check

    return register


class StudentFunction:
    """A student function, callable from the judge; the call runs in the sandbox. Every call is held to the
    side-effect contract (``autograder.contract``: inputs kept, outputs its own, constants constant, no global
    reseed) and every value it returns has been through ``autograder.returned.check_returned`` (a Trajectory
    reaches the problem's code with fields of the types its docstring gives) before the problem sees it."""

    def __init__(self, sandbox: Sandbox, module: str, function: str):
        self.sandbox, self.module, self.function = sandbox, module, function

    def __call__(self, *args, **kwargs):
        return self.call(*args, **kwargs)["value"]

    def call(self, *args, grad_wrt: tuple[int, ...] = (), cotangent=None, **kwargs) -> dict:
        """The whole reply: ``value``, ``mutated`` argument indices, ``grads``."""
        from autograder import contract
        from autograder.returned import check_returned

        reply = self.sandbox.call(self.module, self.function, args, kwargs, grad_wrt, cotangent)
        contract.check_call(self.sandbox, self.module, self.function, args, kwargs, reply, grad_wrt)
        check_returned(reply["value"], self.function)
        return reply

    def map(self, calls: list[tuple[tuple, dict]]) -> list:
        """Many calls in one round trip. The first call is made again at the end, with the very same
        objects: a different answer means state carried over between calls, said as such. Every value is a
        copy taken when its call returned, so a later call of the batch cannot change an earlier value."""
        from autograder import contract
        from autograder.compare import STATE_HINT, Mismatch, same_value
        from autograder.returned import check_returned

        if not calls:
            return []
        batch = [*calls, calls[0]]
        reply = self.sandbox.map(self.module, self.function, batch)
        contract.check_batch(self.sandbox, self.module, self.function, batch, reply)
        values = reply["value"]
        for value in values:
            check_returned(value, self.function)
        if not same_value(values[0], values[-1]):
            raise Mismatch(f"{self.function} gave two different answers to the same input (its first call of "
                           f"the batch, made again after the other {len(calls) - 1}): state carried over between "
                           "calls", STATE_HINT, "state-carried-over")
        return values[:-1]


class ChildTask:
    """Grader code run in the sandbox with the student's module (see ``autograder.child_tasks``)."""

    def __init__(self, sandbox: Sandbox, name: str, module: str):
        self.sandbox, self.name, self.module = sandbox, name, module

    def __call__(self, *args, **kwargs):
        from autograder import contract

        reply = self.sandbox.task(self.name, self.module, args, kwargs)
        contract.check_task(reply)
        return reply["value"]


class Reference:
    """The reference solutions, imported in the judge process only."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._modules: dict[str, object] = {}
        self._lock = threading.Lock()  # problems graded in parallel threads import through sys.path

    @classmethod
    def find(cls, root: Path) -> "Reference | None":
        return cls(root) if (Path(root) / "hw2" / "returns.py").is_file() else None

    def __call__(self, module: str, function: str) -> Callable:
        with self._lock:
            if module not in self._modules:
                sys.path.insert(0, str(self.root))
                try:
                    self._modules[module] = importlib.import_module(module)
                finally:
                    sys.path.remove(str(self.root))
        return getattr(self._modules[module], function)


@dataclass
class Context:
    sandbox: Sandbox
    device: str
    reference: Reference | None = None
    notes: list[str] = field(default_factory=list)

    def student(self, module: str, function: str) -> StudentFunction:
        return StudentFunction(self.sandbox, module, function)

    def task(self, name: str, module: str) -> ChildTask:
        return ChildTask(self.sandbox, name, module)

    def limit(self, seconds: float, label: str):
        """``with ctx.limit(20, "the pre-check before training"):`` the student calls and tasks inside get at most
        ``seconds`` (within the problem's own limit), so a hang there costs that, not the problem's whole limit."""
        return self.sandbox.limited(seconds, label)

    def ref(self, module: str, function: str) -> Callable:
        if self.reference is None:
            raise RuntimeError("this problem needs the reference solutions")
        return self.reference(module, function)
