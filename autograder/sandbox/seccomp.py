"""A seccomp-BPF filter: the system calls that Landlock and a uid of its own leave open, refused by the kernel.

Landlock decides which files the child may open; it does not cover what outlives a process (SysV IPC
segments and queues, kernel keyrings), sockets other than TCP (UDP on 127.0.0.1 reaches a child graded at
the same time), metadata changes (chmod, utime, chown on any file the child can name), or, before ABI 6,
signals; and when the child keeps the judge's uid (an ordinary-user judge, GRADER_NO_PRIVDROP=1) it may
trace and signal the judge and the fork server. The filter below closes each, one row of ``RULES`` per
reason. It is installed last in the child, after the limits, the uid and Landlock, and every process the
child starts inherits it; it can never be lifted.

The filter is a classic BPF program over ``struct seccomp_data`` (the call's number, the architecture, the
arguments), written out by hand with the tiny assembler at the bottom: no libseccomp to install. Only Linux
on x86_64 and aarch64 is supported (the call numbers differ per architecture); elsewhere ``available()`` is
False and the child runs without it (``Confinement.describe`` says so).
See Documentation/userspace-api/seccomp_filter.rst in the Linux sources.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import socket
import struct
import sys

# What the filter does with a call that matches a row (each is a block of the program, below).
REFUSE = "refuse"  # EPERM
PRETEND = "pretend"  # return 0 without doing anything: ordinary code (shutil.copy) keeps working
UNIX_ONLY = "unix_only"  # socket(): AF_UNIX only, any other domain EACCES
SPARE_PROTECTED = "spare_protected"  # signals: EPERM to the judge, the fork server, their groups, or -1 (everyone)
NO_NEW_NAMESPACES = "no_new_namespaces"  # clone(): EPERM with any CLONE_NEW* flag
ABSENT = "absent"  # ENOSYS: the C library falls back to an older call the filter can read

RULES = (
    # (system calls, what the filter does, why)
    (("shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semtimedop", "semctl",
      "msgget", "msgsnd", "msgrcv", "msgctl"), REFUSE,
     "SysV IPC outlives the process that made it (data for the next problem, memory outside every limit), "
     "and the ids of everyone's segments are listed in /proc/sysvipc"),
    (("socket",), UNIX_ONLY, "Landlock restricts TCP only: UDP, raw and netlink sockets reach other processes"),
    (("io_uring_setup", "io_uring_enter", "io_uring_register"), REFUSE,
     "io_uring performs socket and file operations without system calls the filter sees"),
    (("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp"), REFUSE,
     "another process's memory, registers or files (the judge's, when the child has its uid)"),
    (("keyctl", "add_key", "request_key"), REFUSE, "kernel keyrings outlive the process"),
    (("bpf", "perf_event_open", "userfaultfd"), REFUSE, "kernel attack surface no homework needs"),
    (("mount", "umount2", "pivot_root", "chroot", "unshare", "setns"), REFUSE,
     "a view of the system of its own, where Landlock's rules mean something else"),
    (("clone",), NO_NEW_NAMESPACES, "unshare's namespaces, through clone's flags"),
    (("clone3",), ABSENT, "its flags are in memory the filter cannot read; glibc then uses clone"),
    (("open_by_handle_at", "name_to_handle_at"), REFUSE, "opens files by handle, around path checks"),
    (("chown", "fchown", "lchown", "fchownat"), REFUSE, "a file's owner: Landlock does not cover metadata"),
    (("chmod", "fchmod", "fchmodat", "fchmodat2", "utime", "utimes", "utimensat", "futimesat"), PRETEND,
     "modes and times of files the child can name (the checkout, the venv): Landlock does not cover them"),
    (("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open"), SPARE_PROTECTED,
     "the judge and the fork server (same uid on the ordinary-user path; Landlock scopes signals from ABI 6)"),
    (("pidfd_send_signal",), REFUSE, "its target is a descriptor (/proc/<pid> opens as one): unreadable here"),
)

# Per architecture: the audit id the kernel reports in seccomp_data.arch, and the call numbers. aarch64 has
# only the *at forms (no chmod, chown, utime...): those rows simply have fewer calls there.
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NUMBERS = {
    "x86_64": dict(
        shmget=29, shmat=30, shmctl=31, shmdt=67, semget=64, semop=65, semtimedop=220, semctl=66, msgget=68,
        msgsnd=69, msgrcv=70, msgctl=71, socket=41, io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
        ptrace=101, process_vm_readv=310, process_vm_writev=311, pidfd_getfd=438, kcmp=312, keyctl=250,
        add_key=248, request_key=249, bpf=321, perf_event_open=298, userfaultfd=323, mount=165, umount2=166,
        pivot_root=155, chroot=161, unshare=272, setns=308, clone=56, clone3=435, open_by_handle_at=304,
        name_to_handle_at=303, chown=92, fchown=93, lchown=94, fchownat=260, chmod=90, fchmod=91, fchmodat=268,
        fchmodat2=452, utime=132, utimes=235, utimensat=280, futimesat=261, kill=62, tkill=200, tgkill=234,
        rt_sigqueueinfo=129, rt_tgsigqueueinfo=297, pidfd_open=434, pidfd_send_signal=424, seccomp=317),
    "aarch64": dict(
        shmget=194, shmat=196, shmctl=195, shmdt=197, semget=190, semop=193, semtimedop=192, semctl=191,
        msgget=186, msgsnd=189, msgrcv=188, msgctl=187, socket=198, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, ptrace=117, process_vm_readv=270, process_vm_writev=271, pidfd_getfd=438, kcmp=272,
        keyctl=219, add_key=217, request_key=218, bpf=280, perf_event_open=241, userfaultfd=282, mount=40,
        umount2=39, pivot_root=41, chroot=51, unshare=97, setns=268, clone=220, clone3=435, open_by_handle_at=265,
        name_to_handle_at=264, fchown=55, fchownat=54, fchmod=52, fchmodat=53, fchmodat2=452, utimensat=88,
        kill=129, tkill=130, tgkill=131, rt_sigqueueinfo=138, rt_tgsigqueueinfo=240, pidfd_open=434,
        pidfd_send_signal=424, seccomp=277),
}
_MACHINE = platform.machine()
_X32_BIT = 0x40000000  # x86_64 calls with this bit set use the x32 ABI's numbering: refused outright
_CLONE_NEW_ANY = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET

_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data; args[0]'s low 32 bits (little-endian)
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_SECCOMP_GET_ACTION_AVAIL = 2


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Can this process install the filter: Linux, a supported architecture (a 64-bit Python: a 32-bit one
    makes another ABI's calls), a kernel with filter mode?"""
    if not sys.platform.startswith("linux") or _MACHINE not in _AUDIT_ARCH or struct.calcsize("P") != 8:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    action = ctypes.c_uint32(_RET_ERRNO)
    return libc.syscall(ctypes.c_long(_NUMBERS[_MACHINE]["seccomp"]), ctypes.c_uint(_SECCOMP_GET_ACTION_AVAIL),
                        ctypes.c_uint(0), ctypes.byref(action)) == 0


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(protected_pids) -> None:
    """Filter this process's system calls (and those of every process it starts) by ``RULES``; signals may
    not reach ``protected_pids`` nor their process groups. Raises OSError if the kernel refuses."""
    code = program(_MACHINE, protected_pids)
    filters = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(code) // 8, ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    # Landlock has set no_new_privs already; without it (older kernels) the kernel requires it for a filter.
    for name, request, args in (("PR_SET_NO_NEW_PRIVS", _PR_SET_NO_NEW_PRIVS, (1, 0, 0, 0)),
                                ("PR_SET_SECCOMP", _PR_SET_SECCOMP, (_SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0))):
        if libc.prctl(request, *args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl({name}) for the seccomp filter: {os.strerror(err)}")


def program(machine: str, protected_pids) -> bytes:
    """The filter for ``machine`` as struct sock_filter records, ready for the kernel: the part that is the
    same for every child (assembled once, at import, in the fork server), then the signal block."""
    targets = sorted({-1, *(pid for p in set(protected_pids) if p > 0 for pid in (p, -p))})
    return _BY_CALL[machine] + _assemble([_load(_ARG0), *[_if_equal(pid, "protected") for pid in targets],
                                          _ret(_RET_ALLOW), "protected", _ret(_RET_ERRNO | errno.EPERM)])


def _by_call(machine: str) -> bytes:
    """The architecture check and ``RULES``, up to the signal block, which comes right after (last, since
    its length grows with the protected pids: every jump in classic BPF goes forward, 255 at most)."""
    numbers = _NUMBERS[machine]
    # Another ABI's calls (i386 through int 0x80 on x86_64) have other numbers: refused outright.
    out: list = [_load(_ARCH), _if_equal(_AUDIT_ARCH[machine], 0, REFUSE), _load(_NR)]
    if machine == "x86_64":
        out.append(_if_at_least(_X32_BIT, REFUSE))
    out += [_if_equal(numbers[name], action) for names, action, _ in RULES for name in names if name in numbers]
    out += [_ret(_RET_ALLOW),
            REFUSE, _ret(_RET_ERRNO | errno.EPERM),
            PRETEND, _ret(_RET_ERRNO | 0),
            ABSENT, _ret(_RET_ERRNO | errno.ENOSYS),
            UNIX_ONLY, _load(_ARG0), _if_equal(socket.AF_UNIX, "unix"), _ret(_RET_ERRNO | errno.EACCES),
            "unix", _ret(_RET_ALLOW),
            NO_NEW_NAMESPACES, _load(_ARG0), _if_any_bit(_CLONE_NEW_ANY, "namespace"), _ret(_RET_ALLOW),
            "namespace", _ret(_RET_ERRNO | errno.EPERM),
            SPARE_PROTECTED]
    return _assemble(out)


# --------------------------------------------------------------------------- a tiny BPF assembler
# An instruction is (code, jump if true, jump if false, k); a jump is 0 (the next instruction) or a label, a
# string placed in the list just before the instruction it names (or last: the instruction after the list).
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06


def _load(offset: int):
    return (_LD_W_ABS, 0, 0, offset)


def _if_equal(value: int, then, otherwise=0):
    return (_JEQ_K, then, otherwise, value)


def _if_at_least(value: int, then):
    return (_JGE_K, then, 0, value)


def _if_any_bit(mask: int, then):
    return (_JSET_K, then, 0, mask)


def _ret(action: int):
    return (_RET_K, 0, 0, action)


def _assemble(program: list) -> bytes:
    labels, at = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = at
        else:
            at += 1
    out, at = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        code, jt, jf, k = item
        jumps = [labels[j] - at - 1 if isinstance(j, str) else j for j in (jt, jf)]
        assert all(0 <= j <= 255 for j in jumps), f"BPF jump out of range at instruction {at}: {jumps}"
        out.append(struct.pack("=HBBI", code, *jumps, k & 0xFFFFFFFF))
        at += 1
    return b"".join(out)


_BY_CALL = {machine: _by_call(machine) for machine in _NUMBERS}
