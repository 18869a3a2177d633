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

When the judge runs as root (Gradescope, Docker), each child drops to a uid of
its own before running student code: it cannot read the reference solutions
(``HIDDEN`` directories are made inaccessible to other users), write the grader
or its results, or signal the judge, and every process of that uid is killed
when the problem ends. As an ordinary user the child keeps the user's rights:
the limits, the crash containment and the data-only reply still hold, the file
system isolation does not (see README, "Grading you can trust").
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import random
import shutil
import signal
import stat
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from autograder import harness
from autograder.paths import ROOT, SOLUTIONS

DEFAULT_MEMORY_MB = 2048
PRELOAD = ["torch", "numpy", "gymnasium", "rlkit.trajectory", "rlkit.policies", "autograder.harness"]
SANDBOX_UID_BASE, SANDBOX_UID_COUNT = 200_000, 100_000  # uids with no account: nothing on disk is theirs
SANDBOX_GID = 65534  # nogroup
# Directories the child must not read: the reference, git history (which holds it) and the
# tests (whose CORRECT variants are answers).
HIDDEN = (SOLUTIONS, ROOT / ".git", ROOT / "tests")
MAX_REPLY_BYTES = 256 * 2**20
STARTUP_SECONDS = 300  # a cold fork server imports torch first; not charged to the student


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
        from multiprocessing import forkserver

        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        # A fixed hash seed: student code iterating over a set of strings sees the same order every run.
        saved = os.environ.get("PYTHONHASHSEED")
        os.environ["PYTHONHASHSEED"] = "0"
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                del os.environ["PYTHONHASHSEED"]
            else:
                os.environ["PYTHONHASHSEED"] = saved
        _context = context
    return _context


_protected: set[Path] = set()


def protect(paths) -> None:
    """Make each directory inaccessible to the sandbox uids (root judge only):
    no permission bits for "other" (nor for the group, if it is the sandbox group).
    Only the directory's own mode changes; its owner and root keep full access."""
    for path in paths:
        path = Path(path).resolve()
        if path in _protected:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        mask = 0o007 | (0o070 if st.st_gid == SANDBOX_GID else 0)
        if stat.S_ISDIR(st.st_mode) and st.st_mode & mask:
            try:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~mask)
            except OSError as err:  # a read-only checkout: say so, do not hide it
                print(f"warning: cannot protect {path} from the sandbox: {err}", file=sys.stderr)
        _protected.add(path)


def _sandbox_ids() -> tuple[int, int] | None:
    """(uid, gid) to drop to when the judge runs as root, else None.

    Each sandbox gets a uid of its own, owned by no running process, so that
    killing every process of that uid afterwards (double-forked daemons
    included) never touches another sandbox graded in parallel."""
    if os.name != "posix" or os.geteuid() != 0 or os.environ.get("GRADER_NO_PRIVDROP"):
        return None
    in_use = set(_process_uids().values())
    rng = random.Random(f"{os.getpid()}-{time.time_ns()}")
    while True:
        uid = SANDBOX_UID_BASE + rng.randrange(SANDBOX_UID_COUNT)
        if uid not in in_use:
            return uid, SANDBOX_GID


@dataclass
class Limits:
    seconds: float = 60.0
    memory_mb: int = DEFAULT_MEMORY_MB


# --------------------------------------------------------------------------- work directories
WORKDIR_PREFIX = "grader-sandbox-"  # then the judge's pid: grader-sandbox-<pid>-<random>


