"""Checks on returned values that explain themselves.

Every failure is a ``Mismatch`` whose message names the function and shows
expected vs got (shape, dtype, device or value). The runner adds the shrunk
input and the problem's hint.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from autograder.sandbox.wire import TRAJECTORY_FIELDS, NumpyArray, Unsupported
from rlkit.trajectory import Trajectory


def nan_as_inf(t: Tensor) -> Tensor:
    """``t`` with every NaN made +inf, so that a NaN error is the largest error, never an unnoticed one
    (every comparison with NaN is False)."""
    return torch.where(torch.isnan(t), torch.full_like(t, math.inf), t)


def within(got, want, tol) -> bool:
    """|got − want| ≤ tol at every entry: numbers, or tensors of one shape (any dtypes, compared in float64), with
    ``tol`` a number or a tensor of one bound per entry. False for a NaN, and for ±inf where ``want`` is finite.

    The one way a check that decides a verdict compares numbers: ``abs(a − b) > tol`` reads "no mistake" for a
    NaN (every comparison with NaN is False), and torch.allclose raises on two dtypes."""
    if isinstance(got, Tensor) or isinstance(want, Tensor):
        g = torch.as_tensor(got).detach().to(device="cpu", dtype=torch.float64)
        w = torch.as_tensor(want).detach().to(device="cpu", dtype=torch.float64)
        if g.shape != w.shape:
            return False
        bound = tol.detach().to(device="cpu", dtype=torch.float64) if isinstance(tol, Tensor) else float(tol)
        return bool((nan_as_inf((g - w).abs()) <= bound).all())
    return abs(float(got) - float(want)) <= tol


def same_value(a, b) -> bool:
    """Equal to the last bit (NaN equal to NaN), through lists, tuples, dicts and a Trajectory's fields; two
    numpy arrays by their values, two values of an unsupported type by their type."""
    if isinstance(a, NumpyArray) and isinstance(b, NumpyArray):
        return same_value(a.tensor, b.tensor)
    if isinstance(a, Unsupported) and isinstance(b, Unsupported):
        return a.type_name == b.type_name
    if isinstance(a, Trajectory) and isinstance(b, Trajectory):
        return all(same_value(getattr(a, f), getattr(b, f)) for f in TRAJECTORY_FIELDS)
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            ((a == b) | (a.isnan() & b.isnan())).all() if a.is_floating_point() else (a == b).all())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if not isinstance(a, (Tensor, list, tuple, dict)) else False


STATE_HINT = ("a function of its inputs must give the same answer every time: nothing may carry over between "
              "calls. The usual culprits: .backward() on a policy whose .grad is never cleared (gradients add up "
              "call after call: zero them first, or take the gradient without touching .grad), a global or a "
              "mutable default argument used as a cache, or an input modified in place")


class Mismatch(AssertionError):
    """The student's value is wrong. ``hint`` overrides the problem's hint; ``diagnosis`` is the mistake's
    stable id (lowercase words joined by hyphens, e.g. "grad-accumulates"), which class reports count."""

    def __init__(self, message: str, hint: str | None = None, diagnosis: str | None = None, *,
                 expected: str = "", got: str = "", expected_label: str = "expected"):
        super().__init__(message)
        self.hint = hint
        self.diagnosis = diagnosis
        # the two values compared, rendered: shown under the message (``expected_label`` names the first row
        # when it is not the true answer)
        self.expected, self.got, self.expected_label = expected, got, expected_label


def fmt(x, limit: int = 8) -> str:
    """A short, readable rendering of a value."""
    if isinstance(x, Tensor):
        x = x.detach().cpu()
        if x.dim() == 0:
            return f"{x.item():.6g}"
        flat = x.reshape(-1).tolist()
        body = ", ".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in flat[:limit])
        more = f", … ({x.numel()} values)" if x.numel() > limit else ""
        return f"[{body}{more}]" if x.dim() == 1 else f"shape {list(x.shape)}: [{body}{more}]"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


DESCRIBED_CHARS = 120


def describe(value) -> str:
    """What a student's function returned, in a few words: its type, and its shape or its first values."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {list(value.shape)}, dtype {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, NumpyArray):
        return f"a numpy array of shape {list(value.tensor.shape)}"
    if isinstance(value, Unsupported):
        return f"a {value.type_name}"
    if isinstance(value, Trajectory):
        return "a Trajectory"
    if isinstance(value, (list, tuple)) and not all(isinstance(v, (int, float)) for v in value):
        items = ", ".join(describe(v) for v in value[:3]) + (", …" if len(value) > 3 else "")
        return f"{type(value).__name__} of {len(value)} items ({items})"
    if isinstance(value, dict):
        return f"dict with keys {_short(repr(list(value)))}"
    return f"{type(value).__name__} {_short(fmt(value))}"


