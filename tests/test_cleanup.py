"""What a grade leaves behind: nothing, whatever the student's code built or however long it ran.

Work folders (``processes.remove_tree``): trees built by the test itself, then by a hostile stub in its
home, graded through the real runner and sandbox; the start-up sweep of a dead judge's folder. The whole
grade's time budget (``runner.grade``'s deadline, the command's ``--total-seconds``): a stub that keeps the
judge waiting past its problem's limit still ends with every result written and no process of the grade
left.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from autograder import runner
from autograder.paths import ROOT, SOLUTIONS
from autograder.sandbox import Limits, Sandbox, processes
from autograder.sandbox.processes import WORKDIR_PREFIX, remove_tree, sweep_orphaned_workdirs
from tests.conftest import make_submission
from tests.submissions import grade_source, shared_dir

DEEP = 5000  # folders deep: past Python's recursion limit (1000) and, at 2 bytes a level, past PATH_MAX (4096)
NOBODY = 65534


def build_deep(top: Path, depth: int) -> None:
    """``top``/d/d/…/d, ``depth`` folders deep, each made relative to its parent's descriptor (no path is
    ever longer than one name), the deepest holding a file."""
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)


def build_awkward(top: Path, outside: Path) -> None:
    """A tree with every kind of entry a child can make: folders without read, write or search rights,
    names that are not UTF-8 or hold a newline, links to a file and a folder outside, a fifo, a socket."""
    (top / "locked" / "inner").mkdir(parents=True)
    for mode, name in [(0o000, "none"), (0o500, "no_write"), (0o100, "search_only"), (0o300, "no_read")]:
        folder = top / "locked" / name
        (folder / "sub").mkdir(parents=True)
        (folder / "file").write_text("x")
        folder.chmod(mode)
    (top / "locked").chmod(0o000)
    odd = os.path.join(os.fsencode(top), b"odd \xff\nname")
    os.mkdir(odd)
    with open(os.path.join(odd, b"\x01file\n"), "w") as f:
        f.write("x")
    (top / "to_file").symlink_to(outside / "keep.txt")
    (top / "to_folder").symlink_to(outside)
    os.mkfifo(top / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(top / "sock"))


@pytest.fixture
def outside(tmp_path):
    """A folder beside the tree, with a file that must survive the tree's removal."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    return folder


