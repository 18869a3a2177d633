"""Run student functions in a child process with time and memory limits.

The judge (this process) never imports student code. It asks a child to call a
student function and gets back only data: tensors and plain values, serialised
with ``torch.save`` and read with ``torch.load(weights_only=True)``, which
refuses to build arbitrary objects. Whatever the student code does in the child
(hang, crash, exit, monkeypatch, forge replies) can only change the data the
judge receives, never how the judge scores it.

Children are forked from a fork server that has imported torch, numpy and
gymnasium but nothing of the submission or the reference, so a fresh child per
problem costs milliseconds rather than a torch import.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from autograder import harness

DEFAULT_MEMORY_MB = 2048
PRELOAD = ["torch", "numpy", "gymnasium", "rlkit.trajectory", "rlkit.policies", "autograder.harness"]
SANDBOX_UID_BASE, SANDBOX_UID_COUNT = 200_000, 100_000  # uids with no account: nothing on disk is theirs
SANDBOX_GID = 65534  # nogroup


# --------------------------------------------------------------------------- errors
class SandboxFatal(BaseException):
    """The child is gone (timed out, crashed, exited). Derives from BaseException
    so that Hypothesis aborts at once instead of trying to shrink it."""


class NotImplementedYet(BaseException):
    """A stub still raises NotImplementedError."""

    def __init__(self, function: str):
        super().__init__(function)
        self.function = function


class SubmissionError(BaseException):
    """The submission cannot be loaded: missing file, syntax error, missing function."""


class StudentException(Exception):
    """Student code raised an ordinary exception. An ``Exception``, so Hypothesis
    shrinks the input that triggers it."""

    def __init__(self, function: str, type_name: str, message: str, where: str):
        self.function, self.type_name, self.message, self.where = function, type_name, message, where
        super().__init__(f"{function} raised {type_name}: {message}" + (f"\n  at {where}" if where else ""))


# --------------------------------------------------------------------------- context
_context = None


def _mp_context():
    """One fork server per judge process, preloaded with trusted modules only."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _sandbox_ids() -> tuple[int, int] | None:
    """(uid, gid) to drop to when the judge runs as root, else None.

    Each sandbox gets a uid of its own, owned by no running process, so that
    killing every process of that uid afterwards (double-forked daemons
    included) never touches another sandbox graded in parallel."""
    if os.name != "posix" or os.geteuid() != 0 or os.environ.get("GRADER_NO_PRIVDROP"):
        return None
    in_use = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                in_use.add(os.stat(f"/proc/{entry}").st_uid)
            except OSError:
                pass
    rng = random.Random(f"{os.getpid()}-{time.time_ns()}")
    while True:
        uid = SANDBOX_UID_BASE + rng.randrange(SANDBOX_UID_COUNT)
        if uid not in in_use:
            return uid, SANDBOX_GID


@dataclass
class Limits:
    seconds: float = 60.0
    memory_mb: int = DEFAULT_MEMORY_MB


