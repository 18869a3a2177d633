"""The sandbox's parts, one question each, without starting a grader: memory limits from cgroups,
the confinement plan, the output pipe, the wire format's failure fields, and the platform branches
(macOS has no Landlock, no subreaper, no RLIMIT_AS; the child must take the other road there)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from autograder.paths import ROOT, SOLUTIONS
from autograder.sandbox import child, isolation, landlock, limits, processes, seccomp, wire
from autograder.sandbox.judge import OutputCapture, load_message


# --------------------------------------------------------------------------- limits
def _cgroup(tmp_path, version: int, limit: str, usage: int, inactive: int = 0):
    proc = tmp_path / "cgroup"
    mount = tmp_path / "fs"
    if version == 2:
        proc.write_text("0::/grader\n")
        folder = mount / "grader"
        files = {"memory.max": limit, "memory.current": str(usage), "memory.stat": f"inactive_file {inactive}\n"}
    else:
        proc.write_text("12:cpu,cpuacct:/x\n9:memory:/grader\n")
        folder = mount / "memory" / "grader"
        files = {"memory.limit_in_bytes": limit, "memory.usage_in_bytes": str(usage),
                 "memory.stat": f"cache 5\ntotal_inactive_file {inactive}\n"}
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return str(proc), str(mount)


@pytest.mark.parametrize("version", [1, 2])
def test_the_headroom_is_the_cgroup_limit_less_usage_plus_reclaimable_cache(tmp_path, version):
    proc, mount = _cgroup(tmp_path, version, str(768 * 2**20), 500 * 2**20, inactive=50 * 2**20)
    assert limits.cgroup_headroom_mb(proc, mount) == 768 - 500 + 50


@pytest.mark.parametrize("version, limit", [(1, str(2**63 - 4096)), (2, "max")])
def test_an_unlimited_cgroup_gives_no_bound(tmp_path, version, limit):
    proc, mount = _cgroup(tmp_path, version, limit, 10)
    assert limits.cgroup_headroom_mb(proc, mount) is None


def test_no_cgroup_files_give_no_bound(tmp_path):
    assert limits.cgroup_headroom_mb(str(tmp_path / "missing"), str(tmp_path)) is None


def test_the_child_limit_is_capped_by_the_headroom_less_the_judges_reserve(monkeypatch):
    monkeypatch.setattr(limits, "cgroup_headroom_mb", lambda: 300)
    monkeypatch.setattr(limits, "machine_available_mb", lambda: 10_000)
    assert limits.memory_limit_mb(2048) == 300 - limits.JUDGE_RESERVE_MB
    monkeypatch.setattr(limits, "cgroup_headroom_mb", lambda: 50)
    assert limits.memory_limit_mb(2048) == limits.MIN_MEMORY_MB
    monkeypatch.setattr(limits, "cgroup_headroom_mb", lambda: None)
    assert limits.memory_limit_mb(512) == 512


def test_parallel_children_share_the_headroom(monkeypatch):
    monkeypatch.setattr(limits, "cgroup_headroom_mb", lambda: 3000)
    monkeypatch.setattr(limits, "machine_available_mb", lambda: 10_000)
    assert limits.memory_limit_mb(2048, jobs=2) == (3000 - limits.JUDGE_RESERVE_MB) // 2


@pytest.mark.parametrize("version, files, cpus", [
    (1, {"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"}, 0.5),  # Gradescope's box
    (1, {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000"}, None),
    (2, {"cpu.max": "150000 100000"}, 1.5),
    (2, {"cpu.max": "max 100000"}, None),
])
def test_the_cpu_quota_is_read_from_either_cgroup_version(tmp_path, version, files, cpus):
    proc, mount = tmp_path / "cgroup", tmp_path / "fs"
    proc.write_text("0::/grader\n" if version == 2 else "9:memory:/x\n4:cpu,cpuacct:/grader\n")
    folder = mount / ("grader" if version == 2 else "cpu,cpuacct/grader")
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    assert limits.cgroup_cpus(str(proc), str(mount)) == cpus


def test_a_half_cpu_768_mb_box_grades_one_problem_at_a_time(monkeypatch):
    monkeypatch.setattr(limits, "cgroup_cpus", lambda: 0.5)
    monkeypatch.setattr(limits, "cgroup_headroom_mb", lambda: 700)
    assert limits.usable_cpus() == 1 and limits.default_jobs() == 1
    monkeypatch.setattr(limits, "cgroup_cpus", lambda: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert limits.default_jobs() == 1  # four CPUs, but memory for one child
    monkeypatch.setattr(limits, "cgroup_headroom_mb", lambda: 8000)
    monkeypatch.setattr(limits, "machine_available_mb", lambda: 3000)
    assert limits.default_jobs() == 2  # the machine's available memory bounds it too
    monkeypatch.setattr(limits, "machine_available_mb", lambda: None)
    assert limits.default_jobs() == 4


# --------------------------------------------------------------------------- the confinement plan
def test_carving_leaves_out_exactly_the_holes(tmp_path):
    for rel in ["a/keep.txt", "a/kit/solutions/x.py", "a/kit/rlkit/y.py", "a/other/z.py"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    tree = str(tmp_path / "a")
    got = isolation._carve(tree, [str(tmp_path / "a" / "kit")])
    assert sorted(got) == [str(tmp_path / "a" / "keep.txt"), str(tmp_path / "a" / "other")]
    assert isolation._carve(tree, []) == [tree]


def test_what_only_root_may_read_is_found_and_carved_out_with_the_links(tmp_path):
    files = {"ssh/ssh_config": 0o644, "ssh/ssh_host_key": 0o600, "shadow": 0o640, "hosts": 0o644,
             "private/key": 0o644}
    for rel, mode in files.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text("")
        os.chmod(tmp_path / rel, mode)
    os.chmod(tmp_path / "private", 0o700)
    (tmp_path / "mtab").symlink_to(tmp_path / "shadow")
    found = isolation.root_only(str(tmp_path))
    assert sorted(found) == [str(tmp_path / p) for p in ("private", "shadow", "ssh/ssh_host_key")]
    assert sorted(isolation._carve(str(tmp_path), list(found))) == [str(tmp_path / p) for p in ("hosts",
                                                                                                 "ssh/ssh_config")]


@pytest.mark.skipif(landlock.abi_version() < 1 or not os.path.exists("/etc/shadow"),
                    reason="needs a kernel with Landlock (Linux ≥ 5.13) and an /etc/shadow")
def test_the_plan_reads_etc_but_not_its_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADER_ISOLATION", raising=False)
    read = isolation.plan(tmp_path, [ROOT]).read
    assert any(isolation._within("/etc/passwd", r) for r in read)
    assert not any(isolation._within("/etc/shadow", r) for r in read)


@pytest.mark.skipif(landlock.abi_version() < 1, reason="needs a kernel with Landlock (Linux ≥ 5.13)")
def test_the_plan_reads_python_and_the_given_code_and_never_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADER_ISOLATION", raising=False)
    plan = isolation.plan(tmp_path, [ROOT])
    assert plan.mode == "landlock"
    read = set(plan.read)
    assert str(ROOT / "rlkit") in read
    assert os.path.realpath(sys.base_prefix) in read or any(
        os.path.realpath(sys.base_prefix).startswith(r + os.sep) for r in read)
    assert not any(r == str(ROOT) or str(SOLUTIONS).startswith(r + os.sep) or r.startswith(str(SOLUTIONS))
                   for r in read), "the reference is readable"
    assert plan.write[0] == str(tmp_path) and not any(w.startswith(str(ROOT)) for w in plan.write)
    assert all(p.startswith(tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})) or "site-packages" in p
               for p in plan.sys_path)


@pytest.mark.parametrize("available", [True, False])
def test_the_plan_protects_the_judge_and_says_whether_the_filter_is_on(tmp_path, monkeypatch, available):
    monkeypatch.setattr(seccomp, "available", lambda: available)
    plan = isolation.plan(tmp_path, [ROOT])
    assert plan.seccomp is available and os.getpid() in plan.protected_pids
    assert ("seccomp refuses" in plan.describe()) is available, plan.describe()


@pytest.mark.parametrize("forced", ["uid", "none"])
def test_forcing_a_mode_without_landlock_gives_no_landlock_rules(tmp_path, monkeypatch, forced):
    monkeypatch.setenv("GRADER_ISOLATION", forced)
    plan = isolation.plan(tmp_path, [ROOT])
    assert plan.mode in ("uid", "none") and plan.read == () and plan.landlock_abi == 0


# --------------------------------------------------------------------------- the output pipe
def test_output_keeps_head_and_tail_and_says_how_much_was_printed():
    read, write = os.pipe()
    capture = OutputCapture(read, keep=1000)
    with os.fdopen(write, "wb") as f:
        f.write(b"FIRST" + b"x" * (10 * 2**20) + b"LAST")
    capture.finish()
    text = capture.text()
    assert text.startswith("FIRST") and text.endswith("LAST")
    assert "your code printed 10 MB; the first and last 1000 bytes are kept" in text
    assert len(text) < 3000


def _since(before: bytes, after: bytes, keep: int) -> str:
    """What OutputCapture says came after ``before``, once ``after`` was written too."""
    read, write = os.pipe()
    capture = OutputCapture(read, keep=keep)
    os.write(write, before)
    time.sleep(0.2)
    offset = capture.total
    os.write(write, after)
    os.close(write)
    capture.finish()
    return capture.since(offset)


@pytest.mark.parametrize("keep", [10, 1000], ids=["offset_in_the_tail", "offset_in_the_head"])
def test_output_since_an_offset_is_what_came_after_it(keep):
    assert _since(b"0123456789abcdef", b"after", keep) == "after"


# --------------------------------------------------------------------------- the wire's failure fields
def _request_roundtrip(request):
    """A request as the child reads it: its tensors built on the judge's arena."""
    sent = wire.dumps_request(request)
    fd = sent.arena.descriptor()
    try:
        return wire.loads_request(sent.payload, [os.dup(fd)] if fd is not None else [])[0]
    finally:
        sent.arena.close()


