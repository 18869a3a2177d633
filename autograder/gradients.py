"""The gradients a student's function reports, checked: one tensor per parameter (``grad_list``), and the
slope of the student's own function values along fixed directions (``check_slope``)."""

from __future__ import annotations

import torch

from autograder.compare import Mismatch, describe, expect_tensor

F64 = torch.float64
FD_STEP = 1e-4


def check_slope(fn, x: torch.Tensor, rest: tuple, kwargs: dict, cotangent, grad: torch.Tensor, name: str,
                shape: list[int]) -> None:
    """The gradient the child reported, checked in the judge against the student's own function values:
    the central difference (f(x + εd) − f(x − εd)) / 2ε of ⟨c, f⟩ along two fixed directions d must match
    ⟨grad, d⟩, each value f(x ± εd) of the ``shape`` f(x) has. Tolerance 1e-3 of the magnitudes involved: far
    above float64 rounding (and float32 inside, ≈ 6e-8 · |f| / ε), far below a gradient that is not the
    function's."""
    x64 = x.to(F64)
    directions = [torch.ones_like(x64), torch.cos(torch.arange(x64.numel(), dtype=F64) * 1.7).reshape(x64.shape)]
    calls = [((x64 + s * FD_STEP * d, *rest), kwargs) for d in directions for s in (1.0, -1.0)]
    values = fn.map(calls)
    for k, d in enumerate(directions):
        plus, minus = (expect_tensor(v, name=name, shape=shape).to(F64) for v in values[2 * k: 2 * k + 2])
        weight = torch.ones_like(plus) if cotangent is None else cotangent.to(F64)
        slope = float(((plus - minus) * weight).sum()) / (2 * FD_STEP)
        claimed = float((grad.to(F64) * d).sum())
        scale = abs(claimed) + float((grad.to(F64).abs() * d.abs()).sum()) + float(plus.abs().max()) + 1e-9
        if not abs(slope - claimed) <= 1e-3 * scale:
            raise Mismatch(f"the gradient reported for {name} is not the slope of your own function: along a "
                           f"fixed direction its values change at rate {slope:.6g}, the reported gradient says "
                           f"{claimed:.6g}",
                           "the gradient must come from autograd through the very computation that returns the "
                           "value: no separate formula, no detached pieces re-attached", "gradient-not-autograd")


def grad_list(value, name: str, shapes: list, device: str) -> list[torch.Tensor]:
    """The student's list of per-parameter gradients, type/shape/device checked."""
    if not isinstance(value, (list, tuple)):
        raise Mismatch(f"{name} should return a list with one tensor per policy.parameters() "
                       f"({len(shapes)} here, shapes {[list(s) for s in shapes]}), but returned {describe(value)}",
                       "return [g_p for p in policy.parameters()], e.g. list(torch.autograd.grad(surrogate, params))",
                       "wrong-type")
    if len(value) != len(shapes):
        raise Mismatch(f"{name} returned a list of {len(value)} items, expected {len(shapes)} "
                       f"(one per policy.parameters(), shapes {[list(s) for s in shapes]})",
                       diagnosis="wrong-length")
    return [expect_tensor(v, name=f"{name}(…)[{i}]", shape=s, device=device) for i, (v, s) in enumerate(zip(value, shapes))]
