"""One settings object (autograder/settings.py): read once from the environment and the command line, one default
per budget, one environment prefix, a clear error for a bad value."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from autograder.paths import ROOT
from autograder.settings import DEFAULT_TOTAL_SECONDS, GradeSettings, SettingsError

OLD_PREFIX = "AUTO" + "GRADER_"  # the notebooks' and Gradescope's variables were named so: none is read now


def grade_parser():
    """The ``grade`` command's own parser (the one ``serve`` reads class grading's command lines with)."""
    from autograder.__main__ import build_parser

    return build_parser()


def test_the_environment_sets_each_setting_with_one_prefix():
    env = {"GRADER_DEVICE": "cuda", "GRADER_MEMORY_MB": "512", "GRADER_TOTAL_SECONDS": "90",
           "GRADER_TIME_LIMIT": "7.5", "GRADER_SKIP_SLOW": "1", "GRADER_REFERENCE": "none", "GRADER_JOBS": "3",
           "GRADER_VERBOSE": "yes", "DEVICE": "cpu", OLD_PREFIX + "DEVICE": "cpu"}
    assert GradeSettings.from_env(env) == GradeSettings(device="cuda", memory_mb=512, total_seconds=90.0,
                                                        time_limit=7.5, skip_slow=True, reference="none", jobs=3,
                                                        verbose=True)
    assert GradeSettings.from_env({}) == GradeSettings()
    assert GradeSettings.from_env({"GRADER_SKIP_SLOW": "0", "GRADER_DEVICE": ""}) == GradeSettings()


def test_the_command_line_overrides_the_environment():
    parser = grade_parser()
    env = {"GRADER_DEVICE": "cuda", "GRADER_TOTAL_SECONDS": "90", "GRADER_SKIP_SLOW": "1", "GRADER_MEMORY_MB": "512"}
    args = parser.parse_args(["grade", "--device", "cpu", "--total-seconds", "30", "--no-skip-slow"])
    assert GradeSettings.from_args(args, env) == GradeSettings(device="cpu", total_seconds=30.0, memory_mb=512)
    assert GradeSettings.from_args(parser.parse_args(["grade", "--no-reference"]), {}).reference == "none"


def test_the_command_line_a_setting_gives_reproduces_it_whatever_the_environment():
    """Class grading sends every setting on the grader's command line: the worker's environment changes nothing."""
    parser = grade_parser()
    settings = GradeSettings(device="cuda", memory_mb=700, total_seconds=123.5, time_limit=4.0, jobs=2)
    hostile = {"GRADER_DEVICE": "cpu", "GRADER_SKIP_SLOW": "1", "GRADER_TIME_LIMIT": "99",
               "GRADER_TOTAL_SECONDS": "9", "GRADER_REFERENCE": "none"}
    args = parser.parse_args(["grade", *settings.argv()])
    assert GradeSettings.from_args(args, hostile) == settings


def test_the_key_holds_what_changes_a_verdict_and_nothing_else():
    base = GradeSettings().key()
    for change in [{"device": "cuda"}, {"memory_mb": 1024}, {"total_seconds": 240.0}, {"time_limit": 5.0},
                   {"skip_slow": True}, {"reference": "none"}]:
        assert GradeSettings(**change).key() != base, change
    assert GradeSettings(jobs=4, verbose=True).key() == base


@pytest.mark.parametrize("env, named", [
    ({"GRADER_MEMORY_MB": "abc"}, "GRADER_MEMORY_MB='abc': expected a whole number"),
    ({"GRADER_TOTAL_SECONDS": "soon"}, "GRADER_TOTAL_SECONDS='soon': expected a number"),
    ({"GRADER_SKIP_SLOW": "maybe"}, "GRADER_SKIP_SLOW='maybe': expected 1 or 0"),
    ({"GRADER_DEVICE": "gpu"}, "GRADER_DEVICE='gpu': expected cpu or cuda"),
    ({"GRADER_TIME_LIMIT": "-1"}, "GRADER_TIME_LIMIT=-1.0: expected a number above 0"),
])
def test_a_bad_value_is_an_error_that_names_it(env, named):
    with pytest.raises(SettingsError) as info:
        GradeSettings.from_env(env)
    assert named in str(info.value)


def test_a_bad_option_is_named_as_it_was_given():
    args = grade_parser().parse_args(["grade", "--memory-mb", "0"])
    with pytest.raises(SettingsError, match=r"^--memory-mb=0: expected a number above 0$"):
        GradeSettings.from_args(args, {})
    with pytest.raises(SystemExit):  # argparse's own message for a value of the wrong type
        grade_parser().parse_args(["grade", "--time-limit", "soon"])


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path):
    for command in (["autograder", "grade", "--submission", "solutions"], ["instructor", "autograde", "--samples"]):
        proc = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={"PATH": "/usr/bin:/bin", "GRADER_MEMORY_MB": "abc",
                                                "HOME": str(tmp_path)})
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and "error: GRADER_MEMORY_MB='abc'" in proc.stderr, proc.stderr


def test_the_help_names_the_settings_and_their_defaults():
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    for text in ("--device", "--memory-mb", "--total-seconds", "GRADER_DEVICE", f"default {DEFAULT_TOTAL_SECONDS:g}"):
        assert text in proc.stdout, text


def _code_files():
    for top in ("autograder", "instructor"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and (
                    path.suffix == ".py" or path.parent.name == "templates"):
                yield path


def test_the_whole_grade_budget_is_defined_once():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in _code_files()
             for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\b480\b", line)]
    assert found == ["autograder/settings.py:" + str(_line_of("DEFAULT_TOTAL_SECONDS = 480"))], found


def _line_of(text: str) -> int:
    lines = (ROOT / "autograder" / "settings.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


def test_one_environment_prefix():
    """Every environment variable the grader and the instructor tools read starts with GRADER_ (the old
    names of the older prefix and the bare DEVICE are gone), and no tool reads a grade's setting from the environment
    outside autograder/settings.py."""
    python = re.compile(r"""(?:environ(?:\.get)?[\[(]|getenv\()["']([A-Z][A-Z0-9_]+)""")
    shell = re.compile(r"\$\{?([A-Z][A-Z0-9_]+)")
    allowed = {"PATH", "HOME", "ROOT", "PY", "SRC", "PIP"}  # the OS's, and the shell templates' own
    for path in _code_files():
        text = path.read_text()
        assert OLD_PREFIX not in text, path
        for name in (python if path.suffix == ".py" else shell).findall(text):
            assert name.startswith("GRADER_") or name in allowed, (path, name)
    settings = {f"GRADER_{name}" for name in ("DEVICE", "MEMORY_MB", "TOTAL_SECONDS", "TIME_LIMIT", "SKIP_SLOW",
                                              "REFERENCE", "JOBS", "VERBOSE")}
    for path in _code_files():
        if path.name != "settings.py":
            assert not any(f'"{name}"' in path.read_text() for name in settings), path
