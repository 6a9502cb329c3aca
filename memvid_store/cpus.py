"""How many CPUs this process may use: its affinity mask where the OS keeps one (a
container or ``taskset`` narrows it), not every CPU of the machine."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1