# --------------------------------------------------------------------------- the judge's side
class Sandbox:
    """One child process, holding one copy of the submission.

    ``call`` runs a student function; its budget is what is left of
    ``limits.seconds`` for the whole sandbox (one problem).
    """

    def __init__(self, submission: Path, device: str = "cpu", limits: Limits | None = None):
        self.limits = limits or Limits()
        self.device = device
        self.workdir = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        self.code_dir = self.workdir / "submission"
        self.home = self.workdir / "home"
        self.log_path = self.workdir / "output.log"
        _copy_submission(Path(submission), self.code_dir)
        self.home.mkdir()
        self.log_path.touch()
        self.ids = _sandbox_ids()
        if self.ids:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, *self.ids)
        ctx = _mp_context()
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=harness.child_main,
            args=(child_conn, str(self.code_dir), str(self.home), str(self.log_path), self.ids,
                  self.limits.memory_mb, self.limits.seconds, device),
            daemon=True,
        )
        self._deadline = time.monotonic() + self.limits.seconds
        self._process.start()
        child_conn.close()
        self.last_call = ""

    # -- requests
    def load(self, module: str, function: str) -> None:
        """Import ``module`` from the submission and check it defines ``function``."""
        reply = self._request({"op": "load", "module": module, "function": function}, f"importing {module}")
        if not reply["ok"]:
            raise SubmissionError(reply["message"])

    def call(self, module: str, function: str, args: tuple = (), kwargs: dict | None = None,
             grad_wrt: tuple[int, ...] = (), cotangent=None):
        """Call ``module.function(*args, **kwargs)`` in the child.

        Returns a ``harness.Reply``-shaped dict: ``value`` (decoded), ``mutated``
        (indices of tensor arguments the call modified in place), ``grads``.
        """
        request = {"op": "call", "module": module, "function": function, "args": args,
                   "kwargs": kwargs or {}, "grad_wrt": grad_wrt, "cotangent": cotangent}
        return self._checked(self._request(request, describe_call(function, args, kwargs)), function)

    def map(self, module: str, function: str, calls: list[tuple[tuple, dict]]):
        """Many calls in one round trip; returns the list of values."""
        request = {"op": "map", "module": module, "function": function, "calls": calls}
        reply = self._checked(self._request(request, f"{function} (x{len(calls)})"), function)
        return reply["value"]

    def _checked(self, reply: dict, function: str) -> dict:
        if reply["ok"]:
            return reply
        if reply["kind"] == "not_implemented":
            where = reply.get("where", "")
            raise NotImplementedYet(where.split(" in ", 1)[1].split(":", 1)[0] if " in " in where else function)
        if reply["kind"] == "fatal":
            raise SandboxFatal(reply["message"])
        raise StudentException(function, reply["type"], reply["message"], reply.get("where", ""))

    def _request(self, request: dict, what: str) -> dict:
        self.last_call = what
        if not self._process.is_alive():
            raise SandboxFatal(self._death_reason(what))
        try:
            self._conn.send_bytes(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            raise SandboxFatal(self._death_reason(what)) from None
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or not self._conn.poll(remaining):
            self.kill()
            raise SandboxFatal(
                f"timed out: the problem's time limit of {self.limits.seconds:g} s ran out while running {what}")
        try:
            payload = self._conn.recv_bytes()
        except (EOFError, OSError):
            raise SandboxFatal(self._death_reason(what)) from None
        return decode(payload)

    def _death_reason(self, what: str) -> str:
        self._process.join(timeout=5)
        code = self._process.exitcode
        if code is None:
            return f"the child process stopped answering while running {what}"
        if code < 0:
            name = signal.Signals(-code).name
            extra = " (killed: out of memory?)" if name == "SIGKILL" else ""
            extra = " (CPU time limit)" if name == "SIGXCPU" else extra
            return f"the process running your code died with {name}{extra} while running {what}"
        return (f"the process running your code exited with status {code} while running {what}"
                " (does your code call sys.exit, os._exit or exit?)")

    # -- output and cleanup
    def output_tail(self, limit: int = 2000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        text = data[-limit:].decode("utf-8", "replace")
        return ("…" if len(data) > limit else "") + text

    def kill(self) -> None:
        pid = self._process.pid
        if pid is not None:
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                except (ProcessLookupError, PermissionError, OSError):
                    pass
        if self.ids:
            _kill_all_of_uid(self.ids[0])
        self._process.join(timeout=5)

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send_bytes(pickle.dumps({"op": "exit"}))
                self._process.join(timeout=1)
            except (BrokenPipeError, OSError):
                pass
        self.kill()
        self._conn.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _copy_submission(src: Path, dst: Path) -> None:
    """Copy the submission's Python sources (the child must not edit the original)."""
    dst.mkdir(parents=True)
    if not src.is_dir():
        return
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
        elif path.suffix in {".py", ".json", ".txt", ".npz", ".pt"} and path.stat().st_size < 50_000_000:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst / rel)


def _kill_all_of_uid(uid: int) -> None:
    """Kill every process of the sandbox user (double-forked daemons included)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


# --------------------------------------------------------------------------- wire format
def decode(payload: bytes) -> dict:
    """Read a child's reply. ``weights_only=True`` loads tensors and plain
    containers only, so a forged reply cannot run code in the judge."""
    try:
        raw = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any malformed reply
        return {"ok": False, "kind": "fatal", "message": f"unreadable reply from the child process ({err})"}
    if not isinstance(raw, dict) or "ok" not in raw:
        return {"ok": False, "kind": "fatal", "message": "malformed reply from the child process"}
    if raw["ok"]:
        raw["value"] = harness.unpack(raw.get("value"))
        raw["grads"] = harness.unpack(raw.get("grads"))
    return raw


def describe_call(function: str, args: tuple, kwargs: dict | None) -> str:
    parts = [harness.short_repr(a) for a in args] + [f"{k}={harness.short_repr(v)}" for k, v in (kwargs or {}).items()]
    return f"{function}({', '.join(parts)})"
