"""The settings a grade depends on, read once, from the command line and the environment.

``GradeSettings`` holds them, each with its one default; every tool that grades (``python -m autograder grade``,
its warm worker ``serve``, a notebook's ``check``, class grading, the Gradescope bundle, nbgrader's per-cell
timeout) builds one where it starts and passes it on: nothing deeper reads the environment for them.

The environment names them with one prefix, ``GRADER_``; a command-line option overrides its variable:

    GRADER_DEVICE         --device          cpu (default) or cuda
    GRADER_MEMORY_MB      --memory-mb       each problem's memory limit, MB (default 2048)
    GRADER_TOTAL_SECONDS  --total-seconds   the whole grade's budget, s (DEFAULT_TOTAL_SECONDS)
    GRADER_TIME_LIMIT     --time-limit      seconds per problem (default: each problem's own)
    GRADER_SKIP_SLOW      --skip-slow       1: the problems that train a policy are skipped
    GRADER_REFERENCE      --reference, --no-reference
                                            the reference solutions for the hidden checks (default: the kit's
                                            solutions/, when present); "none": public checks only
    GRADER_JOBS           --jobs            problems graded at once (default 0: as the cores and memory allow)
    GRADER_VERBOSE                          1: say how student code is confined

Where they run, not what they grade (read by the sandbox itself, autograder/sandbox/isolation.py):
``GRADER_ISOLATION=landlock|uid|none`` and ``GRADER_NO_PRIVDROP=1``. Where a notebook's modules are:
``GRADER_SUBMISSION`` (autograder/notebook.py).

``key()`` is what changes a verdict (not how many problems run side by side, nor what is printed): class
grading's job key holds it, so a class graded again on another device or budget is graded again.

This module imports neither torch nor the grader: the instructor tools read it cheaply.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "GRADER_"
DEFAULT_TOTAL_SECONDS = 480.0  # inside Gradescope's default 600 s, with room for start-up and the results
DEFAULT_MEMORY_MB = 2048
DEVICES = ("cpu", "cuda")
NO_REFERENCE = "none"
OWN = "own"  # --time-limit own: each problem's own limit
NO_VERDICT = ("jobs", "verbose")  # how many problems run side by side, and what is printed, change no verdict
DEST = "setting_"  # the options' attributes on the parsed command line: apart from the command's other options
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting's value is not one it can take (the message names the variable or option)."""

    def __init__(self, name: str, value, expected: str):
        super().__init__(f"{name}={value!r}: expected {expected}")
        self.name, self.value, self.expected = name, value, expected  # name: a field, a variable or an option


@dataclass(frozen=True)
class GradeSettings:
    device: str = "cpu"
    memory_mb: int = DEFAULT_MEMORY_MB
    total_seconds: float = DEFAULT_TOTAL_SECONDS
    time_limit: float | None = None  # seconds per problem; None: each problem's own
    skip_slow: bool = False
    reference: str = ""  # "": the kit's solutions/ (when present); "none": public checks only; else a folder
    jobs: int = 0  # problems graded at once; 0: as the usable cores and memory allow
    verbose: bool = False

    def __post_init__(self):
        def bad(field: str, expected: str):
            raise SettingsError(field, getattr(self, field), expected)

        if self.device not in DEVICES:
            bad("device", " or ".join(DEVICES))
        for field in ("memory_mb", "total_seconds", "time_limit"):
            if getattr(self, field) is not None and not getattr(self, field) > 0:
                bad(field, "a number above 0")
        if self.jobs < 0:
            bad("jobs", "0 (as the machine allows) or more")

    # ----------------------------------------------------------------------- reading them
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "GradeSettings":
        """The settings the environment gives (``GRADER_*``), the defaults for those it does not."""
        environ = os.environ if environ is None else environ
        found = {}
        for field in dataclasses.fields(cls):
            name = PREFIX + field.name.upper()
            text = environ.get(name, "").strip()
            if text:
                found[field.name] = _parse(name, text, field.type)
        return _checked(lambda: cls(**found), lambda field: PREFIX + field.upper())

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> "GradeSettings":
        """The environment's settings with the options given on the command line (``add_arguments``) over them."""
        settings = cls.from_env(environ)
        given = {f.name: getattr(args, DEST + f.name) for f in dataclasses.fields(cls) if hasattr(args, DEST + f.name)}
        return _checked(lambda: dataclasses.replace(settings, **given), lambda field: "--" + field.replace("_", "-"))

    # ----------------------------------------------------------------------- passing them on
    def key(self) -> dict:
        """The settings that change a verdict, for a job key (JSON-serialisable): every one but those of
        ``NO_VERDICT`` (a setting added later is in the key unless it is named there)."""
        return {name: value for name, value in dataclasses.asdict(self).items() if name not in NO_VERDICT}

    def argv(self) -> list[str]:
        """``python -m autograder grade`` options that give exactly these settings, whatever its environment."""
        return ["--device", self.device, "--memory-mb", str(self.memory_mb),
                "--total-seconds", repr(float(self.total_seconds)),
                "--time-limit", OWN if self.time_limit is None else repr(float(self.time_limit)),
                "--skip-slow" if self.skip_slow else "--no-skip-slow",
                *(["--no-reference"] if not self.wants_reference() else [f"--reference={self.reference}"]),
                "--jobs", str(self.jobs)]

    def wants_reference(self) -> bool:
        return self.reference.lower() != NO_REFERENCE


