"""What the child may touch, decided in the judge and applied by the child to itself.

The judge builds a ``Confinement`` before the child starts; the child applies
it right after the fork, before it imports anything of the submission:

- **Landlock** (Linux ≥ 5.13), whoever runs the grader: the child may read only
  Python's installation, the installed packages, the system's libraries, the
  given code (``rlkit/``) and its own copy of the submission, and write only its
  own work folder. ``solutions/``, ``tests/``, ``instructor/``, ``.git``, the grader and the
  results are out of reach whatever their file permissions say, with no change
  to them. TCP and signals to outside processes are refused where the kernel can.
- **A uid of its own** when the grader runs as root: the child cannot signal the
  judge or write anything of root's, and every process of that uid is killed
  when the problem ends. With Landlock it keeps one capability,
  CAP_DAC_READ_SEARCH, so it reads what Landlock allows wherever that lives
  (pyenv under a 0700 /root, a clone under ``mktemp -d``); the read list
  therefore leaves out what only root may read under /etc (/etc/shadow...).
- **Without Landlock** (macOS, older kernels, filtered containers) a root judge
  still drops to the uid, and then file permissions decide: the start-up
  self-check stops the grade with a clear message when Python or the given
  code is out of the uid's reach. An ordinary user's child keeps the user's
  rights (limits and the data-only reply still hold).
- **A system-call filter** (``seccomp``, Linux on x86_64 and aarch64), last, whoever runs the grader:
  no SysV IPC, no sockets but Unix ones, no tracing, no signals to the judge or the fork server, no
  metadata changes; what Landlock and the uid leave open.
"""

from __future__ import annotations

import functools
import os
import random
import resource
import stat
import sys
import threading
import time
import site
from dataclasses import dataclass, field
from pathlib import Path

from autograder.paths import ROOT
from autograder.sandbox import landlock, processes, seccomp

SANDBOX_UID_BASE, SANDBOX_UID_COUNT = 200_000, 100_000  # uids with no account: nothing on disk is theirs
SANDBOX_GID = 65534  # nogroup
GIVEN_CODE = (ROOT / "rlkit",)
# Trees of the system every Python program reads (libraries, ld.so's cache, locale, cpu info).
SYSTEM_TREES = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc", "/proc", "/sys")
# The system tree walked for what only root may read, which the read list leaves out (/etc/shadow, gshadow,
# sudoers, ssh host keys): a root judge's child keeps CAP_DAC_READ_SEARCH. The other trees are too large to
# walk for every judge (/usr, /proc, /sys).
WALKED_FOR_SECRETS = "/etc"
DEVICES_READ = ("/dev/zero", "/dev/urandom", "/dev/random")
DEVICES_WRITE = ("/dev/null", "/dev/full")
CUDA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-caps", "/dev/dri")
MODES = ("landlock", "uid", "none")
EXTRA_WRITABLE: tuple[str, ...] = ()  # the attack tests' shared folder; nothing else ever sets it


@dataclass(frozen=True)
class Confinement:
    """Everything the child does to itself before student code runs (picklable)."""

    mode: str  # "landlock" | "uid" | "none": what keeps the child from the judge's files
    ids: tuple[int, int] | None  # (uid, gid) to drop to, when the judge is root
    read: tuple[str, ...] = ()  # Landlock: readable trees
    write: tuple[str, ...] = ()  # Landlock: writable trees
    landlock_abi: int = 0
    seccomp: bool = False  # the system-call filter (seccomp.py): Linux on x86_64 or aarch64
    protected_pids: tuple[int, ...] = ()  # the judge and its process group: signals may not reach them
    sys_path: tuple[str, ...] = field(default_factory=lambda: tuple(python_paths()))  # after the submission's

    def describe(self) -> str:
        who = f"uid {self.ids[0]}" if self.ids else "the grader's own user"
        how = {"landlock": f"Landlock (ABI {self.landlock_abi})", "uid": "file permissions (no Landlock)",
               "none": "nothing (no Landlock, not root): limits and data-only replies only"}[self.mode]
        calls = ("seccomp refuses SysV IPC, network sockets, tracing and signals to the judge" if self.seccomp
                 else "no system-call filter (seccomp needs Linux on x86_64 or aarch64)")
        return f"student code runs as {who}; the judge's files are kept from it by {how}; {calls}"