def _short(text: str) -> str:
    return text if len(text) <= DESCRIBED_CHARS else text[: DESCRIBED_CHARS - 1] + "…"


def expect_tensor(value, *, name: str, shape=None, dtype: torch.dtype | None = None,
                  device: str | None = None, finite: bool = True) -> Tensor:
    """The value as a tensor, after checking its type, shape, dtype and device."""
    if not isinstance(value, Tensor):
        hint = "convert with torch.as_tensor(...) / torch.from_numpy(...)" if isinstance(value, NumpyArray) else None
        raise Mismatch(f"{name} should return a torch.Tensor, but returned {describe(value)}", hint,
                       "not-a-tensor")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise Mismatch(f"{name} returned shape {list(value.shape)}, expected shape {list(shape)}",
                       "check which dimension you reduce over, and for stray unsqueeze/keepdim", "wrong-shape")
    if dtype is not None and value.dtype != dtype:
        raise Mismatch(f"{name} returned dtype {value.dtype}, expected {dtype} (the input's dtype)",
                       "compute in any precision you like, but return the input's dtype (e.g. `.to(rewards.dtype)`)",
                       "wrong-dtype")
    if device is not None and getattr(value, "sandbox_device", device) != device:
        raise Mismatch(f"{name} returned a tensor on {value.sandbox_device}, expected it on {device} (the input's device)",
                       "create new tensors with device=rewards.device (or torch.zeros_like / new_zeros)", "wrong-device")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = (~torch.isfinite(value)).nonzero()[0].tolist()
        raise Mismatch(f"{name} returned a non-finite value (nan or inf) at index {bad}: {fmt(value)}",
                       diagnosis="non-finite")
    return value


def expect_trajectory(value, name: str) -> Trajectory:
    """The value as an ``rlkit.trajectory.Trajectory``, after checking its type."""
    if not isinstance(value, Trajectory):
        raise Mismatch(f"{name} should return an rlkit.trajectory.Trajectory, but returned {describe(value)}",
                       diagnosis="wrong-type")
    return value