def as_ordinary_user(work):
    """``work()``'s return value (JSON), computed in a forked child that became uid 65534 (at once, when the
    tests do not run as root)."""
    if os.geteuid() != 0:
        return work()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write, json.dumps(work()).encode())
        except BaseException as err:  # noqa: BLE001 - the parent's assertion shows it
            os.write(write, json.dumps(f"raised {err!r}").encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


# --------------------------------------------------------------------------- remove_tree on trees built here
def test_a_tree_deeper_than_recursion_and_path_max_is_removed(tmp_path):
    build_deep(tmp_path / "deep", DEEP)
    assert remove_tree(tmp_path / "deep") == []
    assert not (tmp_path / "deep").exists()


def test_folders_without_rights_odd_names_links_fifos_and_sockets_are_removed_and_no_link_is_followed(
        tmp_path, outside):
    build_awkward(tmp_path / "tree", outside)
    assert remove_tree(tmp_path / "tree") == []
    assert not (tmp_path / "tree").exists()
    assert (outside / "keep.txt").read_text() == "keep" and sorted(os.listdir(outside)) == ["keep.txt"]


def test_an_ordinary_user_gives_itself_back_the_rights_its_own_folders_took_away(outside):
    """As the judge is when it is not root (uid 65534 when the tests run as root): then a folder's mode does
    keep the judge out, until it gives itself its rights back."""
    home = Path(tempfile.mkdtemp(prefix="grader-cleanup-test-"))  # pytest's own folders are closed to others
    try:
        if os.geteuid() == 0:
            os.chown(home, NOBODY, NOBODY)

        def build_and_remove():
            build_awkward(home / "tree", outside)
            build_deep(home / "tree" / "deep", 1200)
            os.chmod(home / "tree" / "deep", 0o000)
            return remove_tree(home / "tree")

        assert as_ordinary_user(build_and_remove) == []
        assert not (home / "tree").exists() and (outside / "keep.txt").read_text() == "keep"
    finally:
        remove_tree(home)


def test_many_files_in_one_folder_are_removed(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3000):
        (folder / f"f{i}").touch()
    assert remove_tree(folder) == [] and not folder.exists()


def test_a_link_given_as_the_tree_is_removed_not_followed(tmp_path, outside):
    (tmp_path / "link").symlink_to(outside)
    assert remove_tree(tmp_path / "link") == []
    assert not os.path.lexists(tmp_path / "link") and (outside / "keep.txt").read_text() == "keep"


def test_a_missing_tree_is_nothing_to_do(tmp_path):
    assert remove_tree(tmp_path / "missing") == [] and remove_tree(tmp_path / "no" / "such" / "path") == []


def test_a_folder_moved_away_during_the_removal_stops_it_there(tmp_path, outside, monkeypatch):
    """A live process moves tree/a to outside/a while the removal is inside tree/a/b: leaving b through ".."
    still leads to a (the very folder it entered), but leaving a would lead to outside, not to tree."""
    (tmp_path / "tree" / "a" / "b").mkdir(parents=True)
    clear = processes._clear

    def clear_and_move(fd, failures, where):
        if where.endswith(os.sep + "b"):
            os.rename(tmp_path / "tree" / "a", outside / "a")
        return clear(fd, failures, where)

    monkeypatch.setattr(processes, "_clear", clear_and_move)
    failures = remove_tree(tmp_path / "tree")
    assert len(failures) == 1 and "moved" in failures[0], failures
    assert (outside / "keep.txt").read_text() == "keep" and (outside / "a").is_dir()


def test_remove_tree_never_raises_and_reports_once_on_stderr(tmp_path, monkeypatch, capsys):
    (tmp_path / "tree" / "sub").mkdir(parents=True)

    def broken(fd, failures, where):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(processes, "_clear", broken)
    failures = remove_tree(tmp_path / "tree")
    assert len(failures) == 1 and "RecursionError" in failures[0]
    err = capsys.readouterr().err
    assert err.count("warning: could not remove all of") == 1 and str(tmp_path / "tree") in err


# --------------------------------------------------------------------------- the start-up sweep
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_the_startup_sweep_removes_a_dead_judges_deep_folder(tmp_path, outside):
    orphan = tmp_path / f"{WORKDIR_PREFIX}{dead_pid()}-deep"
    orphan.mkdir()
    build_deep(orphan / "home", 1500)  # deeper than shutil.rmtree's recursion could go
    build_awkward(orphan / "tmp", outside)
    assert sweep_orphaned_workdirs(tmp_path) == [orphan]
    assert not orphan.exists() and (outside / "keep.txt").read_text() == "keep"


# --------------------------------------------------------------------------- hostile stubs in the sandbox
def work_folders() -> set[Path]:
    """The work folders of this process's sandboxes (the tests are the judge) that exist now."""
    return set(Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}{os.getpid()}-*"))


@pytest.fixture
def folders_left():
    """What the test's sandboxes left: their work folders still there (a set, empty when none)."""
    before = work_folders()
    return lambda: work_folders() - before


WRONG = "    return torch.zeros_like(rewards)\n"


def test_a_stub_that_locks_its_folders_scores_zero_and_leaves_no_folder(tmp_path, folders_left, monkeypatch):
    """The ordinary user's path (no uid of its own): the child has the judge's uid and can take its own
    folders' rights away from the judge."""
    monkeypatch.setenv("GRADER_NO_PRIVDROP", "1")
    result = grade_source(tmp_path, """
        import os
        import torch
        def discounted_return(rewards, gamma):
            for mode in (0o000, 0o500, 0o100):
                folder = f"locked_{mode:o}"
                if not os.path.exists(folder):
                    os.makedirs(folder + "/inner")
                    open(folder + "/inner/file", "w").close()
                    os.chmod(folder + "/inner", mode)
                    os.chmod(folder, mode)
        """ + WRONG)
    assert result.status == "failed" and result.score == 0, (result.status, result.reason)
    assert folders_left() == set()


def test_a_stub_that_leaves_odd_names_links_and_fifos_scores_zero_and_nothing_outside_is_touched(
        tmp_path, folders_left, outside):
    result = grade_source(tmp_path, f"""
        import os
        import socket
        import torch
        def discounted_return(rewards, gamma):
            if not os.path.exists("to_file"):
                os.mkdir(b"odd \\xff\\nname")
                open(b"odd \\xff\\nname/\\x01file\\n", "w").close()
                os.symlink({str(outside / "keep.txt")!r}, "to_file")
                os.symlink({str(outside)!r}, "to_folder")
                os.mkfifo("tmp/fifo")
                socket.socket(socket.AF_UNIX).bind("tmp/sock")
        """ + WRONG)
    assert result.status == "failed" and result.score == 0, (result.status, result.reason)
    assert folders_left() == set()
    assert (outside / "keep.txt").read_text() == "keep" and sorted(os.listdir(outside)) == ["keep.txt"]


def test_a_sandbox_close_that_raises_loses_no_verdict(tmp_path, monkeypatch, capsys):
    """Whatever goes wrong in closing a problem's sandbox (here after the real close), the verdicts stand and
    the command writes them: the failure is reported on stderr for the instructor."""
    from autograder import __main__ as cli

    class CloseThenFail(Sandbox):
        def close(self):
            super().close()
            raise RuntimeError("the clean-up broke")

    monkeypatch.setattr(runner, "Sandbox", CloseThenFail)
    submission = make_submission(tmp_path, {"hw2/returns.py": "import torch\n"
                                            "def discounted_return(rewards, gamma):\n" + WRONG})
    results = tmp_path / "results.json"
    code = cli.main(["grade", "--submission", str(submission), "--results", str(results), "--no-reference",
                     "--problem", "discounted_return,reward_to_go", "--jobs", "1"])
    assert code == 0
    assert [t["score"] for t in json.loads(results.read_text())["tests"]] == [0, 3]
    assert "closing the sandbox of hw2/discounted_return failed: RuntimeError" in capsys.readouterr().err


def test_a_deep_tree_neither_loses_the_results_nor_stops_the_next_grade(tmp_path):
    """Through the command: the grade writes its results and removes the folder; a dead judge's deep folder
    in the same temporary folder does not stop the next grade from starting."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    submission = make_submission(tmp_path, {"hw2/returns.py": f"""
        import os
        import torch
        def discounted_return(rewards, gamma):
            if not os.path.exists("deep"):
                here = os.open(".", os.O_RDONLY)
                os.mkdir("deep")
                os.chdir("deep")
                for _ in range({DEEP}):
                    os.mkdir("d")
                    os.chdir("d")
                os.fchdir(here)
        """ + WRONG})
    env = {**os.environ, "TMPDIR": str(tmp)}

    def grade(submission: Path, results: Path) -> dict:
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submission", str(submission),
                               "--problem", "discounted_return", "--no-reference", "--results", str(results)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(results.read_text())

    try:
        first = grade(submission, tmp_path / "first.json")
        assert first["score"] == 0 and "discounted_return is wrong" in first["tests"][0]["output"]
        assert os.listdir(tmp) == []
        build_deep(tmp / f"{WORKDIR_PREFIX}{dead_pid()}-left", 1500)  # deeper than shutil.rmtree could go
        assert grade(SOLUTIONS, tmp_path / "second.json")["score"] == 2
    finally:
        remove_tree(tmp)  # what the second grade's sweep (in the background) had no time to remove


# --------------------------------------------------------------------------- the whole grade's time budget
def stuck_stub(note: str = "pass", sleep: int = 3600) -> str:
    """A stub whose first call in a child returns (so that the grader's probe of it returns, and the problem's
    first example passes) and whose next one ignores every signal it may, keeps a core busy in a thread, leaves a
    double-forked daemon,
    and answers with a frame header that promises a megabyte followed by one byte: the judge, reading the rest
    of the reply, waits past the problem's own limit, and only the whole grade's deadline can end it.
    ``note`` runs in the child and in the daemon (to record their pids)."""
    return f"""
        import os, signal, stat, struct, threading, time
        def spin():
            while True:
                pass
        calls = [0]
        def discounted_return(rewards, gamma):
            calls[0] += 1
            if calls[0] == 1:  # the first call in a child returns (the grader's short probe call, the first example)
                import torch
                return torch.full_like(rewards, sum(gamma ** t * float(r) for t, r in enumerate(rewards)))
            for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                signal.signal(sig, signal.SIG_IGN)
            threading.Thread(target=spin, daemon=True).start()
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    {note}
                    time.sleep({sleep})
                os._exit(0)
            {note}
            for fd in range(3, 1024):
                try:
                    if stat.S_ISSOCK(os.fstat(fd).st_mode):
                        os.write(fd, struct.pack("!i", 1 << 20) + b"x")
                except OSError:
                    pass
            time.sleep({sleep})
        """


def running(seen: dict[int, float]) -> list[int]:
    """The processes of ``seen`` (pid → start time) still running (zombies are not)."""
    alive = []
    for pid, started in seen.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == started and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            pass
    return alive


def wait_until_gone(seen: dict[int, float], seconds: float = 5.0) -> list[int]:
    end = time.monotonic() + seconds
    while running(seen) and time.monotonic() < end:
        time.sleep(0.1)
    return running(seen)


def test_at_the_deadline_a_stuck_problem_gets_zero_and_the_one_beside_it_keeps_its_result(tmp_path, monkeypatch):
    """runner.grade with a short deadline (and judge's reserve): it returns at the deadline, the stuck problem
    has timed out, the problem graded beside it keeps its result, and the stub's processes are killed."""
    monkeypatch.setattr(runner, "JUDGE_RESERVE_SECONDS", 1.0)
    with Sandbox(SOLUTIONS, limits=Limits(seconds=60)) as warm:  # the fork server's start is not the budget's
        warm.load("hw2.returns", "discounted_return")
    budget = 8.0
    with shared_dir() as shared:
        note = f"open({str(shared)!r} + '/' + str(os.getpid()), 'w').close()"
        submission = make_submission(tmp_path, {"hw2/returns.py": stuck_stub(note, sleep=60)})
        problems = runner.select(problem="discounted_return,reward_to_go", with_reference=False)
        start = time.monotonic()
        results = runner.grade(submission, problems, deadline=start + budget, jobs=2)
        elapsed = time.monotonic() - start
        pids = [int(name) for name in os.listdir(shared)]
    assert elapsed < budget + 3, f"{elapsed:.1f} s for a {budget:g} s budget"
    stuck, beside = results
    assert stuck.problem.name == "discounted_return" and stuck.score == 0 and stuck.status == "failed"
    assert "timed out" in stuck.reason, stuck.reason
    assert beside.passed, beside.reason
    assert len(pids) == 2, "the child and its daemon did not both start"
    assert not wait_until_gone({pid: psutil.Process(pid).create_time() for pid in pids if psutil.pid_exists(pid)})


@pytest.mark.slow
def test_a_stuck_problem_ends_the_command_within_its_budget_with_results_and_no_process_left(tmp_path):
    """The command with --total-seconds: it returns within the budget (plus the time to kill and write), with
    every result written, and nothing of the grade runs on (judge, fork server, children, their daemons)."""
    submission = make_submission(tmp_path, {"hw2/returns.py": stuck_stub()})
    results = tmp_path / "results.json"
    budget = 35  # the first problem's own limit: what is left after the start-up, less the judge's reserve of 15 s
    start = time.monotonic()
    judge = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", "--submission", str(submission), "--no-reference",
         "--problem", "discounted_return,reward_to_go", "--jobs", "1", "--results", str(results),
         "--total-seconds", str(budget)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen: dict[int, float] = {}  # every process of the grade: pid → start time
    try:
        while judge.poll() is None and time.monotonic() - start < budget + 60:
            try:
                for process in [psutil.Process(judge.pid), *psutil.Process(judge.pid).children(recursive=True)]:
                    seen.setdefault(process.pid, process.create_time())
            except psutil.Error:
                pass
            time.sleep(0.1)
        elapsed = time.monotonic() - start
    finally:
        for pid in running(seen) if judge.poll() is None else []:  # the bug this test is for: end what it started
            psutil.Process(pid).kill()
    output = judge.communicate()[0]
    assert elapsed < budget + 5, f"{elapsed:.1f} s for a {budget} s budget:\n{output}"
    assert judge.returncode == 0, output
    tests = json.loads(results.read_text())["tests"]
    assert [t["score"] for t in tests] == [0, 0], tests
    assert "timed out" in tests[0]["output"] and "not graded: out of time" in tests[1]["output"], tests
    assert len(seen) >= 4, f"not all of the judge, its fork server, the child and its daemon were seen: {seen}"
    assert not wait_until_gone(seen), "still running after the grade (the fork server gets 5 s to notice)"
