"""The child: confine itself, import the submission, answer the judge's requests.

``child_main`` runs in a process forked from the fork server (which has imported
trusted modules only). It confines itself (``isolation.apply``), sends READY, and
then serves requests until told to exit. Every reply is data (``wire.pack``);
a failure carries the innermost frame of the student's own code as fields.
"""

from __future__ import annotations

import faulthandler
import functools
import hashlib
import importlib
import os
import random
import resource
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from autograder.sandbox import channel, effects, isolation, tamper, wire
from autograder.sandbox.wire import failure, pack
from rlkit.trajectory import Trajectory

DUMP_SIGNAL = signal.SIGUSR1  # the judge asks for a stack dump before it kills a child that ran out of time


def child_main(reply_fd: int, output_fd: int, evidence: int, code_dir: str, home: str, confinement, memory_mb: int,
               seconds: float, device: str) -> None:
    """Entry point of the sandboxed child (runs in the fork server's fork): ``reply_fd`` is its end of the socket
    pair to the judge, ``output_fd`` the pipe its stdout and stderr go to, ``evidence`` the pipe the audit hook
    writes its records to (see ``tamper``)."""
    _redirect_output(output_fd)
    os.close(output_fd)
    os.setsid()
    _close_inherited_fds(keep={reply_fd, 1, 2, evidence})
    conn = socket.socket(fileno=reply_fd)
    isolation.become_subreaper()
    _set_environment(home)
    isolation.apply(confinement, memory_mb, seconds, device)
    if not isolation.rlimit_as_applies(device):
        _start_memory_watchdog(memory_mb)
    faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=False, chain=False)
    integrity = tamper.install_child(evidence, code_dir, channel_fds=(conn.fileno(),))  # a local: see tamper
    _forget_submission_modules(code_dir, confinement.sys_path)
    torch.set_num_threads(1)
    _make_entropy_deterministic()
    channel.send_frame(conn, wire.READY)  # the judge starts the problem's clock now, not while the server warms up
    modules: dict[str, object] = {}
    while True:
        try:
            payload, fds = channel.recv_frame(conn)
            request, arena = wire.loads_request(payload, fds)
        except (EOFError, OSError):
            return
        if request["op"] == "exit":
            return
        try:
            reply = _serve(request, arena, modules, code_dir, device, memory_mb)
        except BaseException as err:  # noqa: BLE001 - the child must always answer
            reply = failure("error", type(err).__name__, str(err)[:500])
        reply["nonce"] = request["nonce"]
        reply["tampered"] = integrity()
        try:
            payload = wire.dumps_reply(reply)
        except Exception as err:  # noqa: BLE001
            payload = wire.dumps_reply({**failure("error", type(err).__name__,
                                                  f"the returned value could not be sent back: {err}"),
                                        "nonce": request["nonce"]})
        sys.stdout.flush()
        sys.stderr.flush()
        channel.send_frame(conn, payload)


# --------------------------------------------------------------------------- setting up
def _redirect_output(fd: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def _close_inherited_fds(keep: set[int]) -> None:
    """Close what the fork server handed down (its alive pipe, the resource tracker's
    pipe, sentinels): student code must reach nothing but its own pipe and output."""
    from multiprocessing import resource_tracker

    low = 3
    # The soft limit can be RLIM_INFINITY on macOS, where closerange walks every number: cap it.
    highest = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 65536)
    for fd in sorted(keep | {highest}):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    tracker = resource_tracker._resource_tracker
    tracker._fd, tracker._pid = None, None


def _set_environment(home: str) -> None:
    tmp = os.path.join(home, "tmp")  # made by the judge, owned by the child's uid
    os.chdir(home)
    os.environ.update(HOME=home, TMPDIR=tmp, MPLBACKEND="Agg", MPLCONFIGDIR=tmp, USER="student",
                      LOGNAME="student", TORCHINDUCTOR_CACHE_DIR=os.path.join(tmp, "inductor"))
    import tempfile

    tempfile.tempdir = tmp


def _forget_submission_modules(code_dir: str, python_paths) -> None:
    sys.path[:] = [code_dir, *python_paths]
    for name in list(sys.modules):
        if name.split(".")[0] in {"hw1", "hw2", "solutions", "reference"}:
            del sys.modules[name]
    importlib.invalidate_caches()


