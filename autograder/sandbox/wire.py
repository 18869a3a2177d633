"""What travels between the judge and the child, and how the judge reads it.

Requests (judge → child) are pickled (``dumps_request``): the judge is trusted,
the child reads them before any student code can change anything. Their tensors
travel in an arena the judge owns (``arena``): the child builds them on the
judge's memory, and the judge reads that memory back after the call to see
what the call wrote into its arguments.
Replies (child → judge) are packed into tensors, numbers, strings and tagged
dicts (``pack``), then written in a format of our own (``dumps_reply``) with no
back-references, no classes and no code: the judge reads it with a bounded
reader (``loads_reply``) whose cost grows with the reply's length, never more.
Student code in the child can forge a reply, so ``decode`` checks every field:
a malformed reply is a failure of the submission, never code run in the judge
nor an error of the grader. Each reply must carry the nonce of its request; one
that does not was written by something other than the child's request loop.

A failed reply is structured: ``kind`` (not_implemented, error, fatal, load, not_run),
``type``, ``message`` and, where the student's code is involved, ``function``,
``file`` and ``line`` of the innermost frame in the submission.
"""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import torch

from autograder.sandbox import arena
from rlkit.trajectory import Trajectory

READY = b"sandbox ready"
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
        if x.dtype not in _READABLE_DTYPES:  # the reply could not carry it: say what it was
            return {"__unsupported__": f"tensor of dtype {str(x.dtype).removeprefix('torch.')} (return a real tensor)"}
        # Always a copy (on the CPU too, where .to("cpu") would share): the value as it was when packed.
        data = (torch.zeros(x.shape, dtype=x.dtype) if x.device.type == "meta"
                else x.detach().to("cpu", memory_format=torch.contiguous_format, copy=True))
        return {"__tensor__": data, "device": x.device.type, "requires_grad": bool(x.requires_grad)}
    if isinstance(x, Trajectory):
        return {"__trajectory__": {f: pack(getattr(x, f), depth + 1) if hasattr(x, f)
                                   else {"__unsupported__": "missing field"} for f in TRAJECTORY_FIELDS}}
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
    kind = type(x).__module__
    return {"__unsupported__": type(x).__qualname__ if kind == "builtins" else f"{kind}.{type(x).__qualname__}"}


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
        return list(x.parameters())
    return []


def mutated(sent: tuple, after, request: "Request") -> list[int] | None:
    """Indices of the arguments whose tensors differ from what the judge sent (None when ``after`` is malformed:
    a forged reply).

    Every tensor the judge laid out in the request's arena is read back from the judge's own memory: what the call
    wrote into it is seen whatever the child reports. ``after`` is the child's account of each argument's tensors
    as the call left them, in ``tensors_in``'s order: an arena slot for a tensor that is still the arena's, or the
    values of one the call replaced (a reassigned field, a policy converted to another dtype), which only the
    child can see."""
    if not isinstance(after, list) or len(after) != len(sent):
        return None
    changed = []
    for index, (arg, back) in enumerate(zip(sent, after)):
        mine = [t.detach().cpu() for t in tensors_in(arg)]
        if not isinstance(back, list) or len(back) != len(mine):
            return None
        written = any(not request.arena.untouched(slot) and not _same(t, request.arena.read_back(slot))
                      for t in mine for slot in request.slots(t))
        replaced = False
        for original, entry in zip(mine, back):
            if type(entry) is int:
                if entry not in request.slots(original):
                    return None
            elif isinstance(entry, torch.Tensor):
                replaced = replaced or not _same(original, entry)
            else:
                return None
        if written or replaced:
            changed.append(index)
    return changed


def mutated_each(calls: list[tuple], after, request: "Request") -> list[list[int]] | None:
    """``mutated`` for each call of a batch (None when ``after`` is malformed)."""
    if not isinstance(after, list) or len(after) != len(calls):
        return None
    each = [mutated(args, back, request) for args, back in zip(calls, after)]
    return None if any(m is None for m in each) else each


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


_READABLE_DTYPES = set(arena.DTYPES.values())


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


# --------------------------------------------------------------------------- requests (judge → child)
class Request:
    """A pickled request and the arena holding its tensors (see ``arena``): the judge keeps it until the reply,
    to read back what the call did to the arguments."""

    def __init__(self, payload: bytes, tensors: arena.Arena, slots_of: dict[tuple, set[int]], nonce: str | None):
        self.payload, self.arena, self._slots_of, self.nonce = payload, tensors, slots_of, nonce

    def slots(self, t: torch.Tensor) -> set[int]:
        """The arena slots that hold ``t`` (one of the judge's tensors) as it was sent."""
        return self._slots_of.get(arena.identity(t), set())


