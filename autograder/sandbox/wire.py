"""What travels between the judge and the child, and how the judge reads it.

Requests (judge → child) are pickled (``dumps_request``): the judge is trusted,
the child reads them before any student code can change anything. Tensors travel
as their raw bytes, dtype and shape, rebuilt with one ``frombuffer``: torch's own
pickling costs about 0.2 ms per tensor, and a batch of 80 trajectories holds 400.
Replies (child → judge) are packed into tensors, numbers, strings and tagged
dicts (``pack``); each tensor becomes a ``(RAW_TENSOR, dtype, shape, bytes)``
tuple, and the whole is pickled (``dumps_reply``). The judge reads it with an
unpickler that resolves no global at all (``loads_reply``), so a reply can hold
only containers, numbers, strings and bytes, and can run no code; tensors are
rebuilt only from a readable dtype, a small shape and exactly the bytes it needs.
Student code in the child can forge a reply, so ``decode`` checks every field:
a malformed reply is a failure of the submission, never code run in the judge
nor an error of the grader.

A failed reply is structured: ``kind`` (not_implemented, error, fatal, load),
``type``, ``message`` and, where the student's code is involved, ``function``,
``file`` and ``line`` of the innermost frame in the submission.
"""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import torch

from rlkit.trajectory import Trajectory

READY = b"sandbox ready"
MAX_REPLY_BYTES = 256 * 2**20
TRAJECTORY_FIELDS = ("observations", "actions", "rewards", "terminated", "behavior_log_probs", "final_observation")
MAX_DEPTH = 8


# --------------------------------------------------------------------------- wire format
def pack(x, depth: int = 0):
    """A value as tensors, numbers, strings and tagged dicts only."""
    if depth > MAX_DEPTH:
        return {"__unsupported__": "too deeply nested"}
    if isinstance(x, torch.Tensor):
        if x.layout != torch.strided:
            return {"__unsupported__": f"tensor with layout {x.layout} (return a dense tensor)"}
        data = torch.zeros(x.shape, dtype=x.dtype) if x.device.type == "meta" else x.detach().to("cpu")
        return {"__tensor__": data.contiguous(), "device": x.device.type, "requires_grad": bool(x.requires_grad)}
    if isinstance(x, Trajectory):
        return {"__trajectory__": {f: pack(getattr(x, f), depth + 1) for f in TRAJECTORY_FIELDS}}
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "biuf":
            return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(x)).clone()}
        return {"__unsupported__": f"numpy array of dtype {x.dtype}"}
    if isinstance(x, np.generic):
        return {"__npscalar__": x.item(), "dtype": str(x.dtype)}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, (list, tuple)):
        tag = "__list__" if isinstance(x, list) else "__tuple__"
        return {tag: [pack(v, depth + 1) for v in x]}
    if isinstance(x, dict) and all(isinstance(k, str) for k in x):
        return {"__dict__": {k: pack(v, depth + 1) for k, v in x.items()}}
    return {"__unsupported__": type(x).__name__}


def tensors_in(x) -> list[torch.Tensor]:
    """The tensors an argument holds (a tensor, a Trajectory's fields, a list's items, a module's
    parameters): what a call must leave as it found them. The judge and the child use this one walk."""
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, Trajectory):
        return [getattr(x, f) for f in TRAJECTORY_FIELDS if isinstance(getattr(x, f), torch.Tensor)]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in tensors_in(v)]
    if isinstance(x, torch.nn.Module):
        return [p.data for p in x.parameters()]
    return []


def mutated(sent: tuple, after) -> list[int] | None:
    """Indices of the arguments whose tensors differ from what the judge sent, comparing the judge's own
    arguments with the child's ``after`` (None when ``after`` is malformed: a forged reply)."""
    if not isinstance(after, list) or len(after) != len(sent):
        return None
    changed = []
    for index, (arg, back) in enumerate(zip(sent, after)):
        mine = tensors_in(arg)
        if not isinstance(back, list) or len(back) != len(mine) or not all(isinstance(t, torch.Tensor) for t in back):
            return None
        if not all(_same(a.detach().cpu(), b) for a, b in zip(mine, back)):
            changed.append(index)
    return changed


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return bool((a == b).all())


class Unsupported:
    """A returned value of a type the grader does not accept."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


class NumpyArray:
    """A returned numpy array (the contract asks for tensors)."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor

    def __repr__(self) -> str:
        return f"<numpy array of shape {list(self.tensor.shape)}>"


_READABLE_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
                    torch.int16, torch.int32, torch.int64, torch.bool}