def _resident_bytes() -> int:
    """The process's resident memory now, from /proc/self/statm; where there is no /proc (macOS), its peak
    (ru_maxrss). The peak alone misleads after an exec: the kernel carries the exec-ing process's peak over,
    so a child started by a large process would begin with that peak and not grow past it for a long while.
    The sandbox child is forked, not exec'd, so its peak starts at its own size."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _start_memory_watchdog(memory_mb: int, resident=_resident_bytes) -> None:
    """Where RLIMIT_AS does not hold (macOS, no /proc, CUDA): end the child once its
    resident memory passes the limit above what it holds now."""
    limit = resident() + memory_mb * 2**20

    def watch():
        while True:
            if resident() > limit:
                os.write(2, f"\nout of memory: the limit is {memory_mb} MB above the baseline\n".encode())
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.05)

    threading.Thread(target=watch, name="grader-memory-watchdog", daemon=True).start()


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


# --------------------------------------------------------------------------- serving requests
def _serve(request: dict, arena, modules: dict, code_dir: str, device: str, memory_mb: int) -> dict:
    op = request["op"]
    if op == "load":
        return _load(request["module"], request["function"], modules, code_dir)
    if op == "selfcheck":
        return _selfcheck(request["modules"], request["paths"], code_dir)
    if op == "guard":
        return _guard(modules[request["module"]], request["function"])
    if op == "task":  # grader code (autograder.child_tasks) run with the student's module, by name
        from autograder import child_tasks

        task = functools.partial(child_tasks.TASKS[request["task"]], modules[request["module"]])
        return _call(task, request, device, code_dir, memory_mb, arena)
    fn = getattr(modules[request["module"]], request["function"])
    if op == "call":
        return _call(fn, request, device, code_dir, memory_mb, arena)
    if op == "map":
        replies = []
        for index, (args, kwargs) in enumerate(request["calls"]):
            reply = _call(fn, {**request, "args": args, "kwargs": kwargs}, device, code_dir, memory_mb, arena)
            if not reply["ok"]:
                reply["message"] = f"{reply.get('message', '')} (call {index + 1} of {len(request['calls'])})"
                return reply
            replies.append(reply)
        return {"ok": True, "value": {"__list__": [r["value"] for r in replies]},
                "after": {"__list__": [r["after"] for r in replies]},
                "contract": [r["contract"] for r in replies], "grads": None}
    raise ValueError(f"unknown request {op!r}")


def _ok(value=None) -> dict:
    return {"ok": True, "value": pack(value), "after": None, "grads": None}


def _load(module: str, function: str, modules: dict, code_dir: str) -> dict:
    rel = module.replace(".", "/") + ".py"
    if not (Path(code_dir) / rel).is_file():
        return failure("load", "FileNotFoundError", f"missing file {rel}: the submission has no {rel}")
    try:
        modules[module] = importlib.import_module(module)
    except SyntaxError as err:  # the file and line of the error itself, which may be another module
        frame = {"file": _relative(err.filename, code_dir) or rel, "line": err.lineno,
                 "code": (err.text or "").strip()}
        return failure("load", type(err).__name__, err.msg or "invalid syntax", frame)
    except BaseException as err:  # noqa: BLE001
        return failure("load", type(err).__name__, f"importing {rel} raised {type(err).__name__}: {str(err)[:300]}",
                       student_frame(err, code_dir))
    if not callable(getattr(modules[module], function, None)):
        return failure("load", "AttributeError", f"{rel} does not define a function `{function}`")
    return _ok()


class NotRun(BaseException):
    """Raised in place of a guarded student function (see ``_guard``). A BaseException, so that the student's own
    ``except Exception`` does not swallow it."""

    def __init__(self, function: str):
        super().__init__(function)
        self.function = function


def _guard(module, function: str) -> dict:
    """Replace ``module.function`` with a stand-in that raises NotRun: the judge knows it does not return (it hung
    on the judge's probe call), so a problem that reaches it, directly or through other student code, ends at once
    instead of waiting out its time limit. A problem that never calls it is graded as before."""
    def not_run(*args, **kwargs):
        raise NotRun(function)

    setattr(module, function, not_run)
    return _ok()


def _selfcheck(module_names: list[str], paths: list[str], code_dir: str) -> dict:
    """Can this child import what the judge can, and read its copy of the submission?"""
    problems = []
    for name in module_names:
        try:
            importlib.import_module(name)
        except BaseException as err:  # noqa: BLE001
            problems.append(f"import {name}: {type(err).__name__}: {err}")
    for path in [*paths, *(str(p) for p in Path(code_dir).rglob("*") if p.is_file())]:
        try:
            if os.path.isdir(path):
                os.listdir(path)
            else:
                with open(path, "rb") as f:
                    f.read(1)
        except OSError as err:
            problems.append(f"read {path}: {type(err).__name__}: {err.strerror}")
    return _ok(problems)


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


def _call(fn, request: dict, device: str, code_dir: str, memory_mb: int, arena=None) -> dict:
    args = list(_to_device(request["args"], device))
    kwargs = {k: _to_device(v, device) for k, v in request["kwargs"].items()}
    for index in request.get("grad_wrt", ()):
        args[index] = args[index].detach().clone().requires_grad_(True)
    _seed_everything()
    watch = effects.watch(request, args, kwargs, arena)
    try:
        value = fn(*args, **kwargs)
    except NotImplementedError as err:
        return failure("not_implemented", "NotImplementedError", str(err), student_frame(err, code_dir))
    except NotRun as err:  # the frame: where the student's code called the guarded function, if it did
        return failure("not_run", "NotRun", err.function, student_frame(err, code_dir))
    except MemoryError:
        return failure("error", "MemoryError", f"ran out of memory (the limit is {memory_mb} MB above the baseline)")
    except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        message = str(err)[:500]
        if isinstance(err, SystemExit):
            message = f"your code called sys.exit({err.code!r}) / exit()"
        elif isinstance(err, KeyboardInterrupt):
            message = "your code raised KeyboardInterrupt"
        elif "can't allocate memory" in message or "out of memory" in message.lower():
            message = f"ran out of memory (the limit is {memory_mb} MB above the baseline): {message[:200]}"
        return failure("error", type(err).__name__, message, student_frame(err, code_dir))
    contract = watch.report(value, args, kwargs)
    packed = pack(value)  # a copy, taken now: a later call of a batch cannot change it (e.g. through .grad)
    grads = None
    if request.get("grad_wrt"):
        grads = _grads(value, [args[i] for i in request["grad_wrt"]], request.get("cotangent"))
    # The arguments (positional, then keyword) as the call left them, for the judge to compare with what it
    # sent: a tensor still on the judge's arena by its slot (the judge reads its values itself), any other by
    # its values.
    after = [[_slot_or_values(t, arena) for t in tensors] for tensors, _ in watch.after]
    return {"ok": True, "value": packed, "after": pack(after), "grads": pack(grads), "contract": contract}


def _slot_or_values(t: torch.Tensor, arena):
    slot = arena.slot_of(t) if arena is not None else None
    return t.detach() if slot is None else slot


def _grads(value, inputs: list[torch.Tensor], cotangent):
    """d⟨cotangent, value⟩/d inputs, or the reason there is none."""
    if not isinstance(value, torch.Tensor):
        return "the returned value is not a tensor"
    if not value.requires_grad:
        return "the returned tensor does not require grad (was it detached, or computed outside autograd?)"
    weight = torch.ones_like(value) if cotangent is None else cotangent.to(device=value.device, dtype=value.dtype)
    grads = torch.autograd.grad((value * weight).sum(), inputs, allow_unused=True)
    return [("no gradient reaches this input" if g is None else g) for g in grads]


def _relative(filename: str | None, code_dir: str) -> str:
    if not filename or not os.path.abspath(filename).startswith(code_dir + os.sep):
        return ""
    return os.path.relpath(filename, code_dir)


def student_frame(err: BaseException, code_dir: str) -> dict:
    """The innermost frame of the student's own code: function, file (relative), line, code."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if _relative(f.filename, code_dir)]
    if not frames:
        return {}
    f = frames[-1]
    return {"function": f.name, "file": _relative(f.filename, code_dir), "line": f.lineno,
            "code": (f.line or "").strip()}
