"""How much time and memory one problem's child may use.

The memory limit is what the problem asks for, capped by what the machine can
really give: the container's cgroup limit (v2 ``memory.max`` or v1
``memory.limit_in_bytes``) less what the grader already uses there, or else the
memory available on the machine. On Gradescope's 768 MB box a greedy problem
then fails alone, with "out of memory", instead of getting the whole container
killed and every result lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from autograder.settings import DEFAULT_MEMORY_MB, DEFAULT_TOTAL_SECONDS  # noqa: F401 - the one default of each

# What is kept back from the last problems' limits for what follows a child's time-out (killing it, the judge's
# own evaluation of a trained policy, writing the results).
JUDGE_RESERVE_SECONDS = 15.0
PARALLEL_CHILD_MB = 1024  # a problem's child graded beside others needs this much headroom, or problems go one by one
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


def memory_limit_mb(requested: int = DEFAULT_MEMORY_MB, jobs: int = 1) -> int:
    """The child's memory allowance: ``requested``, capped by its share (one of ``jobs`` children at once) of
    the cgroup's headroom and the machine's available memory, less the judge's reserve (never below
    MIN_MEMORY_MB)."""
    bounds = [(b - JUDGE_RESERVE_MB) // max(1, jobs) for b in (cgroup_headroom_mb(), machine_available_mb())
              if b is not None]
    return max(MIN_MEMORY_MB, min([requested, *bounds]))


def cgroup_cpus(proc_cgroup: str = "/proc/self/cgroup", mount: str = "/sys/fs/cgroup") -> float | None:
    """The CPUs a cgroup's CPU quota allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``):
    0.5 on Gradescope's box; None when unlimited or unknown."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        lines = []
    folders = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        rel = path.strip().lstrip("/")
        if controllers == "":
            folders += [("v2", Path(mount) / rel), ("v2", Path(mount))]
        elif "cpu" in controllers.split(","):
            folders += [("v1", Path(mount) / "cpu" / rel), ("v1", Path(mount) / "cpu"),
                        ("v1", Path(mount) / "cpu,cpuacct" / rel), ("v1", Path(mount) / "cpu,cpuacct")]
    if not lines:
        folders += [("v2", Path(mount)), ("v1", Path(mount) / "cpu")]
    for version, folder in folders:
        try:
            if version == "v2":
                quota, period = (folder / "cpu.max").read_text().split()[:2]
            else:
                quota = (folder / "cpu.cfs_quota_us").read_text().strip()
                period = (folder / "cpu.cfs_period_us").read_text().strip()
        except (OSError, ValueError):
            continue
        if quota in ("max", "-1"):
            return None
        return int(quota) / int(period)
    return None


def usable_cpus() -> int:
    """Whole CPUs this process may use: its affinity mask, and the cgroup's quota rounded down (at least 1)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS has no affinity masks
        count = os.cpu_count() or 1
    quota = cgroup_cpus()
    if quota is not None:
        count = min(count, int(quota))
    return max(1, count)


def default_jobs(requested_mb: int = DEFAULT_MEMORY_MB) -> int:
    """How many problems to grade at once: one per usable CPU, as far as memory gives each child
    PARALLEL_CHILD_MB (Gradescope's half-CPU, 768 MB box: 1)."""
    jobs = usable_cpus()
    bounds = [b - JUDGE_RESERVE_MB for b in (cgroup_headroom_mb(), machine_available_mb()) if b is not None]
    if bounds:
        jobs = min(jobs, max(1, min(bounds) // min(requested_mb, PARALLEL_CHILD_MB)))
    return max(1, jobs)
