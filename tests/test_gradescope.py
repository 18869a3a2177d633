"""`make gradescope`: the bundle, and run_autograder run locally against a temporary /autograder."""

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from instructor.gradescope import build_bundle, find_module
from autograder.paths import SOLUTIONS
from tests.test_cli import check_results_format


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("gradescope"), only=["hw2"], log=lambda *_: None)[0]


def _unpack(bundle: Path, root: Path) -> Path:
    """What Gradescope does: the zip in /autograder/source, with the modes it stores."""
    source = root / "source"
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, source))
            path.chmod(info.external_attr >> 16 & 0o777)
    (root / "submission").mkdir()
    return source


def _run(root: Path, grade_args: str, wrapper=lambda command: command) -> dict:
    env = {**os.environ, "GRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable,
           "GRADER_GRADE_ARGS": grade_args}
    proc = subprocess.run(wrapper(["bash", str(root / "source" / "run_autograder")]), env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = root / "results" / "results.json"
    assert results.is_file(), proc.stdout + proc.stderr
    return json.loads(results.read_text())


def test_the_zip_has_setup_and_run_autograder_at_its_root(bundle):
    with zipfile.ZipFile(bundle) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        names = set(infos)
        assert {"setup.sh", "run_autograder", "requirements.txt", "pyproject.toml", "gradescope.json"} <= names
        for script in ["setup.sh", "run_autograder"]:
            assert infos[script].external_attr >> 16 & stat.S_IXUSR, f"{script} must be executable"
        assert "solutions/hw2/returns.py" in names and "starter/hw2/returns.py" in names
        assert "autograder/problems/hw2_returns.py" in names and "rlkit/trajectory.py" in names
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        # student code runs in the bundle: nothing but the reference may hold answers, and that is root's alone
        assert "instructor/gradescope.py" in names and "instructor/completion.py" in names
        assert not any(n.startswith(("instructor/variants/", "instructor/experts/", "tests/")) for n in names)
        assert json.loads(archive.read("gradescope.json")) == {"assignment": "hw2"}
        setup = archive.read("setup.sh").decode()
        assert "requirements.txt" in setup and "download.pytorch.org/whl/cpu" in setup
        assert "torch==" in archive.read("requirements.txt").decode()


def test_the_scripts_are_valid_bash(bundle, tmp_path):
    source = _unpack(bundle, tmp_path)
    for script in ["setup.sh", "run_autograder"]:
        proc = subprocess.run(["bash", "-n", str(source / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_modules_are_found_by_path_or_by_name(tmp_path):
    (tmp_path / "deep" / "hw2").mkdir(parents=True)
    (tmp_path / "deep" / "hw2" / "returns.py").write_text("x")
    (tmp_path / "returns.py").write_text("y")
    (tmp_path / "policy_gradient.py").write_text("z")
    assert find_module(tmp_path, "hw2/returns.py") == tmp_path / "deep" / "hw2" / "returns.py"
    assert find_module(tmp_path, "hw2/policy_gradient.py") == tmp_path / "policy_gradient.py"
    assert find_module(tmp_path, "hw1/imitation.py") is None


@pytest.mark.slow
def test_run_autograder_grades_a_flat_upload_with_hidden_checks(bundle, tmp_path):
    source = _unpack(bundle, tmp_path)
    for name in ["returns.py", "policy_gradient.py"]:
        (tmp_path / "submission" / name).write_text((SOLUTIONS / "hw2" / name).read_text())
    data = _run(tmp_path, "--problem discounted_return,returns_match_reference --skip-slow")
    check_results_format(data)
    tests = {t["extra_data"]["problem"]: t for t in data["tests"]}
    assert set(tests) == {"hw2/discounted_return", "hw2/returns_match_reference"}
    assert all(t["status"] == "passed" for t in tests.values()), tests
    assert tests["hw2/returns_match_reference"]["visibility"] == "after_published"
    assert tests["hw2/discounted_return"]["visibility"] == "visible"
    assert data["score"] == 4
    mode = (source / "solutions" / "hw2" / "returns.py").stat().st_mode
    assert not mode & (stat.S_IRGRP | stat.S_IROTH), "the reference must be readable by its owner only"


CHEAT = '''

def discounted_return(rewards, gamma):
    """Tries to read the reference and to forge the results file."""
    import importlib.util
    notes = []
    try:
        open("{results}", "w").write('{{"score": 100, "tests": []}}')
        notes.append("forged")
    except OSError as err:
        notes.append(type(err).__name__)
    try:
        spec = importlib.util.spec_from_file_location("ref", "{reference}")
        ref = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ref)
        return ref.discounted_return(rewards, gamma)
    except OSError as err:
        raise RuntimeError("could not read the reference: " + type(err).__name__ + " " + " ".join(notes))
'''


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or os.environ.get("GRADER_NO_PRIVDROP"),
                    reason="the sandbox drops privileges only when the grader runs as root (as on Gradescope)")
def test_student_code_can_neither_read_the_reference_nor_forge_results(bundle, tmp_path):
    source = _unpack(bundle, tmp_path)
    results = tmp_path / "results" / "results.json"
    cheat = CHEAT.format(results=results, reference=source / "solutions" / "hw2" / "returns.py")
    (tmp_path / "submission" / "hw2").mkdir()
    (tmp_path / "submission" / "hw2" / "returns.py").write_text((SOLUTIONS / "hw2" / "returns.py").read_text() + cheat)
    tmp_path.chmod(0o755)
    data = _run(tmp_path, "--problem discounted_return,pg_batch_mean")
    check_results_format(data)
    tests = {t["extra_data"]["problem"]: t for t in data["tests"]}
    assert tests["hw2/discounted_return"]["status"] == "failed"
    assert "could not read the reference: PermissionError" in tests["hw2/discounted_return"]["output"]
    assert "forged" not in tests["hw2/discounted_return"]["output"]
    assert "missing file hw2/policy_gradient.py" in tests["hw2/pg_batch_mean"]["output"]
    assert data["score"] == 0


# --------------------------------------------------------------------------- under Gradescope's limits
from tests import gradescope_box  # noqa: E402

FLAT_FILES = {"hw1": ["imitation.py"], "hw2": ["returns.py", "policy_gradient.py"]}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    paths = build_bundle(tmp_path_factory.mktemp("gradescope-all"), log=lambda *_: None)
    return {json.loads(zipfile.ZipFile(p).read("gradescope.json"))["assignment"]: p for p in paths}


@pytest.mark.slow
@pytest.mark.skipif(gradescope_box.unavailable_reason() is not None,
                    reason=str(gradescope_box.unavailable_reason()))
@pytest.mark.parametrize("assignment", ["hw1", "hw2"])
@pytest.mark.parametrize("kind", ["solutions", "starter"])
def test_run_autograder_under_gradescopes_default_limits(bundles, tmp_path, assignment, kind):
    """768 MB and half a CPU (cgroup v1), a flat upload, every problem of the homework (training included):
    solutions get full marks and starter a clean 0, well inside the 10-minute limit, with no OOM kill."""
    source = _unpack(bundles[assignment], tmp_path)
    for name in FLAT_FILES[assignment]:
        base = SOLUTIONS if kind == "solutions" else source / "starter"
        (tmp_path / "submission" / name).write_text((base / assignment / name).read_text())
    tmp_path.chmod(0o755)
    with gradescope_box.gradescope_box(f"kit-test-{os.getpid()}-{assignment}-{kind}") as box:
        start = time.monotonic()
        data = _run(tmp_path, "", wrapper=box.wrap)
        seconds = time.monotonic() - start
        peak, oom_kills = box.peak_mb, box.oom_kills
    print(f"{assignment} {kind}: {seconds:.1f} s, peak {peak:.0f} MB under {gradescope_box.MEMORY_MB} MB")
    check_results_format(data)
    assert oom_kills == 0, f"the kernel OOM-killed {oom_kills} process(es) in the box"
    assert seconds < 300, f"{seconds:.0f} s: too close to Gradescope's 600 s"
    assert data["tests"], data
    if kind == "solutions":
        assert all(t["status"] == "passed" for t in data["tests"]), [t for t in data["tests"] if t["status"] != "passed"]
        assert data["score"] == sum(t["max_score"] for t in data["tests"])
    else:
        assert data["score"] == 0
        assert all("not implemented yet" in t["output"] for t in data["tests"]), data["tests"]
