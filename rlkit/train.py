"""``make train HW=hw1|hw2 ...``: run a homework's experiment on a submission.

Dispatches to ``rlkit.experiments.<hw>``, whose ``main(argv)`` parses the rest
of the command line. The submission's modules (``hw1.*``, ``hw2.*``) are
imported from ``--submission`` (default: starter/): this is the student's own
code running in the student's own process, not grading.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent  # the checkout: starter/, solutions/, runs/


def student_module(submission: str | Path, name: str):
    """The submission's module ``name`` (e.g. "hw2.returns"), imported in this process: the student's
    own code running for the student's own experiment, not grading. A relative ``submission`` that
    does not exist here is looked up in the kit's root (``starter``, ``solutions``)."""
    path = Path(submission)
    if not path.is_absolute() and not path.exists():
        path = KIT_ROOT / path
    if not path.is_dir():
        raise SystemExit(f"error: submission directory {str(submission)!r} does not exist")
    sys.path.insert(0, str(path.resolve()))
    return importlib.import_module(name)


def run_directory(runs_dir: str | Path, name: str) -> Path:
    """The folder of one run: ``name`` under ``runs_dir``, with no path separators or spaces in it."""
    return Path(runs_dir) / name.replace("/", "_").replace(" ", "")


def not_implemented_message(err: NotImplementedError, submission: str, module_file: str) -> str:
    """The one-line error for a stub hit during a run, naming the function of ``module_file``
    (e.g. ``hw2/returns.py``) that raised: the deepest traceback frame in that file."""
    import traceback

    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.endswith(Path(module_file).name)]
    where = frames[-1].name if frames else "a function"
    return f"error: {where} in {submission}/{module_file} is not implemented yet (it still raises NotImplementedError)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlkit.train", add_help=False)
    parser.add_argument("--hw", required=True, choices=["hw1", "hw2"])
    known, rest = parser.parse_known_args(argv)
    module = importlib.import_module(f"rlkit.experiments.{known.hw}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
