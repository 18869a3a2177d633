"""The judge's side of a sandbox: start a child, send requests, read data back.

The judge (this process) never imports student code. A ``Sandbox`` holds one
child process and one copy of the submission; ``call`` runs a student function
there and returns only data (see ``wire``). Whatever the student code does in
the child (hang, crash, exit, monkeypatch, forge replies, print without end)
can only change the data the judge receives, never how the judge scores it.

Children are forked from the fork server (``forkserver``), which has imported
torch, numpy, gymnasium and the given code, but nothing of the submission or
the reference.

Before grading, ``prepare`` sweeps the work folders of dead judges (and, in uid
mode, protects the sealed folders), and ``self_check`` runs one child under the
same confinement to prove that it can import what the judge can.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import stat
import threading
import time
from pathlib import Path

from autograder.paths import ROOT, SOLUTIONS
from autograder.sandbox import channel, child, forkserver, isolation, processes, tamper, wire
from autograder.sandbox.errors import (GraderError, KnownHang, NotImplementedYet, SandboxFatal,
                                       StudentException, SubmissionError)
from autograder.sandbox.limits import Limits

# The folders the child must never read: the checkout (solutions/, tests/, the variants library with its right
# answers, .git, the grader) except what isolation.GIVEN_CODE exposes, and the judge's results. Landlock seals them
# all; uid mode chmods these.
SEALED = (ROOT,)
PROTECTED_IN_UID_MODE = (SOLUTIONS, ROOT / ".git", ROOT / "tests", ROOT / "instructor" / "variants")
STARTUP_SECONDS = 300  # a cold fork server imports torch first; not charged to the student
DUMP_WAIT_SECONDS = 0.5
# Modules the start-up self-check imports in a confined child: lazy standard-library imports (pure Python and C
# extensions: Python's own prefix), a functional API students use (the virtualenv's packages), the given code.
# Those the judge cannot import are left out. Heavier ones (MuJoCo, Box2D) are reached through the same paths.
SELF_CHECK_MODULES = ("ctypes.wintypes", "decimal", "sqlite3", "torch.func", "rlkit.sampling")


# --------------------------------------------------------------------------- grader start
def prepare(sealed=()) -> isolation.Confinement:
    """Once per grade, before any sandbox: remove the work folders of dead judges (in the background: one a
    student filled with millions of files must not cost the next student's grade its time) and, in uid
    mode, take the sealed folders' permissions away from other users. Returns the plan's shape."""
    threading.Thread(target=processes.sweep_orphaned_workdirs, name="sweep", daemon=True).start()
    mode, _ = isolation.chosen_mode()
    if mode == "uid" and isolation.drop_privileges_wanted():
        # Never a folder that holds the given code (the results' folder may be the checkout itself).
        given = [Path(p).resolve() for p in isolation.GIVEN_CODE]
        isolation.protect([*PROTECTED_IN_UID_MODE,
                           *(s for s in sealed if not any(g.is_relative_to(Path(s).resolve()) for g in given))])
    return isolation.plan(Path("/nonexistent"), [*SEALED, *sealed])


def self_check(submission: Path, device: str = "cpu", sealed=()) -> None:
    """One child, under the same confinement as every problem's, imports SELF_CHECK_MODULES
    (those the judge can find) and reads its copy of the submission. Raises GraderError
    naming what it could not reach and what to do; never a student's failure."""
    names = [m for m in SELF_CHECK_MODULES if _findable(m)]
    with Sandbox(submission, device, Limits(seconds=120, memory_mb=1024), sealed=sealed) as box:
        try:
            reply = box.request({"op": "selfcheck", "modules": names, "paths": [str(p) for p in isolation.GIVEN_CODE]},
                                "the start-up self-check")
        except (SandboxFatal, RuntimeError) as err:
            raise GraderError(f"the sandbox could not start: {err}") from None
        problems = reply.get("value") if reply.get("ok") else [reply.get("message", "no reply")]
        if problems:
            raise GraderError(_self_check_advice(box.confinement, problems))


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _self_check_advice(conf: isolation.Confinement, problems: list) -> str:
    paths = sorted({m.group(1) for p in problems for m in [re.search(r"(/[^\s:']+)", str(p))] if m}
                   | {_origin(m.group(1)) for p in problems for m in [re.match(r"import ([\w.]+):", str(p))] if m})
    blocked = [_first_blocked(p) for p in paths]
    lines = ["the sandboxed child cannot reach what the grader needs, so no problem can be graded fairly:",
             *[f"  {p}" for p in problems[:8]], f"({conf.describe()})"]
    if any(blocked):
        lines.append(f"the first folder it cannot enter: {next(b for b in blocked if b)}")
    if conf.mode == "uid":
        lines.append("this kernel has no Landlock, so the child (another uid) relies on file permissions: make "
                     "Python, the virtualenv and the checkout readable by other users (chmod o+rx on each parent "
                     "folder), install them outside /root, or set GRADER_NO_PRIVDROP=1 to grade as root without "
                     "file isolation")
    else:
        lines.append("please report this with the lines above")
    return "\n".join(lines)


def _origin(module: str) -> str:
    """Where the judge finds ``module`` (the file the child could not reach)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return ""
    return (spec.origin or "") if spec else ""


def _first_blocked(path: str) -> str:
    """The first ancestor of ``path`` that others cannot enter (mode lacks o+x), if any."""
    parts = Path(path).parts
    for i in range(1, len(parts) + 1):
        folder = Path(*parts[:i])
        try:
            if folder.is_dir() and not os.stat(folder).st_mode & stat.S_IXOTH:
                return f"{folder} (mode {stat.S_IMODE(os.stat(folder).st_mode):o})"
        except OSError:
            return str(folder)
    return ""


# --------------------------------------------------------------------------- output
class OutputCapture:
    """Drains the child's stdout and stderr from a pipe in a thread, keeping the first
    ``keep`` bytes and the last few times ``keep``, and counting the rest: printing
    costs the child nothing but the write, and never fills a disk or the judge's memory."""

    def __init__(self, read_fd: int, keep: int = 4096):
        self.keep, self.total = keep, 0
        self.head = b""
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_size = 0
        self._fd = read_fd
        self._lock = threading.Lock()
        self._end: int | None = None  # from here on the child wrote the grader's stack dump (``dump_from``)
        self._thread = threading.Thread(target=self._drain, name="sandbox-output", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self._lock:
                self.total += len(chunk)
                if len(self.head) < self.keep:
                    room = self.keep - len(self.head)
                    self.head, chunk = self.head + chunk[:room], chunk[room:]
                if chunk:
                    self._tail.append(chunk)
                    self._tail_size += len(chunk)
                    while self._tail_size - len(self._tail[0]) >= 4 * self.keep:
                        self._tail_size -= len(self._tail.popleft())
        os.close(self._fd)

    def since(self, offset: int) -> str:
        """What arrived after the first ``offset`` bytes (as far as the kept head and tail reach)."""
        head = self.head[offset:]
        after_head = self.total - max(offset, len(self.head))
        tail = b"".join(self._tail)[-after_head:] if after_head > 0 else b""
        return (head + tail).decode("utf-8", "replace")

    def dump_from(self, offset: int) -> None:
        """What arrives from ``offset`` on is the stack dump the judge asked for: the grader's evidence, never
        shown as what the student's code printed (the child is killed after it)."""
        self._end = offset

    def text(self) -> str:
        """What the student's code printed: the first ``keep`` bytes and the last ``keep``."""
        with self._lock:
            total, kept = self.total, b"".join(self._tail)
        end = total if self._end is None else min(total, self._end)
        head, tail = self.head[:end], kept[:max(0, end - (total - len(kept)))][-self.keep:]
        if end <= len(head) + len(tail):
            return (head + tail).decode("utf-8", "replace")
        return (head.decode("utf-8", "replace")
                + f"\n[… your code printed {_size(end)}; the first and last {_size(self.keep)} are kept …]\n"
                + tail.decode("utf-8", "replace"))

    def finish(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


# --------------------------------------------------------------------------- the sandbox
class Sandbox:
    """One child process, holding one copy of the submission.

    ``call`` runs a student function; its budget is what is left of
    ``limits.seconds`` for the whole sandbox (one problem).
    """

    def __init__(self, submission: Path, device: str = "cpu", limits: Limits | None = None, sealed=()):
        self.limits = limits or Limits()
        self.device = device
        self.workdir = processes.new_workdir()
        self.code_dir = self.workdir / "submission"
        self.home = self.workdir / "home"
        copy_submission(Path(submission), self.code_dir)
        (self.home / "tmp").mkdir(parents=True)
        self.confinement = isolation.plan(self.workdir, [*SEALED, *sealed], device)
        if self.confinement.ids:
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.chown(path, *self.confinement.ids, follow_symlinks=False)
        self._closed = False
        server = forkserver.start()
        self._conn, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_read, out_write = os.pipe()
        evidence_read, evidence_write = os.pipe()
        self._deadline = None  # set when the child is ready: the clock counts student code only
        self._window: _Window | None = None  # a shorter limit for some requests (see ``limited``)
        self._guarded: dict[str, str] = {}  # function → why it is not run (see ``guard``)
        try:
            self._process = server.spawn((str(self.code_dir), str(self.home), self.confinement, self.limits.memory_mb,
                                          self.limits.seconds, device),
                                         [child_end.fileno(), out_write, evidence_write], STARTUP_SECONDS)
        except forkserver.ForkServerGone as err:
            for fd in (out_read, out_write, evidence_read, evidence_write):
                os.close(fd)
            child_end.close()
            self._conn.close()
            self._closed = True
            processes.remove_tree(self.workdir)
            raise RuntimeError(str(err)) from None
        processes.track(self._process.pid, self.confinement.ids[0] if self.confinement.ids else None)
        child_end.close()
        os.close(out_write)
        os.close(evidence_write)
        self.output = OutputCapture(out_read)
        self.evidence = tamper.EvidenceReader(evidence_read)

    # -- requests
    def load(self, module: str, function: str) -> None:
        """Import ``module`` from the submission and check it defines ``function``."""
        reply = self.request({"op": "load", "module": module, "function": function}, f"importing {module}")
        if not reply["ok"]:
            if reply["kind"] == "fatal":
                raise SandboxFatal(reply["message"])
            raise SubmissionError(load_message(reply), module, load_diagnosis(reply))

    def guard(self, module: str, function: str, verdict: str) -> None:
        """From now on ``module.function`` (loaded) is not run in this child: a call of it, by the judge or by other
        student code, ends the problem at once with ``verdict`` (a KnownHang). For a function that already failed to
        return on the judge's probe (``autograder.hangs``)."""
        reply = self.request({"op": "guard", "module": module, "function": function}, f"guarding {function}")
        if not reply["ok"]:
            raise SandboxFatal(reply["message"] if reply["kind"] == "fatal"
                               else f"the child could not set aside {function}: {reply['message']}")
        self._guarded[function] = verdict

    @contextlib.contextmanager
    def limited(self, seconds: float, label: str):
        """Requests inside get at most ``seconds`` between them (counted from the first), within the problem's own
        limit: a pre-check of a long problem that hangs costs its own short limit, not the problem's. A time-out
        there names ``label`` ("the pre-check before training") and its limit."""
        outer, self._window = self._window, _Window(seconds, label)
        try:
            yield
        finally:
            self._window = outer

    def call(self, module: str, function: str, args: tuple = (), kwargs: dict | None = None,
             grad_wrt: tuple[int, ...] = (), cotangent=None):
        """Call ``module.function(*args, **kwargs)`` in the child.

        Returns the decoded reply: ``value``, ``mutated`` (indices of the arguments, positional then keyword,
        the call modified), ``after``, ``grads``, ``contract`` (see ``effects``).
        """
        request = {"op": "call", "module": module, "function": function, "args": args,
                   "kwargs": kwargs or {}, "grad_wrt": grad_wrt, "cotangent": cotangent}
        reply = self._checked(self.request(request, wire.describe_call(function, args, kwargs),
                                           (*args, *(kwargs or {}).values())), function)
        if reply["mutated"] is None:
            raise SandboxFatal(f"malformed reply to {function}: the arguments as the call left them are missing",
                               "malformed-reply")
        return reply

    def task(self, name: str, module: str, args: tuple = (), kwargs: dict | None = None):
        """Run the grader's ``autograder.child_tasks.<name>(student_module, *args, **kwargs)`` in the child,
        with the submission's ``module`` (loaded first with ``load``). Returns the decoded reply."""
        request = {"op": "task", "task": name, "module": module, "args": args, "kwargs": kwargs or {}}
        return self._checked(self.request(request, wire.describe_call(name, args, kwargs)), name)

    def map(self, module: str, function: str, calls: list[tuple[tuple, dict]]) -> dict:
        """Many calls in one round trip. Returns the decoded reply, each field a list with one item per call:
        ``value``, ``mutated``, ``after``, ``contract``."""
        request = {"op": "map", "module": module, "function": function, "calls": calls}
        return self._checked(self.request(request, f"{function} (x{len(calls)})",
                                          [(*args, *kwargs.values()) for args, kwargs in calls], batch=True), function)

    def _checked(self, reply: dict, function: str) -> dict:
        if reply["ok"]:
            return reply
        if reply["kind"] == "not_implemented":
            raise NotImplementedYet(reply.get("function") or function, wire.where(reply))
        if reply["kind"] == "not_run":  # the message names the guarded function; the frame is its caller's
            guarded = (reply["message"].split() or [""])[0]
            verdict = self._guarded.get(guarded, f"not graded: {guarded or function} was set aside by the grader")
            called = wire.where(reply)  # empty when the judge called it itself
            raise KnownHang(verdict + (f" (called at {called})" if called else ""))
        if reply["kind"] == "fatal":
            raise SandboxFatal(reply["message"])
        raise StudentException(function, reply["type"], reply["message"], wire.where(reply))

    def _wait_ready(self, what: str) -> None:
        """Wait for the child to finish confining itself (no student code runs before)."""
        try:
            ready = channel.read_frame(self._conn, time.monotonic() + STARTUP_SECONDS, len(wire.READY))
        except channel.FrameTimeout:
            self.kill()
            raise RuntimeError(f"the sandbox did not start within {STARTUP_SECONDS} s") from None
        except (EOFError, OSError, channel.FrameTooLarge):
            raise RuntimeError(f"the sandbox died while starting: {self._death_reason(what)}") from None
        if ready != wire.READY:
            raise RuntimeError("the sandbox sent an unexpected greeting")
        self._deadline = time.monotonic() + self.limits.seconds

    def request(self, request: dict, what: str, args: tuple | list | None = None, batch: bool = False) -> dict:
        """Send ``request`` and read the reply by the problem's deadline; returns the decoded reply. With ``args``
        (the call's arguments, positional then keyword; with ``batch``, a list of them, one per call), a
        successful reply's ``mutated`` lists those the call changed (with ``batch``, one list per call)."""
        if self._deadline is None:
            self._wait_ready(what)
        if not self._process.is_alive():
            raise self._died(what)
        sent = wire.dumps_request({**request, "nonce": os.urandom(16).hex()})
        try:
            return self._exchange(sent, what, args, batch)
        finally:
            sent.arena.close()

    def _exchange(self, sent: wire.Request, what: str, args: tuple | list | None, batch: bool) -> dict:
        try:
            descriptor = sent.arena.descriptor()
            channel.send_frame(self._conn, sent.payload, [descriptor] if descriptor is not None else [])
        except OSError:
            raise self._died(what) from None
        window = self._window
        deadline = self._deadline if window is None else min(self._deadline, window.end())
        try:
            payload = channel.read_frame(self._conn, deadline, wire.MAX_REPLY_BYTES)
        except channel.FrameTimeout as late:
            where = self._where_it_hangs()
            self.kill()
            part = (f" (its reply stopped after {late.received} of {late.expected} bytes)"
                    if late.expected is not None else "")
            limit = (f"the problem's time limit of {self.limits.seconds:g} s" if deadline == self._deadline
                     else f"the time limit of {window.seconds:g} s of {window.label}")
            raise SandboxFatal(f"timed out: {limit} ran out while running {what}{part}"
                               + (f"; your code was at {where}" if where else ""), "time-limit") from None
        except EOFError:
            raise self._died(what) from None
        except (OSError, channel.FrameTooLarge):
            self.kill()
            raise SandboxFatal(f"the reply to {what} was unreadable or larger than "
                               f"{wire.MAX_REPLY_BYTES // 2**20} MB", "malformed-reply") from None
        reply = wire.decode(payload, sent.nonce)
        if reply.get("forged"):
            self.kill()
            raise SandboxFatal(f"{wire.FORGED} while running {what}", "forged-reply")
        self.evidence.reported(reply.get("tampered", ()))  # the child's integrity check (see tamper)
        if reply["ok"] and args is not None:
            reply["mutated"] = (wire.mutated_each if batch else wire.mutated)(args, reply["after"], sent)
        return reply

    def _where_it_hangs(self) -> str:
        """Ask the child for a stack dump (faulthandler) and say where the submission's code was (``where_in``)."""
        offset = self.output.total
        self.output.dump_from(offset)
        try:
            os.kill(self._process.pid, child.DUMP_SIGNAL)
        except OSError:
            return ""
        end = time.monotonic() + DUMP_WAIT_SECONDS
        dump = ""
        while time.monotonic() < end and " in child_main" not in dump:  # the child's outermost frame: all is here
            time.sleep(0.05)
            dump = self.output.since(offset)
        return where_in(dump, str(self.code_dir))

    def _died(self, what: str) -> SandboxFatal:
        """The child is gone: why, as the judge sees it (its exit status), with its last output."""
        reason = self._death_reason(what)
        code = self._process.exitcode
        kind = ("crashed" if code is None or code < 0 else "exited")
        if code is not None and code < 0:
            kind = {signal.SIGKILL: "memory-limit", signal.SIGXCPU: "time-limit"}.get(signal.Signals(-code), kind)
        return SandboxFatal(reason, kind)

    def _death_reason(self, what: str) -> str:
        self._process.join(timeout=5)
        self.output.finish(timeout=1)
        code = self._process.exitcode
        if code is None:
            return f"the child process stopped answering while running {what}"
        if code < 0:
            name = signal.Signals(-code).name
            extra = " (killed: out of memory?)" if name == "SIGKILL" else ""
            extra = " (CPU time limit)" if name == "SIGXCPU" else extra
            reason = f"the process running your code died with {name}{extra} while running {what}"
        else:
            reason = f"the process running your code exited with status {code} while running {what}"
        last = self.output.text().strip().splitlines()[-6:]
        return reason + ("; its last output:\n    " + "\n    ".join(last) if last else "")

    def tampering(self) -> tamper.Tampering:
        """What the submission's code touched of the grader's internals so far (see ``tamper``)."""
        return self.evidence.tampering(child_alive=self._process.is_alive())

    # -- output and cleanup
    def output_tail(self) -> str:
        """What the student's code printed (stdout and stderr), capped: head and tail kept."""
        return self.output.text()

    def kill(self) -> None:
        """Kill the child and everything it started: its descendants (orphans are
        re-parented to it, a subreaper), its process group and, when the judge is
        root, every process of the sandbox uid (daemons that escaped included)."""
        if self._process.pid is not None:
            processes.kill_child(self._process.pid, self.confinement.ids[0] if self.confinement.ids else None)
        self._process.join(timeout=5)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._process.pid is not None:
            processes.kill_tree(self._process.pid)  # while the child lives, it is the parent of every orphan
        if self._process.is_alive():
            try:
                channel.send_frame(self._conn, wire.dumps_request({"op": "exit"}).payload)
                self._process.join(timeout=1)
            except (BrokenPipeError, OSError):
                pass
        self.kill()
        processes.untrack(self._process.pid)
        isolation.release_ids(self.confinement.ids)
        self._conn.close()
        self.output.finish()
        self.evidence.close()
        processes.remove_tree(self.workdir)  # never raises: what it cannot remove is reported on stderr

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_message(reply: dict) -> str:
    """A load failure as one line: the file and line first, then the error."""
    where = wire.where(reply)
    if reply.get("type") in ("SyntaxError", "IndentationError", "TabError") and reply.get("file"):
        code = f": {reply['code']}" if reply.get("code") else ""
        return f"{reply['file']}, line {reply['line']}: {reply['type']}: {reply['message']}{code}"
    return reply["message"] + (f" (at {where})" if where else "")


def load_diagnosis(reply: dict) -> str:
    kind = reply.get("type")
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax-error"
    return {"FileNotFoundError": "missing-file", "AttributeError": "missing-function"}.get(kind, "import-error")


class _Window:
    """A shorter time limit for some of a sandbox's requests: ``seconds`` from the first request made in it."""

    def __init__(self, seconds: float, label: str):
        self.seconds, self.label = seconds, label
        self._end: float | None = None

    def end(self) -> float:
        if self._end is None:
            self._end = time.monotonic() + self.seconds
        return self._end


_FRAME = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')


def where_in(dump: str, code_dir: str) -> str:
    """Where a faulthandler stack dump finds the submission's code: its outermost frame there (the function the
    grader called, whose loop is the one that does not end), then the innermost one if it is another.
    "hw1/imitation.py:126 in sample_trajectories, which was running hw1/imitation.py:103 in sample_trajectory"."""
    frames = [f"{os.path.relpath(path, code_dir)}:{line} in {function}"
              for path, line, function in _FRAME.findall(dump) if path.startswith(code_dir + os.sep)]
    if not frames:  # faulthandler lists the most recent call first
        return ""
    outer, inner = frames[-1], frames[0]
    return outer if len(frames) == 1 else f"{outer}, which was running {inner}"


COPIED_SUFFIXES = {".py", ".json", ".txt", ".npz", ".pt"}


def copy_submission(src: Path, dst: Path) -> None:
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