def _roundtrip(reply: dict) -> dict:
    return wire.decode(wire.dumps_reply(reply))


@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 4), (2, 3)])
def test_tensors_of_every_readable_dtype_cross_the_pipe_unchanged(shape):
    import torch

    for dtype in wire._READABLE_DTYPES:
        t = (torch.arange(math.prod(shape)).reshape(shape) % 7 - 3).to(dtype)
        got = wire.decode(wire.dumps_reply({"ok": True, "value": wire.pack(t), "after": None, "grads": None}))
        assert got["value"].dtype == dtype and torch.equal(got["value"], t)
        sent = _request_roundtrip({"x": t, "p": torch.nn.Parameter(t.double())})
        assert sent["x"].dtype == dtype and torch.equal(sent["x"], t) and sent["p"].requires_grad
    expanded = torch.tensor([2.5]).expand(4)  # stride 0, as `.expand` returns it
    assert torch.equal(_roundtrip({"ok": True, "value": wire.pack(expanded), "after": None, "grads": None})["value"],
                       torch.full((4,), 2.5))
    transposed = torch.arange(6.0).reshape(2, 3).t()
    assert torch.equal(_request_roundtrip(transposed), transposed)


def test_a_reply_may_name_no_class_or_function():
    import pickle

    import torch

    payload = pickle.dumps({"ok": True, "value": torch.zeros(2), "after": None, "grads": None})
    assert wire.decode(payload)["kind"] == "fatal"  # torch's own pickling names torch._utils: refused


