"""Correct code gets full marks wherever the kit runs: the matrix of set-ups.

Each cell grades a copy of the checkout, made the way people make one, with the
reference solutions plus code a correct student may write: lazy standard-library
imports, ``torch.optim`` and ``torch.func`` in the graded modules. A cell that
needs what this machine lacks (root, capsh, Landlock, a Python under a private
folder) skips with a reason that names it.

    cell                                   how it is made here
    checkout under a 0700 folder           copy of the tracked files under mktemp -d
    checkout under root's 0700 home        the same under /root
    no CAP_SYS_ADMIN (containers)          capsh --drop=cap_sys_admin
    the ordinary user's code path          GRADER_NO_PRIVDROP=1 (no uid drop: Landlock alone)
    an ordinary user, for real             setpriv to an unused uid (needs a Python others can run)
    /proc hidden (as on macOS)             unshare -m, tmpfs over /proc
    no Landlock                            GRADER_ISOLATION=uid / none
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder.paths import ROOT
from autograder.runner import select
from autograder.sandbox import landlock

IS_ROOT = os.geteuid() == 0
HAS_LANDLOCK = landlock.abi_version() >= 1
# One problem per graded module, the given-code shim included: every import path is exercised.
SUBSET = "discounted_return,pg_reward_to_go,bc_loss,bc_loss_gradient,sample_trajectory"

LIBRARIES_STUDENTS_USE = '''

# --- correct code may use any installed package and lazy standard-library imports
def _libraries_students_use():
    import ctypes.wintypes  # noqa: F401 - lazily imported standard library
    import decimal  # noqa: F401
    import torch
    import torch.func

    p = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.Adam([p], lr=0.1)
    (p - 1).pow(2).sum().backward()
    optimizer.step()
    return torch.func.grad(lambda x: (x ** 2).sum())(torch.ones(2))


_libraries_students_use()
'''


def python_is_private() -> bool:
    """Is the running Python's installation out of reach of other users (pyenv under a 0700 /root)?"""
    path = Path(sys.base_prefix).resolve()
    return any(not os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def copy_checkout(parent: Path) -> Path:
    """The tracked (and not ignored) files of this checkout, as a clone of it would have them."""
    kit = parent / "kit"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for rel in filter(None, (f.decode() for f in files)):
        src = ROOT / rel
        if src.is_file():
            (kit / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, kit / rel)
    return kit


def with_libraries(kit: Path) -> str:
    """solutions/ plus LIBRARIES_STUDENTS_USE in every graded module; returns its path."""
    sub = kit / "build" / "correct_with_libraries"
    shutil.copytree(kit / "solutions", sub)
    for module in ["hw1/imitation.py", "hw2/returns.py", "hw2/policy_gradient.py"]:
        with open(sub / module, "a") as f:
            f.write(LIBRARIES_STUDENTS_USE)
    return str(sub)


def grade(kit: Path, submission: str, problems: str | None = SUBSET, env: dict | None = None,
          wrapper: list[str] | None = None, timeout: int = 900) -> tuple[subprocess.CompletedProcess, dict]:
    results = kit / "build" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "autograder", "grade", "--submission", submission, "--results", str(results)]
    if problems:
        command += ["--problem", problems]
    if wrapper:
        command = [*wrapper, " ".join(_quote(c) for c in command)]
    proc = subprocess.run(command, cwd=kit, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    data = json.loads(results.read_text()) if results.is_file() else {}
    return proc, data


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


def assert_full_marks(proc: subprocess.CompletedProcess, data: dict, problems: str | None = SUBSET) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = len(select(problem=problems)) if problems else len(select())
    failed = [(t["name"], t["output"][:400]) for t in data["tests"] if t["status"] != "passed"]
    assert not failed, f"{failed}\n{proc.stdout[-2000:]}"
    assert len(data["tests"]) == expected
    assert data["score"] == sum(t["max_score"] for t in data["tests"])


@pytest.fixture
def private_parent():
    """A 0700 folder, as mktemp -d makes it."""
    path = Path(tempfile.mkdtemp(prefix="kit-private-"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    yield path
    shutil.rmtree(path, ignore_errors=True)


needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root: the uid drop and capsh/unshare are root's")
needs_capsh = pytest.mark.skipif(shutil.which("capsh") is None, reason="needs capsh (Debian package libcap2-bin)")
needs_unshare = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
needs_landlock = pytest.mark.skipif(not HAS_LANDLOCK, reason="needs a kernel with Landlock (Linux ≥ 5.13)")


# --------------------------------------------------------------------------- the cells
@needs_root
def test_a_checkout_under_a_private_folder(private_parent):
    kit = copy_checkout(private_parent)
    assert_full_marks(*grade(kit, with_libraries(kit)))


@needs_root
def test_a_checkout_under_roots_private_home():
    if not Path("/root").is_dir():
        pytest.skip("needs /root")
    parent = Path(tempfile.mkdtemp(prefix="kit-", dir="/root"))
    try:
        kit = copy_checkout(parent)
        assert_full_marks(*grade(kit, with_libraries(kit)))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.slow
@needs_root
@needs_capsh
def test_a_container_without_cap_sys_admin_grades_everything(private_parent):
    """The hardest cell, every problem (training included): private checkout, no mount namespaces."""
    kit = copy_checkout(private_parent)
    probe = subprocess.run(["capsh", "--drop=cap_sys_admin", "--", "-c", "unshare -m true"], capture_output=True)
    assert probe.returncode != 0, "capsh did not take CAP_SYS_ADMIN away"
    assert_full_marks(*grade(kit, with_libraries(kit), problems=None,
                             wrapper=["capsh", "--drop=cap_sys_admin", "--", "-c"]), problems=None)


@needs_landlock
def test_the_ordinary_users_code_path(private_parent):
    """No uid drop: Landlock alone keeps the judge's files away (what a student's laptop runs)."""
    kit = copy_checkout(private_parent)
    assert_full_marks(*grade(kit, with_libraries(kit), env={"GRADER_NO_PRIVDROP": "1"}))


@needs_root
def test_an_ordinary_user_for_real(tmp_path):
    if python_is_private():
        pytest.skip(f"Python here lives under a private folder ({sys.base_prefix}): an ordinary user could not "
                    "even start it; the code path is covered by test_the_ordinary_users_code_path")
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    parent = Path(tempfile.mkdtemp(prefix="kit-user-"))
    try:
        kit = copy_checkout(parent)
        submission = with_libraries(kit)
        for path in [parent, *parent.rglob("*")]:
            os.chown(path, 4242, 4242, follow_symlinks=False)
        wrapper = ["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", "bash", "-c"]
        assert_full_marks(*grade(kit, submission, wrapper=wrapper, env={"HOME": str(parent)}))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@needs_root
@needs_unshare
@pytest.mark.parametrize("which", ["solutions", "starter"])
def test_with_proc_hidden_as_on_macos(private_parent, which):
    """No /proc at all (tmpfs over it in a private mount namespace): psutil cannot read a process table,
    RLIMIT_AS has no baseline; the grader must still give the same verdicts."""
    kit = copy_checkout(private_parent)
    submission = with_libraries(kit) if which == "solutions" else "starter"
    proc, data = grade(kit, submission, wrapper=["unshare", "-m", "sh", "-c",
                                                 "mount -t tmpfs none /proc && exec \"$0\" \"$@\"", "bash", "-c"])
    if which == "solutions":
        assert_full_marks(proc, data)
    else:
        assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        assert data["score"] == 0 and len(data["tests"]) == len(select(problem=SUBSET))
        assert all("not implemented yet" in t["output"] for t in data["tests"]), data["tests"]


@needs_root
def test_without_landlock_a_root_judge_stops_with_a_clear_grader_error(private_parent):
    """uid mode relies on file permissions, and the checkout is under a 0700 folder: the start-up
    self-check stops the grade (exit 3) naming the folder and the fixes, never 0 for the student."""
    kit = copy_checkout(private_parent)
    proc, data = grade(kit, with_libraries(kit), env={"GRADER_ISOLATION": "uid"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "cannot reach what the grader needs" in proc.stderr
    assert "no Landlock" in proc.stderr and "GRADER_NO_PRIVDROP=1" in proc.stderr
    assert f"the first folder it cannot enter: {'/root' if python_is_private() else private_parent}" in proc.stderr
    assert data["tests"] == [] and "not your code's fault" in data["output"]


@needs_root
def test_without_landlock_a_readable_checkout_grades_in_full(tmp_path):
    if python_is_private():
        pytest.skip(f"Python here lives under a private folder ({sys.base_prefix}): uid mode cannot reach it "
                    "without Landlock (the self-check's case, tested above)")
    parent = Path(tempfile.mkdtemp(prefix="kit-open-"))
    parent.chmod(0o755)
    try:
        kit = copy_checkout(parent)
        assert_full_marks(*grade(kit, with_libraries(kit), env={"GRADER_ISOLATION": "uid"}))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_no_isolation_at_all_still_grades_in_full(private_parent):
    """An ordinary user without Landlock (macOS, old kernels): limits and data-only replies only."""
    kit = copy_checkout(private_parent)
    assert_full_marks(*grade(kit, with_libraries(kit), env={"GRADER_ISOLATION": "none", "GRADER_NO_PRIVDROP": "1"}))
