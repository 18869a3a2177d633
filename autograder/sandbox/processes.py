"""Finding and killing what a child left running, and removing the folders it wrote.

psutil reads process trees where the platform keeps them (/proc on Linux,
sysctl on macOS). Where it cannot (Linux with /proc hidden), the judge still has
two ways that need no process table: the child's process group, and, for a root
judge, a helper that becomes the sandbox uid and calls ``kill(-1, SIGKILL)``,
which reaches every process of that uid (escaped daemons and fork bombs
included) and nothing else.

The judge keeps a list of its live children (``track``), so that when the whole
grade's time runs out it can kill them all at once (``kill_tracked``) even while
its own threads are stuck waiting for them.

Work folders are removed with ``remove_tree``, which student code cannot make
fail: it walks any depth in a loop with one open descriptor, follows no link,
and gives itself back the rights a folder's mode took away.
"""

from __future__ import annotations

import collections
import errno
import os
import signal
import stat
import sys
import tempfile
import threading
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


def kill_child(pid: int, uid: int | None) -> None:
    """Kill a sandbox's child and everything it started: its descendants (orphans are re-parented
    to it, a subreaper), its process group and, with a uid of its own, every process of that uid.
    Never raises: a uid sweep that cannot fork is reported on stderr (the grade goes on)."""
    kill_tree(pid)
    kill_group(pid)
    if uid is not None:
        try:
            kill_uid(uid)
        except OSError as err:
            print(f"warning: the processes of uid {uid} could not be killed: {err}", file=sys.stderr)


# The children of this judge's open sandboxes: pid → the uid they run as (None: the judge's own).
_tracked: dict[int, int | None] = {}
_tracked_lock = threading.Lock()
_ending = False  # this process is about to end: a child tracked from now on is killed at once


def track(pid: int, uid: int | None) -> None:
    with _tracked_lock:
        if not _ending:
            _tracked[pid] = uid
            return
    kill_child(pid, uid)


def untrack(pid: int) -> None:
    with _tracked_lock:
        _tracked.pop(pid, None)