def clean_text(text, limit: int = 500) -> str:
    """A string from the child, made safe to show on one line of the grader's output:
    no newlines or control characters (so it cannot fake report lines), bounded length."""
    if not isinstance(text, str):
        text = repr(text)
    text = "".join(ch if ch.isprintable() else ("⏎" if ch in "\r\n" else " ") for ch in text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unpack(x, depth: int = 0):
    """The judge's view of a packed value. Tensors carry ``sandbox_device`` and
    ``sandbox_requires_grad``: where they lived in the child.

    The payload may be forged by student code, so nothing here trusts its shape:
    unknown or malformed entries become ``Unsupported``, never an exception."""
    if depth > MAX_DEPTH + 1:
        return Unsupported("too deeply nested value")
    if isinstance(x, torch.Tensor):  # a bare tensor is not what pack() sends
        return Unsupported("untagged tensor")
    if isinstance(x, dict):
        if "__tensor__" in x:
            t = x["__tensor__"]
            if (not isinstance(t, torch.Tensor) or type(t) is not torch.Tensor or t.layout != torch.strided
                    or t.dtype not in _READABLE_DTYPES or t.device.type != "cpu"):
                return Unsupported("tensor of an unsupported kind")
            t = t.detach().contiguous()
            t.sandbox_device = clean_text(x.get("device"), 40)
            t.sandbox_requires_grad = x.get("requires_grad") is True
            return t
        if "__trajectory__" in x and isinstance(x["__trajectory__"], dict):
            fields = {f: unpack(x["__trajectory__"].get(f), depth + 1) for f in TRAJECTORY_FIELDS}
            try:
                return Trajectory(**fields)
            except Exception:  # noqa: BLE001 - a forged trajectory
                return Unsupported("malformed Trajectory")
        if "__ndarray__" in x:
            t = x["__ndarray__"]
            ok = isinstance(t, torch.Tensor) and type(t) is torch.Tensor and t.layout == torch.strided
            return NumpyArray(t.detach().contiguous()) if ok else Unsupported("numpy array")
        if "__npscalar__" in x:
            v = x["__npscalar__"]
            return v if v is None or isinstance(v, (bool, int, float, str)) else Unsupported("numpy scalar")
        if "__list__" in x and isinstance(x["__list__"], list):
            return [unpack(v, depth + 1) for v in x["__list__"]]
        if "__tuple__" in x and isinstance(x["__tuple__"], list):
            return tuple(unpack(v, depth + 1) for v in x["__tuple__"])
        if "__dict__" in x and isinstance(x["__dict__"], dict):
            return {clean_text(k, 100): unpack(v, depth + 1) for k, v in x["__dict__"].items()}
        return Unsupported(clean_text(x.get("__unsupported__", "object"), 100))
    if x is None or isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, str):
        return x[:100_000]
    return Unsupported(clean_text(type(x).__name__, 100))


def short_repr(x, limit: int = 60) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor(shape={list(x.shape)}, dtype={str(x.dtype).replace('torch.', '')})"
    if isinstance(x, (list, tuple)) and len(x) > 3:
        return f"[{len(x)} items]"
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- bytes on the pipe
RAW_TENSOR = "__raw_tensor__"
_DTYPES = {str(d).removeprefix("torch."): d for d in _READABLE_DTYPES}
MAX_TENSOR_DIMS = 16


def _tensor_bytes(t: torch.Tensor) -> tuple[str, tuple[int, ...], bytes]:
    x = t.detach().to("cpu")
    flat = torch.empty(x.numel(), dtype=x.dtype)  # stride 1 whatever x's strides (an expanded tensor has 0s)
    flat.copy_(x.reshape(-1))
    data = flat.view(torch.uint8).numpy().tobytes() if x.numel() else b""
    return str(x.dtype).removeprefix("torch."), tuple(x.shape), data


def _tensor_from_bytes(dtype: torch.dtype, shape, data: bytes) -> torch.Tensor:
    if not data:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(shape)


def rebuild_request_tensor(dtype_name: str, shape, data: bytes, device: str, requires_grad: bool) -> torch.Tensor:
    """A tensor of a request, in the child (trusted data from the judge)."""
    t = _tensor_from_bytes(getattr(torch, dtype_name), shape, data)
    if device != "cpu":
        t = t.to(device)
    return t.requires_grad_(True) if requires_grad else t


class _RequestPickler(pickle.Pickler):
    def reducer_override(self, obj):
        if type(obj) is torch.Tensor and obj.layout == torch.strided and not obj.is_conj() and not obj.is_neg() \
                and obj.grad_fn is None and obj.device.type != "meta":
            dtype, shape, data = _tensor_bytes(obj)
            return rebuild_request_tensor, (dtype, shape, data, obj.device.type, obj.requires_grad)
        return NotImplemented


def dumps_request(request) -> bytes:
    buffer = io.BytesIO()
    _RequestPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(request)
    return buffer.getvalue()


def dumps_reply(reply) -> bytes:
    """A packed reply, as the child sends it: every tensor as raw bytes, the rest plain containers."""
    def raw(x):
        if isinstance(x, torch.Tensor):
            return (RAW_TENSOR, *_tensor_bytes(x))
        if isinstance(x, dict):
            return {k: raw(v) for k, v in x.items()}
        if isinstance(x, list):
            return [raw(v) for v in x]
        return x

    return pickle.dumps(raw(reply), protocol=pickle.HIGHEST_PROTOCOL)