def test_a_failure_keeps_its_frame_as_fields():
    got = _roundtrip(wire.failure("not_implemented", "NotImplementedError", "",
                                  {"function": "bc_loss", "file": "hw1/imitation.py", "line": 61,
                                   "code": "raise NotImplementedError()"}))
    assert (got["function"], got["file"], got["line"]) == ("bc_loss", "hw1/imitation.py", 61)
    assert wire.where(got) == "hw1/imitation.py:61 in bc_loss: raise NotImplementedError()"


@pytest.mark.parametrize("line", [-1, 0, "12", 10**9, 1.5, True])
def test_a_forged_line_number_is_dropped(line):
    got = _roundtrip({"ok": False, "kind": "error", "type": "X", "message": "m", "file": "a.py", "line": line})
    assert got["line"] is None


def test_a_syntax_error_names_its_own_file_and_line():
    reply = {"type": "SyntaxError", "message": "invalid syntax", "file": "hw2/returns.py", "line": 7,
             "code": "def oops(:"}
    assert load_message(reply) == "hw2/returns.py, line 7: SyntaxError: invalid syntax: def oops(:"


# --------------------------------------------------------------------------- platform branches
def test_on_macos_there_is_no_landlock(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert landlock.abi_version() == 0


def test_on_macos_no_subreaper_is_asked_for(monkeypatch):
    import ctypes

    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: pytest.fail("prctl called on macOS"))
    isolation.become_subreaper()


