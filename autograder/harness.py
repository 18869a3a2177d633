"""The child's side of the sandbox, and the wire format both sides share.

``child_main`` runs in the forked child: it limits itself, drops privileges
when it can, imports the submission and answers call requests. Everything it
sends back is packed into tensors and plain containers (``pack``) so that the
judge can read it with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
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
READY = b"sandbox ready"


# --------------------------------------------------------------------------- wire format
def pack(x, depth: int = 0):
    """A value as tensors, numbers, strings and tagged dicts only."""
    if depth > MAX_DEPTH:
        return {"__unsupported__": "too deeply nested"}
    if isinstance(x, torch.Tensor):
        if x.layout != torch.strided:
            return {"__unsupported__": f"tensor with layout {x.layout} (return a dense tensor)"}
        data = torch.zeros(x.shape, dtype=x.dtype) if x.device.type == "meta" else x.detach().to("cpu").clone()
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


# --------------------------------------------------------------------------- the child
def child_main(conn, code_dir: str, home: str, log_path: str, ids, memory_mb: int, seconds: float, device: str):
    """Entry point of the sandboxed child (runs after the fork)."""
    _isolate(conn, code_dir, home, log_path, ids, memory_mb, seconds, device)
    conn.send_bytes(READY)  # the judge starts the problem's clock now, not while the fork server warms up
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


def _isolate(conn, code_dir, home, log_path, ids, memory_mb, seconds, device):
    import resource

    os.setsid()
    _close_inherited_fds(keep={conn.fileno()})
    _become_subreaper()
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
    python_alias = _expose_python(os.path.join(os.path.dirname(home), "python")) if ids else None
    if ids:
        uid, gid = ids
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (256, 256))
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    paths = [p for p in sys.path if p and p.startswith(prefixes)]
    if python_alias:
        paths = [python_alias + p[len(sys.base_prefix):] if p.startswith(sys.base_prefix + os.sep) else p
                 for p in paths]
    sys.path[:] = [code_dir] + paths
    for name in list(sys.modules):
        if name.split(".")[0] in {"hw1", "hw2", "solutions", "reference"}:
            del sys.modules[name]
    importlib.invalidate_caches()
    torch.set_num_threads(1)
    _make_entropy_deterministic()


def _expose_python(alias: str) -> str | None:
    """Make the standard library importable after the privilege drop.

    When Python itself lives where the sandbox uid cannot go (pyenv under a 0700
    /root, say), lazy imports of the standard library would fail for student code.
    In a private mount namespace, bind Python's installation at ``alias`` (a path
    the sandbox can reach) and import from there. Returns None when Python is
    reachable anyway, or when mount namespaces are not allowed (then nothing changes)."""
    probe = os.path.join(sys.base_prefix, "lib")
    if _reachable_by_others(probe):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18
        if libc.unshare(CLONE_NEWNS) != 0:
            return None
        if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            return None
        os.mkdir(alias, 0o755)
        if libc.mount(sys.base_prefix.encode(), alias.encode(), None, MS_BIND | MS_REC, None) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return alias


def _reachable_by_others(path: str) -> bool:
    """Can a user with no relation to the owner read ``path`` (every ancestor o+x, itself o+rx)?"""
    import stat

    parts = os.path.abspath(path).split(os.sep)
    for i in range(1, len(parts) + 1):
        try:
            mode = os.stat(os.sep.join(parts[:i]) or os.sep).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _close_inherited_fds(keep: set[int]) -> None:
    """Close what the fork server handed down (its alive pipe, the resource
    tracker's pipe, sentinels): student code must reach nothing but its own pipe."""
    from multiprocessing import resource_tracker

    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    tracker = resource_tracker._resource_tracker
    tracker._fd, tracker._pid = None, None


def _become_subreaper() -> None:
    """Orphans of student code (double-forked daemons) become our children rather
    than init's, so the judge finds them under this process and kills them."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


_entropy = {"seed": b"", "counter": 0}


def _deterministic_urandom(n: int) -> bytes:
    """os.urandom's stand-in in the child: a hash chain restarted before every call,
    so that np.random.default_rng(), random.SystemRandom() and secrets give the
    same numbers on every grading run."""
    n = int(n)
    out = bytearray()
    while len(out) < n:
        _entropy["counter"] += 1
        out += hashlib.sha256(_entropy["seed"] + _entropy["counter"].to_bytes(8, "little")).digest()
    return bytes(out[:n])


def _make_entropy_deterministic() -> None:
    os.urandom = _deterministic_urandom
    random._urandom = _deterministic_urandom  # used by SystemRandom, hence by secrets and numpy's SeedSequence


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
    _entropy["seed"], _entropy["counter"] = b"grader", 0
    # torch.manual_seed also queues seeding of every lazy accelerator (capturing a stack
    # trace each time): half the cost of a small call. Seed the CPU generator, and CUDA
    # only once it is in use.
    torch.default_generator.manual_seed(0)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(0)
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
