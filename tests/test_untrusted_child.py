"""The judge trusts nothing the child says: attacks on the judge's own process, its reads and its evidence.

Each attack carries a real bug (a wrong answer, or an input modified in place) and must score no more than that
bug earns; the grade must end within its budget; and the grader's processes must stay out of the child's reach on
every path: as root (the child gets a uid of its own), as an ordinary user (GRADER_NO_PRIVDROP=1: the child keeps
the judge's uid, without root's capabilities) and without Landlock (GRADER_ISOLATION=none).
"""

from __future__ import annotations

import os
import time

import pytest

from autograder.sandbox import channel, forkserver, landlock, wire
from tests.submissions import grade_source
from tests.test_isolation import HANG_LIMIT, WRONG, assert_zero

PATHS = {
    "root": {},
    "ordinary_user": {"GRADER_NO_PRIVDROP": "1"},
    "ordinary_user_no_landlock": {"GRADER_NO_PRIVDROP": "1", "GRADER_ISOLATION": "none"},
}


@pytest.fixture(params=list(PATHS), ids=list(PATHS))
def path(request, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the three paths are made from a root judge (an ordinary judge is the second already)")
    if request.param != "ordinary_user_no_landlock" and landlock.abi_version() < 1:
        pytest.skip("no Landlock on this kernel")
    for name, value in PATHS[request.param].items():
        monkeypatch.setenv(name, value)
    return request.param


# --------------------------------------------------------------------------- the grader's processes
_REACH = """
import ctypes, os, signal, socket

def _grader_pids():
    parent = os.getppid()  # the fork server
    with open(f"/proc/{parent}/status") as f:
        judge = int(next(line.split()[1] for line in f if line.startswith("PPid:")))
    return [parent, judge]

def _listening_sockets():
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON: a listening socket
                yield fields[6], fields[7]

def discounted_return(rewards, gamma):
    import torch
    for inode, name in _listening_sockets():
        address = "\\0" + name[1:] if name.startswith("@") else name
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(0.2)
        try:
            s.connect(address)
            print(f"CONNECTED {inode} {name}")
        except OSError:
            pass
        finally:
            s.close()
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in _grader_pids():
        try:
            os.kill(pid, signal.SIGCONT)  # harmless if it lands; landing at all is the breach
            print(f"SIGNALLED {pid}")
        except OSError:
            pass
        if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
            print(f"TRACED {pid}")
            libc.ptrace(17, pid, 0, 0)  # PTRACE_DETACH
        try:
            with open(f"/proc/{pid}/mem", "rb") as f:
                print(f"OPENED-MEMORY {pid}")
        except OSError:
            pass
    return torch.zeros_like(rewards)
"""


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def test_no_process_of_the_grader_is_within_the_childs_reach(tmp_path, path):
    """No socket of the judge or its fork server accepts a connection from the child, and neither can be
    signalled, traced or read through /proc (multiprocessing's fork server listened on a named socket that a
    child with the judge's uid could connect to, and have the unconfined server unpickle its payload)."""
    result = grade_source(tmp_path, _REACH)
    assert_zero(result, "discounted_return is wrong")
    grader = _socket_inodes(os.getpid()) | _socket_inodes(forkserver.start().pid)
    connected = {line.split()[1] for line in result.student_output.splitlines() if line.startswith("CONNECTED")}
    assert not connected & grader, result.student_output
    for breach in ("SIGNALLED", "TRACED", "OPENED-MEMORY"):
        assert breach not in result.student_output, result.student_output


def test_the_fork_server_listens_on_no_socket():
    server = forkserver.start()
    with open("/proc/net/unix") as f:
        listening = {line.split()[6] for line in list(f)[1:] if int(line.split()[3], 16) & 0x10000}
    assert not listening & _socket_inodes(server.pid)


# --------------------------------------------------------------------------- every read has a deadline
_WRITE_ON_THE_CHANNEL = """
import gc, socket, struct, time
import torch

def _channel():
    (sock,) = [o for o in gc.get_objects()
               if isinstance(o, socket.socket) and o.family == socket.AF_UNIX and o.fileno() >= 0]
    return sock

def discounted_return(rewards, gamma):
    sock = _channel()
    ATTACK
    return torch.zeros_like(rewards)
"""

ATTACKS = {
    # announces a kilobyte, sends ten bytes, and never the rest
    "partial_frame": ("sock.sendall(struct.pack('<Q', 1000) + bytes(10)); time.sleep(3600)", "stopped after 10 of 1000"),
    # a whole reply, one byte every half second
    "slow_drip": ("payload = struct.pack('<Q', 100) + b'N' * 100\n"
                  "    for b in payload:\n"
                  "        sock.sendall(bytes([b])); time.sleep(0.5)", "timed out"),
    # announces a terabyte: refused from the header, before anything is allocated
    "flood": ("sock.sendall(struct.pack('<Q', 2**40) + bytes(2**16)); time.sleep(3600)", "larger than 64 MB"),
    # pickle's memo lets a few KB stand for a tree that takes hours to hash; the reply format has no memo
    "memo_bomb": ("import pickle\n"
                  "    x = ()\n"
                  "    for _ in range(60): x = (x, x)\n"
                  "    body = pickle.dumps({'ok': True, 'value': {'__tensor__': ('__raw_tensor__', x, (1,), b'')}})\n"
                  "    sock.sendall(struct.pack('<Q', len(body)) + body); time.sleep(3600)", "unreadable reply"),
    # half a million values in a few hundred KB: over the reader's budget, refused in a fraction of a second
    "many_values": ("body = b'l' + struct.pack('<I', 600_000) + b'N' * 600_000\n"
                    "    sock.sendall(struct.pack('<Q', len(body)) + body); time.sleep(3600)", "unreadable reply"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_reply_that_stalls_or_floods_costs_only_its_problem(tmp_path, attack):
    code, phrase = ATTACKS[attack]
    start = time.monotonic()
    result = grade_source(tmp_path, _WRITE_ON_THE_CHANNEL.replace("ATTACK", code), time_limit=HANG_LIMIT)
    assert_zero(result, phrase)
    assert time.monotonic() - start < HANG_LIMIT + 20


def test_a_stalling_problem_leaves_the_problem_graded_beside_it_alone(tmp_path):
    """Two problems at once: the attack on discounted_return costs reward_to_go nothing."""
    from autograder.runner import grade, select
    from tests.conftest import make_submission

    code, _ = ATTACKS["memo_bomb"]
    submission = make_submission(tmp_path, {"hw2/returns.py": _WRITE_ON_THE_CHANNEL.replace("ATTACK", code)})
    problems = select(problem="discounted_return,reward_to_go", with_reference=False)
    results = {r.problem.name: r for r in grade(submission, problems, time_limit=HANG_LIMIT, jobs=2)}
    assert results["discounted_return"].score == 0
    assert results["reward_to_go"].passed, results["reward_to_go"].reason


# --------------------------------------------------------------------------- evidence the child cannot rewrite
def test_an_input_written_in_place_is_seen_whatever_the_child_reports(tmp_path):
    """The child's request loop is patched to report every argument as the judge sent it; the judge reads the
    arguments back from its own memory, and sees the write."""
    result = grade_source(tmp_path, """
        import torch
        import autograder.sandbox.child as child
        _serve = child._call
        def _call(fn, request, *args, **kwargs):
            before = [[a.detach().clone()] if isinstance(a, torch.Tensor) else [] for a in request["args"]]
            reply = _serve(fn, request, *args, **kwargs)
            if reply.get("ok"):
                reply["after"] = child.pack(before)  # every argument "as it was sent", well formed
            return reply
        child._call = _call
        _correct = discounted_reward_to_go
        def discounted_reward_to_go(rewards, gamma):
            out = _correct(rewards, gamma)
            rewards.mul_(0.5)
            return out
        """, problem="reward_to_go")
    assert_zero(result, "modified its input in place")


def test_a_reply_written_onto_the_channel_by_student_code_is_a_forgery(tmp_path):
    """A well-formed reply that says "all is well", written straight onto the reply channel before the honest
    one: it lacks its request's nonce, and the problem fails as forged."""
    reply = "wire.dumps_reply({'ok': True, 'value': None, 'after': [[], []], 'grads': None})"
    code = (f"from autograder.sandbox import channel, wire\n    channel.send_frame(sock, {reply})")
    result = grade_source(tmp_path, _WRITE_ON_THE_CHANNEL.replace("ATTACK", code), time_limit=HANG_LIMIT)
    assert_zero(result, "did not send")
    assert result.diagnosis == "forged-reply"


# --------------------------------------------------------------------------- the reader's budgets
def _pair():
    import socket

    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_a_frame_is_read_against_its_deadline_and_budget():
    judge, child = _pair()
    with judge, child:
        child.sendall(channel.HEADER.pack(100) + bytes(40))
        start = time.monotonic()
        with pytest.raises(channel.FrameTimeout) as late:
            channel.read_frame(judge, time.monotonic() + 0.3, 1000)
        assert (late.value.received, late.value.expected) == (40, 100)
        assert time.monotonic() - start < 2
        child.sendall(channel.HEADER.pack(2**40))
        with pytest.raises(channel.FrameTooLarge):
            channel.read_frame(judge, time.monotonic() + 5, 1000)
    judge, child = _pair()
    with judge:
        child.close()
        with pytest.raises(EOFError):
            channel.read_frame(judge, time.monotonic() + 5, 1000)


@pytest.mark.parametrize("payload", [
    b"l" + (2**31).to_bytes(4, "little") + b"N" * 1000,  # a count beyond the bytes left
    b"l\x01\x00\x00\x00" * 100 + b"N",  # nested past the depth budget
    b"X" + bytes([3, 1]) + (2**39).to_bytes(8, "little") + b"\x00",  # a shape whose bytes are not there
    b"X" + bytes([200, 1]) + (1).to_bytes(8, "little") + b"\x00" + bytes(8),  # no such dtype
    b"I" + (5).to_bytes(4, "little") + b"12a45",  # not an integer
    b"NN",  # trailing bytes
    b"\x80\x04\x95",  # a pickle
], ids=["count", "depth", "shape", "dtype", "integer", "trailing", "pickle"])
def test_a_malformed_reply_is_refused_in_proportion_to_its_length(payload):
    start = time.monotonic()
    assert wire.decode(bytearray(payload))["kind"] == "fatal"
    assert time.monotonic() - start < 1


def test_the_worst_reply_costs_about_a_microsecond_a_byte():
    """Half a million values (the reader's budget) in half a megabyte: the most a reply can make the judge do."""
    payload = bytearray(b"l" + (499_999).to_bytes(4, "little") + b"N" * 499_999)
    start = time.monotonic()
    assert len(wire.loads_reply(payload)) == 499_999
    assert time.monotonic() - start < 5  # about 0.5 s on this project's machine, under load


def test_a_reply_shares_nothing_so_its_size_bounds_the_judges_memory():
    """A reply's tensors are views of the frame the judge read: a 48 MB reply costs the judge 48 MB, never a
    copy per reference (pickle's memo let one bytes object stand for many)."""
    import torch

    payload = bytearray(wire.dumps_reply({"ok": True, "value": wire.pack([torch.zeros(2**20)] * 12), "after": None,
                                           "grads": None, "nonce": "n"}))
    value = wire.decode(payload, "n")["value"]
    assert len(value) == 12 and len(payload) < 12 * 2**22 + 2**12
    addresses = {t.data_ptr() for t in value}
    frame = (wire.arena.tensor_from(payload, torch.uint8, (len(payload),)).data_ptr(), len(payload))
    assert len(addresses) == 12 and all(frame[0] <= a < frame[0] + frame[1] for a in addresses)


def test_a_dead_fork_server_is_replaced():
    """A child that killed the fork server (possible only where nothing else stops it) costs the next sandbox a
    fresh server's start, never a grade."""
    import signal

    from autograder.sandbox import Sandbox
    from autograder.paths import SOLUTIONS

    server = forkserver.start()
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not server.gone and time.monotonic() < deadline:
        time.sleep(0.05)
    with Sandbox(SOLUTIONS) as box:
        box.load("hw2.returns", "discounted_return")
    assert forkserver.start() is not server