def chosen_mode(is_root: bool | None = None) -> tuple[str, int]:
    """(mode, Landlock ABI). GRADER_ISOLATION=landlock|uid|none overrides the choice (tests, debugging)."""
    is_root = os.geteuid() == 0 if is_root is None else is_root
    abi = landlock.abi_version()
    forced = os.environ.get("GRADER_ISOLATION", "")
    if forced in MODES:
        return forced, abi if forced == "landlock" else 0
    if abi >= 1:
        return "landlock", abi
    return ("uid" if is_root else "none"), 0


def python_paths() -> list[str]:
    """The judge's sys.path entries the child keeps: Python's own and the installed packages' (inside a
    prefix, or the user's site-packages), never the checkout or the current folder."""
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    return [p for p in sys.path if p and (p.startswith(prefixes) or p == user_site)]


def drop_privileges_wanted() -> bool:
    return os.name == "posix" and os.geteuid() == 0 and not os.environ.get("GRADER_NO_PRIVDROP")


def plan(workdir: Path, sealed: list[Path], device: str = "cpu") -> Confinement:
    """The confinement of a child that works in ``workdir``; ``sealed`` are trees it must
    never read (the checkout, the reference, the results' folder)."""
    mode, abi = chosen_mode()
    ids = _fresh_ids() if drop_privileges_wanted() else None
    if mode == "uid" and ids is None:
        mode = "none"
    calls = {"seccomp": seccomp.available(), "protected_pids": tuple(sorted({os.getpid(), os.getpgrp()}))}
    if mode != "landlock":
        return Confinement(mode, ids, **calls)
    sealed = [_real(p) for p in sealed]
    trees = {_real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, *python_paths(), *SYSTEM_TREES)}
    prefixes = {_real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    read: list[str] = []
    for tree in sorted(trees):
        if not os.path.exists(tree):
            continue
        inside_sealed = any(_within(tree, s) for s in sealed)
        if inside_sealed and tree not in prefixes and not any(_within(tree, p) for p in prefixes):
            continue
        holes = [s for s in sealed if s != tree and _within(s, tree)]
        if tree == WALKED_FOR_SECRETS:
            holes += root_only(tree)
        read += _carve(tree, holes) if not inside_sealed else [tree]
    read += [str(p) for p in GIVEN_CODE] + list(DEVICES_READ)
    write = [str(workdir), *DEVICES_WRITE, *EXTRA_WRITABLE]
    if device == "cuda":
        write += [d for d in CUDA_DEVICES if os.path.exists(d)]
        write += [f"/dev/{name}" for name in _listdir("/dev") if name.startswith("nvidia")]
    return Confinement(mode, ids, tuple(read), tuple(write), abi, **calls)


def _carve(tree: str, holes: list[str]) -> list[str]:
    """``tree`` as a list of readable subtrees that leaves out every path in ``holes``. A symbolic link
    is left out too: a rule on it would be a rule on its target, which the whole tree never granted."""
    if not holes:
        return [tree]
    if tree in holes:
        return []
    out = []
    for name in _listdir(tree):
        child = os.path.join(tree, name)
        if not os.path.islink(child):
            out += _carve(child, [h for h in holes if _within(h, child)])
    return out


@functools.lru_cache(maxsize=None)
def root_only(tree: str) -> tuple[str, ...]:
    """The files and folders under ``tree`` that other users may not read (no read bit for "other", or a
    folder they may not enter), found once per judge process."""
    found = []
    for folder, folders, files in os.walk(tree):
        for name in folders + files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            closed = stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH
            if not stat.S_ISLNK(st.st_mode) and (closed or not st.st_mode & stat.S_IROTH):
                found.append(path)
        folders[:] = [f for f in folders if os.path.join(folder, f) not in found]
    return tuple(found)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _real(path) -> str:
    return os.path.realpath(os.path.abspath(str(path)))


def _within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip(os.sep) + os.sep)


_handed_out: set[int] = set()  # uids of this judge's live sandboxes (their children may not have dropped to it yet)
_handed_out_lock = threading.Lock()