class _RequestPickler(pickle.Pickler):
    def __init__(self, buffer, tensors: arena.Arena, slots_of: dict):
        super().__init__(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        self._arena, self._slots_of = tensors, slots_of

    def reducer_override(self, obj):
        if type(obj) is torch.Tensor and obj.layout == torch.strided and not obj.is_conj() and not obj.is_neg() \
                and obj.grad_fn is None and obj.device.type != "meta" and obj.dtype in _READABLE_DTYPES:
            slot = self._arena.add(obj)
            self._slots_of.setdefault(arena.identity(obj), set()).add(slot)
            offset, dtype, shape = self._arena.slots[slot]
            return rebuild_request_tensor, (slot, offset, str(dtype).removeprefix("torch."), shape, obj.device.type,
                                            obj.requires_grad)
        return NotImplemented


def dumps_request(request) -> Request:
    buffer, tensors, slots_of = io.BytesIO(), arena.Arena(), {}
    _RequestPickler(buffer, tensors, slots_of).dump(request)
    return Request(buffer.getvalue(), tensors, slots_of, request.get("nonce") if isinstance(request, dict) else None)


_child_arena: arena.ChildArena | None = None  # the arena of the request being unpickled (child side)


def loads_request(payload: bytes, fds: list[int]):
    """The child's side: a request, its tensors built on the judge's arena (mapped shared)."""
    global _child_arena
    _child_arena = arena.ChildArena(fds[0]) if fds else None
    for fd in fds[1:]:
        os.close(fd)
    return pickle.loads(payload), _child_arena


def rebuild_request_tensor(slot: int, offset: int, dtype_name: str, shape, device: str,
                           requires_grad: bool) -> torch.Tensor:
    """A tensor of a request, in the child: a view of the judge's arena (moved to ``device`` if not the CPU)."""
    dtype = getattr(torch, dtype_name)
    # Only empty tensors leave the arena empty, and then the judge sends no file.
    t = _child_arena.tensor(slot, offset, dtype, shape) if _child_arena is not None else torch.empty(shape, dtype=dtype)
    if device != "cpu":
        t = t.to(device)
    return t.requires_grad_(True) if requires_grad else t


# --------------------------------------------------------------------------- replies (child → judge)
# A reply is None, booleans, integers, floats, strings, lists, string-keyed dicts and tensors, in a format of
# our own rather than pickle's: nothing in it can refer back to an earlier part (pickle's memo lets a few KB stand
# for a tree that takes minutes to hash, or one large bytes object stand for many), so reading it costs time and
# memory in proportion to its length, within the budgets below.
MAX_REPLY_BYTES = 64 * 2**20
MAX_REPLY_NODES = 500_000
MAX_WIRE_DEPTH = 4 * MAX_DEPTH
MAX_TENSOR_DIMS = 16
_DTYPE_CODES = list(arena.DTYPES)
_U32, _I64, _F64 = struct.Struct("<I"), struct.Struct("<q"), struct.Struct("<d")


def dumps_reply(reply) -> bytes:
    """A packed reply, as the child sends it."""
    out = bytearray()
    _encode(reply, out, 0)
    return bytes(out)


def _encode(x, out: bytearray, depth: int) -> None:
    if depth > MAX_WIRE_DEPTH:
        raise ValueError("too deeply nested")
    if x is None:
        out += b"N"
    elif x is True or x is False:
        out += b"T" if x else b"F"
    elif isinstance(x, int):
        if -2**63 <= x < 2**63:
            out += b"i" + _I64.pack(x)
        else:
            _encode_text(b"I", str(x), out)  # up to Python's 4300 digits (str() refuses more)
    elif isinstance(x, float):
        out += b"f" + _F64.pack(x)
    elif isinstance(x, str):
        _encode_text(b"s", x, out)
    elif isinstance(x, torch.Tensor):
        dtype = str(x.dtype).removeprefix("torch.")
        if dtype not in arena.DTYPES or x.dim() > MAX_TENSOR_DIMS:
            raise ValueError(f"tensor of dtype {dtype} with {x.dim()} dimensions")
        out += b"X" + bytes([_DTYPE_CODES.index(dtype), x.dim()]) + b"".join(_I64.pack(n) for n in x.shape)
        pad = -(len(out) + 1) % arena.ALIGN
        out += bytes([pad]) + bytes(pad) + arena.tensor_bytes(x)
    elif isinstance(x, (list, tuple)):
        out += b"l" + _U32.pack(len(x))
        for v in x:
            _encode(v, out, depth + 1)
    elif isinstance(x, dict):
        out += b"d" + _U32.pack(len(x))
        for k, v in x.items():
            _encode_text(b"", str(k), out)  # a key is always a string: no tag
            _encode(v, out, depth + 1)
    else:
        raise TypeError(f"cannot send a {type(x).__name__}")


def _encode_text(tag: bytes, text: str, out: bytearray) -> None:
    data = text.encode("utf-8", "surrogatepass")
    out += tag + _U32.pack(len(data)) + data


class _Reader:
    """Reads a reply from the judge's buffer; every length is checked against what is left of it, so nothing is
    allocated beyond the payload's own size, and the count of values and the depth are bounded."""

    def __init__(self, payload: bytearray):
        self.buffer, self.view, self.pos, self.nodes = payload, memoryview(payload), 0, 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.view):
            raise ValueError("truncated reply")
        self.pos += n
        return self.view[self.pos - n:self.pos]

    def text(self) -> str:
        (n,) = _U32.unpack(self.take(4))
        return str(self.take(n), "utf-8", "replace")

    def value(self, depth: int):
        self.nodes += 1
        if self.nodes > MAX_REPLY_NODES or depth > MAX_WIRE_DEPTH:
            raise ValueError("reply too large or too deeply nested")
        tag = self.take(1).tobytes()
        if tag in b"NTF":
            return {b"N": None, b"T": True, b"F": False}[tag]
        if tag == b"i":
            return _I64.unpack(self.take(8))[0]
        if tag == b"f":
            return _F64.unpack(self.take(8))[0]
        if tag == b"s":
            return self.text()
        if tag == b"I":
            digits = self.text()
            if len(digits) > 4300 or not digits.lstrip("-").isdigit():
                raise ValueError("malformed integer")
            return int(digits)
        if tag in (b"l", b"d"):
            (n,) = _U32.unpack(self.take(4))
            if n > len(self.view) - self.pos:  # every item takes a byte at least
                raise ValueError("truncated reply")
            if tag == b"l":
                return [self.value(depth + 1) for _ in range(n)]
            return {self.text(): self.value(depth + 1) for _ in range(n)}
        if tag == b"X":
            return self.tensor()
        raise ValueError("unknown tag")

    def tensor(self) -> torch.Tensor:
        code, dims = self.take(2)
        if code >= len(_DTYPE_CODES) or dims > MAX_TENSOR_DIMS:
            raise ValueError("malformed tensor")
        shape = tuple(_I64.unpack(self.take(8))[0] for _ in range(dims))
        if any(not 0 <= n < 2**40 for n in shape):
            raise ValueError("malformed tensor shape")
        (pad,) = self.take(1)
        self.take(pad)
        dtype = arena.DTYPES[_DTYPE_CODES[code]]
        start = self.pos
        self.take(arena.nbytes(dtype, shape))  # checks the bytes are there before the product is used
        return arena.tensor_from(self.buffer, dtype, shape, start)


