"""Warm grading workers for class grading: one ``python -m autograder serve`` process per job slot.

A worker pays torch's import, the fork server's start and the self-check once, then grades student after
student (autograder/serve.py). Each grade still has its own deadline here: a worker that has not answered by
then is killed with everything it started, and the next student gets a fresh one. A worker that ended (a
crash, or it retired after a grade that used its whole budget) is replaced the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from autograder.paths import ROOT


class WorkerGone(Exception):
    """The worker ended, or was killed at the deadline, before it answered; ``status`` as a process's."""

    def __init__(self, status: int | None):
        super().__init__(status)
        self.status = status  # None: killed at the deadline


class Worker:
    """One warm grader process, driven by one thread at a time."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._buffer = b""

    def grade(self, argv: list[str], log: Path, seconds: float) -> int:
        """Run the ``grade`` command line ``argv`` (without ``python -m autograder``), its output to ``log``;
        return its exit status. Raises WorkerGone when no answer came within ``seconds``."""
        if self.proc is None or self.proc.poll() is not None:
            self._start(log)
        deadline = time.monotonic() + seconds
        try:
            self.proc.stdin.write((json.dumps({"argv": argv, "log": str(log)}) + "\n").encode())
            self.proc.stdin.flush()
            reply = self._read_line(deadline)
        except (BrokenPipeError, OSError):
            reply = None
        if reply is None:
            timed_out = self.proc.poll() is None
            self.stop()
            raise WorkerGone(None if timed_out else self.proc.returncode)
        answer = json.loads(reply)
        if answer.get("retire"):
            self.stop(wait=True)
        return int(answer["status"])

    def _start(self, log: Path) -> None:
        with open(log, "ab") as first_log:  # what it says before its first grade (an import error) goes there
            self.proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve"], cwd=ROOT, env=self.env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=first_log,
                                         start_new_session=True)
        self._buffer = b""

    def _read_line(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def stop(self, wait: bool = False) -> None:
        """End the worker: it finishes on its own when ``wait`` (it retired), else it and its group are killed."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
                return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        with contextlib.suppress(OSError):
            proc.stdout.close()


class WorkerPool:
    """A worker per thread that asks (the class's job slots); ``close()`` ends them all."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self._local = threading.local()
        self._all: list[Worker] = []
        self._lock = threading.Lock()

    def mine(self) -> Worker:
        worker = getattr(self._local, "worker", None)
        if worker is None:
            worker = self._local.worker = Worker(self.env)
            with self._lock:
                self._all.append(worker)
        return worker

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.stop(wait=True)