def kill_tracked(ending: bool = False) -> None:
    """Kill every tracked child (``kill_child``), from any thread: the whole grade's time ran out, and the
    threads waiting on those children must be freed whatever they wait for (a reply written halfway).
    ``ending``: this process ends next, and a child a thread starts in the meantime is killed at once (it
    could otherwise run a request's student code past the judge's end)."""
    global _ending
    with _tracked_lock:
        _ending = _ending or ending
        children = list(_tracked.items())
    for pid, uid in children:
        kill_child(pid, uid)


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
    Never raises: a folder that cannot be removed is reported on stderr and left,
    and the grade goes on.
    """
    removed = []
    try:
        for path in Path(tmp or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
            pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
            if pid.isascii() and pid.isdigit() and not alive(int(pid)) and not remove_tree(path):
                removed.append(path)
    except Exception as err:  # noqa: BLE001 - an unreadable temporary folder must not stop a grade
        print(f"warning: the sweep of old work folders stopped: {type(err).__name__}: {err}", file=sys.stderr)
    return removed


# --------------------------------------------------------------------------- removing a tree
FAILURES_KEPT = 20  # what remove_tree names of what it could not remove; the rest are counted
CLEAR_PASSES = 3  # times a folder is emptied before giving up on it (a live process may write into it)


def remove_tree(path) -> list[str]:
    """Remove ``path`` and everything under it; return what could not be removed ([] when all of it went).

    Student code built the tree, so its shape is hostile: folders nested deeper than any recursion or
    PATH_MAX allows, folders without read, write or search rights, names that are not UTF-8 or hold
    newlines, links to files outside, fifos and sockets, millions of entries. So the walk is a loop with
    a list for a stack and one open descriptor (``_empty``); every folder is opened by name relative to
    its parent with O_NOFOLLOW; links and other non-folders are unlinked as they are read, never opened
    or followed; a folder of this uid whose mode keeps its owner out gets its owner's rwx back (as root
    nothing needs it). ``path`` itself being a link: the link is removed, not what it points to.

    Never raises: an unexpected error is returned with the rest, and all of them are reported on
    stderr once, with ``path``.
    """
    failures = _Failures(os.fsdecode(os.fspath(path)))
    try:
        _remove(failures.top, failures)
    except Exception as err:  # noqa: BLE001 - a cleanup must never fail the grade
        failures.add(failures.top, err)
    if failures.count:
        print(f"warning: could not remove all of {failures.top!r}: {failures.lines()[0]}"
              + (f" (and {failures.count - 1} more)" if failures.count > 1 else ""), file=sys.stderr)
    return failures.lines()


class _Failures:
    """What could not be removed, as "where: error" lines (the first FAILURES_KEPT, then a count)."""

    def __init__(self, top: str):
        self.top, self.count, self._kept = top, 0, []

    def add(self, where: str, err: BaseException) -> None:
        self.count += 1
        if len(self._kept) < FAILURES_KEPT:
            self._kept.append(f"{where!r}: {type(err).__name__}: {err}")

    def lines(self) -> list[str]:
        more = self.count - len(self._kept)
        return self._kept + ([f"… and {more} more"] if more else [])

    def inside(self, name: str) -> str:
        return os.path.join(self.top, "…", name)


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove(top: str, failures: _Failures) -> None:
    parent, name = os.path.split(os.path.abspath(top))
    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        try:
            mode = os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):  # a link or a file planted at the name: the name goes, nothing else
            os.unlink(name, dir_fd=parent_fd)
            return
        top_fd = _open_folder(parent_fd, name)
        try:
            _empty(top_fd, failures)
        finally:
            os.close(top_fd)
        os.rmdir(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


class _Folder:
    """A folder on the way down: its name in its parent, its identity, the subfolders still to empty."""

    __slots__ = ("name", "identity", "subfolders", "failed_before")

    def __init__(self, name: str, fd: int, subfolders: list[str], failed_before: int):
        st = os.fstat(fd)
        self.name, self.identity, self.subfolders, self.failed_before = (
            name, (st.st_dev, st.st_ino), subfolders, failed_before)


def _empty(top_fd: int, failures: _Failures) -> None:
    """Empty the folder open at ``top_fd``, depth first with a list for a stack, holding one descriptor below
    the top: a folder is entered from its parent by name (never through a link) and left through its ".."
    entry, which must be the very folder it was entered from (else a live process is moving folders, and the
    walk stops rather than go where they lead)."""
    stack = [_Folder("", top_fd, _clear(top_fd, failures, failures.top), 0)]
    passes: collections.Counter = collections.Counter()
    fd = os.dup(top_fd)  # the folder at stack[-1]
    try:
        while len(stack) > 1 or stack[0].subfolders:
            here = stack[-1]
            if here.subfolders:
                name = here.subfolders.pop()
                try:
                    sub_fd = _open_folder(fd, name)
                except FileNotFoundError:
                    continue
                except OSError as err:
                    failures.add(failures.inside(name), err)
                    continue
                os.close(fd)
                fd, failed_before = sub_fd, failures.count
                stack.append(_Folder(name, fd, _clear(fd, failures, failures.inside(name)), failed_before))
                continue
            stack.pop()
            parent_fd = _open_parent(fd, stack[-1])
            os.close(fd)
            fd = parent_fd
            try:
                os.rmdir(here.name, dir_fd=fd)
            except OSError as err:
                cause_known = failures.count > here.failed_before  # an entry inside it could not be removed
                if err.errno == errno.ENOTEMPTY and not cause_known and passes[here.identity] + 1 < CLEAR_PASSES:
                    passes[here.identity] += 1  # entries appeared while it was read: once more
                    stack[-1].subfolders.append(here.name)
                elif not (err.errno == errno.ENOTEMPTY and cause_known):
                    failures.add(failures.inside(here.name), err)
    finally:
        os.close(fd)


def _open_parent(fd: int, parent: _Folder) -> int:
    up = os.open("..", _FOLDER_FLAGS, dir_fd=fd)
    st = os.fstat(up)
    if (st.st_dev, st.st_ino) != parent.identity:
        os.close(up)
        raise RuntimeError("a folder was moved out of its parent while the tree was removed: the removal "
                           "stopped there rather than follow it")
    return up


def _clear(fd: int, failures: _Failures, where: str) -> list[str]:
    """Unlink every entry of the folder open at ``fd`` but its subfolders; return their names."""
    folders = []
    with os.scandir(fd) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                continue
            except OSError as err:
                failures.add(os.path.join(where, entry.name), err)
    return folders


def _open_folder(dir_fd: int, name: str) -> int:
    """Open the folder ``name`` of ``dir_fd`` for reading, never through a link; a folder of this
    uid whose mode keeps its owner out gets its owner's rwx back first (it may be the judge's uid)."""
    try:
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        try:  # AT_SYMLINK_NOFOLLOW: a link put in its place is refused, never followed
            os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd, follow_symlinks=False)
        except (ValueError, NotImplementedError):
            raise PermissionError(errno.EACCES, "cannot enter, nor change its mode", name) from None
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if st.st_mode & stat.S_IRWXU != stat.S_IRWXU and st.st_uid == os.geteuid() != 0:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)  # to unlink its entries
    except OSError:
        os.close(fd)
        raise
    return fd
