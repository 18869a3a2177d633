"""Grade time and verdict in each cell of the set-up matrix (see tests/test_where_it_runs.py).

    .venv/bin/python bench/where_it_runs.py            # the subset of problems in every cell
    .venv/bin/python bench/where_it_runs.py --full     # every problem, training included

Each cell grades a fresh copy of the checkout with solutions/ plus lazy standard-library
imports, torch.optim and torch.func in every graded module. Prints one row per cell.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import test_where_it_runs as cells  # noqa: E402

PROC_HIDDEN = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /proc && exec "$0" "$@"', "bash", "-c"]
CELLS = {
    "root, checkout under mktemp -d (0700)": ({}, None),
    "root, no CAP_SYS_ADMIN (capsh), under mktemp -d": ({}, ["capsh", "--drop=cap_sys_admin", "--", "-c"]),
    "root, /proc hidden (tmpfs), under mktemp -d": ({}, PROC_HIDDEN),
    "ordinary user's path (GRADER_NO_PRIVDROP=1)": ({"GRADER_NO_PRIVDROP": "1"}, None),
    "no Landlock, no isolation (GRADER_ISOLATION=none)": ({"GRADER_ISOLATION": "none", "GRADER_NO_PRIVDROP": "1"},
                                                         None),
    "no Landlock, root: uid mode (GRADER_ISOLATION=uid)": ({"GRADER_ISOLATION": "uid"}, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="every problem (training included)")
    args = parser.parse_args()
    problems = None if args.full else cells.SUBSET
    print(f"{'cell':<52} {'verdict':<26} {'seconds':>7}")
    for name, (env, wrapper) in CELLS.items():
        parent = Path(tempfile.mkdtemp(prefix="kit-bench-"))
        try:
            kit = cells.copy_checkout(parent)
            start = time.monotonic()
            proc, data = cells.grade(kit, cells.with_libraries(kit), problems, env=env, wrapper=wrapper)
            seconds = time.monotonic() - start
        finally:
            shutil.rmtree(parent, ignore_errors=True)
        if proc.returncode == 3:
            verdict = "grader error (exit 3)"
        else:
            total = sum(t["max_score"] for t in data.get("tests", []))
            verdict = f"{data.get('score', 0):g}/{total:g}" + (" full marks" if data.get("score") == total else "")
        print(f"{name:<52} {verdict:<26} {seconds:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
