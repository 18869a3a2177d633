"""Channels the sandboxed child must not have: a hostile stub of hw2/discounted_return carries a real
bug (zeros) and one attack each, gets 0, and the attack neither works nor leaves anything behind.

SysV IPC and UDP would carry data from one problem (or student) to the next; /etc/shadow would land in
the student-visible output; chmod/utime/chown, ptrace and signals reach the judge's files and processes
when the child has the judge's uid (GRADER_NO_PRIVDROP=1 or a judge that is not root). The seccomp filter
(autograder/sandbox/seccomp.py) closes them; the tests marked "none" run without Landlock, so that the
filter alone is what holds (an older kernel).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys

import pytest

from autograder import render
from autograder.paths import ROOT, SOLUTIONS
from autograder.problem import Reference
from autograder.runner import grade, select
from autograder.sandbox import landlock, seccomp
from tests.submissions import IS_ROOT, ROOT_ONLY_REASON, grade_source
from tests.test_isolation import assert_zero

pytestmark = pytest.mark.skipif(not seccomp.available(), reason="the seccomp filter needs Linux on x86_64 or aarch64 "
                                "with seccomp filters in the kernel")


@pytest.fixture
def same_uid(monkeypatch):
    """The child keeps the judge's uid, as on the ordinary-user path."""
    monkeypatch.setenv("GRADER_NO_PRIVDROP", "1")


@pytest.fixture(params=["landlock", "none"])
def same_uid_with_or_without_landlock(request, monkeypatch, same_uid):
    """"none": no Landlock either, as on a kernel older than 5.13: the seccomp filter alone holds."""
    if request.param == "landlock" and landlock.abi_version() < 1:
        pytest.skip("needs a kernel with Landlock (Linux ≥ 5.13)")
    monkeypatch.setenv("GRADER_ISOLATION", request.param)
    return request.param


# --------------------------------------------------------------------------- data for the next problem
def _sysv(kind: str) -> set[int]:
    """The ids of the machine's SysV shared memory segments ("shm") or message queues ("msg")."""
    with open(f"/proc/sysvipc/{kind}") as f:
        return {int(line.split()[1]) for line in f.readlines()[1:]}


def _remove_sysv(kind: str, ids) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for ident in ids:  # IPC_RMID
        (libc.shmctl if kind == "shm" else libc.msgctl)(ident, 0, None)


def test_sysv_shared_memory_and_message_queues_cannot_be_created(tmp_path):
    before = {kind: _sysv(kind) for kind in ("shm", "msg")}
    try:
        result = grade_source(tmp_path, """
            import ctypes, os
            import torch
            def discounted_return(rewards, gamma):
                libc = ctypes.CDLL(None, use_errno=True)
                shm = libc.shmget(0, 64 << 20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600: 64 MB
                print(f"shm: MADE {shm}" if shm >= 0 else f"shm: refused, {os.strerror(ctypes.get_errno())}")
                msg = libc.msgget(0, 0o1600)
                print(f"msg: MADE {msg}" if msg >= 0 else f"msg: refused, {os.strerror(ctypes.get_errno())}")
                return torch.zeros_like(rewards)
            """)
        made = {kind: _sysv(kind) - before[kind] for kind in ("shm", "msg")}
    finally:
        for kind in ("shm", "msg"):
            _remove_sysv(kind, _sysv(kind) - before[kind])
    assert_zero(result, "discounted_return is wrong")
    assert "MADE" not in result.student_output, result.student_output
    for kind in ("shm", "msg"):
        assert f"{kind}: refused, Operation not permitted" in result.student_output, result.student_output
    assert made == {"shm": set(), "msg": set()}, f"left behind after the problem: {made}"