def sweep_orphaned_workdirs(tmp: Path | None = None) -> list[Path]:
    """Remove the work directories of judges that are gone.

    A judge cleans up after each problem, but one killed with SIGKILL (an
    impatient Ctrl-C twice, an out-of-memory kill, Gradescope's timeout) cannot,
    and each directory holds a copy of a submission. A directory is orphaned when
    the pid in its name is no longer a running process. Returns what was removed.
    """
    removed = []
    for path in Path(tmp or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


# --------------------------------------------------------------------------- the judge's side
class Sandbox:
    """One child process, holding one copy of the submission.

    ``call`` runs a student function; its budget is what is left of
    ``limits.seconds`` for the whole sandbox (one problem).
    """

    def __init__(self, submission: Path, device: str = "cpu", limits: Limits | None = None,
                 hidden=HIDDEN):
        self.limits = limits or Limits()
        self.device = device
        sweep_orphaned_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        self.code_dir = self.workdir / "submission"
        self.home = self.workdir / "home"
        self.log_path = self.workdir / "output.log"
        _copy_submission(Path(submission), self.code_dir)
        self.home.mkdir()
        self.log_path.touch()
        # Read the log through this descriptor: the child owns the directory and may
        # replace output.log by a symlink to a file it cannot read itself.
        self._log_fd = os.open(self.log_path, os.O_RDONLY | os.O_NOFOLLOW)
        self.output_tail_text = ""  # what output_tail() said when the sandbox closed
        self._closed = False
        self.ids = _sandbox_ids()
        if self.ids:
            protect(hidden)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, *self.ids, follow_symlinks=False)
        ctx = _mp_context()
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=harness.child_main,
            args=(child_conn, str(self.code_dir), str(self.home), str(self.log_path), self.ids,
                  self.limits.memory_mb, self.limits.seconds, device),
            daemon=True,
        )
        self._deadline = None  # set when the child is ready: the clock counts student code only
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

    def _wait_ready(self, what: str) -> None:
        """Wait for the child to finish isolating itself (no student code runs before)."""
        if not self._conn.poll(STARTUP_SECONDS):
            self.kill()
            raise RuntimeError(f"the sandbox did not start within {STARTUP_SECONDS} s")
        try:
            ready = self._conn.recv_bytes(64)
        except (EOFError, OSError):
            raise RuntimeError(f"the sandbox died while starting: {self._death_reason(what)}") from None
        if ready != harness.READY:
            raise RuntimeError("the sandbox sent an unexpected greeting")
        self._deadline = time.monotonic() + self.limits.seconds

    def _request(self, request: dict, what: str) -> dict:
        self.last_call = what
        if self._deadline is None:
            self._wait_ready(what)
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
            payload = self._conn.recv_bytes(MAX_REPLY_BYTES)
        except EOFError:
            raise SandboxFatal(self._death_reason(what)) from None
        except OSError:  # more than MAX_REPLY_BYTES, or a broken stream
            self.kill()
            raise SandboxFatal(f"the reply to {what} was unreadable or larger than "
                               f"{MAX_REPLY_BYTES // 2**20} MB") from None
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
        """The last ``limit`` bytes the student's code printed (stdout and stderr)."""
        try:
            size = os.fstat(self._log_fd).st_size
            data = os.pread(self._log_fd, limit, max(0, size - limit))
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        return ("…" if size > limit else "") + text

    def kill(self) -> None:
        """Kill the child and everything it started: its descendants (orphans are
        re-parented to it, a subreaper), its process group and, when the judge is
        root, every process of the sandbox uid (daemons that escaped included)."""
        pid = self._process.pid
        if pid is not None:
            _kill_tree(pid)
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                except (ProcessLookupError, PermissionError, OSError):
                    pass
        if self.ids:
            _kill_all_of_uid(self.ids[0])
        self._process.join(timeout=5)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._process.pid is not None:
            _kill_tree(self._process.pid)  # while the child lives, it is the parent of every orphan
        if self._process.is_alive():
            try:
                self._conn.send_bytes(pickle.dumps({"op": "exit"}))
                self._process.join(timeout=1)
            except (BrokenPipeError, OSError):
                pass
        self.kill()
        self._conn.close()
        self.output_tail_text = self.output_tail()
        try:
            os.close(self._log_fd)
        except OSError:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


COPIED_SUFFIXES = {".py", ".json", ".txt", ".npz", ".pt"}


