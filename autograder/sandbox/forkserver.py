"""The fork server every sandboxed child is forked from: one per judge, started first.

It imports trusted modules only (torch, numpy, gymnasium, the given code, the
grader's child side), never the submission or the reference, so a fresh child
per problem costs milliseconds rather than a torch import. ``start()`` is cheap
in the judge: the server imports in its own process, on another core, while the
judge imports its own modules, so the two start-up costs overlap. This module
imports nothing heavy, so the command line can start the server before it
imports torch.

Nothing a child can name leads back to the server. The judge and the server talk
over one end of a socket pair that exists in no file system and no abstract
namespace (multiprocessing's fork server listens on a named socket: a child with
the judge's uid could connect to it and have the unconfined server unpickle a
payload). The forked child closes that end before anything else runs. The judge
and the server are not dumpable, so a child with their uid cannot ptrace them or
read their memory through /proc; the seccomp filter and Landlock's scopes keep
signals off them (see ``isolation``).

Protocol (both ends trusted): each message is an 8-byte length and a pickle. The
judge sends ``("spawn", token, args)`` with the child's file descriptors
attached (SCM_RIGHTS); the server forks, the child runs
``child.child_main(*fds, *args)``, and the server answers ``("spawned", token,
pid)``. When a child ends the server reaps it and sends ``("exited", pid,
exit code)`` (negative: the signal that killed it), as multiprocessing does.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading

from autograder.sandbox import channel

# Imported once by the fork server, so every child starts with them. The grader's own modules among them are
# those whose objects requests carry (unpickled in the child, which cannot read the grader's files).
PRELOAD = ["torch", "torch.optim", "numpy", "gymnasium", "rlkit.trajectory", "rlkit.policies", "rlkit.imitation",
           "rlkit.pg_agent", "autograder.tabular", "autograder.child_tasks", "autograder.sandbox.child"]

# Imported by torch.optim when the first optimizer is made: preloaded when a problem trains (see
# the TRAINING set of the problems package); 1.4 s of the fork server's start that other grades need not wait for.
OPTIMIZER_PRELOAD = ["torch._dynamo"]

_PR_SET_DUMPABLE = 4


class ForkServerGone(RuntimeError):
    """The fork server died or could not start; the sandbox that asked gets no child."""


def _undumpable() -> None:
    """No process of the same uid may ptrace this one or read its memory (Linux; elsewhere nothing to do)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _send(sock: socket.socket, message, fds=()) -> None:
    channel.send_frame(sock, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL), fds)


def _recv(sock: socket.socket):
    """One message and the descriptors that came with it (trusted peers: the judge and its server)."""
    payload, fds = channel.recv_frame(sock)
    return pickle.loads(payload), fds


# --------------------------------------------------------------------------- the judge's side
class Child:
    """A child forked by the server, as the judge sees it: its pid and, once it has ended, its exit code."""

    def __init__(self, server: "ForkServer", pid: int):
        self._server, self.pid = server, pid

    @property
    def exitcode(self) -> int | None:
        return self._server.exit_code(self.pid)

    def is_alive(self) -> bool:
        return self.exitcode is None and not self._server.gone

    def join(self, timeout: float | None = None) -> None:
        self._server.wait_exit(self.pid, timeout)


