"""Generate ``starter/`` from ``solutions/`` with nbgrader's own ClearSolutions.

nbgrader copies ``.py`` files into a release unchanged, so solution regions in
modules are stripped here: each file's text is wrapped as a one-cell notebook
and passed through ``ClearSolutions(enforce_metadata=False)``.

    python -m autograder.starter            # regenerate starter/
    python -m autograder.starter --check    # exit 1 if starter/ is stale
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from autograder.paths import SOLUTIONS, STARTER

BEGIN = "BEGIN SOLUTION"
END = "END SOLUTION"
COPIED_SUFFIXES = {".py", ".md", ".txt", ".json"}


class SolutionRegionError(ValueError):
    """A solution region is nested, unclosed or closed without being opened."""


def check_regions(text: str, name: str) -> int:
    """Return the number of solution regions; raise on malformed ones."""
    depth, count = 0, 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        if BEGIN in line:
            if depth:
                raise SolutionRegionError(f"{name}:{lineno}: nested '### {BEGIN}' (the region above is not closed)")
            depth, count = 1, count + 1
        elif END in line:
            if not depth:
                raise SolutionRegionError(f"{name}:{lineno}: '### {END}' without a matching '### {BEGIN}'")
            depth = 0
    if depth:
        raise SolutionRegionError(f"{name}: '### {BEGIN}' is never closed by '### {END}'")
    return count


def strip_solutions(text: str, name: str = "<text>") -> str:
    """The text with every solution region replaced by nbgrader's stub."""
    import nbformat
    from nbgrader.preprocessors import ClearSolutions

    check_regions(text, name)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.cells.append(nbformat.v4.new_code_cell(text))
    nb, _ = ClearSolutions(enforce_metadata=False).preprocess(nb, {})
    return nb.cells[0].source


def render(src_root: Path = SOLUTIONS) -> dict[Path, str]:
    """Relative path → the starter text for every file the starter contains."""
    files: dict[Path, str] = {}
    for path in sorted(src_root.rglob("*")):
        if not path.is_file() or path.suffix not in COPIED_SUFFIXES or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(src_root)
        text = path.read_text()
        files[rel] = strip_solutions(text, str(rel)) if path.suffix == ".py" else text
    return files


def stale_files(dst_root: Path = STARTER, src_root: Path = SOLUTIONS) -> list[str]:
    """Files of ``dst_root`` that differ from what ``render`` would write."""
    expected = render(src_root)
    problems = [str(rel) for rel, text in expected.items()
                if not (dst_root / rel).is_file() or (dst_root / rel).read_text() != text]
    present = {p.relative_to(dst_root) for p in dst_root.rglob("*")
               if p.is_file() and p.suffix in COPIED_SUFFIXES and "__pycache__" not in p.parts}
    problems += [f"{rel} (not in solutions/)" for rel in sorted(present - expected.keys())]
    return problems


def write(dst_root: Path = STARTER, src_root: Path = SOLUTIONS) -> list[Path]:
    files = render(src_root)
    if dst_root.exists():
        shutil.rmtree(dst_root)
    for rel, text in files.items():
        (dst_root / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst_root / rel).write_text(text)
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report whether starter/ is stale")
    parser.add_argument("--src", type=Path, default=SOLUTIONS)
    parser.add_argument("--dst", type=Path, default=STARTER)
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files(args.dst, args.src)
            if stale:
                print("starter/ is stale; run `make starter`. Differing files:\n  " + "\n  ".join(stale))
                return 1
            print("starter/ is up to date")
            return 0
        written = write(args.dst, args.src)
    except SolutionRegionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