def test_on_macos_memory_is_watched_not_limited_by_rlimit_as(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not isolation.rlimit_as_applies("cpu")


def test_without_a_process_table_rlimit_as_gives_way_to_the_watchdog(monkeypatch):
    monkeypatch.setattr(processes, "psutil", None)
    assert isolation.virtual_size() == 0 and not isolation.rlimit_as_applies("cpu")
    assert processes.descendants(os.getpid()) == [] and processes.uids_in_use() == set()


HOARD = "hoard = [b'x' * (8 * 2**20) for _ in range(40)]  # written: resident, not just reserved\n"


def test_the_memory_watchdog_ends_a_process_that_passes_its_limit():
    code = ("import time\nfrom autograder.sandbox import child\nchild._start_memory_watchdog(64)\n" + HOARD +
            "time.sleep(5)\nprint('survived')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9 and "survived" not in proc.stdout
    assert "out of memory: the limit is 64 MB" in proc.stderr


def test_the_watchdog_without_proc_reads_the_peak_of_a_forked_child():
    """macOS's road: no /proc, only ru_maxrss. An exec'd process inherits its parent's peak (a pytest worker's,
    here), so the check forks, as the fork server does, and the forked child's peak starts at its own size."""
    code = ("import os, resource, sys, time\nfrom autograder.sandbox import child\n"
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    child._start_memory_watchdog(64, resident=peak)\n"
            "    " + HOARD + "    time.sleep(5)\n    print('survived', flush=True)\n    os._exit(0)\n"
            "_, status = os.waitpid(pid, 0)\nprint('signal', os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "survived" not in proc.stdout and "signal 9" in proc.stdout
    assert "out of memory: the limit is 64 MB" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: only root can become the sandbox uid")
def test_killing_a_uid_reaches_its_processes_without_a_process_table(monkeypatch):
    monkeypatch.setattr(processes, "psutil", None)
    uid = isolation.SANDBOX_UID_BASE + 4242
    sleepers = [subprocess.Popen(["sleep", "60"], user=uid, group=isolation.SANDBOX_GID) for _ in range(3)]
    processes.kill_uid(uid)
    for proc in sleepers:
        assert proc.wait(timeout=10) == -9


def test_a_childs_close_inherited_fds_keeps_only_what_it_is_told():
    code = ("import os\nfrom autograder.sandbox import child\nr, w = os.pipe()\nextra = os.open(os.devnull, os.O_RDONLY)\n"
            "child._close_inherited_fds(keep={1, 2, w})\n"
            "def is_open(fd):\n    try:\n        os.fstat(fd)\n        return True\n    except OSError:\n        return False\n"
            "print(is_open(w), is_open(r), is_open(extra))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True", "False", "False"], proc.stderr


# --------------------------------------------------------------------------- student output in the report
def test_student_output_loses_ansi_escapes_and_control_characters():
    from autograder.render import student_text

    raw = "\x1b[31mred\x1b[0m ok\x07\n\x1b]0;fake title\x07progress 10%\rprogress 100%\n\x00tab\there\r\n"
    assert student_text(raw) == "red ok\nprogress 100%\ntab\there\n"



# --------------------------------------------------------------------------- counterexamples a person can read
def test_a_long_counterexample_is_summarised_to_its_ends_and_length():
    from autograder.properties import summarise

    values = ", ".join(f"{i}.5" for i in range(1500))
    text = summarise(f"rewards=[{values}], gamma=0.99, dtype='float32'")
    assert text == "rewards=[0.5, 1.5, 2.5, …, 1498.5, 1499.5] (1500 values), gamma=0.99, dtype='float32'"
    assert summarise("rewards=[1.0, 2.0], gamma=0.5") == "rewards=[1.0, 2.0], gamma=0.5"
    nested = summarise("batch=[" + ", ".join(f"[{values}]" for _ in range(4)) + "]")
    assert len(nested) <= 300
    cut = ", ".join(f"{i}.5" for i in range(1000)) + ", ..."  # Hypothesis stops printing a list at 1000 items
    assert summarise(f"rewards=[{cut}]") == "rewards=[0.5, 1.5, 2.5, …] (more than 1000 values)"