class ForkServer:
    """The judge's handle on its fork server: start it, ask it for children, learn how they ended."""

    def __init__(self, preload: list[str]):
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # student code iterating over a set sees one order
        code = ("import sys; sys.path[:] = SYS_PATH; from autograder.sandbox.forkserver import serve; "
                "serve(FD, PRELOAD)").replace("SYS_PATH", repr(sys.path)).replace(
                    "FD", str(theirs.fileno())).replace("PRELOAD", repr(preload))
        self._process = subprocess.Popen([sys.executable, *subprocess._args_from_interpreter_flags(), "-c", code],
                                         pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.pid = self._process.pid
        self.gone = False
        self._lock = threading.Lock()  # one spawn at a time: the server answers in order
        self._changed = threading.Condition()
        self._spawned: dict[int, object] = {}
        self._exits: dict[int, int] = {}
        self._token = 0
        threading.Thread(target=self._listen, name="fork-server", daemon=True).start()

    def _listen(self) -> None:
        try:
            while True:
                message, fds = _recv(self._sock)
                for fd in fds:
                    os.close(fd)
                with self._changed:
                    if message[0] == "spawned" or message[0] == "failed":
                        self._spawned[message[1]] = message
                    elif message[0] == "exited":
                        self._exits[message[1]] = message[2]
                    self._changed.notify_all()
        except (EOFError, OSError, pickle.UnpicklingError):
            with self._changed:
                self.gone = True
                self._changed.notify_all()

    def spawn(self, args: tuple, fds: list[int], timeout: float) -> Child:
        """Fork a child that runs ``child.child_main(*fds, *args)``; ``fds`` are handed over (the caller closes its
        copies). Raises ForkServerGone if the server is dead or does not answer within ``timeout``."""
        with self._lock:
            self._token += 1
            token = self._token
            try:
                _send(self._sock, ("spawn", token, args), fds)
            except OSError as err:
                raise ForkServerGone(f"the fork server is gone ({err})") from None
            with self._changed:
                if not self._changed.wait_for(lambda: token in self._spawned or self.gone, timeout):
                    raise ForkServerGone(f"the fork server did not answer within {timeout:g} s")
                if token not in self._spawned:
                    raise ForkServerGone(f"the fork server died (exit status {self._process.poll()})")
                answer = self._spawned.pop(token)
        if answer[0] == "failed":
            raise ForkServerGone(f"the fork server could not fork: {answer[2]}")
        return Child(self, answer[2])

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self.gone, timeout)

    def forget(self, pid: int) -> None:
        with self._changed:
            self._exits.pop(pid, None)

    def stop(self) -> None:
        try:
            self._sock.close()
        finally:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()


_server: ForkServer | None = None
_server_lock = threading.Lock()
_preload: list[str] = PRELOAD


def start(optimizers: bool = True) -> ForkServer:
    """The judge's fork server, starting it on the first call (preloading what optimizers need unless
    ``optimizers`` is False), or again if the one before died."""
    global _server, _preload
    with _server_lock:
        if _server is None or _server.gone:
            if _server is None:
                _preload = PRELOAD + (OPTIMIZER_PRELOAD if optimizers else [])
                _undumpable()
            _server = ForkServer(_preload)
        return _server


# --------------------------------------------------------------------------- the server's side
def serve(fd: int, preload: list[str]) -> None:
    """The server's main loop: import ``preload``, then fork a child per request until the judge is gone."""
    _undumpable()
    os.setpgrp()  # the judge's terminal signals (Ctrl-C) go to the judge, which ends the server by closing the socket
    sock = socket.socket(fileno=fd)
    for name in preload:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a child that needs it reports the failure itself
            pass
    from autograder.sandbox import child

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            ready, _, _ = select.select([sock, wake_read], [], [])
        except InterruptedError:
            continue
        if wake_read in ready:
            os.read(wake_read, 4096)
        _reap(sock)
        if sock not in ready:
            continue
        try:
            message, fds = _recv(sock)
        except (EOFError, OSError):
            os._exit(0)  # the judge is gone
        _, token, args = message
        try:
            pid = os.fork()
        except OSError as err:
            for fd_ in fds:
                os.close(fd_)
            _send(sock, ("failed", token, str(err)))
            continue
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                sock.close()
                os.close(wake_read)
                os.close(wake_write)
                child.child_main(*fds, *args)
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:  # noqa: BLE001 - the grader's own failure in the child: say what it was
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for fd_ in fds:
            os.close(fd_)
        _send(sock, ("spawned", token, pid))


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, ("exited", pid, os.waitstatus_to_exitcode(status)))