def expect_flag(value, name: str) -> bool:
    """A returned ``terminated`` flag as a bool: a bool, an int or a one-element tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return bool(value.reshape(()).item())
    if isinstance(value, (bool, int)):
        return bool(value)
    raise Mismatch(f"{name}: terminated should be a bool, got {value!r}", diagnosis="wrong-type")


def tolerance(dtype: torch.dtype, scale: float, n: int = 1) -> float:
    """Absolute tolerance for a quantity of magnitude ``scale`` built from ``n``
    floating-point operations: generous for rounding in float32 whatever the
    input dtype (a student may compute discounts in float32 on float64 input,
    or sum in any order), yet far below the size of a real mistake."""
    eps = max(torch.finfo(dtype).eps if dtype.is_floating_point else 0.0, torch.finfo(torch.float32).eps)
    return 16 * eps * (n + 1) * max(scale, 1e-30) + 1e3 * torch.finfo(torch.float64).tiny


def sum_tolerance(dtype: torch.dtype, magnitudes: float, n: int) -> float:
    """Absolute error bound for a sum of ``n`` terms whose absolute values add up to ``magnitudes``, each term
    a product of at most ``n`` rounded factors (a discount γ^t by repeated multiplication), computed in float32
    or better, IN ANY ORDER: Higham (2002, §4.2) gives |error| ≤ (n − 1)·u·Σ|x_i| for the sum and (n + 1)·u
    relative error per term, so ≤ 2n·u·magnitudes with u = eps/2; we allow twice that, (2n + 1)·eps·magnitudes.

    ``magnitudes`` is what is actually summed: Σ_k γ^k |r_k| for a discounted sum, not Σ_k |r_k|, so a
    1500-step return at γ = 0.99 is checked to about 0.1, where a reversed or shifted one is off by units.

    Below float32's smallest normal number (1.2e-38) rounding is absolute, not relative: a γ of 1e-165 makes
    γ·r vanish in float32. Each term may lose up to that much, hence 16 (n + 1) · tiny₃₂ on top."""
    eps = max(torch.finfo(dtype).eps if dtype.is_floating_point else 0.0, torch.finfo(torch.float32).eps)
    return (2 * n + 1) * eps * magnitudes + 16 * (n + 1) * torch.finfo(torch.float32).tiny


def discounted_magnitudes(terms: Tensor, rate: float, per_step: bool = False) -> float | Tensor:
    """max_t Σ_{k≥t} rate^(k−t) |terms_k|: the largest sum of magnitudes a discounted sum from any step adds up;
    with ``per_step``, the vector of those sums, one per step t (a tolerance for each step: the last steps of a
    long episode add up few terms, so a mistake there is not hidden by the size of the whole sum)."""
    sums, total = [], 0.0
    for x in reversed(terms.detach().abs().to(torch.float64).tolist()):
        total = x + rate * total
        sums.append(total)
    if per_step:
        return torch.tensor(sums[::-1], dtype=torch.float64)
    return max(sums, default=0.0)


def recognise(err: Mismatch, got: Tensor, want: Tensor, atol, candidates) -> None:
    """If the wrong answer is exactly one of the classic mistakes (and that mistake gives a different answer
    than the right one on this input), name it: its diagnosis id and hint replace the generic ones. When two
    different mistakes give this same answer, the input cannot tell them apart: nothing is named (a wrong
    hint misleads more than the generic one)."""
    got64, want64 = got.detach().to(torch.float64).cpu(), want.to(torch.float64)
    bound = atol if isinstance(atol, Tensor) else torch.tensor(float(atol), dtype=torch.float64)
    matches = {}
    for diagnosis, candidate, hint in candidates:
        if candidate.shape != got64.shape or bool(((candidate - want64).abs() <= bound).all()):
            continue
        if bool(((got64 - candidate).abs() <= 2 * bound + 1e-9 * candidate.abs()).all()):
            matches.setdefault(diagnosis, hint)
    if len(matches) == 1:
        err.diagnosis, err.hint = next(iter(matches.items()))


def assert_close(got: Tensor, expected: Tensor, *, name: str, atol: float | Tensor, label: str = "entry",
                 hint: str | None = None, expected_is: str = "", diagnosis: str = "wrong-value") -> None:
    """Elementwise |got − expected| ≤ atol (a number, or a tensor of one per entry), else a Mismatch at the
    worst entry (the one furthest past its own tolerance).

    ``expected_is`` says what the expected vector is when it is not simply the
    right answer (e.g. an identity built from the student's own output)."""
    got64, exp64 = got.detach().to(torch.float64).cpu(), expected.detach().to(torch.float64).cpu()
    if got64.shape != exp64.shape:
        raise Mismatch(f"{name} returned shape {list(got.shape)}, expected shape {list(expected.shape)}",
                       diagnosis="wrong-shape")
    err = (got64 - exp64).abs()
    err = nan_as_inf(err)
    bound = (atol.to(torch.float64).cpu() if isinstance(atol, Tensor) else torch.tensor(float(atol), dtype=torch.float64))
    bound = bound.expand_as(err)
    if err.numel() == 0 or bool((err <= bound).all()):
        return
    worst = int((err - bound).reshape(-1).argmax())
    atol = float(bound.reshape(-1)[worst])
    index = list(torch.unravel_index(torch.tensor(worst), got.shape)) if got.dim() else []
    where = f" at {label} {', '.join(str(int(i)) for i in index)}" if index else ""
    if expected_is:  # not the right answer but what the student's own values imply: say so, never "expected"
        head = (f"{name} is inconsistent{where}: your values imply {fmt(exp64.reshape(-1)[worst])} there, "
                f"got {fmt(got64.reshape(-1)[worst])} (tolerance {atol:.2g})")
        raise Mismatch(head, hint, diagnosis, expected=f"{fmt(exp64)}   ← {expected_is}: what each entry would be if "
                                                  "your next one were right (not the true answer)",
                       got=fmt(got64), expected_label="implied")
    head = (f"{name} is wrong{where}: expected {fmt(exp64.reshape(-1)[worst])}, got "
            f"{fmt(got64.reshape(-1)[worst])} (tolerance {atol:.2g})")
    raise Mismatch(head, hint, diagnosis, expected=fmt(exp64), got=fmt(got64))


def load_checked_parameters(policy: torch.nn.Module, params, hint: str) -> torch.nn.Module:
    """Load parameters a training run in the child returned into the judge's own ``policy``,
    after checking they are exactly its parameter names, shapes, and finite floats."""
    expected = policy.state_dict()
    if not isinstance(params, dict) or set(params) != set(expected):
        raise Mismatch("the training run returned malformed policy parameters",
                       "did your code replace the policy the given code built, or modify the given code?",
                       "malformed-policy")
    for name, want in expected.items():
        got = params[name]
        if not isinstance(got, Tensor) or got.shape != want.shape or not got.is_floating_point() \
                or not torch.isfinite(got).all():
            raise Mismatch(f"the trained policy's parameter {name} is not a finite float tensor of shape "
                           f"{list(want.shape)} (the training diverged: nan or inf?)", hint, "training-diverged")
    policy.load_state_dict({name: params[name].to(torch.float32) for name in expected})
    return policy
