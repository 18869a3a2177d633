"""Builds shared by the instructor tests: the student release and an autograded class.

Each is built once per test session, even under pytest-xdist: the first worker that
needs it builds it under a file lock in the session's shared temporary root, the
others reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from filelock import FileLock

TIME_LIMIT = 15  # seconds per problem in the autograde test: what a hang costs


def _shared(tmp_path_factory, name: str, build) -> dict:
    root = tmp_path_factory.getbasetemp()
    if root.name.startswith("popen-gw"):  # xdist worker: share with the other workers
        root = root.parent
    marker = root / f"{name}.json"
    with FileLock(str(marker) + ".lock"):
        if not marker.is_file():
            marker.write_text(json.dumps(build(root / name)))
        return json.loads(marker.read_text())


def _build_release(where: Path) -> dict:
    from instructor.release import build_release

    log = []
    found = build_release(where / "release", where / "course", log=log.append)
    return {"release": str(where / "release"), "course": str(where / "course"), "log": log,
            "leaks": [str(leak) for leak in found]}


def _build_autograded(where: Path) -> dict:
    import time

    from autograder.settings import GradeSettings
    from instructor.autograde import autograde
    from instructor.classroom import make_samples

    samples = make_samples(where / "samples")
    log = []
    start = time.monotonic()
    csv = autograde(samples, where / "course", only=["hw2"],
                    settings=GradeSettings(time_limit=TIME_LIMIT, skip_slow=True), log=log.append)
    return {"samples": str(samples), "course": str(where / "course"), "csv": str(csv), "log": log,
            "seconds": time.monotonic() - start}


@pytest.fixture(scope="session")
def built_release(tmp_path_factory) -> dict:
    return _shared(tmp_path_factory, "release", _build_release)


@pytest.fixture(scope="session")
def autograded_class(tmp_path_factory) -> dict:
    return _shared(tmp_path_factory, "autograded", _build_autograded)
