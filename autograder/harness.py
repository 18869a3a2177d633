"""The child's side of the sandbox, and the wire format both sides share.

``child_main`` runs in the forked child: it limits itself, drops privileges
when it can, imports the submission and answers call requests. Everything it
sends back is packed into tensors and plain containers (``pack``) so that the
judge can read it with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import random
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from rlkit.trajectory import Trajectory

TRAJECTORY_FIELDS = ("observations", "actions", "rewards", "terminated", "behavior_log_probs", "final_observation")
MAX_DEPTH = 8


# --------------------------------------------------------------------------- wire format
def pack(x, depth: int = 0):
    """A value as tensors, numbers, strings and tagged dicts only."""
    if depth > MAX_DEPTH:
        return {"__unsupported__": "too deeply nested"}
    if isinstance(x, torch.Tensor):
        return {"__tensor__": x.detach().to("cpu").clone().contiguous(), "device": x.device.type,
                "requires_grad": bool(x.requires_grad)}
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


def unpack(x):
    """The judge's view of a packed value. Tensors carry ``sandbox_device`` and
    ``sandbox_requires_grad``: where they lived in the child."""
    if isinstance(x, dict):
        if "__tensor__" in x and isinstance(x["__tensor__"], torch.Tensor):
            t = x["__tensor__"]
            t.sandbox_device = str(x.get("device"))
            t.sandbox_requires_grad = bool(x.get("requires_grad"))
            return t
        if "__trajectory__" in x and isinstance(x["__trajectory__"], dict):
            fields = {f: unpack(x["__trajectory__"].get(f)) for f in TRAJECTORY_FIELDS}
            return Trajectory(**fields)
        if "__ndarray__" in x:
            return NumpyArray(x["__ndarray__"])
        if "__npscalar__" in x:
            return x["__npscalar__"]
        if "__list__" in x:
            return [unpack(v) for v in x["__list__"]]
        if "__tuple__" in x:
            return tuple(unpack(v) for v in x["__tuple__"])
        if "__dict__" in x:
            return {k: unpack(v) for k, v in x["__dict__"].items()}
        return Unsupported(str(x.get("__unsupported__", "object")))
    return x


def short_repr(x, limit: int = 60) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor(shape={list(x.shape)}, dtype={str(x.dtype).replace('torch.', '')})"
    if isinstance(x, (list, tuple)) and len(x) > 3:
        return f"[{len(x)} items]"
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- the child
def child_main(conn, code_dir: str, home: str, log_path: str, ids, memory_mb: int, seconds: float, device: str):
    """Entry point of the sandboxed child (runs after the fork)."""
    _isolate(code_dir, home, log_path, ids, memory_mb, seconds, device)
    modules: dict[str, object] = {}
    while True:
        try:
            request = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if request["op"] == "exit":
            return
        try:
            reply = _serve(request, modules, code_dir, device, memory_mb)
        except BaseException as err:  # noqa: BLE001 - the harness must always answer
            reply = {"ok": False, "kind": "error", "type": type(err).__name__, "message": str(err)[:500]}
        buffer = io.BytesIO()
        try:
            torch.save(reply, buffer)
        except Exception as err:  # noqa: BLE001
            buffer = io.BytesIO()
            torch.save({"ok": False, "kind": "error", "type": type(err).__name__,
                        "message": f"the returned value could not be sent back: {err}"}, buffer)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send_bytes(buffer.getvalue())


def _isolate(code_dir, home, log_path, ids, memory_mb, seconds, device):
    import resource

    os.setsid()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if device == "cpu":  # CUDA reserves huge virtual address ranges: no RLIMIT_AS there
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + memory_mb * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(seconds * 2) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 2**20,) * 2)
    os.chdir(home)
    os.environ["HOME"] = home
    os.environ["MPLBACKEND"] = "Agg"
    if ids:
        uid, gid = ids
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (256, 256))
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    sys.path[:] = [code_dir] + [p for p in sys.path if p and p.startswith(prefixes)]
    for name in list(sys.modules):
        if name.split(".")[0] in {"hw1", "hw2", "solutions", "reference"}:
            del sys.modules[name]
    importlib.invalidate_caches()
    torch.set_num_threads(1)


def _vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _serve(request: dict, modules: dict, code_dir: str, device: str, memory_mb: int) -> dict:
    op = request["op"]
    if op == "load":
        return _load(request["module"], request["function"], modules, code_dir)
    fn = getattr(modules[request["module"]], request["function"])
    if op == "call":
        return _call(fn, request, device, code_dir, memory_mb)
    if op == "map":
        values = []
        for index, (args, kwargs) in enumerate(request["calls"]):
            reply = _call(fn, {**request, "args": args, "kwargs": kwargs}, device, code_dir, memory_mb)
            if not reply["ok"]:
                reply["message"] = f"{reply.get('message', '')} (call {index + 1} of {len(request['calls'])})"
                return reply
            values.append(reply["value"])
        return {"ok": True, "value": {"__list__": values}, "mutated": [], "grads": None}
    raise ValueError(f"unknown request {op!r}")


def _load(module: str, function: str, modules: dict, code_dir: str) -> dict:
    rel = module.replace(".", "/") + ".py"
    if not (Path(code_dir) / rel).is_file():
        return {"ok": False, "kind": "load", "message": f"missing file {rel}: the submission has no {rel}"}
    try:
        modules[module] = importlib.import_module(module)
    except SyntaxError as err:
        return {"ok": False, "kind": "load",
                "message": f"{rel}, line {err.lineno}: SyntaxError: {err.msg}"}
    except BaseException as err:  # noqa: BLE001
        return {"ok": False, "kind": "load",
                "message": f"importing {rel} raised {type(err).__name__}: {str(err)[:300]}{_where(err, code_dir)}"}
    if not callable(getattr(modules[module], function, None)):
        return {"ok": False, "kind": "load", "message": f"{rel} does not define a function `{function}`"}
    return {"ok": True, "value": None, "mutated": [], "grads": None}


def _to_device(x, device: str):
    if device == "cpu":
        return x
    if isinstance(x, (torch.Tensor, torch.nn.Module, Trajectory)):
        return x.to(device)
    if isinstance(x, list):
        return [_to_device(v, device) for v in x]
    if isinstance(x, tuple):
        return tuple(_to_device(v, device) for v in x)
    return x


def _tensors_in(x) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, Trajectory):
        return [getattr(x, f) for f in TRAJECTORY_FIELDS if isinstance(getattr(x, f), torch.Tensor)]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors_in(v)]
    if isinstance(x, torch.nn.Module):
        return [p.data for p in x.parameters()]
    return []


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point():
        return bool(((a == b) | (a.isnan() & b.isnan())).all())
    return bool((a == b).all())


def _seed_everything() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


def _call(fn, request: dict, device: str, code_dir: str, memory_mb: int) -> dict:
    args = list(_to_device(request["args"], device))
    kwargs = {k: _to_device(v, device) for k, v in request["kwargs"].items()}
    for index in request.get("grad_wrt", ()):
        args[index] = args[index].detach().clone().requires_grad_(True)
    before = [[t.detach().clone() for t in _tensors_in(a)] for a in args]
    _seed_everything()
    try:
        value = fn(*args, **kwargs)
    except NotImplementedError as err:
        return {"ok": False, "kind": "not_implemented", "type": "NotImplementedError",
                "message": str(err), "where": _where(err, code_dir)}
    except MemoryError:
        return {"ok": False, "kind": "error", "type": "MemoryError",
                "message": f"ran out of memory (the limit is {memory_mb} MB above the baseline)"}
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        message = str(err)[:500]
        if isinstance(err, SystemExit):
            message = f"your code called sys.exit({err.code!r}) / exit()"
        elif isinstance(err, KeyboardInterrupt):
            message = "your code raised KeyboardInterrupt"
        elif "can't allocate memory" in message or "out of memory" in message.lower():
            message = f"ran out of memory (the limit is {memory_mb} MB above the baseline): {message[:200]}"
        return {"ok": False, "kind": "error", "type": type(err).__name__, "message": message,
                "where": _where(err, code_dir)}
    mutated = [i for i, (a, old) in enumerate(zip(args, before))
               if any(not _same(new.detach(), o) for new, o in zip(_tensors_in(a), old))]
    grads = None
    if request.get("grad_wrt"):
        grads = _grads(value, [args[i] for i in request["grad_wrt"]], request.get("cotangent"), device)
    return {"ok": True, "value": pack(value), "mutated": mutated, "grads": pack(grads)}


def _grads(value, inputs: list[torch.Tensor], cotangent, device: str):
    """d⟨cotangent, value⟩/d inputs, or the reason there is none."""
    if not isinstance(value, torch.Tensor):
        return "the returned value is not a tensor"
    if not value.requires_grad:
        return "the returned tensor does not require grad (was it detached, or computed outside autograd?)"
    weight = torch.ones_like(value) if cotangent is None else cotangent.to(device=value.device, dtype=value.dtype)
    grads = torch.autograd.grad((value * weight).sum(), inputs, allow_unused=True)
    return [("no gradient reaches this input" if g is None else g) for g in grads]


def _where(err: BaseException, code_dir: str) -> str:
    """The innermost frame of the student's own code, as 'file:line in fn: code'."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(code_dir)]
    if not frames:
        return ""
    f = frames[-1]
    rel = os.path.relpath(f.filename, code_dir)
    return f"{rel}:{f.lineno} in {f.name}: {(f.line or '').strip()}"