class _NoGlobals(pickle.Unpickler):
    """Containers, numbers, strings and bytes only: any class or function a payload names is refused, so no
    object of the child's choosing is built and no code runs."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"a reply may not name {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("a reply may not hold persistent ids")


def loads_reply(payload: bytes):
    """The child's reply with its tensors rebuilt; raises ValueError (or pickle's errors) if malformed."""
    return _tensors_back(_NoGlobals(io.BytesIO(payload)).load(), 0)


def _tensors_back(x, depth: int):
    if depth > 4 * MAX_DEPTH:
        raise ValueError("too deeply nested")
    if isinstance(x, dict):
        return {k: _tensors_back(v, depth + 1) for k, v in x.items()}
    if isinstance(x, list):
        return [_tensors_back(v, depth + 1) for v in x]
    if isinstance(x, tuple):  # pack() sends no tuples: this is a tensor, or a forgery
        if len(x) != 4 or x[0] != RAW_TENSOR or x[1] not in _DTYPES or not isinstance(x[3], bytes):
            raise ValueError("malformed tensor")
        dtype, shape, data = _DTYPES[x[1]], x[2], x[3]
        if not (isinstance(shape, tuple) and len(shape) <= MAX_TENSOR_DIMS
                and all(type(n) is int and 0 <= n < 2**40 for n in shape)):
            raise ValueError("malformed tensor shape")
        if math.prod(shape) * torch.empty((), dtype=dtype).element_size() != len(data):
            raise ValueError("tensor bytes do not match its shape")
        return _tensor_from_bytes(dtype, shape, data)
    return x


# --------------------------------------------------------------------------- reading a reply
REPLY_KINDS = {"not_implemented", "error", "fatal", "load"}


def decode(payload: bytes) -> dict:
    """Read a child's reply, which student code may have forged.

    ``loads_reply`` builds containers, numbers, strings, bytes and tensors only, so a
    forged reply cannot run code in the judge; every field is then checked, so a
    malformed one is a failure of the submission, never an error of the grader."""
    try:
        raw = loads_reply(payload)
    except Exception as err:  # noqa: BLE001 - any malformed reply
        return {"ok": False, "kind": "fatal",
                "message": f"unreadable reply from the child process ({clean_text(str(err), 200)})"}
    try:
        return _validated(raw)
    except Exception:  # noqa: BLE001
        return {"ok": False, "kind": "fatal", "message": "malformed reply from the child process"}


def _validated(raw) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("ok"), bool):
        raise ValueError("no ok field")
    if raw["ok"]:
        grads = unpack(raw.get("grads"))
        if not (grads is None or isinstance(grads, str)
                or (isinstance(grads, list) and all(isinstance(g, (torch.Tensor, str)) for g in grads))):
            grads = "malformed gradient reply"
        return {"ok": True, "value": unpack(raw.get("value")), "after": unpack(raw.get("after")), "grads": grads,
                "tampered": _tampered(raw.get("tampered"))}
    if raw.get("kind") not in REPLY_KINDS:
        raise ValueError("bad kind")
    line = raw.get("line")
    return {"ok": False, "kind": raw["kind"], "type": clean_text(raw.get("type", "Error"), 80),
            "message": clean_text(raw.get("message", ""), 600),
            "function": clean_text(raw.get("function", ""), 100),
            "file": clean_text(raw.get("file", ""), 200),
            "line": line if type(line) is int and 0 < line < 10**7 else None,
            "code": clean_text(raw.get("code", ""), 200), "tampered": _tampered(raw.get("tampered"))}


def _tampered(names) -> list[str]:
    """The grader's names the child's integrity check found changed (see ``tamper``): short strings, at most 20."""
    if not isinstance(names, list):
        return []
    return [clean_text(n, 200) for n in names[:20] if isinstance(n, str)]


def failure(kind: str, type_name: str, message: str, frame: dict | None = None) -> dict:
    """A failed reply, as the child builds it (``frame`` from ``child.student_frame``)."""
    return {"ok": False, "kind": kind, "type": type_name, "message": message, **(frame or {})}


def where(reply: dict) -> str:
    """'hw2/returns.py:12 in discounted_return: code', from a decoded failure."""
    if not reply.get("file"):
        return ""
    text = f"{reply['file']}:{reply['line']}" if reply.get("line") else reply["file"]
    if reply.get("function"):
        text += f" in {reply['function']}"
    return text + (f": {reply['code']}" if reply.get("code") else "")


def describe_call(function: str, args: tuple, kwargs: dict | None) -> str:
    parts = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in (kwargs or {}).items()]
    return f"{function}({', '.join(parts)})"