def _copy_submission(src: Path, dst: Path) -> None:
    """Copy the submission's regular files (the child must not edit the original).

    Symbolic links are skipped, never followed: the judge copies as root, and a
    link to ``solutions/`` would otherwise hand the reference to the child."""
    dst.mkdir(parents=True)
    if not src.is_dir():
        return
    for folder, dirs, files in os.walk(src, followlinks=False):
        rel_dir = Path(folder).relative_to(src)
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")
                   and not os.path.islink(os.path.join(folder, d))]
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or path.suffix not in COPIED_SUFFIXES or not name.isprintable():
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:  # a symlink (ELOOP), a fifo, unreadable
                continue
            with os.fdopen(fd, "rb") as source:
                st = os.fstat(source.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size >= 50_000_000:
                    continue
                (dst / rel_dir).mkdir(parents=True, exist_ok=True)
                with open(dst / rel_dir / name, "wb") as target:
                    shutil.copyfileobj(source, target)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _kill_tree(pid: int) -> None:
    """SIGKILL every descendant of ``pid`` (not ``pid`` itself), until none is left."""
    for _ in range(50):
        tree, found = _children(), []
        stack = list(tree.get(pid, []))
        while stack:
            child = stack.pop()
            found.append(child)
            stack += tree.get(child, [])
        if not found:
            return
        for child in found:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _kill_all_of_uid(uid: int) -> None:
    """Kill every process of the sandbox user (double-forked daemons and fork bombs
    included), sweeping until a pass finds none."""
    for _ in range(100):
        found = 0
        for pid, owner in _process_uids().items():
            if owner == uid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    found += 1
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.01)


def _process_uids() -> dict[int, int]:
    """pid → real uid of every process. Read from /proc/PID/status: after a setuid a
    process is not dumpable, and its /proc/PID directory then belongs to root."""
    uids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status", "rb") as f:
                    for line in f:
                        if line.startswith(b"Uid:"):
                            uids[int(entry)] = int(line.split()[1])
                            break
            except (OSError, ValueError, IndexError):
                pass
    return uids


# --------------------------------------------------------------------------- wire format
REPLY_KINDS = {"not_implemented", "error", "fatal", "load"}


def decode(payload: bytes) -> dict:
    """Read a child's reply, which student code may have forged.

    ``weights_only=True`` loads tensors and plain containers only, so a forged
    reply cannot run code in the judge; every field is then checked, so a
    malformed one is a failure of the submission, never an error of the grader."""
    try:
        with warnings.catch_warnings():  # a forged payload's pickle protocol is no news for the judge's stderr
            warnings.simplefilter("ignore")
            raw = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any malformed reply
        return {"ok": False, "kind": "fatal",
                "message": f"unreadable reply from the child process ({harness.clean_text(str(err), 200)})"}
    try:
        return _validated(raw)
    except Exception:  # noqa: BLE001
        return {"ok": False, "kind": "fatal", "message": "malformed reply from the child process"}


def _validated(raw) -> dict:
    if not isinstance(raw, dict) or not isinstance(raw.get("ok"), bool):
        raise ValueError("no ok field")
    if raw["ok"]:
        mutated = raw.get("mutated") or []
        if not isinstance(mutated, list) or not all(type(i) is int and 0 <= i < 1000 for i in mutated):
            raise ValueError("bad mutated")
        grads = harness.unpack(raw.get("grads"))
        if not (grads is None or isinstance(grads, str)
                or (isinstance(grads, list) and all(isinstance(g, (torch.Tensor, str)) for g in grads))):
            grads = "malformed gradient reply"
        return {"ok": True, "value": harness.unpack(raw.get("value")), "mutated": mutated, "grads": grads}
    if raw.get("kind") not in REPLY_KINDS:
        raise ValueError("bad kind")
    return {"ok": False, "kind": raw["kind"], "type": harness.clean_text(raw.get("type", "Error"), 80),
            "message": harness.clean_text(raw.get("message", ""), 600),
            "where": harness.clean_text(raw.get("where", ""), 300)}


def describe_call(function: str, args: tuple, kwargs: dict | None) -> str:
    parts = [harness.short_repr(a) for a in args] + [f"{k}={harness.short_repr(v)}" for k, v in (kwargs or {}).items()]
    return f"{function}({', '.join(parts)})"
