"""Gradescope's default autograder machine, simulated with cgroup v1: 768 MB of memory
and half a CPU (cfs_quota_us 50000 per 100000). Used by the tests and by
bench/gradescope_limits.py, which reports the time and peak memory of a whole run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_V1 = Path("/sys/fs/cgroup")
MEMORY_MB, CPU_QUOTA_US, CPU_PERIOD_US = 768, 50_000, 100_000


def unavailable_reason() -> str | None:
    """Why the box cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    for controller, knob in (("memory", "memory.limit_in_bytes"), ("cpu", "cpu.cfs_quota_us")):
        if not (CGROUP_V1 / controller / knob).exists():
            return f"needs the cgroup v1 {controller} controller mounted at {CGROUP_V1 / controller}"
    return None


@dataclass
class Box:
    memory: Path
    cpu: Path

    def wrap(self, command: list[str]) -> list[str]:
        """``command``, started inside the box (every process it starts stays there)."""
        script = f'echo $$ > {self.memory}/cgroup.procs && echo $$ > {self.cpu}/cgroup.procs && exec "$@"'
        return ["sh", "-c", script, "sh", *command]

    @property
    def peak_mb(self) -> float:
        return int((self.memory / "memory.max_usage_in_bytes").read_text()) / 2**20

    @property
    def oom_kills(self) -> int:
        fields = dict(line.split() for line in (self.memory / "memory.oom_control").read_text().splitlines())
        return int(fields.get("oom_kill", 0))


@contextlib.contextmanager
def gradescope_box(name: str, memory_mb: int = MEMORY_MB, quota_us: int = CPU_QUOTA_US):
    memory, cpu = CGROUP_V1 / "memory" / name, CGROUP_V1 / "cpu" / name
    memory.mkdir()
    cpu.mkdir()
    try:
        (memory / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():  # no swap to hide in either
            swap.write_text(str(memory_mb * 2**20))
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(quota_us))
        yield Box(memory, cpu)
    finally:
        for folder in (memory, cpu):
            for _ in range(100):
                pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                folder.rmdir()