def test_udp_on_loopback_reaches_no_other_process(tmp_path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        result = grade_source(tmp_path, f"""
            import socket
            import torch
            def discounted_return(rewards, gamma):
                for family, host in [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]:
                    try:
                        with socket.socket(family, socket.SOCK_DGRAM) as s:
                            s.sendto(b"the answers", (host, {port}))
                        print(f"SENT over {{family.name}}")
                    except OSError as err:
                        print(f"refused {{family.name}}: {{type(err).__name__}}: {{err}}")
                return torch.zeros_like(rewards)
            """)
        try:
            leaked = listener.recv(100)
        except BlockingIOError:  # nothing arrived
            leaked = b""
    finally:
        listener.close()
    assert_zero(result, "discounted_return is wrong")
    assert leaked == b"", "a datagram from the child reached another process"
    for family in ("AF_INET", "AF_INET6"):
        assert f"refused {family}: PermissionError" in result.student_output, result.student_output


ETC_SECRETS = [p for p in ("/etc/shadow", "/etc/gshadow", "/etc/sudoers")
               if os.path.exists(p) and not os.stat(p).st_mode & stat.S_IROTH]


@pytest.mark.skipif(not IS_ROOT, reason=ROOT_ONLY_REASON)
@pytest.mark.skipif(not ETC_SECRETS, reason="this machine has no /etc/shadow, gshadow or sudoers only root may read")
def test_what_only_root_may_read_under_etc_stays_unread(tmp_path):
    """As root the child keeps CAP_DAC_READ_SEARCH (to reach Python under a 0700 /root): Landlock's read
    list must leave out /etc's files without the read bit for other users. Other /etc files stay readable."""
    result = grade_source(tmp_path, f"""
        import torch
        def discounted_return(rewards, gamma):
            for path in {ETC_SECRETS!r} + ["/etc/passwd"]:
                try:
                    with open(path) as f:
                        print(f"READ {{path}}: {{f.read()[:300]!r}}")
                except OSError as err:
                    print(f"blocked {{path}}: {{type(err).__name__}}")
            return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")
    for path in ETC_SECRETS:
        assert f"blocked {path}: PermissionError" in result.student_output, result.student_output
    assert "READ /etc/passwd" in result.student_output, result.student_output


# --------------------------------------------------------------------------- the judge's files and processes
def test_metadata_of_the_judges_files_does_not_change(tmp_path, same_uid):
    """Landlock does not cover chmod, utime or chown; the filter turns the first two into successes that
    change nothing (ordinary code in the child's own folder must keep working) and refuses chown."""
    target = tmp_path / "checkout" / "notes.txt"
    target.parent.mkdir()
    target.write_text("the judge's file\n")
    os.chmod(target, 0o644)
    os.utime(target, (1_000_000_000, 1_000_000_000))
    before = os.stat(target)
    result = grade_source(tmp_path, f"""
        import os
        import torch
        def discounted_return(rewards, gamma):
            for name, change in [("chmod", lambda p: os.chmod(p, 0o777)), ("utime", lambda p: os.utime(p, (0, 0))),
                                 ("chown", lambda p: os.chown(p, 4242, 4242))]:
                try:
                    change({str(target)!r})
                    print(f"{{name}} returned")
                except OSError as err:
                    print(f"{{name}} refused: {{type(err).__name__}}")
            return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")
    after = os.stat(target)
    assert (stat.S_IMODE(after.st_mode), after.st_mtime, after.st_uid, after.st_gid) == \
        (0o644, 1_000_000_000, before.st_uid, before.st_gid), result.student_output
    assert "chown refused: PermissionError" in result.student_output, result.student_output


def _parent_pid(output: str) -> int:
    """The child's parent (the fork server), as the stub printed it."""
    return int(re.search(r"parent (\d+)", output).group(1))


def _state(pid: int) -> str:
    """The one-letter state of ``pid`` (R, S, T for stopped, t for traced...)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_the_judge_and_the_fork_server_cannot_be_traced_or_read(tmp_path, same_uid_with_or_without_landlock):
    result = grade_source(tmp_path, f"""
        import ctypes, os
        import torch

        class IoVec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

        def discounted_return(rewards, gamma):
            libc = ctypes.CDLL(None, use_errno=True)
            print(f"parent {{os.getppid()}}")
            for who, pid in [("fork server", os.getppid()), ("judge", {os.getpid()})]:
                if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
                    os.waitpid(pid, 0x40000000)  # __WALL
                    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
                    print(f"ATTACHED to the {{who}}")
                else:
                    print(f"ptrace of the {{who}} refused: {{os.strerror(ctypes.get_errno())}}")
            buffer = ctypes.create_string_buffer(16)
            local, remote = IoVec(ctypes.addressof(buffer), 16), IoVec(id(torch), 16)  # torch: the fork server's
            libc.process_vm_readv.restype = ctypes.c_ssize_t
            read = libc.process_vm_readv(os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
            error = os.strerror(ctypes.get_errno())
            print(f"READ {{read}} bytes" if read >= 0 else f"process_vm_readv refused: {{error}}")
            return torch.zeros_like(rewards)
        """)
    assert_zero(result, "discounted_return is wrong")
    out = result.student_output
    assert "ATTACHED" not in out and "READ" not in out, out
    for refused in ["ptrace of the fork server refused", "ptrace of the judge refused", "process_vm_readv refused"]:
        assert refused in out, out
    assert _state(_parent_pid(out)) not in "Tt"


def test_signals_do_not_reach_the_judge_or_the_fork_server(tmp_path, same_uid_with_or_without_landlock):
    """SIGSTOP to the fork server, and the harmless signal 0 (does the target exist and may I signal it?)
    to everything else: a SIGSTOP that reached the judge itself would freeze this test. The stub may
    still signal its own child."""
    result = grade_source(tmp_path, f"""
        import os, signal, time
        import torch

        def attempt(what, send):
            try:
                send()
                print(f"REACHED {{what}}")
            except OSError as err:
                print(f"refused {{what}}: {{type(err).__name__}}")

        def discounted_return(rewards, gamma):
            server = os.getppid()
            print(f"parent {{server}}")
            attempt("fork server", lambda: os.kill(server, signal.SIGSTOP))
            attempt("fork server by pidfd", lambda: signal.pidfd_send_signal(
                os.open(f"/proc/{{server}}", os.O_DIRECTORY), signal.SIGSTOP))
            attempt("everyone", lambda: os.kill(-1, 0))
            attempt("judge", lambda: os.kill({os.getpid()}, 0))
            attempt("judge's group", lambda: os.kill(-{os.getpgrp()}, 0))
            mine = os.fork()
            if mine == 0:
                time.sleep(60)
                os._exit(0)
            os.kill(mine, signal.SIGKILL)
            print(f"own child ended by signal {{os.waitpid(mine, 0)[1] & 0x7f}}")
            return torch.zeros_like(rewards)
        """)
    server = _parent_pid(result.student_output)
    try:
        state = _state(server)
    finally:  # a SIGSTOP that got through must not leave the fork server stopped
        os.kill(server, signal.SIGCONT)
    assert_zero(result, "discounted_return is wrong")
    out = result.student_output
    assert "REACHED" not in out, out
    for what in ["fork server", "fork server by pidfd", "everyone", "judge", "judge's group"]:
        assert f"refused {what}: PermissionError" in out, out
    assert "own child ended by signal 9" in out, out
    assert state not in "Tt", f"the fork server is stopped ({state})"


# --------------------------------------------------------------------------- ordinary code under the filter
def test_the_reference_gets_full_marks_for_hw2(tmp_path):
    """Every hw2 problem but the slow training one (600 s), each in its own sandbox under the filter."""
    problems = select("hw2", include_slow=False)
    results = grade(SOLUTIONS, problems, reference=Reference.find(SOLUTIONS))
    assert [(r.problem.id, r.score) for r in results if not r.passed] == [], \
        [(r.problem.id, r.reason) for r in results if not r.passed]
    assert sum(r.score for r in results) == sum(p.points for p in problems)


def test_copying_temp_files_and_socketpairs_in_its_own_folder_still_work(tmp_path):
    result = grade_source(tmp_path, """
        import os, shutil, socket, tempfile
        import torch
        _correct = discounted_return
        def discounted_return(rewards, gamma):
            with open("notes.txt", "w") as f:
                f.write("x")
            shutil.copy("notes.txt", "copy.txt")
            shutil.copy2("notes.txt", "copy2.txt")
            os.chmod("copy.txt", 0o600)
            os.utime("copy.txt")
            shutil.copytree(".", os.path.join(tempfile.mkdtemp(), "tree"), ignore=shutil.ignore_patterns("tmp"))
            with tempfile.NamedTemporaryFile() as f:
                f.write(b"y")
            a, b = socket.socketpair()
            a.sendall(b"ping")
            assert b.recv(4) == b"ping"
            return _correct(rewards, gamma)
        """)
    assert result.passed and result.score == 2, (result.reason, render.details(result), result.student_output)


# --------------------------------------------------------------------------- the filter's table itself
def test_every_call_named_in_the_rules_has_a_number():
    """A misspelt name would silently drop its rule: x86_64 knows every call, aarch64 all but the old ones."""
    named = {name for names, _, _ in seccomp.RULES for name in names}
    assert named <= set(seccomp._NUMBERS["x86_64"])
    assert named - set(seccomp._NUMBERS["aarch64"]) == {"chmod", "chown", "lchown", "utime", "utimes", "futimesat"}


def _verdict(program: bytes, machine: str, name_or_number, arg0: int = 0, arch: int | None = None) -> int:
    """What ``program`` returns for one call, by a classic-BPF interpreter of the four instructions it uses:
    aarch64's program is checked here without an aarch64 kernel."""
    number = seccomp._NUMBERS[machine].get(name_or_number, name_or_number)
    data = struct.pack("=iIQ6Q", number, seccomp._AUDIT_ARCH[machine] if arch is None else arch, 0,
                       arg0 & 0xFFFFFFFFFFFFFFFF, 0, 0, 0, 0, 0)
    at, acc = 0, 0
    while True:
        code, jt, jf, k = struct.unpack_from("=HBBI", program, 8 * at)
        if code == 0x06:  # ret
            return k
        if code == 0x20:  # load a word of seccomp_data
            acc, at = struct.unpack_from("=I", data, k)[0], at + 1
            continue
        taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
        at += 1 + (jt if taken else jf)


@pytest.mark.parametrize("machine", sorted(seccomp._NUMBERS))
def test_each_row_gives_its_verdict_on_each_architecture(machine):
    allow, eperm = 0x7FFF0000, 0x00050000 | errno.EPERM
    program = seccomp.program(machine, [4242])
    getpid = {"x86_64": 39, "aarch64": 172}[machine]
    assert _verdict(program, machine, getpid) == allow
    assert _verdict(program, machine, getpid, arch=0x40000003) == eperm  # i386's calls on x86_64
    assert _verdict(program, machine, "shmget") == eperm and _verdict(program, machine, "ptrace") == eperm
    assert _verdict(program, machine, "fchmodat") == 0x00050000  # errno 0: success, nothing done
    assert _verdict(program, machine, "clone3") == 0x00050000 | errno.ENOSYS
    assert _verdict(program, machine, "socket", socket.AF_UNIX) == allow
    assert _verdict(program, machine, "socket", socket.AF_INET) == 0x00050000 | errno.EACCES
    assert _verdict(program, machine, "clone", 0x10000000 | signal.SIGCHLD) == eperm
    assert _verdict(program, machine, "clone", signal.SIGCHLD) == allow
    for target, verdict in [(4242, eperm), (-4242, eperm), (-1, eperm), (4243, allow), (0, allow)]:
        assert _verdict(program, machine, "kill", target) == verdict, target
    if machine == "x86_64":
        assert _verdict(program, machine, 0x40000000 | getpid) == eperm  # the x32 ABI


# Run in a fresh process (forking pytest, which has threads, is not safe): each call's errno, 0 for success.
_UNDER_THE_FILTER = """
import ctypes, json, os, signal, socket, sys, threading
from autograder.sandbox import seccomp

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
number = seccomp._NUMBERS[seccomp._MACHINE]

def start_a_thread():
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()

calls = {
    "io_uring_setup": lambda: libc.syscall(number["io_uring_setup"], 1, None),
    "keyctl": lambda: libc.syscall(number["keyctl"], 0, 0),
    "unshare a user namespace": lambda: libc.unshare(0x10000000),
    "clone into a user namespace": lambda: libc.syscall(number["clone"], 0x10000000 | signal.SIGCHLD, 0, 0, 0, 0),
    "clone3": lambda: libc.syscall(number["clone3"], None, 0),
    "a thread (glibc falls back to clone)": start_a_thread,
    "chmod of its own file": lambda: os.chmod(sys.argv[1], 0o777),
    "a Unix socket": lambda: socket.socket(socket.AF_UNIX).close(),
    "a TCP socket": lambda: socket.socket(socket.AF_INET).close(),
}
if seccomp._MACHINE == "x86_64":
    calls["an x32 call"] = lambda: libc.syscall(0x40000000 | 39)  # the x32 ABI's getpid

def errno_of(call):
    ctypes.set_errno(0)
    try:
        return 0 if call() != -1 else ctypes.get_errno()
    except OSError as err:
        return err.errno

seccomp.install([os.getppid()])
print(json.dumps({name: errno_of(call) for name, call in calls.items()}))
"""


def test_the_rows_no_grade_above_reaches(tmp_path):
    """A process under the filter alone tries what the grades above do not."""
    own = tmp_path / "own.txt"
    own.write_text("x")
    os.chmod(own, 0o600)
    proc = subprocess.run([sys.executable, "-c", _UNDER_THE_FILTER, str(own)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = {"io_uring_setup": errno.EPERM, "keyctl": errno.EPERM, "unshare a user namespace": errno.EPERM,
                "clone into a user namespace": errno.EPERM, "clone3": errno.ENOSYS,
                "a thread (glibc falls back to clone)": 0, "chmod of its own file": 0, "a Unix socket": 0,
                "a TCP socket": errno.EACCES}
    if seccomp._MACHINE == "x86_64":
        expected["an x32 call"] = errno.EPERM
    assert json.loads(proc.stdout) == expected
    assert stat.S_IMODE(os.stat(own).st_mode) == 0o600