def _fresh_ids() -> tuple[int, int]:
    """A uid owned by no running process and by no other sandbox of this judge, so that killing every
    process of that uid afterwards never touches another sandbox graded in parallel."""
    in_use = processes.uids_in_use()
    rng = random.Random(f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")
    with _handed_out_lock:
        while True:
            uid = SANDBOX_UID_BASE + rng.randrange(SANDBOX_UID_COUNT)
            if uid not in in_use and uid not in _handed_out:
                _handed_out.add(uid)
                return uid, SANDBOX_GID


def release_ids(ids: tuple[int, int] | None) -> None:
    """The sandbox holding ``ids`` is closed and every process of its uid killed: the uid may be drawn again."""
    if ids:
        with _handed_out_lock:
            _handed_out.discard(ids[0])


# --------------------------------------------------------------------------- uid mode's file permissions
_protected: set[str] = set()


def protect(paths) -> None:
    """uid mode only: make each directory inaccessible to the sandbox uids (no permission
    bits for "other", nor for the group if it is the sandbox group). Landlock needs none of this."""
    for path in paths:
        path = _real(path)
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


# --------------------------------------------------------------------------- the child's side
CAP_DAC_READ_SEARCH = 2
_PR_SET_KEEPCAPS = 8
_PR_SET_CHILD_SUBREAPER = 36


def apply(conf: Confinement, memory_mb: int, seconds: float, device: str) -> None:
    """Run in the child, before any student code: limits, then uid, then Landlock, then the system-call filter."""
    _limit_resources(memory_mb, seconds, device)
    if conf.ids:
        keep = CAP_DAC_READ_SEARCH if conf.mode == "landlock" else None
        _become(conf.ids, keep)
        resource.setrlimit(resource.RLIMIT_NPROC, (256, 256))
    elif sys.platform.startswith("linux") and os.geteuid() == 0:
        _drop_capabilities()  # GRADER_NO_PRIVDROP=1: the judge's uid, but none of root's powers over its processes
    if conf.mode == "landlock":
        landlock.restrict(list(conf.read), list(conf.write), conf.landlock_abi)
    if conf.seccomp:  # the fork server we were forked from is protected too
        seccomp.install((*conf.protected_pids, os.getppid()))


def become_subreaper() -> None:
    """Linux: orphans of student code (double-forked daemons) become our children rather
    than init's, so the judge finds them under this process. Elsewhere nothing to do:
    the process group and the uid sweep still reach them."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _limit_resources(memory_mb: int, seconds: float, device: str) -> None:
    baseline = virtual_size()
    # RLIMIT_AS bounds the address space: Linux only (macOS ignores it), and not with CUDA, which
    # reserves huge ranges. Elsewhere the RSS watchdog (child.py) enforces the limit.
    if sys.platform.startswith("linux") and device == "cpu" and baseline:
        resource.setrlimit(resource.RLIMIT_AS, (baseline + memory_mb * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(seconds * 2) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))


def rlimit_as_applies(device: str) -> bool:
    return sys.platform.startswith("linux") and device == "cpu" and bool(virtual_size())


def virtual_size() -> int:
    """This process's virtual memory size in bytes (0 when it cannot be read, e.g. /proc hidden)."""
    try:
        return int(processes.psutil.Process().memory_info().vms)
    except Exception:  # noqa: BLE001
        return 0


_PR_CAPBSET_DROP, _PR_SET_SECUREBITS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 28, 47, 4
# SECBIT_NOROOT and SECBIT_NO_SETUID_FIXUP set and locked, SECBIT_KEEP_CAPS locked off: uid 0 regains no capability.
_SECUREBITS_NOROOT = 0b111111 & ~(1 << 4)


def _drop_capabilities() -> None:
    """A root child that keeps the judge's uid gives up every capability for good (bounding set, ambient set, and
    the securebits by which uid 0 would get them back on exec): it then stands to the judge as an ordinary user's
    child stands to an ordinary user's judge, with no CAP_SYS_PTRACE or CAP_DAC_OVERRIDE to reach past it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS_NOROOT, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL: past the kernel's last capability
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
        raise OSError(ctypes.get_errno(), "capset(no capabilities)")


def _become(ids: tuple[int, int], keep_cap: int | None) -> None:
    uid, gid = ids
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if keep_cap is not None:
        libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if keep_cap is not None:  # permitted = effective = {keep_cap}, nothing inheritable
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        bit = 1 << keep_cap
        data = (ctypes.c_uint32 * 6)(bit, bit, 0, 0, 0, 0)
        if libc.capset(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capset(CAP_DAC_READ_SEARCH)")
