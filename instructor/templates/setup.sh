#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image; the zip is
# unpacked in /autograder/source. Choose a base image with Python >= 3.11 (Ubuntu 24.04),
# or this installs python3.11 with apt.
set -euo pipefail
SRC="$(cd "$(dirname "$0")" && pwd)"
ROOT="${GRADER_ROOT:-/autograder}"

PY=""
for candidate in python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && "$candidate" -m venv --help >/dev/null 2>&1; then PY="$candidate"; break; fi
done
if [ -z "$PY" ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3.11 python3.11-venv
    PY=python3.11
fi

"$PY" -m venv "$ROOT/venv"
PIP="$ROOT/venv/bin/python -m pip install --disable-pip-version-check -q"
# torch from its CPU index (the PyPI wheel pulls in gigabytes of CUDA), at the pinned version
$PIP "$(grep '^torch==' "$SRC/requirements.txt")" --index-url https://download.pytorch.org/whl/cpu
$PIP -r "$SRC/requirements.txt"
$PIP --no-deps -e "$SRC"

# the reference solutions: readable by root (the judge) only, never by the sandboxed child
chmod -R go-rwx "$SRC/solutions"