def loads_reply(payload: bytearray):
    """The child's reply with its tensors rebuilt (views of ``payload``); raises ValueError if malformed."""
    reader = _Reader(payload if isinstance(payload, bytearray) else bytearray(payload))
    value = reader.value(0)
    if reader.pos != len(payload):
        raise ValueError("trailing bytes")
    return value


# --------------------------------------------------------------------------- reading a reply
REPLY_KINDS = {"not_implemented", "error", "fatal", "load", "not_run"}


FORGED = ("a reply that the child's request loop did not send: code in the child wrote onto the grader's reply "
          "channel")


def decode(payload: bytearray, nonce: str | None = None) -> dict:
    """Read a child's reply, which student code may have forged.

    ``loads_reply`` builds containers, numbers, strings and tensors only, so a
    forged reply cannot run code in the judge; every field is then checked, so a
    malformed one is a failure of the submission, never an error of the grader.
    A reply without ``nonce`` (its request's) is marked ``forged``."""
    try:
        raw = loads_reply(payload)
    except Exception as err:  # noqa: BLE001 - any malformed reply
        return {"ok": False, "kind": "fatal",
                "message": f"unreadable reply from the child process ({clean_text(str(err), 200)})"}
    if nonce is not None and (not isinstance(raw, dict) or raw.get("nonce") != nonce):
        return {"ok": False, "kind": "fatal", "message": FORGED, "forged": True}
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
        from autograder.sandbox import effects  # effects walks arguments with tensors_in, from here

        contract = raw.get("contract")
        contract = ([effects.validated(c) for c in contract] if isinstance(contract, list)
                    else effects.validated(contract))
        return {"ok": True, "value": unpack(raw.get("value")), "after": unpack(raw.get("after")), "grads": grads,
                "contract": contract, "tampered": _tampered(raw.get("tampered"))}
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