def _parse(name: str, text: str, kind: str):
    try:
        if kind == "bool":
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if kind == "int":
            return int(text)
        if kind == "float | None" and text.lower() == OWN:
            return None
        if kind in ("float", "float | None"):
            return float(text)
        return text
    except ValueError:
        expected = {"bool": "1 or 0", "int": "a whole number"}.get(kind, "a number")
        raise SettingsError(name, text, expected) from None


def _time_limit(text: str) -> float | None:
    try:
        return _parse("--time-limit", text, "float | None")
    except SettingsError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds or {OWN!r}") from None


def _checked(build, named) -> GradeSettings:
    """``build()``; a value it refuses is named as the caller reads it (``named(field)``: a variable, an option)."""
    try:
        return build()
    except SettingsError as err:
        raise SettingsError(named(err.name), err.value, err.expected) from None


def add_arguments(parser: argparse.ArgumentParser, *, jobs: bool = True, reference: bool = True,
                  total: str = "budget of the whole grade: problems left when it runs out are 'not graded: out of "
                               "time'") -> None:
    """The options that set ``GradeSettings`` (each defaults to its ``GRADER_*`` variable, then its default);
    ``jobs``/``reference``: also --jobs and --reference/--no-reference (the ``grade`` command's own)."""
    g = parser.add_argument_group(
        "settings", "Each option's default is its GRADER_* variable (GRADER_DEVICE, GRADER_MEMORY_MB, "
                    "GRADER_TOTAL_SECONDS, GRADER_TIME_LIMIT, GRADER_SKIP_SLOW, GRADER_REFERENCE, GRADER_JOBS), "
                    "else the default shown.")

    def option(*names, **kwargs):  # absent from the parsed command line unless given: the environment's then
        g.add_argument(*names, default=argparse.SUPPRESS, **kwargs)

    option("--device", dest=DEST + "device", choices=DEVICES, help="where the inputs are put (default: cpu)")
    option("--memory-mb", dest=DEST + "memory_mb", type=int, metavar="MB",
           help=f"each problem's memory limit in MB (default {DEFAULT_MEMORY_MB})")
    option("--total-seconds", dest=DEST + "total_seconds", type=float, metavar="SECONDS",
           help=f"{total} (default {DEFAULT_TOTAL_SECONDS:g})")
    option("--time-limit", dest=DEST + "time_limit", type=_time_limit,
           metavar="SECONDS", help=f"seconds per problem (default, or '{OWN}': each problem's own)")
    option("--skip-slow", dest=DEST + "skip_slow", action=argparse.BooleanOptionalAction,
           help="skip the integration problems that train a policy (default: no)")
    if reference:
        option("--reference", dest=DEST + "reference", metavar="FOLDER",
               help="reference solutions for the hidden checks (default: the kit's solutions/, when present)")
        option("--no-reference", dest=DEST + "reference", action="store_const", const=NO_REFERENCE,
               help="run only the public checks")
    if jobs:
        option("--jobs", dest=DEST + "jobs", type=int, metavar="N",
               help="problems graded at once, each in its own sandbox (default: one per usable CPU, as memory "
                    "allows; 1 on Gradescope's half-CPU box)")


__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TOTAL_SECONDS", "GradeSettings", "SettingsError", "add_arguments"]
