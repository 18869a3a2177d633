"""How much time and memory one problem's child may use.

The memory limit is what the problem asks for, capped by what the machine can
really give: the container's cgroup limit (v2 ``memory.max`` or v1
``memory.limit_in_bytes``) less what the grader already uses there, or else the
memory available on the machine. On Gradescope's 768 MB box a greedy problem
then fails alone, with "out of memory", instead of getting the whole container
killed and every result lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MEMORY_MB = 2048
JUDGE_RESERVE_MB = 96  # kept for the judge itself (it decodes replies and evaluates policies)
MIN_MEMORY_MB = 64


@dataclass
class Limits:
    seconds: float = 60.0
    memory_mb: int = DEFAULT_MEMORY_MB


def cgroup_headroom_mb(proc_cgroup: str = "/proc/self/cgroup", mount: str = "/sys/fs/cgroup") -> int | None:
    """MB left under this process's cgroup memory limit (None when unlimited or unknown)."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    candidates = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        rel = path.strip().lstrip("/")
        if controllers == "":  # cgroup v2
            candidates += [(Path(mount) / rel, "memory.max", "memory.current"),
                           (Path(mount), "memory.max", "memory.current")]
        elif "memory" in controllers.split(","):  # cgroup v1
            candidates += [(Path(mount) / "memory" / rel, "memory.limit_in_bytes", "memory.usage_in_bytes"),
                           (Path(mount) / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    if not lines:  # no /proc: a container's own cgroup is usually the mount's root
        candidates += [(Path(mount), "memory.max", "memory.current"),
                       (Path(mount) / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for folder, limit_file, usage_file in candidates:
        try:
            limit = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:
            return None
        return (int(limit) - usage + _reclaimable(folder)) // 2**20
    return None


def _reclaimable(folder: Path) -> int:
    """Page cache the kernel drops before it kills anyone (usage counts it; `docker stats` subtracts it too)."""
    try:
        stats = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines() if " " in line)
    except (OSError, ValueError):
        return 0
    return int(stats.get("total_inactive_file", stats.get("inactive_file", 0)))


def machine_available_mb() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available // 2**20)
    except Exception:  # noqa: BLE001 - no /proc, or psutil missing: no bound from here
        return None


def memory_limit_mb(requested: int = DEFAULT_MEMORY_MB) -> int:
    """The child's memory allowance: ``requested``, capped by the cgroup's headroom and the machine's
    available memory, less the judge's reserve (never below MIN_MEMORY_MB)."""
    bounds = [b - JUDGE_RESERVE_MB for b in (cgroup_headroom_mb(), machine_available_mb()) if b is not None]
    return max(MIN_MEMORY_MB, min([requested, *bounds]))
