"""Finding and killing what a child left running, and the work folders of dead judges.

psutil reads process trees where the platform keeps them (/proc on Linux,
sysctl on macOS). Where it cannot (Linux with /proc hidden), the judge still has
two ways that need no process table: the child's process group, and, for a root
judge, a helper that becomes the sandbox uid and calls ``kill(-1, SIGKILL)``,
which reaches every process of that uid (escaped daemons and fork bombs
included) and nothing else.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

try:
    import psutil
except Exception:  # noqa: BLE001 - missing or broken: the process-group and uid kills still work
    psutil = None


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` ([] when the process table cannot be read)."""
    if psutil is None:
        return []
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 - gone already, or no /proc
        return []


def kill_tree(pid: int) -> None:
    """SIGKILL every descendant of ``pid`` (not ``pid`` itself), until none is left."""
    for _ in range(50):
        found = descendants(pid)
        if not found:
            return
        for child in found:
            _kill(child)
        time.sleep(0.01)


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` (the child calls setsid) and ``pid`` itself."""
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass


UID_SWEEPS = 10  # kill(-1) passes, 2 ms apart: a fork in flight during one pass is caught by the next


def kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (root only): a forked helper drops to ``uid`` and sends
    SIGKILL to every process it may signal, in a few passes. (kill(-1) reports no error when
    nothing of the uid is left, since other users' processes count as tried: no early exit.)
    Where the process table can be read, sweep again while any process of the uid remains."""
    for _ in range(5):
        pid = os.fork()
        if pid == 0:  # only simple system calls between fork and _exit
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(uid)
                for _ in range(UID_SWEEPS):
                    os.kill(-1, signal.SIGKILL)
                    time.sleep(0.002)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        if uid not in uids_in_use():
            return


def uids_in_use() -> set[int]:
    """Real uids of running processes (empty when the process table cannot be read)."""
    if psutil is None:
        return set()
    try:
        return {p.info["uids"].real for p in psutil.process_iter(["uids"]) if p.info.get("uids")}
    except Exception:  # noqa: BLE001
        return set()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


# --------------------------------------------------------------------------- work folders
WORKDIR_PREFIX = "grader-sandbox-"  # then the judge's pid: grader-sandbox-<pid>-<random>


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))


def sweep_orphaned_workdirs(tmp: Path | None = None) -> list[Path]:
    """Remove the work folders of judges that are gone.

    A judge cleans up after each problem, but one killed with SIGKILL (an
    impatient Ctrl-C twice, an out-of-memory kill, Gradescope's timeout) cannot,
    and each folder holds a copy of a submission. A folder is orphaned when the
    pid in its name is no longer a running process. Returns what was removed.
    """
    removed = []
    for path in Path(tmp or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
