"""What a node's agent reports in its heartbeat for autoscale's $CPUPercent and $MemoryBytes.

A node is its agent and everything it runs (the task processes and what they start), so the
samples are that process tree's: CPU time over wall time as a percentage of the CPUs the
agent may use (its affinity: the whole machine for a local agent, the allocation for a
Slurm one), and the resident memory of the tree. Several local agents on one machine each
report their own share, so their samples add up to the machine's.
"""

from __future__ import annotations

import contextlib
import os
import time

import psutil


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class NodeSampler:
    def __init__(self) -> None:
        self.cpus = usable_cpus()
        self.me = psutil.Process()
        self.last_wall = time.monotonic()
        self.last_cpu, _ = self._tree()

    def _tree(self) -> tuple[float, int]:
        """CPU seconds used by the agent, its reaped children and its live descendants
        (with what those reaped), and the tree's resident memory. Costs a walk of /proc."""
        own = os.times()
        cpu = own.user + own.system + own.children_user + own.children_system
        rss = 0
        with contextlib.suppress(psutil.Error):
            rss = self.me.memory_info().rss
            for proc in self.me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    cpu += times.user + times.system + times.children_user + times.children_system
                    rss += proc.memory_info().rss
        return cpu, rss

    def sample(self) -> tuple[float, int]:
        """CPU percent since the previous sample, and resident bytes now."""
        wall = time.monotonic()
        cpu, rss = self._tree()
        elapsed = wall - self.last_wall
        # A descendant that was orphaned (reparented away) takes its time with it: never
        # report less than nothing.
        used = max(0.0, cpu - self.last_cpu)
        self.last_wall, self.last_cpu = wall, cpu
        percent = 100.0 * used / (elapsed * self.cpus) if elapsed > 0 else 0.0
        return round(min(percent, 100.0), 2), rss
